// LaneScheduler::Run, reduce(): row reductions (sums and maxes over a row's lanes) as SXM lane
// all-reduces combined on the VXM, one row or one row pair at a time (lane_run.h lists the parts).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

#include "compiler/backend/lane_run.h"
#include "compiler/backend/vxm_instr.h"

namespace lpu::compiler {

using namespace lane_detail;

MatmulStats LaneScheduler::Run::reduce() {
  is_max = spec.mode == LaneMode::Max;
  cd = is_max ? X.dtype : DType::F32;
  wcd = static_cast<uint32_t>(dtype_bytes(cd));
  wx = static_cast<uint32_t>(dtype_bytes(X.dtype));
  K = X.inner;
  nch = X.vpr;
  pad_lanes = K % L != 0;
  C = spec.center;
  // The mask acts on the centred f32 value when there is a center (x's own type otherwise).
  mdt = C ? DType::F32 : X.dtype;
  if (pad_lanes && (!spec.mask || spec.mask->dtype != mdt || spec.mask->inner < L))
    throw std::logic_error(
        fmt::format("{}: a mask row of type {} is needed for K = {}", spec.name, dtype_name(mdt), K));
  if (is_max && (spec.square || !spec.post.empty() || C))
    throw std::logic_error(spec.name + ": square, center and post ops are for sums");
  if (C && (C->dtype != DType::F32 || C->rows != X.rows || C->inner != 1))
    throw std::logic_error(fmt::format("{}: a center must be [{}, 1] f32", spec.name, X.rows));
  const Opcode comb_op = is_max ? Opcode::Max : Opcode::Add;
  comb = make_instr(comb_op, cd);
  movx = make_instr(Opcode::Mov, X.dtype);
  sel = make_instr(Opcode::Select, mdt);
  movm = make_instr(Opcode::Mov, mdt);
  movc = make_instr(Opcode::Mov, DType::F32);
  sub = make_instr(Opcode::Sub, DType::F32);
  wm = static_cast<uint32_t>(dtype_bytes(mdt));
  cvt_up = cvt_instr(X.dtype, DType::F32);
  widen = X.dtype != cd;
  sq = make_instr(Opcode::Mul, DType::F32);
  lat_comb = lat(comb);
  lat_mov = lat(movx);
  if (lat_mov < 1) throw std::logic_error("lane scheduler: a VXM mov of latency 0 cannot re-time a read");
  // Tail: post ops in f32, then a cvt to Y's type; a mov if there is nothing else to emit toward Y.
  for (const LanePost& p : spec.post) {
    Instr in = make_instr(p.op, DType::F32);
    if (p.op == Opcode::MulImm || p.op == Opcode::AddImm) {
      uint32_t bits;
      std::memcpy(&bits, &p.imm, sizeof bits);
      in.set(Field::FImm, bits);
    }
    tail0.push_back(in);
  }
  if (Y.dtype != cd) {
    Instr c = cvt_instr(cd, Y.dtype);
    tail0.push_back(c);
  }
  // Lane all-reduce levels of radix R (R copies per SXM visit, a VXM combine tree of log2 R ops):
  // level j turns windows of w = R^j lanes into windows of R w (copies moved by 0, w, ..., (R-1) w);
  // the last level distributes the c = ceil(Keff / w) lanes Keff - 1 - i w, whose windows tile
  // [0, Keff) (c padded to a power of two: zero vectors for sums, a repeated lane for max).
  // Segments (LaneSpec::segment): each row is K / S segments of S lanes reduced separately, so the
  // levels run on windows of S lanes (every final window inside its segment) and the last level's
  // maps send each segment's window lanes to that segment's lanes.
  seg = spec.segment;
  if (seg > 0 && (!is_max || nch != 1 || K % seg != 0 || seg >= K))
    throw std::logic_error(
        fmt::format("{}: segments of {} lanes need a max over one vector of several segments (K = {})",
                    spec.name, seg, K));
  Keff = seg > 0 ? seg : nch > 1 ? static_cast<int64_t>(L) : K;
  const std::vector<Shape> shapes = reduction_shapes();
  // Compile time, not the schedule: a row's placement tries B, B + 1, ... until everything fits
  // (tens of tries a row in a busy Softmax), and each row is placed once per SXM as a probe, then
  // again for real, for every candidate shape, then once more with the shape chosen. A probe ends
  // at the first B that fits; the state it started from is restored, so the real placement through
  // that SXM starts its search there (`hint`: every earlier B failed from the same state). The
  // chosen shape's run repeats its trial run exactly (same starting state), so it replays the
  // trial's (SXM, B) of every placement instead of searching. The schedule is the same as with
  // every search done in full.
  const Shape shape = shapes.size() > 1 ? best_shape(shapes) : shapes[0];
  if (shapes.size() > 1) replay = &best_trace;
  trace.clear();
  run_shape(shape);
  return st;
}

// The all-reduce shapes reduce() tries (see there), in order: larger R first, then smaller F, and
// for a pairable max the paired shapes after the single-row ones.
std::vector<LaneScheduler::Run::Shape> LaneScheduler::Run::reduction_shapes() const {
  // The shape (R, F) is chosen per step: radix R, every power of two 2..8 whose copies take at most
  // half of a direction's streams, and final fan-out F: the levels stop once c = ceil(Keff / w) <= F,
  // F = R (the fewest copies) or 2R, 4R, ... while the last level's padded c copies take at most
  // half of a direction's streams (one round trip fewer per step of F, a few more copies); R and F
  // at most the SXM's queues (a level's copies issue on one cycle). Every shape that
  // gives a different level count is tried (the step placed, its end noted, then rolled back with
  // the SXM maps it added), and the step is placed with the shape whose last row lands first (ties:
  // the first tried: larger R, then smaller F). Fewer copies per level use fewer stream slots, more
  // levels take longer per row; which wins depends on K, the type and what else runs (BERT-base,
  // `bench_prefill --steps`: the f16 max over 128 lanes paired, R = 4, F = 4; f32 sums over 768
  // lanes R = 4, F = 4).
  auto level_count = [&](uint32_t R, int64_t F) {
    int n = 0;
    for (int64_t w = 1; (Keff + w - 1) / w > F; w *= R) ++n;
    return n;
  };
  int64_t sxm_queues = std::numeric_limits<int64_t>::max();  // one SXM instruction per copy, one cycle
  for (int i : sxm_rows_)
    sxm_queues = std::min<int64_t>(sxm_queues, cfg.slices[static_cast<size_t>(i)].queues);
  // Paired rows: a max over one vector of K <= lanes / 2 lanes whose last-level windows tile [0, K)
  // exactly (K % w == 0, checked per shape) reduces rows a and b in ONE vector: b goes from SRAM
  // to the SXM, is `shift`ed by K lanes (zero fill) and meets a at the VXM, where a `sel` with the
  // mask row (0 on lanes < K, -inf above) keeps a's lanes [0, K) and b's in [K, 2K); the levels
  // then run once for both rows (every final window stays inside its row's K lanes) and the last
  // level distributes each row's window lanes into that row's own result. Per row: about half
  // the SXM copies, stream values and VXM ops of a single row (exact: the same max).
  const bool pairable = seg == 0 && is_max && nch == 1 && 2 * K <= static_cast<int64_t>(L) && spec.mask &&
                        !spec.square && spec.post.empty() && X.rows >= 2;
  std::vector<Shape> shapes;
  for (int pass = 0; pass < (pairable ? 2 : 1); ++pass)
    for (uint32_t R = 8; R >= 2; R /= 2) {
      if (R * wcd > cfg.streams_per_direction / 2 || R > sxm_queues) continue;
      int prev = -1;
      // Paired: both rows' final copies issue on one cycle (2 F copies).
      const int64_t fmul = pass == 1 ? 2 : 1;
      for (int64_t F = R; fmul * F * wcd <= cfg.streams_per_direction / 2 && fmul * F <= sxm_queues; F *= 2) {
        const int n = level_count(R, F);
        int64_t w = 1;
        for (int i = 0; i < n; ++i) w *= R;
        if (n != prev && (pass == 0 || K % w == 0) && (seg == 0 || seg % w == 0))
          shapes.push_back({R, F, pass == 1});
        prev = n;
        if (n == 0) break;
      }
    }
  if (shapes.empty() && seg > 0)
    throw std::logic_error(fmt::format("{}: no reduction shape tiles segments of {} lanes", spec.name, seg));
  if (shapes.empty()) shapes.push_back({2, 2, false});
  return shapes;
}

// Runs every shape as a trial (placed, then rolled back with the SXM maps it added) and returns the
// one whose last row lands first (ties: the first), its placements in best_trace.
LaneScheduler::Run::Shape LaneScheduler::Run::best_shape(const std::vector<Shape>& shapes) {
  const auto trial = b_.begin();
  const size_t maps0 = b_.maps().size();
  const std::vector<uint64_t> y_ready = Y.ready;
  const uint64_t x_last = X.last_read, c_last = C ? C->last_read : 0;
  const MatmulStats st0 = st;
  Shape best = shapes.front();
  uint64_t best_end = UINT64_MAX;
  for (const auto& shape : shapes) {
    trace.clear();
    run_shape(shape);
    if (st.last_end < best_end) {
      best_end = st.last_end;
      best = shape;
      best_trace = trace;
    }
    b_.rollback(trial);
    b_.drop_maps_from(maps0);
    Y.ready = y_ready;
    X.last_read = x_last;
    if (C) C->last_read = c_last;
    st = st0;
  }
  return best;
}

void LaneScheduler::Run::run_shape(Shape shape) {
  const uint32_t R = shape.R;
  const int64_t F = shape.F;
  tail = tail0;
  levels.clear();
  int64_t w = 1;
  while ((Keff + w - 1) / w > F) {
    std::vector<Instr> lv;
    for (uint32_t i = 0; i < R; ++i) {
      Instr in = make_instr(is_max ? Opcode::Rotate : Opcode::Shift, cd);
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
      Instr in = make_instr(Opcode::Distribute, cd);
      std::vector<uint16_t> map(L, static_cast<uint16_t>(Keff - 1 - std::min(i, c - 1) * w));
      if (seg > 0)  // segment j's lanes (pad lanes: the last segment's) take that segment's window lane
        for (uint32_t l = 0; l < L; ++l)
          map[l] = static_cast<uint16_t>(std::min<int64_t>(l / seg, K / seg - 1) * seg + Keff - 1 -
                                         std::min(i, c - 1) * w);
      if (i >= c && !is_max) map.assign(L, 0xFFFF);  // zeros
      in.set(Field::Imm, b_.map_id(map));
      lv.push_back(in);
    }
    levels.push_back(lv);
  }
  if (levels.back().size() == 1 && tail.empty()) tail.push_back(make_instr(Opcode::Mov, cd));
  // Paired rows: the last level distributes row a's window lanes (K - 1 - i w) and row b's
  // (2K - 1 - i w), each row's copies combined into its own result.
  final_b.clear();
  if (shape.pair) {
    const int64_t c = (K + w - 1) / w;
    for (size_t i = 0; i < levels.back().size(); ++i) {
      Instr in = make_instr(Opcode::Distribute, cd);
      const int64_t lane = 2 * K - 1 - std::min<int64_t>(static_cast<int64_t>(i), c - 1) * w;
      in.set(Field::Imm, b_.map_id(std::vector<uint16_t>(L, static_cast<uint16_t>(lane))));
      final_b.push_back(in);
    }
  }
  // The pad lanes need the mask unless no final window reaches them: a max over one vector whose
  // last-level windows (w lanes each, ending at lanes K - 1 - i w) tile [0, K) exactly never
  // reads a lane past K, even cyclically (no `sel`, no read of the one-row mask constant, whose
  // single SRAM port would otherwise pace the step at one row per cycle).
  masked = pad_lanes && !(is_max && nch == 1 && Keff % w == 0);
  // Per SXM and row block of X: absolute cycle of the row template's relative 0, nondecreasing over
  // the block's rows through that SXM (blocks do not wait for each other: an elementwise producer
  // writes them interleaved, elementwise_kernel.h).
  nparts = X.parts.size();
  Bs.assign(sxm_rows_.size() * nparts, 0);
  Bp.assign(sxm_rows_.size() * nparts, 0);
  // Rows in X's row blocks interleaved (row k of every block before row k + 1 of any), so the rows
  // read and written on one cycle use different SRAM ports.
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(X.rows));
  for (int64_t k = 0; k < X.part_rows; ++k)
    for (const TensorPart& p : X.parts)
      if (k < p.rows) order.push_back(p.row0 + k);
  // Paired: consecutive rows of that order (different row blocks when X has several).
  for (size_t k = 0; k < order.size(); k += shape.pair ? 2 : 1) {
    const int64_t r = order[k];
    const bool two = shape.pair && k + 1 < order.size();
    auto place = [&](size_t side, bool commit) {
      return two ? place_pair(r, order[k + 1], side, commit) : place_row(r, side, commit);
    };
    size_t best = 0;
    if (replay) {
      best = (*replay)[trace.size()].side;
      hint = (*replay)[trace.size()].B;
    } else if (sxm_rows_.size() > 1) {
      uint64_t best_land = UINT64_MAX, best_B = 0;
      for (size_t side = 0; side < sxm_rows_.size(); ++side) {
        const uint64_t land = place(side, false);
        if (land < best_land) {
          best_land = land;
          best = side;
          best_B = found;
        }
      }
      hint = best_B;
    }
    place(best, true);
    hint = 0;
    trace.push_back({best, found});
  }
}

