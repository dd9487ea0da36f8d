// MatmulScheduler::Run: the working state of one MatmulScheduler::schedule_plan call, private to the
// matmul kernel (matmul_kernel.h has the plan and the invariants it keeps). Its parts, in the order
// a call uses them:
//   matmul_run.cpp        the spec's checks and derived facts (constructor), the weight / X row
//                         sources, and the event loop issuing lw, iw and abc;
//   matmul_decompose.cpp  the work decomposition: row blocks and K-split, listed runs of batched
//                         products, or the balanced cut of an install-bound layer's tiles;
//   matmul_epilogue.cpp   one accumulator drain and its VXM epilogue (acc).
// Field names follow the kernel's notation (M, K, N, Kt, Nt, X, Y); everything lives for one call.
#pragma once

#include <deque>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "compiler/backend/matmul_kernel.h"

namespace lpu::compiler {

class MatmulScheduler::Run {
 public:
  // Checks the spec (InputError for what the user can change, std::logic_error for a compiler bug)
  // and derives its shapes, types and latencies. Clears the scheduler's record of its latest cut.
  Run(MatmulScheduler& k, const MatmulSpec& spec);
  // Deals the product's work to the planes (the rules in matmul_decompose.cpp); *both and
  // *reorders as MatmulScheduler::schedule_plan documents.
  void decompose(Plan plan, bool* both, bool ready_order, bool* reorders);
  // Schedules every instruction of the dealt work, earliest event first; returns the counts.
  MatmulStats run();

 private:
  struct WSrc {
    const std::vector<uint16_t>* slices;
    uint32_t addr;
    uint64_t ready;
  };
  // The X vector of product row m for k-tile kt: tensor, physical row, chunk.
  struct XSrc {
    PlacedTensor* t;
    int64_t row;
    uint32_t chunk;
  };
  struct Job {
    int64_t m0, rows;
    uint32_t nt;
    int64_t rot;
    uint32_t k0, k1;
    int64_t group;
    uint32_t kg;
  };
  // A tile of a job: weight rows [lo, hi) of tile (kt, job's nt) are loaded (all of the tile's
  // rows, except where an install-bound layer cuts a tile between two planes).
  // first / last: the job's first tile (resets the accumulator rows) and last (drains them).
  struct Tile {
    size_t job;
    uint32_t kt;
    int64_t acc_base;
    size_t local_job;
    uint32_t lo, hi;
    bool first, last;
  };
  struct Drain {
    int64_t accrow, m;
    uint32_t nt;
    uint64_t earliest;
    size_t local_job;
    int64_t group;
    int64_t idx;
  };
  // Partial rows of a split job group: per (group, row index, kg) the plane, acc row, local job and
  // the cycle its last abc lands (UINT64_MAX until scheduled). gsz: partials per group.
  struct PartRec {
    size_t plane = 0;
    int64_t accrow = 0;
    size_t local_job = 0;
    uint64_t earliest = UINT64_MAX;
  };
  // A row of the tile a plane streams (issue_abc): its X vector's source and the earliest cycle
  // its read can land at the plane (ready + read latency + distance), computed once per tile.
  struct RowCand {
    int64_t idx, m, accrow, v;
    XSrc xsr;
    uint32_t xaddr;
    const std::vector<uint16_t>* xs;
    uint64_t ready, lo_x;
    std::vector<StreamValue>* cached;  // X values of this vector already on streams (xcache)
  };
  // A plane's share of the work and its progress through it.
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
  enum Kind { LW = 0, IW = 1, ABC = 2, ACC = 3 };

