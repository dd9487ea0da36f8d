// Stream values near a program's two ends on one chip, for starting another program right after
// it (docs/architecture.md "Programs back to back", system/start_rule.h). The compiler predicts
// it (compiler::CompileResult::predicted_streams) and the simulator measures it
// (sim::ChipStats::streams); the two must be equal, as predicted and simulated cycles must.
// A value holds its diagonal of its stream (east d = t - p, west d = t + p; t = cycle it lands at
// its producer position p) to the chip's edge, so a later program's value collides with it exactly
// when both take the same diagonal of the same stream. Indexed [stream][word] (envelope_stream
// below), bit k of word k / 64, k < num_positions:
// - head: a value landed on diagonal -k (east) or +k (west): the only diagonals of this program
//   that a value left by a program ending before it starts can share;
// - tail: a value on diagonal cycles - k (east) or cycles + k (west), cycles = the program's
//   cycles (predicted == simulated): the values still on the chip after the program's end.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "isa/isa.h"

namespace lpu {

// The envelope's stream order, which the simulator's stream file shares: east streams 0..S-1,
// then west 0..S-1 (S = streams per direction).
inline uint32_t envelope_stream(Dir dir, uint32_t index, uint32_t per_dir) {
  return static_cast<uint32_t>(dir) * per_dir + index;
}
inline Dir envelope_dir(size_t stream, size_t per_dir) { return stream < per_dir ? Dir::East : Dir::West; }

struct StreamEnvelope {
  std::vector<std::vector<uint64_t>> head, tail;
  bool operator==(const StreamEnvelope& o) const { return head == o.head && tail == o.tail; }
  bool operator!=(const StreamEnvelope& o) const { return !(*this == o); }
};

// The first difference between two envelopes in words, e.g. "tail stream 3 (east 3) k 17:
// predicted 1, simulated 0", or "" when equal. `a` and `b` name the two sides.
std::string envelope_difference(const StreamEnvelope& a, const StreamEnvelope& b, const char* a_name,
                                const char* b_name);

}  // namespace lpu