// The row template's read timing: movs (re-timing), sel (last chunk when masked; after the sub with
// a center), cvt up, sub of the center, square per chunk; then, until no two reads of the row hit
// one SRAM port on one cycle (chunks share slices), each read in turn is checked against those fixed
// before it, and a clash re-times it by one more `mov` and the check starts over.
LaneScheduler::Run::RowTiming LaneScheduler::Run::row_timing(const std::vector<uint16_t>& xs,
                                                             const std::vector<uint16_t>& cs) const {
  RowTiming rt(this);
  rt.movs.assign(nch, 0);
  if (nch == 1 && !masked && !widen && !spec.square && !C) rt.movs[0] = 1;  // v0 must be a VXM result
  rt.cmovs.assign(nch, 0);
  rt.lat_widen = widen ? lat(cvt_up) : 0;
  rt.lat_sub = C ? lat(sub) : 0;
  for (;;) {
    std::vector<Issues> fixed;
    auto clashes = [&](const Issues& me, int64_t* movs_of_me) {
      for (const Issues& o : fixed)
        if (clash(me, o)) {
          ++*movs_of_me;
          return true;
        }
      fixed.push_back(me);
      return false;
    };
    bool changed = false;
    for (uint32_t c = 0; c < nch && !changed; ++c)
      changed = clashes(issue_cycles(xs, rt.arrive(c), V), &rt.movs[c]);
    if (!changed && masked)
      changed = clashes(issue_cycles(spec.mask->parts[0].slices, rt.mask_arrive(), V), &rt.mask_movs);
    for (uint32_t c = 0; C && c < nch && !changed; ++c)
      if (!rt.center_shared(c)) changed = clashes(issue_cycles(cs, rt.center_arrive(c), V), &rt.cmovs[c]);
    if (!changed) break;
  }
  return rt;
}

