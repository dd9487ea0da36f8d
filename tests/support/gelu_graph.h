// GELU in the LLM front end's op order (compiler/llm/segments.cpp, erf form): Y = (x * 0.5) *
// (1 + erf(x * (1 / sqrt 2))) over an f16 input "X" [rows, cols]; `extra_reader`: x * 0.5 is also
// a graph output. Elementwise ops only (lower_graph fuses them into one pass).
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

namespace lpu::test {

inline ir::Graph gelu_erf_graph(int64_t rows, int64_t cols, bool extra_reader = false) {
  ir::Graph g;
  g.name = "gelu_erf";
  const ir::Shape sh{rows, cols};
  const ir::TensorId x = g.add_input("X", ir::DType::F16, sh);
  int n = 0;
  auto scalar = [&](float v) { return g.add_constant("c" + std::to_string(n++), ir::DType::F16, {}, f16_bytes({v})); };
  auto op = [&](ir::OpKind k, std::vector<ir::TensorId> in) {
    const ir::TensorId y = g.add_tensor("t" + std::to_string(n), ir::DType::F16, sh);
    g.add_op(make_op(k, "op" + std::to_string(n++), std::move(in), {y}));
    return y;
  };
  const ir::TensorId e = op(ir::OpKind::Erf, {op(ir::OpKind::Mul, {x, scalar(static_cast<float>(1.0 / std::sqrt(2.0)))})});
  const ir::TensorId hx = op(ir::OpKind::Mul, {x, scalar(0.5f)});
  g.mark_output(op(ir::OpKind::Mul, {hx, op(ir::OpKind::Add, {e, scalar(1.f)})}));
  if (extra_reader) g.mark_output(hx);
  return g;
}

}  // namespace lpu::test
