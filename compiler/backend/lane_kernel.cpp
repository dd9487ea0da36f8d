// LaneScheduler: row reductions and lane broadcasts on the VXM + SXM (see lane_kernel.h).
#include "compiler/backend/lane_kernel.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <stdexcept>

#include "compiler/backend/lane_run.h"
#include "isa/chip_config.h"

namespace lpu::compiler {

using namespace lane_detail;

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
  Run run(*this, spec);
  return spec.mode == LaneMode::Broadcast || spec.mode == LaneMode::Move ? run.moves() : run.reduce();
}

LaneScheduler::Run::Run(LaneScheduler& k, const LaneSpec& spec_in)
    : b_(k.b_),
      sxm_rows_(k.sxm_rows_),
      vxm_slice_(k.vxm_slice_),
      cfg(k.b_.cfg()),
      spec(spec_in),
      X(*spec_in.x),
      Y(*spec_in.y) {
  if (k.sxm_slice_ < 0 || (spec.mode != LaneMode::Broadcast && spec.mode != LaneMode::Move && vxm_slice_ < 0))
    throw InputError(
        fmt::format("{}: chip '{}' needs a VXM and an SXM slice for row reductions and lane broadcasts",
                    spec.name, cfg.name));
  if (cfg.streams_per_direction < 4)
    throw InputError(fmt::format("{}: chip '{}' needs >= 4 streams per direction for f32 VXM ops (has {})",
                                 spec.name, cfg.name, cfg.streams_per_direction));
  // A move carries bytes (any type: an i8 pooled tensor, passes/lower_conv.h "Row pairs").
  for (const PlacedTensor* t : {&X, &Y})
    if (t->dtype != DType::F16 && t->dtype != DType::F32 &&
        !(spec.mode == LaneMode::Move && t->dtype == DType::I8))
      throw InputError(fmt::format("{}: tensor '{}' has type {}; lane steps take f16 or f32", spec.name,
                                   t->name, dtype_name(t->dtype)));
  if (spec.mode != LaneMode::Move && ((Y.inner != 1 && !spec.lane_map) || Y.rows != X.rows))
    throw std::logic_error(fmt::format("{}: Y must be [{}, 1]{}, is [{}, {}]", spec.name, X.rows,
                                       spec.lane_map ? " or one vector wide" : "", Y.rows, Y.inner));
  L = cfg.vector_bytes();
  // The SXM of the step (reductions: of the row, see sxm_rows_): slice, position, directions.
  sxm = k.sxm_slice_;
  S = b_.pos(sxm);
  V = k.vxm_pos_;
  to_s = S < V ? Dir::West : Dir::East;
  from_s = opposite(to_s);
  lat_read = lat(make_instr(Opcode::Read));
}

void LaneScheduler::Run::use_sxm(size_t side) {
  sxm = sxm_rows_[side];
  S = b_.pos(sxm);
  to_s = S < V ? Dir::West : Dir::East;
  from_s = opposite(to_s);
}

void LaneScheduler::Run::finish_row(int64_t r, uint64_t landed, uint64_t first_read, uint64_t last_read,
                                    uint64_t reads, uint64_t nvxm) {
  Y.ready_of(r, 0) = landed;
  X.last_read = std::max(X.last_read, last_read);
  st.first_issue = std::min(st.first_issue, first_read);
  st.last_end = std::max(st.last_end, landed);
  st.reads += reads;
  st.writes += Y.part_of_row(r).slices.size();
  st.vxm += nvxm;
}

bool LaneScheduler::Run::sop(Instr in, const StreamValue& src, uint64_t t, uint32_t width, StreamValue* out) {
  in.set(Field::SrcA, src.ref().encode());
  if (!b_.produce(from_s, width, S, t + static_cast<uint64_t>(lat(in)), out)) return false;
  in.set(Field::Dst, out->ref().encode());
  if (!b_.issue_any(sxm, t, in)) return false;
  return true;
}

bool LaneScheduler::Run::vxm_op(Instr in, std::initializer_list<const StreamValue*> srcs, uint64_t T,
                                uint32_t width, int dir, StreamValue* out, uint64_t* nvxm) {
  const StreamValue* const* src = srcs.begin();  // a list, not a vector: no allocation per try
  if (in.op == Opcode::Select && srcs.size() == 3) {
    in.set(Field::SrcC, src[0]->ref().encode());
    in.set(Field::SrcA, src[1]->ref().encode());
    in.set(Field::SrcB, src[2]->ref().encode());
  } else {
    in.set(Field::SrcA, src[0]->ref().encode());
    if (srcs.size() > 1) in.set(Field::SrcB, src[1]->ref().encode());
  }
  const uint64_t t_out = T + static_cast<uint64_t>(lat(in));
  const Dir d1 = dir >= 0 ? static_cast<Dir>(dir) : to_s;
  if (!b_.produce(d1, width, V, t_out, out) && (dir >= 0 || !b_.produce(from_s, width, V, t_out, out)))
    return false;
  in.set(Field::Dst, out->ref().encode());
  if (!b_.issue_any(vxm_slice_, T, in)) return false;
  ++*nvxm;
  return true;
}

}  // namespace lpu::compiler
