// A LayerNormalization over the last axis of an f16 [R, D] activation, with seeded f16 gamma in
// [0.5, 1.5] and beta in [-beta_max, beta_max] (eps 1e-5), for compiler tests that need one.
#pragma once
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

namespace lpu::test {

// Adds constants "gamma", "beta" (has_beta), tensor `out` and node "ln" to g; returns the output.
inline ir::TensorId add_layer_norm(ir::Graph& g, ir::TensorId x, int64_t R, int64_t D, float beta_max = 0.5f,
                                   bool has_beta = true, const std::string& out = "h") {
  const ir::TensorId sc = g.add_constant("gamma", ir::DType::F16, {D}, f16_bytes(random_f16(D, 0.5f, 1.5f, 3)));
  std::vector<ir::TensorId> ins{x, sc};
  if (has_beta)
    ins.push_back(g.add_constant("beta", ir::DType::F16, {D}, f16_bytes(random_f16(D, -beta_max, beta_max, 4))));
  const ir::TensorId h = g.add_tensor(out, ir::DType::F16, {R, D});
  ir::Op ln = make_op(ir::OpKind::LayerNormalization, "ln", ins, h);
  ln.attrs["axis"] = int64_t{1};
  ln.attrs["epsilon"] = 1e-5f;
  g.add_op(ln);
  return h;
}

}  // namespace lpu::test
