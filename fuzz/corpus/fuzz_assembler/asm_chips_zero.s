.chips 0
