; vector_add.s: C = A + B on one chip, the worked example of machine.md section 5, cycle by cycle.
;
; Floorplan (tsp-v1): MEM_W5 at position 40, VXM at 46, MEM_E3 at 50, MEM_E7 at 54.
; tsp-v1 latencies used here: mem_read 2, vxm_alu 3, mem_write 2; stagger tail 19 (20 superlanes).
;
;   cycle 0   MEM_E7  read B -> W1     B is on W1 at 54 on cycle 2; moving west it is at 46 on cycle 10
;   cycle 2   MEM_W5  read A -> E0     A is on E0 at 40 on cycle 4; moving east it is at 46 on cycle 10
;   cycle 10  VXM     add E0, W1 -> E2 both operands meet the VXM on cycle 10; C is on E2 at 46 on 13
;   cycle 17  MEM_E3  write E2         C reaches 50 on 13 + 4 hops = 17; it lands in SRAM on 19
;
; cycles = last landing (19) + stagger tail (19) = 38.
; Issuing the add on cycle 11 would read nothing on E0/W1 there (an "empty read" schedule error).
.chips 1
.work 1 items
.tensor input  a i8 [1,320] chip=0 slices=MEM_W5 addr=16
.tensor input  b i8 [1,320] chip=0 slices=MEM_E7 addr=16
.tensor output c i8 [1,320] chip=0 slices=MEM_E3 addr=0
.fill chip=0 slice=MEM_W5 addr=16 count=320 seed=1   ; A: 320 pseudo-random bytes
.fill chip=0 slice=MEM_E7 addr=16 count=320 seed=2   ; B

.chip 0
.queue MEM_E7
    read 16, W1                 ; cycle 0
.queue MEM_W5
    nop 2
    read 16, E0                 ; cycle 2
.queue VXM.0
    nop 10
    add.i8 E0, W1 -> E2         ; cycle 10 (int8 addition wraps)
.queue MEM_E3
    nop 17
    write E2, 0                 ; cycle 17, lands on 19
