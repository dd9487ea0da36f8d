// Conv nets lowered to dense layers (taps read in place) and row-mapped VXM steps (compiler/passes/lower_conv.h):
// each graph is compiled, simulated in timing and functional mode (simulated cycles must equal the
// compiler's prediction) and its outputs compared with the reference interpreter within twice the
// reference's running error bound (docs/compiler.md), the graph typed f16 where the chip stores f16.
// The chip stores conv activations as [N, H, W, C]; inputs and outputs are converted with the
// lowering's host layout (to_chip_input, from_chip_output), as `lpusim check` does.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/tiling.h"
#include "compiler/reference/error_bound.h"
#include "isa/chip_config.h"
#include "tests/support/f16_data.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/chip_variant.h"
#include "tests/support/conv_build.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

struct ConvCase {
  int64_t N, C, H, W, M, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, group;
  bool bias, relu;
};

int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1) {
  return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

// Conv (+ Relu) graph; its result is marked as the output unless `mark` is false (*out gets it).
// A conv reading the graph input gets im2col rows from the host; with `on_chip` a 1x1 conv comes
// first, so the tested conv reads a conv activation and reads its taps in place on the chip.
ir::Graph conv_graph(const ConvCase& c, uint32_t seed, bool mark = true, ir::TensorId* out = nullptr,
                     bool on_chip = false) {
  ir::Graph g;
  g.name = "conv";
  ir::TensorId x = g.add_input("X", ir::DType::F16, {c.N, c.C, c.H, c.W});
  if (on_chip) {
    const float s0 = 1.f / std::sqrt(static_cast<float>(c.C));
    const ir::TensorId w0 =
        g.add_constant("W0", ir::DType::F16, {c.C, c.C, 1, 1}, f16_bytes(random_f16(c.C * c.C, -s0, s0, seed + 2)));
    const ir::TensorId x0 = g.add_tensor("X0", ir::DType::F16, {c.N, c.C, c.H, c.W});
    g.add_op(make_op(ir::OpKind::Conv, "pre", {x, w0}, {x0},
                     {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"strides", std::vector<int64_t>{1, 1}},
                      {"dilations", std::vector<int64_t>{1, 1}}, {"pads", std::vector<int64_t>{0, 0, 0, 0}},
                      {"group", int64_t{1}}}));
    x = x0;
  }
  const int64_t Cg = c.C / c.group;
  const float s = 1.f / std::sqrt(static_cast<float>(Cg * c.kh * c.kw));
  const ir::TensorId w =
      g.add_constant("Wt", ir::DType::F16, {c.M, Cg, c.kh, c.kw}, f16_bytes(random_f16(c.M * Cg * c.kh * c.kw, -s, s, seed)));
  std::vector<ir::TensorId> ins{x, w};
  if (c.bias) ins.push_back(g.add_constant("B", ir::DType::F16, {c.M}, f16_bytes(random_f16(c.M, -0.5f, 0.5f, seed + 1))));
  const int64_t OH = out_dim(c.H, c.kh, c.sh, c.dh, c.pt, c.pb), OW = out_dim(c.W, c.kw, c.sw, c.dw, c.pl, c.pr);
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {c.N, c.M, OH, OW});
  g.add_op(make_op(ir::OpKind::Conv, "conv", ins, {y},
                   {{"kernel_shape", std::vector<int64_t>{c.kh, c.kw}},
                    {"strides", std::vector<int64_t>{c.sh, c.sw}},
                    {"dilations", std::vector<int64_t>{c.dh, c.dw}},
                    {"pads", std::vector<int64_t>{c.pt, c.pl, c.pb, c.pr}},
                    {"group", c.group}}));
  ir::TensorId res = y;
  if (c.relu) {
    res = g.add_tensor("Z", ir::DType::F16, {c.N, c.M, OH, OW});
    g.add_op(make_op(ir::OpKind::Relu, "relu", {y}, {res}));
  }
  if (mark) g.mark_output(res);
  if (out) *out = res;
  return g;
}

}  // namespace

