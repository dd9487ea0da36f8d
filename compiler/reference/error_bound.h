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

}  // namespace lpu::ref
