// LaneScheduler: row reductions and lane broadcasts on the VXM + SXM (see lane_kernel.h).
#include "compiler/backend/lane_kernel.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <limits>
#include <map>
#include <stdexcept>

#include "isa/chip_config.h"

namespace lpu::compiler {

namespace {

constexpr uint64_t kMaxSearch = uint64_t{1} << 24;  // cycles tried per row before giving up

int64_t dist(uint32_t a, uint32_t b) { return a > b ? static_cast<int64_t>(a - b) : static_cast<int64_t>(b - a); }

Dir opposite(Dir d) { return d == Dir::East ? Dir::West : Dir::East; }

}  // namespace

std::vector<float> lane_mask_row(LaneMode mode, int64_t K, uint32_t lanes) {
  const int64_t valid = K % lanes;
  if (valid == 0 || mode == LaneMode::Broadcast || mode == LaneMode::Move) return {};
  const bool sum = mode == LaneMode::Sum;
  std::vector<float> m(lanes);
  for (uint32_t i = 0; i < lanes; ++i)
    m[i] = i < valid ? (sum ? 1.f : 0.f) : (sum ? 0.f : -std::numeric_limits<float>::infinity());
  return m;
}

LaneScheduler::LaneScheduler(ScheduleBuilder& b) : b_(b) {
  for (int i : b.cfg().slices_of(SliceKind::VXM)) {
    vxm_slice_ = i;
    vxm_pos_ = b.pos(i);
    break;
  }
  int64_t best = -1;
  for (int i : b.cfg().slices_of(SliceKind::SXM)) {
    const int64_t dd = vxm_slice_ >= 0 ? dist(b.pos(i), vxm_pos_) : 0;
    if (best < 0 || dd < best) {
      best = dd;
      sxm_slice_ = i;
    }
  }
  for (int i : b.cfg().slices_of(SliceKind::SXM))
    if (i == sxm_slice_ || (vxm_slice_ >= 0 && dist(b.pos(i), vxm_pos_) == best)) sxm_rows_.push_back(i);
}

MatmulStats LaneScheduler::schedule(const LaneSpec& spec) {
  const ChipConfig& cfg = b_.cfg();
  if (sxm_slice_ < 0 || (spec.mode != LaneMode::Broadcast && spec.mode != LaneMode::Move && vxm_slice_ < 0))
    throw InputError(fmt::format("{}: chip '{}' needs a VXM and an SXM slice for row reductions and lane broadcasts",
                                 spec.name, cfg.name));
  if (cfg.streams_per_direction < 4)
    throw InputError(fmt::format("{}: chip '{}' needs >= 4 streams per direction for f32 VXM ops (has {})", spec.name,
                                 cfg.name, cfg.streams_per_direction));
  PlacedTensor& X = *spec.x;
  PlacedTensor& Y = *spec.y;
  for (const PlacedTensor* t : {&X, &Y})
    if (t->dtype != DType::F16 && t->dtype != DType::F32)
      throw InputError(fmt::format("{}: tensor '{}' has type {}; lane steps take f16 or f32", spec.name, t->name,
                                   dtype_name(t->dtype)));
  if (spec.mode != LaneMode::Move && (Y.inner != 1 || Y.rows != X.rows))
    throw std::logic_error(fmt::format("{}: Y must be [{}, 1], is [{}, {}]", spec.name, X.rows, Y.rows, Y.inner));
  const uint32_t L = cfg.vector_bytes();
  // The SXM of the step (reductions: of the row, see sxm_rows_): slice, position, directions.
  int sxm = sxm_slice_;
  uint32_t S = b_.pos(sxm_slice_);
  const uint32_t V = vxm_pos_;
  Dir to_s = S < V ? Dir::West : Dir::East, from_s = opposite(to_s);
  auto lat = [&](const Instr& in) { return static_cast<int64_t>(instr_timing(cfg, in).latency); };
  const int64_t lat_read = lat(make_instr(Opcode::Read));
  MatmulStats st;
  auto finish_row = [&](int64_t r, uint64_t landed, uint64_t first_read, uint64_t last_read, uint64_t reads,
                        uint64_t nvxm) {
    Y.ready_of(r, 0) = landed;
    X.last_read = std::max(X.last_read, last_read);
    st.first_issue = std::min(st.first_issue, first_read);
    st.last_end = std::max(st.last_end, landed);
    st.reads += reads;
    st.writes += Y.part_of_row(r).slices.size();
    st.vxm += nvxm;
  };
  // One SXM instruction at S on cycle t whose result (width bytes) heads back from the SXM.
  auto sop = [&](Instr in, const StreamValue& src, uint64_t t, uint32_t width, StreamValue* out) {
    in.set(Field::SrcA, src.ref().encode());
    if (!b_.produce(from_s, width, S, t + static_cast<uint64_t>(lat(in)), out)) return false;
    in.set(Field::Dst, out->ref().encode());
    if (!b_.issue_any(sxm, t, in)) return false;
    return true;
  };

  if (spec.mode == LaneMode::Broadcast || spec.mode == LaneMode::Move) {
    // Row r: read one vector of x toward an SXM, one `distribute` (Broadcast: lane src_lane to
    // every lane) or `permute` (Move: lanes [lo, lo + W) of the vector to [0, W), zeros above),
    // write on the way back. Rows take the SXMs of sxm_rows_ (tsp-v1: one at each edge), each row
    // the one whose probe lands first (ties: the first listed), so two rows can pass per cycle.
    const bool move = spec.mode == LaneMode::Move;
    if (Y.dtype != X.dtype)
      throw std::logic_error(spec.name + ": a lane broadcast or move keeps x's type");
    if (!move && ((X.inner != 1 && X.inner <= static_cast<int64_t>(spec.src_lane)) || spec.src_lane >= L))
      throw std::logic_error(fmt::format("{}: a lane broadcast copies lane {} of an [rows, K > lane] tensor (lane in "
                                         "its first vector) to one [rows, 1] of the same type",
                                         spec.name, spec.src_lane));
    if (move && (!spec.x_rows || !spec.x_cols || static_cast<int64_t>(spec.x_rows->size()) != Y.rows ||
                 spec.x_cols->size() != spec.x_rows->size() || Y.vpr != 1))
      throw std::logic_error(spec.name + ": a lane move needs a source row and column per row of a one-vector y");
    const uint32_t w = static_cast<uint32_t>(dtype_bytes(X.dtype));
    const int64_t mw = spec.move_width > 0 ? static_cast<int64_t>(spec.move_width) : Y.inner;
    if (move && (mw > Y.inner || Y.inner > static_cast<int64_t>(L)))
      throw std::logic_error(spec.name + ": a lane move of more lanes than y's row or a vector");
    Instr dis = make_instr(Opcode::Distribute);
    dis.set(Field::DType, static_cast<uint32_t>(X.dtype));
    if (!move) dis.set(Field::Imm, b_.map_id(std::vector<uint16_t>(L, static_cast<uint16_t>(spec.src_lane))));
    std::map<uint32_t, uint32_t> move_maps;  // lane offset -> map id (Move)
    auto move_instr = [&](uint32_t lo) {
      auto it = move_maps.find(lo);
      if (it == move_maps.end()) {
        std::vector<uint16_t> map(L, 0xFFFF);
        for (uint32_t i = 0; i < static_cast<uint32_t>(mw); ++i) map[i] = static_cast<uint16_t>(lo + i);
        it = move_maps.emplace(lo, b_.map_id(map)).first;
      }
      Instr in = make_instr(Opcode::Permute);
      in.set(Field::DType, static_cast<uint32_t>(X.dtype));
      in.set(Field::Imm, it->second);
      return in;
    };
    std::vector<uint64_t> Ts(sxm_rows_.size(), 0);  // per SXM: nondecreasing start of its rows
    // Places row r through SXM `side` (commit false: a probe, undone); returns the cycle it lands.
    auto place_row = [&](int64_t r, size_t side, bool commit) -> uint64_t {
      const auto probe = b_.begin();
      sxm = sxm_rows_[side];
      S = b_.pos(sxm);
      to_s = S < V ? Dir::West : Dir::East;
      from_s = opposite(to_s);
      int64_t xr = r;
      uint32_t chunk = 0;
      Instr op = dis;
      if (move) {
        xr = (*spec.x_rows)[static_cast<size_t>(r)];
        const int64_t col = (*spec.x_cols)[static_cast<size_t>(r)];
        if (xr < 0 || xr >= X.rows || col < 0 || col % L + mw > L || col / L >= X.vpr)
          throw std::logic_error(fmt::format("{}: row {} moves columns [{}, {}) of x row {}, not inside one vector of x",
                                             spec.name, r, col, col + mw, xr));
        chunk = static_cast<uint32_t>(col / L);
        op = move_instr(static_cast<uint32_t>(col % L));
      }
      const auto& xs = X.part_of_row(xr).slices;
      const auto& ys = Y.part_of_row(r).slices;
      for (uint16_t s : xs)
        if (to_s == Dir::West ? b_.pos(s) < S : b_.pos(s) > S)
          throw std::logic_error(spec.name + ": x is not between the SXM and the chip's far edge");
      int64_t far = 0;
      for (uint16_t s : xs) far = std::max(far, dist(b_.pos(s), S));
      const uint64_t ready = X.ready_of(xr, chunk);
      uint64_t T = std::max<uint64_t>(Ts[side], ready + static_cast<uint64_t>(lat_read + far));
      uint64_t landed = 0;
      for (uint64_t n = 0;; ++T, ++n) {
        if (n > kMaxSearch) throw std::logic_error("lane scheduler: no cycle found for " + spec.name);
        const auto x = b_.begin();
        StreamValue raw, out;
        bool ok = b_.fetch(xs, X.addr_of(xr, chunk), S, T, to_s, ready, &raw) && sop(op, raw, T, w, &out) &&
                  b_.store(out, ys, Y.addr_of(r, 0), Y.write_not_before, &landed);
        if (ok) break;
        b_.rollback(x);
      }
      if (!commit) {
        b_.rollback(probe);
        return landed;
      }
      Ts[side] = T;
      const uint64_t first = T - static_cast<uint64_t>(lat_read + far);
      finish_row(r, landed, first, T - static_cast<uint64_t>(lat_read), xs.size(), 0);
      return landed;
    };
    for (int64_t r = 0; r < Y.rows; ++r) {
      size_t best = 0;
      if (sxm_rows_.size() > 1) {
        uint64_t best_land = std::numeric_limits<uint64_t>::max();
        for (size_t side = 0; side < sxm_rows_.size(); ++side) {
          const uint64_t l = place_row(r, side, false);
          if (l < best_land) {
            best_land = l;
            best = side;
          }
        }
      }
      place_row(r, best, true);
    }
    return st;
  }

  // ---- reductions ----
  const bool is_max = spec.mode == LaneMode::Max;
  const DType cd = is_max ? X.dtype : DType::F32;  // compute type (a max of f16 values is exact in f16)
  const uint32_t wcd = static_cast<uint32_t>(dtype_bytes(cd));
  const uint32_t wx = static_cast<uint32_t>(dtype_bytes(X.dtype));
  const int64_t K = X.inner;
  const uint32_t nch = X.vpr;
  const bool masked = K % L != 0;
  if (masked && (!spec.mask || spec.mask->dtype != X.dtype || spec.mask->inner < L))
    throw std::logic_error(spec.name + ": a mask row of x's type is needed for K = " + std::to_string(K));
  if (is_max && (spec.square || !spec.post.empty()))
    throw std::logic_error(spec.name + ": square and post ops are for sums");
  auto instr = [](Opcode op, DType t) {
    Instr in = make_instr(op);
    in.set(Field::DType, static_cast<uint32_t>(t));
    return in;
  };
  const Opcode comb_op = is_max ? Opcode::Max : Opcode::Add;
  const Instr comb = instr(comb_op, cd), movx = instr(Opcode::Mov, X.dtype), sel = instr(Opcode::Select, X.dtype);
  Instr cvt_up = instr(Opcode::Cvt, X.dtype);
  cvt_up.set(Field::DType2, static_cast<uint32_t>(DType::F32));
  const bool widen = X.dtype != cd;
  const Instr sq = instr(Opcode::Mul, DType::F32);
  const int64_t lat_comb = lat(comb), lat_mov = lat(movx);
  if (lat_mov < 1) throw std::logic_error("lane scheduler: a VXM mov of latency 0 cannot re-time a read");
  // Tail: post ops in f32, then a cvt to Y's type; a mov if there is nothing else to emit toward Y.
  std::vector<Instr> tail;
  for (const LanePost& p : spec.post) {
    Instr in = instr(p.op, DType::F32);
    if (p.op == Opcode::MulImm || p.op == Opcode::AddImm) {
      uint32_t bits;
      std::memcpy(&bits, &p.imm, sizeof bits);
      in.set(Field::FImm, bits);
    }
    tail.push_back(in);
  }
  if (Y.dtype != cd) {
    Instr c = instr(Opcode::Cvt, cd);
    c.set(Field::DType2, static_cast<uint32_t>(Y.dtype));
    tail.push_back(c);
  }
  // Lane all-reduce levels of radix R (R copies per SXM visit, a VXM combine tree of log2 R ops):
  // level j turns windows of w = R^j lanes into windows of R w (copies moved by 0, w, ..., (R-1) w);
  // the last level distributes the c = ceil(Keff / w) lanes Keff - 1 - i w, whose windows tile
  // [0, Keff) (c padded to a power of two: zero vectors for sums, a repeated lane for max).
  const int64_t Keff = nch > 1 ? static_cast<int64_t>(L) : K;
  // The radix R is chosen per step: every power of two 2..8 whose copies take at most half of a
  // direction's streams is tried (the step placed, its end noted, then rolled back with the SXM
  // maps it added), and the step is placed with the radix whose last row lands first (ties: the
  // larger R, fewer round trips). Fewer copies per level use fewer stream slots, more levels
  // take longer per row; which wins depends on K, the type and what else runs (BERT-base: f16
  // max over 128 lanes R = 4, f32 sum R = 2).
  std::vector<uint32_t> radices;
  for (uint32_t R = 2; R <= 8 && R * wcd <= cfg.streams_per_direction / 2; R *= 2) radices.push_back(R);
  if (radices.empty()) radices.push_back(2);
  const std::vector<Instr> tail0 = tail;
  auto run = [&](uint32_t R) {
    tail = tail0;
    std::vector<std::vector<Instr>> levels;
    int64_t w = 1;
    while (w * R < Keff) {
      std::vector<Instr> lv;
      for (uint32_t i = 0; i < R; ++i) {
        Instr in = instr(is_max ? Opcode::Rotate : Opcode::Shift, cd);
        in.set(Field::SImm, static_cast<uint32_t>(i * w));
        lv.push_back(in);
      }
      levels.push_back(lv);
      w *= R;
    }
    {
      const int64_t c = (Keff + w - 1) / w;
      int64_t cp = 1;
      while (cp < c) cp *= 2;
      std::vector<Instr> lv;
      for (int64_t i = 0; i < cp; ++i) {
        Instr in = instr(Opcode::Distribute, cd);
        std::vector<uint16_t> map(L, static_cast<uint16_t>(Keff - 1 - std::min(i, c - 1) * w));
        if (i >= c && !is_max) map.assign(L, 0xFFFF);  // zeros
        in.set(Field::Imm, b_.map_id(map));
        lv.push_back(in);
      }
      levels.push_back(lv);
    }
    if (levels.back().size() == 1 && tail.empty()) tail.push_back(instr(Opcode::Mov, cd));
    // Per SXM and row block of X: absolute cycle of the row template's relative 0, nondecreasing over
    // the block's rows through that SXM (blocks do not wait for each other: an elementwise producer
    // writes them interleaved, elementwise_kernel.h).
    const size_t nparts = X.parts.size();
    std::vector<uint64_t> Bs(sxm_rows_.size() * nparts, 0);
    // Places row r through SXM `side`; returns the cycle its result lands. commit false: a probe,
    // undone (the row goes through the SXM whose probe lands first; ties: the nearest SXM).
    auto place_row = [&](int64_t r, size_t side, bool commit) -> uint64_t {
      const auto probe = b_.begin();
      const size_t bi = side * nparts + static_cast<size_t>(r / X.part_rows);
      const uint64_t B_before = Bs[bi];
      sxm = sxm_rows_[side];
      S = b_.pos(sxm);
      to_s = S < V ? Dir::West : Dir::East;
      from_s = opposite(to_s);
      const int64_t d = dist(S, V);
      uint64_t& B = Bs[bi];
      const auto& xs = X.part_of_row(r).slices;
      const auto& ys = Y.part_of_row(r).slices;
      const Dir xdir = b_.pos(xs[0]) < V ? Dir::East : Dir::West;
      const Dir ydir = b_.pos(ys[0]) > V ? Dir::East : Dir::West;
      // Prep of chunk c: movs (re-timing), sel (last chunk when masked), cvt up, square.
      std::vector<int64_t> movs(nch, 0);
      if (nch == 1 && !masked && !widen && !spec.square) movs[0] = 1;  // v0 must be a VXM result
      int64_t mask_movs = 0;
      auto prep_len = [&](uint32_t c) {
        return movs[c] * lat_mov + (masked && c + 1 == nch ? lat(sel) : 0) + (widen ? lat(cvt_up) : 0) +
               (spec.square ? lat(sq) : 0);
      };
      auto join = [&](uint32_t c) { return c == 0 ? int64_t{0} : static_cast<int64_t>(c - 1) * lat_comb; };
      auto arrive = [&](uint32_t c) { return join(c) - prep_len(c); };  // raw read at the VXM
      auto mask_arrive = [&]() { return arrive(nch - 1) + movs[nch - 1] * lat_mov - mask_movs * lat_mov; };
      // Re-time reads of one row that would hit one SRAM port on one cycle (chunks share slices).
      struct Rd { const std::vector<uint16_t>* sl; int64_t A; };
      auto issue_set = [&](const Rd& rd) {
        std::vector<std::pair<uint16_t, int64_t>> v;
        for (uint16_t s : *rd.sl) v.push_back({s, rd.A - lat_read - dist(b_.pos(s), V)});
        return v;
      };
      auto clash = [&](const Rd& a, const Rd& b) {
        for (const auto& p : issue_set(a))
          for (const auto& q : issue_set(b))
            if (p == q) return true;
        return false;
      };
      for (;;) {
        bool changed = false;
        std::vector<Rd> fixed;
        for (uint32_t c = 0; c < nch && !changed; ++c) {
          const Rd me{&xs, arrive(c)};
          for (const Rd& o : fixed)
            if (clash(me, o)) {
              ++movs[c];
              changed = true;
              break;
            }
          fixed.push_back(me);
        }
        if (!changed && masked) {
          const Rd me{&spec.mask->parts[0].slices, mask_arrive()};
          for (const Rd& o : fixed)
            if (clash(me, o)) {
              ++mask_movs;
              changed = true;
              break;
            }
        }
        if (!changed) break;
      }
      // Relative times: v0 (heading to the SXM), then each level.
      const int64_t v0 = nch == 1 ? 0 : join(nch - 1) + lat_comb;
      int64_t lower = 0;  // lower bound on B from the reads' ready cycles
      int64_t min_issue = 0;
      for (uint32_t c = 0; c < nch; ++c)
        for (const auto& p : issue_set({&xs, arrive(c)})) {
          lower = std::max(lower, static_cast<int64_t>(X.ready_of(r, c)) - p.second);
          min_issue = std::min(min_issue, p.second);
        }
      if (masked)
        for (const auto& p : issue_set({&spec.mask->parts[0].slices, mask_arrive()}))
          min_issue = std::min(min_issue, p.second);
      lower = std::max(lower, -min_issue);
      B = std::max<uint64_t>(B, static_cast<uint64_t>(lower));
      uint64_t landed = 0, nvxm = 0;
      for (uint64_t n = 0;; ++B, ++n) {
        if (n > kMaxSearch) throw std::logic_error("lane scheduler: no cycle found for " + spec.name);
        const auto txn = b_.begin();
        nvxm = 0;
        auto at = [&](int64_t rel) { return static_cast<uint64_t>(static_cast<int64_t>(B) + rel); };
        // One VXM op at T on sources already at the VXM; result heads `dir` (any: either way).
        auto vop = [&](Instr in, std::vector<const StreamValue*> srcs, uint64_t T, uint32_t width, int dir,
                       StreamValue* out) {
          if (in.op == Opcode::Select && srcs.size() == 3) {
            in.set(Field::SrcC, srcs[0]->ref().encode());
            in.set(Field::SrcA, srcs[1]->ref().encode());
            in.set(Field::SrcB, srcs[2]->ref().encode());
          } else {
            in.set(Field::SrcA, srcs[0]->ref().encode());
            if (srcs.size() > 1) in.set(Field::SrcB, srcs[1]->ref().encode());
          }
          const uint64_t t_out = T + static_cast<uint64_t>(lat(in));
          const Dir d1 = dir >= 0 ? static_cast<Dir>(dir) : to_s;
          if (!b_.produce(d1, width, V, t_out, out) && (dir >= 0 || !b_.produce(from_s, width, V, t_out, out)))
            return false;
          in.set(Field::Dst, out->ref().encode());
          if (!b_.issue_any(vxm_slice_, T, in)) return false;
          ++nvxm;
          return true;
        };
        const int any = -1, toward = static_cast<int>(to_s);
        bool ok = true;
        std::vector<StreamValue> prepped(nch);
        for (uint32_t c = 0; c < nch && ok; ++c) {
          StreamValue cur;
          uint64_t t = at(arrive(c));
          ok = b_.fetch(xs, X.addr_of(r, c), V, t, xdir, X.ready_of(r, c), &cur);
          // The value that feeds the SXM (chunk 0 of a one-chunk row) heads toward it.
          const bool feeds = nch == 1;
          int nops = static_cast<int>(movs[c]) + (masked && c + 1 == nch) + widen + spec.square, k = 0;
          auto next_dir = [&]() { return ++k == nops && feeds ? toward : any; };
          for (int64_t m = 0; m < movs[c] && ok; ++m, t += static_cast<uint64_t>(lat_mov)) {
            StreamValue o;
            ok = vop(movx, {&cur}, t, wx, next_dir(), &o);
            cur = o;
          }
          if (ok && masked && c + 1 == nch) {
            StreamValue mk;
            uint64_t tm = at(mask_arrive());
            const PlacedTensor& M = *spec.mask;
            ok = b_.fetch(M.parts[0].slices, M.addr_of(0, 0), V, tm, b_.pos(M.parts[0].slices[0]) < V ? Dir::East : Dir::West,
                          0, &mk);
            for (int64_t m = 0; m < mask_movs && ok; ++m, tm += static_cast<uint64_t>(lat_mov)) {
              StreamValue o;
              ok = vop(movx, {&mk}, tm, wx, any, &o);
              mk = o;
            }
            StreamValue o;
            if (ok) ok = is_max ? vop(sel, {&mk, &mk, &cur}, t, wx, next_dir(), &o) : vop(sel, {&mk, &cur, &mk}, t, wx, next_dir(), &o);
            cur = o;
            t += static_cast<uint64_t>(lat(sel));
          }
          if (ok && widen) {
            StreamValue o;
            ok = vop(cvt_up, {&cur}, t, 4, next_dir(), &o);
            cur = o;
            t += static_cast<uint64_t>(lat(cvt_up));
          }
          if (ok && spec.square) {
            StreamValue o;
            ok = vop(sq, {&cur, &cur}, t, 4, next_dir(), &o);
            cur = o;
          }
          prepped[c] = cur;
        }
        StreamValue v = prepped[0];
        for (uint32_t c = 1; c < nch && ok; ++c) {
          StreamValue o;
          ok = vop(comb, {&v, &prepped[c]}, at(join(c)), wcd, c + 1 == nch ? toward : any, &o);
          v = o;
        }
        // Levels: SXM copies back to the VXM, combined there by a tree.
        int64_t P = v0;
        for (size_t j = 0; j < levels.size() && ok; ++j) {
          const uint64_t ts = at(P + d);
          std::vector<StreamValue> cp(levels[j].size());
          for (size_t i = 0; i < cp.size() && ok; ++i) ok = sop(levels[j][i], v, ts, wcd, &cp[i]);
          int64_t T = P + 2 * d + lat(levels[j][0]);
          const bool last = j + 1 == levels.size();
          while (ok && cp.size() > 1) {
            const bool root = cp.size() == 2;
            std::vector<StreamValue> nx(cp.size() / 2);
            for (size_t i = 0; i < nx.size() && ok; ++i)
              ok = vop(comb, {&cp[2 * i], &cp[2 * i + 1]}, at(T), wcd,
                       !root ? any : !last ? toward : tail.empty() ? static_cast<int>(ydir) : any, &nx[i]);
            cp = std::move(nx);
            T += lat_comb;
          }
          if (ok) v = cp[0];
          P = T;
        }
        for (size_t k = 0; k < tail.size() && ok; ++k) {
          StreamValue o;
          const uint32_t w = tail[k].op == Opcode::Cvt ? static_cast<uint32_t>(dtype_bytes(Y.dtype)) : wcd;
          ok = vop(tail[k], {&v}, at(P), w, k + 1 == tail.size() ? static_cast<int>(ydir) : any, &o);
          v = o;
          P += lat(tail[k]);
        }
        if (ok) ok = b_.store(v, ys, Y.addr_of(r, 0), Y.write_not_before, &landed);
        if (ok) break;
        b_.rollback(txn);
      }
      uint64_t first = UINT64_MAX, last = 0;
      for (uint32_t c = 0; c < nch; ++c)
        for (const auto& p : issue_set({&xs, arrive(c)})) {
          first = std::min(first, static_cast<uint64_t>(static_cast<int64_t>(B) + p.second));
          last = std::max(last, static_cast<uint64_t>(static_cast<int64_t>(B) + p.second));
        }
      if (!commit) {
        b_.rollback(probe);
        B = B_before;
        return landed;
      }
      finish_row(r, landed, first, last, static_cast<uint64_t>(nch) * xs.size(), nvxm);
      return landed;
    };
    // Rows in X's row blocks interleaved (row k of every block before row k + 1 of any), so the rows
    // read and written on one cycle use different SRAM ports.
    std::vector<int64_t> order;
    order.reserve(static_cast<size_t>(X.rows));
    for (int64_t k = 0; k < X.part_rows; ++k)
      for (const TensorPart& p : X.parts)
        if (k < p.rows) order.push_back(p.row0 + k);
    for (int64_t r : order) {
      size_t best = 0;
      if (sxm_rows_.size() > 1) {
        uint64_t best_land = UINT64_MAX;
        for (size_t side = 0; side < sxm_rows_.size(); ++side) {
          const uint64_t land = place_row(r, side, false);
          if (land < best_land) {
            best_land = land;
            best = side;
          }
        }
      }
      place_row(r, best, true);
    }
  };
  if (radices.size() > 1) {
    const auto trial = b_.begin();
    const size_t maps0 = b_.maps().size();
    const std::vector<uint64_t> y_ready = Y.ready;
    const uint64_t x_last = X.last_read;
    const MatmulStats st0 = st;
    uint32_t best = radices.back();
    uint64_t best_end = UINT64_MAX;
    for (size_t i = radices.size(); i-- > 0;) {
      run(radices[i]);
      if (st.last_end < best_end) {
        best_end = st.last_end;
        best = radices[i];
      }
      b_.rollback(trial);
      b_.drop_maps_from(maps0);
      Y.ready = y_ready;
      X.last_read = x_last;
      st = st0;
    }
    radices = {best};
  }
  run(radices[0]);
  return st;
}

}  // namespace lpu::compiler
