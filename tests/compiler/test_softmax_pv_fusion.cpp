// Attention prefill fusions (passes/lower_attention.h defer_softmax, set_lanes; passes/lower_norm.cpp
// Softmax): heads of a fused q|k|v projection stacked by row Concats of lane slices as SXM lane
// moves (V with a ones column: moved, then one VXM max with a [-inf .., 1] row; identity copies
// with a bias-1 column when a head crosses a vector boundary), Softmax's subtract + exp in one VXM pass with no pad clearing,
// and its row sum taken by the MXM in P.[V|1] (an SXM distribute of the sums column, one divide).
// Each graph is compiled and simulated in timing and functional mode (simulated == predicted) and
// compared with the reference interpreter: the graph output within twice its running bound, and
// every IR op the chip stores within its local bound (ref::verify_steps, as `lpusim check`).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/step_check.h"
#include "isa/chip_config.h"
#include "isa/isa.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/issued_count.h"
#include "tests/support/step_verdicts.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::random_f16;

namespace {

// x [T, D] . Wqkv [D, 3 H hd] -> per head: q, k, v lane slices, stacked by a row Concat into
// [H, T, hd]; P = Softmax(q . k^T * s) over the last axis; y = P . v (graph output [H, T, hd]).
// `mask`: a causal -inf mask added to the scores (Where-free: an Add of a constant).
ir::Graph heads_graph(int64_t T, int64_t D, int64_t H, int64_t hd, bool mask, uint32_t seed) {
  ir::Graph g;
  g.name = "heads";
  const int64_t C = 3 * H * hd;
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {T, D});
  const std::vector<float> w = random_f16(D * C, -0.25f, 0.25f, seed);
  const ir::TensorId W = g.add_constant("Wqkv", ir::DType::F16, {D, C}, test::f16_bytes(w));
  const ir::TensorId qkv = g.add_tensor("qkv", ir::DType::F16, {T, C});
  g.add_op(make_op(ir::OpKind::MatMul, "proj", {x, W}, qkv));
  ir::TensorId stacked[3];
  for (int part = 0; part < 3; ++part) {
    std::vector<ir::TensorId> heads;
    for (int64_t h = 0; h < H; ++h) {
      const std::string n = std::string(part == 0 ? "q" : part == 1 ? "k" : "v") + std::to_string(h);
      const ir::TensorId s = g.add_tensor(n, ir::DType::F16, {T, hd});
      g.add_op(make_op(ir::OpKind::Slice, "slice_" + n, {qkv}, s,
                       {{"starts", std::vector<int64_t>{0, (part * H + h) * hd}},
                        {"steps", std::vector<int64_t>{1, 1}},
                        {"counts", std::vector<int64_t>{T, hd}}}));
      heads.push_back(s);
    }
    const std::string n = part == 0 ? "q" : part == 1 ? "k" : "v";
    const ir::TensorId cat = g.add_tensor(n + "_rows", ir::DType::F16, {H * T, hd});
    g.add_op(make_op(ir::OpKind::Concat, "cat_" + n, heads, cat, {{"axis", int64_t{0}}}));
    stacked[part] = g.add_tensor(n + "_heads", ir::DType::F16, {H, T, hd});
    g.add_op(make_op(ir::OpKind::Reshape, "rs_" + n, {cat}, stacked[part], {{"shape", std::vector<int64_t>{H, T, hd}}}));
  }
  const ir::TensorId kt = g.add_tensor("kt", ir::DType::F16, {H, hd, T});
  g.add_op(make_op(ir::OpKind::Transpose, "kt", {stacked[1]}, kt, {{"perm", std::vector<int64_t>{0, 2, 1}}}));
  const ir::TensorId sc = g.add_tensor("scores", ir::DType::F16, {H, T, T});
  g.add_op(make_op(ir::OpKind::MatMul, "qk", {stacked[0], kt}, sc));
  ir::TensorId ss = g.add_tensor("scaled", ir::DType::F16, {H, T, T});
  const float s = 1.f / std::sqrt(static_cast<float>(hd));
  g.add_op(make_op(ir::OpKind::Mul, "scale", {sc, g.add_constant("s", ir::DType::F16, {}, test::f16_bytes({s}))}, ss));
  if (mask) {
    std::vector<float> m(static_cast<size_t>(T * T), 0.f);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = t + 1; j < T; ++j) m[static_cast<size_t>(t * T + j)] = -INFINITY;
    const ir::TensorId mk = g.add_constant("mask", ir::DType::F16, {T, T}, test::f16_bytes(m));
    const ir::TensorId sm = g.add_tensor("masked", ir::DType::F16, {H, T, T});
    g.add_op(make_op(ir::OpKind::Add, "mask", {ss, mk}, sm));
    ss = sm;
  }
  const ir::TensorId p = g.add_tensor("p", ir::DType::F16, {H, T, T});
  g.add_op(make_op(ir::OpKind::Softmax, "softmax", {ss}, p, {{"axis", int64_t{2}}}));
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {H, T, hd});
  g.add_op(make_op(ir::OpKind::MatMul, "pv", {p, stacked[2]}, y));
  g.mark_output(y);
  return g;
}

