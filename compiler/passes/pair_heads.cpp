// Paired heads (see pair_heads.h): matches a packed attention's q.K^T products, Softmax max and exp,
// P.V products and packed sum, then rewrites them two heads a row.
#include "compiler/passes/pair_heads.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "compiler/passes/column_repack.h"
#include "compiler/passes/tiling.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

// step_uses (lowering.h) as int positions, with each graph output a reader at position -1 (this
// pass runs before lower_graph lists lm.outputs).
struct Uses {
  std::map<ir::TensorId, std::vector<int>> readers, writers;
  Uses(const ir::Graph& g, const LoweredModel& lm) {
    const StepUses s = step_uses(lm);
    auto as_int = [](const std::vector<size_t>& ps) {
      std::vector<int> v;
      for (size_t p : ps) v.push_back(static_cast<int>(p));
      return v;
    };
    for (const auto& [t, ps] : s.readers) readers[t] = as_int(ps);
    for (const auto& [t, ps] : s.writers) writers[t] = as_int(ps);
    for (ir::TensorId t : g.outputs()) readers[t].push_back(-1);
  }
  size_t nread(ir::TensorId t) const { return readers.count(t) ? readers.at(t).size() : 0; }
  // The one step writing t, or -1.
  int writer(ir::TensorId t) const {
    const auto it = writers.find(t);
    return it != writers.end() && it->second.size() == 1 ? it->second[0] : -1;
  }
};

// A product of two activations as matmul_act lowers one batch: no constant weights or epilogue
// extras, rows through row maps.
bool plain_act_product(const LoweredLayer& L) {
  return L.b != ir::kNoTensor && L.w.empty() && L.bias.empty() && !L.relu && L.xsegs.empty() && L.k_blocks == 0 &&
         L.tap_rows.empty() && !L.copy && L.residual == ir::kNoTensor && L.y2 == ir::kNoTensor &&
         L.row_div == ir::kNoTensor && !L.x_rows.empty() && L.x_rows.size() == L.y_rows.size();
}

// The H products writing y (step positions), sorted by their first output row; each product h
// must read rows h M .. of its x, write rows h M .. of y and install b's rows from h * brows.
std::vector<int> head_products(const LoweredModel& lm, const Uses& u, ir::TensorId y, int64_t brows) {
  std::vector<int> out;
  const auto it = u.writers.find(y);
  if (it == u.writers.end()) return out;
  for (int pos : it->second) {
    if (!is_layer(lm.steps[static_cast<size_t>(pos)])) return {};
    out.push_back(pos);
  }
  auto first = [&](int pos) { return lm.layers[lm.steps[static_cast<size_t>(pos)].index].y_rows[0]; };
  for (int pos : out)
    if (!plain_act_product(lm.layers[lm.steps[static_cast<size_t>(pos)].index])) return {};
  std::sort(out.begin(), out.end(), [&](int a, int b) { return first(a) < first(b); });
  const LoweredLayer& L0 = lm.layers[lm.steps[static_cast<size_t>(out[0])].index];
  const int64_t M = static_cast<int64_t>(L0.x_rows.size());
  for (size_t h = 0; h < out.size(); ++h) {
    const LoweredLayer& L = lm.layers[lm.steps[static_cast<size_t>(out[h])].index];
    if (L.x != L0.x || L.b != L0.b || L.b_trans != L0.b_trans || L.K != L0.K || L.N != L0.N ||
        static_cast<int64_t>(L.x_rows.size()) != M || L.b_row0 != static_cast<int64_t>(h) * brows)
      return {};
    for (int64_t m = 0; m < M; ++m)
      if (L.x_rows[static_cast<size_t>(m)] != static_cast<int64_t>(h) * M + m ||
          L.y_rows[static_cast<size_t>(m)] != static_cast<int64_t>(h) * M + m)
        return {};
  }
  return out;
}

// A lane move writing all of t, one range of `width` lanes a row at lane 0: its lane index, or -1.
int plain_move(const LoweredModel& lm, const Uses& u, ir::TensorId t, int64_t rows, int64_t width) {
  const int w = u.writer(t);
  if (w < 0 || !lm.steps[static_cast<size_t>(w)].lane) return -1;
  const LoweredLane& Mv = lm.lanes[lm.steps[static_cast<size_t>(w)].index];
  const int64_t mw = Mv.move_width > 0 ? Mv.move_width : Mv.y_shape.empty() ? 0 : Mv.y_shape.back();
  if (Mv.mode != LoweredLane::Mode::Move || !Mv.y_cols.empty() || mw != width || Mv.y_shape.empty() ||
      Mv.y_shape.back() != width || stored_rows(Mv.y_shape) != rows || static_cast<int64_t>(Mv.x_rows.size()) != rows)
    return -1;
  return static_cast<int>(lm.steps[static_cast<size_t>(w)].index);
}

