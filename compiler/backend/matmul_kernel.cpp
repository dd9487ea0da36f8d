// MatmulScheduler: the greedy, instruction-by-instruction weight-stationary matmul schedule
// (see matmul_kernel.h for the plan and the invariants it keeps).
#include "compiler/backend/matmul_kernel.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <fmt/format.h>
#include <numeric>
#include <stdexcept>
#include <tuple>

#include "compiler/backend/vxm_instr.h"
#include "isa/chip_config.h"

namespace lpu::compiler {

namespace {

constexpr uint64_t kMaxSearch = uint64_t{1} << 24;  // cycles tried per instruction before giving up
constexpr uint64_t kMaxEpilogueRetime = 4;           // `mov`s that may hold an i8 residual row at the VXM
// Rows of a tile an abc may pick from (the next ones in the job's order). Measured (session 8):
// 8 -> 128 took ResNet-50 int8 94,501 -> 89,321 cycles and BERT-base's pieces 19,941 -> 19,223;
// 256 gained 0.3 % more on ResNet-50 for 30 % more compile time.
constexpr size_t kAbcWindow = 128;

uint64_t latency_of(const ChipConfig& cfg, Opcode op, DType t) {
  Instr in = make_instr(op);
  in.set(Field::DType, static_cast<uint32_t>(t));
  return instr_timing(cfg, in).latency;
}
uint64_t occupancy_of(const ChipConfig& cfg, Opcode op, DType t) {
  Instr in = make_instr(op);
  in.set(Field::DType, static_cast<uint32_t>(t));
  return instr_timing(cfg, in).occupancy;
}

[[noreturn]] void no_slot(const std::string& what) {
  throw std::logic_error("matmul scheduler: no cycle found for " + what + " within the search bound");
}

}  // namespace

uint32_t mxm_plane_count(const ChipConfig& cfg) {
  return static_cast<uint32_t>(cfg.slices_of(SliceKind::MXM).size()) * cfg.mxm_planes;
}

bool install_bound_rows(const ChipConfig& cfg, int64_t M, DType t) {
  const int64_t occ = static_cast<int64_t>(std::max<uint64_t>(1, occupancy_of(cfg, Opcode::Abc, t)));
  return M * occ * 2 <= static_cast<int64_t>(cfg.vector_bytes());
}

MatmulScheduler::MatmulScheduler(ScheduleBuilder& b) : b_(b) {
  const ChipConfig& cfg = b.cfg();
  for (int i : cfg.slices_of(SliceKind::VXM)) {
    vxm_slice_ = i;
    vxm_pos_ = b.pos(i);
    break;
  }
  const uint32_t mid = vxm_slice_ >= 0 ? vxm_pos_ : cfg.num_positions() / 2;
  for (int s : cfg.slices_of(SliceKind::MXM)) {
    const uint32_t nq = cfg.slices[static_cast<size_t>(s)].queues;
    for (uint32_t p = 0; p < cfg.mxm_planes; ++p) {
      Plane pl;
      pl.slice = s;
      pl.plane = p;
      pl.pos = b.pos(s);
      pl.dir_in = pl.pos < mid ? Dir::West : Dir::East;
      pl.dir_out = pl.pos < mid ? Dir::East : Dir::West;
      pl.q_load = static_cast<int>((p * 3) % nq);
      pl.q_abc = static_cast<int>((p * 3 + 1) % nq);
      pl.q_acc = static_cast<int>((p * 3 + 2) % nq);
      pl.acc_read.assign(cfg.mxm_acc_rows, 0);
      planes_.push_back(pl);
    }
  }
}

bool MatmulScheduler::issue_pref(int slice, int pref, uint64_t t, const Instr& in) {
  if (b_.can_issue(slice, pref, t, in)) {
    b_.issue(slice, pref, t, in);
    return true;
  }
  if (!b_.issue_any(slice, t, in)) return false;
  return true;
}

MatmulStats MatmulScheduler::schedule(const MatmulSpec& spec) {
  // Everything a plan's scheduling changes besides the builder's reservations (rolled back by
  // its transaction): the planes, Y's landing cycles and the read marks of every input tensor.
  std::vector<PlacedTensor*> inputs = {spec.x, spec.b, spec.scale, spec.bias, spec.x_zero, spec.residual, spec.row_div};
  for (const MatmulKTile& k : spec.ktiles) inputs.push_back(k.x);
  std::vector<uint64_t> last_read;
  for (PlacedTensor* t : inputs) last_read.push_back(t != nullptr ? t->last_read : 0);
  const std::vector<Plane> planes = planes_;
  const std::vector<uint64_t> y_ready = spec.y->ready;
  const std::vector<uint64_t> y2_ready = spec.y2 ? spec.y2->ready : std::vector<uint64_t>{};
  auto restore = [&](const ScheduleBuilder::Txn& x) {
    b_.rollback(x);
    planes_ = planes;
    spec.y->ready = y_ready;
    if (spec.y2) spec.y2->ready = y2_ready;
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i] != nullptr) inputs[i]->last_read = last_read[i];
  };
  const size_t call = calls_++;
  auto kept = [&](bool row_cut, const MatmulStats& st) {
    if (record_) record_->push_back({row_cut, last_pieces_, last_ready_order_, last_tile_order_});  // a row cut leaves no pieces
    return st;
  };
  if (replay_) {  // the recorded compile's plan and pieces (set_decisions)
    if (call >= replay_->size())
      throw std::logic_error(fmt::format("{}: matmul {} has no recorded decision ({} recorded)", spec.name, call,
                                         replay_->size()));
    forced_ = &(*replay_)[call];
    const MatmulStats st =
        schedule_plan(spec, forced_->row_cut ? Plan::RowCut : Plan::Default, nullptr, forced_->ready_order);
    const bool row_cut = forced_->row_cut;
    forced_ = nullptr;
    return kept(row_cut, st);
  }
  const ScheduleBuilder::Txn txn = b_.begin();
  bool both = false, reorders = false;
  MatmulStats cut = schedule_plan(spec, Plan::Default, &both, false, &reorders);
  // A balanced cut whose planes would take their runs in another order by X readiness: both
  // orders are scheduled and the one whose last result lands first is kept (the cut's order on a
  // tie). Neither wins everywhere: the ready order lets an FFN's down projection start its planes
  // on the columns its up projection finished first (BERT-base FFN 5,991 -> 5,910 cycles), the
  // cut's order finishes a column split between two planes first.
  // The builder holds the latest schedule_plan's placements; `again` rolls them back and schedules
  // the given plan instead.
  auto again = [&](Plan p, bool ready_order) {
    restore(txn);
    return schedule_plan(spec, p, nullptr, ready_order);
  };
  bool ready = false;
  if (reorders) {
    const MatmulStats by_ready = again(Plan::Default, true);
    ready = by_ready.last_end < cut.last_end;
    if (ready) cut = by_ready;
    else if (!both) cut = again(Plan::Default, false);  // (with `both` the row-cut trial redoes it)
  }
  if (!both) return kept(false, cut);
  // The install-heavy rule alone chose the balanced cut: the row cut is as plausible (ResNet-50
  // stage 3 gains from the balanced cut, BERT's FFN at 192 tokens loses), so both are scheduled
  // and the one whose last result lands first is kept (the balanced cut on a tie).
  const MatmulStats rows = again(Plan::RowCut, false);
  if (rows.last_end < cut.last_end) return kept(true, rows);
  return kept(false, again(Plan::Default, ready));
}