  // Tile (kt, nt) is a transposed packed tile (PlacedWeights::trans), installed by `iwt`.
  bool transposed_tile(uint32_t kt, uint32_t nt) const;
  // Weight rows [lo, hi) of tile (kt, nt) that are loaded; a transposed tile loads its valid
  // columns as shadow rows [0, columns).
  std::pair<uint32_t, uint32_t> tile_rows(uint32_t kt, uint32_t nt) const;
  // Where weight row r of tile (kt, nt) comes from.
  WSrc wsrc(uint32_t kt, uint32_t nt, uint32_t r) const;
  XSrc xsrc(uint32_t kt, int64_t m) const;
  int64_t yrow(int64_t m) const { return spec.y_rows.empty() ? m : spec.y_rows[static_cast<size_t>(m)]; }

  // matmul_decompose.cpp
  uint64_t plan_cost(int64_t c, uint32_t g) const;
  void add_job(size_t pi, const Job& jb, const std::vector<uint32_t>* korder = nullptr);
  void deal_jobs();
  void balanced_cut(bool ready_order, bool* reorders);
  std::vector<std::vector<MatmulPiece>> cut_pieces(std::vector<uint64_t>* x_kfree);
  // cut_pieces' steps. CutCosts: each tile's install cost in (column tile, k-tile) order and their
  // sum with the cut's split overhead (total); per k-tile the earliest install start X allows
  // (x_kfree) and the latest of those (x_free); one average tile (one_tile); the column tiles in
  // the cut's order (column_sequence). plane_free: when plane i's install stream is free.
  // cut_plan: the contiguous cut for planes free from av.
  struct CutCosts {
    std::vector<uint64_t> cost;
    uint64_t total = 0;
    std::vector<uint64_t> x_kfree;
    uint64_t x_free = 0, one_tile = 0;
    std::vector<uint32_t> col_seq;
  };
  CutCosts cut_costs();
  std::vector<uint32_t> column_sequence() const;
  uint64_t plane_free(size_t i, uint64_t one_tile) const;
  std::vector<std::vector<MatmulPiece>> cut_plan(const CutCosts& cc, const std::vector<uint64_t>& av) const;
  void jobs_from_pieces(const std::vector<std::vector<MatmulPiece>>& plan,
                        const std::vector<uint64_t>& x_kfree, bool ready_order, bool* reorders);

  // matmul_run.cpp: the earliest next event of any plane (plane < 0: none left), and its issue.
  struct Event {
    int plane = -1, kind = -1;  // kind: a Kind
    uint64_t at = UINT64_MAX;   // the earliest cycle it may issue
  };
  Event next_event();
  void issue_lw_any_row(PS& s, Plane& pl, uint64_t e);
  void issue_lw(PS& s, Plane& pl, uint64_t e);
  void lw_issued(PS& s, uint64_t T);  // a plane's lw placed on cycle T: counts and its next row
  void issue_iw(PS& s, Plane& pl, uint64_t e);
  void issue_abc(size_t best_p, PS& s, Plane& pl, uint64_t e);
  // issue_abc's steps: the rows of tile s.ci with their X sources (s.rtodo, once a tile), and the
  // abc's cycle (*T) and row (the index in s.rtodo returned) from cycle e on.
  void list_rows(PS& s, const Plane& pl);
  size_t place_abc(PS& s, Plane& pl, uint64_t e, uint64_t* T);
  // matmul_epilogue.cpp: a drain (issue_acc) and its VXM epilogue chain, one attempt at a time. A
  // Chain is an attempt's state: the row, where its result flows (to), the chain's value (cur) at
  // the VXM on cycle T, the VXM ops placed, the epilogue rows fetched (entered into ecache once the
  // attempt succeeds) and skip (> 0: a residual or divisor row is not readable before skip more
  // cycles). Each step returns false when a placement fails (the attempt then rolls back).
  struct Chain {
    Chain(const Drain& d, int64_t y, Dir yd, Dir y2d) : dr(d), ym(y), ydir(yd), y2dir(y2d) {}
    const Drain& dr;
    int64_t ym;       // Y's physical row
    Dir ydir, y2dir;  // where Y's and Y2's slices lie from the VXM
    Dir to = Dir::East;
    uint64_t T = 0;
    StreamValue cur;
    uint64_t nvxm = 0, skip = 0;
    std::vector<std::pair<std::tuple<const PlacedTensor*, uint32_t, uint64_t>, StreamValue>> fetched;
  };
  void issue_acc(size_t best_p, PS& s, uint64_t e);
  bool epilogue(Chain& c, const std::vector<StreamValue>& vals, StreamValue* q);
  bool scale_and_bias(Chain& c, bool need_cvt);
  bool add_i8_residual(Chain& c, bool need_cvt);
  bool vop(Chain& c, Instr in, const StreamValue* bsrc, uint32_t width, bool final_op,
           const StreamValue* csrc = nullptr);
  bool side_op(Chain& c, Instr in, const StreamValue& a, const StreamValue* b, uint64_t t, StreamValue* out,
               uint32_t width = 4);
  bool erow(Chain& c, PlacedTensor* t, uint64_t at, StreamValue* out);
  bool fetch_act(Chain& c, const PlacedTensor* t, int64_t row, uint32_t v, uint64_t at, StreamValue* out);
  bool quantize(Chain& c, DType from, float inv);
  // Cycle offset of partial g's acc relative to the leader's (g = 0) so that partials 0 and 1 reach
  // the VXM together and partial g >= 2 arrives when the running sum of the earlier ones is ready.
  int64_t vdist(size_t plane) const;
  int64_t part_offset(size_t leader, size_t plane, uint32_t g) const;

