// EltwiseScheduler: greedy vector-by-vector placement of one elementwise op on the VXM
// (see elementwise_kernel.h for the data path and the contract).
#include "compiler/backend/elementwise_kernel.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <stdexcept>
#include <tuple>

#include "compiler/backend/kernel_common.h"
#include "compiler/backend/vxm_instr.h"
#include "isa/chip_config.h"

namespace lpu::compiler {

namespace {

// `mul` of an f32 stream value by an immediate (the i8 quantizations' x * 1/scale); Dst unset.
Instr scale_f32(const StreamValue& src, float factor) {
  Instr m = muli_f32(factor);
  m.set(Field::SrcA, src.ref().encode());
  return m;
}

}  // namespace

EltwiseScheduler::EltwiseScheduler(ScheduleBuilder& b) : b_(b) {
  for (int i : b.cfg().slices_of(SliceKind::VXM)) {
    vxm_slice_ = i;
    vxm_pos_ = b.pos(i);
    break;
  }
}

// One schedule() call: the spec's checks and derived choices (constructor), the vectors' order,
// and each vector's placement, retried cycle by cycle until its whole chain fits.
class EltwiseScheduler::Run {
 public:
  Run(EltwiseScheduler& k, const EltwiseSpec& spec);
  MatmulStats run() {
    for (const Vec& vec : vector_order()) place_vector(vec);
    return st;
  }

 private:
  struct Vec {
    uint64_t key;
    uint32_t ch;
    int64_t k;
    size_t part;
    int64_t r;
  };
  // One vector being placed: its row and chunk, its operands' arrival at the VXM (the attempt's
  // start T0), the operands read lat_mov early and re-timed by a `mov` (delayed), where Y's (and
  // Y2's) vector goes; and what the committed attempt left.
  struct Vector {
    int64_t r;
    uint32_t ch;
    uint64_t T0;
    std::vector<char> delayed;
    const std::vector<uint16_t>* ys;
    uint32_t yaddr;
    Dir ydir;
    const std::vector<uint16_t>* y2s;
    uint32_t y2addr;
    Dir y2dir;
    uint64_t landed = 0, landed2 = 0, nvxm = 0, post_at = 0, nread = 0;  // nread: SRAM reads fetched
    // The attempt's state: the cycle its chain's next op issues at the VXM; (slice, cycle at the
    // VXM) of its every read (a post operand whose read would meet an earlier one on its own port
    // on the same cycle is read lat_mov early and re-timed: that collision has the same relative
    // timing at every T0, so without it no cycle is ever found); the latest cycle a post operand
    // reaches the VXM.
    uint64_t T = 0;
    std::vector<std::pair<uint16_t, uint64_t>> reads{};
    uint64_t post_read = 0;
  };
  // (cycle at the VXM, tensor, row, chunk): ordered by cycle first, so the reads no vector can
  // share any more are one prefix of the map (place_vector erases it).
  using ReadKey = std::tuple<uint64_t, const PlacedTensor*, int64_t, uint32_t>;

  const std::vector<int64_t>* map_of(size_t i) const {
    return spec.row_maps.empty() ? nullptr : spec.row_maps[i];
  }
  // A lane_bcast operand ([rows, 1], the value in every lane) is read as its one vector per row.
  bool bc(size_t i) const { return i < spec.lane_bcast.size() && spec.lane_bcast[i]; }
  // Operand i of row r: (tensor, row) after the row map and broadcasting.
  int64_t src_row(size_t i, int64_t r, const PlacedTensor** tp) const;
  std::vector<Vec> vector_order() const;
  void place_vector(const Vec& vec);
  // One try of v at v.T0 in the builder's open transaction: reads, the op chain, the stores. False
  // when anything does not fit (the caller rolls back and tries the next cycle).
  bool attempt(Vector& v);
  bool vop_to(Vector& v, Instr in, uint64_t T, bool final_op, uint32_t width, StreamValue* out, Dir to);
  bool vop(Vector& v, Instr in, uint64_t T, bool final_op, uint32_t width, StreamValue* out);  // toward Y
  bool read_operands(Vector& v);
  bool post_operand(Vector& v, size_t i, const StreamValue** src);
  bool op_chain(Vector& v, StreamValue* cur);
  bool store(Vector& v, const StreamValue& cur);

