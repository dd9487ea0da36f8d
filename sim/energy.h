// Energy and power from event counts: events x the config's energy table + static power x time.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "isa/chip_config.h"
#include "sim/simulator.h"

namespace lpu::sim {

struct EnergyBreakdown {
  std::array<double, kNumEnergyEvents> dynamic_j{};  // per event kind, all chips
  double static_j = 0;
  double total_j = 0;
  double seconds = 0;        // cycles / clock
  double average_power_w = 0;  // total_j / seconds (0 if seconds == 0)
};

EnergyBreakdown compute_energy(const SimResult& r, const ChipConfig& cfg);

}  // namespace lpu::sim
