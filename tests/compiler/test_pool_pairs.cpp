// Row pairs (passes/lower_conv.h "Row pairs"): a stem conv whose input the host lays out writes two
// image rows a stored row, its MaxPool runs on the pairs and an SXM lane move unpairs the result.
// Checked: the lowering (the host rows, the block-diagonal conv, the move), half the MXM rows and
// pool vectors, outputs bit-identical to the unpaired lowering, within the reference bound,
// predicted == simulated; in int8 the pairs run on i8 values with the pool's scale, the pooled
// bytes are exactly relu(max) of the stem's stored bytes read through the pair layout, the per-step
// int8 check passes and fails when the pooled tensor is corrupted.
#include <catch2/catch.hpp>

#include <algorithm>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/chip_stored.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/conv_build.h"
#include "tests/support/f16_data.h"
#include "tests/support/int8_verdicts.h"
#include "tests/support/ir_build.h"
#include "tests/support/stem_net.h"

using namespace lpu;
using namespace lpu::compiler;

namespace {

// The stem net's sizes: input 48 x 40, stem output 24 x 20 (12 row pairs), pool output 12 x 10.
constexpr int64_t H = 48, W = 40, M = 16, H1 = 24, W1 = 20, H2 = 12, W2 = 10;
constexpr int64_t J = (H2 / 2 - 1) * 2 + 2 + 1;  // stored row pairs of the stem: 13

const StepSpan& span(const CompileResult& cr, const std::string& name) {
  for (const StepSpan& sp : cr.spans)
    if (sp.name == name) return sp;
  FAIL("no step " << name);
  return cr.spans.front();
}

}  // namespace

TEST_CASE("pool pairs: a stem conv and its MaxPool run on row pairs, bit-identical", "[compiler][conv]") {
  const ir::Graph g = lpu::test::stem_net(H, W, M);
  auto cfg = default_chip_config();
  const LoweredModel lm = lower_graph(g, cfg->vector_bytes());
  const LoweredLayer* stem = nullptr;
  for (const LoweredLayer& L : lm.layers)
    if (L.name == "stem") stem = &L;
  REQUIRE(stem);
  CHECK(stem->K == 2 * 27);
  CHECK(stem->N == 2 * M);
  CHECK(stem->y_shape == std::vector<int64_t>{1, J, W1, 2 * M});
  CHECK(stem->model_macs == H1 * W1 * 27 * M);
  CHECK(lm.inputs[0].shape == std::vector<int64_t>{J * W1, 2 * 27});
  // Stored row (k, w) = image rows k - 1 and k + 11 (nearest edge row outside): row 0's first
  // block repeats image row 0, row 12's second block is image row 23.
  CHECK(std::equal(lm.inputs[0].host_map.begin(), lm.inputs[0].host_map.begin() + 27,
                   lm.inputs[0].host_map.begin() + (W1 * 2 * 27)));  // row (0, 0) block 0 == row (1, 0) block 0
  const LoweredLane* mv = nullptr;
  for (const LoweredLane& Ln : lm.lanes)
    if (Ln.name == "pool.unpair") mv = &Ln;
  REQUIRE(mv);
  CHECK(mv->mode == LoweredLane::Mode::Move);
  CHECK(mv->y == g.find("P"));
  CHECK(mv->move_width == M);
  REQUIRE(mv->x_rows.size() == static_cast<size_t>(H2 * W2));
  CHECK(mv->x_rows[static_cast<size_t>(7 * W2 + 3)] == 1 * W2 + 3);  // output row 7 = pair 1's second block
  CHECK(mv->x_cols[static_cast<size_t>(7 * W2 + 3)] == M);
  CHECK(lm.rearranged.at(mv->x) == g.find("P"));

  CompileOptions plain;
  plain.lower.pack_conv_taps = false;  // no chip lanes for the lowering: no row pairs
  const CompileResult cp = compile(g, *cfg, CompileOptions{}), cu = compile(g, *cfg, plain);
  CHECK(span(cp, "stem").abc == static_cast<uint64_t>(J * W1));
  CHECK(span(cu, "stem").abc == static_cast<uint64_t>(H1 * W1));
  CHECK(span(cp, "pool.max").vxm * 2 == span(cu, "pool.max").vxm);
  const LoweredModel lu = lower_graph(g, cfg->vector_bytes(), plain.lower);
  CHECK(lu.lanes.empty());
  const std::vector<float> x = lpu::test::stem_input(H, W, 41);
  auto run = [&](const CompileResult& cr, const LoweredModel& l) {
    sim::SimOptions so;
    so.mode = sim::Mode::Functional;
    bind_input(cr.program, "X", lpu::test::f16_bytes(to_chip_input(l.inputs[0], x)), &so.inputs);
    const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
    CHECK(r.cycles == cr.program.predicted_cycles);
    return gather_output(cr.program, "Y", r.outputs);
  };
  const std::vector<uint8_t> yp = run(cp, lm), yu = run(cu, lu);
  REQUIRE(yp.size() == static_cast<size_t>(M * H2 * W2 * 4));
  CHECK(yp == yu);
  lpu::test::check_chip_against_reference(g, {x});
}

