// Row-gather kernel: copies whole vectors of a source tensor into a destination tensor following a
// row map, with no arithmetic (the im2col step of a convolution, docs/compiler.md "Convolution").
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
};

// Embedding lookup with runtime indices (docs/compiler.md "Other forms"): dst row r = table row
// id_r, where idx row r (one i16 vector) holds id_r * table.vpr in every lane. Per dst vector c and
// byte plane b: a MEM `gather` on the table's plane-b slice at address table.addr + c reads lane i
// from address + idx[i] (the index vector is read onto a stream pair and carried to that slice,
// through a VXM `mov` when its planes straddle the slice), and its one-byte result is written to
// dst's plane-b slice. The table must be one part (every row on the same slices).
struct LookupSpec {
  std::string name;
  PlacedTensor* idx = nullptr;          // [T, lanes] i16 row offsets (host-written input)
  const PlacedTensor* table = nullptr;  // [V, D] constant, one part
  PlacedTensor* dst = nullptr;          // [T, D], table's dtype
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

 private:
  ScheduleBuilder& b_;
  int vxm_slice_ = -1;
  uint32_t vxm_pos_ = 0;
};

}  // namespace lpu::compiler