int64_t LaneScheduler::Run::RowTiming::prep_len(uint32_t c) const {
  return movs[c] * k->lat_mov + (k->masked && c + 1 == k->nch ? k->lat(k->sel) : 0) + lat_widen + lat_sub +
         (k->spec.square ? k->lat(k->sq) : 0);
}
int64_t LaneScheduler::Run::RowTiming::join(uint32_t c) const {
  return c == 0 ? int64_t{0} : static_cast<int64_t>(c - 1) * k->lat_comb;
}
int64_t LaneScheduler::Run::RowTiming::arrive(uint32_t c) const { return join(c) - prep_len(c); }
int64_t LaneScheduler::Run::RowTiming::sub_at(uint32_t c) const {
  return arrive(c) + movs[c] * k->lat_mov + lat_widen;
}
int64_t LaneScheduler::Run::RowTiming::mask_arrive() const {
  const uint32_t l = k->nch - 1;
  return (k->C ? sub_at(l) + lat_sub : arrive(l) + movs[l] * k->lat_mov) - mask_movs * k->lat_mov;
}
int64_t LaneScheduler::Run::RowTiming::center_arrive(uint32_t c) const {
  return sub_at(c) - cmovs[c] * k->lat_mov;
}
bool LaneScheduler::Run::RowTiming::center_shared(uint32_t c) const {
  for (uint32_t o = 0; o < c; ++o)
    if (center_arrive(o) == center_arrive(c) && sub_at(o) == sub_at(c)) return true;
  return false;
}

