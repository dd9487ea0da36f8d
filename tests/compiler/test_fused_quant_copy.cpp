// A quantized copy fused into the elementwise step that writes its source (Int8Options::fuse_copies,
// LoweredEltwise::y2): ResNet's block output R = relu(conv + skip) is read in fp16 by the next
// residual Add and as i8 by the next conv; one VXM pass writes both forms. Checked: the lowering
// (the copy is the producer's second output, no step of its own; not fused when the flag is off),
// the i8 copy byte for byte equal to the separate copy step's and to rne(R1 / scale), every other
// output equal, and predicted == simulated for both programs.
#include <catch2/catch.hpp>

#include <cmath>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/chip_stored.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/conv_build.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;
using lpu::test::conv_op;
using lpu::test::conv_weight;

namespace {

// Two residual blocks: X0 = pre(X); R1 = relu(a(X0) + X0); R2 = relu(b(R1) + R1); Y = head(R2).
// R1 is read by conv b (int8: an i8 copy) and by the second Add (fp16).
ir::Graph two_blocks(int64_t C, int64_t H, int64_t W) {
  ir::Graph g;
  g.name = "two_blocks";
  const ir::Shape sh{1, C, H, W};
  const ir::TensorId x = g.add_input("X", ir::DType::F16, sh);
  auto t = [&](const std::string& n) { return g.add_tensor(n, ir::DType::F16, sh); };
  const ir::TensorId x0 = t("X0"), ya = t("Ya"), s1 = t("S1"), r1 = t("R1"), yb = t("Yb"), s2 = t("S2"), r2 = t("R2");
  g.add_op(conv_op("pre", {x, conv_weight(g, "W0", C, C, 1, 3)}, x0, 1, 1, 0));
  g.add_op(conv_op("a", {x0, conv_weight(g, "Wa", C, C, 1, 4)}, ya, 1, 1, 0));
  g.add_op(make_op(ir::OpKind::Add, "add1", {ya, x0}, {s1}));
  g.add_op(make_op(ir::OpKind::Relu, "relu1", {s1}, {r1}));
  g.add_op(conv_op("b", {r1, conv_weight(g, "Wb", C, C, 1, 5)}, yb, 1, 1, 0));
  g.add_op(make_op(ir::OpKind::Add, "add2", {yb, r1}, {s2}));
  g.add_op(make_op(ir::OpKind::Relu, "relu2", {s2}, {r2}));
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F32, sh);
  g.add_op(conv_op("head", {r2, conv_weight(g, "Wh", C, C, 1, 6)}, y, 1, 1, 0));
  g.mark_output(y);
  return g;
}

struct Run {
  CompileResult cr;
  LoweredModel lm;
  sim::SimResult timing, functional;
};

Run compile_and_run(const ir::Graph& g, const CompileOptions& co, const ref::Value& x) {
  auto cfg = default_chip_config();
  Run o;
  o.cr = compile(g, *cfg, co);
  REQUIRE(o.cr.quant);
  o.lm = lower_graph(g, cfg->vector_bytes(), o.cr.lower);
  apply_quant_copies(g, *o.cr.quant, &o.lm);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  o.timing = sim::simulate(o.cr.program, *cfg, so);
  so.mode = sim::Mode::Functional;
  bind_input(o.cr.program, "X", f16_bytes(to_chip_input(o.lm.inputs[0], x.f)), &so.inputs);
  o.functional = sim::simulate(o.cr.program, *cfg, so);
  return o;
}

}  // namespace

