.chips 1
.bogus 7
