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

// std::logic_error naming `what` unless r.cycles == cycles and, when `streams` is not null, every
// chip's measured envelope (r.chips[c].streams) equals (*streams)[c] (same chip count too).
void check_prediction(const sim::SimResult& r, uint64_t cycles, const std::vector<StreamEnvelope>* streams,
                      const std::string& what);

}  // namespace lpu::system