TEST_CASE("compile: Conv shapes (stride, pad, dilation, groups, > 320 channels) predicted == simulated, values") {
  const ConvCase cases[] = {
      // N  C   H  W   M   kh kw sh sw dh dw pt pl pb pr grp bias relu
      {1, 3, 9, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true},        // 3x3 same padding, fused relu
      {1, 8, 10, 9, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true, false},     // stride 2
      {2, 4, 8, 8, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, false, false},      // dilation 2, batch 2
      {1, 5, 7, 6, 7, 2, 3, 1, 2, 1, 1, 0, 1, 1, 0, 1, true, false},       // asymmetric kernel/pads
      {1, 330, 4, 5, 340, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true},    // > 320 channels, not multiples
      {1, 400, 4, 4, 330, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, true, false},   // 1x1: no gather
      {1, 24, 8, 8, 40, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1, false, true},     // 1x1 stride 2: row subsample
      {1, 8, 8, 8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, true, false},      // groups
      {1, 8, 9, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 8, false, true},       // depthwise stride 2
  };
  uint32_t seed = 10;
  for (const ConvCase& c : cases) {
    INFO("C " << c.C << " M " << c.M << " k " << c.kh << "x" << c.kw << " s " << c.sh << " d " << c.dh << " group "
              << c.group);
    for (bool on_chip : {false, true}) {
      INFO((on_chip ? "taps read in place on the chip" : "im2col rows from the host"));
      const ir::Graph g = conv_graph(c, seed, true, nullptr, on_chip);
      const int64_t n = c.N * c.C * c.H * c.W;
      lpu::test::check_chip_against_reference(g, {random_f16(n, -1.f, 1.f, seed + 7)});
    }
    seed += 3;
  }
}

TEST_CASE("compile: depthwise convs run as one VXM pass of fma taps, values as the dense layer's, the faster kept") {
  const ConvCase cases[] = {
      // N  C   H  W   M   kh kw sh sw dh dw pt pl pb pr grp bias relu
      {2, 8, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8, true, true},          // batch 2, fused relu
      {1, 330, 5, 5, 330, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 330, true, false},  // 2 vectors a row, stride 2
      {1, 16, 8, 8, 16, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 16, false, false},    // dilation 2, no bias
      {1, 24, 7, 7, 24, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 24, true, false},     // 5x5: 25 taps
  };
  uint32_t seed = 900;
  for (const ConvCase& c : cases) {
    INFO("C " << c.C << " k " << c.kh << " s " << c.sh << " d " << c.dh << " N " << c.N);
    for (bool on_chip : {false, true}) {
      INFO((on_chip ? "input from a conv on the chip" : "input from the host"));
      const ir::Graph g = conv_graph(c, seed, true, nullptr, on_chip);
      const LoweredModel lm = lower_graph(g);
      const LoweredEltwise* E = nullptr;
      for (const LoweredEltwise& e : lm.eltwise)
        if (e.name == "conv") E = &e;
      REQUIRE(E != nullptr);
      int fmas = 0;
      for (const LoweredEltwise::Post& po : E->post) fmas += po.op == static_cast<int>(Opcode::Fma) && po.operand2 >= 0;
      CHECK(fmas == c.kh * c.kw - 1);
      CHECK(lm.layers.size() == (on_chip ? 1u : 0u));  // only the 1x1 conv in front is a layer
      const std::vector<float> x = random_f16(c.N * c.C * c.H * c.W, -1.f, 1.f, seed + 7);
      CompileOptions vxm_only;
      vxm_only.depthwise_trial = false;
      const uint64_t vxm = lpu::test::check_chip_against_reference(g, {x}, vxm_only);
      CompileOptions dense;
      dense.lower.vxm_depthwise = false;
      const uint64_t mxm = lpu::test::check_chip_against_reference(g, {x}, dense);
      WARN("depthwise C " << c.C << " k " << c.kh << ": " << vxm << " cycles on the VXM, " << mxm << " as a dense layer");
      // compile() tries both and keeps the faster (the VXM form on a tie).
      const CompileResult r = compile(g, *default_chip_config(), {});
      CHECK(r.program.predicted_cycles == std::min(vxm, mxm));
      CHECK(r.lower.vxm_depthwise == (vxm <= mxm));
    }
    seed += 5;
  }
  // A chip without the fused multiply-add keeps the dense layer.
  const ir::Graph g = conv_graph(cases[0], 950);
  auto nofma = lpu::test::chip_without_fma();
  const CompileResult r = compile(g, *nofma, {});
  CHECK_FALSE(r.lower.vxm_depthwise);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(r.program, *nofma, so).cycles == r.program.predicted_cycles);
}