  ScheduleBuilder& b_;
  const int vxm_slice_;
  const uint32_t vxm_pos_;
  const ChipConfig& cfg;
  const EltwiseSpec& spec;
  PlacedTensor& Y;
  PlacedTensor* Y2 = nullptr;  // the fused quantized copy of Y, or null
  size_t nops = 0;
  bool to_i8 = false;       // quantized on the way out (muli by y_inv_scale, cvt f32 -> i8)
  Instr cvt_up;             // f16 -> f32
  bool f16_direct = false;  // the ops run on the f16 values
  uint64_t lat_up = 0, lat_mov = 0;
  bool narrow = false;
  DType op_dt = DType::F32;
  bool relu_first = false;
  std::vector<EltwiseSpec::Post> post;
  size_t nmain = 0;  // operands at the VXM on the op's cycle
  bool fused_relu = false;
  uint32_t op_width = 4;
  bool has_op = false;
  Opcode op = Opcode::Mov;
  MatmulStats st;
  // Per row block of Y: arrival of the operand reads at the VXM, nondecreasing over the block's
  // vectors in vector_order() (blocks do not wait for each other).
  std::vector<uint64_t> part_T0;
  std::vector<StreamValue> vals;
  // Reads shared between vectors: an operand vector (a broadcast constant row, typically) already
  // read to pass the VXM on the cycle another vector needs it is taken from the stream, not read
  // again (stream values are not consumed, docs/architecture.md). Key: ReadKey. `pending` holds
  // the reads of the vector being placed until its transaction commits.
  std::map<ReadKey, StreamValue> shared, pending;
};

MatmulStats EltwiseScheduler::schedule(const EltwiseSpec& spec) {
  Run run(*this, spec);
  return run.run();
}

EltwiseScheduler::Run::Run(EltwiseScheduler& k, const EltwiseSpec& spec_in)
    : b_(k.b_),
      vxm_slice_(k.vxm_slice_),
      vxm_pos_(k.vxm_pos_),
      cfg(k.b_.cfg()),
      spec(spec_in),
      Y(*spec_in.y) {
  if (k.vxm_slice_ < 0)
    throw InputError(fmt::format("{}: chip '{}' has no VXM slice for elementwise ops", spec.name, cfg.name));
  if (cfg.streams_per_direction < 4)
    throw InputError(fmt::format("{}: chip '{}' needs >= 4 streams per direction for f32 VXM ops (has {})",
                                 spec.name, cfg.name, cfg.streams_per_direction));
  if (Y.dtype != DType::F16 && Y.dtype != DType::F32 && Y.dtype != DType::I8)
    throw InputError(fmt::format("{}: output '{}' has type {}; elementwise ops store f16, f32 or i8",
                                 spec.name, Y.name, dtype_name(Y.dtype)));
  // A Max/Min chain: the op and binary post ops of the same opcode (MaxPool: one per further tap),
  // at most a fused Relu after a Max.
  bool minmax_chain = spec.has_op && (spec.op == Opcode::Max || spec.op == Opcode::Min) &&
                      (!spec.relu || spec.op == Opcode::Max);
  for (const EltwiseSpec::Post& po : spec.post)
    minmax_chain = minmax_chain && po.op == spec.op && po.operand >= 0;
  // A Max/Min chain of i8 operands of Y's scale (EltwiseSpec::same_i8_scale) runs on the i8 values.
  bool i8_direct = spec.same_i8_scale && minmax_chain && Y.dtype == DType::I8 && spec.y2 == nullptr &&
                   (!spec.zero || spec.zero->dtype == DType::I8);
  for (const PlacedTensor* t : spec.operands) i8_direct = i8_direct && t->dtype == DType::I8;
  if (spec.same_i8_scale && !i8_direct)
    throw std::logic_error(spec.name + ": same_i8_scale needs a Max/Min chain of i8 operands into an i8 Y");
  // Quantized on the way out: muli by y_inv_scale, cvt f32 -> i8 (not when the values already are).
  to_i8 = Y.dtype == DType::I8 && !i8_direct;
  Y2 = spec.y2;
  if (Y2 &&
      (Y2->dtype != DType::I8 || to_i8 || Y2->rows != Y.rows || Y2->inner != Y.inner || Y2->vpr != Y.vpr))
    throw std::logic_error(fmt::format("{}: second output '{}' must be an i8 [{}, {}] copy of an f16/f32 Y",
                                       spec.name, Y2->name, Y.rows, Y.inner));
  nops = spec.operands.size();
  const size_t want = !spec.has_op                               ? 1
                      : spec.op == Opcode::Select                ? 3
                      : op_info(spec.op).format == Format::FVec1 ? 1
                                                                 : 2;
  size_t extra = 0;  // operands read by binary post ops only: want, want + 1, ... in post order
  for (const EltwiseSpec::Post& po : spec.post) {
    if (po.operand2 >= 0 && (po.op != Opcode::Fma || po.operand < 0 || !cfg.vxm_fma))
      throw std::logic_error(fmt::format("{}: a second post operand needs an `fma` with a first one, on a chip with "
                                         "vxm.fused_multiply_add", spec.name));
    for (int o : {po.operand, po.operand2})
      if (o >= 0) {
        if (static_cast<size_t>(o) != want + extra)
          throw std::logic_error(fmt::format("{}: post op operand {} (expected {})", spec.name, o, want + extra));
        ++extra;
      }
  }
  if (nops != want + extra)
    throw std::logic_error(fmt::format("{}: {} operands for a {}-operand op and {} post operands", spec.name,
                                       nops, want, extra));
  bool any_f16 = false;
  if (!spec.row_maps.empty() && spec.row_maps.size() != nops)
    throw std::logic_error(spec.name + ": row_maps must be empty or one per operand");
  for (size_t i = 0; i < nops; ++i) {
    const std::vector<int64_t>* m = map_of(i);
    if (!m) continue;
    if (static_cast<int64_t>(m->size()) != Y.rows)
      throw std::logic_error(
          fmt::format("{}: row map of operand {} has {} rows, Y has {}", spec.name, i, m->size(), Y.rows));
    for (int64_t s : *m)
      if (s >= spec.operands[i]->rows || (s < 0 && (!spec.zero || spec.zero->inner < Y.inner)))
        throw std::logic_error(fmt::format("{}: row map of operand {} names row {}", spec.name, i, s));
  }
  if (spec.zero) any_f16 = spec.zero->dtype == DType::F16;
  for (size_t oi = 0; oi < nops; ++oi) {
    const PlacedTensor* t = spec.operands[oi];
    if (t->dtype != DType::F16 && t->dtype != DType::F32 && !i8_direct)
      throw InputError(fmt::format("{}: operand '{}' has type {}; elementwise ops take f16 or f32", spec.name,
                                   t->name, dtype_name(t->dtype)));
    // An operand may be wider than Y in its last vector (same vectors per row): its extra lanes
    // land in Y's pad lanes (attention's P.[V|1] divided by its sums column, lower_attention.h).
    const bool same_lanes = t->inner == Y.inner || (t->inner > Y.inner && t->vpr == Y.vpr);
    if ((bc(oi) ? t->inner != 1 || t->vpr != 1 : !same_lanes) ||
        (!map_of(oi) && t->rows != Y.rows && t->rows != 1))
      throw std::logic_error(fmt::format("{}: operand '{}' [{}, {}] does not broadcast to [{}, {}]",
                                         spec.name, t->name, t->rows, t->inner, Y.rows, Y.inner));
    any_f16 = any_f16 || t->dtype == DType::F16;
  }
  cvt_up = cvt_instr(DType::F16, DType::F32);
  // Max / Min of f16 operands (MaxPool: the op and binary post ops of the same opcode, one per
  // further tap) into an f16 or i8 Y: exact in f16, so the ops run on the f16 values directly
  // (`max.f16`: no widening, 2-stream values); an i8 Y widens the result once before its `muli`.
  // A Max chain may carry a fused Relu (a pool that took its producer's Relu, passes/
  // lower_conv.cpp), run on the first operand (relu_first below).
  f16_direct = minmax_chain && (Y.dtype == DType::F16 || Y.dtype == DType::I8) &&
               (!spec.zero || spec.zero->dtype == DType::F16);
  // Add / Sub / Mul of f16 operands into an f16 Y, with at most a fused Relu after it (e.g. the
  // residual Add of a ResNet block): a float VXM op computes in f32 and rounds once to its dtype
  // (docs/isa.md, sim/units/vxm.cpp), so `add.f16` stores round_f16(f32(a) + f32(b)), exactly what
  // widening both operands, `add.f32` and the narrowing `cvt` store (the f32 sum is the same
  // rounding; an f16 x f16 product is exact in f32), and relu commutes with the rounding. 1-2 VXM
  // ops per vector instead of 4-5, and 2-stream values instead of 4. Not for an i8 Y: its `muli`
  // must see the unrounded f32 result.
  bool chain_ok = spec.post.empty();
  if (spec.disjoint_sum && spec.has_op && spec.op == Opcode::Add && !spec.relu) {  // exact partial sums
    chain_ok = true;
    for (const EltwiseSpec::Post& po : spec.post)
      chain_ok = chain_ok && po.op == Opcode::Add && po.operand >= 0;
  }
  const bool arith_direct =
      spec.has_op && (spec.op == Opcode::Add || spec.op == Opcode::Sub || spec.op == Opcode::Mul) &&
      Y.dtype == DType::F16 && chain_ok && (!spec.zero || spec.zero->dtype == DType::F16);
  f16_direct = f16_direct || arith_direct;
  for (const PlacedTensor* t : spec.operands) f16_direct = f16_direct && t->dtype == DType::F16;
  lat_up = any_f16 && !f16_direct ? instr_timing(cfg, cvt_up).latency : 0;
  lat_mov = instr_timing(cfg, make_instr(Opcode::Mov)).latency;
  narrow = (Y.dtype == DType::F16 && !f16_direct) || to_i8;
  op_dt = i8_direct ? DType::I8 : f16_direct ? DType::F16 : DType::F32;
  // A Max chain with a fused Relu on values used as they are: relu(operand 0) first, then one max
  // per further operand (max(relu(a), b, ...) = relu(max(a, b, ...)), exact). Operand 1 is then
  // read when its max issues, as a post operand: no two operands of the step meet the VXM on one
  // cycle, so none needs re-timing by a `mov` (one VXM op per operand; a MaxPool's first pass).
  relu_first = minmax_chain && spec.relu && want == 2 && (i8_direct || f16_direct);
  post = spec.post;
  if (relu_first) post.insert(post.begin(), EltwiseSpec::Post{Opcode::Max, 0.f, 1});
  nmain = relu_first ? 1 : want;
  fused_relu = spec.relu && !relu_first;
  op_width = static_cast<uint32_t>(dtype_bytes(op_dt));
  // A Cast with nothing to convert is a `mov` (the value must be re-emitted toward Y's slices).
  has_op = spec.has_op || !narrow;
  op = spec.has_op ? spec.op : Opcode::Mov;
  part_T0.assign(Y.parts.size(), 0);
  vals.resize(nops);
}

int64_t EltwiseScheduler::Run::src_row(size_t i, int64_t r, const PlacedTensor** tp) const {
  const std::vector<int64_t>* m = map_of(i);
  const int64_t s = m ? (*m)[static_cast<size_t>(r)] : spec.operands[i]->rows == 1 ? 0 : r;
  *tp = s < 0 ? spec.zero : spec.operands[i];
  return s < 0 ? int64_t{0} : s;
}

std::vector<EltwiseScheduler::Run::Vec> EltwiseScheduler::Run::vector_order() const {
  // Vector order: chunk by chunk as the chunk's rows become ready, so a producer's pipeline is
  // followed (a matmul writes its Y column tile by column tile: a pass on it starts on its first
  // column tiles, and a consumer matmul's first k-tile, one vector column of this pass's Y, lands
  // before the last). Vector (r, c) is keyed by the latest ready cycle of its operand vectors,
  // raised to the key of (r', c) for every row r' before r in its row block (`per_part` below;
  // else in the row order below), so the rows of one chunk still go in row order (a consumer
  // matmul streams a tile's rows in that order; keying
  // by the vector's own ready cycle alone measured worse there, docs/compiler.md "Elementwise
  // ops"). Ties: chunk c of every row before chunk c + 1 of any, then the row order: Y's row blocks
  // (parts, each in its own SRAM slices) interleaved, row k of every part before row k + 1 of any,
  // so consecutive vectors write (and, for operands split alike, read) different SRAM ports and
  // several vectors can pass the VXM per cycle (one row block takes at most one vector per cycle
  // per port).
  std::vector<Vec> order;
  order.reserve(static_cast<size_t>(Y.rows) * Y.vpr);
  // Running maxima per row block (part), not over all of Y's rows: rows of an early part do not
  // wait for a late part's (BERT-base's head packing reads the heads' P.V rows by groups of four,
  // one part per group). An i8 pool keeps one running maximum over all rows (per part, ResNet-50's
  // int8 MaxPool took 272 cycles more; docs/compiler.md "Elementwise ops").
  const bool per_part = !spec.same_i8_scale;
  for (uint32_t ch = 0; ch < Y.vpr; ++ch) {
    uint64_t key = 0;                               // running max over the chunk's rows in row order
    std::vector<uint64_t> pkey(Y.parts.size(), 0);  // ... over each part's rows (per_part)
    for (int64_t k = 0; k < Y.part_rows; ++k)
      for (size_t pi = 0; pi < Y.parts.size(); ++pi) {
        if (k >= Y.parts[pi].rows) continue;
        const int64_t r = Y.parts[pi].row0 + k;
        if (per_part) key = pkey[pi];
        for (size_t i = 0; i < nops; ++i) {
          const std::vector<int64_t>* m = map_of(i);
          const int64_t s = m ? (*m)[static_cast<size_t>(r)] : spec.operands[i]->rows == 1 ? 0 : r;
          const PlacedTensor* t = s < 0 ? spec.zero : spec.operands[i];
          const int64_t tr = s < 0 ? 0 : s;
          key = std::max(key, t->ready[static_cast<size_t>(tr * t->vpr + (bc(i) ? 0 : ch))]);
        }
        pkey[pi] = key;
        order.push_back({key, ch, k, pi, r});
      }
  }
  std::sort(order.begin(), order.end(), [](const Vec& a, const Vec& b) {
    return std::tie(a.key, a.ch, a.k, a.part) < std::tie(b.key, b.ch, b.k, b.part);
  });
  return order;
}

void EltwiseScheduler::Run::place_vector(const Vec& vec) {
  const int64_t r = vec.r;
  const uint32_t ch = vec.ch;
  uint64_t& T0 = part_T0[vec.part];
  // Lower bound: every read issues at or after its vector's ready cycle.
  Instr rd = make_instr(Opcode::Read);
  const uint64_t lat_read = instr_timing(cfg, rd).latency;
  auto src_of = [&](size_t i, const PlacedTensor** tp) { return src_row(i, r, tp); };
  // Two operand vectors in the same slices (rows of one tensor under row maps) cannot be read
  // on one cycle: the later operand is read lat_mov cycles early and re-timed by a VXM `mov`.
  std::vector<char> delayed(nops, 0);
  for (size_t i = 0; i < nmain; ++i) {
    const PlacedTensor* ti = nullptr;
    const int64_t ri = src_of(i, &ti);
    const auto& si = ti->part_of_row(ri).slices;
    for (size_t j = 0; j < i && !delayed[i]; ++j) {
      const PlacedTensor* tj = nullptr;
      const int64_t rj = src_of(j, &tj);
      if (tj == ti && rj == ri) break;  // the same vector: read once
      // An f16 and an f32 operand reach the VXM lat_up cycles apart already (attn: delaying one
      // by lat_mov == lat_up made both reads hit the shared port on one cycle, forever).
      if ((tj->dtype == DType::F16) != (ti->dtype == DType::F16)) continue;
      for (uint16_t a : tj->part_of_row(rj).slices)
        if (!delayed[j] && std::find(si.begin(), si.end(), a) != si.end()) delayed[i] = 1;
    }
  }
  for (size_t i = 0; i < nops; ++i) {
    const PlacedTensor* t = nullptr;
    const int64_t tr = src_of(i, &t);
    const uint64_t ready = t->ready[static_cast<size_t>(tr * t->vpr + (bc(i) ? 0 : ch))];
    uint64_t far = 0;
    for (uint16_t s : t->part_of_row(tr).slices) far = std::max(far, pos_gap(b_.pos(s), vxm_pos_));
    const uint64_t up = t->dtype == DType::F16 ? 0 : lat_up;
    const uint64_t lb = ready + lat_read + far + (delayed[i] ? lat_mov : 0);
    T0 = std::max(T0, lb > up ? lb - up : 0);
  }
  const auto& ys = Y.part_of_row(r).slices;
  const uint32_t yaddr = Y.addr_of(r, ch);
  const Dir ydir = b_.pos(ys[0]) > vxm_pos_ ? Dir::East : Dir::West;
  const std::vector<uint16_t> no_slices;
  const auto& y2s = Y2 ? Y2->part_of_row(r).slices : no_slices;
  const uint32_t y2addr = Y2 ? Y2->addr_of(r, ch) : 0;
  const Dir y2dir = Y2 && b_.pos(y2s[0]) > vxm_pos_ ? Dir::East : Dir::West;
  Vector v{r, ch, T0, std::move(delayed), &ys, yaddr, ydir, &y2s, y2addr, y2dir};
  for (uint64_t n = 0;; ++T0, ++n) {
    if (n > kMaxSearch)
      throw std::logic_error("elementwise scheduler: no cycle found for " + spec.name +
                             " within the search bound");
    auto x = b_.begin();
    v.T0 = T0;
    v.nvxm = 0;
    v.nread = 0;
    if (attempt(v)) break;
    pending.clear();
    b_.rollback(x);
  }
  const uint64_t landed = v.landed, landed2 = v.landed2, nvxm = v.nvxm, post_at = v.post_at, nread = v.nread;
  shared.insert(pending.begin(), pending.end());
  pending.clear();
  // No block's T0 decreases, so reads passing the VXM before the least can no longer be shared.
  const uint64_t T0min = *std::min_element(part_T0.begin(), part_T0.end());
  shared.erase(shared.begin(), shared.lower_bound(ReadKey{T0min, nullptr, std::numeric_limits<int64_t>::min(), 0}));
  for (size_t i = 0; i < nops; ++i)  // post operands reach the VXM on their post op's cycle
    spec.operands[i]->last_read = std::max(spec.operands[i]->last_read, i < nmain ? T0 + lat_up : post_at);
  st.first_issue = std::min(st.first_issue, T0 > lat_read ? T0 - lat_read : 0);
  st.vxm += nvxm;
  st.reads += nread;  // the committed attempt's fetches (a vector taken from a stream is no read)
  st.writes += ys.size() + y2s.size();
  st.last_end = std::max({st.last_end, landed, landed2});
  Y.ready_of(r, ch) = landed;
  if (Y2) Y2->ready_of(r, ch) = landed2;
}

bool EltwiseScheduler::Run::attempt(Vector& v) {
  v.reads.clear();
  v.post_read = 0;
  bool ok = read_operands(v);
  StreamValue cur = nops ? vals[0] : StreamValue{};
  v.T = v.T0 + lat_up;  // operands are f32 at the VXM on T0 + lat_up
  ok = ok && op_chain(v, &cur);
  ok = ok && store(v, cur);
  v.post_at = v.post_read;
  return ok;
}

// One VXM instruction at cycle T reading srcs (all at the VXM on T); result of `width` bytes.
// A final op's result flows toward its store's slices (`to`); others take either direction.
bool EltwiseScheduler::Run::vop_to(Vector& v, Instr in, uint64_t T, bool final_op, uint32_t width,
                                   StreamValue* out, Dir to) {
  const uint64_t lat = instr_timing(cfg, in).latency;
  const Dir d1 = final_op ? to : opposite(to);
  if (!b_.produce(d1, width, vxm_pos_, T + lat, out) &&
      (final_op || !b_.produce(to, width, vxm_pos_, T + lat, out)))
    return false;
  in.set(Field::Dst, out->ref().encode());
  if (!b_.issue_any(vxm_slice_, T, in)) return false;
  ++v.nvxm;
  return true;
}

bool EltwiseScheduler::Run::vop(Vector& v, Instr in, uint64_t T, bool final_op, uint32_t width,
                                StreamValue* out) {
  return vop_to(v, in, T, final_op, width, out, v.ydir);
}

// The op's operands, each read to reach the VXM as an f32 value (f16 ones widened; as they are when
// the op runs on f16) on T0 + lat_up into vals (re-timed by a `mov` where delayed).
bool EltwiseScheduler::Run::read_operands(Vector& v) {
  bool ok = true;
  const uint64_t T1 = v.T0 + lat_up;  // operands are f32 at the VXM on T1
  for (size_t i = 0; i < nmain && ok; ++i) {
    const PlacedTensor* tp = nullptr;
    const int64_t tr = src_row(i, v.r, &tp);
    const PlacedTensor& t = *tp;
    // The same vector twice (x * x): one read feeds both sources.
    size_t same = i;
    for (size_t j = 0; j < i && same == i; ++j) {
      const PlacedTensor* uj = nullptr;
      const int64_t rj = src_row(j, v.r, &uj);
      if (uj == tp && rj == tr) same = j;
    }
    if (same < i) {
      vals[i] = vals[same];
      continue;
    }
    const auto& ts = t.part_of_row(tr).slices;
    const Dir d = b_.pos(ts[0]) < vxm_pos_ ? Dir::East : Dir::West;
    const uint64_t Ta = t.dtype == DType::F16 ? v.T0 : T1;
    const uint64_t early = v.delayed[i] ? lat_mov : 0;
    StreamValue raw;
    const uint32_t tch = bc(i) ? 0 : v.ch;
    const ReadKey key{Ta, tp, tr, tch};
    const auto hit = v.delayed[i] ? shared.end() : shared.find(key);
    if (hit != shared.end()) {
      raw = hit->second;
    } else {
      ok = b_.fetch(ts, t.addr_of(tr, tch), vxm_pos_, Ta - early, d,
                    t.ready[static_cast<size_t>(tr * t.vpr + tch)], &raw);
      if (ok) v.nread += ts.size();
      for (uint16_t a : ts) v.reads.emplace_back(a, Ta - early);
      if (ok && !v.delayed[i]) pending[key] = raw;
    }
    if (ok && v.delayed[i]) {
      Instr m = make_instr(Opcode::Mov, t.dtype);
      m.set(Field::SrcA, raw.ref().encode());
      ok = vop(v, m, Ta - early, false, static_cast<uint32_t>(dtype_bytes(t.dtype)), &raw);
    }
    if (!ok) break;
    if (t.dtype == DType::F16 && !f16_direct) {
      Instr c = cvt_up;
      c.set(Field::SrcA, raw.ref().encode());
      ok = vop(v, c, v.T0, false, 4, &vals[i]);
    } else {
      vals[i] = raw;
    }
  }
  return ok;
}

// Post operand i read to be f32 at the VXM on v.T (its source for the post op at v.T).
bool EltwiseScheduler::Run::post_operand(Vector& v, size_t i, const StreamValue** src) {
  const PlacedTensor* tp = nullptr;
  const int64_t tr = src_row(i, v.r, &tp);
  const uint32_t tch = bc(i) ? 0 : v.ch;
  const bool f16 = tp->dtype == DType::F16;
  const uint64_t Ta = f16 ? v.T - lat_up : v.T;
  const auto& ts = tp->part_of_row(tr).slices;
  const Dir d = b_.pos(ts[0]) < vxm_pos_ ? Dir::East : Dir::West;
  StreamValue raw;
  // Shared like the op's operands: a vector (a constant row) already passing the VXM on Ta
  // is taken from the stream.
  const ReadKey key{Ta, tp, tr, tch};
  const auto hs = shared.find(key);
  const auto hp = pending.find(key);
  bool got = true;
  if (hs != shared.end()) {
    raw = hs->second;
  } else if (hp != pending.end()) {
    raw = hp->second;
  } else {
    bool meets = false;
    for (uint16_t a : ts)
      meets = meets || std::find(v.reads.begin(), v.reads.end(), std::make_pair(a, Ta)) != v.reads.end();
    const uint64_t early = meets ? lat_mov : 0;
    got = b_.fetch(ts, tp->addr_of(tr, tch), vxm_pos_, Ta - early, d,
                   tp->ready[static_cast<size_t>(tr * tp->vpr + tch)], &raw);
    if (got) v.nread += ts.size();
    for (uint16_t a : ts) v.reads.emplace_back(a, Ta - early);
    if (got && meets) {  // re-timed: a `mov` brings it to the VXM on Ta
      Instr m = make_instr(Opcode::Mov, tp->dtype);
      m.set(Field::SrcA, raw.ref().encode());
      got = vop(v, m, Ta - early, false, static_cast<uint32_t>(dtype_bytes(tp->dtype)), &raw);
    } else if (got) {
      pending[key] = raw;
    }
  }
  if (got && f16 && !f16_direct) {
    Instr c = cvt_up;
    c.set(Field::SrcA, raw.ref().encode());
    got = vop(v, c, Ta, false, 4, &vals[i]);
  } else {
    vals[i] = raw;
  }
  *src = &vals[i];
  v.post_read = std::max(v.post_read, v.T);
  return got;
}

// The op, a fused relu, the fused post ops and the conversion toward Y's type, from *cur at v.T.
bool EltwiseScheduler::Run::op_chain(Vector& v, StreamValue* cur_out) {
  StreamValue& cur = *cur_out;
  bool ok = true;
  if (ok && has_op) {
    Instr in = make_instr(relu_first ? Opcode::Relu : op, op_dt);
    if (op == Opcode::Select) {
      in.set(Field::SrcC, vals[0].ref().encode());
      in.set(Field::SrcA, vals[1].ref().encode());
      in.set(Field::SrcB, vals[2].ref().encode());
    } else {
      in.set(Field::SrcA, vals[0].ref().encode());
      if (nmain > 1) in.set(Field::SrcB, vals[1].ref().encode());
    }
    ok = vop(v, in, v.T, !narrow && !fused_relu && post.empty(), op_width, &cur);
    v.T += instr_timing(cfg, in).latency;
  }
  if (ok && fused_relu) {  // a fused Relu, in the op's dtype (f32, or f16 for arith_direct)
    Instr rl = make_instr(Opcode::Relu, op_dt);
    rl.set(Field::SrcA, cur.ref().encode());
    ok = vop(v, rl, v.T, !narrow && post.empty(), op_width, &cur);
    v.T += instr_timing(cfg, rl).latency;
  }
  for (size_t pi = 0; ok && pi < post.size(); ++pi) {  // fused post ops, f32
    // On a chip with the fused multiply-add (chip config vxm.fused_multiply_add), f32 chains:
    //   `mul` by operand b then `add` of operand c: one `fma` (cur * b + c);
    //   `addi 1` then `mul` by operand b: one `fma` (cur * b + b = (cur + 1) * b, GELU's
    //   (1 + erf(.)) * x and (1 + tanh(.)) * x), both sources the one read of b.
    const bool can_fma = cfg.vxm_fma && op_dt == DType::F32 && pi + 1 < post.size();
    const bool fma = can_fma && post[pi].op == Opcode::Mul && post[pi].operand >= 0 &&
                     post[pi + 1].op == Opcode::Add && post[pi + 1].operand >= 0;
    const bool fma1 = can_fma && post[pi].op == Opcode::AddImm && post[pi].imm == 1.0f &&
                      post[pi + 1].op == Opcode::Mul && post[pi + 1].operand >= 0;
    if (fma1) ++pi;  // the `mul` is the fma's multiply; its operand is both b and c
    Instr pin = make_instr(fma || fma1 ? Opcode::Fma : post[pi].op, op_dt);
    pin.set(Field::SrcA, cur.ref().encode());
    if (post[pi].operand2 >= 0) {  // cur + a * b: both operands read to be at the VXM on v.T
      const StreamValue *a = nullptr, *b2 = nullptr;
      if (!(ok = post_operand(v, static_cast<size_t>(post[pi].operand), &a))) break;
      if (!(ok = post_operand(v, static_cast<size_t>(post[pi].operand2), &b2))) break;
      pin.set(Field::SrcA, a->ref().encode());
      pin.set(Field::SrcB, b2->ref().encode());
      pin.set(Field::SrcC, cur.ref().encode());
    } else if (post[pi].operand >= 0) {  // src_b: its operand, read to be f32 at the VXM on v.T
      const StreamValue* src = nullptr;
      if (!(ok = post_operand(v, static_cast<size_t>(post[pi].operand), &src))) break;
      pin.set(Field::SrcB, src->ref().encode());
      if (fma1) pin.set(Field::SrcC, src->ref().encode());
    }
    if (fma) {  // src_c: the add's operand, at the VXM on the same cycle
      const StreamValue* src = nullptr;
      if (!(ok = post_operand(v, static_cast<size_t>(post[++pi].operand), &src))) break;
      pin.set(Field::SrcC, src->ref().encode());
    }
    if (post[pi].op == Opcode::MulImm || post[pi].op == Opcode::AddImm) {
      uint32_t bits;
      std::memcpy(&bits, &post[pi].imm, sizeof bits);
      pin.set(Field::FImm, bits);
    }
    ok = vop(v, pin, v.T, !narrow && pi + 1 == post.size(), op_width, &cur);
    v.T += instr_timing(cfg, pin).latency;
  }
  if (ok && to_i8 && f16_direct) {  // the f16 result widened once for the quantization
    Instr c = cvt_up;
    c.set(Field::SrcA, cur.ref().encode());
    ok = vop(v, c, v.T, false, 4, &cur);
    v.T += instr_timing(cfg, c).latency;
  }
  if (ok && to_i8) {
    const Instr m = scale_f32(cur, spec.y_inv_scale);
    ok = vop(v, m, v.T, false, 4, &cur);
    v.T += instr_timing(cfg, m).latency;
  }
  if (ok && narrow) {
    Instr c = cvt_instr(DType::F32, Y.dtype);
    c.set(Field::SrcA, cur.ref().encode());
    ok = vop(v, c, v.T, true, static_cast<uint32_t>(dtype_bytes(Y.dtype)), &cur);
    v.T += instr_timing(cfg, c).latency;
  }
  return ok;
}

// Y's vector stored and, with a second output, its quantized copy into Y2.
bool EltwiseScheduler::Run::store(Vector& v, const StreamValue& cur) {
  bool ok = true;
  if (ok) ok = b_.store(cur, *v.ys, v.yaddr, Y.write_not_before_row(v.r), &v.landed);
  if (ok && Y2) {  // the fused quantized copy: Y's stored value (at the VXM on v.T) -> i8
    StreamValue q = cur;
    if (Y.dtype == DType::F16) {
      Instr c = cvt_up;
      c.set(Field::SrcA, q.ref().encode());
      ok = vop_to(v, c, v.T, false, 4, &q, v.y2dir);
      v.T += instr_timing(cfg, c).latency;
    }
    const Instr m = scale_f32(q, spec.y2_inv_scale);
    ok = ok && vop_to(v, m, v.T, false, 4, &q, v.y2dir);
    v.T += instr_timing(cfg, m).latency;
    Instr c = cvt_instr(DType::F32, DType::I8);
    c.set(Field::SrcA, q.ref().encode());
    ok = ok && vop_to(v, c, v.T, true, 1, &q, v.y2dir);
    if (ok) ok = b_.store(q, *v.y2s, v.y2addr, Y2->write_not_before_row(v.r), &v.landed2);
  }
  return ok;
}

}  // namespace lpu::compiler
