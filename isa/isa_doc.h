// The instruction-set reference (markdown) generated from the isa/*.def tables and a chip config;
// `lpusim isa` prints it and docs/isa.md is its checked-in output for tsp-v1.
#pragma once
#include <string>

#include "isa/chip_config.h"

namespace lpu {

// Units, opcodes (mnemonic, unit, format, scheduling class, step field, syntax, description),
// operand fields, encoding formats with bit ranges, scheduling classes with latency/occupancy
// under `cfg`, energy events with their cost under `cfg`. Deterministic: same cfg, same bytes.
std::string isa_reference_markdown(const ChipConfig& cfg);

}  // namespace lpu
