// ones_in_projection (ones_in_projection.h): V's ones lanes copied from a ones column of its
// projection by V's lane move, instead of a VXM pass after the move.
#include "compiler/passes/ones_in_projection.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "compiler/passes/column_repack.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

struct Match {
  size_t pass = 0;          // position of the ones pass in lm.steps
  size_t move = 0;          // lm.lanes index of V's move
  std::vector<int64_t> one;  // per V row: its ones lane
};

// The ones pass at step position pe: max(MV, c) over MV written only by a lane move and read only
// by the pass, each constant row -inf on that row's moved lanes, 1 in one other lane, +0 or -inf
// elsewhere.
bool match_pass(const ir::Graph& g, const LoweredModel& lm, const StepUses& u, size_t pe, Match* m) {
  if (!is_eltwise(lm.steps[pe])) return false;
  const LoweredEltwise& E = lm.eltwise[lm.steps[pe].index];
  if (E.vxm_op != static_cast<int>(Opcode::Max) || !E.has_op || E.relu || !E.post.empty() || E.operands.size() != 2 ||
      E.y2 != ir::kNoTensor || E.y_shape.empty() || lm.layouts.count(E.y))
    return false;
  const EltOperand& a = E.operands[0];
  const EltOperand& c = E.operands[1];
  const int64_t NW = E.y_shape.back();
  if (a.act == ir::kNoTensor || !a.row_map.empty() || a.lane_bcast || c.act != ir::kNoTensor || c.const_rows < 1 ||
      c.values.size() != static_cast<size_t>(c.const_rows * NW))
    return false;
  const ir::TensorId MV = a.act;
  const auto w = u.writers.find(MV);
  const auto r = u.readers.find(MV);
  if (w == u.writers.end() || w->second.size() != 1 || r == u.readers.end() || r->second != std::vector<size_t>{pe} ||
      lm.layouts.count(MV) || std::find(g.outputs().begin(), g.outputs().end(), MV) != g.outputs().end())
    return false;
  const LoweredStep& ms = lm.steps[w->second[0]];
  if (!ms.lane) return false;
  const LoweredLane& mv = lm.lanes[ms.index];
  const int64_t rows = static_cast<int64_t>(mv.x_rows.size());
  if (mv.mode != LoweredLane::Mode::Move || mv.move_width <= 0 || ir::num_elements(E.y_shape) != rows * NW ||
      E.y_shape != mv.y_shape || !mv.one_cols.empty() || (!c.row_map.empty() && c.row_map.size() != static_cast<size_t>(rows)))
    return false;
  const float ninf = -std::numeric_limits<float>::infinity();
  m->one.assign(static_cast<size_t>(rows), -1);
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t cr = c.row_map.empty() ? (c.const_rows == 1 ? 0 : row) : c.row_map[static_cast<size_t>(row)];
    if (cr < 0 || cr >= c.const_rows) return false;
    const int64_t lo = mv.y_cols.empty() ? 0 : mv.y_cols[static_cast<size_t>(row)];
    for (int64_t l = 0; l < NW; ++l) {
      const float v = c.values[static_cast<size_t>(cr * NW + l)];
      const bool moved = l >= lo && l < lo + mv.move_width;
      if (v == 1.f && !moved && m->one[static_cast<size_t>(row)] < 0) {
        m->one[static_cast<size_t>(row)] = l;
      } else if (!(v == ninf || (!moved && v == 0.f && !std::signbit(v)))) {
        return false;
      }
    }
    if (m->one[static_cast<size_t>(row)] < 0) return false;
  }
  m->pass = pe;
  m->move = ms.index;
  return true;
}

