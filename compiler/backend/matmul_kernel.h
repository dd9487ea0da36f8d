// Matmul kernel builder: schedules Y[M,N] = epilogue(X[M,K] . W[K,N]) on all MXM planes of the chip
// (int8 x int8 -> i32 or fp16 x fp16 -> f32), weight-stationary, instruction by instruction:
//   - work is cut into jobs (a block of <= acc_rows/2 rows of X times one 320-column tile of W),
//     dealt round-robin to the planes; a plane runs its jobs' k-tiles in order;
//   - a plane's next weight tile is loaded into its shadow buffer (lw, one row per cycle) while the
//     current tile streams activations (abc, one row per cycle int8 / per fp16 occupancy), then
//     installed (iw) on the cycle after the current tile's last abc issued (an abc uses the
//     weights active at its issue cycle); the next tile's rows may load from lat_lw - 1 cycles
//     before that iw lands (a lw landing after it goes to the new shadow);
//   - the rows of a tile stream in any order: each abc takes the earliest cycle at which one of
//     the tile's next rows (up to kAbcWindow, in the job's rotated order) gets its X vector, from
//     a value already on the stream or a free SRAM read port;
//   - after the last k-tile of a row, the accumulator row is emitted (acc) and either written to
//     SRAM directly or passed through the VXM epilogue (int8 rescale, bias add, f32 -> f16, a
//     fused residual add, relu) and written, with an optional i8 second output;
//   - accumulator rows alternate between two halves per job so draining overlaps the next job;
//   - with fewer jobs than planes a job's k-tiles may be split over several planes (K-split) and
//     the partial rows are emitted to meet at the VXM, where they are summed (docs/compiler.md);
//     the row-block count and the split are chosen by the busiest plane's estimated tile pipeline
//     (a K-split when cutting rows would make every plane install every tile; more row blocks
//     when that deals a tall M evenly over the planes);
//   - the epilogue's scale and bias rows are fetched once per VXM cycle and read by every row
//     whose epilogue op runs on that cycle; a relu after a narrowing conversion runs on the
//     narrow value;
//   - products whose weights are an activation (attention q.K^T, P.V: runs of independent
//     per-head products) give each job whole to the plane that can finish it first, instead of
//     cutting one product's rows over all planes (which installs its tile on every plane);
//   - install-bound layers (batch-1 decode: loading a tile takes longer than its abc rows; also
//     install-heavy ones of more rows with >= one tile per plane, e.g. 3x3 convs of 196 pixels) instead
//     cut the (column tile, k-tile) sequence into one contiguous piece per plane of equal install
//     time counted from when each plane's shadow buffer is free (one tile before its active tile's
//     last abc, if later: only one tile loads before that), so all planes' lw streams end
//     together across layers; columns cut between planes are summed at the VXM the same way;
//     a plane may take its runs in the order their X is ready (MatmulDecision::ready_order), and
//     at int8, whose i32 sums are exact in any order, each run's k-tiles too.
// Every instruction is placed by a greedy earliest-cycle search against the ScheduleBuilder's
// reservations, so the result obeys the stream, port and hazard rules by construction.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compiler/backend/placed_tensor.h"
#include "compiler/backend/schedule_builder.h"