  MatmulScheduler& k_;
  ScheduleBuilder& b_;
  std::vector<Plane>& planes_;
  const int vxm_slice_;
  const uint32_t vxm_pos_;
  const ChipConfig& cfg;
  const MatmulSpec& spec;
  PlacedTensor& X;
  PlacedTensor& Y;

  // The spec's facts (constructor).
  bool wact = false;  // weights from the activation spec.b
  uint32_t lanes = 0;
  DType in_t = DType::F16, acc_t = DType::F32;
  bool rescale = false;
  DType ep_t = DType::F32;  // the epilogue's type after the optional int8 rescale
  bool direct = false;      // accumulators stored as they are (no epilogue op)
  const PlacedTensor* Res = nullptr;
  bool res8 = false;                    // an i8 residual, added in f32 before the relu and the conversion
  const PlacedTensor* Res16 = nullptr;  // the f16 residual path
  const PlacedTensor* RowDiv = nullptr;
  PlacedTensor* Y2 = nullptr;
  int64_t M = 0, wK = 0, wN = 0;
  uint32_t Kt = 0, Nt = 0;
  Opcode iw_op = Opcode::InstW;
  uint64_t lat_lw = 0, lat_iw = 0, lat_abc = 0, occ_abc = 1, lat_acc = 0, lat_read = 0;
  size_t P = 0;
  int64_t half = 1;
  int64_t lat_add = 0;

  // The decomposition (decompose()).
  bool balanced = false, listed = false;
  int64_t chunks = 1;
  uint32_t G = 1;
  int64_t R = 1;
  bool double_buffer = false;
  int64_t base_jobs = 0;
  std::vector<std::vector<PartRec>> parts;
  std::vector<uint32_t> gsz;
  std::vector<PS> ps;
  bool direct_all = false;

  // The event loop's state (run()).
  // X values already on streams, by vector index: consumers at other planes share them.
  std::map<std::pair<const PlacedTensor*, int64_t>, std::vector<StreamValue>> xcache;
  // Weight rows already on streams, by (tile, row).
  std::map<int64_t, std::vector<StreamValue>> wcache;
  // Epilogue rows (scale, bias) already on a stream, by (tensor, column tile, cycle at the VXM):
  // rows whose epilogue op runs on the same cycle read the one value (an SRAM slice serves one read
  // per cycle, so one fetch per output row would cap the epilogue at one row per cycle).
  std::map<std::tuple<const PlacedTensor*, uint32_t, uint64_t>, StreamValue> ecache;
  MatmulStats st;
};

}  // namespace lpu::compiler
