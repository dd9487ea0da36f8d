; transpose.s: transposes a 16 x 320 int8 matrix in 16 x 16 blocks on the SXM (transpose sg16).
; Row k of the input is stored in MEM_W(43-k) (position 2+k) at address 0; row k of the result
; is written to the same slice at address 1. For every block of 16 lanes (blk = 0..19):
;   out[k][16*blk + i] = in[i][16*blk + k]
; Teaches: a 16-stream group must meet the SXM on one cycle, so each row is read from its own
; slice at a cycle that compensates its distance; results fan out east to the writers.
;
; Floorplan (tsp-v1): SXM_W at 1, MEM_W43..MEM_W28 at 2..17.
; Latencies: mem_read 2, sxm_transpose 20, mem_write 2; stagger tail 19.
;   MEM_W(43-k) reads row k onto W<k> at cycle 15-k: on the stream at 2+k on 17-k, at SXM_W (1)
;   on 17-k + 1+k = 18 for every k.
;   cycle 18      transpose.i8 W0 -> E0 on SXM_W: result rows on E0..E15 at position 1 on 38
;   row k of the result reaches MEM_W(43-k) (2+k) on 38 + 1+k = 39+k: written then, lands 41+k
; cycles = last landing 41+15 = 56 + 19 = 75.
.chips 1
.work 1 items
.tensor input  a0 i8 [1,320] chip=0 slices=MEM_W43 addr=0   ; row 0 of the input
.tensor input  a1 i8 [1,320] chip=0 slices=MEM_W42 addr=0   ; row 1 of the input
.tensor input  a2 i8 [1,320] chip=0 slices=MEM_W41 addr=0   ; row 2 of the input
.tensor input  a3 i8 [1,320] chip=0 slices=MEM_W40 addr=0   ; row 3 of the input
.tensor input  a4 i8 [1,320] chip=0 slices=MEM_W39 addr=0   ; row 4 of the input
.tensor input  a5 i8 [1,320] chip=0 slices=MEM_W38 addr=0   ; row 5 of the input
.tensor input  a6 i8 [1,320] chip=0 slices=MEM_W37 addr=0   ; row 6 of the input
.tensor input  a7 i8 [1,320] chip=0 slices=MEM_W36 addr=0   ; row 7 of the input
.tensor input  a8 i8 [1,320] chip=0 slices=MEM_W35 addr=0   ; row 8 of the input
.tensor input  a9 i8 [1,320] chip=0 slices=MEM_W34 addr=0   ; row 9 of the input
.tensor input  a10 i8 [1,320] chip=0 slices=MEM_W33 addr=0   ; row 10 of the input
.tensor input  a11 i8 [1,320] chip=0 slices=MEM_W32 addr=0   ; row 11 of the input
.tensor input  a12 i8 [1,320] chip=0 slices=MEM_W31 addr=0   ; row 12 of the input
.tensor input  a13 i8 [1,320] chip=0 slices=MEM_W30 addr=0   ; row 13 of the input
.tensor input  a14 i8 [1,320] chip=0 slices=MEM_W29 addr=0   ; row 14 of the input
.tensor input  a15 i8 [1,320] chip=0 slices=MEM_W28 addr=0   ; row 15 of the input
.tensor output t0 i8 [1,320] chip=0 slices=MEM_W43 addr=1   ; row 0 of the result
.tensor output t1 i8 [1,320] chip=0 slices=MEM_W42 addr=1   ; row 1 of the result
.tensor output t2 i8 [1,320] chip=0 slices=MEM_W41 addr=1   ; row 2 of the result
.tensor output t3 i8 [1,320] chip=0 slices=MEM_W40 addr=1   ; row 3 of the result
.tensor output t4 i8 [1,320] chip=0 slices=MEM_W39 addr=1   ; row 4 of the result
.tensor output t5 i8 [1,320] chip=0 slices=MEM_W38 addr=1   ; row 5 of the result
.tensor output t6 i8 [1,320] chip=0 slices=MEM_W37 addr=1   ; row 6 of the result
.tensor output t7 i8 [1,320] chip=0 slices=MEM_W36 addr=1   ; row 7 of the result
.tensor output t8 i8 [1,320] chip=0 slices=MEM_W35 addr=1   ; row 8 of the result
.tensor output t9 i8 [1,320] chip=0 slices=MEM_W34 addr=1   ; row 9 of the result
.tensor output t10 i8 [1,320] chip=0 slices=MEM_W33 addr=1   ; row 10 of the result
.tensor output t11 i8 [1,320] chip=0 slices=MEM_W32 addr=1   ; row 11 of the result
.tensor output t12 i8 [1,320] chip=0 slices=MEM_W31 addr=1   ; row 12 of the result
.tensor output t13 i8 [1,320] chip=0 slices=MEM_W30 addr=1   ; row 13 of the result
.tensor output t14 i8 [1,320] chip=0 slices=MEM_W29 addr=1   ; row 14 of the result
.tensor output t15 i8 [1,320] chip=0 slices=MEM_W28 addr=1   ; row 15 of the result
.fill chip=0 slice=MEM_W43 addr=0 count=320 seed=100
.fill chip=0 slice=MEM_W42 addr=0 count=320 seed=101
.fill chip=0 slice=MEM_W41 addr=0 count=320 seed=102
.fill chip=0 slice=MEM_W40 addr=0 count=320 seed=103
.fill chip=0 slice=MEM_W39 addr=0 count=320 seed=104
.fill chip=0 slice=MEM_W38 addr=0 count=320 seed=105
.fill chip=0 slice=MEM_W37 addr=0 count=320 seed=106
.fill chip=0 slice=MEM_W36 addr=0 count=320 seed=107
.fill chip=0 slice=MEM_W35 addr=0 count=320 seed=108
.fill chip=0 slice=MEM_W34 addr=0 count=320 seed=109
.fill chip=0 slice=MEM_W33 addr=0 count=320 seed=110
.fill chip=0 slice=MEM_W32 addr=0 count=320 seed=111
.fill chip=0 slice=MEM_W31 addr=0 count=320 seed=112
.fill chip=0 slice=MEM_W30 addr=0 count=320 seed=113
.fill chip=0 slice=MEM_W29 addr=0 count=320 seed=114
.fill chip=0 slice=MEM_W28 addr=0 count=320 seed=115

