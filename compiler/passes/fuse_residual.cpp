// Residual-Add fusion (see fuse_residual.h).
#include "compiler/passes/fuse_residual.h"

#include <algorithm>
#include <map>
#include <vector>

#include "isa/isa.h"

namespace lpu::compiler {

namespace {

// Branch order (fuse_residual.h): for each residual Add whose two operands are written by products
// only, the products of the operand written later in step order (`late`) move to just after the
// last step writing anything they read, when that is before the other operand's first product.
// Allowed only when late's products write nothing but that operand and the Add is its one reader,
// so every reader of what moves still comes after it and nothing it reads moves past it.
void hoist_residual_branches(LoweredModel& lm) {
  for (size_t si = 0; si < lm.steps.size(); ++si) {
    const LoweredStep& st = lm.steps[si];
    if (st.dense || st.gather || st.lane) continue;
    const LoweredEltwise& E = lm.eltwise[st.index];
    if (!E.has_op || E.vxm_op != static_cast<int>(Opcode::Add) || E.operands.size() != 2 || !E.post.empty() ||
        E.y2 != ir::kNoTensor || E.disjoint_sum || E.operands[0].act == E.operands[1].act)
      continue;
    std::vector<size_t> w[2];  // each operand's writing steps (all before the Add)
    bool ok = true;
    for (size_t k = 0; k < 2 && ok; ++k) {
      const EltOperand& o = E.operands[k];
      ok = o.act != ir::kNoTensor && o.row_map.empty() && !o.lane_bcast && !lm.is_output(o.act);
      for (size_t j = 0; j < lm.steps.size() && ok; ++j) {
        const std::vector<ir::TensorId> wr = step_writes(lm, lm.steps[j]);
        const std::vector<ir::TensorId> rd = step_reads(lm, lm.steps[j]);
        if (std::find(wr.begin(), wr.end(), o.act) != wr.end()) {
          const LoweredStep& ws = lm.steps[j];
          ok = j < si && is_layer(ws) && wr.size() == 1;
          w[k].push_back(j);
        }
        if (j != si && std::find(rd.begin(), rd.end(), o.act) != rd.end()) ok = false;
      }
      ok = ok && !w[k].empty();
    }
    if (!ok) continue;
    const size_t late = w[1].back() > w[0].back() ? 1 : 0;
    const std::vector<size_t>& moving = w[late];
    const size_t first_other = w[1 - late].front();
    if (moving.front() < first_other) continue;  // already before the other operand's products
    size_t pos = 0;  // just after the last earlier step writing what the moving products read
    for (size_t j : moving)
      for (ir::TensorId t : step_reads(lm, lm.steps[j]))
        for (size_t k = 0; k < moving.front(); ++k) {
          const std::vector<ir::TensorId> wr = step_writes(lm, lm.steps[k]);
          if (std::find(wr.begin(), wr.end(), t) != wr.end()) pos = std::max(pos, k + 1);
        }
    if (pos > first_other) continue;
    std::vector<LoweredStep> moved, order;
    for (size_t j = 0; j < lm.steps.size(); ++j)
      if (std::find(moving.begin(), moving.end(), j) != moving.end()) moved.push_back(lm.steps[j]);
    for (size_t j = 0; j < lm.steps.size(); ++j) {
      if (j == pos) order.insert(order.end(), moved.begin(), moved.end());
      if (std::find(moving.begin(), moving.end(), j) == moving.end()) order.push_back(lm.steps[j]);
    }
    lm.steps = std::move(order);  // si's Add moved by nothing (pos < si and the products were before it)
  }
}

// The shape t is stored in, and whether it is stored f16 (empty shape: not known here); writers as
// step_uses gives them, with the Adds folded so far.
std::vector<int64_t> stored_as(const ir::Graph& g, const LoweredModel& lm,
                               const std::map<ir::TensorId, std::vector<size_t>>& writers, ir::TensorId t,
                               bool* f16) {
  *f16 = false;
  const auto w = writers.find(t);
  if (w == writers.end() || w->second.empty()) {  // a graph input the host writes as f16 values
    for (const LoweredInput& in : lm.inputs)
      if (in.alias == t && in.lookup_rows == 0 && ir::dtype_is_float(lm.tensor(g, t).dtype)) {
        *f16 = true;
        return in.shape;
      }
    return {};
  }
  if (w->second.size() != 1) {  // several products writing disjoint rows (a pixel-unpacking conv)
    std::vector<int64_t> ys;
    for (size_t si : w->second) {
      const LoweredStep& st = lm.steps[si];
      if (!st.dense || st.gather || st.lane) return {};
      const LoweredLayer& L = lm.layers[st.index];
      if (L.y != t || L.y_rows.empty() || L.y_f32 || (!ys.empty() && L.y_shape != ys)) return {};
      ys = L.y_shape;
    }
    *f16 = !lm.f32_output(t);
    return ys;
  }
  const LoweredStep& st = lm.steps[w->second[0]];
  if (st.gather) return {};
  const ir::Shape& gs = lm.tensor(g, t).shape;
  if (st.lane) {
    const LoweredLane& Ln = lm.lanes[st.index];
    if (Ln.mode == LoweredLane::Mode::Broadcast || Ln.mode == LoweredLane::Mode::Move) return {};  // x's dtype
    *f16 = !Ln.y_f32 && !lm.f32_output(t);
    return Ln.y_shape;
  }
  if (st.dense) {
    const LoweredLayer& L = lm.layers[st.index];
    *f16 = !L.y_f32 && !lm.f32_output(t) && L.y == t;
    return L.y_shape.empty() ? gs : L.y_shape;
  }
  const LoweredEltwise& E = lm.eltwise[st.index];
  *f16 = !E.y_f32 && !lm.f32_output(t) && E.y == t;
  return E.y_shape.empty() ? gs : E.y_shape;
}

// The operand (0 or 1) of the residual Add E at step position si that products write for this Add
// alone and that can take the other operand into their epilogue (same stored f16 shape ys, the
// other written before them); the later such product when both qualify; -1 if neither.
int residual_operand(const ir::Graph& g, const LoweredModel& lm, const StepUses& uses,
                     const std::vector<char>& drop, const LoweredEltwise& E, size_t si,
                     const std::vector<int64_t>& ys) {
  const std::map<ir::TensorId, std::vector<size_t>>& writers = uses.writers;
  const std::map<ir::TensorId, std::vector<size_t>>& readers = uses.readers;
  // The operand a product writes for this Add alone; the later such product when both qualify.
  int best = -1;
  size_t best_step = 0;
  for (int k = 0; k < 2; ++k) {
    const ir::TensorId a = E.operands[static_cast<size_t>(k)].act, r = E.operands[static_cast<size_t>(1 - k)].act;
    const auto wa = writers.find(a);
    // (a holding several pixels a row, LoweredModel::pixel_packed, has no residual of its layout)
    const auto ra = readers.find(a);
    if (wa == writers.end() || ra == readers.end() || ra->second.size() != 1 || lm.is_output(a) ||
        lm.rearranged.count(a) || lm.pixel_packed.count(a))
      continue;
    // The products writing a (one, or several writing disjoint rows: each epilogue adds R's row
    // of the same stored row, so a row map on y is fine).
    bool products = true;
    for (size_t w : wa->second) {
      const LoweredStep& ls = lm.steps[w];
      products = products && is_layer(ls) && !drop[w] && w < si;
      if (!products) break;
      const LoweredLayer& L = lm.layers[ls.index];
      products = !L.relu && L.residual == ir::kNoTensor && L.y2 == ir::kNoTensor && !L.copy && L.y == a;
    }
    if (!products) continue;
    const size_t li = wa->second.back(), first = wa->second.front();
    bool a16 = false, r16 = false;
    if (stored_as(g, lm, writers, a, &a16) != ys || !a16 || stored_as(g, lm, writers, r, &r16) != ys || !r16)
      continue;
    const auto wr = writers.find(r);
    bool before = true;
    if (wr != writers.end())
      for (size_t w : wr->second) before = before && w < first && !drop[w];
    if (!before) continue;
    if (best < 0 || li > best_step) {
      best = k;
      best_step = li;
    }
  }
  return best;
}

}  // namespace

int fuse_residual_adds(const ir::Graph& g, LoweredModel* lmp) {
  LoweredModel& lm = *lmp;
  hoist_residual_branches(lm);
  StepUses uses = step_uses(lm);  // writers are updated below as Adds fold into products
  std::vector<char> drop(lm.steps.size(), 0);
  int fused = 0;
  for (size_t si = 0; si < lm.steps.size(); ++si) {
    const LoweredStep& st = lm.steps[si];
    if (st.dense || st.gather || st.lane) continue;
    const LoweredEltwise& E = lm.eltwise[st.index];
    if (!E.has_op || E.vxm_op != static_cast<int>(Opcode::Add) || E.operands.size() != 2 || !E.post.empty() ||
        E.y2 != ir::kNoTensor || E.disjoint_sum || lm.rearranged.count(E.y))
      continue;
    bool acts = true;
    for (const EltOperand& o : E.operands)
      acts = acts && o.act != ir::kNoTensor && o.row_map.empty() && !o.lane_bcast;
    if (!acts || E.operands[0].act == E.operands[1].act) continue;
    bool y16 = false;
    const std::vector<int64_t> ys = stored_as(g, lm, uses.writers, E.y, &y16);
    if (!y16 || ys.empty()) continue;
    const int best = residual_operand(g, lm, uses, drop, E, si, ys);
    if (best < 0) continue;
    const std::vector<size_t> products = uses.writers[E.operands[static_cast<size_t>(best)].act];
    for (size_t w : products) {
      LoweredLayer& L = lm.layers[lm.steps[w].index];
      L.residual = E.operands[static_cast<size_t>(1 - best)].act;
      L.relu = E.relu;
      L.y = E.y;
      L.y_shape = E.y_shape;
    }
    uses.writers[E.y] = products;
    drop[si] = 1;
    ++fused;
  }
  if (!fused) return 0;
  // Remove the fused steps and their eltwise entries (indices of the others renumbered).
  std::vector<char> gone(lm.eltwise.size(), 0);
  for (size_t si = 0; si < lm.steps.size(); ++si)
    if (drop[si]) gone[lm.steps[si].index] = 1;
  std::vector<LoweredStep> steps;
  for (size_t si = 0; si < lm.steps.size(); ++si)
    if (!drop[si]) steps.push_back(lm.steps[si]);
  lm.steps = std::move(steps);
  remove_entries(&lm.eltwise, gone, &lm.steps, is_eltwise);
  return fused;
}

}  // namespace lpu::compiler
