; reduction.s: y = x[0] + x[1] + ... + x[7], the sum of 8 int32 vectors, as a chain of VXM adds.
; Teaches: a 4-byte type travels as a 4-stream group (byte plane b on stream base+b, stored in its
; own MEM slice), `repeat` stepping a read address, and a latency-bound dependency chain.
;
; Floorplan (tsp-v1): MEM_W3..MEM_W0 at 42..45 (byte planes 3..0 of x), VXM at 46,
; MEM_E0..MEM_E3 at 47..50 (byte planes 0..3 of y). Latencies: mem_read 2, vxm_alu 3, mem_write 2.
;
; x[k] must be on E0..E3 at the VXM (46) on cycle 6 + 3k (one add every 3 cycles = the add latency):
;   MEM_Wb (position 45-b) reads plane b of x[k] at cycle (3-b) + 3k: on the stream at 45-b two
;   cycles later, at 46 after 1+b more hops: (3-b) + 3k + 2 + 1 + b = 6 + 3k.
;   cycle 6        mov.i32 E0 -> E4          acc = x[0], on E4..E7 at 46 on cycle 9
;   cycles 9..27   add.i32 E4, E0 -> E4 (x7) acc = acc + x[k] for k = 1..7 (add k issues on 6 + 3k);
;                  each add reads the previous result on E4 at 46 the cycle it appears
;   final sum on E4..E7 at 46 on cycle 30; plane b reaches MEM_Eb (47+b) on cycle 31+b
;   writes issue on 31+b and land on 33+b; last landing 36.
; cycles = 36 + stagger tail 19 = 55.
.chips 1
.work 1 items
.tensor input  x i32 [8,320] chip=0 slices=MEM_W0,MEM_W1,MEM_W2,MEM_W3 addr=0
.tensor output y i32 [1,320] chip=0 slices=MEM_E0,MEM_E1,MEM_E2,MEM_E3 addr=0
.fill chip=0 slice=MEM_W0 addr=0 count=2560 seed=11   ; byte plane 0 of the 8 vectors of x
.fill chip=0 slice=MEM_W1 addr=0 count=2560 seed=12
.fill chip=0 slice=MEM_W2 addr=0 count=2560 seed=13
.fill chip=0 slice=MEM_W3 addr=0 count=2560 seed=14

.chip 0
.queue MEM_W3
    read 0, E3                  ; cycle 0: plane 3 of x[0]
    repeat 7, 3                 ; x[1..7] on cycles 3, 6, ..., 21 (address steps by 1)
.queue MEM_W2
    nop 1
    read 0, E2
    repeat 7, 3
.queue MEM_W1
    nop 2
    read 0, E1
    repeat 7, 3
.queue MEM_W0
    nop 3
    read 0, E0
    repeat 7, 3
.queue VXM.0
    nop 6
    mov.i32 E0 -> E4            ; cycle 6: acc = x[0]
    nop 2
    add.i32 E4, E0 -> E4        ; cycle 9: acc += x[1]
    repeat 6, 3                 ; cycles 12..27: acc += x[2..7]
.queue MEM_E0
    nop 31
    write E4, 0
.queue MEM_E1
    nop 32
    write E5, 0
.queue MEM_E2
    nop 33
    write E6, 0
.queue MEM_E3
    nop 34
    write E7, 0
