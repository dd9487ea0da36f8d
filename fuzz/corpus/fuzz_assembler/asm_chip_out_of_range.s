.chips 1
.chip 3
.queue MEM_W5
    nop 1