struct Shape {
  size_t moves = 0, broadcasts = 0, sums = 0, selects = 0, fused_exp = 0, ones_copies = 0;
  int64_t bcast_lane = -1;
};

Shape lowered_shape(const LoweredModel& lm) {
  Shape s;
  for (const LoweredStep& st : lm.steps) {
    if (st.dense && !st.gather) {
      const LoweredLayer& L = lm.layers[st.index];
      if (L.N == L.K + 1 && !L.bias.empty() && L.bias.back() == 1.f) ++s.ones_copies;
    }
    if (st.lane) {
      const LoweredLane& Ln = lm.lanes[st.index];
      if (Ln.mode == LoweredLane::Mode::Move) ++s.moves;
      if (Ln.mode == LoweredLane::Mode::Sum) ++s.sums;
      if (Ln.mode == LoweredLane::Mode::Broadcast) {
        ++s.broadcasts;
        s.bcast_lane = Ln.src_lane;
      }
    } else if (!st.dense && !st.gather) {
      const LoweredEltwise& E = lm.eltwise[st.index];
      if (E.has_op && E.vxm_op == static_cast<int>(Opcode::Select)) ++s.selects;
      for (const LoweredEltwise::Post& p : E.post) s.fused_exp += p.op == static_cast<int>(Opcode::Exp) ? 1 : 0;
    }
  }
  return s;
}

// Every IR op the chip stores within its local bound (ref::verify_steps on a keep_intermediates
// program), and simulated == predicted for that program too.
void check_steps(const ir::Graph& g, const std::vector<float>& xv) {
  const auto cfg = default_chip_config();
  CompileOptions o;
  o.keep_intermediates = true;
  const CompileResult cr = compile(g, *cfg, o);
  const LoweredModel lm = lower_graph(g);
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  bind_input(cr.program, "x", test::f16_bytes(xv), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  const ir::Tensor& xt = g.tensor(g.inputs()[0]);
  const ref::StepCheck sc =
      ref::verify_steps(g, {ref::Value::floats(xt.shape, xv, xt.dtype)}, ref::chip_graph_tensors(g, lm, cr.program, r.outputs));
  lpu::test::check_steps_ok(sc);
}

}  // namespace