TEST_CASE("compile: MaxPool, AveragePool, GlobalAveragePool on conv activations predicted == simulated, values") {
  struct P { ir::OpKind k; int64_t C, H, W, kh, kw, s, p; int64_t include_pad; };
  const P cases[] = {{ir::OpKind::MaxPool, 8, 8, 8, 2, 2, 2, 0, 0},    {ir::OpKind::MaxPool, 5, 9, 9, 3, 3, 2, 1, 0},
                     {ir::OpKind::MaxPool, 330, 5, 5, 3, 3, 1, 1, 0},  {ir::OpKind::AveragePool, 8, 7, 7, 3, 3, 1, 1, 0},
                     {ir::OpKind::AveragePool, 6, 7, 7, 3, 3, 2, 1, 1}, {ir::OpKind::GlobalAveragePool, 400, 7, 7, 0, 0, 0, 0, 0},
                     {ir::OpKind::GlobalAveragePool, 16, 3, 4, 0, 0, 0, 0, 0}};
  uint32_t seed = 50;
  for (const P& c : cases) {
    INFO(ir::op_kind_name(c.k) << " C " << c.C << " " << c.H << "x" << c.W << " k " << c.kh << " s " << c.s << " p "
                               << c.p << " include_pad " << c.include_pad);
    // A conv in front so the pool reads a conv activation (f16, [N, H, W, C] rows), batch 2.
    ir::TensorId y = ir::kNoTensor;
    ir::Graph h = conv_graph({2, c.C, c.H, c.W, c.C, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, true, false}, seed, false, &y);
    ir::Op op;
    ir::TensorId z;
    if (c.k == ir::OpKind::GlobalAveragePool) {
      z = h.add_tensor("P", ir::DType::F16, {2, c.C, 1, 1});
      op = make_op(c.k, "pool", {y}, {z});
    } else {
      const int64_t OH = (c.H + 2 * c.p - c.kh) / c.s + 1, OW = (c.W + 2 * c.p - c.kw) / c.s + 1;
      z = h.add_tensor("P", ir::DType::F16, {2, c.C, OH, OW});
      std::map<std::string, ir::AttrValue> at{{"kernel_shape", std::vector<int64_t>{c.kh, c.kw}},
                                              {"strides", std::vector<int64_t>{c.s, c.s}},
                                              {"pads", std::vector<int64_t>{c.p, c.p, c.p, c.p}},
                                              {"ceil_mode", int64_t{0}}};
      if (c.k == ir::OpKind::MaxPool) at["dilations"] = std::vector<int64_t>{1, 1};
      else at["count_include_pad"] = c.include_pad;
      op = make_op(c.k, "pool", {y}, {z}, at);
    }
    h.add_op(op);
    h.mark_output(z);
    lpu::test::check_chip_against_reference(h, {random_f16(2 * c.C * c.H * c.W, -1.f, 1.f, seed + 5)});
    seed += 11;
  }
}

TEST_CASE("compile: an op reading a conv activation in NCHW order is an InputError naming the node") {
  ConvCase c{1, 4, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false};
  ir::TensorId y = ir::kNoTensor;
  ir::Graph g = conv_graph(c, 3, false, &y);
  const ir::TensorId w = g.add_constant("Wm", ir::DType::F16, {6, 5}, f16_bytes(random_f16(30, -1, 1, 4)));
  const ir::TensorId z = g.add_tensor("Zm", ir::DType::F16, {1, 8, 6, 5});
  g.add_op(make_op(ir::OpKind::MatMul, "mm", {y, w}, {z}));
  g.mark_output(z);
  auto cfg = default_chip_config();
  CHECK_THROWS_WITH(compile(g, *cfg, CompileOptions{}),
                    Catch::Contains("node 'mm'") && Catch::Contains("conv activation 'Y'"));
}

