// Softmax's clamp (max(x, -65504) so that a wholly masked row is uniform, passes/lower_norm.cpp):
// (1) left out when the Softmax input can hold -inf only by f16 overflow (no -inf constant or graph
// input reaches it through elementwise ops and views, e.g. attention scores q.K^T x 1/sqrt(d)
// without a mask): the clamp is the identity on finite f16 values; (2) otherwise, a post op of the
// elementwise step that alone writes the input (a mask Add, a Where, a scale Mul of a graph
// input): one VXM pass and one stored tensor fewer, the same values bit for bit (narrowing to f16
// is monotone and -65504 is an f16 value, so max(narrow(v), -65504) == narrow(max(v, -65504))).
// Checked: the lowered steps, values against the reference (twice the running bound) with
// simulated == predicted, bit-identical outputs against the separate clamp pass (the input given a
// second reader) with -inf masks, f16 overflow and a wholly masked row, and on the BERT-base int8
// attention prefill piece that no clamp is left and (256 tokens) the piece is shorter.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/llm/llm_config.h"
#include "compiler/llm/segments.h"
#include "compiler/passes/lowering.h"
#include "isa/chip_config.h"
#include "isa/isa.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"
#include "tests/support/scaled_scores.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::random_f16;

namespace {

// s (+ the constant mask, if any: s becomes the masked tensor) -> Softmax over the last axis ->
// graph output y.
void masked_softmax(ir::Graph& g, ir::TensorId& s, int64_t R, int64_t K, const std::vector<float>* mask) {
  if (mask) {
    const ir::TensorId m = g.add_constant("mask", ir::DType::F16, {R, K}, test::f16_bytes(*mask));
    const ir::TensorId sm = g.add_tensor("masked", ir::DType::F16, {R, K});
    g.add_op(make_op(ir::OpKind::Add, "mask", {s, m}, sm));
    s = sm;
  }
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {R, K});
  g.add_op(make_op(ir::OpKind::Softmax, "softmax", {s}, y, {{"axis", int64_t{1}}}));
  g.mark_output(y);
}

// y = Softmax(x * c [+ mask]) over the last axis, x [R, K]. `second_reader`: the Softmax input is
// also read by an Abs (output z), so nothing may fuse into its writer (the unfused form).
ir::Graph clamp_graph(int64_t R, int64_t K, float c, const std::vector<float>* mask, bool second_reader) {
  ir::Graph g;
  g.name = "clamp";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {R, K});
  ir::TensorId s = g.add_tensor("s", ir::DType::F16, {R, K});
  g.add_op(make_op(ir::OpKind::Mul, "scale", {x, g.add_constant("c", ir::DType::F16, {}, test::f16_bytes({c}))}, s));
  masked_softmax(g, s, R, K, mask);
  if (second_reader) {
    const ir::TensorId z = g.add_tensor("z", ir::DType::F16, {R, K});
    g.add_op(make_op(ir::OpKind::Abs, "abs", {s}, z));
    g.mark_output(z);
  }
  return g;
}

struct Steps {
  size_t eltwise = 0, clamp_steps = 0, max_posts = 0;
};

Steps count_steps(const LoweredModel& lm) {
  Steps c;
  for (const LoweredStep& st : lm.steps) {
    if (st.dense || st.lane || st.gather) continue;
    const LoweredEltwise& E = lm.eltwise[st.index];
    ++c.eltwise;
    if (E.name.size() >= 6 && E.name.compare(E.name.size() - 6, 6, ".clamp") == 0) ++c.clamp_steps;
    for (const LoweredEltwise::Post& p : E.post)
      c.max_posts += p.op == static_cast<int>(Opcode::Max) && p.operand >= 0 ? 1 : 0;
  }
  return c;
}

std::vector<float> causal_mask(int64_t R, int64_t K) {
  std::vector<float> m(static_cast<size_t>(R * K), 0.f);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = r % K + 1; k < K; ++k) m[static_cast<size_t>(r * K + k)] = -INFINITY;
  return m;
}

// Functional simulation of g on x: the bytes of output `name`; simulated == predicted.
std::vector<uint8_t> run(const ir::Graph& g, const std::vector<float>& xv, const std::string& name) {
  const auto cfg = default_chip_config();
  const CompileResult cr = compile(g, *cfg, CompileOptions{});
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  bind_input(cr.program, "x", test::f16_bytes(xv), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  return gather_output(cr.program, name, r.outputs);
}

// y = Softmax((x . W) * c [+ mask]) over the last axis: the scores come from a product.
ir::Graph product_graph(int64_t R, int64_t D, int64_t K, const std::vector<float>* mask) {
  ir::Graph g;
  g.name = "product_softmax";
  ir::TensorId s = test::scaled_scores(g, R, D, K, 0.125f, 95);
  masked_softmax(g, s, R, K, mask);
  return g;
}

}  // namespace

