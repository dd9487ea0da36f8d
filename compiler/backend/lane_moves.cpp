// LaneScheduler::Run, moves(): lane broadcasts and moves, one SXM `distribute` or `permute` per
// row (lane_run.h lists the parts).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

#include "compiler/backend/lane_run.h"

namespace lpu::compiler {

using namespace lane_detail;

// moves()'s state (lane_run.h): the mode, the element width, the lanes a row moves, the
// broadcast's `distribute`, the permute maps made so far, and each SXM's latest row start.
struct LaneScheduler::Run::MoveState {
  bool move = false;
  uint32_t w = 0;
  int64_t mw = 0;
  Instr dis;
  std::map<std::array<int64_t, 4>, uint32_t> maps;  // (lo, dst, extra src, extra dst) -> map id
  std::vector<uint64_t> Ts;                         // per SXM: nondecreasing start of its rows
};

MatmulStats LaneScheduler::Run::moves() {
  // Row r: read one vector of x toward an SXM, one `distribute` (Broadcast: lane src_lane to
  // every lane) or `permute` (Move: lanes [lo, lo + W) of the vector to [dst, dst + W), dst =
  // y_cols[r] or 0, zeros elsewhere), write on the way back. Rows take the SXMs of sxm_rows_
  // (tsp-v1: one at each edge), each row the one whose probe lands first (ties: the first
  // listed), so two rows can pass per cycle.
  MoveState m;
  m.move = spec.mode == LaneMode::Move;
  m.w = static_cast<uint32_t>(dtype_bytes(X.dtype));
  m.mw = spec.move_width > 0 ? static_cast<int64_t>(spec.move_width) : Y.inner;
  m.dis = make_instr(Opcode::Distribute, X.dtype);
  m.Ts.assign(sxm_rows_.size(), 0);
  check_moves(m);
  std::vector<std::vector<int64_t>> groups = move_groups(m);
  // Groups go in the order their x vectors become readable (ties: first y row), since each SXM's
  // starts are nondecreasing: a producer that writes x out of y's row order (a pool on row
  // pairs, or a product cut over planes) is followed as it writes.
  auto src_ready = [&](const std::vector<int64_t>& grp) {
    if (!m.move) return X.ready_of(grp[0], 0);
    const int64_t r = grp[0], xr = (*spec.x_rows)[static_cast<size_t>(r)];
    const int64_t col = (*spec.x_cols)[static_cast<size_t>(r)];
    return xr >= 0 && xr < X.rows && col >= 0 && col / L < X.vpr
               ? X.ready_of(xr, static_cast<uint32_t>(col / L))
               : uint64_t{0};
  };
  std::stable_sort(groups.begin(), groups.end(),
                   [&](const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
                     return src_ready(a) < src_ready(b);
                   });
  for (const std::vector<int64_t>& grp : groups) {
    size_t best = 0;
    if (sxm_rows_.size() > 1) {
      uint64_t best_land = std::numeric_limits<uint64_t>::max();
      for (size_t side = 0; side < sxm_rows_.size(); ++side) {
        const uint64_t l = place_group(m, grp, side, false);
        if (l < best_land) {
          best_land = l;
          best = side;
        }
      }
    }
    place_group(m, grp, best, true);
  }
  return st;
}

void LaneScheduler::Run::check_moves(MoveState& m) {
  if (Y.dtype != X.dtype) throw std::logic_error(spec.name + ": a lane broadcast or move keeps x's type");
  if (!m.move && ((X.inner != 1 && X.inner <= static_cast<int64_t>(spec.src_lane)) || spec.src_lane >= L))
    throw std::logic_error(
        fmt::format("{}: a lane broadcast copies lane {} of an [rows, K > lane] tensor (lane in "
                    "its first vector) to one [rows, 1] of the same type",
                    spec.name, spec.src_lane));
  if (m.move && (!spec.x_rows || !spec.x_cols || static_cast<int64_t>(spec.x_rows->size()) != Y.rows ||
               spec.x_cols->size() != spec.x_rows->size() || Y.vpr != 1))
    throw std::logic_error(spec.name +
                           ": a lane move needs a source row and column per row of a one-vector y");
  if (m.move && (m.mw > Y.inner || Y.inner > static_cast<int64_t>(L)))
    throw std::logic_error(spec.name + ": a lane move of more lanes than y's row or a vector");
  if (!m.move) {
    std::vector<uint16_t> map(L, static_cast<uint16_t>(spec.src_lane));
    if (spec.lane_map) {
      if (spec.lane_map->size() != L || Y.vpr != 1)
        throw std::logic_error(spec.name + ": a lane map needs one source lane per lane and a one-vector y");
      for (uint32_t l = 0; l < L; ++l) {
        const int64_t src = (*spec.lane_map)[l];
        if (src < 0 || src >= static_cast<int64_t>(L) || (X.inner != 1 && src >= X.inner))
          throw std::logic_error(fmt::format("{}: lane map entry {} names lane {}", spec.name, l, src));
        map[l] = static_cast<uint16_t>(src);
      }
    }
    m.dis.set(Field::Imm, b_.map_id(map));
  }
  if (m.move && spec.y_cols && spec.y_cols->size() != spec.x_rows->size())
    throw std::logic_error(spec.name + ": a lane move's destination lanes need one entry per row");
  if (m.move && (!spec.one_cols != !spec.one_lanes ||
               (spec.one_cols && (spec.one_cols->size() != spec.x_rows->size() ||
                                  spec.one_lanes->size() != spec.x_rows->size()))))
    throw std::logic_error(spec.name + ": a lane move's extra lanes need a source and a destination per row");
}

// Groups of y rows read from one vector of x (Move: the heads of one token's vector of a fused
// projection; Broadcast: one row each): ONE read of that vector passes the SXM, which issues a
// `permute` per row of the group on that cycle (stream values are not consumed), and each result
// is written on its way back. Rows join a group only if their y slices differ from the group's
// others' (the writes land on one cycle) and while the group fits the SXM's queues.
std::vector<std::vector<int64_t>> LaneScheduler::Run::move_groups(const MoveState& m) const {
  uint32_t group_max = UINT32_MAX;
  for (int i : sxm_rows_) group_max = std::min(group_max, cfg.slices[static_cast<size_t>(i)].queues);
  group_max = std::min(group_max, cfg.streams_per_direction / m.w);
  std::vector<std::vector<int64_t>> groups;
  {
    std::map<std::pair<int64_t, int64_t>, std::vector<size_t>> by_src;  // (x row, chunk) -> groups
    for (int64_t r = 0; r < Y.rows; ++r) {
      const std::pair<int64_t, int64_t> key = m.move
                                                  ? std::make_pair((*spec.x_rows)[static_cast<size_t>(r)],
                                                                   (*spec.x_cols)[static_cast<size_t>(r)] / L)
                                                  : std::make_pair(r, int64_t{-1});
      const auto& ys = Y.part_of_row(r).slices;
      size_t gi = groups.size();
      if (m.move)
        for (size_t g : by_src[key]) {
          bool ok = groups[g].size() < group_max;
          for (int64_t o : groups[g])
            for (uint16_t s : Y.part_of_row(o).slices)
              ok = ok && std::find(ys.begin(), ys.end(), s) == ys.end();
          if (ok) {
            gi = g;
            break;
          }
        }
      if (gi == groups.size()) {
        groups.emplace_back();
        by_src[key].push_back(gi);
      }
      groups[gi].push_back(r);
    }
  }
  return groups;
}

Instr LaneScheduler::Run::move_instr(MoveState& m, uint32_t lo, uint32_t dst, int64_t one_src, int64_t one_dst) {
  const std::array<int64_t, 4> key{lo, dst, one_src, one_dst};
  auto it = m.maps.find(key);
  if (it == m.maps.end()) {
    std::vector<uint16_t> map(L, 0xFFFF);
    for (uint32_t i = 0; i < static_cast<uint32_t>(m.mw); ++i) map[dst + i] = static_cast<uint16_t>(lo + i);
    if (one_dst >= 0) map[static_cast<size_t>(one_dst)] = static_cast<uint16_t>(one_src);
    it = m.maps.emplace(key, b_.map_id(map)).first;
  }
  Instr in = make_instr(Opcode::Permute, X.dtype);
  in.set(Field::Imm, it->second);
  return in;
}

uint64_t LaneScheduler::Run::place_group(MoveState& m, const std::vector<int64_t>& grp, size_t side, bool commit) {
  const auto probe = b_.begin();
  use_sxm(side);
  const int64_t r0 = grp[0];
  int64_t xr = r0;
  uint32_t chunk = 0;
  std::vector<Instr> ops(grp.size(), m.dis);
  if (m.move) {
    xr = (*spec.x_rows)[static_cast<size_t>(r0)];
    for (size_t k = 0; k < grp.size(); ++k) {
      const int64_t r = grp[k];
      const int64_t col = (*spec.x_cols)[static_cast<size_t>(r)];
      if (xr < 0 || xr >= X.rows || col < 0 || col % L + m.mw > L || col / L >= X.vpr)
        throw std::logic_error(
            fmt::format("{}: row {} moves columns [{}, {}) of x row {}, not inside one vector of x",
                        spec.name, r, col, col + m.mw, xr));
      const int64_t dst = spec.y_cols ? (*spec.y_cols)[static_cast<size_t>(r)] : 0;
      if (dst < 0 || dst + m.mw > Y.inner)
        throw std::logic_error(fmt::format("{}: row {} lands in lanes [{}, {}) of a {}-lane y", spec.name,
                                           r, dst, dst + m.mw, Y.inner));
      chunk = static_cast<uint32_t>(col / L);
      int64_t one_src = -1, one_dst = -1;
      if (spec.one_cols && (*spec.one_cols)[static_cast<size_t>(r)] >= 0) {
        const int64_t oc = (*spec.one_cols)[static_cast<size_t>(r)];
        one_dst = (*spec.one_lanes)[static_cast<size_t>(r)];
        if (oc / L != col / L || one_dst < 0 || one_dst >= Y.inner ||
            (one_dst >= dst && one_dst < dst + m.mw))
          throw std::logic_error(
              fmt::format("{}: row {} copies column {} of x row {} to lane {}: not in its range's "
                          "vector, or not a free lane of y",
                          spec.name, r, oc, xr, one_dst));
        one_src = oc % L;
      }
      ops[k] = move_instr(m, static_cast<uint32_t>(col % L), static_cast<uint32_t>(dst), one_src, one_dst);
    }
  }
  const auto& xs = X.part_of_row(xr).slices;
  for (uint16_t s : xs)
    if (to_s == Dir::West ? b_.pos(s) < S : b_.pos(s) > S)
      throw std::logic_error(spec.name + ": x is not between the SXM and the chip's far edge");
  int64_t far = 0;
  for (uint16_t s : xs) far = std::max(far, dist(b_.pos(s), S));
  const uint64_t ready = X.ready_of(xr, chunk);
  uint64_t T = std::max<uint64_t>(m.Ts[side], ready + static_cast<uint64_t>(lat_read + far));
  std::vector<uint64_t> landed(grp.size(), 0);
  for (uint64_t n = 0;; ++T, ++n) {
    if (n > kMaxSearch) throw std::logic_error("lane scheduler: no cycle found for " + spec.name);
    const auto x = b_.begin();
    StreamValue raw;
    bool ok = b_.fetch(xs, X.addr_of(xr, chunk), S, T, to_s, ready, &raw);
    for (size_t k = 0; k < grp.size() && ok; ++k) {
      StreamValue out;
      ok = sop(ops[k], raw, T, m.w, &out) && b_.store(out, Y.part_of_row(grp[k]).slices, Y.addr_of(grp[k], 0),
                                                    Y.write_not_before_row(grp[k]), &landed[k]);
    }
    if (ok) break;
    b_.rollback(x);
  }
  const uint64_t last_land = *std::max_element(landed.begin(), landed.end());
  if (!commit) {
    b_.rollback(probe);
    return last_land;
  }
  m.Ts[side] = T;
  const uint64_t first = T - static_cast<uint64_t>(lat_read + far);
  for (size_t k = 0; k < grp.size(); ++k)
    finish_row(grp[k], landed[k], first, T - static_cast<uint64_t>(lat_read), k == 0 ? xs.size() : 0, 0);
  return last_land;
}

}  // namespace lpu::compiler
