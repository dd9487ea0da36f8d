// A Mul by a one-element constant c > 0 read only by a Softmax over the last axis (attention's
// scores x 1/sqrt(d)) is no step of its own (NormLowering::defer_scale): the Softmax reads the
// unscaled scores, takes their row max and applies `muli c` first in its exp pass
// (e = exp(-relu(c (m - x)))), so one VXM pass and one stored tensor fewer, values within the
// reference bound of the Mul + Softmax chain. Kept as a step: c <= 0 (max of c x is not c max x)
// and scores that may hold -inf by design (a mask: the clamp must see the scaled values).
// Checked: the lowered steps (fail on the code before: a `scale` step), values against the
// reference with simulated == predicted (scales a power of two, 1/sqrt(128), above 1), the
// deferred-softmax attention form P.V, and the BERT-base int8 attention prefill piece.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "compiler/compile.h"
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

// What the lowering made of the graph's `scale` Mul and the Softmax's exp pass.
struct Fold {
  size_t scale_steps = 0;   // elementwise steps named for the Mul (0: folded)
  size_t exp_muli = 0;      // Softmax exp passes whose first post op is `muli`
  float muli = 0.f;         // that immediate
};

Fold inspect(const ir::Graph& g) {
  const LoweredModel lm = lower_graph(g);
  Fold f;
  for (const LoweredEltwise& E : lm.eltwise) {
    if (E.name == "scale") ++f.scale_steps;
    if (E.name == "softmax.exp" && !E.post.empty() && E.post[0].op == static_cast<int>(Opcode::MulImm)) {
      ++f.exp_muli;
      f.muli = E.post[0].imm;
    }
  }
  return f;
}

// y = Softmax((x . W) * c) over the last axis (+ a second reader of the scaled scores).
ir::Graph scaled_scores(int64_t R, int64_t D, int64_t K, float c, bool second_reader) {
  ir::Graph g;
  g.name = "scaled_softmax";
  const ir::TensorId s = test::scaled_scores(g, R, D, K, c, 71);
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {R, K});
  g.add_op(make_op(ir::OpKind::Softmax, "softmax", {s}, y, {{"axis", int64_t{1}}}));
  g.mark_output(y);
  if (second_reader) {
    const ir::TensorId z = g.add_tensor("z", ir::DType::F16, {R, K});
    g.add_op(make_op(ir::OpKind::Abs, "abs", {s}, z));
    g.mark_output(z);
  }
  return g;
}

}  // namespace

TEST_CASE("softmax scale fold: x * c read only by a Softmax is no step, values within the reference bound") {
  const int64_t R = 40, D = 64, K = 100;
  // 1/8 (exact), 1/sqrt(128) (Llama's head size; not a power of two), 3 (above 1).
  for (const float c : {0.125f, 0.08837890625f, 3.f}) {
    INFO("c " << c);
    const ir::Graph g = scaled_scores(R, D, K, c, false);
    const Fold f = inspect(g);
    CHECK(f.scale_steps == 0);  // before: the Mul was a VXM pass of its own
    CHECK(f.exp_muli == 1);
    CHECK(f.muli == c);         // f16-exact constants
    test::check_chip_against_reference(g, {random_f16(R * D, -4.f, 4.f, 72)});
  }
}

TEST_CASE("softmax scale fold: kept as a step for c <= 0 and for a second reader") {
  const int64_t R = 24, D = 32, K = 48;
  for (const float c : {-0.5f, 0.f}) {
    INFO("c " << c);
    const ir::Graph g = scaled_scores(R, D, K, c, false);
    const Fold f = inspect(g);
    CHECK(f.exp_muli == 0);
    test::check_chip_against_reference(g, {random_f16(R * D, -2.f, 2.f, 73)});
  }
  const Fold f = inspect(scaled_scores(R, D, K, 0.125f, true));
  CHECK(f.scale_steps == 1);
  CHECK(f.exp_muli == 0);
}