TEST_CASE("pool pairs: a batch of two, a 5x5 stem and a pooled graph output", "[compiler][conv]") {
  // X [2, 3, 40, 18] -> stem 5x5 stride 2 pad 2 (12 channels, bias, Relu) -> [2, 12, 20, 9] ->
  // MaxPool 3x3 stride 2 pad 1 -> P [2, 12, 10, 5] (pairs of output rows m and m + 5), read by a
  // 1x1 conv, or a graph output (stored f32: the pairs are f32 too).
  for (const bool pool_out : {false, true}) {
    ir::Graph g;
    g.name = pool_out ? "pairs_out" : "pairs_batch";
    const int64_t N = 2, Hx = 40, Wx = 18, C = 12;
    const ir::TensorId x = g.add_input("X", ir::DType::F16, {N, 3, Hx, Wx});
    const ir::TensorId ys = g.add_tensor("Ys", ir::DType::F16, {N, C, 20, 9});
    const ir::TensorId bs = g.add_constant("Bs", ir::DType::F16, {C},
                                           lpu::test::f16_bytes(lpu::test::random_f16(C, -0.3f, 0.3f, 5)));
    g.add_op(lpu::test::conv_op("stem", {x, lpu::test::conv_weight(g, "Ws", C, 3, 5, 6), bs}, ys, 5, 2, 2));
    const ir::TensorId rs = g.add_tensor("Rs", ir::DType::F16, {N, C, 20, 9});
    g.add_op(make_op(ir::OpKind::Relu, "relu", {ys}, {rs}));
    const ir::TensorId p = g.add_tensor("P", pool_out ? ir::DType::F32 : ir::DType::F16, {N, C, 10, 5});
    g.add_op(make_op(ir::OpKind::MaxPool, "pool", {rs}, {p},
                     {{"kernel_shape", std::vector<int64_t>{3, 3}}, {"strides", std::vector<int64_t>{2, 2}},
                      {"pads", std::vector<int64_t>{1, 1, 1, 1}}}));
    if (pool_out) {
      g.mark_output(p);
    } else {
      const ir::TensorId y = g.add_tensor("Y", ir::DType::F32, {N, C, 10, 5});
      g.add_op(lpu::test::conv_op("c2", {p, lpu::test::conv_weight(g, "W2", C, C, 1, 9)}, y, 1, 1, 0));
      g.mark_output(y);
    }
    INFO(g.name);
    auto cfg = default_chip_config();
    const LoweredModel lm = lower_graph(g, cfg->vector_bytes());
    bool paired = false;
    for (const LoweredLane& Ln : lm.lanes) paired = paired || Ln.name == "pool.unpair";
    CHECK(paired);
    const std::vector<float> xv = lpu::test::random_f16(N * 3 * Hx * Wx, -1.f, 1.f, 17);
    lpu::test::check_chip_against_reference(g, {xv});
  }
}

