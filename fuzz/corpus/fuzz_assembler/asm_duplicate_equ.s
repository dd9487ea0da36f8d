.equ A 1
.equ A 2
.chips 1
