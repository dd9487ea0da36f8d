// Paired heads (passes/pair_heads.h): in a packed attention prefill piece, heads 2p and 2p + 1 share
// their score rows: one q.K^T product (K = 2 d, N = 2 T, K block-diagonal) and one P.V product
// (K = 2 T) a pair, the Softmax max in segments of T lanes. Checked: the lowering's shape (and
// none of it below 32 tokens or for an odd head count), the chip's values BIT-IDENTICAL to one
// product a head (outputs, the scores and e through the layouts), predicted == simulated, half the
// `abc` issues of the attention products, a fused projection whose q pairs cross a vector
// reordered (its columns' f32 summation may then change: checked within the fp16 and calibrated
// int8 step bounds instead), and the step checks reading the paired tensors back.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/llm/segments.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/int8_step_check.h"
#include "compiler/reference/step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "tests/support/calibrated_int8_piece.h"
#include "tests/support/f16_data.h"
#include "tests/support/int8_verdicts.h"
#include "tests/support/issued_count.h"
#include "tests/support/llm_workloads.h"
#include "tests/support/step_verdicts.h"

using namespace lpu;
using lpu::test::workload_llm;

namespace {

llm::SegmentSpec attention_prefill(int64_t tokens) { return test::prefill_segment(llm::SegmentKind::Attention, tokens, 7); }

using lpu::test::bert_like;  // from 6 heads on, the fused q|k|v projection's q pair (4, 5) spans
                             // columns 256..383, across its first vector

// The ones pass kept (passes/ones_in_projection.h would give the projection a layout of its own:
// tests/llm/test_ones_in_projection.cpp), so the layouts here are the pairing's.
compiler::LoweredModel lowered(const ir::Graph& g, bool pair) {
  compiler::LowerOptions lo;
  lo.pair_heads = pair;
  lo.ones_in_projection = false;
  return compiler::lower_graph(g, default_chip_config()->vector_bytes(), lo);
}

// Products of two activations: (count, K, N) of those installing b transposed (q.K^T) or not (P.V).
struct Products {
  int n = 0;
  int64_t K = 0, N = 0;
};
Products products(const compiler::LoweredModel& lm, bool trans) {
  Products p;
  for (const compiler::LoweredStep& st : lm.steps) {
    if (!st.dense || st.gather || st.lane) continue;
    const compiler::LoweredLayer& L = lm.layers[st.index];
    if (L.b == ir::kNoTensor || L.b_trans != trans) continue;
    ++p.n;
    p.K = L.K;
    p.N = L.N;
  }
  return p;
}

struct Run {
  compiler::CompileResult cr;
  sim::SimResult r;
};

Run run(const ir::Graph& g, const std::vector<float>& x, bool pair) {
  auto chip = default_chip_config();
  compiler::CompileOptions co;
  co.keep_intermediates = true;
  co.lower.pair_heads = pair;
  co.lower.ones_in_projection = false;  // as lowered() above
  co.pair_trial = false;
  Run out{compiler::compile(g, *chip, co), {}};
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  compiler::bind_input(out.cr.program, g.tensor(g.inputs()[0]).name, test::f16_bytes(x), &so.inputs);
  out.r = sim::simulate(out.cr.program, *chip, so);
  return out;
}

uint64_t abc_issues(const Program& p) { return test::issued_count(p, Opcode::Abc); }

}  // namespace

