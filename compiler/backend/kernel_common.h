// What the scheduling kernels share (matmul, lane, elementwise and gather kernels, the LLM
// collectives): the search bound of a placement, distances and directions on the chip's position
// line, and an instruction's latency and occupancy from the chip's latency table.
#pragma once

#include <cstdint>

#include "isa/chip_config.h"
#include "isa/isa.h"

namespace lpu::compiler {

// Cycles a kernel tries for one placement before giving up (a scheduler bug, reported as such).
constexpr uint64_t kMaxSearch = uint64_t{1} << 24;

// Hops between two positions (the cycles a stream value takes from one to the other).
inline uint64_t pos_gap(uint32_t a, uint32_t b) { return a > b ? a - b : b - a; }

inline Dir opposite(Dir d) { return d == Dir::East ? Dir::West : Dir::East; }

// Latency and occupancy of `op` of type t on cfg (isa/latency table).
inline uint64_t latency_of(const ChipConfig& cfg, Opcode op, DType t) {
  return instr_timing(cfg, make_instr(op, t)).latency;
}
inline uint64_t occupancy_of(const ChipConfig& cfg, Opcode op, DType t) {
  return instr_timing(cfg, make_instr(op, t)).occupancy;
}

}  // namespace lpu::compiler
