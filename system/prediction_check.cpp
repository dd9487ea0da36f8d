// Simulation against the compiler's prediction (prediction_check.h).
#include "system/prediction_check.h"

#include <stdexcept>

#include <fmt/format.h>

namespace lpu::system {

void check_prediction(const sim::SimResult& r, uint64_t cycles, const std::vector<StreamEnvelope>* streams,
                      const std::string& what) {
  if (r.cycles != cycles)
    throw std::logic_error(fmt::format("{}: compiler predicted {} cycles, simulator measured {}", what, cycles, r.cycles));
  if (streams == nullptr) return;
  if (streams->size() != r.chips.size())
    throw std::logic_error(fmt::format("{}: compiler predicted stream envelopes of {} chips, simulator measured {}",
                                       what, streams->size(), r.chips.size()));
  for (size_t c = 0; c < r.chips.size(); ++c) {
    const std::string d = envelope_difference((*streams)[c], r.chips[c].streams, "predicted", "simulated");
    if (!d.empty()) throw std::logic_error(fmt::format("{}: chip {} stream envelope: {}", what, c, d));
  }
}

}  // namespace lpu::system
