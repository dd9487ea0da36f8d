// Residual Adds fused into the epilogue of the product writing one operand (passes/fuse_residual.h,
// LoweredLayer::residual, MatmulSpec::residual). Checked on a ResNet-style stage of two blocks (a
// downsample block: both Add operands are convs, and an identity block): the branch order, which
// product fuses and when nothing may fuse; fp16 programs byte-identical to the unfused lowering's, with fewer steps
// and SRAM reads and writes, predicted == simulated; int8 (calibrated): the block output's i8 copy written by
// the fused conv's epilogue (LoweredLayer::y2), an i8-only block output quantized from the f16
// sum, every int8 layer (the residual in its bound) and step within its bound.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/chip_stored.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/chip_variant.h"
#include "tests/support/conv_build.h"
#include "tests/support/f16_data.h"
#include "tests/support/int8_nchw_run.h"
#include "tests/support/int8_verdicts.h"
#include "tests/support/lowered_lookup.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::layer_named;
using lpu::test::conv_op;
using lpu::test::conv_weight;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

// X -> pre (1x1) = X0; R1 = relu(a(X0) + d(X0)) with a 3x3 and d 1x1 (the downsample block); an
// identity block R2 = relu(B(R1) + R1); Y = head(R2), an f32 output. B is one 1x1 conv b reading
// R1 (two_blocks: b reads R1 as X and adds it), or, as ResNet's (resnet_blocks), c2(relu(c1(R1)))
// with 1x1 c1, c2 (R1 is c1's X and c2's residual: separate layers). With `s1_output`, the first
// Add's output S1 is a graph output too (then it may not fuse).
ir::Graph blocks(int64_t C, int64_t H, int64_t W, bool s1_output, bool resnet) {
  ir::Graph g;
  g.name = resnet ? "resnet_blocks" : "two_blocks";
  const ir::Shape sh{1, C, H, W};
  const ir::TensorId x = g.add_input("X", ir::DType::F16, sh);
  auto t = [&](const std::string& n) { return g.add_tensor(n, ir::DType::F16, sh); };
  const ir::TensorId x0 = t("X0"), ya = t("Ya"), yd = t("Yd"), s1 = t("S1"), r1 = t("R1"), yb = t("Yb"), s2 = t("S2"),
                     r2 = t("R2");
  auto bias = [&](const std::string& n, uint32_t seed) {
    return g.add_constant(n, ir::DType::F16, {C}, f16_bytes(random_f16(C, -0.3f, 0.3f, seed)));
  };
  g.add_op(conv_op("pre", {x, conv_weight(g, "W0", C, C, 1, 3)}, x0, 1, 1, 0));
  g.add_op(conv_op("a", {x0, conv_weight(g, "Wa", C, C, 3, 4), bias("Ba", 14)}, ya, 3, 1, 1));
  g.add_op(conv_op("d", {x0, conv_weight(g, "Wd", C, C, 1, 5), bias("Bd", 15)}, yd, 1, 1, 0));
  g.add_op(make_op(ir::OpKind::Add, "add1", {ya, yd}, {s1}));
  g.add_op(make_op(ir::OpKind::Relu, "relu1", {s1}, {r1}));
  if (resnet) {
    const ir::TensorId c1 = t("C1"), y1 = t("Y1");
    g.add_op(conv_op("c1", {r1, conv_weight(g, "W1", C, C, 1, 6), bias("B1", 16)}, c1, 1, 1, 0));
    g.add_op(make_op(ir::OpKind::Relu, "relu_c1", {c1}, {y1}));
    g.add_op(conv_op("c2", {y1, conv_weight(g, "W2", C, C, 1, 8), bias("B2", 18)}, yb, 1, 1, 0));
  } else {
    g.add_op(conv_op("b", {r1, conv_weight(g, "Wb", C, C, 1, 6), bias("Bb", 16)}, yb, 1, 1, 0));
  }
  g.add_op(make_op(ir::OpKind::Add, "add2", {yb, r1}, {s2}));
  g.add_op(make_op(ir::OpKind::Relu, "relu2", {s2}, {r2}));
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F32, sh);
  g.add_op(conv_op("head", {r2, conv_weight(g, "Wh", C, C, 1, 7)}, y, 1, 1, 0));
  g.mark_output(y);
  if (s1_output) g.mark_output(s1);
  return g;
}
ir::Graph two_blocks(int64_t C, int64_t H, int64_t W, bool s1_output = false) { return blocks(C, H, W, s1_output, false); }
ir::Graph resnet_blocks(int64_t C, int64_t H, int64_t W) { return blocks(C, H, W, false, true); }

