.chips 1
.chip 0
.queue MEM_W5
    add.i8 E0, W1 -> E2
