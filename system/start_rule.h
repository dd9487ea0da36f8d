// When a program may start on chips that ran other programs just before it: the composition rule
// of back-to-back pieces (docs/architecture.md "Programs back to back", system/llm_system.h).
// After its end (SimResult::cycles) a program has no instruction in flight, but the stream values
// it put on the chip still travel to the edge (values are not consumed), for up to num_positions
// cycles. A value occupies one diagonal of its stream, so the next program's value collides with
// it exactly when both take the same (stream, diagonal): the stream envelope of each program (the
// diagonals it takes near its two ends, isa/stream_envelope.h; predicted by the compiler, measured
// by the simulator, equal by system/prediction_check.h) gives the rule, which is exact, not a
// bound. A gap of stream_drain after the end is always clear (piece_window).
#pragma once
#include <cstdint>
#include <map>
#include <vector>

#include "isa/chip_config.h"
#include "sim/simulator.h"

namespace lpu::system {

// True when a program whose chip envelope is `after` may start `gap` cycles after the end of one
// whose envelope on the same chip is `before`: no stream value of `before` still on the chip takes
// a diagonal of `after`. logic_error for envelopes of different stream counts, or an empty one
// (from neither a compile nor a simulation: even a program with no stream value has one bit per
// stream and position, all clear).
bool streams_clear(const StreamEnvelope& before, const StreamEnvelope& after, uint64_t gap);

// Cycles after a program's end (SimResult::cycles, which includes the stagger tail) until every
// stream value it put on the chip has left it: num_positions - stagger_tail, or 0 when the tail is
// at least that long. Any program may start this long after another ends (the drain, piece_window).
uint64_t stream_drain(const ChipConfig& chip);

// The smallest gap >= 0 after `before`'s end at which `after` may start (streams_clear); at most
// stream_drain (logic_error otherwise: an envelope the rule does not cover).
uint64_t start_gap(const ChipConfig& chip, const StreamEnvelope& before, const StreamEnvelope& after);

// One chip's part of a program placed in a composed timeline: the system chip it runs on, the
// program's cycles (its SimResult::cycles, which the envelope's tail is relative to) and the
// envelope of that program chip (required; not owned: it must outlive the call).
struct ChipRun {
  uint32_t chip = 0;
  uint64_t cycles = 0;
  const StreamEnvelope* streams = nullptr;
};

// The last program placed on each system chip, and from it the earliest start of the next one.
class ChipClock {
 public:
  explicit ChipClock(const ChipConfig& chip) : chip_(chip) {}
  // The earliest offset >= not_before at which every run may start: after the end of the last
  // program placed on its chip, with streams_clear between the two. Chips with nothing placed
  // impose nothing.
  uint64_t earliest(const std::vector<ChipRun>& runs, uint64_t not_before) const;
  // Records that `runs` start at `offset` (each chip's program ends at offset + its cycles).
  void place(const std::vector<ChipRun>& runs, uint64_t offset);

 private:
  struct Last {
    uint64_t end = 0;
    StreamEnvelope streams;
  };
  const ChipConfig& chip_;
  std::map<uint32_t, Last> last_;
};

}  // namespace lpu::system
