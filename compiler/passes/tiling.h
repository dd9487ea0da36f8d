// Tiling pass: cuts tensors into the SRAM layout the kernels read. Activations keep the Program's
// TensorDesc layout ([rows, inner], ceil(inner/lanes) vectors per row), split into row blocks when
// a slice is too small or when spreading rows over several SRAM ports pays; weights are cut into
// lanes x lanes tiles whose rows are spread over several slices (PlacedWeights) and become blobs.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "compiler/backend/placed_tensor.h"
#include "compiler/passes/sram_alloc.h"
#include "isa/program.h"

namespace lpu::compiler {

struct TilingOptions {
  // Tensors with at least this many rows are split into >= port_split_parts row blocks so that
  // concurrent readers/writers use different SRAM ports (0 = never split for ports).
  // Parts hold at least port_split_min_part_rows and at most port_split_max_part_rows rows (the
  // matmul kernel's planes work on rows >= acc_rows / 2 / planes apart: 256 on tsp-v1, so they read
  // and write different parts).
  int64_t port_split_min_rows = 128;
  int64_t port_split_parts = 8;
  int64_t port_split_min_part_rows = 64;
  int64_t port_split_max_part_rows = 256;
  // Slices (per byte plane) a weight matrix's rows are spread over; layout tuning also tries
  // CompileOptions::tune_weight_groups for programs with a tall product.
  uint32_t weight_groups = 8;
  // A product reading X through a view stores only each k-tile's segment rows (place_weights
  // tile_rows); false: whole 320-row tiles (the layout the LLM planner's piece_sram_need models).
  bool pack_view_weights = true;
  // A weight tile with fewer valid columns than loaded rows (the last column tile of N = 768 x 128,
  // a 64-column head tile...) is stored as its columns and installed by the transposed install
  // `iwt` (an [assumed] capability, docs/architecture.md): min(rows, columns) `lw` instead of rows
  // (placed_tensor.h PlacedWeights::trans). Same SRAM either way. false, or a chip config with
  // mxm.transposed_install: false: every tile untransposed.
  bool transpose_narrow_tiles = true;
  // An int8 product's epilogue rows (scale, residual scale) are [1, N] f32 for an install-bound
  // product (schedule_constants.cpp place_epilogue_row) and [column tiles, lanes] in one row block per MXM
  // plane otherwise. true: the per-plane blocks also for an install-bound product of at least
  // port_split_min_rows rows (not for fewer: a batch-1 product drains one row a column tile, and
  // the LLM planner's piece_sram_need mirrors the [1, N] rows of its decode pieces). Which pays
  // depends on the schedule (a product whose drains wait, e.g. on a folded LayerNorm's `.sd`,
  // drains a backlog at once), so layout tuning tries both (CompileOptions::tune_epilogue_rows).
  bool spread_epilogue_rows = false;
  // true: a balanced cut of a product of at least whole_tile_min_rows rows gives each MXM plane
  // whole weight tiles (MatmulSpec::whole_tiles): fewer column tiles whose partial sums meet at
  // the VXM, a less even share of the installs. Which pays depends on the schedule (BERT-base's
  // pieces differ), so layout tuning tries both (CompileOptions::tune_whole_tiles, only in a
  // program with a product of port_split_min_rows rows: never in a decode piece, whose figures the
  // LLM planner's estimates follow). One-row products (a batch-1 classifier head) always may cut:
  // their installs are all they do (the thresholds measured on ResNet-50: docs/compiler/
  // matmul-kernel.md "Whole-tile cuts").
  bool whole_tile_cut = false;
  int64_t whole_tile_min_rows = 2;
};

// Stored rows of a tensor of `shape`: the product of all dims but the last (the chip's [rows, inner]).
int64_t stored_rows(const std::vector<int64_t>& shape);
// True if place_tensor cuts a tensor of `rows` stored rows into row blocks for SRAM ports (so its
// layout depends on port_split_min_part_rows).
bool port_split_applies(const TilingOptions& opt, int64_t rows);

// Places a [rows, inner] view of a tensor of `shape` (inner = last dim). Throws InputError if a
// single row does not fit a slice. part_hint (optional): rows [r0, r1) -> the first cycle that
// part's writes are expected, the allocator's write hint for it (SramAllocator::set_write_hint).
PlacedTensor place_tensor(SramAllocator& alloc, const std::string& name, DType dtype,
                          const std::vector<int64_t>& shape, const TilingOptions& opt,
                          std::vector<int>* alloc_ids,
                          const std::function<uint64_t(int64_t, int64_t)>* part_hint = nullptr);

// Places weights W[K, N] (row-major, `data` holds K*N elements of dtype, little-endian; empty =
// all zero) and appends their initial SRAM image to `blobs`. Only the rows each k-tile loads are
// stored (PlacedWeights): `tile_rows` (one [lo, hi) per k-tile, e.g. the rows of a view segment,
// MatmulKTile::w_lo/w_hi) or by default all 320 (zero past K); rows outside must be zero (logic_error).
// `loaded` (one [lo, hi) per k-tile; default: tile_rows, else the k-tile's valid rows) are the rows
// the kernel loads of an untransposed tile: with opt.transpose_narrow_tiles, on a chip with the
// transposed install (alloc's mxm.transposed_install), a tile of fewer valid columns than that is
// stored transposed (PlacedWeights::trans); rows outside `loaded` must be zero.
PlacedWeights place_weights(SramAllocator& alloc, const std::string& name, DType dtype, int64_t K, int64_t N,
                            const std::vector<uint8_t>& data, const TilingOptions& opt, uint32_t lanes,
                            std::vector<DataBlob>* blobs,
                            const std::vector<std::pair<uint32_t, uint32_t>>* tile_rows = nullptr,
                            const std::vector<std::pair<uint32_t, uint32_t>>* loaded = nullptr);

// Appends the SRAM image of tensor t holding `data` (row-major elements of t.dtype) to `blobs`.
void tensor_blobs(const PlacedTensor& t, const std::vector<uint8_t>& data, uint32_t lanes,
                  std::vector<DataBlob>* blobs);

// TensorDescs of a placed tensor: one per part; a split tensor's parts are named "name.rows_R0_R1" (rows [R0, R1))
// with their own row count as first dimension (the rows of a [rows, inner] view).
std::vector<TensorDesc> tensor_descs(const PlacedTensor& t, TensorRole role);

}  // namespace lpu::compiler