LaneScheduler::Run::Issues LaneScheduler::Run::issue_cycles(const std::vector<uint16_t>& sl, int64_t at,
                                                            uint32_t pos) const {
  Issues v;
  for (uint16_t x : sl) v.push_back({x, at - lat_read - dist(b_.pos(x), pos)});
  return v;
}

bool LaneScheduler::Run::clash(const Issues& a, const Issues& b) {
  for (const auto& p : a)
    for (const auto& q : b)
      if (p == q) return true;
  return false;
}

// Tries a row template with its relative 0 at B, B + 1, ... until `place(at, vop)` fits, each try in
// a transaction of its own (rolled back when it fails); B ends at the cycle that fit. In `place`,
// at(rel) is the absolute cycle of relative cycle rel and vop(...) is vxm_op counting into *nvxm
// (0 at each try's start).
template <class Place>
void LaneScheduler::Run::search(uint64_t& B, uint64_t* nvxm, Place place) {
  for (uint64_t n = 0;; ++B, ++n) {
    if (n > kMaxSearch) throw std::logic_error("lane scheduler: no cycle found for " + spec.name);
    const auto txn = b_.begin();
    *nvxm = 0;
    auto at = [&](int64_t rel) { return static_cast<uint64_t>(static_cast<int64_t>(B) + rel); };
    auto vop = [&](Instr in, std::initializer_list<const StreamValue*> srcs, uint64_t T, uint32_t width,
                   int dir,
                   StreamValue* out) { return vxm_op(std::move(in), srcs, T, width, dir, out, nvxm); };
    if (place(at, vop)) return;
    b_.rollback(txn);
  }
}

