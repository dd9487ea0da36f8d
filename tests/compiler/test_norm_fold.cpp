// LayerNorm folds (passes/quantize.h "LayerNorm folds", Int8Options::fold_norms): a post-LN block
// out = h . W + b + h with h = LayerNorm(x). The int8 product reads a centred copy (x - mean, i8,
// written right after the `.mean` step) with W' = diag(scale) W and b' = bias . W + b, and divides
// each row by the `.sd` in its epilogue (LoweredLayer::row_div, MatmulSpec::row_div); the `.norm`
// step moves after the product, to just before h's first reader. Checked on
// the simulated chip step by step (verify_int8_steps: the folded layer within int8_layer_bound with
// the chip's sd as row divisors, the centred copy within rounding + s / 2 + clipping of the chip's
// x - mean, the LayerNorm and the rest within their fp16 bounds), predicted == simulated, with the
// fold on and off; the check fails when the folded layer's epilogue scale is 25 % off; compile()
// keeps the faster of the folded and unfolded programs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
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

constexpr int64_t R = 24, D = 400;  // D > 320: the rows span two vectors (a masked last chunk)

ir::Graph post_ln() {
  ir::Graph g;
  g.name = "post_ln_fold";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {R, D});
  const ir::TensorId h = lpu::test::add_layer_norm(g, x, R, D);
  const float ws = 1.0f / std::sqrt(static_cast<float>(D));
  const ir::TensorId w = g.add_constant("W", ir::DType::F16, {D, D}, f16_bytes(random_f16(D * D, -ws, ws, 11)));
  const ir::TensorId b = g.add_constant("b", ir::DType::F16, {D}, f16_bytes(random_f16(D, -0.2f, 0.2f, 12)));
  const ir::TensorId m = g.add_tensor("m", ir::DType::F16, {R, D}), y = g.add_tensor("y", ir::DType::F16, {R, D});
  g.add_op(make_op(ir::OpKind::MatMul, "proj", {h, w}, m));
  g.add_op(make_op(ir::OpKind::Add, "proj_bias", {m, b}, y));
  const ir::TensorId out = g.add_tensor("out", ir::DType::F16, {R, D});
  g.add_op(make_op(ir::OpKind::Add, "residual", {y, h}, out));  // h's fp16 reader: the `.norm` step stays
  g.mark_output(out);
  return g;
}

// x with a per-row offset, so x - mean differs from x (rows of mean -3 .. 3).
std::vector<float> input_of(uint32_t seed) {
  std::vector<float> v = random_f16(R * D, -1.f, 1.f, seed);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < D; ++k) {
      float& e = v[static_cast<size_t>(r * D + k)];
      e = ir::round_f16(e + static_cast<float>(r % 7) - 3.f);
    }
  return v;
}

ref::Value value_of(const std::vector<float>& x) { return ref::Value::floats({R, D}, x, ir::DType::F16); }

struct Run {
  CompileResult cr;
  LoweredModel lm;
  Int8StepCheck check;
};

// Compiles with `plan` (the fold on or off), simulates x functionally and checks every step.
Run run_with(const ir::Graph& g, const std::shared_ptr<const QuantPlan>& plan, const std::vector<float>& x) {
  auto chip = default_chip_config();
  Run r;
  CompileOptions co;
  co.precision = Precision::INT8;
  co.int8.onchip_quantize = true;
  co.quant = plan;
  co.keep_intermediates = true;
  r.cr = compile(g, *chip, co);
  r.lm = lower_graph(g);
  apply_quant_copies(g, *plan, &r.lm);
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  bind_input(r.cr.program, "x", f16_bytes(x), &so.inputs);
  const sim::SimResult s = sim::simulate(r.cr.program, *chip, so);
  CHECK(s.cycles == r.cr.program.predicted_cycles);
  r.check = verify_int8_steps(g, r.lm, *plan, {value_of(x)}, r.cr.program, s.outputs);
  return r;
}

}  // namespace

