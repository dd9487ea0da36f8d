// LaneScheduler::Run: the working state of one LaneScheduler::schedule call, private to the lane
// kernel (lane_kernel.h has the contract). Its parts:
//   lane_kernel.cpp  the spec's common checks, the SXM choice and the ops every mode issues;
//   lane_moves.cpp   broadcasts and moves: one SXM `distribute` / `permute` per row (moves());
//   lane_reduce.cpp  row reductions: the all-reduce shapes tried, one row or a row pair at a time
//                    (reduce()).
// Field names follow the kernel's notation (K lanes a row, L lanes a vector, S / V the SXM's and the
// VXM's positions); everything lives for one call.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "compiler/backend/kernel_common.h"
#include "compiler/backend/lane_kernel.h"
#include "isa/chip_config.h"

namespace lpu::compiler {

namespace lane_detail {

// pos_gap as a signed count: the lane kernel's template times are relative (may be negative).
inline int64_t dist(uint32_t a, uint32_t b) { return static_cast<int64_t>(pos_gap(a, b)); }

}  // namespace lane_detail

class LaneScheduler::Run {
 public:
  // The checks every mode shares (InputError for what the user can change, std::logic_error for a
  // compiler bug).
  Run(LaneScheduler& k, const LaneSpec& spec);
  MatmulStats moves();   // LaneMode::Broadcast and LaneMode::Move
  // moves()'s steps (lane_moves.cpp): the spec's checks (and the broadcast's lane map); the rows
  // grouped by the x vector they read (one read feeds a group's permutes); a row's `permute`
  // (maps made once); a group placed through SXM `side` (commit false: a probe, undone),
  // returning the cycle its last row lands.
  struct MoveState;
  void check_moves(MoveState& m);
  std::vector<std::vector<int64_t>> move_groups(const MoveState& m) const;
  Instr move_instr(MoveState& m, uint32_t lo, uint32_t dst, int64_t one_src, int64_t one_dst);
  uint64_t place_group(MoveState& m, const std::vector<int64_t>& grp, size_t side, bool commit);
  MatmulStats reduce();  // LaneMode::Sum and LaneMode::Max

 private:
  // An all-reduce shape (reduce()): radix R, final fan-out F, two rows per vector.
  struct Shape {
    uint32_t R;
    int64_t F;
    bool pair;  // two rows per vector (lane_reduce.cpp)
  };
  // A row's placement in a shape's run: its SXM and the cycle of its template's relative 0.
  struct Placement {
    size_t side;
    uint64_t B;
  };

  // Rows through the `side`-th SXM of sxm_rows_: sets the SXM, its position and the directions
  // toward it and back that the ops below read.
  void use_sxm(size_t side);
  int64_t lat(const Instr& in) const { return static_cast<int64_t>(instr_timing(cfg, in).latency); }
  // Row r done: Y's ready cycle, X's last read and the step's counts.
  void finish_row(int64_t r, uint64_t landed, uint64_t first_read, uint64_t last_read, uint64_t reads,
                  uint64_t nvxm);
  // One SXM instruction at S on cycle t whose result (width bytes) heads back from the SXM.
  bool sop(Instr in, const StreamValue& src, uint64_t t, uint32_t width, StreamValue* out);
  // One VXM op at T on sources already at the VXM (Select: condition, then the two values); its
  // result heads `dir`, or with dir < 0 toward the SXM and else the other way. Counts into *nvxm.
  bool vxm_op(Instr in, std::initializer_list<const StreamValue*> srcs, uint64_t T, uint32_t width, int dir,
              StreamValue* out, uint64_t* nvxm);

