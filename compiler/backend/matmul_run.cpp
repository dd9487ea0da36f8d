// MatmulScheduler::Run, part 1: the spec's checks and derived facts, the weight and X row sources,
// and the event loop that issues every lw, iw and abc (matmul_run.h lists the other parts).
#include "compiler/backend/matmul_run.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "compiler/backend/matmul_detail.h"
#include "isa/chip_config.h"

namespace lpu::compiler {

using namespace matmul_detail;

MatmulScheduler::Run::Run(MatmulScheduler& kernel, const MatmulSpec& spec_in)
    : k_(kernel),
      b_(kernel.b_),
      planes_(kernel.planes_),
      vxm_slice_(kernel.vxm_slice_),
      vxm_pos_(kernel.vxm_pos_),
      cfg(kernel.b_.cfg()),
      spec(spec_in),
      X(*spec_in.x),
      Y(*spec_in.y) {
  k_.last_pieces_.clear();
  k_.last_ready_order_ = false;
  k_.last_tile_order_.clear();
  wact = spec.w == nullptr;  // weights from the activation spec.b
  if (wact && (spec.b == nullptr || !spec.ktiles.empty()))
    throw std::logic_error("matmul: activation weights need b and default k-tiles");
  lanes = cfg.vector_bytes();
  in_t = X.dtype;
  if (in_t != DType::I8 && in_t != DType::F16)
    throw InputError(fmt::format("{}: matmul input '{}' has type {}; the MXM takes i8 or f16", spec.name,
                                 X.name, dtype_name(in_t)));
  if ((wact ? spec.b->dtype : spec.w->dtype) != in_t)
    throw std::logic_error("matmul: weight type differs from activation type");
  acc_t = in_t == DType::I8 ? DType::I32 : DType::F32;
  // The epilogue's type after the optional int8 rescale (i32 -> f32, times spec.scale).
  rescale = spec.scale != nullptr;
  if (rescale && (in_t != DType::I8 || spec.scale->dtype != DType::F32 || Y.dtype == DType::I32))
    throw std::logic_error("matmul: an epilogue scale needs i8 inputs, an f32 row and an i8/f16/f32 output");
  ep_t = rescale ? DType::F32 : acc_t;
  direct = spec.bias == nullptr && !spec.relu && !rescale && Y.dtype == acc_t && !spec.residual && !spec.y2;
  if (!direct && !(Y.dtype == ep_t ||
                   (ep_t == DType::F32 && (Y.dtype == DType::F16 || (rescale && Y.dtype == DType::I8)))))
    throw InputError(fmt::format("{}: output type {} not producible from {} accumulators", spec.name,
                                 dtype_name(Y.dtype), dtype_name(acc_t)));
  if (!direct && vxm_slice_ < 0) throw InputError(spec.name + ": epilogue needs a VXM slice");
  Res = spec.residual;
  // An i8 residual (MatmulSpec::res_scale) is added in f32 before the relu and the conversion.
  res8 = Res && Res->dtype == DType::I8;
  if (Res &&
      ((Res->dtype != DType::F16 && !res8) || res8 != (spec.res_scale != nullptr) || (res8 && !spec.scale) ||
       ep_t != DType::F32 || (Y.dtype != DType::F16 && Y.dtype != DType::I8) || Res->rows != Y.rows ||
       Res->vpr != Y.vpr || Res->inner != Y.inner))
    throw std::logic_error(
        fmt::format("{}: residual '{}' ({} [{}, {}]) must be an f16 tensor, or an i8 one with a scale "
                    "row in an int8 layer, of the f16 or i8 Y's stored shape ({} [{}, {}])",
                    spec.name, Res->name, dtype_name(Res->dtype), Res->rows, Res->inner, dtype_name(Y.dtype),
                    Y.rows, Y.inner));
  Res16 = res8 ? nullptr : Res;
  RowDiv = spec.row_div;
  if (RowDiv && (!rescale || RowDiv->dtype != DType::F32 || RowDiv->vpr != 1 || RowDiv->rows < spec.x->rows))
    throw std::logic_error(
        fmt::format("{}: row divisor '{}' must be an f32 [rows, 1] tensor of an int8 layer's rows", spec.name,
                    RowDiv->name));
  Y2 = spec.y2;
  if (Y2 && (Y2->dtype != DType::I8 || (Y.dtype != DType::F16 && Y.dtype != DType::F32) ||
             Y2->rows != Y.rows || Y2->vpr != Y.vpr || Y2->inner != Y.inner))
    throw std::logic_error(fmt::format(
        "{}: second output '{}' must be an i8 copy of an f16/f32 Y's stored shape", spec.name, Y2->name));
  if (planes_.empty()) throw InputError(fmt::format("chip '{}' has no MXM plane", cfg.name));
  if (cfg.streams_per_direction < 4 || cfg.mxm_acc_rows < 1)
    throw InputError(
        fmt::format("chip '{}': the matmul kernel needs >= 4 streams per direction (has {}) and >= 1 "
                    "accumulator row (has {})",
                    cfg.name, cfg.streams_per_direction, cfg.mxm_acc_rows));
  const bool tile_maps = !spec.ktiles.empty() && spec.ktiles[0].rows != nullptr;  // MatmulKTile::rows
  M = tile_maps             ? static_cast<int64_t>(spec.ktiles[0].rows->size())
      : spec.x_rows.empty() ? X.rows
                            : static_cast<int64_t>(spec.x_rows.size());
  for (const MatmulKTile& k : spec.ktiles)
    if ((k.rows != nullptr) != tile_maps || (tile_maps && static_cast<int64_t>(k.rows->size()) != M))
      throw std::logic_error("matmul: k-tile row maps must be given for every tile, each of M rows");
  wK = wact ? spec.b_K : spec.w->K;
  wN = wact ? spec.b_N : spec.w->N;
  Kt = static_cast<uint32_t>((wK + lanes - 1) / lanes);
  Nt = static_cast<uint32_t>((wN + lanes - 1) / lanes);
  if (!wact && (Kt != spec.w->Kt || Nt != spec.w->Nt))
    throw std::logic_error("matmul: weight tiling mismatch");
  if (!spec.ktiles.empty() && spec.ktiles.size() != Kt)
    throw std::logic_error("matmul: k-tile list != weight tiles");
  if (Nt != Y.vpr || (!spec.y_rows.empty() && static_cast<int64_t>(spec.y_rows.size()) != M) ||
      (spec.y_rows.empty() && Y.rows != M) || (spec.ktiles.empty() && Kt > X.vpr))
    throw std::logic_error("matmul: shape mismatch between X, W and Y");
  if (wact && spec.b_trans && !cfg.mxm_transposed_install)
    throw InputError(
        fmt::format("{}: its weights are an activation read transposed (attention's K^T, a Transpose), "
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
      throw std::logic_error("matmul: epilogue row " + e->name +
                             " is neither [1, N] nor copies of one row per column tile");
  // Only stored weight rows may be loaded (place_weights packs the rows each k-tile loads).
  if (!wact)
    for (uint32_t kt = 0; kt < Kt; ++kt) {
      const uint32_t lo = spec.ktiles.empty() ? 0 : spec.ktiles[kt].w_lo;
      const uint32_t hi = spec.ktiles.empty() ? spec.w->valid_rows(kt, lanes) : spec.ktiles[kt].w_hi;
      if (lo < hi && (!spec.w->stored(kt, lo) || !spec.w->stored(kt, hi - 1)))
        throw std::logic_error("matmul: k-tile rows not stored in " + spec.w->name);
    }
  // A transposed tile (PlacedWeights::trans) is installed by `iwt`.
  if (!wact && !cfg.mxm_transposed_install)
    for (uint32_t kt = 0; kt < Kt; ++kt)
      for (uint32_t nt = 0; nt < Nt; ++nt)
        if (transposed_tile(kt, nt))
          throw std::logic_error("matmul: a transposed tile on a chip without `iwt`");
  iw_op = wact && spec.b_trans ? Opcode::InstWT : Opcode::InstW;

  lat_lw = latency_of(cfg, Opcode::LoadW, in_t);
  lat_iw = latency_of(cfg, Opcode::InstW, in_t);
  lat_abc = latency_of(cfg, Opcode::Abc, in_t);
  occ_abc = std::max<uint64_t>(1, occupancy_of(cfg, Opcode::Abc, in_t));
  lat_acc = latency_of(cfg, Opcode::Acc, acc_t);
  lat_read = latency_of(cfg, Opcode::Read, DType::I8);
  P = planes_.size();
  half = std::max<int64_t>(1, cfg.mxm_acc_rows / 2);
  lat_add = static_cast<int64_t>(latency_of(cfg, Opcode::Add, acc_t));
}

bool MatmulScheduler::Run::transposed_tile(uint32_t kt, uint32_t nt) const {
  return !wact && spec.w->transposed(kt, nt);
}

std::pair<uint32_t, uint32_t> MatmulScheduler::Run::tile_rows(uint32_t kt, uint32_t nt) const {
  if (transposed_tile(kt, nt)) return {0, spec.w->valid_cols(nt, lanes)};
  if (!spec.ktiles.empty()) return {spec.ktiles[kt].w_lo, spec.ktiles[kt].w_hi};
  if (!wact) return {0, spec.w->valid_rows(kt, lanes)};
  const int64_t left =
      spec.b_trans ? wN - static_cast<int64_t>(nt) * lanes : wK - static_cast<int64_t>(kt) * lanes;
  return {0, static_cast<uint32_t>(std::min<int64_t>(left, lanes))};
}

MatmulScheduler::Run::WSrc MatmulScheduler::Run::wsrc(uint32_t kt, uint32_t nt, uint32_t r) const {
  if (!wact)
    return {&spec.w->slices_of(kt, nt, r), spec.w->addr_of(kt, nt, r), 0};  // packed rows (placed_tensor.h)
  PlacedTensor& B = *spec.b;
  const int64_t row =
      spec.b_row0 + (spec.b_trans ? static_cast<int64_t>(nt) : static_cast<int64_t>(kt)) * lanes + r;
  const uint32_t chunk = spec.b_trans ? kt : nt;
  return {&B.part_of_row(row).slices, B.addr_of(row, chunk),
          B.ready[static_cast<size_t>(row * B.vpr + chunk)]};
}

MatmulScheduler::Run::XSrc MatmulScheduler::Run::xsrc(uint32_t kt, int64_t m) const {
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
}

int64_t MatmulScheduler::Run::vdist(size_t plane) const {
  const uint32_t p = planes_[plane].pos;
  return static_cast<int64_t>(pos_gap(p, vxm_pos_));
}

int64_t MatmulScheduler::Run::part_offset(size_t leader, size_t plane, uint32_t g) const {
  return vdist(leader) - vdist(plane) + lat_add * (g >= 1 ? static_cast<int64_t>(g) - 1 : 0);
}

MatmulStats MatmulScheduler::Run::run() {
  for (;;) {
    const Event ev = next_event();
    if (ev.plane < 0) break;
    const size_t p = static_cast<size_t>(ev.plane);
    PS& s = ps[p];
    Plane& pl = planes_[p];
    if (ev.kind == LW && balanced && !wact)
      issue_lw_any_row(s, pl, ev.at);
    else if (ev.kind == LW)
      issue_lw(s, pl, ev.at);
    else if (ev.kind == IW)
      issue_iw(s, pl, ev.at);
    else if (ev.kind == ABC)
      issue_abc(p, s, pl, ev.at);
    else
      issue_acc(p, s, ev.at);
  }
  return st;
}

// Each plane's next event (a lw, its iw, an abc or a drain) at the earliest cycle its inputs allow;
// the earliest of all planes (the lowest plane on a tie) goes next.
MatmulScheduler::Run::Event MatmulScheduler::Run::next_event() {
  Event best;
  for (size_t i = 0; i < P; ++i) {
    PS& s = ps[i];
    Plane& pl = planes_[i];
    auto cand = [&](int k, uint64_t e) {
      if (e < best.at) best = Event{static_cast<int>(i), k, e};
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
          if (pr.earliest == UINT64_MAX) {
            ok = false;
            break;
          }
          const int64_t off = part_offset(i, pr.plane, g);
          e = std::max(e, static_cast<int64_t>(pr.earliest) - off);
          e = std::max(e, static_cast<int64_t>(ps[pr.plane].d_next) - off);
        }
        if (ok) cand(ACC, static_cast<uint64_t>(std::max<int64_t>(e, 0)));
      }
    }
  }
  return best;
}

// Install-bound layers: the next row of the tile is any not yet loaded whose weight group's SRAM
// slices are free (rows of a tile may load in any order), so the planes' lw streams do not stall
// on each other's reads of the same group.
void MatmulScheduler::Run::issue_lw_any_row(PS& s, Plane& pl, uint64_t e) {
  const Tile& tl = s.tiles[s.li];
  const uint32_t nt = s.jobs[tl.job].nt;
  if (s.todo.empty())
    for (uint32_t q = s.lr; q < tl.hi; ++q) s.todo.push_back(q);
  Instr lw = make_instr(Opcode::LoadW, in_t);
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
      if (!k_.issue_pref(pl.slice, pl.q_load, T, lw)) {
        b_.rollback(x);
        continue;
      }
      st.reads += src.slices->size();
      s.todo.erase(s.todo.begin() + static_cast<std::ptrdiff_t>(j));
      placed = true;
    }
    if (placed) break;
  }
  lw_issued(s, T);
}

