// Column need order (passes/column_need.h, docs/compiler/matmul-kernel.md "Column need order"): a
// fused q|k|v projection's column tiles are ranked by the step that first reads them (the q and K
// moves before V's), a product read whole by one step gets no order, and the balanced cut then
// starts every MXM plane on the earliest-read tiles. The piece still computes the reference's
// values (the step checks) with predicted == simulated.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/llm/segments.h"
#include "compiler/passes/column_need.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/f16_data.h"
#include "tests/support/llm_workloads.h"
#include "tests/support/step_verdicts.h"

using namespace lpu;

namespace {

llm::SegmentSpec prefill(llm::SegmentKind kind, int64_t tokens) { return test::prefill_segment(kind, tokens, 5); }

// BERT-base's attention shape: the fused q|k|v projection has 2,304 columns, 8 column tiles, more
// than the chip's 4 MXM planes.
llm::LlmConfig bert12() { return test::bert_like(12); }

// Position in lm.steps of the widest product with constant weights (the fused projection).
size_t widest_product(const compiler::LoweredModel& lm) {
  size_t best = lm.steps.size();
  int64_t n = 0;
  for (size_t i = 0; i < lm.steps.size(); ++i) {
    const compiler::LoweredStep& st = lm.steps[i];
    if (!st.dense || lm.layers[st.index].b != ir::kNoTensor || lm.layers[st.index].N <= n) continue;
    n = lm.layers[st.index].N;
    best = i;
  }
  return best;
}

}  // namespace

TEST_CASE("column need: a fused q|k|v projection's tiles are ranked by their first reader, a product read whole is not",
          "[compiler]") {
  const uint32_t lanes = default_chip_config()->vector_bytes();
  const ir::Graph g = llm::build_segment(bert12(), prefill(llm::SegmentKind::Attention, 32), 1);
  compiler::LowerOptions lo;
  lo.pair_heads = false;          // columns in graph order: q, k, v
  lo.ones_in_projection = false;  // and no ones columns
  const compiler::LoweredModel lm = compiler::lower_graph(g, lanes, lo);
  const size_t qkv = widest_product(lm);
  REQUIRE(qkv < lm.steps.size());
  const compiler::LoweredLayer& L = lm.layers[lm.steps[qkv].index];
  REQUIRE(L.N == 3 * 768);
  const std::vector<uint32_t> rank = compiler::column_need(lm, compiler::step_uses(lm), qkv, lanes);
  REQUIRE(rank.size() == 8);
  // q (columns 0..767) is moved first, then K, then V (columns 1536..2303): the tile of column c
  // is c / 320.
  CHECK(rank[0] < rank[4]);   // q only < k's last heads and v head 0
  CHECK(rank[3] < rank[5]);   // k < v
  CHECK(rank[5] == rank[7]);  // v's tiles: one move step
  for (size_t t = 1; t < rank.size(); ++t) CHECK(rank[t - 1] <= rank[t]);
  for (uint32_t r : rank) CHECK(r > qkv);
  CHECK(*std::max_element(rank.begin(), rank.end()) < lm.steps.size());  // every tile is read

  // The FFN's up projection is read whole by one step (its activation): no order.
  const ir::Graph gf = llm::build_segment(bert12(), prefill(llm::SegmentKind::Ffn, 32), 1);
  const compiler::LoweredModel lf = compiler::lower_graph(gf, lanes, {});
  const compiler::StepUses uf = compiler::step_uses(lf);
  int products = 0;
  for (size_t i = 0; i < lf.steps.size(); ++i)
    if (lf.steps[i].dense) {
      ++products;
      CHECK(compiler::column_need(lf, uf, i, lanes).empty());
    }
  CHECK(products == 2);
}

TEST_CASE("column need: the balanced cut starts every plane on the earliest-read tiles, the values stay right",
          "[compiler]") {
  auto chip = default_chip_config();
  const uint32_t lanes = chip->vector_bytes();
  const ir::Graph g = llm::build_segment(bert12(), prefill(llm::SegmentKind::Attention, 32), 1);
  compiler::CompileOptions co;
  co.keep_intermediates = true;
  co.pair_trial = false;
  co.lower.pair_heads = false;
  const compiler::CompileResult cr = compiler::compile(g, *chip, co);
  const compiler::LoweredModel lm = compiler::lower_graph(g, lanes, cr.lower);
  const size_t qkv = widest_product(lm);
  const std::vector<uint32_t> rank = compiler::column_need(lm, compiler::step_uses(lm), qkv, lanes);
  REQUIRE(rank.size() == 8);
  // The projection's decision: matmul_decisions has one entry per product scheduled, in step order.
  size_t call = 0;
  for (size_t i = 0; i < qkv; ++i) call += lm.steps[i].dense && !lm.layers[lm.steps[i].index].copy ? 1 : 0;
  REQUIRE(call < cr.matmul_decisions->size());
  const compiler::MatmulDecision& d = (*cr.matmul_decisions)[call];
  REQUIRE(d.tile_order.size() == 4);  // a balanced cut over the 4 planes
  uint32_t fourth = 0;  // the rank of the 4th earliest-read tile
  {
    std::vector<uint32_t> s = rank;
    std::sort(s.begin(), s.end());
    fourth = s[3];
  }
  for (const std::vector<compiler::MatmulPiece>& plane : d.tile_order) {
    REQUIRE(!plane.empty());
    CHECK(rank[plane.front().nt] <= fourth);
  }
  // In column order plane 3 would start in V's tiles (the last quarter of the install rows).
  CHECK(rank[d.tile_order[3].front().nt] < rank[7]);

  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  const ir::Tensor& xt = g.tensor(g.inputs()[0]);
  const std::vector<float> x = test::random_f16(ir::num_elements(xt.shape), -2.f, 2.f, 31);
  compiler::bind_input(cr.program, xt.name, test::f16_bytes(x), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *chip, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  lpu::test::check_steps_ok(ref::verify_steps(
      g, {ref::Value::floats(xt.shape, x, xt.dtype)}, ref::chip_graph_tensors(g, lm, cr.program, r.outputs)));
}
