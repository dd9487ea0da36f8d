// V's ones column from its projection (passes/ones_in_projection.h): in a packed attention prefill
// piece the fused q|k|v projection gets a ones column (weight 0, bias 1) in every vector holding V
// columns, V's lane move copies it to each row's ones lane, and the VXM ones pass is gone. Checked:
// the lowering (no ones pass, no more column tiles, the projection's layout), the chip's V1 equal
// to its own projection output moved lane for lane with a 1 in each ones lane and zeros elsewhere,
// predicted == simulated, every step within its bound (fp16, and a calibrated int8 piece whose ones
// columns are quantized with weight 0 and bias 1), and fewer VXM ops than with the pass; where V's
// ranges leave no lane for the ones columns in as many column tiles, the pass is kept.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <string>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/llm/segments.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/calibrated_int8_piece.h"
#include "tests/support/f16_data.h"
#include "tests/support/int8_verdicts.h"
#include "tests/support/llm_workloads.h"
#include "tests/support/step_verdicts.h"

using namespace lpu;

namespace {

// BERT-base's attention (12 heads of 64 lanes), `tokens` prefill rows.
ir::Graph bert12_attention(int64_t tokens) {
  return llm::build_segment(test::bert_like(12), test::prefill_segment(llm::SegmentKind::Attention, tokens, 9), 1);
}

bool is_ones_pass(const compiler::LoweredModel& lm, const compiler::LoweredStep& st) {
  if (st.dense || st.gather || st.lane) return false;
  const std::string& n = lm.eltwise[st.index].name;
  return n.size() > 5 && n.compare(n.size() - 5, 5, ".ones") == 0;
}

// The lane move carrying ones lanes (nullptr: none).
const compiler::LoweredLane* ones_move(const compiler::LoweredModel& lm) {
  for (const compiler::LoweredLane& Ln : lm.lanes)
    if (!Ln.one_cols.empty()) return &Ln;
  return nullptr;
}

uint16_t f16_at(const std::vector<uint8_t>& b, int64_t i) {
  uint16_t v = 0;
  std::memcpy(&v, &b[static_cast<size_t>(2 * i)], 2);
  return v;
}

}  // namespace

TEST_CASE("ones in projection: V's ones lanes come from ones columns of the fused projection, no ones pass",
          "[llm]") {
  const uint32_t L = default_chip_config()->vector_bytes();
  const ir::Graph g = bert12_attention(32);
  compiler::LowerOptions off;
  off.ones_in_projection = false;
  const compiler::LoweredModel lm = compiler::lower_graph(g, L, {}), lo = compiler::lower_graph(g, L, off);
  CHECK(std::count_if(lo.steps.begin(), lo.steps.end(), [&](const compiler::LoweredStep& st) { return is_ones_pass(lo, st); }) == 1);
  CHECK(std::none_of(lm.steps.begin(), lm.steps.end(), [&](const compiler::LoweredStep& st) { return is_ones_pass(lm, st); }));
  CHECK(lm.steps.size() + 1 == lo.steps.size());
  const compiler::LoweredLane* mv = ones_move(lm);
  REQUIRE(mv != nullptr);
  REQUIRE(ones_move(lo) == nullptr);
  // The projection: the one product with constant weights writing the moves' source.
  const compiler::LoweredLayer* P = nullptr;
  for (const compiler::LoweredLayer& Ly : lm.layers)
    if (Ly.y == mv->x) P = &Ly;
  REQUIRE(P != nullptr);
  CHECK(P->N > 3 * 768);                                 // ones columns added...
  CHECK((P->N + L - 1) / L == (3 * 768 + L - 1) / L);    // ...in no more column tiles
  CHECK(lm.layouts.count(P->y) == 1);                    // the graph tensor in the repacked layout
  REQUIRE(mv->one_cols.size() == mv->x_cols.size());
  int64_t bad = 0;  // rows whose ones column or lane is not as the pass promises
  for (size_t r = 0; r < mv->x_cols.size(); ++r) {
    const int64_t oc = mv->one_cols[r];
    bool ok = oc / L == mv->x_cols[r] / L && P->bias[static_cast<size_t>(oc)] == 1.f &&  // its range's vector
              (mv->one_lanes[r] < mv->y_cols[r] || mv->one_lanes[r] >= mv->y_cols[r] + mv->move_width);
    for (int64_t k = 0; k < P->K; ++k) ok = ok && P->w[static_cast<size_t>(k * P->N + oc)] == 0.f;
    bad += ok ? 0 : 1;
  }
  CHECK(bad == 0);
}