LowerOptions unfused() {
  LowerOptions o;
  o.fuse_residual_adds = false;
  return o;
}

}  // namespace

TEST_CASE("fuse residual: the branch written later moves first, the other product takes the Add with the Relu, "
          "nothing fuses into a shared value",
          "[conv][eltwise][residual]") {
  const ir::Graph g = two_blocks(24, 5, 6);
  const LoweredModel lm = lower_graph(g);
  CHECK(lm.eltwise.empty());  // both Adds (and their Relus) are epilogues now
  const LoweredModel un = lower_graph(g, default_chip_config()->vector_bytes(), unfused());
  CHECK(un.eltwise.size() == 2);
  CHECK(lm.steps.size() + 2 == un.steps.size());
  // add1 = a + d: d (the shortcut, graph order after a) reads only X0, so the branch order moves
  // it before a (fuse_residual.h "Branch order"); a is then the later product and its epilogue
  // adds d's stored result. Unfused, the graph's order stays.
  auto step_of = [](const LoweredModel& m, const std::string& name) {
    for (size_t si = 0; si < m.steps.size(); ++si)
      if (is_layer(m.steps[si]) && m.layers[m.steps[si].index].name == name)
        return static_cast<int>(si);
    return -1;
  };
  CHECK(step_of(lm, "pre") < step_of(lm, "d"));
  CHECK(step_of(lm, "d") < step_of(lm, "a"));
  CHECK(step_of(un, "a") < step_of(un, "d"));
  const LoweredLayer* a = layer_named(lm, "a");
  const LoweredLayer* d = layer_named(lm, "d");
  const LoweredLayer* b = layer_named(lm, "b");
  REQUIRE(a);
  REQUIRE(d);
  REQUIRE(b);
  CHECK(d->residual == ir::kNoTensor);
  CHECK(d->y == g.find("Yd"));
  CHECK(a->residual == g.find("Yd"));
  CHECK(a->y == g.find("R1"));
  CHECK(a->relu);
  CHECK(a->y_shape == ir::Shape{1, 5, 6, 24});  // the conv layout (lower_conv.h)
  // add2 = b + R1: R1 is read by b too, so it stays stored; b's epilogue adds it.
  CHECK(b->residual == g.find("R1"));
  CHECK(b->y == g.find("R2"));
  CHECK(b->relu);
  // step_reads lists the residual (SRAM release, scheduling order).
  for (const LoweredStep& st : lm.steps)
    if (st.dense && lm.layers[st.index].name == "a") {
      const std::vector<ir::TensorId> r = step_reads(lm, st);
      CHECK(std::find(r.begin(), r.end(), g.find("Yd")) != r.end());
    }

  // S1 also a graph output: add1 stays a step (its sum must be stored as S1); add2 still fuses.
  const ir::Graph g2 = two_blocks(24, 5, 6, true);
  const LoweredModel l2 = lower_graph(g2);
  REQUIRE(l2.eltwise.size() == 2);  // add1, and relu1 as a step of its own (S1 has two readers)
  CHECK(layer_named(l2, "d")->residual == ir::kNoTensor);
  CHECK(layer_named(l2, "a")->residual == ir::kNoTensor);
  CHECK(layer_named(l2, "b")->residual == g2.find("R1"));
  lpu::test::check_chip_against_reference(g2, {random_f16(24 * 5 * 6, -1.f, 1.f, 20)});
}