void MatmulScheduler::Run::lw_issued(PS& s, uint64_t T) {
  st.lw++;
  st.first_issue = std::min(st.first_issue, T);
  s.lw_next = T + 1;
  s.last_lw_land = std::max(s.last_lw_land, T + lat_lw);
  s.lr++;
}

// The tile's next weight row, in order; planes of one MXM slice loading the same tile share it.
void MatmulScheduler::Run::issue_lw(PS& s, Plane& pl, uint64_t e) {
  const Tile& tl = s.tiles[s.li];
  const uint32_t r = s.lr;
  const WSrc src = wsrc(tl.kt, s.jobs[tl.job].nt, r);
  const auto& ws = *src.slices;
  const uint32_t waddr = src.addr;
  Instr lw = make_instr(Opcode::LoadW, in_t);
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
    if (k_.issue_pref(pl.slice, pl.q_load, t, lw)) {
      T = t;
      placed = true;
      break;
    }
  }
  if (!placed && src.ready > 0)
    for (uint16_t sl : ws) {
      const uint32_t p = b_.pos(sl);
      T = std::max(T, src.ready + lat_read + pos_gap(p, pl.pos));
    }
  for (uint64_t n = 0; !placed; ++T, ++n) {
    if (n > kMaxSearch) no_slot(spec.name + " lw");
    if (b_.free_queue(pl.slice, T, lw) < 0) continue;
    auto x = b_.begin();
    StreamValue wv;
    if (!b_.fetch(ws, waddr, pl.pos, T, pl.dir_in, src.ready, &wv)) continue;
    lw.set(Field::SrcA, wv.ref().encode());
    if (!k_.issue_pref(pl.slice, pl.q_load, T, lw)) {
      b_.rollback(x);
      continue;
    }
    cached.push_back(wv);
    st.reads += ws.size();
    break;
  }
  if (wact) spec.b->last_read = std::max(spec.b->last_read, T);
  lw_issued(s, T);
}

