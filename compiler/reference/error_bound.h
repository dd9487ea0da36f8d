// Running fp32 error bound for the reference interpreter: alongside every value, a first-order
// bound on |computed - exact| (exact = real arithmetic on the same inputs and constants), from the
// dot-product rule |err| <= n * u * sum|a_i b_i| (u = 2^-24 for f32, 2^-11 for f16) and the
// per-op rules in docs/onnx-support.md. Tests compare two fp32 implementations (e.g. torch and the
// reference) against twice this bound, so the tolerance is derived, never tuned.
#pragma once
#include <vector>

#include "compiler/reference/interpreter.h"

namespace lpu::ref {

// Runs `g` like ref::run and also returns, per graph output, an f32 Value of the same shape holding
// the error bound of each element (0 for exact integer results, +inf where no bound is known).
std::vector<Value> run_with_error_bound(const ir::Graph& g, const std::vector<Value>& inputs,
                                        std::vector<Value>* bounds);

// The per-op rule alone: bounds of `op`'s outputs `outs` (as computed by eval_op/eval_op_typed) from
// its input values `v` and their bounds `e` (nullptr for omitted inputs), plus 2^-11 |y| for f16
// outputs. Used by the per-step check (step_check.h) with exact (chip) inputs, e = 0.
std::vector<Value> op_error_bound(const ir::Op& op, const std::vector<const Value*>& v,
                                  const std::vector<const Value*>& e, const std::vector<Value>& outs);

}  // namespace lpu::ref