namespace lpu::compiler {

// One k-tile of a product whose X is a view (docs/compiler.md "Attention plumbing"): the X vector
// of product row m is vector `x_chunk` of physical row `x_row_off + rowmap(m)` of `x` (nullptr:
// the spec's x); only weight rows [w_lo, w_hi) of the tile hold data (the others are zero and
// are not loaded: the install zeroes the shadow).
struct MatmulKTile {
  PlacedTensor* x = nullptr;
  int64_t x_row_off = 0;
  uint32_t x_chunk = 0;
  uint32_t w_lo = 0, w_hi = 0;
  // Optional per-row map (a convolution tap read in place, passes/lower_conv.h): product row m
  // reads physical row (*rows)[m] of x (x_row_off and the spec's x_rows are then not used; M =
  // rows->size()); -1 reads the spec's x_zero vector (row 0, chunk 0) instead (padding).
  const std::vector<int64_t>* rows = nullptr;
};

struct MatmulSpec {
  std::string name;
  PlacedTensor* x = nullptr;          // [M, K], dtype I8 or F16
  const PlacedWeights* w = nullptr;   // K x N, same dtype as x (nullptr: weights from the activation b)
  PlacedTensor* y = nullptr;          // [M, N]: I32/F32 (no epilogue conversion) or F16 (f32 acc only)
  PlacedTensor* bias = nullptr;       // optional [1, N] of the accumulator dtype (f32 with `scale`)
  // int8 only, optional [1, N] f32 row (passes/quantize.h): the epilogue converts the i32
  // accumulator to f32 and multiplies it by this row before bias/relu; Y is then I8, F16 or F32.
  PlacedTensor* scale = nullptr;
  // bias and scale may instead be [copies * Nt, lanes], row c * Nt + nt holding column tile nt, in
  // row blocks of their own slices (passes/schedule_constants.cpp), so planes draining different column tiles
  // fetch their rows on one cycle (one SRAM slice serves one read per cycle); with several copies
  // the fetch of cycle T tries copy T % copies first, so one slice group is not read on every
  // drain cycle (it starved the X reads of an activation row block sharing its slices).
  bool relu = false;
  // Optional residual (passes/fuse_residual.h): an F16 tensor of Y's stored layout, row ym (the
  // product row's Y row) added to the epilogue's result after its conversion to f16 (`add.f16`),
  // before the relu: Y = relu?(f16(acc epilogue) + R), bit-identical to storing the product and
  // adding R in an f16 elementwise pass. Y is F16, or I8: the f16 sum widened, times y_inv_scale
  // (`muli`; the scale row then holds no 1 / y_scale) and converted f32 -> i8.
  PlacedTensor* residual = nullptr;
  float y_inv_scale = 1.0f;
  // With an I8 residual (passes/quantize.h Int8Options::i8_residuals; int8 only): res_scale is the
  // row (laid out like `scale`) R's values are multiplied by, and the f32 epilogue is
  // Y = relu?(acc * scale + bias + R * res_scale), converted to Y's type (1 / y_scale is folded into
  // the three rows for an I8 Y): `cvt` of R's row to f32 on the side, then `fma` (or `mul`, `add`).
  PlacedTensor* res_scale = nullptr;
  // Optional second output (as EltwiseSpec::y2): an I8 tensor of Y's stored layout receiving, in
  // the same epilogue, Y's stored value widened, times y2_inv_scale (`muli`) and converted
  // f32 -> i8 (`cvt`): the bytes a separate quantizing copy of Y would write. Y must be F16 or F32.
  PlacedTensor* y2 = nullptr;
  // int8 only, optional per-row divisor (LoweredLayer::row_div, a folded LayerNorm's sd): an F32
  // [M, 1] tensor whose row m's vector holds product row m's value in every lane; the epilogue
  // divides the widened accumulator by it (`div`, f32) before the scale row: y = acc / d * scale
  // (+ bias ...). Product row m's drain waits for that row's `ready` cycle.
  PlacedTensor* row_div = nullptr;
  float y2_inv_scale = 1.0f;
  // Row maps: product row m reads physical X row x_rows[m] and writes physical Y row y_rows[m]
  // (empty: m; M = x_rows.size() if given, else x->rows). Several products may write disjoint rows
  // of one Y (batched matmuls, heads).
  std::vector<int64_t> x_rows, y_rows;
  // Explicit k-tiles (empty: tile kt reads chunk kt of X's row, weight rows [0, valid)); with w,
  // ktiles.size() == w->Kt.
  std::vector<MatmulKTile> ktiles;
  // One all-zero vector of x's dtype (row 0, chunk 0), read where a k-tile's row map says -1.
  PlacedTensor* x_zero = nullptr;
  // Weights from an activation (w == nullptr), read at run time as stored (tensor b, same dtype):
  //   b_trans = false: W[k][n] = b[b_row0 + k][n] (lw row k of tile kt = chunk nt of that row);
  //   b_trans = true:  W[k][n] = b[b_row0 + n][k] (lw loads b's row n, chunk kt, into shadow row
  //                    n % lanes and `iwt` installs the transpose; b's lanes past K must be zero).
  PlacedTensor* b = nullptr;
  int64_t b_row0 = 0, b_K = 0, b_N = 0;
  bool b_trans = false;
  // Optional column need order (passes/column_need.h): per column tile of Y, a rank (lower: read
  // earlier by the program). A balanced cut then deals the tiles so that every plane starts on the
  // earliest-read ones (the tiles sorted by rank, tile j of that order the (j / P)-th of plane
  // j % P, each plane's share still contiguous in the cut's cost order); empty: column order.
  std::vector<uint32_t> col_rank;
  // A balanced cut deals whole tiles only: no tile's rows are cut between two planes (each such cut
  // adds a column tile whose partial sums meet at the VXM, and an install overhead per part).
  // passes/schedule_steps.cpp sets it from TilingOptions::whole_tile_cut; false: tiles may be cut.
  bool whole_tiles = false;
};

struct MatmulStats {
  uint64_t abc = 0, lw = 0, iw = 0, acc = 0, reads = 0, writes = 0, vxm = 0;
  uint64_t first_issue = UINT64_MAX, last_end = 0;
};

// MXM planes of the chip (MXM slices x planes per slice): the planes the kernel deals work to.
uint32_t mxm_plane_count(const ChipConfig& cfg);
// The kernel's install-bound rule for a product of M rows whose inputs are of type t: a weight
// tile's `abc` rows take at most half the cycles of installing it (one lw row per cycle). Such
// layers get the balanced cut; passes/schedule_constants.cpp keeps their epilogue rows as [1, N].
bool install_bound_rows(const ChipConfig& cfg, int64_t M, DType t);

// The decisions of one MatmulScheduler::schedule() call that depend on timing: the plan kept and,
// for a balanced cut, its pieces (per plane: column tile, k-tile, weight rows [lo, hi)). fp16
// partial sums are rounded per piece, so two schedules of one model compute bit-identical values
// only with the same pieces. A compile records them (CompileResult::matmul_decisions, in call
// order); CompileOptions::matmul_replay makes another compile of the same lowered model take them
// instead of choosing (`lpusim check`'s keep_intermediates program, whose SRAM placement and hence
// timing differ).
struct MatmulPiece {
  uint32_t nt = 0, kt = 0, lo = 0, hi = 0;
  bool operator==(const MatmulPiece& o) const { return nt == o.nt && kt == o.kt && lo == o.lo && hi == o.hi; }
};
struct MatmulDecision {
  bool row_cut = false;
  std::vector<std::vector<MatmulPiece>> pieces;  // balanced cut: one list per plane; else empty
  bool ready_order = false;  // balanced cut: each plane's runs go in the order their X is ready
  // Balanced cut, recorded only (a replay recomputes it): per plane, its tiles (column tile,
  // k-tile, loaded rows) in the order the plane installs them. With ready_order at int8 a run's
  // k-tiles may leave k order (exact i32 sums); otherwise each run is in k order.
  std::vector<std::vector<MatmulPiece>> tile_order;
};

class MatmulScheduler {
 public:
  explicit MatmulScheduler(ScheduleBuilder& b);
  // Record each schedule() call's decisions into *record (if given); take them from *replay (if
  // given: the i-th call takes entry i; std::logic_error when the calls do not match).
  void set_decisions(std::vector<MatmulDecision>* record, const std::vector<MatmulDecision>* replay) {
    record_ = record;
    replay_ = replay;
  }
  // Schedules one matmul after everything already placed (planes keep their state across calls,
  // so the next layer's weight loads overlap this layer's compute). Throws InputError for
  // unsupported shapes/types. Where only the install-heavy rule picks the balanced cut, both it
  // and the row cut are scheduled (the builder's transaction rolls the other back) and the plan
  // whose last result lands first is kept; likewise a balanced cut whose planes would take their
  // runs in another order by X readiness is scheduled both ways. The choice is deterministic.
  MatmulStats schedule(const MatmulSpec& spec);

