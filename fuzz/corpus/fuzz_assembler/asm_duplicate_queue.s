.chips 1
.chip 0
.queue MEM_W5
    nop 1
.queue MEM_W5
    nop 1
