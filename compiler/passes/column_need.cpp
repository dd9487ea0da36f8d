// column_need (column_need.h): first reader of each column tile of a product's output.
#include "compiler/passes/column_need.h"

#include <algorithm>

namespace lpu::compiler {

std::vector<uint32_t> column_need(const LoweredModel& lm, const StepUses& uses, size_t pos, uint32_t lanes) {
  const LoweredStep& st = lm.steps[pos];
  if (!st.dense) return {};
  const LoweredLayer& L = lm.layers[st.index];
  const int64_t N = L.N;
  const size_t nt = static_cast<size_t>((N + lanes - 1) / lanes);
  if (nt < 2) return {};
  const uint32_t none = static_cast<uint32_t>(lm.steps.size());
  std::vector<uint32_t> rank(nt, none);
  auto mark = [&](int64_t c0, int64_t c1, size_t q) {  // columns [c0, c1) first read at step q
    c0 = std::max<int64_t>(c0, 0);
    c1 = std::min<int64_t>(c1, N);
    for (int64_t t = c0 / lanes; c0 < c1 && t <= (c1 - 1) / lanes; ++t)
      rank[static_cast<size_t>(t)] = std::min(rank[static_cast<size_t>(t)], static_cast<uint32_t>(q));
  };
  if (L.y2 != ir::kNoTensor) {  // a quantized copy of y (same columns): its readers read all of it
    const auto c = uses.readers.find(L.y2);
    if (c != uses.readers.end())
      for (size_t q : c->second)
        if (q > pos) mark(0, N, q);
  }
  const auto it = uses.readers.find(L.y);
  const std::vector<size_t> no_readers;
  for (size_t q : it == uses.readers.end() ? no_readers : it->second) {
    if (q <= pos) continue;
    const LoweredStep& r = lm.steps[q];
    bool ranged = false;
    if (r.lane) {
      const LoweredLane& Ln = lm.lanes[r.index];
      if (Ln.mode == LoweredLane::Mode::Move && Ln.x == L.y && Ln.move_width > 0) {
        ranged = true;
        for (int64_t c : Ln.x_cols) mark(c, c + Ln.move_width, q);
      }
    } else if (r.dense) {
      const LoweredLayer& R = lm.layers[r.index];
      if (!R.xsegs.empty() && R.b != L.y && R.residual != L.y && R.row_div != L.y) {
        ranged = true;
        for (const LoweredLayer::XSegment& s : R.xsegs)
          if (s.x == L.y) mark(s.col0, s.col0 + s.width, q);
      }
    }
    if (!ranged) mark(0, N, q);
  }
  if (std::all_of(rank.begin(), rank.end(), [&](uint32_t r) { return r == rank[0]; })) return {};
  return rank;
}

}  // namespace lpu::compiler