TEST_CASE("softmax clamp fusion: no clamp when only f16 overflow could make -inf, a mask keeps it") {
  const int64_t R = 48, D = 64, K = 100;
  const std::vector<float> mask = causal_mask(R, K);
  for (const bool masked : {false, true}) {
    INFO("mask " << masked);
    const ir::Graph g = product_graph(R, D, K, masked ? &mask : nullptr);
    const Steps s = count_steps(lower_graph(g));
    CHECK(s.clamp_steps == 0);                  // before: a separate `.clamp` pass in both
    CHECK(s.max_posts == (masked ? 1u : 0u));   // the mask Add carries the clamp; no mask: none
    // Mul, Add, exp, divide; without the mask the Mul is inside the exp pass (test_softmax_scale_fold.cpp).
    CHECK(s.eltwise == (masked ? 4u : 2u));
    test::check_chip_against_reference(g, {random_f16(R * D, -2.f, 2.f, 96)});
  }
}

TEST_CASE("softmax clamp fusion: the clamp is a post op of the input's sole writer, values match the reference") {
  const int64_t R = 70, K = 100;  // K < 320: pad lanes in every vector
  const std::vector<float> mask = causal_mask(R, K);
  for (const bool masked : {false, true}) {
    INFO("mask " << masked);
    const ir::Graph g = clamp_graph(R, K, 0.125f, masked ? &mask : nullptr, false);
    const Steps s = count_steps(lower_graph(g));
    CHECK(s.clamp_steps == 0);  // before: a separate `.clamp` pass
    CHECK(s.max_posts == 1);    // max with the -65504 row, fused into the Mul (or the mask Add)
    CHECK(s.eltwise == (masked ? 4u : 3u));  // Mul [, Add], exp, divide (the row max and sum are lane steps)
    const ir::Graph unfused = clamp_graph(R, K, 0.125f, masked ? &mask : nullptr, true);
    CHECK(count_steps(lower_graph(unfused)).clamp_steps == 1);  // a second reader keeps the pass
    test::check_chip_against_reference(g, {random_f16(R * K, -8.f, 8.f, 91)});
  }
}

TEST_CASE("softmax clamp fusion: bit-identical to the separate clamp pass with -inf, f16 overflow, masked rows") {
  // x * 4 overflows f16 below -16376 (-inf after the unfused step's narrowing, -65504 after the
  // clamp either way); row 3 is wholly masked (a uniform row, not NaN, in both forms).
  const int64_t R = 40, K = 96;
  std::vector<float> mask = causal_mask(R, K);
  for (int64_t k = 0; k < K; ++k) mask[static_cast<size_t>(3 * K + k)] = -INFINITY;
  std::vector<float> xv = random_f16(R * K, -30000.f, 16000.f, 93);
  for (size_t i = 0; i < xv.size(); i += 7) xv[i] = random_f16(1, -4.f, 4.f, static_cast<uint32_t>(i))[0];
  const ir::Graph fused = clamp_graph(R, K, 4.f, &mask, false), unfused = clamp_graph(R, K, 4.f, &mask, true);
  CHECK(count_steps(lower_graph(fused)).clamp_steps == 0);
  CHECK(count_steps(lower_graph(unfused)).clamp_steps == 1);
  const std::vector<uint8_t> a = run(fused, xv, "y"), b = run(unfused, xv, "y");
  REQUIRE(a.size() == static_cast<size_t>(R * K) * 4);
  CHECK(a == b);
  float u;
  std::memcpy(&u, &a[static_cast<size_t>(3 * K) * 4], 4);
  CHECK(u == Approx(1.0 / K));  // the wholly masked row is uniform
}

TEST_CASE("softmax clamp fusion: BERT-base int8 attention prefill has no clamp and is shorter", "[heavy]") {
  const auto cfg = default_chip_config();
  const llm::LlmConfig m = llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/bert-base.json");
  for (const int64_t tokens : {int64_t{128}, int64_t{256}}) {
    llm::SegmentSpec spec;
    spec.kind = llm::SegmentKind::Attention;
    spec.shape.phase = llm::Phase::Prefill;
    spec.shape.tokens = tokens;
    spec.shard = {0, 1};
    spec.o_proj_cast = true;
    const ir::Graph g = llm::build_segment(m, spec, 0);
    const CompileResult r = compile(g, *cfg, system::piece_compile_options(llm::WeightPrecision::INT8));
    size_t clamps = 0;
    for (const StepSpan& sp : r.spans) clamps += sp.name.find(".clamp") != std::string::npos ? 1 : 0;
    INFO(tokens << " tokens: " << r.program.predicted_cycles << " cycles");
    CHECK(clamps == 0);
    // 256 tokens at 38fba09 (a separate clamp pass): 21,287 cycles; now 19,802. (128 tokens:
    // 10,084 -> 10,157: the Softmax ends 227 cycles sooner, but the SRAM allocator's rotation
    // then puts o_proj's output and the residual sum on the slices of the live input x, and the
    // residual Add, port-bound, takes 301 cycles instead of 98.)
    if (tokens == 256) CHECK(r.program.predicted_cycles < 21287);
    sim::SimOptions so;
    so.mode = sim::Mode::Timing;
    CHECK(sim::simulate(r.program, *cfg, so).cycles == r.program.predicted_cycles);
  }
}