TEST_CASE("paired heads: two heads a score row from 32 tokens on, one product a head below or for odd heads",
          "[llm]") {
  const llm::LlmConfig cfg = workload_llm("tiny-bert");  // 4 heads of 32 lanes
  const int64_t H = cfg.heads, d = cfg.hidden / cfg.heads, T = 32;
  const ir::Graph g = llm::build_segment(cfg, attention_prefill(T), 1);
  const compiler::LoweredModel lm = lowered(g, true);
  const Products qk = products(lm, true), pv = products(lm, false);
  CHECK(qk.n == H / 2);
  CHECK(qk.K == 2 * d);  // both heads' q lanes; K's rows block-diagonal
  CHECK(qk.N == 2 * T);  // [s_a | s_b]
  CHECK(pv.n == H / 2);
  CHECK(pv.K == 2 * T);  // [e_a | e_b] times the pair's 2 T rows of V|1
  int segmented = 0;
  for (const compiler::LoweredLane& Ln : lm.lanes)
    if (Ln.mode == compiler::LoweredLane::Mode::Max) {
      CHECK(Ln.segment == T);
      ++segmented;
    }
  CHECK(segmented == 1);
  CHECK(!lm.layouts.empty());  // the scores (a graph tensor) are stored paired
  {
    const compiler::LoweredModel off = lowered(g, false);
    CHECK(products(off, true).n == H);
    CHECK(products(off, false).n == H);
    CHECK(off.layouts.empty());
  }
  {  // 8 tokens: decode-like row counts are not packed, so not paired either
    const compiler::LoweredModel lm8 = lowered(llm::build_segment(cfg, attention_prefill(8), 1), true);
    CHECK(products(lm8, true).n == H);
    CHECK(lm8.layouts.empty());
  }
  {  // 5 heads: no pairs
    const compiler::LoweredModel lm5 = lowered(llm::build_segment(bert_like(5), attention_prefill(T), 1), true);
    CHECK(products(lm5, true).n == 5);
    CHECK(lm5.layouts.empty());
  }
}

TEST_CASE("paired heads: the chip's values are bit-identical to one product a head, with half the abc issues",
          "[llm]") {
  const llm::LlmConfig cfg = workload_llm("tiny-bert");  // 4 heads of 32 lanes: q pairs inside one vector
  const int64_t H = cfg.heads, T = 32, M = T;
  const ir::Graph g = llm::build_segment(cfg, attention_prefill(T), 1);
  const std::vector<float> x = test::random_f16(T * cfg.hidden, -2.f, 2.f, 23);
  const Run on = run(g, x, true), off = run(g, x, false);
  CHECK(on.r.cycles == on.cr.program.predicted_cycles);
  CHECK(off.r.cycles == off.cr.program.predicted_cycles);
  for (ir::TensorId t : g.outputs()) {
    const std::string& name = g.tensor(t).name;
    INFO(name);
    CHECK(compiler::gather_output(on.cr.program, name, on.r.outputs) ==
          compiler::gather_output(off.cr.program, name, off.r.outputs));
  }
  // Every graph tensor both store (q and K stacked, the scores...) read back in graph layout.
  const compiler::LoweredModel lon = lowered(g, true), loff = lowered(g, false);
  const auto von = ref::chip_graph_tensors(g, lon, on.cr.program, on.r.outputs);
  const auto voff = ref::chip_graph_tensors(g, loff, off.cr.program, off.r.outputs);
  for (const auto& [t, v] : voff) {
    INFO(g.tensor(t).name);
    REQUIRE(von.count(t) == 1);
    CHECK(von.at(t) == v);
  }
  CHECK(lon.layouts.size() == 3);  // q and K stacked, the scores (no column reorder)
  for (const auto& [t, m] : lon.layouts) CHECK(voff.count(t) == 1);  // each paired tensor was compared
  // e = exp(scores - row max): the paired row m of pair p holds head 2p's row in lanes [0, T) and
  // head 2p + 1's in [T, 2T) (a wrong segment max would change it).
  auto e_name = [](const compiler::LoweredModel& lm, const ir::Graph& gr) {  // the exp pass reads the max
    for (const compiler::LoweredLane& Ln : lm.lanes)
      for (const compiler::LoweredEltwise& E : lm.eltwise)
        if (Ln.mode == compiler::LoweredLane::Mode::Max && !E.operands.empty() && E.operands[0].act == Ln.y)
          return lm.tensor(gr, E.y).name;
    return std::string();
  };
  const std::string en = e_name(lon, g);
  REQUIRE(!en.empty());
  REQUIRE(en == e_name(loff, g));
  const std::vector<uint8_t> eon = compiler::gather_output(on.cr.program, en, on.r.outputs),
                             eoff = compiler::gather_output(off.cr.program, en, off.r.outputs);
  const int64_t b = 2;  // f16 bytes
  REQUIRE(eon.size() == static_cast<size_t>(H * M * T * b));
  REQUIRE(eoff.size() == eon.size());
  int64_t differ = 0;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < T * b; ++n)
        differ += eoff[static_cast<size_t>((h * M + m) * T * b + n)] !=
                  eon[static_cast<size_t>(((h / 2) * M + m) * 2 * T * b + (h % 2) * T * b + n)];
  CHECK(differ == 0);
  // q.K^T and P.V: half the rows a pair (the o_proj and the projection are the same products).
  const uint64_t abc_on = abc_issues(on.cr.program), abc_off = abc_issues(off.cr.program);
  CHECK(abc_off - abc_on == static_cast<uint64_t>(2 * (H / 2) * M));
  const ir::Tensor& xt = g.tensor(g.inputs()[0]);
  lpu::test::check_steps_ok(ref::verify_steps(g, {ref::Value::floats(xt.shape, x, xt.dtype)}, von));
}

