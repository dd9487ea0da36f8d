; C = A + B on one chip: the worked example of docs/shared machine.md section 5 on tsp-v1.
; A sits in MEM_W5 (position 40), B in MEM_E7 (54), the VXM at 46, C goes to MEM_E3 (50).
.config tsp-v1
.chips 1
.predicted_cycles 38            ; last write issues at 17, lands at 19, + 19 stagger tail
.work 1 items

.equ A_ADDR 16
.equ B_ADDR 0x0

.tensor input a i8 [1,320] chip=0 slices=MEM_W5 addr=A_ADDR
.tensor input b i8 [1,320] chip=0 slices=MEM_E7 addr=B_ADDR
.tensor output c i8 [1,320] chip=0 slices=MEM_E3 addr=0

.chip 0
.queue MEM_E7
    read B_ADDR, W1             ; on W1 at 54 on cycle 2, at 46 on cycle 10
.queue MEM_W5
    nop 2
    read A_ADDR,E0              ; on E0 at 40 on cycle 4, at 46 on cycle 10
.queue VXM.0
    nop 10
    add.i8 E0 , W1->E2          ; C on E2 at 46 on cycle 13
.queue MEM_E3
    nop 17
    write E2, 0                 ; 13 + 4 hops