template <class At, class Vop>
bool LaneScheduler::Run::combine_tree(std::vector<StreamValue>& cp, int64_t* T, int root_dir, const At& at,
                                      const Vop& vop) {
  bool ok = true;
  while (ok && cp.size() > 1) {
    const bool root = cp.size() == 2;
    std::vector<StreamValue> nx(cp.size() / 2);
    for (size_t i = 0; i < nx.size() && ok; ++i)
      ok = vop(comb, {&cp[2 * i], &cp[2 * i + 1]}, at(*T), wcd, root ? root_dir : -1, &nx[i]);
    cp = std::move(nx);
    *T += lat_comb;
  }
  return ok;
}

template <class At, class Vop>
bool LaneScheduler::Run::run_tail(StreamValue& x, int64_t P, Dir ydir, bool extra_mov, const At& at,
                                  const Vop& vop) {
  const size_t first = extra_mov ? 1 : 0, n = tail.size() + first;
  bool ok = true;
  for (size_t k = 0; k < n && ok; ++k) {
    const Instr in = k < first ? make_instr(Opcode::Mov, cd) : tail[k - first];
    StreamValue o;
    const uint32_t w = in.op == Opcode::Cvt ? static_cast<uint32_t>(dtype_bytes(Y.dtype)) : wcd;
    ok = vop(in, {&x}, at(P), w, k + 1 == n ? static_cast<int>(ydir) : -1, &o);
    x = o;
    P += lat(in);
  }
  return ok;
}

template <class Vop>
bool LaneScheduler::Run::retime(const Instr& mov, uint32_t width, int64_t n, StreamValue& cur, uint64_t& t,
                                const Vop& vop) {
  bool ok = true;
  for (int64_t m = 0; m < n && ok; ++m, t += static_cast<uint64_t>(lat_mov)) {
    StreamValue o;
    ok = vop(mov, {&cur}, t, width, -1, &o);
    cur = o;
  }
  return ok;
}