TEST_CASE("softmax scale fold: attention P.V with q.K^T * c (the deferred softmax form)") {
  // x [T, D] -> q, k, v projections; P = Softmax(q . k^T * c); o = P . v.
  const int64_t T = 64, D = 64;
  ir::Graph g;
  g.name = "attention_scale";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {T, D});
  auto proj = [&](const char* name, uint32_t seed) {
    const ir::TensorId W = g.add_constant(std::string("W") + name, ir::DType::F16, {D, D},
                                          test::f16_bytes(random_f16(D * D, -0.3f, 0.3f, seed)));
    const ir::TensorId y = g.add_tensor(name, ir::DType::F16, {T, D});
    g.add_op(make_op(ir::OpKind::MatMul, std::string("mm_") + name, {x, W}, y));
    return y;
  };
  const ir::TensorId q = proj("q", 81), k = proj("k", 82), v = proj("v", 83);
  const ir::TensorId kt = g.add_tensor("kt", ir::DType::F16, {D, T});
  g.add_op(make_op(ir::OpKind::Transpose, "kt", {k}, kt, {{"perm", std::vector<int64_t>{1, 0}}}));
  const ir::TensorId sc = g.add_tensor("scores", ir::DType::F16, {T, T});
  g.add_op(make_op(ir::OpKind::MatMul, "qk", {q, kt}, sc));
  const ir::TensorId s = g.add_tensor("scaled", ir::DType::F16, {T, T});
  g.add_op(make_op(ir::OpKind::Mul, "scale", {sc, g.add_constant("c", ir::DType::F16, {}, test::f16_bytes({0.125f}))}, s));
  const ir::TensorId p = g.add_tensor("p", ir::DType::F16, {T, T});
  g.add_op(make_op(ir::OpKind::Softmax, "softmax", {s}, p, {{"axis", int64_t{1}}}));
  const ir::TensorId o = g.add_tensor("o", ir::DType::F16, {T, D});
  g.add_op(make_op(ir::OpKind::MatMul, "pv", {p, v}, o));
  g.mark_output(o);
  const Fold f = inspect(g);
  CHECK(f.scale_steps == 0);
  CHECK(f.exp_muli == 1);
  test::check_chip_against_reference(g, {random_f16(T * D, -3.f, 3.f, 84)});
}

TEST_CASE("softmax scale fold: the LLM attention graph carries 1/sqrt(d) in q's projection (BERT-base int8 piece)", "[heavy]") {
  // The LLM front end folds the scores' scale into q's projection columns (segments.cpp,
  // ColBlock::scale): the piece has no Mul at all and its exp pass no `muli`. The values are checked
  // against the Eigen forward, which scales the scores, by tests/llm (functional pieces).
  const auto cfg = default_chip_config();
  const llm::LlmConfig m = llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/bert-base.json");
  llm::SegmentSpec spec;
  spec.kind = llm::SegmentKind::Attention;
  spec.shape.phase = llm::Phase::Prefill;
  spec.shape.tokens = 128;
  spec.shard = {0, 1};
  spec.o_proj_cast = true;
  const ir::Graph g = llm::build_segment(m, spec, 1);  // layers 1-11's piece (starts with a LayerNorm)
  size_t muls = 0, softmax = 0;
  for (const ir::Op& op : g.ops()) {
    muls += op.kind == ir::OpKind::Mul ? 1 : 0;
    softmax += op.kind == ir::OpKind::Softmax ? 1 : 0;
  }
  CHECK(muls == 0);
  CHECK(softmax == 1);
  const LoweredModel lm = lower_graph(g);
  size_t exp_passes = 0, exp_muli = 0;
  for (const LoweredEltwise& E : lm.eltwise) {
    if (E.name.size() < 4 || E.name.compare(E.name.size() - 4, 4, ".exp") != 0) continue;
    ++exp_passes;
    for (const auto& p : E.post) exp_muli += p.op == static_cast<int>(Opcode::MulImm) ? 1 : 0;
  }
  CHECK(exp_passes == 1);
  CHECK(exp_muli == 0);
  const CompileResult r = compile(g, *cfg, system::piece_compile_options(llm::WeightPrecision::INT8));
  // 9,068 cycles with the scale as the exp pass's `muli` (f0dd076, `build/bench/bench_prefill`,
  // "attention (layers 1+)"); 8,924 with it in q (0a7b9e3), 8,822 since the f16 piece outputs.
  CHECK(r.program.predicted_cycles < 9068);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(r.program, *cfg, so).cycles == r.program.predicted_cycles);
}
