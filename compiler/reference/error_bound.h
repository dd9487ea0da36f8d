// Running fp32 error bound for the reference interpreter: alongside every value, a first-order
// bound on |computed - exact| (exact = real arithmetic on the same inputs and constants), from the
// dot-product rule |err| <= n * u * sum|a_i b_i| (u = 2^-24 for f32, 2^-11 for f16) and the
// per-op rules in docs/onnx-support.md. Tests compare two fp32 implementations (e.g. torch and the
// reference) against twice this bound, so the tolerance is derived, never tuned.
#pragma once
#include <vector>

#include "compiler/reference/interpreter.h"

namespace lpu::ref {

// The precision constants of docs/compiler.md "Precision", defined once.
inline constexpr double kUnitF32 = 1.0 / 16777216.0;   // u32 = 2^-24: unit roundoff of fp32 arithmetic
inline constexpr double kUnitF16 = 1.0 / 2048.0;       // 2^-11: rounding a result to fp16
inline constexpr double kF16Subnormal = 1.0 / 16777216.0;  // 2^-24: f16 subnormal step (the relative rule misses it)

// Number of f16 roundings the lowering inserts INSIDE one IR op (passes/lower_norm.cpp): none since
// Softmax, LayerNormalization and ReduceSum/ReduceMean keep every intermediate f32 (lane steps sum
// in f32; the row max is exact in f16). The row sums' f32 rounding (a chain over the row's vectors
// plus ceil(log2 lanes) tree levels, fewer than n additions) is inside op_error_bound's gamma(n)
// term. Used by the per-step check and the functional LLM check; change it with the lowering.
inline int internal_f16_roundings(ir::OpKind) { return 0; }

// Runs `g` like ref::run and also returns, per graph output, an f32 Value of the same shape holding
// the error bound of each element (0 for exact integer results, +inf where no bound is known).
std::vector<Value> run_with_error_bound(const ir::Graph& g, const std::vector<Value>& inputs,
                                        std::vector<Value>* bounds);

// The per-op rule alone: bounds of `op`'s outputs `outs` (as computed by eval_op/eval_op_typed) from
// its input values `v` and their bounds `e` (nullptr for omitted inputs), plus 2^-11 |y| + 2^-25
// (half the subnormal step: a result near 0) for f16 outputs. Used by the per-step check (step_check.h) with exact (chip) inputs, e = 0.
std::vector<Value> op_error_bound(const ir::Op& op, const std::vector<const Value*>& v,
                                  const std::vector<const Value*>& e, const std::vector<Value>& outs);

}  // namespace lpu::ref