  // lane_reduce.cpp: the shapes reduce() may use; the one of several that lands the last row first
  // (each run as a trial and rolled back); the rows placed with one shape (levels built, then
  // every row in order).
  std::vector<Shape> reduction_shapes() const;
  Shape best_shape(const std::vector<Shape>& shapes);
  void run_shape(Shape shape);
  // Places row r (rows ra and rb) through SXM `side`; returns the cycle its (the later) result
  // lands. commit false: a probe, undone.
  uint64_t place_row(int64_t r, size_t side, bool commit);
  uint64_t place_pair(int64_t ra, int64_t rb, size_t side, bool commit);
  // The row template tried at B, B + 1, ... until `place` fits (lane_reduce.cpp).
  template <class Place>
  void search(uint64_t& B, uint64_t* nvxm, Place place);
  // A try's shared steps, with at / vop as search gives them; each returns false when an op does
  // not fit. combine_tree: cp combined pairwise by `comb` from relative cycle *T (lat_comb a level,
  // *T advanced) until one value is left in cp[0], the root op heading root_dir. run_tail: the tail
  // ops on x from relative cycle P, the last heading ydir (extra_mov: one `mov.cd` first). retime:
  // n `mov`s (op mov, width bytes) delaying cur, from absolute cycle t (advanced lat_mov each).
  template <class At, class Vop>
  bool combine_tree(std::vector<StreamValue>& cp, int64_t* T, int root_dir, const At& at, const Vop& vop);
  template <class At, class Vop>
  bool run_tail(StreamValue& x, int64_t P, Dir ydir, bool extra_mov, const At& at, const Vop& vop);
  template <class Vop>
  bool retime(const Instr& mov, uint32_t width, int64_t n, StreamValue& cur, uint64_t& t, const Vop& vop);
  // (SRAM slice, issue cycle) of a read that reaches position pos on relative cycle `at`.
  using Issues = std::vector<std::pair<uint16_t, int64_t>>;
  Issues issue_cycles(const std::vector<uint16_t>& sl, int64_t at, uint32_t pos) const;
  static bool clash(const Issues& a, const Issues& b);  // two reads on one port and cycle
  // A row's template timing (place_row), relative to its 0: the `mov`s re-timing each read (of x's
  // chunks, the mask, the center) and the cycle each read and op reaches the VXM.
  struct RowTiming {
    explicit RowTiming(const Run* run) : k(run) {}
    const Run* k;
    std::vector<int64_t> movs;   // per chunk: `mov`s re-timing its read
    int64_t mask_movs = 0;       // ... the mask's read
    std::vector<int64_t> cmovs;  // per chunk: ... the center's read
    int64_t lat_widen = 0, lat_sub = 0;
    int64_t prep_len(uint32_t c) const;       // chunk c's prep ops before it joins
    int64_t join(uint32_t c) const;           // chunk c joins the row's combine chain
    int64_t arrive(uint32_t c) const;         // chunk c's raw read at the VXM
    int64_t sub_at(uint32_t c) const;         // the center's `sub` on chunk c
    int64_t mask_arrive() const;              // the mask's raw read
    int64_t center_arrive(uint32_t c) const;  // the center's raw read for chunk c
    bool center_shared(uint32_t c) const;     // chunk c shares an earlier chunk's center read
  };
  RowTiming row_timing(const std::vector<uint16_t>& xs, const std::vector<uint16_t>& cs) const;

  ScheduleBuilder& b_;
  const std::vector<int>& sxm_rows_;
  const int vxm_slice_;
  const ChipConfig& cfg;
  const LaneSpec& spec;
  PlacedTensor& X;
  PlacedTensor& Y;
  uint32_t L = 0;  // lanes a vector
  // The SXM of the row being placed (use_sxm): slice, position, directions; V: the VXM's position.
  int sxm = -1;
  uint32_t S = 0, V = 0;
  Dir to_s = Dir::East, from_s = Dir::West;
  int64_t lat_read = 0;
  MatmulStats st;

  // Reductions (reduce()): types, the ops of a row's template, the all-reduce's search state.
  bool is_max = false;
  DType cd = DType::F32;  // compute type (a max of f16 values is exact in f16)
  uint32_t wcd = 4, wx = 2, wm = 4;
  int64_t K = 0;
  uint32_t nch = 1;
  bool pad_lanes = false;  // the last vector has lanes past K
  PlacedTensor* C = nullptr;
  DType mdt = DType::F32;  // the mask's type: it acts on the centred f32 value when there is a center
  Instr comb, movx, sel, movm, movc, sub, cvt_up, sq;
  bool widen = false;
  int64_t lat_comb = 0, lat_mov = 0;
  std::vector<Instr> tail0;  // post ops in f32, then a cvt to Y's type
  int64_t seg = 0, Keff = 0;
  std::vector<Placement> trace, best_trace;  // a run's placements, in order
  const std::vector<Placement>* replay = nullptr;
  uint64_t hint = 0, found = 0;  // search start for the next placement; where the last one fit
  // Per shape (run_shape()).
  std::vector<Instr> tail;                 // tail0, plus a mov if nothing else is emitted toward Y
  std::vector<std::vector<Instr>> levels;  // the SXM copies of each all-reduce level
  std::vector<Instr> final_b;              // paired rows: row b's last-level copies
  bool masked = false;                     // the pad lanes need the mask
  size_t nparts = 1;
  std::vector<uint64_t> Bs, Bp;  // per SXM and row block of X: its rows' (row pairs') relative 0
};

}  // namespace lpu::compiler
