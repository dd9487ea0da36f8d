// A ResNet-like stem for the int8 conv tests: X [1, 3, H, W] -> stem (3x3 stride 2 pad 1, bias,
// relu) -> MaxPool 3x3 stride 2 pad 1 -> P -> c2 (3x3 pad 1) -> Y (f32 output). The stem is X's
// only reader (the host writes its im2col rows) and the MaxPool takes the stem's Relu
// (passes/lower_conv.cpp), so an int8 compile runs the pool on the stem's i8 values.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/graph.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/conv_build.h"
#include "tests/support/f16_data.h"
#include "tests/support/host_input.h"
#include "tests/support/ir_build.h"

namespace lpu::test {

// The stem's bias lies in [bias_lo, bias_hi] (mostly negative: stem values below the pooled range).
inline ir::Graph stem_net(int64_t H, int64_t W, int64_t M, float bias_lo = -0.2f, float bias_hi = 0.2f) {
  ir::Graph g;
  g.name = "stem_net";
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {1, 3, H, W});
  const int64_t H1 = (H - 1) / 2 + 1, W1 = (W - 1) / 2 + 1, H2 = (H1 - 1) / 2 + 1, W2 = (W1 - 1) / 2 + 1;
  const ir::TensorId ys = g.add_tensor("Ys", ir::DType::F16, {1, M, H1, W1});
  const ir::TensorId bs =
      g.add_constant("Bs", ir::DType::F16, {M}, f16_bytes(random_f16(M, bias_lo, bias_hi, 7)));
  g.add_op(conv_op("stem", {x, conv_weight(g, "Ws", M, 3, 3, 8), bs}, ys, 3, 2, 1));
  const ir::TensorId rs = g.add_tensor("Rs", ir::DType::F16, {1, M, H1, W1});
  g.add_op(make_op(ir::OpKind::Relu, "relu", {ys}, {rs}));
  const ir::TensorId p = g.add_tensor("P", ir::DType::F16, {1, M, H2, W2});
  g.add_op(make_op(ir::OpKind::MaxPool, "pool", {rs}, {p},
                   {{"kernel_shape", std::vector<int64_t>{3, 3}}, {"strides", std::vector<int64_t>{2, 2}},
                    {"pads", std::vector<int64_t>{1, 1, 1, 1}}}));
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F32, {1, M, H2, W2});
  g.add_op(conv_op("c2", {p, conv_weight(g, "W2", M, M, 3, 9)}, y, 3, 1, 1));
  g.mark_output(y);
  return g;
}

// The stem net's input X [1, 3, H, W] (f16 values in [-1, 1]).
inline std::vector<float> stem_input(int64_t H, int64_t W, uint32_t seed) {
  return random_f16(3 * H * W, -1.f, 1.f, seed);
}
inline ref::Value stem_value(int64_t H, int64_t W, const std::vector<float>& x) {
  return ref::Value::floats({1, 3, H, W}, x, ir::DType::F16);
}

// The stem net compiled int8 (on-chip quantization, every intermediate kept), calibrated on the
// inputs of seeds 61 and 62.
inline compiler::CompileResult compile_stem_int8(const ir::Graph& g, int64_t H, int64_t W, const ChipConfig& cfg) {
  compiler::CompileOptions co;
  co.precision = compiler::Precision::INT8;
  co.int8.onchip_quantize = true;
  co.calibration = {{stem_value(H, W, stem_input(H, W, 61))}, {stem_value(H, W, stem_input(H, W, 62))}};
  co.keep_intermediates = true;
  return compiler::compile(g, cfg, co);
}

// The lowering a compile with plan q scheduled: g lowered for the built-in chip with q's quantized
// copies applied (layer indices match q.layers).
inline compiler::LoweredModel lower_with_copies(const ir::Graph& g, const compiler::QuantPlan& q) {
  compiler::LoweredModel lm = compiler::lower_graph(g);
  compiler::apply_quant_copies(g, q, &lm);
  return lm;
}

// The stem net's MaxPool (3x3 stride 2 pad 1) then Relu over an H1 x W1 image of M channels whose
// value at (row, column, channel) is at(ih, iw, c): the H2 x W2 x M pooled values, (oh, ow, c) order.
inline std::vector<double> pool_relu_reference(int64_t H1, int64_t W1, int64_t H2, int64_t W2, int64_t M,
                                               const std::function<double(int64_t, int64_t, int64_t)>& at) {
  std::vector<double> out;
  for (int64_t oh = 0; oh < H2; ++oh)
    for (int64_t ow = 0; ow < W2; ++ow)
      for (int64_t c = 0; c < M; ++c) {
        double m = -128;
        for (int64_t kh = 0; kh < 3; ++kh)
          for (int64_t kw = 0; kw < 3; ++kw) {
            const int64_t ih = 2 * oh - 1 + kh, iw = 2 * ow - 1 + kw;
            if (ih >= 0 && ih < H1 && iw >= 0 && iw < W1) m = std::max(m, at(ih, iw, c));
          }
        out.push_back(std::max(m, 0.0));
      }
  return out;
}

// Functional simulation of the compiled stem net on x, its input laid out and quantized by the host
// with `scale_factor` times the planned scale (1: as planned).
inline sim::SimResult run_stem(const compiler::CompileResult& cr, const compiler::LoweredModel& lm,
                               const std::vector<float>& x, const ChipConfig& cfg, float scale_factor = 1.f) {
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  bind_host_input(cr, lm.inputs[0], "X", x, &so.inputs, scale_factor);
  return sim::simulate(cr.program, cfg, so);
}

}  // namespace lpu::test
