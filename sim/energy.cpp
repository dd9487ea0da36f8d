// Energy and power of a simulated run: event counts x the chip config's picojoule table, plus
// static power x chips x simulated seconds (docs/energy.md shows the calibration).
#include "sim/energy.h"

namespace lpu::sim {

EnergyBreakdown compute_energy(const SimResult& r, const ChipConfig& cfg) {
  EnergyBreakdown e;
  for (const ChipStats& chip : r.chips)
    for (int k = 0; k < kNumEnergyEvents; ++k)
      e.dynamic_j[k] += static_cast<double>(chip.events[k]) * cfg.energy_pj[k] * 1e-12;
  e.seconds = cfg.clock_hz > 0 ? static_cast<double>(r.cycles) / cfg.clock_hz : 0.0;
  // Every chip of the run leaks for the whole run (they share one global cycle count).
  e.static_j = cfg.static_power_w * static_cast<double>(r.chips.size()) * e.seconds;
  e.total_j = e.static_j;
  for (double d : e.dynamic_j) e.total_j += d;
  e.average_power_w = e.seconds > 0 ? e.total_j / e.seconds : 0.0;
  return e;
}

}  // namespace lpu::sim
