// Attention-like scores for softmax tests: input x [R, D], s = (x . W) * c with W a seeded random
// f16 constant [D, K] ("W", MatMul "mm") and c an f16 scalar constant (Mul "scale"). Returns s.
#pragma once
#include <cstdint>

#include "compiler/ir/graph.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

namespace lpu::test {

inline ir::TensorId scaled_scores(ir::Graph& g, int64_t R, int64_t D, int64_t K, float c, uint32_t seed) {
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {R, D});
  const ir::TensorId W = g.add_constant("W", ir::DType::F16, {D, K}, f16_bytes(random_f16(D * K, -0.5f, 0.5f, seed)));
  const ir::TensorId sc = g.add_tensor("scores", ir::DType::F16, {R, K});
  g.add_op(make_op(ir::OpKind::MatMul, "mm", {x, W}, sc));
  const ir::TensorId s = g.add_tensor("scaled", ir::DType::F16, {R, K});
  g.add_op(make_op(ir::OpKind::Mul, "scale", {sc, g.add_constant("c", ir::DType::F16, {}, f16_bytes({c}))}, s));
  return s;
}

}  // namespace lpu::test
