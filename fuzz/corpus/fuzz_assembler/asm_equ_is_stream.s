.equ E0 5
.chips 1