TEST_CASE("compile: a conv after a division reads its input with the pad lanes cleared") {
  // The division's pad lanes hold 0 / 2 here, but a division may leave 0/0 = NaN there, which the
  // next conv's zero weight rows would not cancel: a VXM select zeroes them first
  // (ConvLowering::cleared; tests/compiler/test_onnx_activations.cpp has a case whose pads are inf).
  ConvCase c{1, 4, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false};
  ir::TensorId y2 = ir::kNoTensor;
  ir::Graph h = conv_graph(c, 5, false, &y2);
  const ir::TensorId d = h.add_constant("d", ir::DType::F16, {1}, f16_bytes({2.f}));
  const ir::TensorId q = h.add_tensor("Q", ir::DType::F16, h.tensor(y2).shape);
  h.add_op(make_op(ir::OpKind::Div, "div", {y2, d}, {q}));
  const ir::TensorId w3 = h.add_constant("W3", ir::DType::F16, {8, 8, 1, 1}, f16_bytes(random_f16(64, -1, 1, 6)));
  const ir::TensorId o = h.add_tensor("O", ir::DType::F16, h.tensor(y2).shape);
  h.add_op(make_op(ir::OpKind::Conv, "after_div", {q, w3}, {o},
                   {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"strides", std::vector<int64_t>{1, 1}},
                    {"dilations", std::vector<int64_t>{1, 1}}, {"pads", std::vector<int64_t>{0, 0, 0, 0}},
                    {"group", int64_t{1}}}));
  h.mark_output(o);
  int clears = 0;  // the division's pads are 0 / 2 here: the values alone would pass without the clear
  for (const LoweredEltwise& E : lower_graph(h).eltwise) clears += E.name.find(".padclear") != std::string::npos;
  CHECK(clears == 1);
  lpu::test::check_chip_against_reference(h, {random_f16(144, -1, 1, 7)});
}

TEST_CASE("compile: a per-image [N, C, 1, 1] activation scales a conv activation (squeeze-and-excitation)") {
  // y = conv(x) [2, 8, 5, 5]; s = sigmoid(GlobalAveragePool(y)) [2, 8, 1, 1]; z = y * s. s is stored
  // one row per image ([N, 1, 1, C]); each of z's 2 x 25 rows reads its own image's row of s.
  using lpu::test::conv_op;
  ir::Graph g;
  g.name = "se_scale";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {2, 4, 5, 5});
  const ir::TensorId w = lpu::test::conv_weight(g, "w", 8, 4, 3, 800);
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {2, 8, 5, 5});
  const ir::TensorId p = g.add_tensor("p", ir::DType::F16, {2, 8, 1, 1});
  const ir::TensorId s = g.add_tensor("s", ir::DType::F16, {2, 8, 1, 1});
  const ir::TensorId z = g.add_tensor("z", ir::DType::F16, {2, 8, 5, 5});
  g.add_op(conv_op("conv", {x, w}, y, 3, 1, 1));
  g.add_op(make_op(ir::OpKind::GlobalAveragePool, "pool", {y}, p));
  g.add_op(make_op(ir::OpKind::Sigmoid, "gate", {p}, s));
  g.add_op(make_op(ir::OpKind::Mul, "scale", {y, s}, z));
  g.mark_output(z);
  lpu::test::check_chip_against_reference(g, {random_f16(200, -1.f, 1.f, 801)});
}

