// MatmulScheduler::Run, part 2: the work decomposition. A product's work becomes per-plane jobs
// (row block x column tile, possibly K-split), listed runs of batched products, or the balanced cut
// of an install-bound layer's tiles (matmul_kernel.h states the rules; matmul_run.h lists the parts).
#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "compiler/backend/matmul_detail.h"
#include "compiler/backend/matmul_run.h"

namespace lpu::compiler {

using namespace matmul_detail;

namespace {

std::vector<uint32_t> k_range(uint32_t k0, uint32_t k1) {  // k-tiles k0..k1-1 in k order
  std::vector<uint32_t> ks(k1 - k0);
  std::iota(ks.begin(), ks.end(), k0);
  return ks;
}

}  // namespace

void MatmulScheduler::Run::decompose(Plan plan, bool* both, bool ready_order, bool* reorders) {
  // ---- work decomposition: jobs = (row block, column tile), dealt round-robin to planes.
  // Install-bound layers (batch-1 decode: a tile's abc rows take at most half the cycles of loading
  // its weights): one row block, and the (column tile, k-tile) sequence is cut into contiguous
  // pieces of equal install time, one per plane, counting from the cycle each plane's shadow buffer
  // is free (so the previous layer's imbalance is made up here). A column tile whose k-tiles fall
  // on several planes is a split job group whose partial rows are summed at the VXM (as the K-split
  // below). Every plane takes fresh accumulator rows (Plane::acc_next), so no abc ever waits for
  // another plane's drain.
  // Also install-heavy layers with more rows (M * abc occupancy < the tiles' loaded rows on
  // average, e.g. ResNet-50 stage 3: 196 rows, 256-row tap tiles) and at least one tile per plane
  // (with fewer, whole tiles cannot keep every plane busy and cutting the rows of X is better: a
  // 320^3 int8 GEMM took 812 cycles balanced, 595 with 4 row blocks): the plan choice below deals
  // whole tiles to at most planes / jobs planes (9 tap tiles as G = 3: one plane idle, the others
  // 3 tiles each), while the balanced cut uses every plane and starts each from its shadow-free
  // cycle. Not for activation weights (runs of batched products, listed below).
  uint64_t loaded_rows = 0;
  for (uint32_t nt = 0; nt < Nt; ++nt)
    for (uint32_t kt = 0; kt < Kt; ++kt) {
      const auto rr = tile_rows(kt, nt);
      loaded_rows += rr.second > rr.first ? rr.second - rr.first : 0;
    }
  const uint64_t abc_per_tile =
      static_cast<uint64_t>(M) * std::max<uint64_t>(1, occupancy_of(cfg, Opcode::Abc, in_t));
  const bool install_heavy =
      !wact && static_cast<uint64_t>(Nt) * Kt >= planes_.size() && abc_per_tile * Nt * Kt < loaded_rows;
  const bool heavy_only = install_heavy && !install_bound_rows(cfg, M, in_t);
  balanced = vxm_slice_ >= 0 && M <= half && (install_bound_rows(cfg, M, in_t) || install_heavy) &&
             static_cast<int64_t>(Nt) * M <= static_cast<int64_t>(cfg.mxm_acc_rows);
  if (both != nullptr) *both = balanced && heavy_only;
  if (plan == Plan::RowCut && heavy_only) balanced = false;
  if (k_.forced_ != nullptr && balanced == k_.forced_->pieces.empty())
    throw std::logic_error(fmt::format("{}: the replayed decision {} a balanced cut, this schedule {}",
                                       spec.name, k_.forced_->pieces.empty() ? "has no" : "has",
                                       balanced ? "needs one" : "does not"));
  // Row blocks (chunks) and K-split (G): when there are fewer (row block, column tile) jobs than
  // planes, either the rows are cut into more blocks (every plane then installs every weight tile
  // of its column) or the k-tiles of a job are split over G planes, whose G partial accumulator
  // rows are emitted so that they meet at the VXM on the same cycle(s) and are summed there (no
  // SRAM round trip); for tall M the block count may rise so the blocks deal evenly over the
  // planes. Each candidate (chunks, G) is costed as the busiest plane's tile pipeline: its jobs
  // (dealt round-robin) times the tiles of a job, each max(rows loaded, abc cycles) plus the
  // lw/iw latency; the default (the row cut, K-split only for what the rows leave) is kept unless
  // another is strictly cheaper.
  const int64_t c_min = (M + half - 1) / half;
  chunks = c_min;
  G = 1;
  // Products whose weights are an activation (batched matmuls: attention q.K^T and P.V, one
  // product per head) come in runs of independent products: each job goes whole to the plane that
  // can finish it first (list scheduling over the planes' state), so a run keeps every plane busy
  // on its own product instead of all planes installing every product's tile (4x the `lw` rows,
  // and two reads of each weight row, one per stream direction, from one SRAM slice).
  listed = wact && !balanced && vxm_slice_ >= 0;
  if (!balanced && !listed) {
    if (chunks * Nt < static_cast<int64_t>(P))
      chunks = std::min<int64_t>(M, (static_cast<int64_t>(P) + Nt - 1) / Nt);
    {
      const int64_t r = (M + chunks - 1) / chunks;
      chunks = (M + r - 1) / r;
    }
    if (vxm_slice_ >= 0 && chunks * Nt < static_cast<int64_t>(P) && Kt >= 2)
      G = static_cast<uint32_t>(std::min<int64_t>(Kt, static_cast<int64_t>(P) / (chunks * Nt)));
    uint64_t best = plan_cost(chunks, G);
    const int64_t c_max = std::min<int64_t>(
        M, std::max<int64_t>(c_min, (static_cast<int64_t>(P) + Nt - 1) / Nt) + static_cast<int64_t>(P));
    for (int64_t c = c_min; c <= c_max; ++c) {
      const int64_t r = (M + c - 1) / c;
      if ((M + r - 1) / r != c) continue;  // the same blocks as a smaller c
      for (uint32_t g = 1; g <= std::min<uint32_t>(Kt, static_cast<uint32_t>(P)); ++g) {
        if (g > 1 && (vxm_slice_ < 0 || c * Nt * g > static_cast<int64_t>(P))) break;
        const uint64_t cost = plan_cost(c, g);
        if (cost < best) {
          best = cost;
          chunks = c;
          G = g;
        }
      }
    }
  }
  R = (M + chunks - 1) / chunks;
  double_buffer = 2 * R <= static_cast<int64_t>(cfg.mxm_acc_rows);
  base_jobs = chunks * static_cast<int64_t>(Nt);
  ps.assign(P, PS{});
  if (!balanced)
    deal_jobs();
  else
    balanced_cut(ready_order, reorders);
  direct_all = direct && gsz.empty();
  for (PS& s : ps) s.iw_time.assign(s.tiles.size(), -1);
}

// The busiest plane's tile pipeline for c row blocks and a K-split of g: its jobs (dealt
// round-robin) times the tiles of a job, each max(rows loaded, abc cycles) plus the lw/iw latency.
uint64_t MatmulScheduler::Run::plan_cost(int64_t c, uint32_t g) const {
  const int64_t r = (M + c - 1) / c, cc = (M + r - 1) / r;
  const uint64_t per_plane =
      static_cast<uint64_t>((cc * Nt * g + static_cast<int64_t>(P) - 1) / static_cast<int64_t>(P));
  uint64_t worst = 0;
  for (uint32_t nt = 0; nt < Nt; ++nt)
    for (uint32_t kg = 0; kg < g; ++kg) {
      uint64_t job = 0;
      for (uint32_t kt = kg * Kt / g; kt < (kg + 1) * Kt / g; ++kt) {
        const auto rr = tile_rows(kt, nt);
        job += std::max<uint64_t>(rr.second > rr.first ? rr.second - rr.first : 0,
                                  static_cast<uint64_t>(r) * occ_abc) +
               lat_lw + lat_iw;
      }
      worst = std::max(worst, job);
    }
  // A K-split job's rows drain in lockstep with its partners' (and pay the VXM sum): counted as
  // one more abc pass over its rows.
  if (g > 1) worst += static_cast<uint64_t>(r) * occ_abc + static_cast<uint64_t>(lat_add) * (g - 1);
  return per_plane * worst;
}

// korder (optional): the job's k-tiles in the order its plane runs them (default k0..k1-1).
void MatmulScheduler::Run::add_job(size_t pi, const Job& jb, const std::vector<uint32_t>* korder) {
  PS& s = ps[pi];
  const size_t lj = s.jobs.size();
  s.jobs.push_back(jb);
  s.pending.push_back(0);
  // Every job takes the plane's next R accumulator rows (a ring over all of them), so a job's
  // abc never waits for the drain of the rows two jobs back (double buffering reused them). The
  // ring comes back to rows of a job at least two jobs back (2 R <= acc rows; else every job
  // starts at row 0 and next_event's `back` is 1), whose drains are then all scheduled: a job's
  // first abc waits for that (next_event), and each row's own drain cycle (Plane::acc_read) orders
  // the reuse.
  Plane& pl = planes_[pi];
  if (pl.acc_next + R > static_cast<int64_t>(cfg.mxm_acc_rows)) pl.acc_next = 0;
  const int64_t acc_base = pl.acc_next;
  pl.acc_next += R;
  const std::vector<uint32_t> ks = korder != nullptr ? *korder : k_range(jb.k0, jb.k1);
  for (size_t i = 0; i < ks.size(); ++i) {
    const auto rr = tile_rows(ks[i], jb.nt);
    s.tiles.push_back({lj, ks[i], acc_base, lj, rr.first, rr.second, i == 0, i + 1 == ks.size()});
  }
}

// Row blocks x column tiles (x K-split parts), dealt round-robin to the planes, or listed (each job
// whole to the plane that can finish it first).
void MatmulScheduler::Run::deal_jobs() {
  if (G > 1) {
    parts.resize(static_cast<size_t>(base_jobs));
    gsz.assign(static_cast<size_t>(base_jobs), G);
  }
  size_t jcount = 0;
  // listed: the cycle each plane would be done with what it holds (its shadow free for the next
  // tile's rows, and the current tile's abc done before the install), in job-cost units.
  std::vector<uint64_t> list_end(P, 0);
  if (listed)
    for (size_t i = 0; i < P; ++i) {
      const Plane& pl = planes_[i];
      list_end[i] = std::max(pl.shadow_free, pl.have_abc ? pl.last_abc + 1 : 0);
    }
  for (int64_t c = 0; c < chunks; ++c)
    for (uint32_t nt = 0; nt < Nt; ++nt)
      for (uint32_t kg = 0; kg < G; ++kg, ++jcount) {
        size_t pi = jcount % P;
        if (listed) {
          pi = 0;
          for (size_t i = 1; i < P; ++i)
            if (list_end[i] < list_end[pi]) pi = i;
          uint64_t t = list_end[pi];
          for (uint32_t kt = kg * Kt / G; kt < (kg + 1) * Kt / G; ++kt) {
            const auto rr = tile_rows(kt, nt);
            t += std::max<uint64_t>(rr.second > rr.first ? rr.second - rr.first : 0,
                                    static_cast<uint64_t>(std::min(R, M - c * R)) * occ_abc) +
                 lat_lw + lat_iw;
          }
          list_end[pi] = t;
        }
        Job jb{c * R, std::min(R, M - c * R), nt, 0, kg * Kt / G, (kg + 1) * Kt / G, -1, kg};
        if (G > 1) {
          jb.group = c * Nt + nt;
          parts[static_cast<size_t>(jb.group)].resize(static_cast<size_t>(jb.rows) * G);
        } else {
          jb.rot = jb.rows * static_cast<int64_t>(pi) / static_cast<int64_t>(P);
        }
        add_job(pi, jb);
      }
}

void MatmulScheduler::Run::balanced_cut(bool ready_order, bool* reorders) {
  std::vector<uint64_t> x_kfree;
  k_.last_pieces_ = cut_pieces(&x_kfree);
  jobs_from_pieces(k_.last_pieces_, x_kfree, ready_order, reorders);
}

// The cut: per plane, its pieces (column tile, k-tile, loaded rows) in the cut's order, of about
// equal install time counted from when each plane is free. *x_kfree: per k-tile, the earliest cycle
// a plane starting on it may install (below).
// cut_pieces' figures (matmul_run.h CutCosts).
MatmulScheduler::Run::CutCosts MatmulScheduler::Run::cut_costs() {
  CutCosts cc;
  // Install cycles of a tile: its loaded rows (or its abc rows, if more), plus the lw landing and
  // the iw latency before the next tile's rows may load.
  cc.cost.resize(static_cast<size_t>(Nt) * Kt);
  for (uint32_t nt = 0; nt < Nt; ++nt)
    for (uint32_t kt = 0; kt < Kt; ++kt) {
      const auto rr = tile_rows(kt, nt);
      const uint64_t rows = rr.second > rr.first ? rr.second - rr.first : 0;
      const uint64_t c = std::max<uint64_t>(rows, static_cast<uint64_t>(M) * occ_abc) + lat_lw + lat_iw;
      cc.cost[static_cast<size_t>(nt) * Kt + kt] = c;
      cc.total += c;
    }
  // A plane's install stream is free from its shadow's free cycle, but it can run at most two
  // tiles ahead of X (one active, one in the shadow): count it free from the later of the two.
  // Per k-tile: x_kfree[kt] is the earliest cycle a plane whose first tile is k-tile kt may
  // start installing (the last X vector of column kt ready, less the two tiles it may run ahead).
  // X often lands column by column (an elementwise producer writes vector column c of every row
  // before c + 1), so planes starting on early k-tiles are free before the whole of X is in.
  const uint64_t two_tiles = cc.cost.empty() ? 0 : 2 * cc.total / cc.cost.size();
  cc.x_kfree.assign(Kt, 0);
  for (uint32_t kt = 0; kt < Kt; ++kt) {
    uint64_t r = 0;
    for (int64_t m = 0; m < M; ++m) {
      const XSrc xs = xsrc(kt, m);
      r = std::max(r, xs.t->ready[static_cast<size_t>(xs.row * xs.t->vpr + xs.chunk)]);
    }
    const uint64_t need = r + lat_read + 2 * (lat_lw + lat_iw);
    cc.x_kfree[kt] = need > two_tiles ? need - two_tiles : 0;
    cc.x_free = std::max(cc.x_free, cc.x_kfree[kt]);
  }
  // Finish line F: the planes' free install time above their start sums to total (plus the
  // overhead of the tiles the cut splits between planes).
  cc.total += (P - 1) * (lat_lw + lat_iw);
  // A plane still streaming an earlier product's tile can load one tile into its shadow but
  // install it (and load the next) only after that tile's last abc: counted as a contiguous
  // install stream, it is free one average tile (with the cut's split overhead spread over the
  // tiles, unlike two_tiles above) before then.
  cc.one_tile = cc.cost.empty() ? 0 : cc.total / cc.cost.size();
  cc.col_seq = column_sequence();
  return cc;
}

uint64_t MatmulScheduler::Run::plane_free(size_t i, uint64_t one_tile) const {
  const Plane& pl = planes_[i];
  const uint64_t busy = pl.have_abc ? pl.last_abc + occ_abc + lat_iw : 0;
  return std::max(pl.shadow_free, busy > one_tile ? busy - one_tile : 0);
}

std::vector<uint32_t> MatmulScheduler::Run::column_sequence() const {
  // The column tiles in the cut's order: Y's column order, or with a column need order the tiles
  // sorted by rank and dealt so that plane p's share begins with the p-th earliest (MatmulSpec::
  // col_rank): position p * L + j holds the (j * P + p)-th tile of the sorted order.
  std::vector<uint32_t> col_seq(Nt);
  std::iota(col_seq.begin(), col_seq.end(), 0u);
  if (spec.col_rank.size() == Nt && Nt > P) {
    std::vector<uint32_t> by_rank = col_seq;
    std::stable_sort(by_rank.begin(), by_rank.end(),
                     [&](uint32_t a, uint32_t b) { return spec.col_rank[a] < spec.col_rank[b]; });
    const size_t L = (Nt + P - 1) / P;
    col_seq.clear();
    for (size_t p = 0; p < P; ++p)
      for (size_t j = 0; j < L; ++j)
        if (j * P + p < Nt) col_seq.push_back(by_rank[j * P + p]);
  }
  return col_seq;
}

std::vector<std::vector<MatmulPiece>> MatmulScheduler::Run::cut_plan(const CutCosts& cc,
                                                                     const std::vector<uint64_t>& av) const {
  // Contiguous cut in (column tile, k-tile, row) order: plane i's piece ends where the cumulative
  // cost reaches its cumulative quota; a tile is cut between two planes (rows [lo, a) and [a, hi),
  // each part paying the install overhead) when both parts keep >= kMinPart rows and the spec
  // allows it (MatmulSpec::whole_tiles), else it goes whole to the plane whose quota it fits best.
  constexpr uint32_t kMinPart = 32;
  const uint64_t ovh = lat_lw + lat_iw, abc_rows = static_cast<uint64_t>(M) * occ_abc;
  using Plan = std::vector<std::vector<MatmulPiece>>;
  Plan plan(P);
  std::vector<uint64_t> sorted = av;
  std::sort(sorted.begin(), sorted.end());
  uint64_t F = sorted[0] + cc.total;
  for (size_t n = 1; n <= P; ++n) {  // the n earliest planes share the work
    uint64_t sum = cc.total;
    for (size_t i = 0; i < n; ++i) sum += sorted[i];
    const uint64_t f = sum / n;
    if (n == P || f <= sorted[n]) {
      F = f;
      break;
    }
  }
  const size_t U = cc.cost.size();
  size_t u = 0;
  uint32_t ulo = U > 0 ? tile_rows(0, cc.col_seq[0]).first : 0;
  auto next_tile = [&]() {
    if (++u < U) ulo = tile_rows(static_cast<uint32_t>(u % Kt), cc.col_seq[u / Kt]).first;
  };
  uint64_t quota = 0, cum = 0;
  for (size_t i = 0; i < P; ++i) {
    quota += F > av[i] ? F - av[i] : 0;
    while (u < U) {
      const uint32_t nt = cc.col_seq[u / Kt], kt = static_cast<uint32_t>(u % Kt);
      const uint32_t hi = tile_rows(kt, nt).second;
      const uint64_t left = hi > ulo ? hi - ulo : 0;
      const uint64_t c = std::max(left, abc_rows) + ovh;
      if (i + 1 == P || cum + c <= quota) {
        plan[i].push_back({nt, kt, ulo, hi});
        cum += c;
        next_tile();
        continue;
      }
      const uint64_t budget = quota > cum + ovh ? quota - cum - ovh : 0;
      if (!spec.whole_tiles && budget >= kMinPart && left >= budget + kMinPart && left >= 2 * abc_rows) {
        const uint32_t cut = ulo + static_cast<uint32_t>(budget);
        plan[i].push_back({nt, kt, ulo, cut});
        cum += budget + ovh;
        ulo = cut;
      } else if (2 * (cum + c) <= 2 * quota + c) {
        plan[i].push_back({nt, kt, ulo, hi});
        cum += c;
        next_tile();
      }
      break;
    }
  }
  return plan;
}

std::vector<std::vector<MatmulPiece>> MatmulScheduler::Run::cut_pieces(std::vector<uint64_t>* x_kfree_out) {
  using Piece = MatmulPiece;
  using Plan = std::vector<std::vector<Piece>>;
  const CutCosts cc = cut_costs();
  const uint64_t ovh = lat_lw + lat_iw, abc_rows = static_cast<uint64_t>(M) * occ_abc;
  std::vector<uint64_t> avail(P);
  for (size_t i = 0; i < P; ++i) avail[i] = std::max(plane_free(i, cc.one_tile), cc.x_free);
  const bool forced = k_.forced_ != nullptr;
  if (forced && k_.forced_->pieces.size() != P)
    throw std::logic_error(
        fmt::format("{}: the replayed decision has no balanced cut for {} planes", spec.name, P));
  Plan plan = forced ? k_.forced_->pieces : cut_plan(cc, avail);
  // A plane's start, given its pieces: its shadow free, and each piece's X column ready no later
  // than the plane gets there (x_kfree of the piece's k-tile, less the install cost of the
  // plane's earlier pieces). Re-cut with those starts while they move, so planes on early k-tiles
  // get larger quotas; a plane left empty keeps the whole-X start. Skipped when X's columns land
  // within two install overheads of each other (the starts could move by less than the planner's
  // own slack), and a re-cut that would leave more planes idle is not taken (fewer planes means
  // longer serial k-chains, which the tile-cost estimate undercounts).
  auto planes_used = [](const Plan& q) {
    size_t n = 0;
    for (const auto& v : q) n += v.empty() ? 0 : 1;
    return n;
  };
  const bool x_spread = !forced && Kt > 0 && cc.x_free - cc.x_kfree[0] >= 2 * ovh;
  for (int it = 0; x_spread && it < 4; ++it) {
    std::vector<uint64_t> nav(P);
    for (size_t i = 0; i < P; ++i) {
      if (plan[i].empty()) {
        nav[i] = std::max(plane_free(i, cc.one_tile), cc.x_free);
        continue;
      }
      uint64_t st = plane_free(i, cc.one_tile), pre_cost = 0;
      for (const Piece& pc : plan[i]) {
        st = std::max(st, cc.x_kfree[pc.kt] > pre_cost ? cc.x_kfree[pc.kt] - pre_cost : 0);
        pre_cost += std::max<uint64_t>(pc.hi > pc.lo ? pc.hi - pc.lo : 0, abc_rows) + ovh;
      }
      nav[i] = st;
    }
    if (nav == avail) break;
    Plan np = cut_plan(cc, nav);
    if (planes_used(np) < planes_used(plan)) break;
    avail = std::move(nav);
    plan = std::move(np);
  }
  *x_kfree_out = cc.x_kfree;
  return plan;
}

// Jobs: each plane's run of pieces of one column tile (in the cut's order, or with ready_order in
// the order their X is ready); a column tile on several planes is a split group summed at the VXM.
void MatmulScheduler::Run::jobs_from_pieces(const std::vector<std::vector<MatmulPiece>>& plan,
                                            const std::vector<uint64_t>& x_kfree, bool ready_order,
                                            bool* reorders) {
  using Piece = MatmulPiece;
  struct PlaneRun {  // a plane's consecutive pieces of one column tile: k-tiles [k0, k1), rows [lo, hi)
    size_t plane;
    uint32_t nt, k0, k1, lo, hi;
  };
  std::vector<PlaneRun> runs;
  for (size_t i = 0; i < P; ++i)
    for (const Piece& pc : plan[i]) {
      if (!runs.empty() && runs.back().plane == i && runs.back().nt == pc.nt) {
        runs.back().k1 = pc.kt + 1;
        runs.back().hi = pc.hi;
      } else {
        runs.push_back({i, pc.nt, pc.kt, pc.kt + 1, pc.lo, pc.hi});
      }
    }
  // ready_order: a plane takes its runs in the order their first k-tile's X is ready instead of
  // the cut's (column tile, k-tile) order (a plane holds only two tiles ahead of X, and X may
  // land column by column out of order: a product reading a product cut over the planes). Each
  // run keeps its partial index, so every VXM sum of partials is unchanged. A run keeps its k
  // order too, except with exact accumulation (int8: i32 sums of i8 products, bit-identical in
  // any order), where its own k-tiles also go in the order their X columns are ready (an FFN's
  // down projection reading its up projection's columns, which that product's planes finish
  // out of k order); each tile keeps its loaded rows [lo, hi).
  std::vector<std::vector<uint32_t>> korders;  // per run: its k-tiles in ready_order's order
  for (const PlaneRun& r : runs) {
    korders.push_back(k_range(r.k0, r.k1));
    if (in_t == DType::I8)
      std::stable_sort(korders.back().begin(), korders.back().end(),
                       [&](uint32_t a, uint32_t b) { return x_kfree[a] < x_kfree[b]; });
  }
  std::vector<size_t> seq(runs.size());  // the runs in the order they are added
  std::iota(seq.begin(), seq.end(), size_t{0});
  std::vector<size_t> by_ready = seq;
  std::stable_sort(by_ready.begin(), by_ready.end(), [&](size_t a, size_t b) {
    if (runs[a].plane != runs[b].plane) return runs[a].plane < runs[b].plane;
    return x_kfree[korders[a].front()] < x_kfree[korders[b].front()];
  });
  bool differs = by_ready != seq;
  for (const std::vector<uint32_t>& ks : korders) differs = differs || !std::is_sorted(ks.begin(), ks.end());
  if (reorders != nullptr) *reorders = differs;
  if (ready_order && differs) {
    seq = by_ready;
    k_.last_ready_order_ = true;
  }
  std::vector<int64_t> group_of(Nt, -1);
  std::vector<uint32_t> nparts(Nt, 0);
  for (const PlaneRun& r : runs) nparts[r.nt]++;
  for (uint32_t nt = 0; nt < Nt; ++nt)
    if (nparts[nt] > 1) {
      group_of[nt] = static_cast<int64_t>(gsz.size());
      gsz.push_back(nparts[nt]);
      parts.emplace_back(static_cast<size_t>(M) * nparts[nt]);
    }
  std::vector<uint32_t> seen(Nt, 0);
  for (size_t ri : seq) {
    const PlaneRun& r = runs[ri];
    const std::vector<uint32_t> ks = k_.last_ready_order_ ? korders[ri] : k_range(r.k0, r.k1);
    add_job(r.plane, Job{0, M, r.nt, 0, r.k0, r.k1, group_of[r.nt], seen[r.nt]++}, &ks);
    // The run's first k-tile may start at row lo and its last end at row hi (a tile cut
    // between two planes), wherever they sit in the plane's order.
    std::vector<Tile>& tl = ps[r.plane].tiles;
    for (size_t j = tl.size() - ks.size(); j < tl.size(); ++j) {
      if (tl[j].kt == r.k0) tl[j].lo = r.lo;
      if (tl[j].kt + 1 == r.k1) tl[j].hi = r.hi;
    }
  }
  k_.last_tile_order_.assign(P, {});
  for (size_t i = 0; i < P; ++i)
    for (const Tile& t : ps[i].tiles)
      k_.last_tile_order_[i].push_back({ps[i].jobs[t.job].nt, t.kt, t.lo, t.hi});
}

}  // namespace lpu::compiler
