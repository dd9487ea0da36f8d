; A vector crosses a C2C cable: chip 0 sends it on link 3, chip 1 receives it on link 5.
; send latency on tsp-v1 = 4 + 180 wire + 21 serialization = 205 cycles.
.config tsp-v1
.chips 2
.predicted_cycles 236           ; chip 1's write @215 + 2 + stagger tail 19

.link 0:3 1:5

.tensor input v i8 [1,320] chip=0 slices=MEM_E43 addr=0
.tensor output w i8 [1,320] chip=1 slices=MEM_E43 addr=0

.chip 0
.queue MEM_E43
    read 0, E0                  ; on E0 at 90 on cycle 2, at C2C (93) on cycle 5
.queue C2C.0
    deskew l3
    nop 4
    send l3, E0                 ; @5, arrives @210

.chip 1
.queue C2C.1
    deskew l5
    nop 209
    recv l5 -> W0               ; @210, on W0 at 93 on cycle 212
.queue MEM_E43
    nop 215
    write W0, 0