// The loaded tile installed (`iw`, or `iwt` for a transposed tile) once its rows have landed.
void MatmulScheduler::Run::issue_iw(PS& s, Plane& pl, uint64_t e) {
  const Tile& itl = s.tiles[s.li];
  Instr iw = make_instr(transposed_tile(itl.kt, s.jobs[itl.job].nt) ? Opcode::InstWT : iw_op, in_t);
  iw.set(Field::Plane, pl.plane);
  uint64_t T = e;
  for (uint64_t n = 0;; ++T, ++n) {
    if (n > kMaxSearch) no_slot(spec.name + " iw");
    if (k_.issue_pref(pl.slice, pl.q_load, T, iw)) break;
  }
  st.iw++;
  s.iw_time[s.li] = static_cast<int64_t>(T);
  pl.shadow_free = T + lat_iw;
  s.li++;
  s.lr = 0;  // raised to the next tile's first loaded row when it is considered
  s.last_lw_land = 0;
}

void MatmulScheduler::Run::issue_abc(size_t best_p, PS& s, Plane& pl, uint64_t e) {
  // The tile's rows may stream in any order (each accumulator row sees the k-tiles in order,
  // since the next tile's iw waits for this tile's last abc): the abc takes the earliest cycle
  // at which one of the next kAbcWindow rows (in the job's rotated order) can get its X vector,
  // preferring a value another plane already put on the stream over a fresh read. So two
  // planes never stall each other on one X slice's read port while another row is free. The
  // rows' sources are computed once per tile (PS::rtodo).
  const Tile& tl = s.tiles[s.ci];
  const Job& jb = s.jobs[tl.job];
  if (s.cr == 0) list_rows(s, pl);
  uint64_t T = 0;
  const size_t pick = place_abc(s, pl, e, &T);
  const bool last = tl.last;
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
      PartRec& pr = parts[static_cast<size_t>(jb.group)]
                         [static_cast<size_t>(idx) * gsz[static_cast<size_t>(jb.group)] + jb.kg];
      pr = PartRec{static_cast<size_t>(best_p), accrow, tl.local_job, T + lat_abc};
      if (jb.kg == 0) s.drain.push_back({accrow, m, jb.nt, T + lat_abc, tl.local_job, jb.group, idx});
    }
  }
  if (++s.cr == jb.rows) {
    s.cr = 0;
    s.ci++;
  }
}