// Repacks the product writing V's source and points every lane move reading it at the new columns;
// sets one_cols / one_lanes of V's move. False (nothing changed) if the source does not qualify.
bool repack_source(const ir::Graph& g, LoweredModel& lm, const StepUses& u, const Match& m, int64_t L) {
  const ir::TensorId Y = lm.lanes[m.move].x;
  const auto w = u.writers.find(Y);
  if (w == u.writers.end() || w->second.size() != 1 || !is_layer(lm.steps[w->second[0]]) ||
      std::find(g.outputs().begin(), g.outputs().end(), Y) != g.outputs().end())
    return false;
  LoweredLayer& P = lm.layers[lm.steps[w->second[0]].index];
  const int64_t N = P.N;
  if (!columns_repackable(g, lm, P) || P.k_blocks != 0 || !P.tap_rows.empty() || P.relu ||
      P.y_f32)  // the moves keep Y's type: V|1 must stay f16
    return false;
  // Units: each distinct range a lane move reads (kept whole, inside one vector); `ones` marks V's.
  struct Unit { int64_t c = 0, w = 0; bool ones = false; };
  std::vector<Unit> units;
  std::vector<int64_t> owner(static_cast<size_t>(N), -1);
  std::vector<size_t> moves;
  const auto rd = u.readers.find(Y);
  if (rd == u.readers.end()) return false;
  for (size_t pos : rd->second) {
    if (!lm.steps[pos].lane) return false;
    const LoweredLane& Mv = lm.lanes[lm.steps[pos].index];
    if (Mv.mode != LoweredLane::Mode::Move || Mv.x != Y || Mv.move_width <= 0 || !Mv.one_cols.empty()) return false;
    moves.push_back(lm.steps[pos].index);
    const bool ones = lm.steps[pos].index == m.move;
    for (int64_t c : std::set<int64_t>(Mv.x_cols.begin(), Mv.x_cols.end())) {
      if (c < 0 || c + Mv.move_width > N || c / L != (c + Mv.move_width - 1) / L) return false;
      const int64_t o = owner[static_cast<size_t>(c)];
      if (o >= 0) {  // a range read by two moves: the same range
        Unit& un = units[static_cast<size_t>(o)];
        if (un.c != c || un.w != Mv.move_width) return false;
        un.ones = un.ones || ones;
        continue;
      }
      for (int64_t k = c; k < c + Mv.move_width; ++k)
        if (owner[static_cast<size_t>(k)] >= 0) return false;
      for (int64_t k = c; k < c + Mv.move_width; ++k) owner[static_cast<size_t>(k)] = static_cast<int64_t>(units.size());
      units.push_back({c, Mv.move_width, ones});
    }
  }
  // First fit, widest first; a vector holding a V range keeps one lane for its ones column.
  std::vector<size_t> order(units.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return units[a].w > units[b].w; });
  std::vector<int64_t> fill;
  std::vector<char> has_one;
  std::vector<int64_t> newcol(static_cast<size_t>(N), -1);
  for (size_t i : order) {
    const Unit& un = units[i];
    size_t v = 0;
    while (v < fill.size() && fill[v] + un.w + ((has_one[v] || un.ones) ? 1 : 0) > L) ++v;
    if (v == fill.size()) {
      fill.push_back(0);
      has_one.push_back(0);
    }
    for (int64_t k = 0; k < un.w; ++k) newcol[static_cast<size_t>(un.c + k)] = static_cast<int64_t>(v) * L + fill[v] + k;
    fill[v] += un.w;
    has_one[v] = has_one[v] || un.ones;
  }
  std::vector<int64_t> one_col(fill.size(), -1);
  int64_t N2 = 0;
  for (size_t v = 0; v < fill.size(); ++v) {
    if (has_one[v]) one_col[v] = static_cast<int64_t>(v) * L + fill[v]++;
    if (fill[v] > 0) N2 = std::max<int64_t>(N2, static_cast<int64_t>(v) * L + fill[v]);
  }
  // Unread columns: the free places in order (after the packing's, widening N2 if they must).
  {
    std::vector<char> taken(static_cast<size_t>(fill.size()) * static_cast<size_t>(L) + static_cast<size_t>(N), 0);
    for (int64_t nc : newcol)
      if (nc >= 0) taken[static_cast<size_t>(nc)] = 1;
    for (int64_t oc : one_col)
      if (oc >= 0) taken[static_cast<size_t>(oc)] = 1;
    size_t at = 0;
    for (int64_t& nc : newcol) {
      if (nc >= 0) continue;
      while (taken[at]) ++at;
      nc = static_cast<int64_t>(at);
      taken[at] = 1;
      N2 = std::max<int64_t>(N2, nc + 1);
    }
  }
  if ((N2 + L - 1) / L > (N + L - 1) / L) return false;  // more column tiles: more installs
  // Apply: the repack (weights, bias, stored shape, Y's layout, the moves' source columns), then
  // the ones columns' bias 1 (their weights are 0) and V's extra lane.
  repack_columns(g, lm, P, newcol, N2, moves);
  P.bias.resize(static_cast<size_t>(N2), 0.f);  // a product without a bias gets one for the ones
  for (int64_t oc : one_col)
    if (oc >= 0) P.bias[static_cast<size_t>(oc)] = 1.f;
  LoweredLane& mv = lm.lanes[m.move];
  for (size_t r = 0; r < mv.x_cols.size(); ++r) {
    mv.one_cols.push_back(one_col[static_cast<size_t>(mv.x_cols[r] / L)]);
    mv.one_lanes.push_back(m.one[r]);
  }
  return true;
}

}  // namespace

int ones_in_projection(const ir::Graph& g, LoweredModel* lm, uint32_t lanes) {
  int done = 0;
  for (size_t pe = 0; pe < lm->steps.size(); ++pe) {
    const StepUses u = step_uses(*lm);
    Match m;
    if (!match_pass(g, *lm, u, pe, &m) || !repack_source(g, *lm, u, m, static_cast<int64_t>(lanes))) continue;
    // V's move writes V1; the pass and MV leave the model (MV keeps its entry in `extra`, unused).
    const size_t ei = lm->steps[pe].index;
    lm->lanes[m.move].y = lm->eltwise[ei].y;
    lm->steps.erase(lm->steps.begin() + static_cast<std::ptrdiff_t>(pe));
    lm->eltwise.erase(lm->eltwise.begin() + static_cast<std::ptrdiff_t>(ei));
    for (LoweredStep& st : lm->steps)
      if (is_eltwise(st) && st.index > ei) --st.index;
    --pe;
    ++done;
  }
  return done;
}

}  // namespace lpu::compiler
