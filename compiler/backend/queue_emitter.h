// Per-queue instruction emission: turns scheduled (issue cycle, instruction) placements into each
// queue's code, inserting `nop n` for gaps and folding regular runs (same instruction, step field
// +1 each time, constant spacing) into `X; repeat n, d` (docs/architecture.md "Issue").
#pragma once
#include <vector>

#include "compiler/backend/schedule_builder.h"
#include "isa/program.h"

namespace lpu::compiler {

struct EmitOptions {
  bool use_repeat = true;  // fold regular runs into `repeat`
};

// Builds ChipCode (queues sorted by (slice, queue)) from placements. Throws logic_error if two
// placements of one queue share a cycle (a scheduler bug).
ChipCode emit_queues(std::vector<Placement> placements, const EmitOptions& opt);

// Replays a queue's code per the ICU rules and returns (issue cycle, instruction) of every executed
// non-ICU instruction; used by tests to prove emission preserves the schedule. No sync/notify.
std::vector<std::pair<uint64_t, Instr>> replay_queue(const std::vector<Instr>& code);

}  // namespace lpu::compiler
