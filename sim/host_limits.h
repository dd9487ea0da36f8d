// Host memory the simulator will need for a program on a chip config, estimated from sizes alone
// (nothing is allocated), so a tool can refuse a run that would exhaust the host before starting
// it (docs/reliability.md "Limits up front"). An upper bound of what simulate() allocates: per chip,
// the stream registers (allocated up front), the SRAM image of every MEM slice the program can
// write (functional mode; pages are allocated on first write, and a slice's state changes only
// through its own queues, the data image and bound inputs), per-slice hazard state, the MXM planes
// of every MXM slice with code (weights, accumulators, batch), decoded instructions; plus the
// trace (one event per executed instruction, repeat iterations included) if one is recorded.
#pragma once
#include <cstdint>
#include <string>

#include "isa/chip_config.h"
#include "isa/program.h"
#include "sim/simulator.h"

namespace lpu::sim {

struct SimMemoryEstimate {
  uint64_t streams = 0;   // stream registers, all chips
  uint64_t sram = 0;      // SRAM image and per-address hazard state, all chips
  uint64_t mxm = 0;       // MXM plane state, all chips
  uint64_t code = 0;      // decoded instructions and per-chip scheduling state
  uint64_t trace = 0;     // trace events (0 unless opt.record_trace)
  uint64_t total = 0;     // sum of the above (saturating)
  // "stream registers A MiB, SRAM B MiB, MXM C MiB, code D MiB, trace E MiB" for messages.
  std::string describe() const;
};

SimMemoryEstimate estimate_sim_memory(const Program& prog, const ChipConfig& cfg, const SimOptions& opt);

}  // namespace lpu::sim
