// The fused multiply-add (`fma`, dst = a * b + c with one rounding; chip config
// vxm.fused_multiply_add, [assumed]: not in the published instruction table). On a chip that has
// it the compiler fuses a `mul` by an operand and the `add` of an operand into one VXM op: the
// int8 matmul epilogue's scale and bias (acc * scale + bias), and an elementwise chain's `mul`
// then `add` (LayerNorm's * Scale + B). A chip without it gets `mul` then `add` and refuses a
// program holding `fma`. Checked on both chips: the VXM op counts differ by exactly one per fused
// vector, predicted == simulated, and the values pass the same reference bounds.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/error_bound.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/capability_refusal.h"
#include "tests/support/chip_variant.h"
#include "tests/support/f16_data.h"
#include "tests/support/gelu_graph.h"
#include "tests/support/int8_verdicts.h"
#include "tests/support/ir_build.h"
#include "tests/support/issued_count.h"
#include "tests/support/layer_norm_build.h"
#include "tests/support/stem_net.h"

using namespace lpu;
using namespace lpu::compiler;

namespace {

uint64_t step_vxm(const CompileResult& cr, const std::string& name) {
  for (const StepSpan& sp : cr.spans)
    if (sp.name == name) return sp.vxm;
  FAIL("no step " << name);
  return 0;
}

// y = LayerNorm(x) [R, K] (f16), compiled for cfg, simulated functionally; returns y as f32 and
// checks predicted == simulated.
std::vector<float> run_ln(const ir::Graph& g, const std::vector<float>& x, const ChipConfig& cfg, CompileResult* out) {
  *out = compile(g, cfg, CompileOptions{});
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  bind_input(out->program, "x", test::f16_bytes(x), &so.inputs);
  const sim::SimResult r = sim::simulate(out->program, cfg, so);
  CHECK(r.cycles == out->program.predicted_cycles);
  const std::vector<uint8_t> b = gather_output(out->program, "y", r.outputs);
  std::vector<float> y(b.size() / 4);
  std::memcpy(y.data(), b.data(), b.size());
  return y;
}

}  // namespace

TEST_CASE("fma: LayerNorm's * Scale + B is one fma a vector, same bound without it", "[fma][layernorm]") {
  const int64_t R = 64, K = 768, chunks = 3;  // 768 lanes: 3 vectors a row
  ir::Graph g;
  g.name = "ln";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {R, K});
  g.mark_output(test::add_layer_norm(g, x, R, K, 0.5f, true, "y"));
  const std::vector<float> in = test::random_f16(R * K, -2.f, 2.f, 5);
  const auto tsp = default_chip_config();
  const auto nofma = test::chip_without_fma();
  CompileResult on, off;
  const std::vector<float> y_on = run_ln(g, in, *tsp, &on);
  const std::vector<float> y_off = run_ln(g, in, *nofma, &off);
  const uint64_t vecs = static_cast<uint64_t>(R * chunks);
  CHECK(test::issued_count(on.program, Opcode::Fma) == vecs);
  CHECK(test::issued_count(off.program, Opcode::Fma) == 0);
  uint64_t vxm_on = 0, vxm_off = 0;
  for (const StepSpan& sp : on.spans) vxm_on += sp.vxm;
  for (const StepSpan& sp : off.spans) vxm_off += sp.vxm;
  CHECK(vxm_off - vxm_on == vecs);
  // Both within the reference's running bound (the fma rounds once where mul, add round twice).
  std::vector<ref::Value> bounds;
  const std::vector<ref::Value> want =
      ref::run_with_error_bound(g, {ref::Value::floats({R, K}, in, ir::DType::F16)}, &bounds);
  int64_t bad = 0, differ = 0;
  for (size_t k = 0; k < y_on.size(); ++k) {
    bad += std::fabs(y_on[k] - want[0].f[k]) <= 2 * bounds[0].f[k] ? 0 : 1;
    bad += std::fabs(y_off[k] - want[0].f[k]) <= 2 * bounds[0].f[k] ? 0 : 1;
    differ += y_on[k] != y_off[k] ? 1 : 0;
  }
  CHECK(bad == 0);
  CHECK(differ > 0);  // the f32 outputs show the single rounding
}

TEST_CASE("fma: an int8 conv's epilogue scales and adds its bias in one fma, refused without it", "[fma][int8][conv]") {
  const int64_t H = 14, W = 13, M = 16, H1 = 7, W1 = 7;
  const ir::Graph g = test::stem_net(H, W, M);
  const auto tsp = default_chip_config();
  const auto nofma = test::chip_without_fma();
  const std::vector<float> x = test::stem_input(H, W, 62);
  for (const auto& cfg : {tsp, nofma}) {
    const bool fma = cfg->vxm_fma;
    INFO((fma ? "tsp-v1" : "no-fma"));
    const CompileResult cr = test::compile_stem_int8(g, H, W, *cfg);
    REQUIRE(cr.quant);
    // The stem: one output vector a pixel (16 channels): cvt, mul then add (or one fma), cvt to i8
    // (its Relu runs in the pool).
    CHECK(step_vxm(cr, "stem") == static_cast<uint64_t>((fma ? 3 : 4) * H1 * W1));
    CHECK((test::issued_count(cr.program, Opcode::Fma) > 0) == fma);
    LoweredModel lm = lower_graph(g);
    apply_quant_copies(g, *cr.quant, &lm);
    const sim::SimResult r = test::run_stem(cr, lm, x, *cfg);
    CHECK(r.cycles == cr.program.predicted_cycles);
    test::check_int8_steps_ok(verify_int8_steps(g, lm, *cr.quant, {test::stem_value(H, W, x)}, cr.program, r.outputs));
    // The chip without the capability refuses this program, naming the op and the field.
    if (fma) test::check_sim_refuses(cr.program, *nofma, "fma", "vxm.fused_multiply_add: false");
  }
}

TEST_CASE("fma: GELU's (1 + erf(.)) * x is one fma (cur * x + x), same bound without it", "[fma][gelu]") {
  // 0.5 x (1 + erf(x / sqrt 2)) as the LLM front end builds it: one fused pass (lower_graph), whose
  // `addi 1` and `mul` by x become one fma on tsp-v1.
  const int64_t R = 7, K = 330, vecs = R * 2;  // 330 lanes: 2 vectors a row
  const ir::Graph g = test::gelu_erf_graph(R, K);
  const auto tsp = default_chip_config();
  const auto nofma = test::chip_without_fma();
  const CompileResult on = compile(g, *tsp, CompileOptions{});
  const CompileResult off = compile(g, *nofma, CompileOptions{});
  CHECK(test::issued_count(on.program, Opcode::Fma) == static_cast<uint64_t>(vecs));
  CHECK(test::issued_count(off.program, Opcode::Fma) == 0);
  uint64_t vxm_on = 0, vxm_off = 0;
  for (const StepSpan& sp : on.spans) vxm_on += sp.vxm;
  for (const StepSpan& sp : off.spans) vxm_off += sp.vxm;
  CHECK(vxm_off - vxm_on == static_cast<uint64_t>(vecs));
  // Values within the reference's bound, predicted == simulated (tsp-v1).
  test::check_chip_against_reference(g, {test::random_f16(R * K, -5.f, 5.f, 71)});
}
