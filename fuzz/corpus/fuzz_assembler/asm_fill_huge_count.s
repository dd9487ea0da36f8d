.chips 1
.fill chip=0 slice=MEM_W5 addr=16 count=4294967295 seed=1
