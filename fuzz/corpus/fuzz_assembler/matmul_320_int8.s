; matmul_320_int8.s: Y[8,320] (int32) = X[8,320] (int8) x W[320,320] (int8) on one MXM plane.
; Teaches the MXM sequence: 320 `lw` rows into the shadow buffer (one `lw` + `repeat`), `iw` to
; install them, one `abc` per activation row into an accumulator row, `acc` to emit each row as an
; int32 4-stream group, and four MEM slices writing the four byte planes.
; y[r][j] = sum_i x[r][i] * W[i][j]: weight row i (vector i of W) multiplies activation lane i.
;
; Floorplan (tsp-v1): MXM_W at 0 (plane p0), MEM_W41 (X) at 4, MEM_W40 (W) at 5,
; MEM_W39..MEM_W36 (byte planes 0..3 of Y) at 6..9.
; Latencies: mem_read 2, mxm_lw 2, mxm_iw 20, mxm_abc 24, mxm_acc 2, mem_write 2; stagger tail 19.
;
;   cycles 0..319     MEM_W40 reads W rows 0..319 onto W0; each reaches MXM_W (0) 2 + 5 = 7 cycles later
;   cycles 7..326     lw.i8 p0, W0, r0..r319 (one row per cycle); the last lands on 328
;   cycle  328        iw.i8 p0: the new weights are active on 348
;   cycles 342..349   MEM_W41 reads X rows 0..7 onto W1; each reaches 0 after 2 + 4 = 6 cycles
;   cycles 348..355   abc.i8 p0, W1, r0..r7: acc[r] = x[r] . W lands on 372..379
;   cycles 372..379   acc.i32 p0, r0..r7 -> E0: row r on E0..E3 at 0 on 374 + r
;   byte plane b of row r reaches MEM_W(39-b) (position 6+b) on 374 + r + 6 + b = 380 + b + r
;   cycles 380+b+r    MEM_W(39-b) writes it to address r; the last (b=3, r=7) lands on 392
; cycles = 392 + 19 = 411.
.chips 1
.work 8 items
.tensor input  w i8  [320,320] chip=0 slices=MEM_W40 addr=0
.tensor input  x i8  [8,320]   chip=0 slices=MEM_W41 addr=0
.tensor output y i32 [8,320]   chip=0 slices=MEM_W39,MEM_W38,MEM_W37,MEM_W36 addr=0
.fill chip=0 slice=MEM_W40 addr=0 count=102400 seed=21   ; W: 320 rows of 320 int8
.fill chip=0 slice=MEM_W41 addr=0 count=2560 seed=22     ; X: 8 rows of 320 int8

.chip 0
.queue MEM_W40
    read 0, W0                  ; cycle 0: W row 0
    repeat 319, 1               ; rows 1..319 on cycles 1..319
.queue MEM_W41
    nop 342
    read 0, W1                  ; cycle 342: X row 0
    repeat 7, 1                 ; rows 1..7 on cycles 343..349
.queue MXM_W
    nop 7
    lw.i8 p0, W0, r0            ; cycle 7
    repeat 319, 1               ; rows 1..319 on cycles 8..326; the cursor moves to 327
    nop 1
    iw.i8 p0                    ; cycle 328, after the last lw landed
    nop 19
    abc.i8 p0, W1, r0           ; cycle 348, when the installed weights are active
    repeat 7, 1                 ; rows 1..7 on cycles 349..355; cursor 356
    nop 16
    acc.i32 p0, r0 -> E0        ; cycle 372, when acc[0] has landed
    repeat 7, 1                 ; rows 1..7 on cycles 373..379
.queue MEM_W39
    nop 380
    write E0, 0                 ; byte plane 0 of row 0
    repeat 7, 1
.queue MEM_W38
    nop 381
    write E1, 0                 ; byte plane 1
    repeat 7, 1
.queue MEM_W37
    nop 382
    write E2, 0
    repeat 7, 1
.queue MEM_W36
    nop 383
    write E3, 0
    repeat 7, 1
