.chips 1
.chip 0
    nop 1
