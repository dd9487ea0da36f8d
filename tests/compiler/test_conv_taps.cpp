// Convolutions whose taps are read in place (compiler/passes/lower_conv.h, LoweredLayer::tap_rows):
// a conv reading a conv activation is one dense layer whose k-tiles read each tap's input row
// directly (a zero vector for padding), with no im2col tensor and no gather. Checked: the tap maps
// and k-tiles of the lowering, and, compiled int8 (calibrated), predicted == simulated and every
// int8 conv within the int8 bound on its own i8 input (compiler/reference/int8_step_check.h). The
// fp16 values of in-place convs (strides, pads, dilations, groups, > 320 channels) are checked by
// test_conv_lowering.cpp's "Conv shapes" case (its on-chip variants).
#include <catch2/catch.hpp>

#include <cmath>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/conv_build.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"
#include "tests/support/int8_nchw_run.h"
#include "tests/support/int8_verdicts.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;
using lpu::test::conv_op;
using lpu::test::conv_weight;

namespace {


// X [1, C, H, W] -> pre (1x1) -> a (3x3, pad 1, bias, relu) -> b (3x3, stride 2, pad 1) -> output.
// pre reads the graph input (host layout); a and b read conv activations, so their taps are read in
// place.
ir::Graph chain(int64_t C, int64_t H, int64_t W, int64_t M) {
  ir::Graph g;
  g.name = "conv_taps";
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {1, C, H, W});
  const ir::TensorId x0 = g.add_tensor("X0", ir::DType::F16, {1, C, H, W});
  g.add_op(conv_op("pre", {x, conv_weight(g, "W0", C, C, 1, 3)}, x0, 1, 1, 0));
  const ir::TensorId ya = g.add_tensor("Ya", ir::DType::F16, {1, M, H, W});
  const ir::TensorId ba = g.add_constant("Ba", ir::DType::F16, {M}, f16_bytes(random_f16(M, -0.3f, 0.3f, 5)));
  g.add_op(conv_op("a", {x0, conv_weight(g, "Wa", M, C, 3, 4), ba}, ya, 3, 1, 1));
  const ir::TensorId ra = g.add_tensor("Ra", ir::DType::F16, {1, M, H, W});
  g.add_op(make_op(ir::OpKind::Relu, "relu_a", {ya}, {ra}));
  const int64_t OH = (H - 1) / 2 + 1, OW = (W - 1) / 2 + 1;
  const ir::TensorId yb = g.add_tensor("Yb", ir::DType::F32, {1, M, OH, OW});
  g.add_op(conv_op("b", {ra, conv_weight(g, "Wb", M, M, 3, 6)}, yb, 3, 2, 1));
  g.mark_output(yb);
  return g;
}

const LoweredLayer& layer_named(const LoweredModel& lm, const std::string& n) {
  for (const LoweredLayer& L : lm.layers)
    if (L.name == n) return L;
  FAIL("no lowered layer " << n);
  return lm.layers.front();
}

}  // namespace

TEST_CASE("conv taps: a conv reading a conv activation reads its taps in place (no im2col gather)", "[conv]") {
  const int64_t C = 330, H = 5, W = 7, M = 12;  // C > 320: two chunks per tap
  const ir::Graph g = chain(C, H, W, M);
  const LoweredModel lm = lower_graph(g);
  CHECK(lm.gathers.empty());
  for (const LoweredStep& st : lm.steps) CHECK_FALSE(st.gather);
  const LoweredLayer& a = layer_named(lm, "a");
  const LoweredLayer& b = layer_named(lm, "b");
  CHECK(layer_named(lm, "pre").tap_rows.empty());  // 1x1 stride 1: reads the rows as they are
  REQUIRE(a.tap_rows.size() == 9);
  REQUIRE(b.tap_rows.size() == 9);
  CHECK(a.k_blocks == 9);
  CHECK(a.K == 9 * C);
  CHECK(a.x == g.find("X0"));
  for (const auto& m : a.tap_rows) CHECK(m.size() == static_cast<size_t>(H * W));
  // Tap t = i * 3 + j of output pixel (oh, ow) reads input pixel (oh - 1 + i, ow - 1 + j), -1 outside.
  CHECK(a.tap_rows[0][0] == -1);                       // (0, 0) tap (0, 0): (-1, -1)
  CHECK(a.tap_rows[4][0] == 0);                        // centre
  CHECK(a.tap_rows[8][0] == 1 * W + 1);                // (1, 1)
  CHECK(a.tap_rows[2][2 * W + 6] == -1);              // (2, 6) tap (0, 2): column 7 is outside
  CHECK(a.tap_rows[6][3 * W + 2] == 4 * W + 1);        // (3, 2) tap (2, 0): (4, 1)
  CHECK(a.tap_rows[7][4 * W + 3] == -1);               // (4, 3) tap (2, 1): row 5 is outside
  // Stride 2: output (1, 2) tap (1, 2) reads (2, 5).
  const int64_t OW = (W - 1) / 2 + 1;
  CHECK(b.tap_rows.at(5).at(static_cast<size_t>(1 * OW + 2)) == 2 * W + 5);
  int64_t pads = 0;
  for (const auto& m : a.tap_rows)
    for (int64_t r : m) pads += r < 0 ? 1 : 0;
  CHECK(pads == 2 * 3 * W + 2 * 3 * H - 4);  // the taps past each border, corners counted once per tap
  // k-tiles: tap t's chunk c reads chunk c of its row, weight rows [0, min(320, C - 320 c)).
  const uint32_t lanes = default_chip_config()->vector_bytes();
  const std::vector<MatmulKTile> kt = conv_tap_ktiles(a, lanes);
  REQUIRE(kt.size() == 18);
  CHECK(kt[0].rows == &a.tap_rows[0]);
  CHECK(kt[0].x_chunk == 0);
  CHECK(kt[0].w_hi == lanes);
  CHECK(kt[1].rows == &a.tap_rows[0]);
  CHECK(kt[1].x_chunk == 1);
  CHECK(kt[1].w_hi == C - lanes);
  CHECK(kt[17].rows == &a.tap_rows[8]);
  // The expanded weight: tap t's chunk c is tile t * 2 + c; its rows past C are zero.
  std::vector<float> w;
  CHECK(expand_conv_weight(a, lanes, &w) == 9 * 2 * lanes);
  CHECK(w[static_cast<size_t>((1 * 2 * lanes + lanes + (C - lanes)) * M)] == 0.f);  // tap 1, chunk 1, row C - 320
  CHECK(w[static_cast<size_t>((1 * 2 * lanes) * M)] == a.w[static_cast<size_t>(1 * C * M)]);
}

