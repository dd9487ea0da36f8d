; two_chip.s: chip 0 sends 4 vectors over a C2C link; chip 1 receives them and stores them.
; Teaches: link wiring (.link), send latency = c2c_send latency + wire latency + serialization,
; the link's TX side busy for the serialization time (so sends are spaced by it), and that both
; chips share one global cycle count, so the receiver is scheduled statically too.
;
; Floorplan (tsp-v1): MEM_E43 at 90, C2C at 93 (east edge). Cable: chip 0 link 3 <-> chip 1 link 5.
; Latencies: mem_read 2, c2c_recv 2, mem_write 2; c2c_send 4 + wire 180 + serialization 21
; (ceil(320 bytes / (14e9 B/s / 900e6 Hz = 15.56 B/cycle)) = 21): a vector arrives 205 cycles after
; its send, and the link's TX side is busy for 21 cycles per vector.
;   chip 0  MEM_E43 reads x[k] onto E0 at 21k: on E0 at 90 on 21k+2, at the C2C (93) on 21k+5
;   chip 0  C2C     send l3, E0 at 5 + 21k         arrives at chip 1 link 5 on 210 + 21k
;   chip 1  C2C     recv l5 -> W0 at 210 + 21k     on W0 at 93 on 212 + 21k, at 90 on 215 + 21k
;   chip 1  MEM_E43 write W0 at 215 + 21k          lands 217 + 21k; the last (k = 3) lands on 280
; cycles = 280 + 19 = 299.
.chips 2
.work 4 items
.link 0:3 1:5
.tensor input  x i8 [4,320] chip=0 slices=MEM_E43 addr=0
.tensor output y i8 [4,320] chip=1 slices=MEM_E43 addr=0
.fill chip=0 slice=MEM_E43 addr=0 count=1280 seed=31

.chip 0
.queue MEM_E43
    read 0, E0                  ; cycle 0: x[0]
    repeat 3, 21                ; x[1..3] on 21, 42, 63
.queue C2C
    nop 5
    send l3, E0                 ; cycle 5
    repeat 3, 21                ; 26, 47, 68: one vector per serialization time

.chip 1
.queue C2C
    nop 210
    recv l5 -> W0               ; cycle 210: the first vector arrived on 5 + 205
    repeat 3, 21
.queue MEM_E43
    nop 215
    write W0, 0                 ; cycle 215: y[0]
    repeat 3, 21
