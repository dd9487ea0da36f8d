// A chip without a capability (chip_variant.h) must refuse, in its simulator, a program that uses
// it: InputError naming the instruction and the config field, never a run.
#pragma once
#include <catch2/catch.hpp>

#include <string>

#include "isa/chip_config.h"
#include "sim/simulator.h"

namespace lpu::test {

// Simulating `program` (timing mode) on `chip` throws InputError whose message holds `instr` and
// `field` (e.g. "fma", "vxm.fused_multiply_add: false").
inline void check_sim_refuses(const Program& program, const ChipConfig& chip, const std::string& instr,
                              const std::string& field) {
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  try {
    sim::simulate(program, chip, so);
    FAIL("a program with " << instr << " ran on chip '" << chip.name << "' (" << field << ")");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Catch::Matchers::Contains(instr) && Catch::Matchers::Contains(field));
  }
}

}  // namespace lpu::test