 private:
  // Default: the rules above. RowCut: not the balanced cut where only the install-heavy rule chose
  // it. *both (if given) is set when that rule alone chose the balanced cut. ready_order: a
  // balanced cut's planes take their runs in the order their first k-tile's X is ready (else in
  // the cut's order); *reorders (if given) is set when that order differs from the cut's.
  enum class Plan { Default, RowCut };
  MatmulStats schedule_plan(const MatmulSpec& spec, Plan plan, bool* both, bool ready_order = false,
                            bool* reorders = nullptr);
  struct Plane {
    int slice = 0;
    uint32_t plane = 0;
    uint32_t pos = 0;
    Dir dir_in = Dir::East, dir_out = Dir::West;
    int q_load = 0, q_abc = 0, q_acc = 0;   // preferred queues
    uint64_t shadow_free = 0;                // first cycle a lw may issue (previous iw landed)
    bool have_abc = false;
    uint64_t last_abc = 0;                   // issue cycle of the latest abc on this plane
    std::vector<uint64_t> acc_read;          // per acc row: last acc issue + 1 (0 = never read)
    int64_t acc_next = 0;                    // next fresh accumulator row (a ring over acc rows)
  };
  bool issue_pref(int slice, int pref, uint64_t t, const Instr& in);
  // One schedule_plan call's working state and steps (matmul_run.h; a nested class, so it reads
  // the planes and the replay / record fields below).
  class Run;

  ScheduleBuilder& b_;
  std::vector<Plane> planes_;
  int vxm_slice_ = -1;
  uint32_t vxm_pos_ = 0;
  std::vector<MatmulDecision>* record_ = nullptr;
  const std::vector<MatmulDecision>* replay_ = nullptr;
  size_t calls_ = 0;
  const MatmulDecision* forced_ = nullptr;  // the replayed decision of the call being scheduled
  std::vector<std::vector<MatmulPiece>> last_pieces_;  // the balanced cut of the latest schedule_plan
  bool last_ready_order_ = false;                       // ... and whether its runs went in X-ready order
  std::vector<std::vector<MatmulPiece>> last_tile_order_;  // ... and each plane's tiles in run order
};

}  // namespace lpu::compiler