// Whether every pair of heads' q ranges sits side by side in one vector of the source.
bool q_pairs_adjacent(const LoweredLane& Mq, int64_t H, int64_t M, int64_t d, int64_t L) {
  for (int64_t p = 0; p < H / 2; ++p)
    for (int64_t m = 0; m < M; ++m) {
      const size_t a = static_cast<size_t>(2 * p * M + m), b = a + static_cast<size_t>(M);
      const int64_t c = Mq.x_cols[a];
      if (Mq.x_rows[a] != Mq.x_rows[b] || Mq.x_cols[b] != c + d || c / L != (c + 2 * d - 1) / L) return false;
    }
  return true;
}

// Reorders the columns of the dense layer writing Y (constant weights; read only by lane moves) so
// that each q pair's two ranges are adjacent inside one vector and every other move range stays
// inside one vector; the moves' source columns follow. False (nothing changed) if Y's readers,
// ranges or packing do not allow it without widening Y.
bool reorder_source(const ir::Graph& g, LoweredModel& lm, const Uses& u, const LoweredLane& Mq, int64_t H, int64_t M,
                    int64_t d, int64_t L) {
  const ir::TensorId Y = Mq.x;
  const int wp = u.writer(Y);
  if (wp < 0 || !is_layer(lm.steps[static_cast<size_t>(wp)]) || lm.layouts.count(Y)) return false;
  LoweredLayer& P = lm.layers[lm.steps[static_cast<size_t>(wp)].index];
  const int64_t N = P.N;
  if (!columns_repackable(g, lm, P)) return false;
  // Units placed contiguously: each q pair (two ranges), then every other range a move reads.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> units;  // (first column, width) ranges
  std::vector<int64_t> owner(static_cast<size_t>(N), -1);        // column -> unit
  auto claim = [&](const std::vector<std::pair<int64_t, int64_t>>& rs) {
    for (const auto& [c, w] : rs)
      for (int64_t k = c; k < c + w; ++k)
        if (k < 0 || k >= N || owner[static_cast<size_t>(k)] >= 0) return false;
    for (const auto& [c, w] : rs)
      for (int64_t k = c; k < c + w; ++k) owner[static_cast<size_t>(k)] = static_cast<int64_t>(units.size());
    units.push_back(rs);
    return true;
  };
  for (int64_t p = 0; p < H / 2; ++p) {
    const int64_t ca = Mq.x_cols[static_cast<size_t>(2 * p * M)], cb = Mq.x_cols[static_cast<size_t>((2 * p + 1) * M)];
    for (int64_t m = 0; m < M; ++m)
      if (Mq.x_cols[static_cast<size_t>(2 * p * M + m)] != ca || Mq.x_cols[static_cast<size_t>((2 * p + 1) * M + m)] != cb ||
          Mq.x_rows[static_cast<size_t>(2 * p * M + m)] != Mq.x_rows[static_cast<size_t>((2 * p + 1) * M + m)])
        return false;
    if (!claim({{ca, d}, {cb, d}})) return false;
  }
  std::vector<size_t> moves;  // lane indices of Y's readers
  for (int pos : u.readers.at(Y)) {
    if (pos < 0 || !lm.steps[static_cast<size_t>(pos)].lane) return false;
    const size_t li = lm.steps[static_cast<size_t>(pos)].index;
    const LoweredLane& Mv = lm.lanes[li];
    if (Mv.mode != LoweredLane::Mode::Move || Mv.x != Y) return false;
    moves.push_back(li);
    if (&Mv == &Mq) continue;
    const int64_t w = Mv.move_width > 0 ? Mv.move_width : Mv.y_shape.back();
    std::set<int64_t> starts(Mv.x_cols.begin(), Mv.x_cols.end());
    for (int64_t c : starts) {
      if (c >= 0 && c < N && owner[static_cast<size_t>(c)] >= 0) {  // already a unit: the same range
        const auto& rs = units[static_cast<size_t>(owner[static_cast<size_t>(c)])];
        if (rs.size() != 1 || rs[0] != std::make_pair(c, w)) return false;
        continue;
      }
      if (w > L || !claim({{c, w}})) return false;
    }
  }
  // First fit, widest first, into vectors of L lanes; unread columns fill the rest in order.
  std::vector<size_t> order(units.size());
  std::iota(order.begin(), order.end(), size_t{0});
  auto width = [&](size_t i) {
    int64_t w = 0;
    for (const auto& r : units[i]) w += r.second;
    return w;
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return width(a) > width(b); });
  std::vector<int64_t> fill;  // lanes used per vector
  std::vector<int64_t> newcol(static_cast<size_t>(N), -1);
  std::vector<char> taken(static_cast<size_t>(N), 0);
  for (size_t i : order) {
    const int64_t w = width(i);
    size_t v = 0;
    while (v < fill.size() && fill[v] + w > L) ++v;
    if (v == fill.size()) fill.push_back(0);
    int64_t pos = static_cast<int64_t>(v) * L + fill[v];
    fill[v] += w;
    if (pos + w > N) return false;  // the packing needs a wider Y
    for (const auto& [c, cw] : units[i])
      for (int64_t k = 0; k < cw; ++k, ++pos) {
        newcol[static_cast<size_t>(c + k)] = pos;
        taken[static_cast<size_t>(pos)] = 1;
      }
  }
  // Unread columns: the free places in turn (any place: nothing reads them; as many as there are).
  int64_t free_at = 0;
  for (int64_t& nc : newcol) {
    if (nc >= 0) continue;
    while (taken[static_cast<size_t>(free_at)]) ++free_at;
    nc = free_at;
    taken[static_cast<size_t>(free_at)] = 1;
  }
  repack_columns(g, lm, P, newcol, N, moves);  // the same width: weights, bias, moves, Y's layout
  return true;
}

