// Row-gather kernel: copies whole vectors of a source tensor into a destination tensor following a
// row map, with no arithmetic (row copies of attention plumbing; convolutions no longer gather:
// their matmul reads each tap's rows in place, passes/lower_conv.h).
// Destination row r is `taps` blocks of src.vpr vectors: block t holds source row map[r * taps + t]
// (all its vectors), or the zero vector where the map says -1 (padding). Each vector is a MEM read
// of the source, carried on a stream straight to the destination slices when they lie downstream
// of every source plane, else re-emitted by a VXM `mov` toward the destination's side, then
// written as it passes (one transaction per vector, placed greedily like the elementwise kernel).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/backend/matmul_kernel.h"
#include "compiler/backend/placed_tensor.h"
#include "compiler/backend/schedule_builder.h"

namespace lpu::compiler {

struct GatherSpec {
  std::string name;
  PlacedTensor* src = nullptr;         // [R, C], any dtype
  const PlacedTensor* zero = nullptr;  // one all-zero vector (row 0, chunk 0), src's dtype; needed if map has -1
  PlacedTensor* dst = nullptr;         // [M, taps * src.vpr * lanes] (taps == 1: [M, C]), src's dtype
  int64_t taps = 1;
  const std::vector<int64_t>* map = nullptr;  // M * taps source rows (or -1)
  // Optional row copy form (taps == 1, a row Concat's input: docs/compiler.md "Attention
  // plumbing"): entry i copies source row (*map)[i] (>= 0) into dst row (*dst_rows)[i]; dst rows
  // not listed are left as they are (another step writes them) and map.size() == dst_rows.size()
  // need not equal dst.rows. Entries are visited round-robin over the source's row parts, so reads
  // of different parts (different SRAM ports) issue on the same cycles instead of one row a cycle.
  const std::vector<int64_t>* dst_rows = nullptr;
};

// Embedding lookup with runtime indices (docs/compiler.md "Other forms"): dst row r = table row
// id_r, where idx row idx_row0 + r (one i16 vector) holds id_r * table.vpr in every lane. Per dst vector c and byte plane b: a MEM `gather` on the table's plane-b slice at address
// table.addr + c reads lane i from address + idx[i] (the index vector is read onto a stream pair and
// carried to that slice, through a VXM `mov` when its planes straddle the slice), and its one-byte
// result is written to dst's plane-b slice. The table must be one part (every row on the same
// slices). A table split by row ranges (compiler/io_binding.h: lookup_part_rows) is one lookup per
// part, each with its own index rows (idx_row0 = part * T; the host points ids outside the part at
// the part's all-zero last row) into its own partial dst, summed by combine().
struct LookupSpec {
  std::string name;
  PlacedTensor* idx = nullptr;          // [parts * T, lanes] i16 row offsets (host-written input)
  int64_t idx_row0 = 0;                 // idx row of this lookup's first token
  const PlacedTensor* table = nullptr;  // [V, D] constant, one part
  PlacedTensor* dst = nullptr;          // [T, D], table's dtype
};

// dst = parts[0] + parts[1] + ... per vector, added as integers of the element's width (add.i16 for
// f16, add.i32 for f32): a part that is all zero bytes leaves the other's bits unchanged, so when
// at most one part of each row is non-zero (the partial lookups of a split table) dst is that
// part's row bit for bit (-0 and NaN included). Per (row, vector): every part read to the VXM, a
// chain of parts - 1 adds, the sum written to dst.
struct CombineSpec {
  std::string name;
  std::vector<PlacedTensor*> parts;  // >= 2 tensors [T, D], F16 or F32, same shape and dtype
  PlacedTensor* dst = nullptr;       // [T, D], the parts' dtype
};

class GatherScheduler {
 public:
  explicit GatherScheduler(ScheduleBuilder& b);
  // Schedules the copy after everything already placed; reads wait for each source vector's
  // `ready` cycle, writes for dst->write_not_before. Updates dst->ready and src->last_read.
  // logic_error for inconsistent shapes (a lowering bug).
  MatmulStats schedule(const GatherSpec& spec);
  // Schedules a lookup after everything already placed (same contract as schedule(); updates
  // dst->ready and idx->last_read). logic_error for inconsistent shapes.
  MatmulStats lookup(const LookupSpec& spec);
  // Schedules a combine after everything already placed (same contract; updates dst->ready and
  // each part's last_read). logic_error for inconsistent shapes.
  MatmulStats combine(const CombineSpec& spec);

 private:
  // Re-emits *v, which is at the VXM on cycle t, by a VXM `mov.dt` onto a new stream group moving
  // `out` (a value whose route straddles its destination slices); false if the cycle does not fit.
  bool relay(StreamValue* v, DType dt, Dir out, uint64_t t);

  ScheduleBuilder& b_;
  int vxm_slice_ = -1;
  uint32_t vxm_pos_ = 0;
};

}  // namespace lpu::compiler
