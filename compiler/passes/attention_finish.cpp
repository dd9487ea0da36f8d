// Attention plumbing, part 3: what AttentionLowering::finish() runs once every node is lowered
// (lower_attention.h): graph outputs still views are materialized, dead folded projections are
// dropped, sums of products are merged into one product (merge_product_sums) and head segments are
// packed (pack_segments).
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "compiler/ir/dtype.h"
#include "compiler/passes/lower_attention.h"
#include "isa/isa.h"

namespace lpu::compiler {

using View = AttentionLowering::View;

void AttentionLowering::finish() {
  materialize_outputs();
  // Dense steps whose result nothing reads any more (a projection folded into per-head copies).
  std::vector<char> read(g_.tensors().size() + lm_.extra.size(), 0);
  for (const LoweredStep& st : lm_.steps)
    for (ir::TensorId t : step_reads(lm_, st)) read[static_cast<size_t>(t)] = 1;
  for (ir::TensorId t : g_.outputs()) read[static_cast<size_t>(t)] = 1;
  std::vector<LoweredStep> kept;
  for (const LoweredStep& st : lm_.steps) {
    const bool dead = st.dense && !st.gather && folded_.count(st.index) &&
                      !read[static_cast<size_t>(lm_.layers[st.index].y)];
    if (!dead) kept.push_back(st);
  }
  lm_.steps = std::move(kept);
  merge_product_sums();
  pack_segments();
}

// One packing's chain, found from the product P at step position si (pack_segments' contract in
// lower_attention.h): P reads O = Y1 / Sm (the divide at step wn, eltwise ni), Sm the broadcast of
// Y1's ones lane (step ws, lane step bi); head j's product prods[j] writes Y1's rows of segment j
// from V1 = max(MV, ones row) (eltwise oi), MV the move of V's rows (lane step mi).
struct AttentionLowering::PackedHeads {
  size_t si = 0;                                 // P's step position (updated as steps move)
  size_t S = 0;                                  // head segments P reads
  int64_t W = 0, G = 0, NW = 0, M = 0, C = 0;    // head width, heads a packed row, its lanes, rows, chunks
  ir::TensorId O = ir::kNoTensor, Y1 = ir::kNoTensor, Sm = ir::kNoTensor, V1 = ir::kNoTensor,
               MV = ir::kNoTensor;
  size_t wn = 0, ws = 0;                         // step positions of the divide and the broadcast
  size_t ni = 0, bi = 0, oi = 0, mi = 0;         // their lm_.eltwise / lm_.lanes indices, the ones pass's, the move's
  std::vector<size_t> prods;                     // lm_.layers index of head j's P.V product
  std::vector<int64_t> slot;                     // slot of every V row (-1: installed by no head)
};

void AttentionLowering::pack_segments() {
  if (lanes_ == 0) return;
  for (size_t si = 0; si < lm_.steps.size(); ++si) {
    PackedHeads h;
    if (!match_packed_heads(si, &h)) continue;
    relayout_heads(h);
    si = pack_heads(h);
  }
}

// match_packed_heads' view of the step uses: whether exactly n steps read t and t is not a graph
// output (which the rewrite would lose), and the one step writing t (position, or -1).
struct AttentionLowering::HeadUses {
  StepUses uses;
  const std::vector<ir::TensorId>& outs;
  bool read_by(ir::TensorId t, size_t n) const {
    if (std::find(outs.begin(), outs.end(), t) != outs.end()) return false;
    const auto it = uses.readers.find(t);
    return (it == uses.readers.end() ? 0 : it->second.size()) == n;
  }
  int writer(ir::TensorId t) const {
    const auto it = uses.writers.find(t);
    return it == uses.writers.end() || it->second.size() != 1 ? -1 : static_cast<int>(it->second[0]);
  }
};

// The o_proj product at step si reading S >= 2 head segments of one tensor O, each W lanes wide at
// consecutive k offsets, through a row map of at least kMinRows rows; sets si, S, W, G, NW, M, C, O.
bool AttentionLowering::match_head_merge(size_t si, PackedHeads* hp) const {
  constexpr int64_t kMinRows = 32;  // decode's one row a head: the pass costs more than it saves
  PackedHeads& h = *hp;
  const LoweredStep st = lm_.steps[si];
  if (!is_layer(st)) return false;
  const LoweredLayer& P = lm_.layers[st.index];
  const size_t S = P.xsegs.size();
  if (S < 2 || P.b != ir::kNoTensor || P.k_blocks != 0 || !P.tap_rows.empty() || P.copy || P.x_rows.empty() ||
      P.w.size() != static_cast<size_t>(P.K * P.N))
    return false;
  const int64_t W = P.xsegs[0].width;
  // G heads a packed row: the most that fit with their ones lanes (lanes / (W + 1)), at most S.
  // The last chunk's slots past S (S % G != 0) get a 1 in their ones lanes from a constant
  // operand of the packing pass (pack_heads): their lanes then divide 0 by 1, not 0 by 0 in lanes
  // the o_proj's MXM still multiplies (by zero weights).
  const int64_t G = std::min<int64_t>(static_cast<int64_t>(lanes_) / (W + 1), static_cast<int64_t>(S));
  const int64_t M = static_cast<int64_t>(P.x_rows.size()), C = (static_cast<int64_t>(S) + G - 1) / G;
  bool ok = G >= 2 && M >= kMinRows && C < static_cast<int64_t>(S);
  for (size_t j = 0; j < S && ok; ++j) {
    const LoweredLayer::XSegment& sg = P.xsegs[j];
    ok = sg.x == P.xsegs[0].x && sg.col0 == 0 && sg.width == W && sg.k0 == static_cast<int64_t>(j) * W;
  }
  if (!ok) return false;
  h.si = si;
  h.S = S;
  h.W = W;
  h.G = G;
  h.NW = G * W + G;
  h.M = M;
  h.C = C;
  h.O = P.xsegs[0].x;
  return true;
}

// O = Y1 / Sm (the normalize of a fused P.[V|1], matmul_act), Sm = lane W of Y1 in every lane (a
// broadcast); sets wn, ni, Y1, Sm, ws, bi.
bool AttentionLowering::match_normalize(const HeadUses& u, PackedHeads* hp) const {
  PackedHeads& h = *hp;
  const int wn = u.writer(h.O);
  if (wn < 0 || !u.read_by(h.O, 1) || !is_eltwise(lm_.steps[static_cast<size_t>(wn)])) return false;
  const size_t ni = lm_.steps[static_cast<size_t>(wn)].index;
  const LoweredEltwise& N = lm_.eltwise[ni];
  if (!(N.has_op && N.vxm_op == static_cast<int>(Opcode::Div) && N.operands.size() == 2 && N.post.empty() && !N.relu &&
        N.y2 == ir::kNoTensor && N.operands[0].act != ir::kNoTensor && N.operands[0].row_map.empty() &&
        N.operands[1].lane_bcast && N.operands[1].row_map.empty()))
    return false;
  const ir::TensorId Y1 = N.operands[0].act, Sm = N.operands[1].act;
  const int ws = u.writer(Sm);
  if (ws < 0 || !lm_.steps[static_cast<size_t>(ws)].lane || !u.read_by(Sm, 1) || !u.read_by(Y1, 2)) return false;
  const size_t bi = lm_.steps[static_cast<size_t>(ws)].index;
  if (lm_.lanes[bi].mode != LoweredLane::Mode::Broadcast || lm_.lanes[bi].x != Y1 || lm_.lanes[bi].src_lane != h.W)
    return false;
  h.wn = static_cast<size_t>(wn);
  h.ni = ni;
  h.Y1 = Y1;
  h.Sm = Sm;
  h.ws = static_cast<size_t>(ws);
  h.bi = bi;
  return true;
}

// The P.V products writing Y1: activation weights V1 (one tensor), W + 1 columns; head j's product
// writes the rows segment j reads. Sets prods and V1.
bool AttentionLowering::match_pv_products(const HeadUses& u, PackedHeads* hp) const {
  PackedHeads& h = *hp;
  const LoweredLayer& P = lm_.layers[lm_.steps[h.si].index];
  ir::TensorId V1 = ir::kNoTensor;
  int y1_writers = 0;
  for (const LoweredStep& q : lm_.steps)
    if (is_layer(q) && lm_.layers[q.index].y == h.Y1) ++y1_writers;
  for (size_t j = 0; j < h.S; ++j) {
    const int64_t r0 = P.xsegs[j].row_off + P.x_rows[0];
    size_t found = lm_.layers.size();
    for (const LoweredStep& q : lm_.steps) {
      if (!is_layer(q)) continue;
      const LoweredLayer& L = lm_.layers[q.index];
      if (L.y == h.Y1 && !L.y_rows.empty() && L.y_rows[0] == r0) found = q.index;
    }
    if (found == lm_.layers.size()) return false;
    const LoweredLayer& L = lm_.layers[found];
    bool ok = L.b != ir::kNoTensor && !L.b_trans && L.N == h.W + 1 && L.xsegs.empty() &&
              static_cast<int64_t>(L.y_rows.size()) == h.M && (V1 == ir::kNoTensor || V1 == L.b);
    for (int64_t m = 0; m < h.M && ok; ++m)
      ok = L.y_rows[static_cast<size_t>(m)] == P.xsegs[j].row_off + P.x_rows[static_cast<size_t>(m)];
    if (!ok) return false;
    V1 = L.b;
    h.prods.push_back(found);
  }
  h.V1 = V1;
  return y1_writers == static_cast<int>(h.S) && u.read_by(V1, h.S);
}

// V1 = max(MV, [-inf x W, 1]) (the ones pass), MV = V's rows moved to lanes [0, W) by a lane move;
// sets oi, MV, mi.
bool AttentionLowering::match_ones_pass(const HeadUses& u, PackedHeads* hp) const {
  PackedHeads& h = *hp;
  const int wo = u.writer(h.V1);
  if (wo < 0 || !is_eltwise(lm_.steps[static_cast<size_t>(wo)])) return false;
  const size_t oi = lm_.steps[static_cast<size_t>(wo)].index;
  const LoweredEltwise& E = lm_.eltwise[oi];
  if (!(E.vxm_op == static_cast<int>(Opcode::Max) && E.operands.size() == 2 && E.post.empty() &&
        E.operands[0].act != ir::kNoTensor && E.operands[0].row_map.empty() && E.operands[1].act == ir::kNoTensor &&
        E.operands[1].const_rows == 1 && E.operands[1].values.size() == static_cast<size_t>(h.W + 1)))
    return false;
  const ir::TensorId MV = E.operands[0].act;
  const int wm = u.writer(MV);
  if (wm < 0 || !lm_.steps[static_cast<size_t>(wm)].lane || !u.read_by(MV, 1)) return false;
  const size_t mi = lm_.steps[static_cast<size_t>(wm)].index;
  if (lm_.lanes[mi].mode != LoweredLane::Mode::Move || !lm_.lanes[mi].y_cols.empty()) return false;
  h.oi = oi;
  h.MV = MV;
  h.mi = mi;
  return true;
}

// The slot of every V row (the head whose product installs it, mod G); a row shared by heads of
// different slots (grouped-query attention) is not relaid. Sets slot.
bool AttentionLowering::assign_slots(PackedHeads* hp) const {
  PackedHeads& h = *hp;
  const int64_t vrows = static_cast<int64_t>(lm_.lanes[h.mi].x_rows.size());
  h.slot.assign(static_cast<size_t>(vrows), -1);
  for (size_t j = 0; j < h.S; ++j) {
    const LoweredLayer& L = lm_.layers[h.prods[j]];
    for (int64_t k = 0; k < L.K; ++k) {
      const int64_t r = L.b_row0 + k;
      if (r < 0 || r >= vrows) return false;
      int64_t& sl = h.slot[static_cast<size_t>(r)];
      if (sl >= 0 && sl != static_cast<int64_t>(j) % h.G) return false;
      sl = static_cast<int64_t>(j) % h.G;
    }
  }
  return true;
}

bool AttentionLowering::match_packed_heads(size_t si, PackedHeads* h) {
  if (!match_head_merge(si, h)) return false;
  const HeadUses u{step_uses(lm_), g_.outputs()};
  return match_normalize(u, h) && match_pv_products(u, h) && match_ones_pass(u, h) && assign_slots(h);
}

void AttentionLowering::relayout_heads(const PackedHeads& h) {
  const int64_t W = h.W, G = h.G, NW = h.NW;
  const int64_t vrows = static_cast<int64_t>(h.slot.size());
  // Head j's V at lanes W (j % G), its ones column at lane G W + j % G.
  LoweredLane& mv = lm_.lanes[h.mi];
  mv.y_shape.back() = NW;
  for (int64_t r = 0; r < vrows; ++r) mv.y_cols.push_back(W * std::max<int64_t>(h.slot[static_cast<size_t>(r)], 0));
  if (mv.move_width == 0) mv.move_width = W;
  // Head j's ones column at lane G W + j % G only (one constant row per slot, read by its V rows):
  // head j's product holds its row sum S_j there and zeros in the other ones lanes.
  LoweredEltwise& E = lm_.eltwise[h.oi];
  E.y_shape.back() = NW;
  EltOperand c;
  c.const_rows = G;
  c.const_f16 = true;
  for (int64_t i = 0; i < G; ++i)
    for (int64_t l = 0; l < NW; ++l)
      c.values.push_back(l < G * W ? -std::numeric_limits<float>::infinity() : l == G * W + i ? 1.f : 0.f);
  for (int64_t r = 0; r < vrows; ++r) c.row_map.push_back(std::max<int64_t>(h.slot[static_cast<size_t>(r)], 0));
  E.operands[1] = std::move(c);
  for (size_t pj : h.prods) {
    LoweredLayer& L = lm_.layers[pj];
    L.N = NW;
    L.y_shape.back() = NW;
  }
}

size_t AttentionLowering::pack_heads(const PackedHeads& h) {
  const int64_t W = h.W, G = h.G, NW = h.NW, M = h.M, C = h.C;
  const size_t S = h.S;
  LoweredLayer& P = lm_.layers[lm_.steps[h.si].index];  // rewritten in place; no layer is added
  // Packed sums Q1 [rows * C, NW] f16: row c M + m = the sum of Y1's rows of chunk c's heads for
  // product row m (each lane has one nonzero term: the f32 sum is exact, rounded once to f16), so
  // lanes [W i, W i + W) hold head c G + i's unnormalized output and lane G W + i its row sum.
  // Stored f16 (measured: BERT-base attention layers 1+ 7,824 cycles; f32 Q1 and D: 8,019, the
  // divide's two f32 operands taking the o_proj's streams).
  const ir::TensorId Q1 = fresh(P.name + ".packed", {M * C, NW}, ir::DType::F16);
  {
    LoweredEltwise E;
    E.name = P.name + ".packed";
    E.kind = ir::OpKind::Add;
    E.vxm_op = static_cast<int>(Opcode::Add);
    for (int64_t i = 0; i < G; ++i) {
      EltOperand o;
      o.act = h.Y1;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t m = 0; m < M; ++m) {
          const int64_t j = c * G + i;
          o.row_map.push_back(j < static_cast<int64_t>(S) ? P.xsegs[static_cast<size_t>(j)].row_off +
                                                                P.x_rows[static_cast<size_t>(m)]
                                                          : -1);
        }
      E.operands.push_back(std::move(o));
      if (i >= 2) E.post.push_back({static_cast<int>(Opcode::Add), 0.f, static_cast<int>(i)});
    }
    // Empty slots of the last chunk: row 1 of this constant (1 in their ones lanes), row 0 zeros.
    const int64_t filled = static_cast<int64_t>(S) - (C - 1) * G;
    if (filled < G) {
      EltOperand e;
      e.const_rows = 2;
      e.const_f16 = true;
      e.values.assign(static_cast<size_t>(2 * NW), 0.f);
      for (int64_t i = filled; i < G; ++i) e.values[static_cast<size_t>(NW + G * W + i)] = 1.f;
      for (int64_t c = 0; c < C; ++c) e.row_map.insert(e.row_map.end(), static_cast<size_t>(M), c + 1 == C ? 1 : 0);
      E.operands.push_back(std::move(e));
      E.post.push_back({static_cast<int>(Opcode::Add), 0.f, static_cast<int>(E.operands.size()) - 1});
    }
    E.y = Q1;
    E.y_shape = {M * C, NW};
    E.y_f32 = false;
    E.disjoint_sum = true;
    produced_[static_cast<size_t>(Q1)] = 1;
    nonfinite_[Q1] = false;
    lm_.eltwise.push_back(std::move(E));
  }
  // The row sums as divisors D [rows * C, NW] f16: one `distribute` a row copies lane G W + i to
  // lanes [W i, W i + W) and to lane G W + i (the ones lanes then hold 1 after the divide).
  const ir::TensorId D = fresh(P.name + ".rowsums", {M * C, NW}, ir::DType::F16);
  {
    LoweredLane& B = lm_.lanes[h.bi];
    B.x = Q1;
    B.y = D;
    B.y_shape = {M * C, NW};
    B.y_f32 = false;
    B.src_lane = G * W;
    B.lane_map.assign(static_cast<size_t>(lanes_), G * W);
    for (int64_t l = 0; l < NW; ++l) B.lane_map[static_cast<size_t>(l)] = l < G * W ? G * W + l / W : l;
    produced_[static_cast<size_t>(D)] = 1;
    nonfinite_[D] = false;
  }
  // Q = Q1 / D [rows * C, NW] f16: head j's normalized output in its own lanes (O's values up to
  // the f16 roundings of Q1 and D), 1 in the ones lanes.
  const ir::TensorId Q = fresh(P.name + ".heads", {M * C, static_cast<int64_t>(lanes_)}, ir::DType::F16);
  {
    LoweredEltwise& N = lm_.eltwise[h.ni];
    N.operands[0].act = Q1;
    N.operands[1].act = D;
    N.operands[1].lane_bcast = false;
    N.y = Q;
    N.y_shape = {M * C, NW};
    N.y_f32 = false;
    produced_[static_cast<size_t>(Q)] = 1;
    nonfinite_[Q] = false;
  }
  P.x = Q;
  P.x_rows.clear();
  P.xsegs.clear();
  for (int64_t c = 0; c < C; ++c) P.xsegs.push_back({Q, c * M, 0, c * G * W, std::min(G * W, P.K - c * G * W)});
  for (int64_t m = 0; m < M; ++m) P.x_rows.push_back(m);
  lm_.rearranged[Q] = h.O;
  // Step order: the three steps right before the product (the broadcast and the divide leave
  // their places after the P.V products). Returns the product's new position.
  const LoweredStep bst = lm_.steps[h.ws], nst = lm_.steps[h.wn];
  LoweredStep es;
  es.dense = false;
  es.index = lm_.eltwise.size() - 1;
  std::vector<LoweredStep> steps;
  for (size_t k = 0; k < lm_.steps.size(); ++k) {
    if (k == h.ws || k == h.wn) continue;
    if (k == h.si) {
      steps.push_back(es);
      steps.push_back(bst);
      steps.push_back(nst);
    }
    steps.push_back(lm_.steps[k]);
  }
  lm_.steps = std::move(steps);
  return h.si + 3 - (h.ws < h.si) - (h.wn < h.si);
}