TEST_CASE("ones in projection: the chip's V|1 is its projection moved with a 1 in each ones lane, steps in bound",
          "[llm]") {
  auto chip = default_chip_config();
  const uint32_t L = chip->vector_bytes();
  const int64_t T = 32;
  const ir::Graph g = bert12_attention(T);
  compiler::CompileOptions co;
  co.keep_intermediates = true;
  co.pair_trial = false;
  const compiler::CompileResult on = compiler::compile(g, *chip, co);
  co.lower.ones_in_projection = false;
  const compiler::CompileResult off = compiler::compile(g, *chip, co);
  const compiler::LoweredModel lm = compiler::lower_graph(g, L, on.lower);
  const compiler::LoweredLane* mv = ones_move(lm);
  REQUIRE(mv != nullptr);

  const ir::Tensor& xt = g.tensor(g.inputs()[0]);
  const std::vector<float> x = test::random_f16(ir::num_elements(xt.shape), -2.f, 2.f, 41);
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  compiler::bind_input(on.program, xt.name, test::f16_bytes(x), &so.inputs);
  const sim::SimResult r = sim::simulate(on.program, *chip, so);
  CHECK(r.cycles == on.program.predicted_cycles);

  // V1 row by row: the projection's stored row x_rows[r], columns [x_cols[r], + W) at lanes
  // [y_cols[r], + W), 1.0 (f16 0x3c00) in lane one_lanes[r], +0 everywhere else.
  const std::vector<uint8_t> Y = compiler::gather_output(on.program, lm.tensor(g, mv->x).name, r.outputs);
  const std::vector<uint8_t> V1 = compiler::gather_output(on.program, lm.tensor(g, mv->y).name, r.outputs);
  const auto P = std::find_if(lm.layers.begin(), lm.layers.end(),
                              [&](const compiler::LoweredLayer& Ly) { return Ly.y == mv->x; });
  REQUIRE(P != lm.layers.end());
  const int64_t yin = P->N;  // the projection's stored row: N columns with its ones columns
  const int64_t rows = static_cast<int64_t>(mv->x_rows.size()), vin = mv->y_shape.back();
  REQUIRE(V1.size() == static_cast<size_t>(2 * rows * vin));
  REQUIRE(Y.size() % static_cast<size_t>(2 * yin) == 0);
  int64_t wrong = 0;
  for (int64_t row = 0; row < rows; ++row) {
    const size_t i = static_cast<size_t>(row);
    for (int64_t l = 0; l < vin; ++l) {
      uint16_t want = 0;
      if (l >= mv->y_cols[i] && l < mv->y_cols[i] + mv->move_width)
        want = f16_at(Y, mv->x_rows[i] * yin + mv->x_cols[i] + (l - mv->y_cols[i]));
      else if (l == mv->one_lanes[i])
        want = 0x3c00;
      wrong += f16_at(V1, row * vin + l) != want;
    }
  }
  CHECK(wrong == 0);
  lpu::test::check_steps_ok(ref::verify_steps(g, {ref::Value::floats(xt.shape, x, xt.dtype)},
                                              ref::chip_graph_tensors(g, lm, on.program, r.outputs)));
  // The pass's VXM ops are gone (one or more a V row).
  uint64_t vxm_on = 0, vxm_off = 0;
  for (const compiler::StepSpan& sp : on.spans) vxm_on += sp.vxm;
  for (const compiler::StepSpan& sp : off.spans) vxm_off += sp.vxm;
  CHECK(vxm_on + static_cast<uint64_t>(rows) <= vxm_off);
}

TEST_CASE("ones in projection: a calibrated int8 piece is within the int8 bound step by step", "[llm][int8]") {
  const ir::Graph g = bert12_attention(32);
  const test::CalibratedInt8Piece p = test::calibrated_int8_piece(g, 61);
  CHECK(p.r.cycles == p.cr.program.predicted_cycles);
  REQUIRE(ones_move(p.lm) != nullptr);
  lpu::test::check_int8_steps_ok(p.check());
}

TEST_CASE("ones in projection: kept as a pass when the ones columns would need another column tile", "[llm]") {
  // 8 heads of 64 lanes: the q|k|v projection's 1,536 columns fill 5 tiles but 62 lanes; V's 8
  // ranges need 2 vectors with a ones lane each, which leaves 63 lanes of each unusable by the
  // 64-lane ranges: a 6th tile. The ones pass stays.
  const compiler::LoweredModel lm = compiler::lower_graph(
      llm::build_segment(test::bert_like(8), test::prefill_segment(llm::SegmentKind::Attention, 32, 9), 1),
      default_chip_config()->vector_bytes(), {});
  CHECK(ones_move(lm) == nullptr);
  CHECK(std::count_if(lm.steps.begin(), lm.steps.end(), [&](const compiler::LoweredStep& st) { return is_ones_pass(lm, st); }) == 1);
}
