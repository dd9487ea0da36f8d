// Chrome/Perfetto trace-event JSON of a simulated run (open in ui.perfetto.dev or chrome://tracing):
// one "X" event per executed instruction, one track per instruction queue, one process per chip.
// Time axis: 1 simulated cycle is shown as 1 us.
#pragma once
#include <ostream>
#include <string>

#include "isa/chip_config.h"
#include "isa/program.h"
#include "sim/simulator.h"

namespace lpu::sim {

// Writes the trace of `r` (run with SimOptions::record_trace) as JSON. Deterministic: events in
// the order of r.trace, fixed formatting. Events whose chip/slice/queue/instruction is not in
// `prog` are a caller error (std::invalid_argument), never silently dropped.
void write_chrome_trace(std::ostream& out, const Program& prog, const ChipConfig& cfg, const SimResult& r);

// Same, to a file; throws InputError naming the path if it cannot be written.
void write_chrome_trace_file(const std::string& path, const Program& prog, const ChipConfig& cfg,
                             const SimResult& r);

}  // namespace lpu::sim