TEST_CASE("fused quant copy: the block output's i8 copy is written by the residual Add's pass, byte-identical",
          "[int8][copies][eltwise]") {
  const int64_t C = 48, H = 7, W = 9;
  const ir::Graph g = two_blocks(C, H, W);
  auto value = [&](uint32_t seed) {
    return ref::Value::floats({1, C, H, W}, random_f16(C * H * W, -1.f, 1.f, seed), ir::DType::F16);
  };
  CompileOptions co;
  co.precision = Precision::INT8;
  co.int8.onchip_quantize = true;
  // "pre" stays fp16, so X reaches the chip as f16 (not quantized by the host).
  co.int8.layer_filter = [](const std::string& op, const std::string&) { return op != "pre"; };
  co.calibration = {{value(61)}, {value(62)}};
  co.keep_intermediates = true;
  // The Adds as elementwise steps (fused into the convs' epilogues by default, with the copy then
  // the conv's second output: tests/compiler/test_fuse_residual.cpp).
  co.lower.fuse_residual_adds = false;
  const ref::Value x = value(63);
  const Run fused = compile_and_run(g, co, x);
  const QuantPlan& q = *fused.cr.quant;
  REQUIRE(q.fuse_copies);
  // Two copies: X0 (written by the fp16 conv "pre", read by conv a as i8 and by add1 in fp16: the
  // copy is pre's second output, LoweredLayer::y2) and R1 (read by conv b as i8 and by add2 in
  // fp16; written by add1 only).
  REQUIRE(q.copies.size() == 2);
  const QuantCopy& c = g.tensor(q.copies[0].src).name == "R1" ? q.copies[0] : q.copies[1];
  CHECK(g.tensor(c.src).name == "R1");
  // Fused: the copy is add1's second output, no step of its own; conv b reads it.
  const LoweredModel lm0 = lower_graph(g, default_chip_config()->vector_bytes(), co.lower);
  CHECK(fused.lm.steps.size() == lm0.steps.size());  // both copies written by their producers
  const QuantCopy& c0 = &c == &q.copies[0] ? q.copies[1] : q.copies[0];
  for (const LoweredLayer& L : fused.lm.layers) CHECK((L.y2 == c0.copy) == (L.name == "pre"));
  int producers = 0;
  for (const LoweredEltwise& E : fused.lm.eltwise) {
    CHECK(E.y != c.copy);
    if (E.y2 == c.copy) {
      ++producers;
      CHECK(E.name == "add1");
      CHECK(E.relu);
      CHECK(E.y == c.src);
    }
  }
  CHECK(producers == 1);
  for (const LoweredLayer& L : fused.lm.layers)
    if (L.name == "b") CHECK(L.x == c.copy);

  // The same plan with fuse_copies off: a separate copy step reading R1.
  auto plan = std::make_shared<QuantPlan>(q);
  plan->fuse_copies = false;
  CompileOptions sep_co = co;
  sep_co.quant = plan;
  const Run sep = compile_and_run(g, sep_co, x);
  CHECK(sep.lm.steps.size() == lm0.steps.size() + 2);
  for (const LoweredEltwise& E : sep.lm.eltwise) CHECK(E.y2 == ir::kNoTensor);

  // Predicted == simulated (timing and functional) for both programs.
  CHECK(fused.timing.cycles == fused.cr.program.predicted_cycles);
  CHECK(fused.functional.cycles == fused.cr.program.predicted_cycles);
  CHECK(sep.timing.cycles == sep.cr.program.predicted_cycles);
  CHECK(sep.functional.cycles == sep.cr.program.predicted_cycles);
  // Every tensor both programs list (the copy, R1, the int8 layers' outputs, Y) byte for byte equal.
  const auto& fo = fused.functional.outputs;
  const auto& so = sep.functional.outputs;
  REQUIRE(fo.count(c.name));
  REQUIRE(so.count(c.name));
  CHECK(fo.at(c.name) == so.at(c.name));
  int compared = 0;
  for (const auto& [name, bytes] : so)
    if (fo.count(name)) {
      INFO(name);
      CHECK(fo.at(name) == bytes);
      ++compared;
    }
  CHECK(compared >= 5);  // X0 / R1 / copy / R2 / Y at least (names as the programs list them)
  // Independently of the separate step: the copy is R1's stored f16 values quantized with the
  // copy's scale (rne, saturating), element for element, and not mostly zero.
  const float scale = q.i8_tensors.at(c.copy);
  const ChipStored r1 = chip_stored(fused.cr.program, "R1", fo, 1.0);
  const ChipStored cp = chip_stored(fused.cr.program, c.name, fo, scale);
  REQUIRE(r1.v.size() == cp.v.size());
  REQUIRE(cp.dtype == DType::I8);
  size_t bad = 0, nonzero = 0;
  for (size_t i = 0; i < r1.v.size(); ++i) {
    const double want = static_cast<double>(quantize_i8(r1.v[i], scale)) * scale;
    bad += cp.v[i] == want ? 0 : 1;
    nonzero += cp.v[i] != 0 ? 1 : 0;
  }
  CHECK(bad == 0);
  CHECK(nonzero > r1.v.size() / 4);
}