TEST_CASE("conv taps: int8 convs read in place, calibrated: predicted == simulated, each within the int8 bound",
          "[conv][int8]") {
  const int64_t C = 40, H = 8, W = 9, M = 24;
  const ir::Graph g = chain(C, H, W, M);
  auto cfg = default_chip_config();
  // pre stays fp16 (a host-quantized input read through the host layout is not what is tested here);
  // a reads a quantized copy of pre's output, b reads a's i8 output.
  const lpu::test::Int8NchwRun t = lpu::test::run_int8_nchw(g, C, H, W, 31, 32, "pre");
  const QuantPlan& q = t.quant();
  int int8_convs = 0;
  // (pre, fp16 by the filter, writes a's input column-packed: its layers read taps too, "Packed taps")
  for (size_t i = 0; i < t.lm.layers.size(); ++i)
    if (!t.lm.layers[i].tap_rows.empty() && t.lm.layers[i].name.rfind("pre", 0) != 0) {
      CHECK(q.layers[i].int8);
      int8_convs += q.layers[i].int8 ? 1 : 0;
    }
  CHECK(int8_convs == 2);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(t.cr.program, *cfg, so).cycles == t.cr.program.predicted_cycles);
  lpu::test::require_int8_steps_ok(t.check, 2);
  // Without keep_intermediates (SRAM reuse) the same plan gives the same output bytes.
  CompileOptions lean = t.options;
  lean.keep_intermediates = false;
  lean.quant = t.cr.quant;
  const CompileResult crl = compile(g, *cfg, lean);
  sim::SimOptions sl;
  sl.mode = sim::Mode::Functional;
  const std::vector<float> x = random_f16(C * H * W, -1.f, 1.f, 32);
  bind_input(crl.program, "X", f16_bytes(to_chip_input(t.lm.inputs[0], x)), &sl.inputs);
  const sim::SimResult rl = sim::simulate(crl.program, *cfg, sl);
  CHECK(rl.cycles == crl.program.predicted_cycles);
  CHECK(gather_output(crl.program, "Yb", rl.outputs) == gather_output(t.cr.program, "Yb", t.run.outputs));
}

TEST_CASE("conv taps: a graph input read by two convs is read in place (NHWC), values and predicted == simulated",
          "[conv]") {
  // X has two readers, so the host lays it out NHWC (not as one conv's im2col rows) and the 3x3
  // conv reads its taps from it in place, padding from the zero vector.
  const int64_t C = 24, H = 6, W = 7, M = 16;
  ir::Graph g;
  g.name = "conv_taps_input";
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {1, C, H, W});
  const ir::TensorId ya = g.add_tensor("Ya", ir::DType::F16, {1, M, H, W});
  g.add_op(conv_op("a", {x, conv_weight(g, "Wa", M, C, 3, 8)}, ya, 3, 1, 1));
  const ir::TensorId yb = g.add_tensor("Yb", ir::DType::F16, {1, M, H, W});
  g.add_op(conv_op("b", {x, conv_weight(g, "Wb", M, C, 1, 9)}, yb, 1, 1, 0));
  const ir::TensorId out = g.add_tensor("Out", ir::DType::F32, {1, M, H, W});
  g.add_op(make_op(ir::OpKind::Add, "sum", {ya, yb}, {out}));
  g.mark_output(out);
  const LoweredModel lm = lower_graph(g);
  REQUIRE(lm.inputs.size() == 1);
  CHECK(lm.inputs[0].shape == std::vector<int64_t>{1, H, W, C});  // NHWC, not im2col rows
  CHECK(lm.gathers.empty());
  CHECK(layer_named(lm, "a").tap_rows.size() == 9);
  CHECK(layer_named(lm, "a").x == x);
  lpu::test::check_chip_against_reference(g, {random_f16(C * H * W, -1.f, 1.f, 41)});
}
