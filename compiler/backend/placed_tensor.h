// Where a tensor lives in SRAM and when its vectors may be read: the flattened tensor is viewed as
// [rows, inner] with vpr = ceil(inner / lanes) vectors per row (the Program's TensorDesc layout).
// A tensor larger than one slice (or split for SRAM-port parallelism) is stored as row blocks
// ("parts"), each with its own slices (one per byte plane, all on one side of the VXM) and address.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "isa/isa.h"

namespace lpu::compiler {

struct TensorPart {
  int64_t row0 = 0;               // first row of the block
  int64_t rows = 0;
  std::vector<uint16_t> slices;   // slice index per byte plane
  uint32_t addr = 0;              // address of the block's first vector
  uint64_t write_not_before = 0;  // first cycle a write to the block may issue (its SRAM reused)
};

struct PlacedTensor {
  std::string name;
  DType dtype = DType::I8;
  std::vector<int64_t> shape;
  int64_t rows = 0, inner = 0;
  uint32_t vpr = 1;                 // vectors per row
  int64_t part_rows = 0;            // rows per part (the last may hold fewer)
  std::vector<TensorPart> parts;
  std::vector<uint64_t> ready;      // per vector (row * vpr + chunk): first cycle a read may issue
  uint64_t write_not_before = 0;    // first cycle any write may issue: the latest of its parts'
  uint64_t last_read = 0;           // last read issue cycle so far

  const TensorPart& part_of_row(int64_t r) const { return parts[static_cast<size_t>(r / part_rows)]; }
  uint32_t addr_of(int64_t r, uint32_t chunk) const {
    const TensorPart& p = part_of_row(r);
    return p.addr + static_cast<uint32_t>((r - p.row0) * vpr + chunk);
  }
  uint64_t& ready_of(int64_t r, uint32_t chunk) { return ready[static_cast<size_t>(r * vpr + chunk)]; }
  // First cycle a write of row r may issue: its part's SRAM may be reused from a tensor read later
  // than another part's.
  uint64_t write_not_before_row(int64_t r) const { return part_of_row(r).write_not_before; }
};

// Weights of a matmul in the compiler's own layout (a data blob, not a user tensor): W[K, N] cut
// into Kt x Nt tiles of lanes x lanes. Only the rows a k-tile loads are stored (packed): k-tile kt
// holds rows [lo[kt], hi[kt]) (default [0, lanes); a k-tile of X read through a view holds
// only its segment's rows). Row r of tile (kt, nt) is the i-th stored row, i = r - lo[kt],
// kept in group g = i % groups at group_addr[g] + off[kt] + nt * rpg[kt] + i / groups, where rpg[kt]
// = ceil((hi - lo) / groups) vectors per group per tile and off[kt] = Nt * (rpg[0] + .. + rpg[kt-1]);
// so consecutive weight rows come from different SRAM ports and unused rows take no SRAM.
// A transposed tile (trans[kt * Nt + nt], a narrow column tile: fewer valid columns than loaded
// rows) is stored as its columns instead: stored row j (shadow row j, i = j in the formula above)
// holds column nt * lanes + j of W over the tile's lanes, and the install `iwt` transposes it back,
// so loading it takes one `lw` per column instead of one per row. It uses the same SRAM as the
// untransposed tile (its columns are fewer than that tile's stored rows).
struct PlacedWeights {
  std::string name;
  DType dtype = DType::I8;
  int64_t K = 0, N = 0;
  uint32_t Kt = 0, Nt = 0;
  uint32_t groups = 1;
  std::vector<uint32_t> lo, hi, rpg, off;           // per k-tile (see above)
  std::vector<char> trans;                          // per tile (kt * Nt + nt), empty = none
  uint32_t vectors_per_group = 0;                   // Nt * sum(rpg)
  std::vector<std::vector<uint16_t>> group_slices;  // per group: slice per byte plane
  std::vector<uint32_t> group_addr;
  uint32_t valid_rows(uint32_t kt, uint32_t lanes) const {
    const int64_t left = K - static_cast<int64_t>(kt) * lanes;
    return static_cast<uint32_t>(left < lanes ? left : lanes);
  }
  uint32_t valid_cols(uint32_t nt, uint32_t lanes) const {
    const int64_t left = N - static_cast<int64_t>(nt) * lanes;
    return static_cast<uint32_t>(left < lanes ? left : lanes);
  }
  bool transposed(uint32_t kt, uint32_t nt) const { return !trans.empty() && trans[kt * Nt + nt]; }
  // True if row r of k-tile kt is stored (rows outside [lo, hi) are zero and must not be loaded).
  bool stored(uint32_t kt, uint32_t r) const { return r >= lo[kt] && r < hi[kt]; }
  // Where loaded row r of tile (kt, nt) is: a weight row, or a column of a transposed tile.
  uint32_t index_of(uint32_t kt, uint32_t nt, uint32_t r) const { return transposed(kt, nt) ? r : r - lo[kt]; }
  const std::vector<uint16_t>& slices_of(uint32_t kt, uint32_t nt, uint32_t r) const {
    return group_slices[index_of(kt, nt, r) % groups];
  }
  uint32_t addr_of(uint32_t kt, uint32_t nt, uint32_t r) const {
    const uint32_t i = index_of(kt, nt, r);
    return group_addr[i % groups] + off[kt] + nt * rpg[kt] + i / groups;
  }
};

}  // namespace lpu::compiler
