// ChipModule: the SystemC process that drives one ChipEngine (see chip_module.h).
#include "sim/systemc/chip_module.h"

#include <fmt/format.h>

namespace lpu::sim::sysc {

ChipModule::ChipModule(sc_core::sc_module_name name, core::ChipEngine& engine, uint64_t lookahead, bool* abort)
    : sc_core::sc_module(name), engine_(engine), lookahead_(lookahead < 1 ? 1 : lookahead), abort_(abort) {
  SC_METHOD(step);
}

void ChipModule::step() {
  if (*abort_) return;
  try {
    const uint64_t now = sc_core::sc_time_stamp().value() / cycle_time().value();
    const uint64_t horizon = (UINT64_MAX - now > lookahead_) ? now + lookahead_ : UINT64_MAX;
    engine_.run_until(horizon);
    if (engine_.idle()) return;  // no next_trigger: the process never runs again
    const uint64_t next = engine_.next_cycle();
    const uint64_t max_cycle = sc_core::sc_max_time().value() / cycle_time().value();
    if (next >= max_cycle)
      throw InputError(fmt::format("program: an instruction issues on cycle {}, beyond the {} cycles SystemC time can count", next,
                                   max_cycle));
    next_trigger(sc_core::sc_time::from_value((next - now) * cycle_time().value()));
  } catch (...) {
    error_ = std::current_exception();
    *abort_ = true;  // no next_trigger: this process never runs again
  }
}

}  // namespace lpu::sim::sysc