TEST_CASE("fuse residual: fp16 values byte-identical to the unfused steps, fewer SRAM accesses, predicted == simulated",
          "[conv][eltwise][residual]") {
  const int64_t C = 40, H = 6, W = 7;
  const ir::Graph g = two_blocks(C, H, W);
  auto cfg = default_chip_config();
  const std::vector<float> x = random_f16(C * H * W, -1.f, 1.f, 21);
  struct Out {
    CompileResult cr;
    sim::SimResult run;
  };
  auto run = [&](const LowerOptions& lo) {
    Out o;
    CompileOptions co;
    co.lower = lo;
    co.keep_intermediates = true;  // R1 and the other block tensors listed as outputs
    o.cr = compile(g, *cfg, co);
    const LoweredModel lm = lower_graph(g, cfg->vector_bytes(), lo);
    sim::SimOptions so;
    so.mode = sim::Mode::Functional;
    bind_input(o.cr.program, "X", f16_bytes(to_chip_input(lm.inputs[0], x)), &so.inputs);
    o.run = sim::simulate(o.cr.program, *cfg, so);
    CHECK(o.run.cycles == o.cr.program.predicted_cycles);
    return o;
  };
  const Out f = run(LowerOptions{});
  const Out u = run(unfused());
  // The tensors both programs store, byte for byte (the fused program no longer stores Ya or Yb).
  int compared = 0;
  for (const char* name : {"X0", "Yd", "R1", "R2", "Y"}) {
    INFO(name);
    const std::vector<uint8_t> fb = gather_output(f.cr.program, name, f.run.outputs);
    REQUIRE_FALSE(fb.empty());
    CHECK(fb == gather_output(u.cr.program, name, u.run.outputs));
    ++compared;
  }
  CHECK(compared == 5);
  bool lists_ya = false, lists_yb = false;
  for (const TensorDesc& d : f.cr.program.tensors) {
    lists_ya = lists_ya || d.name == "Ya";
    lists_yb = lists_yb || d.name == "Yb";
  }
  CHECK_FALSE(lists_ya);
  CHECK_FALSE(lists_yb);
  // Two elementwise passes fewer: each Add read two f16 vectors and wrote one per vector; fused,
  // the epilogue reads R and issues the same add and relu (as many VXM ops), and the product's
  // own result is never written.
  CHECK(f.cr.spans.size() + 2 == u.cr.spans.size());
  CHECK(f.cr.stats.vxm == u.cr.stats.vxm);
  CHECK(f.cr.stats.writes < u.cr.stats.writes);
  CHECK(f.cr.stats.reads < u.cr.stats.reads);
  WARN("two blocks fp16: fused " << f.cr.program.predicted_cycles << " cycles (" << f.cr.stats.vxm << " VXM ops), unfused "
                                 << u.cr.program.predicted_cycles << " (" << u.cr.stats.vxm << ")");
  lpu::test::check_chip_against_reference(g, {x});
}

TEST_CASE("fuse residual: int8, the block output's copy from the conv's epilogue, i8 from the f16 sum, within bounds",
          "[conv][eltwise][residual][int8]") {
  const int64_t C = 40, H = 6, W = 7;
  const ir::Graph g = two_blocks(C, H, W);
  const lpu::test::Int8NchwRun t = lpu::test::run_int8_nchw(g, C, H, W, 31, 32, "pre");
  const QuantPlan& q = t.quant();
  const LoweredLayer* a = layer_named(t.lm, "a");
  const LoweredLayer* b = layer_named(t.lm, "b");
  REQUIRE(a);
  REQUIRE(b);
  for (size_t i = 0; i < t.lm.layers.size(); ++i)
    if (t.lm.layers[i].name != "pre") CHECK(q.layers[i].int8);
  // R1 is read in fp16 (b's residual) and as i8 (b's X): f16 in SRAM, its copy a's second output
  // (a writes R1: the shortcut d runs first, fuse_residual.h "Branch order").
  CHECK_FALSE(q.i8_tensors.count(g.find("R1")));
  REQUIRE(a->y2 != ir::kNoTensor);
  CHECK(b->x == a->y2);
  CHECK(q.i8_tensors.count(a->y2));
  // R2 is read by head only: b writes it i8, from the f16 sum (its scale rows are not folded).
  CHECK(q.i8_tensors.count(g.find("R2")));
  for (size_t i = 0; i < t.lm.layers.size(); ++i)
    if (t.lm.layers[i].name == "b") {
      const float want = q.layers[i].x_scale * q.layers[i].w_scale[0];
      CHECK(q.layers[i].epi_scale[0] == want);
    }
  // The copy holds R1's stored f16 values quantized with its scale (rne, saturating).
  const std::string copy_name = t.lm.tensor(g, a->y2).name;
  const float s = q.i8_tensors.at(a->y2);
  const ChipStored r1 = chip_stored(t.cr.program, "R1", t.run.outputs, 1.0);
  const ChipStored cp = chip_stored(t.cr.program, copy_name, t.run.outputs, s);
  REQUIRE(r1.v.size() == cp.v.size());
  size_t bad = 0, nonzero = 0;
  for (size_t i = 0; i < r1.v.size(); ++i) {
    bad += cp.v[i] == static_cast<double>(quantize_i8(r1.v[i], s)) * s ? 0 : 1;
    nonzero += cp.v[i] != 0 ? 1 : 0;
  }
  CHECK(bad == 0);
  CHECK(nonzero > r1.v.size() / 4);
  // Every int8 layer (a and b with their residual) and every step within its bound.
  lpu::test::require_int8_steps_ok(t.check, 4);
}

