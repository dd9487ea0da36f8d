.chips 1
.tensor input a i8 [1,320] chip=0 slices=MEM_W5 addr=16
.chip 0
.queue MEM_W5
    nop 0