// A lowering tensor's stored shape (its entry in `extra`).
void set_shape(const ir::Graph& g, LoweredModel& lm, ir::TensorId t, const std::vector<int64_t>& shape) {
  lm.extra.at(static_cast<size_t>(t) - g.tensors().size()).shape = shape;
}

// t stored in `shape`: a lowering tensor's own shape, or (a graph tensor of n elements) its layout,
// chip element at(i) holding graph element i.
template <typename F>
void relayout(const ir::Graph& g, LoweredModel& lm, ir::TensorId t, const std::vector<int64_t>& shape, int64_t n, F at) {
  if (static_cast<size_t>(t) >= g.tensors().size()) {
    set_shape(g, lm, t, shape);
    return;
  }
  std::vector<int64_t>& map = lm.layouts[t];
  map.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) map[static_cast<size_t>(i)] = at(i);
}

std::string op_of(const std::string& layer) { return layer.substr(0, layer.rfind(".b")); }

// One attention whose scores' row max is lane step at position pm. Returns the layers that became
// dead (empty: not paired, nothing changed).
// One q.K^T -> row max -> exp -> P.V -> packed sum chain of H heads (pair_one's match): the row
// max (lane step mi), the exp (eltwise ei), the packed sum (step position pk); the scores Sc, their
// max Mt, e, the P.V output Y1; T tokens, head width d, H heads of M rows, P.V's NW lanes, G heads
// a packed row in C chunks; the q and K moves (lane steps qi, ki) and the products (step positions).
struct PairChain {
  size_t mi, ei, pk;
  ir::TensorId Sc, Mt, e, Y1;
  int64_t T, d, H, M, NW, G, C;
  int qi, ki;
  std::vector<int> qk, pv;
};