MatmulStats MatmulScheduler::schedule_plan(const MatmulSpec& spec, Plan plan, bool* both, bool ready_order,
                                           bool* reorders) {
  const ChipConfig& cfg = b_.cfg();
  last_pieces_.clear();
  last_ready_order_ = false;
  last_tile_order_.clear();
  PlacedTensor& X = *spec.x;
  PlacedTensor& Y = *spec.y;
  const bool wact = spec.w == nullptr;  // weights from the activation spec.b
  if (wact && (spec.b == nullptr || !spec.ktiles.empty()))
    throw std::logic_error("matmul: activation weights need b and default k-tiles");
  const uint32_t lanes = cfg.vector_bytes();
  const DType in_t = X.dtype;
  if (in_t != DType::I8 && in_t != DType::F16)
    throw InputError(fmt::format("{}: matmul input '{}' has type {}; the MXM takes i8 or f16", spec.name, X.name,
                                 dtype_name(in_t)));
  if ((wact ? spec.b->dtype : spec.w->dtype) != in_t)
    throw std::logic_error("matmul: weight type differs from activation type");
  const DType acc_t = in_t == DType::I8 ? DType::I32 : DType::F32;
  // Dtype of the epilogue after the optional int8 rescale (i32 -> f32, times spec.scale).
  const bool rescale = spec.scale != nullptr;
  if (rescale && (in_t != DType::I8 || spec.scale->dtype != DType::F32 || Y.dtype == DType::I32))
    throw std::logic_error("matmul: an epilogue scale needs i8 inputs, an f32 row and an i8/f16/f32 output");
  const DType ep_t = rescale ? DType::F32 : acc_t;
  const bool direct = spec.bias == nullptr && !spec.relu && !rescale && Y.dtype == acc_t && !spec.residual && !spec.y2;
  if (!direct && !(Y.dtype == ep_t || (ep_t == DType::F32 && (Y.dtype == DType::F16 || (rescale && Y.dtype == DType::I8)))))
    throw InputError(fmt::format("{}: output type {} not producible from {} accumulators", spec.name,
                                 dtype_name(Y.dtype), dtype_name(acc_t)));
  if (!direct && vxm_slice_ < 0) throw InputError(spec.name + ": epilogue needs a VXM slice");
  const PlacedTensor* Res = spec.residual;
  // An i8 residual (MatmulSpec::res_scale) is added in f32 before the relu and the conversion.
  const bool res8 = Res && Res->dtype == DType::I8;
  if (Res && ((Res->dtype != DType::F16 && !res8) || res8 != (spec.res_scale != nullptr) || (res8 && !spec.scale) ||
              ep_t != DType::F32 || (Y.dtype != DType::F16 && Y.dtype != DType::I8) ||
              Res->rows != Y.rows || Res->vpr != Y.vpr || Res->inner != Y.inner))
    throw std::logic_error(fmt::format("{}: residual '{}' ({} [{}, {}]) must be an f16 tensor, or an i8 one with a scale "
                                       "row in an int8 layer, of the f16 or i8 Y's stored shape ({} [{}, {}])",
                                       spec.name, Res->name, dtype_name(Res->dtype), Res->rows, Res->inner,
                                       dtype_name(Y.dtype), Y.rows, Y.inner));
  const PlacedTensor* Res16 = res8 ? nullptr : Res;  // the f16 residual path below
  const PlacedTensor* RowDiv = spec.row_div;
  if (RowDiv && (!rescale || RowDiv->dtype != DType::F32 || RowDiv->vpr != 1 || RowDiv->rows < spec.x->rows))
    throw std::logic_error(fmt::format("{}: row divisor '{}' must be an f32 [rows, 1] tensor of an int8 layer's rows",
                                       spec.name, RowDiv->name));
  PlacedTensor* Y2 = spec.y2;
  if (Y2 && (Y2->dtype != DType::I8 || (Y.dtype != DType::F16 && Y.dtype != DType::F32) || Y2->rows != Y.rows ||
             Y2->vpr != Y.vpr || Y2->inner != Y.inner))
    throw std::logic_error(fmt::format("{}: second output '{}' must be an i8 copy of an f16/f32 Y's stored shape",
                                       spec.name, Y2->name));
  if (planes_.empty()) throw InputError(fmt::format("chip '{}' has no MXM plane", cfg.name));
  if (cfg.streams_per_direction < 4 || cfg.mxm_acc_rows < 1)
    throw InputError(fmt::format("chip '{}': the matmul kernel needs >= 4 streams per direction (has {}) and >= 1 "
                                 "accumulator row (has {})",
                                 cfg.name, cfg.streams_per_direction, cfg.mxm_acc_rows));
  const bool tile_maps = !spec.ktiles.empty() && spec.ktiles[0].rows != nullptr;  // MatmulKTile::rows
  const int64_t M = tile_maps                ? static_cast<int64_t>(spec.ktiles[0].rows->size())
                    : spec.x_rows.empty() ? X.rows
                                          : static_cast<int64_t>(spec.x_rows.size());
  for (const MatmulKTile& k : spec.ktiles)
    if ((k.rows != nullptr) != tile_maps || (tile_maps && static_cast<int64_t>(k.rows->size()) != M))
      throw std::logic_error("matmul: k-tile row maps must be given for every tile, each of M rows");
  const int64_t wK = wact ? spec.b_K : spec.w->K, wN = wact ? spec.b_N : spec.w->N;
  const uint32_t Kt = static_cast<uint32_t>((wK + lanes - 1) / lanes), Nt = static_cast<uint32_t>((wN + lanes - 1) / lanes);
  if (!wact && (Kt != spec.w->Kt || Nt != spec.w->Nt)) throw std::logic_error("matmul: weight tiling mismatch");
  if (!spec.ktiles.empty() && spec.ktiles.size() != Kt) throw std::logic_error("matmul: k-tile list != weight tiles");
  if (Nt != Y.vpr || (!spec.y_rows.empty() && static_cast<int64_t>(spec.y_rows.size()) != M) ||
      (spec.y_rows.empty() && Y.rows != M) || (spec.ktiles.empty() && Kt > X.vpr))
    throw std::logic_error("matmul: shape mismatch between X, W and Y");
  if (wact && spec.b_trans && !cfg.mxm_transposed_install)
    throw InputError(fmt::format("{}: its weights are an activation read transposed (attention's K^T, a Transpose), "
                                 "which this compiler installs only with `iwt`; chip config '{}' has "
                                 "mxm.transposed_install: false (allowed for this model: true)",
                                 spec.name, cfg.name));
  if (wact) {
    const PlacedTensor& B = *spec.b;
    const int64_t brows = spec.b_trans ? wN : wK;
    const uint32_t bchunks = spec.b_trans ? Kt : Nt;
    if (spec.b_row0 < 0 || spec.b_row0 + brows > B.rows || bchunks > B.vpr)
      throw std::logic_error("matmul: activation weights out of range of " + B.name);
  }
  for (const PlacedTensor* e : {spec.bias, spec.scale})
    if (e && !((e->rows == 1 && e->vpr == Nt) || (e->rows % static_cast<int64_t>(Nt) == 0 && e->vpr == 1)))
      throw std::logic_error("matmul: epilogue row " + e->name + " is neither [1, N] nor copies of one row per column tile");
  // Only stored weight rows may be loaded (place_weights packs the rows each k-tile loads).
  if (!wact)
    for (uint32_t kt = 0; kt < Kt; ++kt) {
      const uint32_t lo = spec.ktiles.empty() ? 0 : spec.ktiles[kt].w_lo;
      const uint32_t hi = spec.ktiles.empty() ? spec.w->valid_rows(kt, lanes) : spec.ktiles[kt].w_hi;
      if (lo < hi && (!spec.w->stored(kt, lo) || !spec.w->stored(kt, hi - 1)))
        throw std::logic_error("matmul: k-tile rows not stored in " + spec.w->name);
    }
  // Weight rows [lo, hi) of tile (kt, nt) that are loaded, and where row r comes from.
  // A transposed tile (PlacedWeights::trans) loads its valid columns as shadow rows [0, columns)
  // and is installed by `iwt`.
  auto transposed_tile = [&](uint32_t kt, uint32_t nt) { return !wact && spec.w->transposed(kt, nt); };
  if (!wact && !cfg.mxm_transposed_install)
    for (uint32_t kt = 0; kt < Kt; ++kt)
      for (uint32_t nt = 0; nt < Nt; ++nt)
        if (transposed_tile(kt, nt)) throw std::logic_error("matmul: a transposed tile on a chip without `iwt`");
  auto tile_rows = [&](uint32_t kt, uint32_t nt) -> std::pair<uint32_t, uint32_t> {
    if (transposed_tile(kt, nt)) return {0, spec.w->valid_cols(nt, lanes)};
    if (!spec.ktiles.empty()) return {spec.ktiles[kt].w_lo, spec.ktiles[kt].w_hi};
    if (!wact) return {0, spec.w->valid_rows(kt, lanes)};
    const int64_t left = spec.b_trans ? wN - static_cast<int64_t>(nt) * lanes : wK - static_cast<int64_t>(kt) * lanes;
    return {0, static_cast<uint32_t>(std::min<int64_t>(left, lanes))};
  };
  struct WSrc { const std::vector<uint16_t>* slices; uint32_t addr; uint64_t ready; };
  auto wsrc = [&](uint32_t kt, uint32_t nt, uint32_t r) -> WSrc {
    if (!wact) return {&spec.w->slices_of(kt, nt, r), spec.w->addr_of(kt, nt, r), 0};  // packed rows (placed_tensor.h)
    PlacedTensor& B = *spec.b;
    const int64_t row = spec.b_row0 + (spec.b_trans ? static_cast<int64_t>(nt) : static_cast<int64_t>(kt)) * lanes + r;
    const uint32_t chunk = spec.b_trans ? kt : nt;
    return {&B.part_of_row(row).slices, B.addr_of(row, chunk), B.ready[static_cast<size_t>(row * B.vpr + chunk)]};
  };
  // The X vector of product row m for k-tile kt: tensor, physical row, chunk.
  struct XSrc { PlacedTensor* t; int64_t row; uint32_t chunk; };
  auto xsrc = [&](uint32_t kt, int64_t m) -> XSrc {
    const int64_t r = spec.x_rows.empty() ? m : spec.x_rows[static_cast<size_t>(m)];
    if (spec.ktiles.empty()) return {&X, r, kt};
    const MatmulKTile& k = spec.ktiles[kt];
    if (k.rows) {
      const int64_t pr = (*k.rows)[static_cast<size_t>(m)];
      PlacedTensor* xt = k.x ? k.x : &X;
      if (pr >= xt->rows) throw std::logic_error("matmul: a k-tile row map reads past " + xt->name);
      if (pr >= 0) return {xt, pr, k.x_chunk};
      if (!spec.x_zero) throw std::logic_error("matmul: a k-tile row map reads padding but no x_zero is given");
      return {spec.x_zero, 0, 0};
    }
    return {k.x ? k.x : &X, k.x_row_off + r, k.x_chunk};
  };
  auto yrow = [&](int64_t m) { return spec.y_rows.empty() ? m : spec.y_rows[static_cast<size_t>(m)]; };
  const Opcode iw_op = wact && spec.b_trans ? Opcode::InstWT : Opcode::InstW;

  const uint64_t lat_lw = latency_of(cfg, Opcode::LoadW, in_t);
  const uint64_t lat_iw = latency_of(cfg, Opcode::InstW, in_t);
  const uint64_t lat_abc = latency_of(cfg, Opcode::Abc, in_t);
  const uint64_t occ_abc = std::max<uint64_t>(1, occupancy_of(cfg, Opcode::Abc, in_t));
  const uint64_t lat_acc = latency_of(cfg, Opcode::Acc, acc_t);
  const uint64_t lat_read = latency_of(cfg, Opcode::Read, DType::I8);

  // ---- work decomposition: jobs = (row block, column tile), dealt round-robin to planes.
  const size_t P = planes_.size();
  const int64_t half = std::max<int64_t>(1, cfg.mxm_acc_rows / 2);
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
  const uint64_t abc_per_tile = static_cast<uint64_t>(M) * std::max<uint64_t>(1, occupancy_of(cfg, Opcode::Abc, in_t));
  const bool install_heavy = !wact && static_cast<uint64_t>(Nt) * Kt >= planes_.size() &&
                             abc_per_tile * Nt * Kt < loaded_rows;
  const bool heavy_only = install_heavy && !install_bound_rows(cfg, M, in_t);
  bool balanced = vxm_slice_ >= 0 && M <= half && (install_bound_rows(cfg, M, in_t) || install_heavy) &&
                  static_cast<int64_t>(Nt) * M <= static_cast<int64_t>(cfg.mxm_acc_rows);
  if (both != nullptr) *both = balanced && heavy_only;
  if (plan == Plan::RowCut && heavy_only) balanced = false;
  if (forced_ != nullptr && balanced == forced_->pieces.empty())
    throw std::logic_error(fmt::format("{}: the replayed decision {} a balanced cut, this schedule {}", spec.name,
                                       forced_->pieces.empty() ? "has no" : "has", balanced ? "needs one" : "does not"));
  // Row blocks (chunks) and K-split (G): when there are fewer (row block, column tile) jobs than
  // planes, either the rows are cut into more blocks (every plane then installs every weight tile
  // of its column) or the k-tiles of a job are split over G planes, whose G partial accumulator
  // rows are emitted so that they meet at the VXM on the same cycle(s) and are summed there (no
  // SRAM round trip); for tall M the block count may rise so the blocks deal evenly over the
  // planes. Each candidate (chunks, G) is costed as the busiest plane's tile pipeline: its jobs
  // (dealt round-robin) times the tiles of a job, each max(rows loaded, abc cycles) plus the
  // lw/iw latency; the default (the row cut, K-split only for what the rows leave) is kept unless
  // another is strictly cheaper.
  Instr add_probe = make_instr(Opcode::Add);
  add_probe.set(Field::DType, static_cast<uint32_t>(acc_t));
  const int64_t lat_add = static_cast<int64_t>(instr_timing(cfg, add_probe).latency);
  const int64_t c_min = (M + half - 1) / half;
  auto plan_cost = [&](int64_t c, uint32_t g) -> uint64_t {
    const int64_t r = (M + c - 1) / c, cc = (M + r - 1) / r;
    const uint64_t per_plane = static_cast<uint64_t>((cc * Nt * g + static_cast<int64_t>(P) - 1) / static_cast<int64_t>(P));
    uint64_t worst = 0;
    for (uint32_t nt = 0; nt < Nt; ++nt)
      for (uint32_t kg = 0; kg < g; ++kg) {
        uint64_t job = 0;
        for (uint32_t kt = kg * Kt / g; kt < (kg + 1) * Kt / g; ++kt) {
          const auto rr = tile_rows(kt, nt);
          job += std::max<uint64_t>(rr.second > rr.first ? rr.second - rr.first : 0, static_cast<uint64_t>(r) * occ_abc) +
                 lat_lw + lat_iw;
        }
        worst = std::max(worst, job);
      }
    // A K-split job's rows drain in lockstep with its partners' (and pay the VXM sum): counted as
    // one more abc pass over its rows.
    if (g > 1) worst += static_cast<uint64_t>(r) * occ_abc + static_cast<uint64_t>(lat_add) * (g - 1);
    return per_plane * worst;
  };
  int64_t chunks = c_min;
  uint32_t G = 1;
  // Products whose weights are an activation (batched matmuls: attention q.K^T and P.V, one
  // product per head) come in runs of independent products: each job goes whole to the plane that
  // can finish it first (list scheduling over the planes' state), so a run keeps every plane busy
  // on its own product instead of all planes installing every product's tile (4x the `lw` rows,
  // and two reads of each weight row, one per stream direction, from one SRAM slice).
  const bool listed = wact && !balanced && vxm_slice_ >= 0;
  if (!balanced && !listed) {
    if (chunks * Nt < static_cast<int64_t>(P)) chunks = std::min<int64_t>(M, (static_cast<int64_t>(P) + Nt - 1) / Nt);
    {
      const int64_t r = (M + chunks - 1) / chunks;
      chunks = (M + r - 1) / r;
    }
    if (vxm_slice_ >= 0 && chunks * Nt < static_cast<int64_t>(P) && Kt >= 2)
      G = static_cast<uint32_t>(std::min<int64_t>(Kt, static_cast<int64_t>(P) / (chunks * Nt)));
    uint64_t best = plan_cost(chunks, G);
    const int64_t c_max = std::min<int64_t>(M, std::max<int64_t>(c_min, (static_cast<int64_t>(P) + Nt - 1) / Nt) +
                                                   static_cast<int64_t>(P));
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
  const int64_t R = (M + chunks - 1) / chunks;
  const bool double_buffer = 2 * R <= static_cast<int64_t>(cfg.mxm_acc_rows);
  const int64_t base_jobs = chunks * static_cast<int64_t>(Nt);
  struct Job { int64_t m0, rows; uint32_t nt; int64_t rot; uint32_t k0, k1; int64_t group; uint32_t kg; };
  // A tile of a job: weight rows [lo, hi) of tile (kt, job's nt) are loaded (all of the tile's
  // rows, except where an install-bound layer cuts a tile between two planes).
  // first / last: the job's first tile (resets the accumulator rows) and last (drains them).
  struct Tile { size_t job; uint32_t kt; int64_t acc_base; size_t local_job; uint32_t lo, hi; bool first, last; };
  struct Drain { int64_t accrow, m; uint32_t nt; uint64_t earliest; size_t local_job; int64_t group; int64_t idx; };
  // Partial rows of a split job group: per (group, row index, kg) the plane, acc row, local job and
  // the cycle its last abc lands (UINT64_MAX until scheduled). gsz: partials per group.
  struct PartRec { size_t plane = 0; int64_t accrow = 0; size_t local_job = 0; uint64_t earliest = UINT64_MAX; };
  std::vector<std::vector<PartRec>> parts;
  std::vector<uint32_t> gsz;
  // A row of the tile a plane streams (ABC below): its X vector's source and the earliest cycle
  // its read can land at the plane (ready + read latency + distance), computed once per tile.
  struct RowCand {
    int64_t idx, m, accrow, v;
    XSrc xsr;
    uint32_t xaddr;
    const std::vector<uint16_t>* xs;
    uint64_t ready, lo_x;
    std::vector<StreamValue>* cached;  // X values of this vector already on streams (xcache)
  };
  struct PS {
    std::vector<Job> jobs;
    std::vector<Tile> tiles;
    size_t li = 0;
    uint32_t lr = 0;
    std::vector<uint32_t> todo;  // install-bound layers: rows of tile li not loaded yet
    uint64_t lw_next = 0, last_lw_land = 0;
    std::vector<int64_t> iw_time;
    size_t ci = 0;
    int64_t cr = 0;
    uint64_t c_next = 0, d_next = 0;
    std::deque<Drain> drain;
    std::vector<int64_t> pending;  // per local job: drain items not yet scheduled
    std::deque<RowCand> rtodo;     // rows of tile ci not streamed yet, in the job's rotated order
  };
  std::vector<PS> ps(P);
  auto k_range = [](uint32_t k0, uint32_t k1) {  // k-tiles k0..k1-1 in k order
    std::vector<uint32_t> ks(k1 - k0);
    std::iota(ks.begin(), ks.end(), k0);
    return ks;
  };
  // korder (optional): the job's k-tiles in the order its plane runs them (default k0..k1-1).
  auto add_job = [&](size_t pi, const Job& jb, const std::vector<uint32_t>* korder = nullptr) {
    PS& s = ps[pi];
    const size_t lj = s.jobs.size();
    s.jobs.push_back(jb);
    s.pending.push_back(0);
    // Every job takes the plane's next R accumulator rows (a ring over all of them), so a job's
    // abc never waits for the drain of the rows two jobs back (double buffering reused them). The
    // ring comes back to rows of a job at least two jobs back (2 R <= acc rows; else every job
    // starts at row 0 and `back` below is 1), whose drains are then all scheduled: the ABC block
    // below waits for that, and each row's own drain cycle (Plane::acc_read) orders the reuse.
    Plane& pl = planes_[pi];
    if (pl.acc_next + R > static_cast<int64_t>(cfg.mxm_acc_rows)) pl.acc_next = 0;
    const int64_t acc_base = pl.acc_next;
    pl.acc_next += R;
    const std::vector<uint32_t> ks = korder != nullptr ? *korder : k_range(jb.k0, jb.k1);
    for (size_t i = 0; i < ks.size(); ++i) {
      const auto rr = tile_rows(ks[i], jb.nt);
      s.tiles.push_back({lj, ks[i], acc_base, lj, rr.first, rr.second, i == 0, i + 1 == ks.size()});
    }
  };
  if (!balanced) {
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
  } else {
    // Install cycles of a tile: its loaded rows (or its abc rows, if more), plus the lw landing and
    // the iw latency before the next tile's rows may load.
    std::vector<uint64_t> cost(static_cast<size_t>(Nt) * Kt);
    uint64_t total = 0;
    for (uint32_t nt = 0; nt < Nt; ++nt)
      for (uint32_t kt = 0; kt < Kt; ++kt) {
        const auto rr = tile_rows(kt, nt);
        const uint64_t rows = rr.second > rr.first ? rr.second - rr.first : 0;
        const uint64_t c = std::max<uint64_t>(rows, static_cast<uint64_t>(M) * occ_abc) + lat_lw + lat_iw;
        cost[static_cast<size_t>(nt) * Kt + kt] = c;
        total += c;
      }
    // A plane's install stream is free from its shadow's free cycle, but it can run at most two
    // tiles ahead of X (one active, one in the shadow): count it free from the later of the two.
    // Per k-tile: x_kfree[kt] is the earliest cycle a plane whose first tile is k-tile kt may
    // start installing (the last X vector of column kt ready, less the two tiles it may run ahead).
    // X often lands column by column (an elementwise producer writes vector column c of every row
    // before c + 1), so planes starting on early k-tiles are free before the whole of X is in.
    const uint64_t two_tiles = cost.empty() ? 0 : 2 * total / cost.size();
    std::vector<uint64_t> x_kfree(Kt, 0);
    uint64_t x_free = 0;
    for (uint32_t kt = 0; kt < Kt; ++kt) {
      uint64_t r = 0;
      for (int64_t m = 0; m < M; ++m) {
        const XSrc xs = xsrc(kt, m);
        r = std::max(r, xs.t->ready[static_cast<size_t>(xs.row * xs.t->vpr + xs.chunk)]);
      }
      const uint64_t need = r + lat_read + 2 * (lat_lw + lat_iw);
      x_kfree[kt] = need > two_tiles ? need - two_tiles : 0;
      x_free = std::max(x_free, x_kfree[kt]);
    }
    // Finish line F: the planes' free install time above their start sums to total (plus the
    // overhead of the tiles the cut splits between planes).
    total += (P - 1) * (lat_lw + lat_iw);
    std::vector<uint64_t> avail(P);
    // A plane still streaming an earlier product's tile can load one tile into its shadow but
    // install it (and load the next) only after that tile's last abc: counted as a contiguous
    // install stream, it is free one average tile (with the cut's split overhead spread over the
    // tiles, unlike two_tiles above) before then.
    const uint64_t one_tile = cost.empty() ? 0 : total / cost.size();
    auto plane_free = [&](size_t i) {
      const Plane& pl = planes_[i];
      const uint64_t busy = pl.have_abc ? pl.last_abc + occ_abc + lat_iw : 0;
      return std::max(pl.shadow_free, busy > one_tile ? busy - one_tile : 0);
    };
    for (size_t i = 0; i < P; ++i) avail[i] = std::max(plane_free(i), x_free);
    // Contiguous cut in (column tile, k-tile, row) order: plane i's piece ends where the cumulative
    // cost reaches its cumulative quota; a tile is cut between two planes (rows [lo, a) and [a, hi),
    // each part paying the install overhead) when both parts keep >= kMinPart rows and the spec
    // allows it (MatmulSpec::whole_tiles), else it goes whole to the plane whose quota it fits best.
    constexpr uint32_t kMinPart = 32;
    const uint64_t ovh = lat_lw + lat_iw, abc_rows = static_cast<uint64_t>(M) * occ_abc;
    using Piece = MatmulPiece;
    using Plan = std::vector<std::vector<Piece>>;
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
    auto cut_plan = [&](const std::vector<uint64_t>& av) {
      Plan plan(P);
      std::vector<uint64_t> sorted = av;
      std::sort(sorted.begin(), sorted.end());
      uint64_t F = sorted[0] + total;
      for (size_t n = 1; n <= P; ++n) {  // the n earliest planes share the work
        uint64_t sum = total;
        for (size_t i = 0; i < n; ++i) sum += sorted[i];
        const uint64_t f = sum / n;
        if (n == P || f <= sorted[n]) {
          F = f;
          break;
        }
      }
      const size_t U = cost.size();
      size_t u = 0;
      uint32_t ulo = U > 0 ? tile_rows(0, col_seq[0]).first : 0;
      auto next_tile = [&]() {
        if (++u < U) ulo = tile_rows(static_cast<uint32_t>(u % Kt), col_seq[u / Kt]).first;
      };
      uint64_t quota = 0, cum = 0;
      for (size_t i = 0; i < P; ++i) {
        quota += F > av[i] ? F - av[i] : 0;
        while (u < U) {
          const uint32_t nt = col_seq[u / Kt], kt = static_cast<uint32_t>(u % Kt);
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
    };
    const bool forced = forced_ != nullptr;
    if (forced && forced_->pieces.size() != P)
      throw std::logic_error(fmt::format("{}: the replayed decision has no balanced cut for {} planes", spec.name, P));
    Plan plan = forced ? forced_->pieces : cut_plan(avail);
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
    const bool x_spread = !forced && Kt > 0 && x_free - x_kfree[0] >= 2 * ovh;
    for (int it = 0; x_spread && it < 4; ++it) {
      std::vector<uint64_t> nav(P);
      for (size_t i = 0; i < P; ++i) {
        if (plan[i].empty()) {
          nav[i] = std::max(plane_free(i), x_free);
          continue;
        }
        uint64_t st = plane_free(i), pre_cost = 0;
        for (const Piece& pc : plan[i]) {
          st = std::max(st, x_kfree[pc.kt] > pre_cost ? x_kfree[pc.kt] - pre_cost : 0);
          pre_cost += std::max<uint64_t>(pc.hi > pc.lo ? pc.hi - pc.lo : 0, abc_rows) + ovh;
        }
        nav[i] = st;
      }
      if (nav == avail) break;
      Plan np = cut_plan(nav);
      if (planes_used(np) < planes_used(plan)) break;
      avail = std::move(nav);
      plan = std::move(np);
    }
    last_pieces_ = plan;
    // Jobs: each plane's run of pieces of one column tile; columns on several planes are groups.
    struct Run { size_t plane; uint32_t nt, k0, k1, lo, hi; };
    std::vector<Run> runs;
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
    for (const Run& r : runs) {
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
      last_ready_order_ = true;
    }
    std::vector<int64_t> group_of(Nt, -1);
    std::vector<uint32_t> nparts(Nt, 0);
    for (const Run& r : runs) nparts[r.nt]++;
    for (uint32_t nt = 0; nt < Nt; ++nt)
      if (nparts[nt] > 1) {
        group_of[nt] = static_cast<int64_t>(gsz.size());
        gsz.push_back(nparts[nt]);
        parts.emplace_back(static_cast<size_t>(M) * nparts[nt]);
      }
    std::vector<uint32_t> seen(Nt, 0);
    for (size_t ri : seq) {
      const Run& r = runs[ri];
      const std::vector<uint32_t> ks = last_ready_order_ ? korders[ri] : k_range(r.k0, r.k1);
      add_job(r.plane, Job{0, M, r.nt, 0, r.k0, r.k1, group_of[r.nt], seen[r.nt]++}, &ks);
      // The run's first k-tile may start at row lo and its last end at row hi (a tile cut
      // between two planes), wherever they sit in the plane's order.
      std::vector<Tile>& tl = ps[r.plane].tiles;
      for (size_t j = tl.size() - ks.size(); j < tl.size(); ++j) {
        if (tl[j].kt == r.k0) tl[j].lo = r.lo;
        if (tl[j].kt + 1 == r.k1) tl[j].hi = r.hi;
      }
    }
    last_tile_order_.assign(P, {});
    for (size_t i = 0; i < P; ++i)
      for (const Tile& t : ps[i].tiles) last_tile_order_[i].push_back({ps[i].jobs[t.job].nt, t.kt, t.lo, t.hi});
  }
  const bool direct_all = direct && gsz.empty();
  for (PS& s : ps) s.iw_time.assign(s.tiles.size(), -1);

  // X values already on streams, by vector index: consumers at other planes share them.
  std::map<std::pair<const PlacedTensor*, int64_t>, std::vector<StreamValue>> xcache;
  // Weight rows already on streams, by (tile, row).
  std::map<int64_t, std::vector<StreamValue>> wcache;
  // Epilogue rows (scale, bias) already on a stream, by (tensor, column tile, cycle at the VXM):
  // rows whose epilogue op runs on the same cycle read the one value (an SRAM slice serves one read
  // per cycle, so one fetch per output row would cap the epilogue at one row per cycle).
  std::map<std::tuple<const PlacedTensor*, uint32_t, uint64_t>, StreamValue> ecache;
  MatmulStats st;

  // Cycle offset of partial g's acc relative to the leader's (g = 0) so that partials 0 and 1 reach
  // the VXM together and partial g >= 2 arrives when the running sum of the earlier ones is ready.
  auto vdist = [&](size_t plane) {
    const uint32_t p = planes_[plane].pos;
    return static_cast<int64_t>(p > vxm_pos_ ? p - vxm_pos_ : vxm_pos_ - p);
  };
  auto part_offset = [&](size_t leader, size_t plane, uint32_t g) -> int64_t {
    return vdist(leader) - vdist(plane) + lat_add * (g >= 1 ? static_cast<int64_t>(g) - 1 : 0);
  };
  enum Kind { LW = 0, IW = 1, ABC = 2, ACC = 3 };
  for (;;) {
    int best_p = -1, best_k = -1;
    uint64_t best_e = UINT64_MAX;
    for (size_t i = 0; i < P; ++i) {
      PS& s = ps[i];
      Plane& pl = planes_[i];
      auto cand = [&](int k, uint64_t e) {
        if (e < best_e) { best_e = e; best_p = static_cast<int>(i); best_k = k; }
      };
      if (s.li < s.tiles.size()) {
        const Tile& tl = s.tiles[s.li];
        if (s.lr < tl.lo) s.lr = tl.lo;
        if (s.lr < tl.hi) {
          // A lw landing after the previous iw lands goes to the new shadow (docs/architecture.md
          // "Precise points" 4), so it may issue lat_lw - 1 cycles before that iw lands.
          cand(LW, std::max(pl.shadow_free + 1 > lat_lw ? pl.shadow_free + 1 - lat_lw : 0, s.lw_next));
        } else if (s.ci == s.li) {
          uint64_t e = std::max(s.last_lw_land, pl.shadow_free);
          if (pl.have_abc) {
            e = std::max(e, pl.last_abc + occ_abc);
          }
          cand(IW, e);
        }
      }
      if (s.ci < s.tiles.size() && s.iw_time[s.ci] >= 0) {
        const Tile& tl = s.tiles[s.ci];
        bool blocked = false;
        if (!balanced && tl.first && s.cr == 0) {
          const size_t back = double_buffer ? 2 : 1;
          if (tl.local_job >= back && s.pending[tl.local_job - back] > 0) blocked = true;
        }
        if (!blocked) cand(ABC, std::max(s.c_next, static_cast<uint64_t>(s.iw_time[s.ci]) + lat_iw));
      }
      if (!s.drain.empty()) {
        const Drain& dr = s.drain.front();
        if (dr.group < 0) {
          cand(ACC, std::max(dr.earliest, s.d_next));
        } else {
          // All partial rows must be complete; the leader's acc cycle must let every partner's acc
          // (issued to meet at the VXM) respect its own readiness.
          bool ok = true;
          int64_t e = static_cast<int64_t>(s.d_next);
          const uint32_t Gg = gsz[static_cast<size_t>(dr.group)];
          for (uint32_t g = 0; g < Gg && ok; ++g) {
            const PartRec& pr = parts[static_cast<size_t>(dr.group)][static_cast<size_t>(dr.idx) * Gg + g];
            if (pr.earliest == UINT64_MAX) { ok = false; break; }
            const int64_t off = part_offset(i, pr.plane, g);
            e = std::max(e, static_cast<int64_t>(pr.earliest) - off);
            e = std::max(e, static_cast<int64_t>(ps[pr.plane].d_next) - off);
          }
          if (ok) cand(ACC, static_cast<uint64_t>(std::max<int64_t>(e, 0)));
        }
      }
    }
    if (best_p < 0) break;
    PS& s = ps[static_cast<size_t>(best_p)];
    Plane& pl = planes_[static_cast<size_t>(best_p)];
    const uint64_t e = best_e;

    if (best_k == LW && balanced && !wact) {
      // Install-bound layers: the next row of the tile is any not yet loaded whose weight group's
      // SRAM slices are free (rows of a tile may load in any order), so the planes' lw streams do
      // not stall on each other's reads of the same group.
      const Tile& tl = s.tiles[s.li];
      const uint32_t nt = s.jobs[tl.job].nt;
      if (s.todo.empty())
        for (uint32_t q = s.lr; q < tl.hi; ++q) s.todo.push_back(q);
      Instr lw = make_instr(Opcode::LoadW);
      lw.set(Field::DType, static_cast<uint32_t>(in_t));
      lw.set(Field::Plane, pl.plane);
      uint64_t T = e;
      for (uint64_t n = 0;; ++T, ++n) {
        if (n > kMaxSearch) no_slot(spec.name + " lw");
        if (b_.free_queue(pl.slice, T, lw) < 0) continue;
        bool placed = false;
        for (size_t j = 0; j < s.todo.size() && j < 2 * static_cast<size_t>(spec.w->groups) && !placed; ++j) {
          const uint32_t r = s.todo[j];
          const WSrc src = wsrc(tl.kt, nt, r);
          lw.set(Field::Row, r);
          auto x = b_.begin();
          StreamValue wv;
          if (!b_.fetch(*src.slices, src.addr, pl.pos, T, pl.dir_in, 0, &wv)) continue;
          lw.set(Field::SrcA, wv.ref().encode());
          if (!issue_pref(pl.slice, pl.q_load, T, lw)) { b_.rollback(x); continue; }
          st.reads += src.slices->size();
          s.todo.erase(s.todo.begin() + static_cast<std::ptrdiff_t>(j));
          placed = true;
        }
        if (placed) break;
      }
      st.lw++;
      st.first_issue = std::min(st.first_issue, T);
      s.lw_next = T + 1;
      s.last_lw_land = std::max(s.last_lw_land, T + lat_lw);
      s.lr++;
    } else if (best_k == LW) {
      const Tile& tl = s.tiles[s.li];
      const uint32_t r = s.lr;
      const WSrc src = wsrc(tl.kt, s.jobs[tl.job].nt, r);
      const auto& ws = *src.slices;
      const uint32_t waddr = src.addr;
      Instr lw = make_instr(Opcode::LoadW);
      lw.set(Field::DType, static_cast<uint32_t>(in_t));
      lw.set(Field::Plane, pl.plane);
      lw.set(Field::Row, r);
      auto& cached = wcache[(static_cast<int64_t>(tl.kt) * Nt + s.jobs[tl.job].nt) * lanes + r];
      uint64_t T = e;
      bool placed = false;
      // Planes of one MXM slice loading the same tile share the weight row on the stream.
      for (const StreamValue& sv : cached) {
        if (sv.dir != pl.dir_in) continue;
        const uint64_t t = sv.time_at(pl.pos);
        if (t == UINT64_MAX || t < e || t > e + 4) continue;
        lw.set(Field::SrcA, sv.ref().encode());
        if (issue_pref(pl.slice, pl.q_load, t, lw)) {
          T = t;
          placed = true;
          break;
        }
      }
      if (!placed && src.ready > 0)
        for (uint16_t sl : ws) {
          const uint32_t p = b_.pos(sl);
          T = std::max(T, src.ready + lat_read + (p > pl.pos ? p - pl.pos : pl.pos - p));
        }
      for (uint64_t n = 0; !placed; ++T, ++n) {
        if (n > kMaxSearch) no_slot(spec.name + " lw");
        if (b_.free_queue(pl.slice, T, lw) < 0) continue;
        auto x = b_.begin();
        StreamValue wv;
        if (!b_.fetch(ws, waddr, pl.pos, T, pl.dir_in, src.ready, &wv)) continue;
        lw.set(Field::SrcA, wv.ref().encode());
        if (!issue_pref(pl.slice, pl.q_load, T, lw)) { b_.rollback(x); continue; }
        cached.push_back(wv);
        st.reads += ws.size();
        break;
      }
      st.lw++;
      if (wact) spec.b->last_read = std::max(spec.b->last_read, T);
      st.first_issue = std::min(st.first_issue, T);
      s.lw_next = T + 1;
      s.last_lw_land = std::max(s.last_lw_land, T + lat_lw);
      s.lr++;
    } else if (best_k == IW) {
      const Tile& itl = s.tiles[s.li];
      Instr iw = make_instr(transposed_tile(itl.kt, s.jobs[itl.job].nt) ? Opcode::InstWT : iw_op);
      iw.set(Field::DType, static_cast<uint32_t>(in_t));
      iw.set(Field::Plane, pl.plane);
      uint64_t T = e;
      for (uint64_t n = 0;; ++T, ++n) {
        if (n > kMaxSearch) no_slot(spec.name + " iw");
        if (issue_pref(pl.slice, pl.q_load, T, iw)) break;
      }
      st.iw++;
      s.iw_time[s.li] = static_cast<int64_t>(T);
      pl.shadow_free = T + lat_iw;
      s.li++;
      s.lr = 0;  // raised to the next tile's first loaded row when it is considered
      s.last_lw_land = 0;
    } else if (best_k == ABC) {
      // The tile's rows may stream in any order (each accumulator row sees the k-tiles in order,
      // since the next tile's iw waits for this tile's last abc): the abc takes the earliest cycle
      // at which one of the next kAbcWindow rows (in the job's rotated order) can get its X vector,
      // preferring a value another plane already put on the stream over a fresh read. So two
      // planes never stall each other on one X slice's read port while another row is free. The
      // rows' sources are computed once per tile (PS::rtodo).
      const Tile& tl = s.tiles[s.ci];
      const Job& jb = s.jobs[tl.job];
      if (s.cr == 0) {
        s.rtodo.clear();
        for (int64_t c = 0; c < jb.rows; ++c) {
          RowCand rc;
          rc.idx = (c + jb.rot) % jb.rows;
          rc.m = jb.m0 + rc.idx;
          rc.accrow = tl.acc_base + rc.idx;
          rc.xsr = xsrc(tl.kt, rc.m);
          const PlacedTensor& XT = *rc.xsr.t;
          rc.v = rc.xsr.row * XT.vpr + rc.xsr.chunk;
          rc.xaddr = XT.addr_of(rc.xsr.row, rc.xsr.chunk);
          rc.xs = &XT.part_of_row(rc.xsr.row).slices;
          rc.ready = XT.ready[static_cast<size_t>(rc.v)];
          rc.lo_x = 0;
          for (uint16_t sl : *rc.xs) {
            const uint32_t p = b_.pos(sl);
            rc.lo_x = std::max(rc.lo_x, rc.ready + lat_read + (p > pl.pos ? p - pl.pos : pl.pos - p));
          }
          rc.cached = &xcache[{rc.xsr.t, rc.v}];
          s.rtodo.push_back(rc);
        }
      }
      const bool first = tl.first, last = tl.last;
      const size_t W = std::min(s.rtodo.size(), kAbcWindow);
      std::vector<uint64_t> lo(W);
      uint64_t lo_min = UINT64_MAX;
      for (size_t j = 0; j < W; ++j) {
        const RowCand& c = s.rtodo[j];
        lo[j] = std::max(e, c.lo_x);
        if (first) lo[j] = std::max(lo[j], pl.acc_read[static_cast<size_t>(c.accrow)]);
        lo_min = std::min(lo_min, lo[j]);
      }
      Instr abc = make_instr(Opcode::Abc);
      abc.set(Field::DType, static_cast<uint32_t>(in_t));
      abc.set(Field::Plane, pl.plane);
      abc.set(Field::AccFlag, first ? 0u : 1u);
      uint64_t T = lo_min;
      size_t pick = 0;
      std::vector<const std::vector<uint16_t>*> failed;  // X row blocks whose read failed on cycle T
      for (uint64_t n = 0;; ++T, ++n) {
        if (n > kMaxSearch) no_slot(spec.name + " abc");
        if (b_.free_queue(pl.slice, T, abc) < 0) continue;  // the plane is busy (fp16 occupancy)
        bool placed = false;
        // Pass 0: a value already on the stream passing this plane at T; pass 1: a fresh read (a
        // read that failed for one row fails for every row of the same row block on this cycle).
        failed.clear();
        for (int pass = 0; pass < 2 && !placed; ++pass)
          for (size_t j = 0; j < W && !placed; ++j) {
            const RowCand& c = s.rtodo[j];
            if (T < lo[j]) continue;
            abc.set(Field::Row, static_cast<uint32_t>(c.accrow));
            if (pass == 0) {
              for (const StreamValue& sv : *c.cached) {
                if (sv.dir != pl.dir_in || sv.time_at(pl.pos) != T) continue;
                abc.set(Field::SrcA, sv.ref().encode());
                if (issue_pref(pl.slice, pl.q_abc, T, abc)) {
                  placed = true;
                  break;
                }
              }
            } else {
              if (b_.free_queue(pl.slice, T, abc) < 0) break;
              if (std::find(failed.begin(), failed.end(), c.xs) != failed.end()) continue;
              auto x = b_.begin();
              StreamValue xv;
              if (!b_.fetch(*c.xs, c.xaddr, pl.pos, T, pl.dir_in, c.ready, &xv)) {
                failed.push_back(c.xs);
                continue;
              }
              abc.set(Field::SrcA, xv.ref().encode());
              if (!issue_pref(pl.slice, pl.q_abc, T, abc)) { b_.rollback(x); break; }
              c.cached->push_back(xv);
              st.reads += c.xs->size();
              placed = true;
            }
            if (placed) pick = j;
          }
        if (placed) break;
      }
      const RowCand chosen = s.rtodo[pick];
      const int64_t idx = chosen.idx, m = chosen.m, accrow = chosen.accrow;
      PlacedTensor& XT = *chosen.xsr.t;
      s.rtodo.erase(s.rtodo.begin() + static_cast<std::ptrdiff_t>(pick));
      st.abc++;
      st.first_issue = std::min(st.first_issue, T);
      XT.last_read = std::max(XT.last_read, T);
      pl.have_abc = true;
      pl.last_abc = std::max(pl.last_abc, T);
      s.c_next = T + 1;
      if (last) {
        s.pending[tl.local_job]++;
        if (jb.group < 0) {
          s.drain.push_back({accrow, m, jb.nt, T + lat_abc, tl.local_job, -1, 0});
        } else {
          PartRec& pr = parts[static_cast<size_t>(jb.group)][static_cast<size_t>(idx) * gsz[static_cast<size_t>(jb.group)] + jb.kg];
          pr = PartRec{static_cast<size_t>(best_p), accrow, tl.local_job, T + lat_abc};
          if (jb.kg == 0) s.drain.push_back({accrow, m, jb.nt, T + lat_abc, tl.local_job, jb.group, idx});
        }
      }
      if (++s.cr == jb.rows) {
        s.cr = 0;
        s.ci++;
      }
    } else {  // ACC: emit the accumulator row(s) and run the epilogue
      const Drain dr = s.drain.front();
      // The partial rows to emit: just this plane's, or the G planes of a split job group.
      struct Part { size_t plane; int64_t accrow; size_t local_job; int64_t off; };
      std::vector<Part> prt;
      if (dr.group < 0) {
        prt.push_back({static_cast<size_t>(best_p), dr.accrow, dr.local_job, 0});
      } else {
        const uint32_t Gg = gsz[static_cast<size_t>(dr.group)];
        for (uint32_t g = 0; g < Gg; ++g) {
          const PartRec& pr = parts[static_cast<size_t>(dr.group)][static_cast<size_t>(dr.idx) * Gg + g];
          prt.push_back({pr.plane, pr.accrow, pr.local_job, part_offset(static_cast<size_t>(best_p), pr.plane, g)});
        }
      }
      const int64_t ym = yrow(dr.m);
      const auto& ys = Y.part_of_row(ym).slices;
      const uint32_t yaddr = Y.addr_of(ym, dr.nt);
      const Dir ydir = b_.pos(ys[0]) > vxm_pos_ ? Dir::East : Dir::West;
      const bool need_cvt = Y.dtype != ep_t;
      const std::vector<uint16_t> no_slices;
      const auto& y2s = Y2 ? Y2->part_of_row(ym).slices : no_slices;
      const uint32_t y2addr = Y2 ? Y2->addr_of(ym, dr.nt) : 0;
      const Dir y2dir = Y2 && b_.pos(y2s[0]) > vxm_pos_ ? Dir::East : Dir::West;
      uint64_t a = e, landed = 0, landed2 = 0;
      uint64_t nvxm = 0;
      std::vector<StreamValue> vals(prt.size());
      // Epilogue rows fetched by this attempt (entered into ecache once it succeeds).
      std::vector<std::pair<std::tuple<const PlacedTensor*, uint32_t, uint64_t>, StreamValue>> fetched;
      for (uint64_t n = 0;; ++a, ++n) {
        if (n > kMaxSearch) no_slot(spec.name + " acc");
        auto x = b_.begin();
        bool ok = true;
        uint64_t skip = 0;  // > 0: the residual row is not at the VXM before `skip` more cycles
        fetched.clear();
        for (size_t g = 0; g < prt.size() && ok; ++g) {
          const int64_t ag = static_cast<int64_t>(a) + prt[g].off;
          const Plane& pg = planes_[prt[g].plane];
          Instr acc = make_instr(Opcode::Acc);
          acc.set(Field::DType, static_cast<uint32_t>(acc_t));
          acc.set(Field::Plane, pg.plane);
          acc.set(Field::Row, static_cast<uint32_t>(prt[g].accrow));
          ok = ag >= 0 && b_.free_queue(pg.slice, static_cast<uint64_t>(ag), acc) >= 0 &&
               b_.produce(pg.dir_out, 4, pg.pos, static_cast<uint64_t>(ag) + lat_acc, &vals[g]);
          if (ok) {
            acc.set(Field::Dst, vals[g].ref().encode());
            ok = issue_pref(pg.slice, pg.q_acc, static_cast<uint64_t>(ag), acc);
          }
        }
        if (!ok) {
          b_.rollback(x);
          continue;
        }
        StreamValue cur = vals[0];
        StreamValue q;  // the second output's value (Y2)
        nvxm = 0;
        if (!direct_all) {
          uint64_t T = cur.time_at(vxm_pos_);
          Dir to = ydir;  // where the final op's result flows (Y's slices, then Y2's)
          // One VXM op: reads cur (and optionally b, c) at T, result of `width` at T + latency.
          auto vop = [&](Instr in, const StreamValue* bsrc, uint32_t width, bool final_op,
                         const StreamValue* csrc = nullptr) {
            if (T == UINT64_MAX) return false;
            in.set(Field::SrcA, cur.ref().encode());
            if (bsrc) in.set(Field::SrcB, bsrc->ref().encode());
            if (csrc) in.set(Field::SrcC, csrc->ref().encode());
            const uint64_t lat = instr_timing(cfg, in).latency;
            StreamValue out;
            const Dir d1 = final_op ? to : (to == Dir::East ? Dir::West : Dir::East);
            if (!b_.produce(d1, width, vxm_pos_, T + lat, &out) &&
                (final_op || !b_.produce(to, width, vxm_pos_, T + lat, &out)))
              return false;
            in.set(Field::Dst, out.ref().encode());
            if (!b_.issue_any(vxm_slice_, T, in)) return false;
            cur = out;
            T += lat;
            ++nvxm;
            return true;
          };
          // Row 0 of t (scale or bias), column tile dr.nt, at the VXM on cycle `at` (mostly T): a value
          // already on a stream then, else a fetch.
          auto erow = [&](PlacedTensor* t, uint64_t at, StreamValue* out) {
            if (at == UINT64_MAX) return false;
            const auto key = std::make_tuple(static_cast<const PlacedTensor*>(t), dr.nt, at);
            const auto hit = ecache.find(key);
            if (hit != ecache.end()) {
              *out = hit->second;
              return true;
            }
            // [1, N], or [copies * Nt, lanes] with row c * Nt + nt holding column tile nt
            // (MatmulSpec::scale): copy (at + i) % copies is tried i-th, so the fetches of
            // successive cycles spread over the copies' slices.
            const bool per_tile = t->vpr == 1 && (t->rows > 1 || Nt == 1);
            const int64_t copies = per_tile ? t->rows / static_cast<int64_t>(Nt) : 1;
            for (int64_t i = 0; i < copies; ++i) {
              const int64_t row = per_tile ? static_cast<int64_t>((at + static_cast<uint64_t>(i)) % static_cast<uint64_t>(copies)) *
                                                     static_cast<int64_t>(Nt) + dr.nt
                                           : 0;
              const auto& ts = t->part_of_row(row).slices;
              const uint32_t taddr = per_tile ? t->addr_of(row, 0) : t->addr_of(0, dr.nt);
              const Dir tdir = b_.pos(ts[0]) < vxm_pos_ ? Dir::East : Dir::West;
              if (!b_.fetch(ts, taddr, vxm_pos_, at, tdir, 0, out)) continue;
              fetched.emplace_back(key, *out);
              return true;
            }
            return false;
          };
          // Sum the partial rows of a split job (each arrives at the VXM when needed).
          for (size_t g = 1; g < vals.size() && ok; ++g) {
            if (vals[g].time_at(vxm_pos_) != T) throw std::logic_error("matmul: partial row misses the VXM");
            ok = vop(vxm_instr(Opcode::Add, acc_t), &vals[g], 4,
                     g + 1 == vals.size() && !rescale && !spec.bias && !spec.relu && !need_cvt);
          }
          // int8: acc (i32) -> f32, times the per-column scale row (passes/quantize.h).
          if (ok && rescale) ok = vop(cvt_instr(acc_t, DType::F32), nullptr, 4, false);
          // Vector v of activation t's row `row` fetched to be at the VXM on cycle `at`; if it lands
          // too late for `at`, sets skip to the cycles until it can and fails (the attempt retries
          // from there). The residual's rows and the row divisor's.
          auto fetch_act = [&](const PlacedTensor* t, int64_t row, uint32_t v, uint64_t at, StreamValue* out) {
            const auto& rs = t->part_of_row(row).slices;
            const uint64_t ready = t->ready[static_cast<size_t>(row * t->vpr + v)];
            uint64_t far = 0;
            for (uint16_t sl : rs)
              far = std::max<uint64_t>(far, b_.pos(sl) > vxm_pos_ ? b_.pos(sl) - vxm_pos_ : vxm_pos_ - b_.pos(sl));
            if (at < ready + lat_read + far) {
              skip = ready + lat_read + far - at;
              return false;
            }
            return b_.fetch(rs, t->addr_of(row, v), vxm_pos_, at, b_.pos(rs[0]) < vxm_pos_ ? Dir::East : Dir::West,
                            ready, out);
          };
          // A per-row divisor (MatmulSpec::row_div): product row dr.m's value at the VXM on T, `div`
          // before the scale.
          if (ok && RowDiv) {
            StreamValue dv;
            ok = T != UINT64_MAX && fetch_act(RowDiv, dr.m, 0, T, &dv) &&
                 vop(vxm_instr(Opcode::Div, DType::F32), &dv, 4, false);
            if (ok) spec.row_div->last_read = std::max(spec.row_div->last_read, T);
          }
          // With the fused multiply-add (chip config vxm.fused_multiply_add) the scale and the
          // bias are one `fma` (both rows fetched for its cycle): acc * scale + bias.
          const bool fma = rescale && spec.bias && cfg.vxm_fma;
          if (ok && fma) {
            StreamValue sv, bv;
            ok = erow(spec.scale, T, &sv) && erow(spec.bias, T, &bv);
            if (ok) {
              ok = vop(vxm_instr(Opcode::Fma, DType::F32), &sv, 4, !spec.relu && !need_cvt, &bv);
              spec.scale->last_read = std::max(spec.scale->last_read, T);
              spec.bias->last_read = std::max(spec.bias->last_read, T);
            }
          }
          if (ok && rescale && !fma) {
            StreamValue sv;
            ok = erow(spec.scale, T, &sv);
            if (ok) {
              ok = vop(vxm_instr(Opcode::Mul, DType::F32), &sv, 4, !spec.bias && !spec.relu && !need_cvt);
              spec.scale->last_read = std::max(spec.scale->last_read, T);
            }
          }
          if (ok && spec.bias && !fma) {
            StreamValue bv;
            ok = erow(spec.bias, T, &bv);
            if (ok) {
              ok = vop(vxm_instr(Opcode::Add, ep_t), &bv, 4, !spec.relu && !need_cvt);
              spec.bias->last_read = std::max(spec.bias->last_read, T);
            }
          }
          // R's row ym, column tile dr.nt, at the VXM on cycle t (fetch_act).
          auto fetch_res = [&](uint64_t t, StreamValue* rv) { return fetch_act(Res, ym, dr.nt, t, rv); };
          // An i8 residual: R's row ym, column tile dr.nt, reaches the VXM earlier and is widened
          // (`cvt i8 -> f32`) on another queue so that, on T, `fma` (R, its scale row, the result)
          // adds it in f32 (without the fused multiply-add: `mul` by the scale row on the side,
          // then `add`).
          if (ok && res8) {
            const Instr cvt = cvt_instr(DType::I8, DType::F32);
            const Instr mul = vxm_instr(Opcode::Mul, DType::F32);
            const uint64_t lat_cvt = instr_timing(cfg, cvt).latency;
            const uint64_t side = lat_cvt + (cfg.vxm_fma ? 0 : instr_timing(cfg, mul).latency);
            // A side op at t reading a (and b) on the VXM, result of `width` bytes on t + latency.
            auto side_op = [&](Instr in, const StreamValue& a, const StreamValue* b, uint64_t t, StreamValue* out,
                               uint32_t width = 4) {
              in.set(Field::SrcA, a.ref().encode());
              if (b) in.set(Field::SrcB, b->ref().encode());
              const uint64_t lat = instr_timing(cfg, in).latency;
              const Dir d1 = to == Dir::East ? Dir::West : Dir::East;
              if (!b_.produce(d1, width, vxm_pos_, t + lat, out) && !b_.produce(to, width, vxm_pos_, t + lat, out))
                return false;
              in.set(Field::Dst, out->ref().encode());
              if (!b_.issue_any(vxm_slice_, t, in)) return false;
              ++nvxm;
              return true;
            };
            // R's row reaches the VXM on T - side for the `cvt`, or k * (mov latency) earlier and is
            // held by k `mov.i8`s: the epilogue's template is rigid, so a read that collides with
            // one of its own (R's slice holding a scale or bias row fetched for the same cycle,
            // which depends on the latencies: tsp-v1 without the fma) would otherwise collide on
            // every cycle tried.
            const Instr mov8 = vxm_instr(Opcode::Mov, DType::I8);
            const uint64_t lat_mov = instr_timing(cfg, mov8).latency;
            StreamValue rv, rf, sv;
            ok = false;
            for (uint64_t k = 0; T != UINT64_MAX && k <= kMaxEpilogueRetime && T >= side + k * lat_mov; ++k) {
              const auto txk = b_.begin();
              const uint64_t nvxm_k = nvxm;
              uint64_t t = T - side - k * lat_mov;
              bool got = fetch_res(t, &rv);
              for (uint64_t m = 0; got && m < k; ++m, t += lat_mov) got = side_op(mov8, rv, nullptr, t, &rv, 1);
              if (got && side_op(cvt, rv, nullptr, t, &rf)) {
                ok = true;
                break;
              }
              b_.rollback(txk);
              nvxm = nvxm_k;
              // R not ready for this read: the attempt moves on, by skip when k == 0 (R's readiness
              // alone decides there), else by one cycle.
              if (skip > 0) {
                if (k > 0) skip = 0;
                break;
              }
            }
            if (ok && cfg.vxm_fma) {  // cur = R * rscale + cur
              ok = erow(spec.res_scale, T, &sv);
              if (ok) {
                Instr f = vxm_instr(Opcode::Fma, DType::F32);
                f.set(Field::SrcC, cur.ref().encode());
                cur = rf;
                ok = vop(f, &sv, 4, !spec.relu && !need_cvt);
              }
            } else if (ok) {  // cur = cur + R * rscale, the product on the side
              const uint64_t tm = T - instr_timing(cfg, mul).latency;
              StreamValue rr;
              ok = erow(spec.res_scale, tm, &sv) && side_op(mul, rf, &sv, tm, &rr);
              ok = ok && vop(vxm_instr(Opcode::Add, DType::F32), &rr, 4, !spec.relu && !need_cvt);
            }
            if (ok) {
              spec.residual->last_read = std::max(spec.residual->last_read, T);
              spec.res_scale->last_read = std::max(spec.res_scale->last_read, T);
            }
          }
          // With a narrowing output conversion the relu runs after it, on the narrow value (fewer
          // stream bytes; the same result: the conversion is monotone, maps 0 to 0 and NaN to
          // 0 (int) or NaN (f16), and relu maps NaN to 0).
          const bool relu_late = spec.relu && need_cvt;
          if (ok && spec.relu && !relu_late) ok = vop(vxm_instr(Opcode::Relu, ep_t), nullptr, 4, !need_cvt);
          const uint32_t ybytes = static_cast<uint32_t>(dtype_bytes(Y.dtype));
          if (ok && need_cvt && !Res16) ok = vop(cvt_instr(ep_t, Y.dtype), nullptr, ybytes, !relu_late);
          if (ok && relu_late && !Res16) ok = vop(vxm_instr(Opcode::Relu, Y.dtype), nullptr, ybytes, true);
          // The fused residual: the result rounded to f16 (what the product alone would store),
          // plus R's row ym, column tile dr.nt (`add.f16`), the relu on the f16 sum, and for an
          // i8 Y the sum widened, times y_inv_scale and converted to i8.
          const bool res16_y8 = Res16 && Y.dtype == DType::I8;  // the f16 sum quantized to an i8 Y
          // cur (of type `from`) -> f32 -> times inv (`muli`) -> i8, the last op toward `to`.
          auto quantize = [&](DType from, float inv) {
            bool q_ok = from == DType::F32 || vop(cvt_instr(from, DType::F32), nullptr, 4, false);
            q_ok = q_ok && vop(muli_f32(inv), nullptr, 4, false);
            return q_ok && vop(cvt_instr(DType::F32, DType::I8), nullptr, 1, true);
          };
          if (ok && Res16) ok = vop(cvt_instr(ep_t, DType::F16), nullptr, 2, false);
          if (ok && Res16) {
            StreamValue rv;
            ok = fetch_res(T, &rv);
            if (ok) {
              ok = vop(vxm_instr(Opcode::Add, DType::F16), &rv, 2, !spec.relu && !res16_y8);
              spec.residual->last_read = std::max(spec.residual->last_read, T);
            }
          }
          if (ok && Res16 && spec.relu) ok = vop(vxm_instr(Opcode::Relu, DType::F16), nullptr, 2, !res16_y8);
          if (ok && res16_y8) ok = quantize(DType::F16, spec.y_inv_scale);
          // The second output: Y's stored value (at the VXM on T) quantized toward Y2's slices.
          if (ok && Y2) {
            const StreamValue yv = cur;
            to = y2dir;
            ok = quantize(Y.dtype, spec.y2_inv_scale);
            q = cur;
            cur = yv;
          }
        }
        if (ok) ok = b_.store(cur, ys, yaddr, Y.write_not_before_row(ym), &landed);
        if (ok && Y2) ok = b_.store(q, y2s, y2addr, Y2->write_not_before_row(ym), &landed2);
        if (!ok) {
          b_.rollback(x);
          if (skip > 1) a += skip - 1;
          continue;
        }
        break;
      }
      for (const auto& f : fetched) ecache.emplace(f.first, f.second);
      st.acc += prt.size();
      st.vxm += nvxm;
      st.writes += ys.size() + y2s.size();
      st.last_end = std::max({st.last_end, landed, landed2});
      Y.ready[static_cast<size_t>(ym * Y.vpr + dr.nt)] = landed;
      if (Y2) Y2->ready[static_cast<size_t>(ym * Y2->vpr + dr.nt)] = landed2;
      for (const Part& pt : prt) {
        const uint64_t ag = static_cast<uint64_t>(static_cast<int64_t>(a) + pt.off);
        planes_[pt.plane].acc_read[static_cast<size_t>(pt.accrow)] = ag + 1;
        ps[pt.plane].d_next = std::max(ps[pt.plane].d_next, ag + 1);
        ps[pt.plane].pending[pt.local_job]--;
      }
      s.drain.pop_front();
    }
  }
  return st;
}

}  // namespace lpu::compiler
