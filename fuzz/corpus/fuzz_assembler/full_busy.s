; full_busy.s: keeps one tsp-v1 chip as busy as its 64 streams allow, for energy calibration
; (docs/energy.md) and the simulator benchmark (bench/bench_sim.cpp). Data values are irrelevant.
;
; What is busy in steady state (cycles ~400..4440 of 4499):
;   MXM   all 4 planes (2 in MXM_W, 2 in MXM_E) run abc every cycle (4096 each, int8) and emit one
;         accumulator row per cycle (acc.i32), after loading 320 weight rows (lw) and installing them (iw)
;   MEM   26 slices read every cycle (4 feed the planes, 6 + 16 feed the VXM) and 32 write every cycle
;         (16 store the 4 x 4 byte planes of the accumulator rows, 16 store the VXM results);
;         every stream (32 east + 32 west) carries a new vector every cycle somewhere on the chip
;   VXM   all 16 ALUs run add.i8 every cycle (4400 each)
; A vector on a stream occupies its diagonal to the chip edge, so the 64 streams, not the 88 MEM
; slices, bound how many slices can read per cycle: 30 MEM slices stay idle.
;
; Latencies: mem_read 2, mxm_lw 2, mxm_iw 20, mxm_abc 24, mxm_acc 2, vxm_alu 3, mem_write 2.
; Plane timeline, D = the feeder's distance + 2 (4 for planes fed from 2 positions away, 5 for 3):
;   feeder MEM slice reads every cycle 0..4436 onto the plane's stream: at the MXM on cycle t + D
;   lw rows 0..319 on D..D+319; iw on D+321 (after the last lw lands); abc rows 0..4095 on
;   D+341..D+4436; acc rows 0..4095 on D+365..D+4460 (each 24 cycles after its abc)
;   acc byte plane b reaches its writer (4 + 4*plane + b positions away) 2 + that distance later
; MXM_W: p0 fed by MEM_W43 (pos 2) on W0, D = 4; p1 by MEM_W42 (pos 3) on W1, D = 5;
;        acc p0 -> E4..E7 written by MEM_W41..MEM_W38 (pos 4..7) from cycle 375+b;
;        acc p1 -> E8..E11 written by MEM_W37..MEM_W34 (pos 8..11) from cycle 380+b.
; MXM_E: mirror image: p0 fed by MEM_E43 (pos 90) on E0, p1 by MEM_E42 (pos 89) on E1;
;        acc p0 -> W4..W7 written by MEM_E41..MEM_E38 (pos 88..85) from 375+b;
;        acc p1 -> W8..W11 written by MEM_E37..MEM_E34 (pos 84..81) from 380+b.
; VXM (46): ALU k = VXM.k adds E<a_k> + W<12+k> -> E<12+k> on cycles 40..4439, where
;   a_k = E2, E3, E28, E29, E30, E31 for k mod 6 = 0..5, read by MEM_W0..MEM_W5 (pos 45..40)
;   every cycle 0..4436 (at the VXM 3 + j cycles after the read of MEM_Wj);
;   W<12+k> read by MEM_E<17+k> (pos 64+k) every cycle 0..4436 (at the VXM 20 + k cycles later);
;   result E<12+k> reaches MEM_E<1+k> (pos 48+k) 2 + k cycles after it appears: written from 45 + k.
; End: the last acc of MXM_W p1 (cycle 4465) reaches MEM_W34 on 4478; it lands on 4480.
; cycles = 4480 + stagger tail 19 = 4499.
.chips 1

.fill chip=0 slice=MEM_W43 addr=0 count=1419840 seed=1
.fill chip=0 slice=MEM_W42 addr=0 count=1419840 seed=2
.fill chip=0 slice=MEM_E43 addr=0 count=1419840 seed=3
.fill chip=0 slice=MEM_E42 addr=0 count=1419840 seed=4
.fill chip=0 slice=MEM_W0 addr=0 count=1419840 seed=5
.fill chip=0 slice=MEM_W1 addr=0 count=1419840 seed=6
.fill chip=0 slice=MEM_W2 addr=0 count=1419840 seed=7
.fill chip=0 slice=MEM_W3 addr=0 count=1419840 seed=8
.fill chip=0 slice=MEM_W4 addr=0 count=1419840 seed=9
.fill chip=0 slice=MEM_W5 addr=0 count=1419840 seed=10
.fill chip=0 slice=MEM_E17 addr=0 count=1419840 seed=11
.fill chip=0 slice=MEM_E18 addr=0 count=1419840 seed=12
.fill chip=0 slice=MEM_E19 addr=0 count=1419840 seed=13
.fill chip=0 slice=MEM_E20 addr=0 count=1419840 seed=14
.fill chip=0 slice=MEM_E21 addr=0 count=1419840 seed=15
.fill chip=0 slice=MEM_E22 addr=0 count=1419840 seed=16
.fill chip=0 slice=MEM_E23 addr=0 count=1419840 seed=17
.fill chip=0 slice=MEM_E24 addr=0 count=1419840 seed=18
.fill chip=0 slice=MEM_E25 addr=0 count=1419840 seed=19
.fill chip=0 slice=MEM_E26 addr=0 count=1419840 seed=20
.fill chip=0 slice=MEM_E27 addr=0 count=1419840 seed=21
.fill chip=0 slice=MEM_E28 addr=0 count=1419840 seed=22
.fill chip=0 slice=MEM_E29 addr=0 count=1419840 seed=23
.fill chip=0 slice=MEM_E30 addr=0 count=1419840 seed=24
.fill chip=0 slice=MEM_E31 addr=0 count=1419840 seed=25
.fill chip=0 slice=MEM_E32 addr=0 count=1419840 seed=26