// pair_one's chain from the row max at step position pm, into *out; false if a part has another
// form. Its one change to lm: q's source layer's columns reordered so q pairs are adjacent
// (reorder_source; the same values, read through the moves' updated columns).
bool match_pair(const ir::Graph& g, LoweredModel& lm, size_t pm, int64_t L, PairChain* out) {
  const Uses u(g, lm);
  const size_t mi = lm.steps[pm].index;
  const ir::TensorId Sc = lm.lanes[mi].x, Mt = lm.lanes[mi].y;
  {
    const LoweredLane& Mx = lm.lanes[mi];
    if (Mx.mode != LoweredLane::Mode::Max || Mx.segment != 0 || !Mx.post.empty() || Mx.center != ir::kNoTensor ||
        Mx.y_shape.empty() || Mx.y_shape.back() != 1 || static_cast<size_t>(Mt) < g.tensors().size() ||
        lm.layouts.count(Sc))
      return false;
  }
  // q.K^T: H products (q rows x K's token rows installed transposed) writing Sc.
  const auto wq = u.writers.find(Sc);
  if (wq == u.writers.end() || wq->second.empty() || !is_layer(lm.steps[static_cast<size_t>(wq->second[0])])) return false;
  const LoweredLayer& Q0 = lm.layers[lm.steps[static_cast<size_t>(wq->second[0])].index];
  const int64_t T = Q0.N, d = Q0.K;
  const std::vector<int> qk = head_products(lm, u, Sc, T);
  const int64_t H = static_cast<int64_t>(qk.size());
  if (H < 2 || H % 2 != 0 || !Q0.b_trans || 2 * T > L || 2 * d > L) return false;
  const int64_t M = static_cast<int64_t>(Q0.x_rows.size());
  // (At least 32 rows a head: the packed sum matched below exists only from there, pack_segments.)
  if (stored_rows(lm.lanes[mi].y_shape) != H * M || u.nread(Sc) != 2 || u.nread(Mt) != 1) return false;
  // exp: e = f(m, Sc) lane for lane, read only by the P.V products.
  const int pe = u.readers.at(Mt)[0];
  if (pe < 0 || !is_eltwise(lm.steps[static_cast<size_t>(pe)])) return false;
  const size_t ei = lm.steps[static_cast<size_t>(pe)].index;
  {
    const LoweredEltwise& E = lm.eltwise[ei];
    if (E.operands.size() != 2 || E.y2 != ir::kNoTensor || E.operands[0].act != Mt || !E.operands[0].lane_bcast ||
        E.operands[1].act != Sc || E.operands[1].lane_bcast || !E.operands[0].row_map.empty() ||
        !E.operands[1].row_map.empty() || static_cast<size_t>(E.y) < g.tensors().size() ||
        stored_rows(E.y_shape.empty() ? lm.tensor(g, E.y).shape : E.y_shape) != H * M ||
        std::find(u.readers.at(Sc).begin(), u.readers.at(Sc).end(), pe) == u.readers.at(Sc).end())
      return false;
  }
  const ir::TensorId e = lm.eltwise[ei].y;
  // P.V: H products of e's rows and the packed V|1's token rows, into Y1.
  if (u.nread(e) != static_cast<size_t>(H)) return false;
  const int pv0 = u.readers.at(e)[0];
  if (pv0 < 0 || !is_layer(lm.steps[static_cast<size_t>(pv0)])) return false;
  const ir::TensorId Y1 = lm.layers[lm.steps[static_cast<size_t>(pv0)].index].y;
  const std::vector<int> pv = head_products(lm, u, Y1, T);
  if (static_cast<int64_t>(pv.size()) != H || static_cast<size_t>(Y1) < g.tensors().size()) return false;
  const LoweredLayer& P0 = lm.layers[lm.steps[static_cast<size_t>(pv[0])].index];
  const int64_t NW = P0.N;
  if (P0.x != e || P0.b_trans || P0.K != T || u.nread(P0.b) != static_cast<size_t>(H) || u.nread(Y1) != 1) return false;
  // The packed sum (pack_segments): G operands reading Y1 (slot i: head c G + i's rows), constants after.
  const int pk = u.readers.at(Y1)[0];
  if (pk < 0 || !is_eltwise(lm.steps[static_cast<size_t>(pk)])) return false;
  const LoweredEltwise& Pk = lm.eltwise[lm.steps[static_cast<size_t>(pk)].index];
  int64_t G = 0;
  while (G < static_cast<int64_t>(Pk.operands.size()) && Pk.operands[static_cast<size_t>(G)].act == Y1) ++G;
  if (!Pk.disjoint_sum || Pk.vxm_op != static_cast<int>(Opcode::Add) || G < 4 || G % 2 != 0) return false;
  const int64_t C = (H + G - 1) / G;
  for (size_t i = static_cast<size_t>(G); i < Pk.operands.size(); ++i)
    if (Pk.operands[i].act != ir::kNoTensor) return false;
  for (const LoweredEltwise::Post& po : Pk.post)
    if (po.op != static_cast<int>(Opcode::Add) || po.operand < 2) return false;
  for (int64_t i = 0; i < G; ++i) {
    const std::vector<int64_t>& rm = Pk.operands[static_cast<size_t>(i)].row_map;
    if (static_cast<int64_t>(rm.size()) != C * M) return false;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t m = 0; m < M; ++m)
        if (rm[static_cast<size_t>(c * M + m)] != (c * G + i < H ? (c * G + i) * M + m : -1)) return false;
  }
  // q and K: stacked by lane moves, read by the q.K^T products only.
  const int qi = plain_move(lm, u, Q0.x, H * M, d), ki = plain_move(lm, u, Q0.b, H * T, d);
  if (qi < 0 || ki < 0 || qi == ki || u.nread(Q0.x) != static_cast<size_t>(H) ||
      u.nread(Q0.b) != static_cast<size_t>(H) || lm.layouts.count(Q0.x) || lm.layouts.count(Q0.b))
    return false;
  // Graph tensors stored paired must hold exactly the elements the layouts map.
  auto elements_are = [&](ir::TensorId t, int64_t n) {
    return static_cast<size_t>(t) >= g.tensors().size() || ir::num_elements(g.tensor(t).shape) == n;
  };
  if (!elements_are(Q0.x, H * M * d) || !elements_are(Q0.b, H * T * d) || !elements_are(Sc, H * M * T)) return false;
  if (!q_pairs_adjacent(lm.lanes[static_cast<size_t>(qi)], H, M, d, L) &&
      !(reorder_source(g, lm, u, lm.lanes[static_cast<size_t>(qi)], H, M, d, L) &&
        q_pairs_adjacent(lm.lanes[static_cast<size_t>(qi)], H, M, d, L)))
    return false;
  *out = PairChain{mi, ei, static_cast<size_t>(pk), Sc, Mt, e, Y1, T, d, H, M, NW, G, C, qi, ki, qk, pv};
  return true;
}