void MatmulScheduler::Run::list_rows(PS& s, const Plane& pl) {
  const Tile& tl = s.tiles[s.ci];
  const Job& jb = s.jobs[tl.job];
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
      rc.lo_x = std::max(rc.lo_x, rc.ready + lat_read + pos_gap(p, pl.pos));
    }
    rc.cached = &xcache[{rc.xsr.t, rc.v}];
    s.rtodo.push_back(rc);
  }
}

size_t MatmulScheduler::Run::place_abc(PS& s, Plane& pl, uint64_t e, uint64_t* Tp) {
  const Tile& tl = s.tiles[s.ci];
  const bool first = tl.first;
  const size_t W = std::min(s.rtodo.size(), kAbcWindow);
  std::vector<uint64_t> lo(W);
  uint64_t lo_min = UINT64_MAX;
  for (size_t j = 0; j < W; ++j) {
    const RowCand& c = s.rtodo[j];
    lo[j] = std::max(e, c.lo_x);
    if (first) lo[j] = std::max(lo[j], pl.acc_read[static_cast<size_t>(c.accrow)]);
    lo_min = std::min(lo_min, lo[j]);
  }
  Instr abc = make_instr(Opcode::Abc, in_t);
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
            if (k_.issue_pref(pl.slice, pl.q_abc, T, abc)) {
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
          if (!k_.issue_pref(pl.slice, pl.q_abc, T, abc)) {
            b_.rollback(x);
            break;
          }
          c.cached->push_back(xv);
          st.reads += c.xs->size();
          placed = true;
        }
        if (placed) pick = j;
      }
    if (placed) break;
  }
  *Tp = T;
  return pick;
}

}  // namespace lpu::compiler