TEST_CASE("fuse residual: int8 residuals read i8 (no f16 block output, no copy), within bounds, on and off",
          "[conv][eltwise][residual][int8]") {
  const int64_t C = 40, H = 6, W = 7;
  const ir::Graph g = resnet_blocks(C, H, W);
  const ir::TensorId yd = g.find("Yd"), r1 = g.find("R1");
  for (const auto& chip : {default_chip_config(), lpu::test::chip_without_fma()}) {
    INFO("chip " << chip->name);
    const lpu::test::Int8NchwRun t = lpu::test::run_int8_nchw(g, C, H, W, 31, 32, "pre", true, true, chip);
    const QuantPlan& q = t.quant();
    const LoweredLayer* a = layer_named(t.lm, "a");
    const LoweredLayer* c2 = layer_named(t.lm, "c2");
    REQUIRE(a);
    REQUIRE(c2);
    // a adds d's output (the downsample branch, scheduled first), c2 adds R1 (the block input):
    // both stored i8 only, R1 read i8 by c1 as X with no quantized copy.
    CHECK(a->residual == yd);
    CHECK(c2->residual == r1);
    CHECK(q.i8_tensors.count(yd));
    CHECK(q.i8_tensors.count(r1));
    for (const QuantCopy& c : q.copies) CHECK((c.src != r1 && c.src != yd));  // X0 (pre is fp16) has one
    CHECK(a->y2 == ir::kNoTensor);
    for (size_t i = 0; i < t.lm.layers.size(); ++i) {
      const LoweredLayer& L = t.lm.layers[i];
      const LayerQuant& lq = q.layers[i];
      if (L.residual == ir::kNoTensor) {
        CHECK_FALSE(lq.r_int8);
        continue;
      }
      // The rows fold 1 / y_scale, the residual's row is r_scale / y_scale.
      REQUIRE(lq.r_int8);
      REQUIRE(lq.y_int8);
      CHECK(lq.epi_scale[0] == static_cast<float>(static_cast<double>(lq.x_scale) * lq.w_scale[0] / lq.y_scale));
      CHECK(lq.epi_rscale[0] == static_cast<float>(static_cast<double>(q.i8_tensors.at(L.residual)) / lq.y_scale));
    }
    // Every int8 layer (a and c2 with their i8 residual) and step within its bound, predicted ==
    // simulated (run_int8_nchw).
    lpu::test::require_int8_steps_ok(t.check, 5);
    // The chip's R1 equals relu(a's product + Yd's stored values) quantized: checked by the step
    // check above against Yd as the chip stored it (i8, dequantized).
  }
  // Off: the f16 residuals and R1's copy as before.
  const lpu::test::Int8NchwRun off = lpu::test::run_int8_nchw(g, C, H, W, 31, 32, "pre", true, false);
  CHECK_FALSE(off.quant().i8_tensors.count(r1));
  CHECK(layer_named(off.lm, "a")->y2 != ir::kNoTensor);  // R1's i8 copy from a's epilogue
  lpu::test::require_int8_steps_ok(off.check, 5);
}