// Places row r through SXM `side`; returns the cycle its result lands. commit false: a probe,
// undone (the row goes through the SXM whose probe lands first; ties: the nearest SXM).
uint64_t LaneScheduler::Run::place_row(int64_t r, size_t side, bool commit) {
  const auto probe = b_.begin();
  const size_t bi = side * nparts + static_cast<size_t>(r / X.part_rows);
  const uint64_t B_before = Bs[bi];
  use_sxm(side);
  const int64_t d = dist(S, V);
  uint64_t& B = Bs[bi];
  const auto& xs = X.part_of_row(r).slices;
  const auto& ys = Y.part_of_row(r).slices;
  const Dir xdir = b_.pos(xs[0]) < V ? Dir::East : Dir::West;
  const Dir ydir = b_.pos(ys[0]) > V ? Dir::East : Dir::West;
  static const std::vector<uint16_t> no_slices;
  const auto& cs = C ? C->part_of_row(r).slices : no_slices;
  const RowTiming rt = row_timing(xs, cs);
  // Relative times: v0 (heading to the SXM), then each level.
  const int64_t v0 = nch == 1 ? 0 : rt.join(nch - 1) + lat_comb;
  int64_t lower = 0;  // lower bound on B from the reads' ready cycles
  int64_t min_issue = 0;
  for (uint32_t c = 0; c < nch; ++c)
    for (const auto& p : issue_cycles(xs, rt.arrive(c), V)) {
      lower = std::max(lower, static_cast<int64_t>(X.ready_of(r, c)) - p.second);
      min_issue = std::min(min_issue, p.second);
    }
  if (masked)
    for (const auto& p : issue_cycles(spec.mask->parts[0].slices, rt.mask_arrive(), V))
      min_issue = std::min(min_issue, p.second);
  uint64_t center_reads = 0;
  for (uint32_t c = 0; C && c < nch; ++c) {
    if (rt.center_shared(c)) continue;
    ++center_reads;
    for (const auto& p : issue_cycles(cs, rt.center_arrive(c), V)) {
      lower = std::max(lower, static_cast<int64_t>(C->ready_of(r, 0)) - p.second);
      min_issue = std::min(min_issue, p.second);
    }
  }
  lower = std::max(lower, -min_issue);
  B = std::max({B, static_cast<uint64_t>(lower), hint});
  uint64_t landed = 0, nvxm = 0;
  std::vector<StreamValue> prepped(nch);  // per try: chunk c's value once prepared (set before read)
  search(B, &nvxm, [&](const auto& at, const auto& vop) {
    const int any = -1, toward = static_cast<int>(to_s);
    bool ok = true;
    std::map<std::pair<int64_t, int64_t>, StreamValue> centers;  // (read, sub) cycles -> c at the sub
    for (uint32_t c = 0; c < nch && ok; ++c) {
      StreamValue cur;
      uint64_t t = at(rt.arrive(c));
      ok = b_.fetch(xs, X.addr_of(r, c), V, t, xdir, X.ready_of(r, c), &cur);
      // The value that feeds the SXM (chunk 0 of a one-chunk row) heads toward it.
      const bool feeds = nch == 1;
      int nops =
              static_cast<int>(rt.movs[c]) + (masked && c + 1 == nch) + widen + (C != nullptr) + spec.square,
          k = 0;
      auto next_dir = [&]() { return ++k == nops && feeds ? toward : any; };
      for (int64_t m = 0; m < rt.movs[c] && ok; ++m, t += static_cast<uint64_t>(lat_mov)) {
        StreamValue o;
        ok = vop(movx, {&cur}, t, wx, next_dir(), &o);
        cur = o;
      }
      // The pad-lane mask of the last chunk (sel: 0 / -inf past K), on x or on x - c.
      auto mask_last = [&]() {
        if (!ok || !masked || c + 1 != nch) return;
        StreamValue mk;
        uint64_t tm = at(rt.mask_arrive());
        const PlacedTensor& M = *spec.mask;
        ok = b_.fetch(M.parts[0].slices, M.addr_of(0, 0), V, tm,
                      b_.pos(M.parts[0].slices[0]) < V ? Dir::East : Dir::West, 0, &mk);
        ok = ok && retime(movm, wm, rt.mask_movs, mk, tm, vop);
        StreamValue o;
        if (ok)
          ok = is_max ? vop(sel, {&mk, &mk, &cur}, t, wm, next_dir(), &o)
                      : vop(sel, {&mk, &cur, &mk}, t, wm, next_dir(), &o);
        cur = o;
        t += static_cast<uint64_t>(lat(sel));
      };
      if (!C) mask_last();
      if (ok && widen) {
        StreamValue o;
        ok = vop(cvt_up, {&cur}, t, 4, next_dir(), &o);
        cur = o;
        t += static_cast<uint64_t>(lat(cvt_up));
      }
      if (ok && C) {
        const std::pair<int64_t, int64_t> key{rt.center_arrive(c), rt.sub_at(c)};
        auto it = centers.find(key);
        if (it == centers.end()) {
          StreamValue cv;
          uint64_t tc = at(rt.center_arrive(c));
          ok = b_.fetch(cs, C->addr_of(r, 0), V, tc, b_.pos(cs[0]) < V ? Dir::East : Dir::West,
                        C->ready_of(r, 0), &cv);
          ok = ok && retime(movc, 4, rt.cmovs[c], cv, tc, vop);
          it = centers.emplace(key, cv).first;
        }
        StreamValue o;
        if (ok) ok = vop(sub, {&cur, &it->second}, t, 4, next_dir(), &o);
        cur = o;
        t += static_cast<uint64_t>(rt.lat_sub);
        mask_last();
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
      ok = vop(comb, {&v, &prepped[c]}, at(rt.join(c)), wcd, c + 1 == nch ? toward : any, &o);
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
      ok = ok && combine_tree(cp, &T, !last ? toward : tail.empty() ? static_cast<int>(ydir) : any, at, vop);
      if (ok) v = cp[0];
      P = T;
    }
    ok = ok && run_tail(v, P, ydir, false, at, vop);
    if (ok) ok = b_.store(v, ys, Y.addr_of(r, 0), Y.write_not_before_row(r), &landed);
    return ok;
  });
  found = B;
  uint64_t first = UINT64_MAX, last = 0;
  for (uint32_t c = 0; c < nch; ++c)
    for (const auto& p : issue_cycles(xs, rt.arrive(c), V)) {
      first = std::min(first, static_cast<uint64_t>(static_cast<int64_t>(B) + p.second));
      last = std::max(last, static_cast<uint64_t>(static_cast<int64_t>(B) + p.second));
    }
  if (!commit) {
    b_.rollback(probe);
    B = B_before;
    return landed;
  }
  finish_row(r, landed, first, last, static_cast<uint64_t>(nch) * xs.size() + center_reads * cs.size(), nvxm);
  for (uint32_t c = 0; C && c < nch; ++c)
    for (const auto& p : issue_cycles(cs, rt.center_arrive(c), V))
      C->last_read = std::max(C->last_read, static_cast<uint64_t>(static_cast<int64_t>(B) + p.second));
  return landed;
}

// Places rows a and b (one vector, see Shape::pair) through SXM `side`; returns the cycle the
// later result lands. Relative 0: the `sel` result leaves the VXM toward the SXM.
uint64_t LaneScheduler::Run::place_pair(int64_t ra, int64_t rb, size_t side, bool commit) {
  const auto probe = b_.begin();
  const size_t bi = side * nparts + static_cast<size_t>(ra / X.part_rows);
  const uint64_t B_before = Bp[bi];
  use_sxm(side);
  const int64_t d = dist(S, V);
  uint64_t& B = Bp[bi];
  const PlacedTensor& M = *spec.mask;
  const auto& xa = X.part_of_row(ra).slices;
  const auto& xb = X.part_of_row(rb).slices;
  const auto& ya = Y.part_of_row(ra).slices;
  const auto& yb = Y.part_of_row(rb).slices;
  const auto& msl = M.parts[0].slices;
  for (uint16_t sl : xb)
    if (to_s == Dir::West ? b_.pos(sl) < S : b_.pos(sl) > S)
      throw std::logic_error(spec.name + ": x is not between the SXM and the chip's far edge");
  const Dir xadir = b_.pos(xa[0]) < V ? Dir::East : Dir::West;
  const Dir mdir = b_.pos(msl[0]) < V ? Dir::East : Dir::West;
  const Dir yadir = b_.pos(ya[0]) > V ? Dir::East : Dir::West;
  const Dir ybdir = b_.pos(yb[0]) > V ? Dir::East : Dir::West;
  // Both results leave their combine trees on one cycle: b's is re-timed by a `mov` when the
  // rows' y slices meet (one write port per slice and cycle).
  bool delay_b = false;
  for (uint16_t sl : yb) delay_b = delay_b || std::find(ya.begin(), ya.end(), sl) != ya.end();
  Instr shf = make_instr(Opcode::Shift, X.dtype);
  shf.set(Field::SImm, static_cast<uint32_t>(K));
  const int64_t lat_sel = lat(sel), lat_shf = lat(shf);
  const int64_t b_at_s = -lat_sel - d - lat_shf;  // b's raw read passes the SXM
  int64_t movs_a = 0, movs_m = 0;                 // re-timing of a's and the mask's reads
  auto ia = [&]() { return issue_cycles(xa, -lat_sel - movs_a * lat_mov, V); };
  auto im = [&]() { return issue_cycles(msl, -lat_sel - movs_m * lat_mov, V); };
  const Issues ib = issue_cycles(xb, b_at_s, S);
  for (int n = 0;; ++n) {
    if (n > 64) throw std::logic_error("lane scheduler: no read timing for " + spec.name);
    if (clash(ia(), ib)) {
      ++movs_a;
    } else if (clash(im(), ia()) || clash(im(), ib)) {
      ++movs_m;
    } else {
      break;
    }
  }
  int64_t lower = 0, min_issue = 0;
  for (const auto& p : ia()) {
    lower = std::max(lower, static_cast<int64_t>(X.ready_of(ra, 0)) - p.second);
    min_issue = std::min(min_issue, p.second);
  }
  for (const auto& p : ib) {
    lower = std::max(lower, static_cast<int64_t>(X.ready_of(rb, 0)) - p.second);
    min_issue = std::min(min_issue, p.second);
  }
  for (const auto& p : im()) min_issue = std::min(min_issue, p.second);
  lower = std::max(lower, -min_issue);
  B = std::max({B, static_cast<uint64_t>(lower), hint});
  uint64_t land_a = 0, land_b = 0, nvxm = 0;
  search(B, &nvxm, [&](const auto& at, const auto& vop) {
    const int any = -1, toward = static_cast<int>(to_s);
    StreamValue av, mk, braw, bsh, v;
    uint64_t t = at(-lat_sel - movs_a * lat_mov);
    bool ok = b_.fetch(xa, X.addr_of(ra, 0), V, t, xadir, X.ready_of(ra, 0), &av);
    ok = ok && retime(movx, wx, movs_a, av, t, vop);
    t = at(-lat_sel - movs_m * lat_mov);
    if (ok) ok = b_.fetch(msl, M.addr_of(0, 0), V, t, mdir, 0, &mk);
    ok = ok && retime(movx, wx, movs_m, mk, t, vop);
    if (ok) ok = b_.fetch(xb, X.addr_of(rb, 0), S, at(b_at_s), to_s, X.ready_of(rb, 0), &braw);
    if (ok) ok = sop(shf, braw, at(b_at_s), wx, &bsh);
    if (ok) ok = vop(sel, {&mk, &bsh, &av}, at(-lat_sel), wx, toward, &v);  // lanes < K: a; above: b
    int64_t P = 0;
    StreamValue ra_v, rb_v;
    for (size_t j = 0; j < levels.size() && ok; ++j) {
      const bool last = j + 1 == levels.size();
      const uint64_t ts = at(P + d);
      std::vector<StreamValue> ca(levels[j].size()), cb;
      for (size_t i = 0; i < ca.size() && ok; ++i) ok = sop(levels[j][i], v, ts, wcd, &ca[i]);
      if (last) {
        cb.resize(final_b.size());
        for (size_t i = 0; i < cb.size() && ok; ++i) ok = sop(final_b[i], v, ts, wcd, &cb[i]);
      }
      const int64_t T = P + 2 * d + lat(levels[j][0]);
      if (!last) {
        P = T;
        ok = ok && combine_tree(ca, &P, toward, at, vop);
        if (ok) v = ca[0];
      } else {
        int64_t Ta = T, Tb = T;
        ok = ok && combine_tree(ca, &Ta, tail.empty() ? static_cast<int>(yadir) : any, at, vop);
        ok = ok && combine_tree(cb, &Tb, tail.empty() && !delay_b ? static_cast<int>(ybdir) : any, at, vop);
        if (ok) {
          ra_v = ca[0];
          rb_v = cb[0];
        }
        P = std::max(Ta, Tb);
      }
    }
    // Tails (post-level ops toward y), b's one `mov` later when delayed.
    ok = ok && run_tail(ra_v, P, yadir, false, at, vop);
    ok = ok && run_tail(rb_v, P, ybdir, delay_b, at, vop);
    if (ok) ok = b_.store(ra_v, ya, Y.addr_of(ra, 0), Y.write_not_before_row(ra), &land_a);
    if (ok) ok = b_.store(rb_v, yb, Y.addr_of(rb, 0), Y.write_not_before_row(rb), &land_b);
    return ok;
  });
  found = B;
  auto span = [&](const Issues& is, uint64_t* first, uint64_t* last) {
    for (const auto& p : is) {
      const uint64_t c = static_cast<uint64_t>(static_cast<int64_t>(B) + p.second);
      *first = std::min(*first, c);
      *last = std::max(*last, c);
    }
  };
  const uint64_t landed = std::max(land_a, land_b);
  if (!commit) {
    b_.rollback(probe);
    B = B_before;
    return landed;
  }
  uint64_t fa = UINT64_MAX, la = 0, fb = UINT64_MAX, lb = 0;
  span(ia(), &fa, &la);
  span(ib, &fb, &lb);
  finish_row(ra, land_a, fa, la, xa.size(), nvxm);
  finish_row(rb, land_b, fb, lb, xb.size(), 0);
  return landed;
}

}  // namespace lpu::compiler
