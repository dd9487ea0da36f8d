.chips 1
.tensor input a i8 [0,320] chip=0 slices=MEM_W5 addr=16
