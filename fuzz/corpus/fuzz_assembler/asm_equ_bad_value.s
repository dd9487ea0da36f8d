.equ A banana
.chips 1
