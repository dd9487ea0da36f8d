// Building conv nets by hand in tests: an ONNX-style Conv op (square kernel, stride, pad,
// dilation) and a seeded f16 weight [M, C, k, k] scaled by 1 / sqrt(C k k).
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

namespace lpu::test {

inline ir::Op conv_op(const std::string& name, std::vector<ir::TensorId> ins, ir::TensorId y, int64_t k, int64_t s,
                      int64_t p, int64_t d = 1) {
  return make_op(ir::OpKind::Conv, name, std::move(ins), {y},
                 {{"kernel_shape", std::vector<int64_t>{k, k}}, {"strides", std::vector<int64_t>{s, s}},
                  {"dilations", std::vector<int64_t>{d, d}}, {"pads", std::vector<int64_t>{p, p, p, p}},
                  {"group", int64_t{1}}});
}

inline ir::TensorId conv_weight(ir::Graph& g, const std::string& n, int64_t M, int64_t C, int64_t k, uint32_t seed) {
  const float s = 1.f / std::sqrt(static_cast<float>(C * k * k));
  return g.add_constant(n, ir::DType::F16, {M, C, k, k}, f16_bytes(random_f16(M * C * k * k, -s, s, seed)));
}

}  // namespace lpu::test
