// (Not used by `lpusim check` any more: see step_check.h.) The fp16 view of a float model, as the
// chip computes it with --precision fp16: every f32 tensor
// (inputs, constants, hidden tensors, outputs) retyped to f16 (constants rounded to nearest even),
// Casts to f32 made Casts to f16. Running the reference interpreter on it rounds where the chip
// stores f16, so `lpusim check` can compare any lowered model (not only dense chains) with the
// reference within twice its running error bound (ref::run_with_error_bound), the rule the compiler
// tests use (docs/compiler.md "Precision"). Known gap: the chip keeps biases and elementwise
// constants in f32, the retyped reference rounds them to f16 (a difference of <= 2^-11 |c|).
#pragma once
#include "compiler/ir/graph.h"

namespace lpu::ref {

ir::Graph retype_f16(const ir::Graph& g);

}  // namespace lpu::ref
