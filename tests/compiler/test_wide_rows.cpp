// Row blocks of the X and Y of wide install-bound int8 layers (passes/schedule.cpp `wide_x`,
// docs/compiler.md "The matmul kernel"): a 128-row LayerNorm output feeding an int8 layer of 3
// column tiles, whose 128-row output feeds a second int8 layer, is stored in one row block per MXM
// plane (32 rows; the default was 64, two blocks) so four planes reading all of its rows get four
// read ports. Checked: the stored tensors' row blocks, predicted == simulated, and every step within
// its bound on the chip's own values (verify_int8_steps, as `lpusim check --precision int8`).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/f16_data.h"
#include "tests/support/int8_verdicts.h"
#include "tests/support/ir_build.h"
#include "tests/support/layer_norm_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

constexpr int64_t R = 128, D = 640, F = 960;

// out = relu(LayerNorm(x) . W1 + b1) . W2 (f32), x [R, D].
ir::Graph wide_block() {
  ir::Graph g;
  g.name = "wide_rows";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {R, D});
  const ir::TensorId h = lpu::test::add_layer_norm(g, x, R, D);
  const float s1 = 1.0f / std::sqrt(static_cast<float>(D)), s2 = 1.0f / std::sqrt(static_cast<float>(F));
  const ir::TensorId w1 = g.add_constant("W1", ir::DType::F16, {D, F}, f16_bytes(random_f16(D * F, -s1, s1, 11)));
  const ir::TensorId b1 = g.add_constant("b1", ir::DType::F16, {F}, f16_bytes(random_f16(F, -0.2f, 0.2f, 12)));
  const ir::TensorId m1 = g.add_tensor("m1", ir::DType::F16, {R, F});
  g.add_op(make_op(ir::OpKind::MatMul, "matmul_1", {h, w1}, m1));
  const ir::TensorId y1 = g.add_tensor("y1", ir::DType::F16, {R, F});
  g.add_op(make_op(ir::OpKind::Add, "bias_1", {m1, b1}, y1));
  const ir::TensorId a1 = g.add_tensor("a1", ir::DType::F16, {R, F});
  g.add_op(make_op(ir::OpKind::Relu, "relu_1", {y1}, a1));
  const ir::TensorId w2 = g.add_constant("W2", ir::DType::F16, {F, D}, f16_bytes(random_f16(F * D, -s2, s2, 13)));
  const ir::TensorId out = g.add_tensor("out", ir::DType::F32, {R, D});
  g.add_op(make_op(ir::OpKind::MatMul, "matmul_2", {a1, w2}, out));
  g.mark_output(out);
  return g;
}

ref::Value value_of(const std::vector<float>& x) { return ref::Value::floats({R, D}, x, ir::DType::F16); }

}  // namespace

TEST_CASE("wide rows: X and Y of a 128-row int8 layer of several column tiles have a row block per plane",
          "[matmul][int8]") {
  auto chip = default_chip_config();
  const ir::Graph g = wide_block();
  const std::vector<float> x = random_f16(R * D, -2.f, 3.f, 21);
  CompileOptions co;
  co.precision = Precision::INT8;
  co.int8.onchip_quantize = true;
  co.calibration.push_back({value_of(random_f16(R * D, -2.f, 3.f, 22))});
  co.calibration.push_back({value_of(x)});
  co.keep_intermediates = true;
  co.tune_part_rows.clear();  // the default layout's row blocks are counted below (no layout tuning)
  const CompileResult cr = compile(g, *chip, co);
  REQUIRE(cr.quant);
  REQUIRE(cr.quant->int8_layers == 2);
  // Row blocks of the layers' stored X and Y (a tensor of several row blocks appears as
  // NAME.rows_R0_R1): h (matmul_1's i8 X), a1 (its Y after the epilogue, matmul_2's X), out
  // (matmul_2's Y). The graph input x and the LayerNorm's own tensors keep 64-row blocks.
  const size_t planes = chip->slices_of(SliceKind::MXM).size() * chip->mxm_planes;
  auto blocks = [&](const std::string& base) {
    size_t n = 0;
    for (const TensorDesc& e : cr.program.tensors) n += e.name.rfind(base + ".rows_", 0) == 0 ? 1 : 0;
    return n;
  };
  for (const char* t : {"h", "a1", "out"}) {
    INFO(t << ": " << blocks(t) << " row blocks");
    CHECK(blocks(t) >= planes);  // 2 (64-row blocks) before
  }
  CHECK(blocks("x") == 2);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, *chip, so).cycles == cr.program.predicted_cycles);
  so.mode = sim::Mode::Functional;
  bind_input(cr.program, "x", f16_bytes(x), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *chip, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  LoweredModel lm = lower_graph(g);
  apply_quant_copies(g, *cr.quant, &lm);
  const Int8StepCheck ck = verify_int8_steps(g, lm, *cr.quant, {value_of(x)}, cr.program, r.outputs);
  REQUIRE(ck.layers.size() == 2);
  lpu::test::check_int8_steps_ok(ck);
}
