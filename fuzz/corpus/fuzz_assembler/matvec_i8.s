; y = x . W on MXM_W plane 0: W (320 x 320 int8, pseudo-random) streams west from MEM_W43 row by
; row into the shadow buffer, is installed, x passes through the array, and the int32 accumulator
; row goes back to four MEM slices (one per byte plane). Positions: MXM_W 0, MEM_W43 2, MEM_W42 3.
.config tsp-v1
.chips 1
.predicted_cycles 403           ; last write @382 + latency 2 + stagger tail 19
.work 1 items

.equ ROWS_MINUS_1 319

.fill chip=0 slice=MEM_W43 addr=0 count=102400 seed=1
.tensor input x i8 [1,320] chip=0 slices=MEM_W42 addr=0
.tensor output y i32 [1,320] chip=0 slices=MEM_W40,MEM_W39,MEM_W38,MEM_W37 addr=0

.chip 0
.queue MEM_W43
    read 0, W0                  ; row r on W0 at MXM_W on cycle r + 4
    repeat ROWS_MINUS_1, 1
.queue MXM_W.0
    nop 4
    lw.i8 p0, W0, r0
    repeat ROWS_MINUS_1, 1      ; rows 1..319 on cycles 5..323
    nop 2
    iw.i8 p0                    ; @326, lands @346
    nop 20
    abc.i8 p0, W1, r0           ; @347
    nop 24
    acc.i32 p0, r0 -> E0        ; @372, E0..E3 at position 0 on cycle 374
.queue MEM_W42
    nop 342
    read 0, W1                  ; @342, at MXM_W on cycle 347
.queue MEM_W40
    nop 379
    write E0, 0
.queue MEM_W39
    nop 380
    write E1, 0
.queue MEM_W38
    nop 381
    write E2, 0
.queue MEM_W37
    nop 382
    write E3, 0