TEST_CASE("compile: elementwise ops on conv activations (bias fold, NCHW-broadcast constants, residual) values") {
  // y = conv(x); a = y + b[M,1,1] (folded into the bias); s = sigmoid(a) * k[1,M,1,W] (a constant
  // varying over channels and columns, permuted to the chip's rows); out = s + relu(conv2(x)).
  const ConvCase c{1, 6, 5, 7, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, false};
  ir::TensorId y = ir::kNoTensor;
  ir::Graph g = conv_graph(c, 21, false, &y, true);
  const ir::Shape ys = g.tensor(y).shape;  // [1, 10, 5, 7]
  const ir::TensorId b = g.add_constant("b", ir::DType::F16, {10, 1, 1}, f16_bytes(random_f16(10, -0.5f, 0.5f, 22)));
  const ir::TensorId a = g.add_tensor("A", ir::DType::F16, ys);
  g.add_op(make_op(ir::OpKind::Add, "bias", {y, b}, {a}));
  const ir::TensorId s = g.add_tensor("S", ir::DType::F16, ys);
  g.add_op(make_op(ir::OpKind::Sigmoid, "sig", {a}, {s}));
  const ir::TensorId k = g.add_constant("k", ir::DType::F16, {1, 10, 1, 7}, f16_bytes(random_f16(70, 0.5f, 2.f, 23)));
  const ir::TensorId m = g.add_tensor("Mk", ir::DType::F16, ys);
  g.add_op(make_op(ir::OpKind::Mul, "scale", {s, k}, {m}));
  const float s2 = 1.f / std::sqrt(6.f);
  const ir::TensorId w2 = g.add_constant("W2", ir::DType::F16, {10, 6, 1, 1}, f16_bytes(random_f16(60, -s2, s2, 24)));
  const ir::TensorId y2 = g.add_tensor("Y2", ir::DType::F16, ys);
  g.add_op(make_op(ir::OpKind::Conv, "conv2", {g.find("X0"), w2}, {y2},
                   {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"strides", std::vector<int64_t>{1, 1}},
                    {"dilations", std::vector<int64_t>{1, 1}}, {"pads", std::vector<int64_t>{0, 0, 0, 0}},
                    {"group", int64_t{1}}}));
  const ir::TensorId r2 = g.add_tensor("R2", ir::DType::F16, ys);
  g.add_op(make_op(ir::OpKind::Relu, "relu2", {y2}, {r2}));
  const ir::TensorId out = g.add_tensor("Out", ir::DType::F16, ys);
  g.add_op(make_op(ir::OpKind::Add, "residual", {m, r2}, {out}));
  g.mark_output(out);
  const LoweredModel lm = lower_graph(g);
  CHECK(lm.layers.size() == 3);       // pre, conv, conv2 (bias Add and Relu fused)
  CHECK(lm.layers[1].bias.size() == 10);
  CHECK(lm.eltwise.size() == 3);      // sigmoid, scale, residual
  lpu::test::check_chip_against_reference(g, {random_f16(6 * 5 * 7, -1.f, 1.f, 25)});
}

// A 1x1 conv's X is stored NHWC, [H W, C] rows, not the IR's [1, C, H, W] (whose all-but-last dims
// give C H rows): LoweredModel::stored_shape says so for the host-laid input and for a conv's
// output, and the scheduler's layout decisions use those rows (schedule_detail.h product_rows;
// dense_step refuses a product whose planned rows differ from its placed X's). Before that,
// ResNet-50's stage-4 1x1 convs (49 rows) were planned as 3,584- and 14,336-row products.
TEST_CASE("conv lowering: a 1x1 conv's X is stored with H W rows, and its product is planned for them") {
  constexpr int64_t C = 16, H = 6, W = 5, N = 24;
  static_assert(C * H != H * W, "the IR's rows (C H) must differ from the stored rows (H W)");
  ir::Graph g;
  g.name = "two_1x1";
  auto conv = [&](const std::string& n, ir::TensorId x, int64_t ci, int64_t co, uint32_t seed) {
    const float s = 1.f / std::sqrt(static_cast<float>(ci));
    const ir::TensorId w = g.add_constant(n + ".w", ir::DType::F16, {co, ci, 1, 1},
                                          f16_bytes(random_f16(static_cast<size_t>(co * ci), -s, s, seed)));
    const ir::TensorId y = g.add_tensor(n + ".y", ir::DType::F16, {1, co, H, W});
    g.add_op(make_op(ir::OpKind::Conv, n, {x, w}, {y},
                     {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"strides", std::vector<int64_t>{1, 1}},
                      {"dilations", std::vector<int64_t>{1, 1}}, {"pads", std::vector<int64_t>{0, 0, 0, 0}},
                      {"group", int64_t{1}}}));
    return y;
  };
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {1, C, H, W});
  const ir::TensorId x0 = conv("pre", x, C, C, 31);
  g.mark_output(conv("a", x0, C, N, 32));
  const LoweredModel lm = lower_graph(g);
  REQUIRE(lm.layers.size() == 2);
  CHECK(stored_rows(lm.stored_shape(g, lm.layers[0].x)) == H * W);  // the input, laid out by the host
  CHECK(stored_rows(lm.stored_shape(g, x0)) == H * W);
  lpu::test::check_chip_against_reference(g, {random_f16(static_cast<size_t>(C * H * W), -1.f, 1.f, 33)});
}
