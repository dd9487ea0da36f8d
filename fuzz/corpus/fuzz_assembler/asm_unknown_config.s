.config tsp-v99
.chips 1