std::vector<size_t> pair_one(const ir::Graph& g, LoweredModel& lm, size_t pm, int64_t L) {
  PairChain c;
  if (!match_pair(g, lm, pm, L, &c)) return {};
  const size_t mi = c.mi, ei = c.ei;
  const ir::TensorId Sc = c.Sc, Mt = c.Mt, e = c.e, Y1 = c.Y1;
  const int64_t T = c.T, d = c.d, H = c.H, M = c.M, NW = c.NW, G = c.G, C = c.C;
  const int qi = c.qi, ki = c.ki;
  const std::vector<int>& qk = c.qk;
  const std::vector<int>& pv = c.pv;
  LoweredEltwise& Pk = lm.eltwise[lm.steps[c.pk].index];
  // Rewrite. q: pair p's row m = head 2p's and 2p + 1's q side by side.
  const int64_t R = H / 2 * M;
  {
    LoweredLane& Mq = lm.lanes[static_cast<size_t>(qi)];
    std::vector<int64_t> xr, xc;
    for (int64_t p = 0; p < H / 2; ++p)
      for (int64_t m = 0; m < M; ++m) {
        xr.push_back(Mq.x_rows[static_cast<size_t>(2 * p * M + m)]);
        xc.push_back(Mq.x_cols[static_cast<size_t>(2 * p * M + m)]);
      }
    Mq.x_rows = std::move(xr);
    Mq.x_cols = std::move(xc);
    Mq.move_width = 2 * d;
    Mq.y_shape = {R, 2 * d};
    relayout(g, lm, Mq.y, Mq.y_shape, H * M * d, [&](int64_t i) {
      const int64_t r = i / d, k = i % d, h = r / M, m = r % M;
      return ((h / 2) * M + m) * 2 * d + (h % 2) * d + k;
    });
  }
  {  // K: head h's token rows at lanes d (h % 2), zeros elsewhere.
    LoweredLane& Mk = lm.lanes[static_cast<size_t>(ki)];
    Mk.y_cols.clear();
    for (int64_t r = 0; r < H * T; ++r) Mk.y_cols.push_back(d * ((r / T) % 2));
    Mk.move_width = d;
    Mk.y_shape = {H * T, 2 * d};
    relayout(g, lm, Mk.y, Mk.y_shape, H * T * d, [&](int64_t i) {
      const int64_t r = i / d;
      return r * 2 * d + ((r / T) % 2) * d + i % d;
    });
  }
  std::vector<size_t> dead;
  auto pair_products = [&](const std::vector<int>& prods, int64_t K, int64_t N, const std::string& suffix) {
    for (int64_t p = 0; p < H / 2; ++p) {
      LoweredLayer& A = lm.layers[lm.steps[static_cast<size_t>(prods[static_cast<size_t>(2 * p)])].index];
      dead.push_back(lm.steps[static_cast<size_t>(prods[static_cast<size_t>(2 * p + 1)])].index);
      A.name = op_of(A.name) + suffix + std::to_string(p);
      A.K = K;
      A.N = N;
      A.b_row0 = 2 * p * T;
      for (int64_t m = 0; m < M; ++m) {
        A.x_rows[static_cast<size_t>(m)] = p * M + m;
        A.y_rows[static_cast<size_t>(m)] = p * M + m;
      }
      A.y_shape = {R, N};
    }
  };
  // Scores: pair p's row m = [s_a(m) | s_b(m)].
  pair_products(qk, 2 * d, 2 * T, ".pair");
  relayout(g, lm, Sc, {R, 2 * T}, H * M * T, [&](int64_t i) {
    const int64_t r = i / T, h = r / M, m = r % M;
    return ((h / 2) * M + m) * 2 * T + (h % 2) * T + i % T;
  });
  {  // Row max per segment of T lanes, exp on the paired rows.
    LoweredLane& Mx = lm.lanes[mi];
    Mx.segment = T;
    Mx.y_shape = {R, 1};
    set_shape(g, lm, Mt, Mx.y_shape);
    LoweredEltwise& E = lm.eltwise[ei];
    E.y_shape = {R, 2 * T};
    set_shape(g, lm, e, E.y_shape);
  }
  // P.V: pair p's e row times the pair's 2 T rows of V|1 (K = 2 T): both heads' outputs and sums.
  pair_products(pv, 2 * T, NW, ".pair");
  set_shape(g, lm, Y1, {R, NW});
  {  // The packed sum: G / 2 pair rows a group.
    std::vector<EltOperand> ops;
    std::vector<LoweredEltwise::Post> post;
    for (int64_t i = 0; i < G / 2; ++i) {
      EltOperand o;
      o.act = Y1;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t m = 0; m < M; ++m) {
          const int64_t pr = c * (G / 2) + i;  // pair index
          o.row_map.push_back(2 * pr < H ? pr * M + m : -1);
        }
      ops.push_back(std::move(o));
      if (i >= 2) post.push_back({static_cast<int>(Opcode::Add), 0.f, static_cast<int>(i)});
    }
    for (size_t i = static_cast<size_t>(G); i < Pk.operands.size(); ++i) {
      ops.push_back(std::move(Pk.operands[i]));
      post.push_back({static_cast<int>(Opcode::Add), 0.f, static_cast<int>(ops.size()) - 1});
    }
    Pk.operands = std::move(ops);
    Pk.post = std::move(post);
  }
  return dead;
}

}  // namespace