.chip 0
; ---- feeders: every cycle 0..4436, address = cycle
.queue MEM_W43
    read 0, W0
    repeat 4436, 1
.queue MEM_W42
    read 0, W1
    repeat 4436, 1
.queue MEM_E43
    read 0, E0
    repeat 4436, 1
.queue MEM_E42
    read 0, E1
    repeat 4436, 1
.queue MEM_W0
    read 0, E2
    repeat 4436, 1
.queue MEM_W1
    read 0, E3
    repeat 4436, 1
.queue MEM_W2
    read 0, E28
    repeat 4436, 1
.queue MEM_W3
    read 0, E29
    repeat 4436, 1
.queue MEM_W4
    read 0, E30
    repeat 4436, 1
.queue MEM_W5
    read 0, E31
    repeat 4436, 1
.queue MEM_E17
    read 0, W12
    repeat 4436, 1
.queue MEM_E18
    read 0, W13
    repeat 4436, 1
.queue MEM_E19
    read 0, W14
    repeat 4436, 1
.queue MEM_E20
    read 0, W15
    repeat 4436, 1
.queue MEM_E21
    read 0, W16
    repeat 4436, 1
.queue MEM_E22
    read 0, W17
    repeat 4436, 1
.queue MEM_E23
    read 0, W18
    repeat 4436, 1
.queue MEM_E24
    read 0, W19
    repeat 4436, 1
.queue MEM_E25
    read 0, W20
    repeat 4436, 1
.queue MEM_E26
    read 0, W21
    repeat 4436, 1
.queue MEM_E27
    read 0, W22
    repeat 4436, 1
.queue MEM_E28
    read 0, W23
    repeat 4436, 1
.queue MEM_E29
    read 0, W24
    repeat 4436, 1
.queue MEM_E30
    read 0, W25
    repeat 4436, 1
.queue MEM_E31
    read 0, W26
    repeat 4436, 1
.queue MEM_E32
    read 0, W27
    repeat 4436, 1
; ---- MXM planes: lw x320, iw, abc x4096 on queue p; acc x4096 on queue 2+p
.queue MXM_W.0
    nop 4
    lw.i8 p0, W0, r0          ; cycle 4
    repeat 319, 1
    nop 1
    iw.i8 p0                    ; cycle 325
    nop 19
    abc.i8 p0, W0, r0         ; cycle 345
    repeat 4095, 1
.queue MXM_W.2
    nop 369
    acc.i32 p0, r0 -> E4        ; cycle 369
    repeat 4095, 1
.queue MXM_W.1
    nop 5
    lw.i8 p1, W1, r0          ; cycle 5
    repeat 319, 1
    nop 1
    iw.i8 p1                    ; cycle 326
    nop 19
    abc.i8 p1, W1, r0         ; cycle 346
    repeat 4095, 1
.queue MXM_W.3
    nop 370
    acc.i32 p1, r0 -> E8        ; cycle 370
    repeat 4095, 1
.queue MXM_E.0
    nop 4
    lw.i8 p0, E0, r0          ; cycle 4
    repeat 319, 1
    nop 1
    iw.i8 p0                    ; cycle 325
    nop 19
    abc.i8 p0, E0, r0         ; cycle 345
    repeat 4095, 1
.queue MXM_E.2
    nop 369
    acc.i32 p0, r0 -> W4        ; cycle 369
    repeat 4095, 1
.queue MXM_E.1
    nop 5
    lw.i8 p1, E1, r0          ; cycle 5
    repeat 319, 1
    nop 1
    iw.i8 p1                    ; cycle 326
    nop 19
    abc.i8 p1, E1, r0         ; cycle 346
    repeat 4095, 1
.queue MXM_E.3
    nop 370
    acc.i32 p1, r0 -> W8        ; cycle 370
    repeat 4095, 1
