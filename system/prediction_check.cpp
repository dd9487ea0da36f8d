// Simulation against the compiler's prediction (prediction_check.h).
#include "system/prediction_check.h"

#include <stdexcept>

#include <fmt/format.h>

namespace lpu::system {

std::string envelope_mismatch(const sim::SimResult& r, const std::vector<StreamEnvelope>& streams) {
  if (streams.size() != r.chips.size())
    return fmt::format("stream envelopes of {} chips predicted, {} simulated", streams.size(), r.chips.size());
  for (size_t c = 0; c < r.chips.size(); ++c) {
    const std::string d = envelope_difference(streams[c], r.chips[c].streams, "predicted", "simulated");
    if (!d.empty()) return fmt::format("chip {} stream envelope: {}", c, d);
  }
  return "";
}

void check_prediction(const sim::SimResult& r, uint64_t cycles, const std::vector<StreamEnvelope>* streams,
                      const std::string& what) {
  if (r.cycles != cycles)
    throw std::logic_error(fmt::format("{}: compiler predicted {} cycles, simulator measured {}", what, cycles, r.cycles));
  if (streams == nullptr) return;
  const std::string d = envelope_mismatch(r, *streams);
  if (!d.empty()) throw std::logic_error(fmt::format("{}: {}", what, d));
}

}  // namespace lpu::system