void AttentionLowering::merge_product_sums() {
  // Readers (steps) and writers of each tensor.
  const size_t nt = g_.tensors().size() + lm_.extra.size();
  std::vector<int> readers(nt, 0), writers(nt, 0);
  for (const LoweredStep& st : lm_.steps) {
    std::vector<ir::TensorId> r = step_reads(lm_, st);
    std::sort(r.begin(), r.end());
    r.erase(std::unique(r.begin(), r.end()), r.end());
    for (ir::TensorId t : r) readers[static_cast<size_t>(t)]++;
    const ir::TensorId y = st.gather  ? lm_.gathers[st.index].y
                           : st.lane  ? lm_.lanes[st.index].y
                           : st.dense ? lm_.layers[st.index].y
                                      : lm_.eltwise[st.index].y;
    writers[static_cast<size_t>(y)]++;
  }
  std::vector<char> is_out(nt, 0);  // graph outputs are never merged away
  for (ir::TensorId t : g_.outputs()) is_out[static_cast<size_t>(t)] = 1;
  // Position in lm_.steps of the one plain dense step writing t (constant weights, no row map on
  // y, no relu, not a conv or copy) that is t's only writer and whose t only the step `user` reads.
  std::vector<char> drop(lm_.steps.size(), 0);  // positions whose step moved or merged away
  auto product_of = [&](ir::TensorId t) -> int {
    if (writers[static_cast<size_t>(t)] != 1 || readers[static_cast<size_t>(t)] != 1 || is_out[static_cast<size_t>(t)])
      return -1;
    for (size_t i = 0; i < lm_.steps.size(); ++i) {
      const LoweredStep& st = lm_.steps[i];
      if (drop[i] || !st.dense || st.gather || st.lane || lm_.layers[st.index].y != t) continue;
      const LoweredLayer& L = lm_.layers[st.index];
      bool y_as_is = true;  // every row of y written in order (no y row map, or the identity)
      for (size_t m = 0; m < L.y_rows.size() && y_as_is; ++m)
        y_as_is = L.y_rows[m] == static_cast<int64_t>(m);
      const bool plain = L.b == ir::kNoTensor && L.k_blocks == 0 && L.tap_rows.empty() && !L.copy &&
                         !L.relu && y_as_is && L.w.size() == static_cast<size_t>(L.K * L.N);
      return plain ? static_cast<int>(i) : -1;
    }
    return -1;
  };
  auto segments = [](const LoweredLayer& L) {
    if (!L.xsegs.empty()) return L.xsegs;
    return std::vector<LoweredLayer::XSegment>{{L.x, 0, 0, 0, L.K}};
  };
  for (size_t ei = 0; ei < lm_.steps.size(); ++ei) {
    const LoweredStep st = lm_.steps[ei];
    if (st.dense || st.gather || st.lane || drop[ei]) continue;
    const LoweredEltwise E = lm_.eltwise[st.index];
    if (!E.has_op || E.vxm_op != static_cast<int>(Opcode::Add) || E.operands.size() != 2 ||
        writers[static_cast<size_t>(E.y)] != 1)
      continue;
    const EltOperand &o0 = E.operands[0], &o1 = E.operands[1];
    auto plain_act = [](const EltOperand& o) {
      return o.act != ir::kNoTensor && o.row_map.empty() && !o.lane_bcast;
    };
    const ir::Shape ys = E.y_shape.empty() ? lm_.tensor(g_, E.y).shape : E.y_shape;
    const int64_t inner = ys.empty() ? 1 : ys.back();
    if (plain_act(o0) && plain_act(o1)) {
      // y = X_a . W_a + X_b . W_b: ONE product over the segments of both (the MXM accumulates in
      // f32 what the Add chain summed per term), e.g. the per-head o_proj terms of attention.
      const int pa = product_of(o0.act), pb = product_of(o1.act);
      if (pa < 0 || pb < 0 || pa == pb) continue;
      // A grows in place into the merged product: a chain of H terms (o_proj's heads) appends each
      // term's weights once, linear in the weight bytes.
      LoweredLayer& A = lm_.layers[lm_.steps[static_cast<size_t>(pa)].index];
      const LoweredLayer& B = lm_.layers[lm_.steps[static_cast<size_t>(pb)].index];
      if (A.N != B.N || A.N != inner || A.x_rows.size() != B.x_rows.size() || A.y_rows != B.y_rows) continue;
      // Both read the same rows up to a constant offset d (each head's rows of P.V): d moves into
      // B's segments' row offsets.
      const int64_t d = A.x_rows.empty() ? 0 : B.x_rows[0] - A.x_rows[0];
      bool shifted = true;
      for (size_t m = 0; m < A.x_rows.size() && shifted; ++m) shifted = B.x_rows[m] - A.x_rows[m] == d;
      if (!shifted) continue;
      // Only terms that all read ONE tensor (the heads of P.V; two products of one X): a layer over
      // several X tensors could not run int8 (one activation scale per layer, quantize.h), and a
      // residual-style sum of two different inputs keeps its two products.
      bool one_x = true;
      for (const LoweredLayer::XSegment& sg : segments(A)) one_x = one_x && sg.x == A.x;
      for (const LoweredLayer::XSegment& sg : segments(B)) one_x = one_x && sg.x == A.x;
      if (!one_x) continue;
      std::vector<LoweredLayer::XSegment> segs = segments(A);
      for (LoweredLayer::XSegment sg : segments(B)) {
        sg.k0 += A.K;
        sg.row_off += d;
        segs.push_back(sg);
      }
      A.y = E.y;
      A.y_shape = E.y_shape;
      A.y_f32 = E.y_f32;
      A.K += B.K;
      A.w.insert(A.w.end(), B.w.begin(), B.w.end());
      if (!B.bias.empty()) {
        if (A.bias.empty()) A.bias.assign(static_cast<size_t>(A.N), 0.f);
        for (size_t n = 0; n < A.bias.size(); ++n) A.bias[n] += B.bias[n];
      }
      A.xsegs = std::move(segs);
      A.x = A.xsegs[0].x;
      lm_.steps[ei] = lm_.steps[static_cast<size_t>(pa)];  // the merged product runs where the Add ran
      drop[static_cast<size_t>(pa)] = drop[static_cast<size_t>(pb)] = 1;
      readers[static_cast<size_t>(o0.act)] = readers[static_cast<size_t>(o1.act)] = 0;
      continue;
    }
    // y = X . W + c (a constant row): folded into the product's bias.
    const EltOperand& a = plain_act(o0) ? o0 : o1;
    const EltOperand& c = plain_act(o0) ? o1 : o0;
    if (!plain_act(a) || c.act != ir::kNoTensor || c.const_rows != 1 ||
        c.values.size() != static_cast<size_t>(inner))
      continue;
    const int pa = product_of(a.act);
    if (pa < 0) continue;
    LoweredLayer& L = lm_.layers[lm_.steps[static_cast<size_t>(pa)].index];
    if (L.N != inner) continue;
    if (L.bias.empty()) L.bias.assign(static_cast<size_t>(L.N), 0.f);
    for (size_t n = 0; n < L.bias.size(); ++n) L.bias[n] += c.values[n];
    L.y = E.y;
    L.y_shape = E.y_shape;
    L.y_f32 = E.y_f32;
    lm_.steps[ei] = lm_.steps[static_cast<size_t>(pa)];
    drop[static_cast<size_t>(pa)] = 1;
    readers[static_cast<size_t>(a.act)] = 0;
  }
  std::vector<LoweredStep> kept;
  for (size_t i = 0; i < lm_.steps.size(); ++i)
    if (!drop[i]) kept.push_back(lm_.steps[i]);
  lm_.steps = std::move(kept);
}

void AttentionLowering::materialize_outputs() {
  for (ir::TensorId t : g_.outputs()) {
    auto it = views_.find(t);
    if (it == views_.end()) continue;
    const int pi = g_.tensor(t).producer;
    ir::Op op;
    if (pi >= 0)
      op = g_.ops()[static_cast<size_t>(pi)];
    else
      op.name = g_.tensor(t).name;
    const View v = it->second;
    views_.erase(it);
    // No fold here: a graph output that is a view (k_new / v_new of an LLM shard's fused
    // projection) has a producer that other steps still read, so a fold would only add a second
    // projection (and a non-int8 reader of its input); the identity copy loads `width` rows.
    no_fold_ = true;
    materialize(op, v, t, g_.tensor(t).shape);
    no_fold_ = false;
  }
}

}  // namespace lpu::compiler