TEST_CASE("paired heads: compile() keeps the unpaired program where it is faster (tiny-bert, 32 tokens)", "[llm]") {
  const llm::LlmConfig cfg = workload_llm("tiny-bert");  // 4 heads of 32 lanes
  const ir::Graph g = llm::build_segment(cfg, attention_prefill(32), 1);
  auto chip = default_chip_config();
  compiler::CompileOptions co;
  const compiler::CompileResult both = compiler::compile(g, *chip, co);
  co.lower.pair_heads = false;
  const compiler::CompileResult off = compiler::compile(g, *chip, co);
  co.lower.pair_heads = true;
  co.pair_trial = false;  // the paired program alone
  const compiler::CompileResult paired = compiler::compile(g, *chip, co);
  REQUIRE(paired.lower.pair_heads);
  REQUIRE(lowered(g, true).paired_attentions == 1);
  INFO("paired " << paired.program.predicted_cycles << ", unpaired " << off.program.predicted_cycles);
  REQUIRE(paired.program.predicted_cycles != off.program.predicted_cycles);
  CHECK(both.program.predicted_cycles == std::min(paired.program.predicted_cycles, off.program.predicted_cycles));
  CHECK(both.lower.pair_heads == (paired.program.predicted_cycles < off.program.predicted_cycles));
}

TEST_CASE("paired heads: q pairs across a vector reorder the fused projection's columns, fp16 steps in bound",
          "[llm]") {
  // 8 heads of 64 lanes: q heads 4 and 5 are columns 256..383 of the fused q|k|v projection, across
  // its first vector. Its columns are reordered (weights, bias, every lane move's source), so its
  // output is stored in a layout of its own. Not bit-identical to one product a head: a column's
  // K-split over the planes (its f32 summation order) follows its column tile, which moves.
  const int64_t H = 8, T = 32, d = 64;
  const llm::LlmConfig cfg = bert_like(H);
  const ir::Graph g = llm::build_segment(cfg, attention_prefill(T), 1);
  const compiler::LoweredModel lm = lowered(g, true);
  CHECK(products(lm, true).n == H / 2);
  CHECK(lm.layouts.size() == 4);  // the projection's output, q and K stacked, the scores
  for (const compiler::LoweredLane& Ln : lm.lanes)
    if (Ln.mode == compiler::LoweredLane::Mode::Move && Ln.move_width == 2 * d)  // the q pairs
      for (int64_t c : Ln.x_cols) CHECK(c / 320 == (c + 2 * d - 1) / 320);
  const std::vector<float> x = test::random_f16(T * cfg.hidden, -2.f, 2.f, 23);
  const Run on = run(g, x, true);
  CHECK(on.r.cycles == on.cr.program.predicted_cycles);
  const auto von = ref::chip_graph_tensors(g, lm, on.cr.program, on.r.outputs);
  for (const auto& [t, m] : lm.layouts) CHECK(von.count(t) == 1);
  const ir::Tensor& xt = g.tensor(g.inputs()[0]);
  lpu::test::check_steps_ok(ref::verify_steps(g, {ref::Value::floats(xt.shape, x, xt.dtype)}, von));
}

TEST_CASE("paired heads: a calibrated int8 piece with a reordered projection is within the int8 bound step by step",
          "[llm][int8]") {
  const ir::Graph g = llm::build_segment(bert_like(8), attention_prefill(32), 1);
  // The paired program, whichever is faster.
  const test::CalibratedInt8Piece p =
      test::calibrated_int8_piece(g, 51, [](compiler::CompileOptions& co) { co.pair_trial = false; });
  CHECK(p.r.cycles == p.cr.program.predicted_cycles);
  CHECK(p.lm.layouts.size() == 4);
  lpu::test::check_int8_steps_ok(p.check());
}
