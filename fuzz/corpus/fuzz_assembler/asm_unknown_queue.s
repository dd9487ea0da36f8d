.chips 1
.chip 0
.queue TPU_9
    nop 1