.chip 0
.queue SXM_W
    nop 18
    transpose.i8 W0 -> E0       ; cycle 18: reads W0..W15, writes E0..E15 on cycle 38
.queue MEM_W43
    nop 15
    read 0, W0                ; cycle 15: input row 0
    nop 23
    write E0, 1               ; cycle 39: result row 0
.queue MEM_W42
    nop 14
    read 0, W1                ; cycle 14: input row 1
    nop 25
    write E1, 1               ; cycle 40: result row 1
.queue MEM_W41
    nop 13
    read 0, W2                ; cycle 13: input row 2
    nop 27
    write E2, 1               ; cycle 41: result row 2
.queue MEM_W40
    nop 12
    read 0, W3                ; cycle 12: input row 3
    nop 29
    write E3, 1               ; cycle 42: result row 3
.queue MEM_W39
    nop 11
    read 0, W4                ; cycle 11: input row 4
    nop 31
    write E4, 1               ; cycle 43: result row 4
.queue MEM_W38
    nop 10
    read 0, W5                ; cycle 10: input row 5
    nop 33
    write E5, 1               ; cycle 44: result row 5
.queue MEM_W37
    nop 9
    read 0, W6                ; cycle 9: input row 6
    nop 35
    write E6, 1               ; cycle 45: result row 6
.queue MEM_W36
    nop 8
    read 0, W7                ; cycle 8: input row 7
    nop 37
    write E7, 1               ; cycle 46: result row 7
.queue MEM_W35
    nop 7
    read 0, W8                ; cycle 7: input row 8
    nop 39
    write E8, 1               ; cycle 47: result row 8
.queue MEM_W34
    nop 6
    read 0, W9                ; cycle 6: input row 9
    nop 41
    write E9, 1               ; cycle 48: result row 9
.queue MEM_W33
    nop 5
    read 0, W10                ; cycle 5: input row 10
    nop 43
    write E10, 1               ; cycle 49: result row 10
.queue MEM_W32
    nop 4
    read 0, W11                ; cycle 4: input row 11
    nop 45
    write E11, 1               ; cycle 50: result row 11
.queue MEM_W31
    nop 3
    read 0, W12                ; cycle 3: input row 12
    nop 47
    write E12, 1               ; cycle 51: result row 12
.queue MEM_W30
    nop 2
    read 0, W13                ; cycle 2: input row 13
    nop 49
    write E13, 1               ; cycle 52: result row 13
.queue MEM_W29
    nop 1
    read 0, W14                ; cycle 1: input row 14
    nop 51
    write E14, 1               ; cycle 53: result row 14
.queue MEM_W28
    read 0, W15                ; cycle 0: input row 15
    nop 53
    write E15, 1               ; cycle 54: result row 15