TEST_CASE("pool pairs: int8 pairs carry the pool's scale, the pooled bytes are exact and checked", "[conv][int8][pool]") {
  // Mostly negative biases, so the Relu after the max matters.
  const ir::Graph g = lpu::test::stem_net(H, W, M, -0.5f, 0.2f);
  auto cfg = default_chip_config();
  const CompileResult cr = lpu::test::compile_stem_int8(g, H, W, *cfg);
  REQUIRE(cr.quant);
  const QuantPlan& q = *cr.quant;
  const LoweredModel lm = lpu::test::lower_with_copies(g, q);
  const LoweredLane* mv = nullptr;
  for (const LoweredLane& Ln : lm.lanes)
    if (Ln.name == "pool.unpair") mv = &Ln;
  REQUIRE(mv);
  const ir::TensorId P = g.find("P"), pairs = mv->x;
  ir::TensorId src = ir::kNoTensor;
  for (const LoweredLayer& L : lm.layers)
    if (L.name == "stem") src = L.y;
  REQUIRE(q.i8_tensors.count(P));
  REQUIRE(q.i8_tensors.count(pairs));
  REQUIRE(q.i8_tensors.count(src));
  CHECK(q.i8_tensors.at(pairs) == q.i8_tensors.at(P));
  CHECK(q.i8_tensors.at(src) == q.i8_tensors.at(P));
  CHECK(q.copies.empty());

  const std::vector<float> x = lpu::test::stem_input(H, W, 62);
  sim::SimResult r = lpu::test::run_stem(cr, lm, x, *cfg);
  CHECK(r.cycles == cr.program.predicted_cycles);
  const ChipStored s8 = chip_stored(cr.program, lm.tensor(g, src).name, r.outputs, 1.0);
  const ChipStored p8 = chip_stored(cr.program, g.tensor(P).name, r.outputs, 1.0);
  REQUIRE(s8.rows == J * W1);
  REQUIRE(s8.inner == 2 * M);
  REQUIRE(p8.rows == H2 * W2);
  // Image row ih of the stem: block 0 of stored row ih + 1 (ih < 12), else block 1 of row ih - 11.
  auto stem_at = [&](int64_t ih, int64_t iw, int64_t c) {
    const int64_t k = ih < H1 / 2 ? ih + 1 : ih - H1 / 2 + 1, b = ih < H1 / 2 ? 0 : 1;
    return s8.v[static_cast<size_t>((k * W1 + iw) * 2 * M + b * M + c)];
  };
  const std::vector<double> want = lpu::test::pool_relu_reference(H1, W1, H2, W2, M, stem_at);
  REQUIRE(p8.v.size() == want.size());
  int64_t differ = 0, zeros = 0;
  for (size_t k = 0; k < want.size(); ++k) {
    differ += p8.v[k] != want[k] ? 1 : 0;
    zeros += p8.v[k] == 0 ? 1 : 0;
  }
  CHECK(differ == 0);
  CHECK(zeros > 0);
  const Int8StepCheck ck = verify_int8_steps(g, lm, q, {lpu::test::stem_value(H, W, x)}, cr.program, r.outputs);
  lpu::test::check_int8_steps_ok(ck);
  bool seen = false;
  for (const ref::StepVerdict& v : ck.steps.steps) seen = seen || v.op == "pool";
  CHECK(seen);  // the pool's graph op is checked through P (the pairs are P's values)

  // A wrong pooled value fails the check.
  std::vector<uint8_t>& pb = r.outputs.at(g.tensor(P).name);
  REQUIRE(!pb.empty());
  pb[5] = static_cast<uint8_t>(static_cast<int8_t>(pb[5]) > 60 ? 0 : 120);
  const Int8StepCheck bad = verify_int8_steps(g, lm, q, {lpu::test::stem_value(H, W, x)}, cr.program, r.outputs);
  CHECK_FALSE(bad.ok());
}
