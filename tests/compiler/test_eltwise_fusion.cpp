// A Relu fused into the elementwise step that writes its input (LoweredEltwise::relu, lower_graph):
// ResNet's residual Add + Relu becomes one VXM pass. Checked: when the lowering fuses (only writer,
// only reader, not a graph output) and when it must not; fp16 values against the reference and
// predicted == simulated; int8 (calibrated), the fused step quantizing the next conv's input on
// chip, within the int8 bound.
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

// A residual block: X -> pre (1x1) = X0; A = relu(conv3x3(X0)); B = conv3x3(A); S = B + X0;
// R = relu(S); Y = head (1x1)(R). With `s_output`, S is also a graph output (no fusion allowed).
ir::Graph residual_block(int64_t C, int64_t H, int64_t W, bool s_output) {
  ir::Graph g;
  g.name = "residual_block";
  const ir::Shape sh{1, C, H, W};
  const ir::TensorId x = g.add_input("X", ir::DType::F16, sh);
  const ir::TensorId x0 = g.add_tensor("X0", ir::DType::F16, sh);
  g.add_op(conv_op("pre", {x, conv_weight(g, "W0", C, C, 1, 3)}, x0, 1, 1, 0));
  const ir::TensorId ya = g.add_tensor("Ya", ir::DType::F16, sh);
  g.add_op(conv_op("a", {x0, conv_weight(g, "Wa", C, C, 3, 4)}, ya, 3, 1, 1));
  const ir::TensorId ra = g.add_tensor("Ra", ir::DType::F16, sh);
  g.add_op(make_op(ir::OpKind::Relu, "relu_a", {ya}, {ra}));
  const ir::TensorId yb = g.add_tensor("Yb", ir::DType::F16, sh);
  g.add_op(conv_op("b", {ra, conv_weight(g, "Wb", C, C, 3, 5)}, yb, 3, 1, 1));
  const ir::TensorId s = g.add_tensor("S", ir::DType::F16, sh);
  g.add_op(make_op(ir::OpKind::Add, "residual", {yb, x0}, {s}));
  const ir::TensorId r = g.add_tensor("R", ir::DType::F16, sh);
  g.add_op(make_op(ir::OpKind::Relu, "relu_out", {s}, {r}));
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F32, sh);
  g.add_op(conv_op("head", {r, conv_weight(g, "Wh", C, C, 1, 6)}, y, 1, 1, 0));
  g.mark_output(y);
  if (s_output) g.mark_output(s);
  return g;
}

const LoweredEltwise* step_named(const LoweredModel& lm, const std::string& n) {
  for (const LoweredEltwise& E : lm.eltwise)
    if (E.name == n) return &E;
  return nullptr;
}

}  // namespace

TEST_CASE("eltwise fusion: residual Add + Relu is one VXM pass, values and predicted == simulated",
          "[conv][eltwise]") {
  const int64_t C = 24, H = 6, W = 7;
  const ir::Graph g = residual_block(C, H, W, false);
  // The Add as an elementwise step (compile() fuses it into conv a's epilogue instead:
  // passes/fuse_residual.h, tests/compiler/test_fuse_residual.cpp).
  LowerOptions steps_only;
  steps_only.fuse_residual_adds = false;
  const LoweredModel lm = lower_graph(g, default_chip_config()->vector_bytes(), steps_only);
  REQUIRE(lm.eltwise.size() == 1);  // relu_a went into conv a's epilogue, relu_out into the Add
  const LoweredEltwise* E = step_named(lm, "residual");
  REQUIRE(E);
  CHECK(E->relu);
  CHECK(E->y == g.find("R"));
  CHECK(E->y_shape == ir::Shape{1, H, W, C});  // the conv layout carries over to the Relu's output
  CHECK_FALSE(step_named(lm, "relu_out"));
  for (const LoweredLayer& L : lm.layers)
    if (L.name == "head") CHECK(L.x == g.find("R"));
  // Inputs span both signs so the Relu clips a good share of the sums.
  lpu::test::check_chip_against_reference(g, {random_f16(C * H * W, -1.f, 1.f, 41)});
}

TEST_CASE("eltwise fusion: no fusion when the Add's output has another reader or is a graph output",
          "[conv][eltwise]") {
  const ir::Graph g = residual_block(16, 4, 5, true);
  const LoweredModel lm = lower_graph(g);
  const LoweredEltwise* add = step_named(lm, "residual");
  const LoweredEltwise* relu = step_named(lm, "relu_out");
  REQUIRE(add);
  REQUIRE(relu);
  CHECK_FALSE(add->relu);
  CHECK(add->y == g.find("S"));
  CHECK(relu->y == g.find("R"));
  lpu::test::check_chip_against_reference(g, {random_f16(16 * 4 * 5, -1.f, 1.f, 42)});

  // Plain 2-D tensors: Relu(Mul(a, b)) fuses; a Relu of a graph input is a step of its own, and a
  // Relu of that Relu fuses into it (exact).
  ir::Graph h;
  h.name = "mul_relu";
  const ir::TensorId a = h.add_input("A", ir::DType::F16, {5, 330});
  const ir::TensorId b = h.add_input("B", ir::DType::F16, {5, 330});
  const ir::TensorId m = h.add_tensor("M", ir::DType::F16, {5, 330});
  h.add_op(make_op(ir::OpKind::Mul, "mul", {a, b}, {m}));
  const ir::TensorId r = h.add_tensor("R", ir::DType::F16, {5, 330});
  h.add_op(make_op(ir::OpKind::Relu, "relu", {m}, {r}));
  const ir::TensorId r2 = h.add_tensor("R2", ir::DType::F16, {5, 330});
  h.add_op(make_op(ir::OpKind::Relu, "relu_in", {a}, {r2}));
  const ir::TensorId r3 = h.add_tensor("R3", ir::DType::F16, {5, 330});
  h.add_op(make_op(ir::OpKind::Relu, "relu_relu", {r2}, {r3}));
  h.mark_output(r);
  h.mark_output(r3);
  const LoweredModel lh = lower_graph(h);
  REQUIRE(lh.eltwise.size() == 2);  // mul + relu, relu_in + relu_relu
  REQUIRE(step_named(lh, "mul"));
  CHECK(step_named(lh, "mul")->relu);
  CHECK(step_named(lh, "mul")->y == r);
  REQUIRE(step_named(lh, "relu_in"));
  CHECK(step_named(lh, "relu_in")->relu);
  CHECK(step_named(lh, "relu_in")->y == r3);
  lpu::test::check_chip_against_reference(h, {random_f16(5 * 330, -2.f, 2.f, 43), random_f16(5 * 330, -2.f, 2.f, 44)});
}

TEST_CASE("eltwise fusion: int8 residual block, the fused step quantizes the head's input on chip",
          "[conv][eltwise][int8]") {
  const int64_t C = 32, H = 6, W = 7;
  const ir::Graph g = residual_block(C, H, W, false);
  const lpu::test::Int8NchwRun t = lpu::test::run_int8_nchw(g, C, H, W, 51, 52, "pre");
  const QuantPlan& q = t.quant();
  CHECK(q.i8_tensors.count(g.find("R")));  // written i8 by the fused Add + Relu step
  for (size_t i = 0; i < t.lm.layers.size(); ++i)
    if (t.lm.layers[i].name == "head") CHECK(q.layers[i].int8);
  lpu::test::check_int8_steps_ok(t.check);
}
