// Lane kernel (docs/compiler.md "Row reductions" (lane steps on the VXM + SXM)): per row of X [rows, K], a
// reduction over the row's K lanes whose result ends up in EVERY lane of the row's one output
// vector, with no constant bigger than one row:
//   1. the row's ceil(K / lanes) vectors are read and combined lane-wise on the VXM by a chain of
//      `max` / `add` ops (f16 inputs widened for sums; optionally centred by a per-row value
//      (LaneSpec::center) and squared first); the last vector's
//      lanes past K are masked by a VXM `sel` with a one-row constant (0 for sums, -inf for max),
//      except for a one-vector max whose final windows tile [0, K) exactly (no lane past K read);
//      such a max over K <= lanes / 2 may reduce TWO rows per vector (row b shifted by K lanes by
//      the SXM, merged with row a by that `sel`; each row's final windows inside its K lanes),
//      chosen per step like the radix (lane_run.h Shape, lane_reduce.cpp);
//   2. a lane all-reduce of that vector by log2 doubling: the value goes to the nearest SXM, which
//      returns it twice (moved by 2^j lanes and unmoved) to the VXM, which combines the two. Max
//      uses `rotate` (windows may overlap: max does not mind); sums use `shift` (zero fill), so
//      after the levels lane i holds the exact sum of lanes [i - 2^j + 1, i] with no lane counted
//      twice; the last level `distribute`s two lanes whose windows tile [0, K) exactly and adds
//      them, which also broadcasts the result to every lane;
//   3. optional unary ops in f32 (`muli`, `addi`, `sqrt` ... e.g. 1/K and + eps), a `cvt` to Y's
//      type, and the write as the value passes Y's slices.
// Move mode copies a lane range of a source row's vector to lanes [0, W) of y's row (one SXM
// `permute`, zero fill above W; a head's lanes of a fused projection stacked into rows); the y rows
// taken from one source vector (heads sharing it) are grouped: ONE read, one `permute` per row on
// the cycle it passes the SXM (rows of a group write different slices).
// Broadcast mode copies lane src_lane (default 0) of X's rows ([rows, 1], or wider with the lane in
// the row's first vector) to every lane (one SXM `distribute`, no VXM op; rows alternate between
// the SXMs nearest the VXM).
// Y is stored [rows, 1] (one vector per row); consumers read that vector for every chunk of a
// wider row (EltwiseSpec::lane_bcast). Every row is one template of fixed relative timing, placed
// at the earliest cycle where all its reads, ops, stream slots and writes are free (one
// transaction); latencies come from lpu::instr_timing, never literals.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/backend/matmul_kernel.h"
#include "compiler/backend/placed_tensor.h"
#include "compiler/backend/schedule_builder.h"

namespace lpu::compiler {

enum class LaneMode : uint8_t { Max, Sum, Broadcast, Move };

// A unary VXM op applied in f32 after the reduction (imm: MulImm/AddImm immediate).
struct LanePost {
  Opcode op = Opcode::Mov;
  float imm = 0.f;
};

struct LaneSpec {
  std::string name;
  LaneMode mode = LaneMode::Sum;
  PlacedTensor* x = nullptr;       // [rows, K], F16 or F32 (Broadcast: [rows, 1])
  bool square = false;             // Sum only: sum of x * x
  // Sum only, optional: [rows, 1] F32, its row's value c in every lane. Each chunk of x is widened,
  // c is subtracted (`sub`, f32; c read to reach the VXM on that cycle, once for the chunks whose
  // `sub`s share a cycle), then masked and squared: sum((x - c)^2) without storing x - c (LayerNorm's
  // `.sd`, passes/lower_norm.cpp). Updates center->last_read.
  PlacedTensor* center = nullptr;
  std::vector<LanePost> post;      // Sum only (f32)
  // [1, >= lanes] constant of x's type (f32 with a center: the mask then acts on x - c, so pad lanes
  // contribute exactly 0), needed when K % lanes != 0 (lane_mask_row()).
  const PlacedTensor* mask = nullptr;
  PlacedTensor* y = nullptr;       // [rows, 1], F16 or F32 (Broadcast: x's type)
  // Max only, optional (0: none): the row (one vector, K lanes) is K / segment segments reduced
  // separately; y's row holds each segment's max in every lane of that segment (pad lanes: the last
  // segment's). Needs a shape whose windows tile the segment (a power of two: every shape does).
  // Paired attention scores (passes/pair_heads.h): two heads' rows side by side.
  int64_t segment = 0;
  uint32_t src_lane = 0;           // Broadcast only: the lane of x's row copied to every lane
  // Broadcast only, optional: lanes entries, lane l of y copies lane (*lane_map)[l] of x's row's
  // first vector (each < lanes); y may then be [rows, <= lanes] of x's type.
  const std::vector<int64_t>* lane_map = nullptr;
  // Move only: y row r = x row x_rows[r], columns [x_cols[r], x_cols[r] + W) (the range inside one
  // vector of x) in lanes [0, W), zeros above; y [rows, <= lanes], x's type.
  const std::vector<int64_t>* x_rows = nullptr;
  const std::vector<int64_t>* x_cols = nullptr;
  uint32_t move_width = 0;  // Move: W (0: y's inner); y's lanes past W get zeros
  // Move only, optional: row r's range lands in lanes [y_cols[r], y_cols[r] + W) (zeros elsewhere)
  // instead of [0, W); y_cols[r] + W <= y's inner.
  const std::vector<int64_t>* y_cols = nullptr;
  // Move only, optional (both or neither; one entry per row, -1: none): row r also copies column
  // (*one_cols)[r] of its x row, in the same vector as its range, to lane (*one_lanes)[r] of y's
  // row, outside the range's lanes (the same `permute`, one more map entry).
  const std::vector<int64_t>* one_cols = nullptr;
  const std::vector<int64_t>* one_lanes = nullptr;
};

// Values of the mask row for a reduction over K lanes (empty if K is a multiple of `lanes`):
// lanes of the row's last vector at or past K % lanes get 0 (Sum: sel picks the constant) or
// -inf (Max); valid lanes get 1 (Sum: sel picks x) or 0 (Max: sel picks x).
std::vector<float> lane_mask_row(LaneMode mode, int64_t K, uint32_t lanes);

class LaneScheduler {
 public:
  explicit LaneScheduler(ScheduleBuilder& b);
  // Schedules the step after everything already placed; reads wait for x's `ready` cycles.
  // Updates y->ready and x->last_read. InputError for a chip without a VXM or SXM slice.
  MatmulStats schedule(const LaneSpec& spec);

 private:
  // One schedule() call's working state and steps (lane_run.h; a nested class, so it reads the
  // slices below).
  class Run;

  ScheduleBuilder& b_;
  int vxm_slice_ = -1;
  uint32_t vxm_pos_ = 0;
  int sxm_slice_ = -1;  // the SXM slice nearest to the VXM
  // Reductions: every SXM slice as near to the VXM as sxm_slice_ (tsp-v1: one at each edge); rows
  // take them in turn, so the all-reduce copies of consecutive rows travel on the two directions'
  // streams and two SXMs' queues (docs/compiler.md "Row reductions").
  std::vector<int> sxm_rows_;
};

}  // namespace lpu::compiler
