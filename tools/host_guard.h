// Up-front host-memory checks of the `lpusim` commands (docs/reliability.md "Limits up front"):
// before simulating, the simulator's estimate (sim/host_limits.h); before compiling, the model's
// weights as f32. Each throws InputError with the estimate and the available memory unless
// `force` (the commands' --force flag).
#pragma once
#include <cstdint>
#include <string>

#include "compiler/ir/graph.h"
#include "isa/chip_config.h"
#include "isa/program.h"
#include "sim/simulator.h"

namespace lpu::cli {

// `what` names the input in the message (e.g. the program file).
void guard_simulation(const Program& prog, const ChipConfig& cfg, const sim::SimOptions& opt, const std::string& what,
                      bool force);

// Weights of a model: `elements` constant elements, held as f32 (4 bytes each) while compiling.
void guard_compile_weights(uint64_t elements, const std::string& what, bool force);

// Constant elements of a graph (weights, biases, folded constants), saturating.
uint64_t graph_weight_elements(const ir::Graph& g);

}  // namespace lpu::cli