TEST_CASE("softmax pv fusion: heads stacked by lane moves, P.[V|1] row sums, fused exp match the reference") {
  for (const bool mask : {false, true}) {
    INFO("causal mask " << mask);
    const int64_t T = 40, D = 96, H = 6, hd = 64;  // q|k|v heads at lanes 64 h mod 320: none crosses a vector
    const ir::Graph g = heads_graph(T, D, H, hd, mask, 31);
    const Shape s = lowered_shape(lower_graph(g));
    CHECK(s.moves == 3);            // q, k and v: SXM lane moves (v into [rows, hd + 1], then max with the ones row)
    CHECK(s.broadcasts == 1);       // the sums column of P.[V|1] to every lane
    CHECK(s.bcast_lane == hd);
    CHECK(s.sums == 0);             // no lane all-reduce for the row sum
    CHECK(s.selects == 0);          // no pad clearing: e's pad lanes are finite
    CHECK(s.fused_exp == 1);        // sub + relu + neg + exp in one pass
    CHECK(s.ones_copies == 0);
    // The ones pass runs on the moved f16 V directly (its [-inf .., 1] row stored f16: `max.f16`,
    // no widening or narrowing `cvt`): one VXM op a row, plus `mov`s only where a read is re-timed.
    // (With the ones pass kept: by default V's ones lanes come from a ones column of the q|k|v
    // projection, passes/ones_in_projection.h, checked against the reference below.)
    {
      CompileOptions co;
      co.lower.ones_in_projection = false;
      const CompileResult cr = compile(g, *default_chip_config(), co);
      bool found = false;
      for (const StepSpan& sp : cr.spans)
        if (sp.name.size() > 5 && sp.name.compare(sp.name.size() - 5, 5, ".ones") == 0) {
          found = true;
          CHECK(sp.vxm >= static_cast<uint64_t>(T * H));
          CHECK(sp.vxm < static_cast<uint64_t>(2 * T * H));  // widened: 3 a row (cvt, max.f32, cvt)
        }
      CHECK(found);
    }
    const std::vector<float> xv = random_f16(T * D, -1.f, 1.f, 32);
    test::check_chip_against_reference(g, {xv});
    check_steps(g, xv);
  }
}

TEST_CASE("softmax pv fusion: heads crossing a vector boundary stay identity copies and still match") {
  // hd 48, 6 heads: q at lanes 0..287 (moves); k from 288 and v from 576 (256 in its vector) have
  // heads crossing a 320-lane boundary, so k's heads are identity copies and v's identity copies
  // with the bias-1 column; the Softmax's sum still goes to P.[V|1].
  const int64_t T = 24, D = 64, H = 6, hd = 48;
  const ir::Graph g = heads_graph(T, D, H, hd, false, 41);
  const Shape s = lowered_shape(lower_graph(g));
  CHECK(s.moves == 1);
  CHECK(s.ones_copies == static_cast<size_t>(H));
  CHECK(s.broadcasts == 1);
  CHECK(s.bcast_lane == hd);
  CHECK(s.sums == 0);
  const std::vector<float> xv = random_f16(T * D, -1.f, 1.f, 42);
  test::check_chip_against_reference(g, {xv});
  check_steps(g, xv);
}

// Heads of one source vector (hd 64: five per 320 lanes) are moved from ONE read of that vector
// (one `permute` per head on the cycle it passes the SXM; backend/lane_moves.cpp groups): each
// Concat's move step reads fewer vectors than it writes rows. With T = 128 the Softmax row max is
// the paired form (one `shift` by 128 lanes per pair of rows). Output and every stored op match the
// reference; simulated == predicted.
TEST_CASE("softmax pv fusion: heads of one vector move from one read, the paired row max at T = 128") {
  const int64_t T = 128, D = 64, H = 5, hd = 64;
  const ir::Graph g = heads_graph(T, D, H, hd, true, 51);
  const auto cfg = default_chip_config();
  const CompileResult cr = compile(g, *cfg, CompileOptions{});
  size_t moves = 0;
  for (const StepSpan& sp : cr.spans)
    if (sp.kind == 'l' && sp.name.size() > 5 && sp.name.compare(sp.name.size() - 5, 5, ".move") == 0) {
      ++moves;
      INFO(sp.name << ": " << sp.reads << " reads, " << sp.writes << " writes");
      CHECK(sp.writes == static_cast<uint64_t>(H * T) * 2);  // one f16 vector (2 planes) per row
      CHECK(sp.reads * 2 <= sp.writes);                       // at least two rows per read
    }
  CHECK(moves == 3);
  CHECK(test::issued_count(cr.program, [&](const Instr& in) { return in.op == Opcode::Shift && in.simm() == T; }) ==
        static_cast<uint64_t>(H * T / 2));
  const std::vector<float> xv = random_f16(T * D, -1.f, 1.f, 52);
  test::check_chip_against_reference(g, {xv});
  check_steps(g, xv);
}
