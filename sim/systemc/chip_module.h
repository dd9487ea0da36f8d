// One chip as a SystemC module: a single SC_METHOD steps the plain C++ ChipEngine. There is no
// clock: each activation runs every event of the next `lookahead` cycles (cycles < now +
// lookahead) and re-triggers itself at the next cycle with work, so idle cycles cost nothing.
// lookahead = the smallest C2C send latency (>= 1) keeps chips causally exact: anything another
// chip sends during the window arrives after it. A single chip runs in one activation.
#pragma once
#include <cstdint>
#include <exception>

#include <systemc>

#include "sim/core/chip_engine.h"

namespace lpu::sim::sysc {

class ChipModule : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(ChipModule);
  // `abort` is shared by all chips of a run: the first chip that breaks a rule sets it and every
  // chip stops at its next activation (the kernel then runs out of events).
  ChipModule(sc_core::sc_module_name name, core::ChipEngine& engine, uint64_t lookahead, bool* abort);

  std::exception_ptr error() const { return error_; }

 private:
  void step();

  core::ChipEngine& engine_;
  uint64_t lookahead_;
  bool* abort_;
  std::exception_ptr error_;
};

// One simulated cycle in SystemC time.
inline sc_core::sc_time cycle_time() { return sc_core::sc_time(1, sc_core::SC_NS); }

}  // namespace lpu::sim::sysc