int pair_heads(const ir::Graph& g, LoweredModel* lm, uint32_t lanes) {
  int paired = 0;
  std::set<size_t> dead;
  for (size_t pm = 0; pm < lm->steps.size(); ++pm) {
    if (!lm->steps[pm].lane || lm->lanes[lm->steps[pm].index].mode != LoweredLane::Mode::Max) continue;
    const std::vector<size_t> d = pair_one(g, *lm, pm, static_cast<int64_t>(lanes));
    if (d.empty()) continue;
    ++paired;
    dead.insert(d.begin(), d.end());
    // The second head's products leave the step order (pm, the max, keeps its place among the rest).
    auto gone = [&](const LoweredStep& st) { return is_layer(st) && std::find(d.begin(), d.end(), st.index) != d.end(); };
    pm -= static_cast<size_t>(std::count_if(lm->steps.begin(), lm->steps.begin() + static_cast<std::ptrdiff_t>(pm), gone));
    lm->steps.erase(std::remove_if(lm->steps.begin(), lm->steps.end(), gone), lm->steps.end());
  }
  if (dead.empty()) return paired;
  // Drop the dead layers and renumber the steps' layer indices.
  std::vector<char> gone(lm->layers.size(), 0);
  for (size_t i : dead) gone[i] = 1;
  remove_entries(&lm->layers, gone, &lm->steps, is_layer);
  return paired;
}

}  // namespace lpu::compiler
