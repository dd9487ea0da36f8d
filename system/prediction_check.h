// The rule that joins the compiler and the simulator: a simulated program must take exactly the
// cycles the compiler predicted and leave exactly the stream values near its ends that the
// compiler predicted (isa/stream_envelope.h). A disagreement is a bug in one of the two.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "isa/stream_envelope.h"
#include "sim/simulator.h"

namespace lpu::system {

// The first chip whose measured envelope (r.chips[c].streams) differs from streams[c], in words
// ("chip 0 stream envelope: tail stream 3 (east 3) k 17: predicted 1, simulated 0"), or a chip
// count that differs; "" when they are all equal.
std::string envelope_mismatch(const sim::SimResult& r, const std::vector<StreamEnvelope>& streams);

// std::logic_error naming `what` unless r.cycles == cycles and, when `streams` is not null,
// envelope_mismatch finds nothing.
void check_prediction(const sim::SimResult& r, uint64_t cycles, const std::vector<StreamEnvelope>* streams,
                      const std::string& what);

}  // namespace lpu::system