TEST_CASE("LayerNorm fold: the product reads x - mean and divides by sd, within its bounds, on and off",
          "[int8][norm_fold]") {
  const ir::Graph g = post_ln();
  const LoweredModel lm0 = lower_graph(g);
  REQUIRE(lm0.norms.size() == 1);
  Int8Options o;
  o.onchip_quantize = true;
  const std::vector<std::vector<ref::Value>> calib = {{value_of(input_of(5))}, {value_of(input_of(6))}};
  auto folded = std::make_shared<const QuantPlan>(plan_int8(g, lm0, calib, o));
  o.fold_norms = false;
  auto plain = std::make_shared<const QuantPlan>(plan_int8(g, lm0, calib, o));

  // The plan: one int8 layer folding norm 0, its X a centred copy with its own scale.
  REQUIRE(folded->int8_layers == 1);
  REQUIRE(folded->copies.size() == 1);
  const QuantCopy& c = folded->copies[0];
  CHECK(c.norm == 0);
  CHECK(c.src == g.find("h"));
  CHECK(c.name == "h.centred.i8");
  int folds = 0;
  for (const LayerQuant& lq : folded->layers) folds += lq.norm_fold == 0 ? 1 : 0;
  CHECK(folds == 1);
  REQUIRE(plain->copies.size() == 1);
  CHECK(plain->copies[0].norm == -1);
  for (const LayerQuant& lq : plain->layers) CHECK(lq.norm_fold == -1);
  // The centred copy's scale: max |x - rowmean(x)| / 127 over the calibration sets (smaller than
  // x's own range, which the row offsets widen).
  double cmax = 0;
  for (const auto& set : calib)
    for (int64_t r = 0; r < R; ++r) {
      double mean = 0;
      for (int64_t k = 0; k < D; ++k) mean += set[0].as_float(r * D + k);
      mean /= D;
      for (int64_t k = 0; k < D; ++k) cmax = std::max(cmax, std::fabs(set[0].as_float(r * D + k) - mean));
    }
  CHECK(folded->i8_tensors.at(c.copy) == Approx(cmax / 127).epsilon(1e-6));

  // The lowering with the fold: the copy is a `sub` step right after the `.mean`, the layer reads
  // it and divides by the `.sd`; the `.norm` step stays (the residual reads h), moved from before
  // the product to just before its first reader, the residual Add (after the product).
  LoweredModel lm = lm0;
  apply_quant_copies(g, *folded, &lm);
  const LoweredModel::Norm& nm = lm.norms[0];
  size_t mean_at = lm.steps.size(), copy_at = lm.steps.size(), norm_at = lm.steps.size(), norm_at0 = lm0.steps.size();
  size_t proj_at = lm.steps.size(), h_reader = lm.steps.size();
  for (size_t si = 0; si < lm.steps.size(); ++si) {
    const LoweredStep& st = lm.steps[si];
    if (st.lane && lm.lanes[st.index].y == nm.mean) mean_at = si;
    if (is_eltwise(st) && lm.eltwise[st.index].y == c.copy) copy_at = si;
    if (is_eltwise(st) && lm.eltwise[st.index].y == nm.y) norm_at = si;
    if (is_layer(st) && lm.layers[st.index].x == c.copy) proj_at = si;
    const std::vector<ir::TensorId> rd = step_reads(lm, st);
    if (h_reader == lm.steps.size() && std::find(rd.begin(), rd.end(), nm.y) != rd.end()) h_reader = si;
  }
  for (size_t si = 0; si < lm0.steps.size(); ++si) {
    const LoweredStep& st = lm0.steps[si];
    if (is_eltwise(st) && lm0.eltwise[st.index].y == nm.y) norm_at0 = si;
  }
  CHECK(copy_at == mean_at + 1);
  CHECK(norm_at0 < proj_at);  // before the fold: the `.norm` ahead of the product (in lm0's order)
  CHECK(norm_at > proj_at);
  CHECK(norm_at + 1 == h_reader);
  bool reads = false;
  for (const LoweredLayer& L : lm.layers)
    if (L.x == c.copy) {
      reads = true;
      CHECK(L.row_div == nm.sd);
    }
  CHECK(reads);

  // On the chip, with the fold and without: every step within its bound.
  const std::vector<float> x = input_of(21);
  const Run f = run_with(g, folded, x);
  lpu::test::require_int8_steps_ok(f.check, 1);
  int centred = 0;
  for (const ref::StepVerdict& v : f.check.steps.steps) centred += v.kind == "centred copy (LayerNorm fold)" ? 1 : 0;
  CHECK(centred == 1);
  const Run p = run_with(g, plain, x);
  lpu::test::require_int8_steps_ok(p.check, 1);
  WARN("post-LN fold: " << f.cr.program.predicted_cycles << " cycles folded, " << p.cr.program.predicted_cycles << " unfolded");

  // The check can fail: the folded layer's epilogue scale 25 % off.
  QuantPlan bad = *folded;
  for (LayerQuant& lq : bad.layers)
    if (lq.norm_fold >= 0)
      for (float& s : lq.epi_scale) s *= 1.25f;
  const Run b = run_with(g, std::make_shared<const QuantPlan>(bad), x);
  REQUIRE(b.check.layers.size() == 1);
  CHECK_FALSE(b.check.layers[0].ok());
  CHECK_FALSE(b.check.ok());

  // compile() plans the fold and keeps the faster of the two programs.
  CompileOptions co;
  co.precision = Precision::INT8;
  co.int8.onchip_quantize = true;
  co.calibration = calib;
  const CompileResult best = compile(g, *default_chip_config(), co);
  CompileOptions cf = co, cp = co;
  cf.quant = folded;
  cp.quant = plain;
  const uint64_t cyc_f = compile(g, *default_chip_config(), cf).program.predicted_cycles;
  const uint64_t cyc_p = compile(g, *default_chip_config(), cp).program.predicted_cycles;
  CHECK(best.program.predicted_cycles == std::min(cyc_f, cyc_p));
  REQUIRE(best.quant);
  const bool kept_fold = best.quant->copies.size() == 1 && best.quant->copies[0].norm == 0;
  CHECK(kept_fold == (cyc_f < cyc_p));
}
