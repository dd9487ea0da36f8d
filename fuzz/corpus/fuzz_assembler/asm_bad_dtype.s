.chips 1
.chip 0
.queue VXM.0
    add.q7 E0, W1 -> E2