; ---- accumulator writers: byte plane b of plane p, address = row
.queue MEM_W41
    nop 375
    write E4, 0
    repeat 4095, 1
.queue MEM_W40
    nop 376
    write E5, 0
    repeat 4095, 1
.queue MEM_W39
    nop 377
    write E6, 0
    repeat 4095, 1
.queue MEM_W38
    nop 378
    write E7, 0
    repeat 4095, 1
.queue MEM_W37
    nop 380
    write E8, 0
    repeat 4095, 1
.queue MEM_W36
    nop 381
    write E9, 0
    repeat 4095, 1
.queue MEM_W35
    nop 382
    write E10, 0
    repeat 4095, 1
.queue MEM_W34
    nop 383
    write E11, 0
    repeat 4095, 1
.queue MEM_E41
    nop 375
    write W4, 0
    repeat 4095, 1
.queue MEM_E40
    nop 376
    write W5, 0
    repeat 4095, 1
.queue MEM_E39
    nop 377
    write W6, 0
    repeat 4095, 1
.queue MEM_E38
    nop 378
    write W7, 0
    repeat 4095, 1
.queue MEM_E37
    nop 380
    write W8, 0
    repeat 4095, 1
.queue MEM_E36
    nop 381
    write W9, 0
    repeat 4095, 1
.queue MEM_E35
    nop 382
    write W10, 0
    repeat 4095, 1
.queue MEM_E34
    nop 383
    write W11, 0
    repeat 4095, 1
; ---- VXM: 16 ALUs, one add per cycle each, 40..4439
.queue VXM.0
    nop 40
    add.i8 E2, W12 -> E12
    repeat 4399, 1
.queue VXM.1
    nop 40
    add.i8 E3, W13 -> E13
    repeat 4399, 1
.queue VXM.2
    nop 40
    add.i8 E28, W14 -> E14
    repeat 4399, 1
.queue VXM.3
    nop 40
    add.i8 E29, W15 -> E15
    repeat 4399, 1
.queue VXM.4
    nop 40
    add.i8 E30, W16 -> E16
    repeat 4399, 1
.queue VXM.5
    nop 40
    add.i8 E31, W17 -> E17
    repeat 4399, 1
.queue VXM.6
    nop 40
    add.i8 E2, W18 -> E18
    repeat 4399, 1
.queue VXM.7
    nop 40
    add.i8 E3, W19 -> E19
    repeat 4399, 1
.queue VXM.8
    nop 40
    add.i8 E28, W20 -> E20
    repeat 4399, 1
.queue VXM.9
    nop 40
    add.i8 E29, W21 -> E21
    repeat 4399, 1
.queue VXM.10
    nop 40
    add.i8 E30, W22 -> E22
    repeat 4399, 1
.queue VXM.11
    nop 40
    add.i8 E31, W23 -> E23
    repeat 4399, 1
.queue VXM.12
    nop 40
    add.i8 E2, W24 -> E24
    repeat 4399, 1
.queue VXM.13
    nop 40
    add.i8 E3, W25 -> E25
    repeat 4399, 1
.queue VXM.14
    nop 40
    add.i8 E28, W26 -> E26
    repeat 4399, 1
.queue VXM.15
    nop 40
    add.i8 E29, W27 -> E27
    repeat 4399, 1
; ---- VXM result writers, address = cycle - start
.queue MEM_E1
    nop 45
    write E12, 0
    repeat 4399, 1
.queue MEM_E2
    nop 46
    write E13, 0
    repeat 4399, 1
.queue MEM_E3
    nop 47
    write E14, 0
    repeat 4399, 1
.queue MEM_E4
    nop 48
    write E15, 0
    repeat 4399, 1
.queue MEM_E5
    nop 49
    write E16, 0
    repeat 4399, 1
.queue MEM_E6
    nop 50
    write E17, 0
    repeat 4399, 1
.queue MEM_E7
    nop 51
    write E18, 0
    repeat 4399, 1
.queue MEM_E8
    nop 52
    write E19, 0
    repeat 4399, 1
.queue MEM_E9
    nop 53
    write E20, 0
    repeat 4399, 1
.queue MEM_E10
    nop 54
    write E21, 0
    repeat 4399, 1
.queue MEM_E11
    nop 55
    write E22, 0
    repeat 4399, 1
.queue MEM_E12
    nop 56
    write E23, 0
    repeat 4399, 1
.queue MEM_E13
    nop 57
    write E24, 0
    repeat 4399, 1
.queue MEM_E14
    nop 58
    write E25, 0
    repeat 4399, 1
.queue MEM_E15
    nop 59
    write E26, 0
    repeat 4399, 1
.queue MEM_E16
    nop 60
    write E27, 0
    repeat 4399, 1
