// Up-front host-memory checks of the commands: see host_guard.h.
#include "tools/host_guard.h"

#include <fmt/format.h>

#include <limits>

#include "isa/host_memory.h"
#include "sim/host_limits.h"

namespace lpu::cli {

void guard_simulation(const Program& prog, const ChipConfig& cfg, const sim::SimOptions& opt, const std::string& what,
                      bool force) {
  if (force) return;
  const sim::SimMemoryEstimate e = sim::estimate_sim_memory(prog, cfg, opt);
  require_host_memory(fmt::format("{}: simulating {} chip(s) of '{}' in {} mode", what, prog.num_chips, cfg.name,
                                  opt.mode == sim::Mode::Functional ? "functional" : "timing"),
                      e.total, e.describe(), host_memory_available());
}

void guard_compile_weights(uint64_t elements, const std::string& what, bool force) {
  if (force) return;
  const uint64_t bytes = elements > std::numeric_limits<uint64_t>::max() / 4 ? std::numeric_limits<uint64_t>::max()
                                                                             : elements * 4;
  require_host_memory(fmt::format("{}: compiling", what), bytes,
                      fmt::format("{} weight elements as f32", elements), host_memory_available());
}

uint64_t graph_weight_elements(const ir::Graph& g) {
  uint64_t n = 0;
  for (const ir::Tensor& t : g.tensors()) {
    if (!t.is_const) continue;
    const uint64_t e = static_cast<uint64_t>(t.elements());
    n = e > std::numeric_limits<uint64_t>::max() - n ? std::numeric_limits<uint64_t>::max() : n + e;
  }
  return n;
}

}  // namespace lpu::cli
