// Helpers the scheduling pass's files share (schedule_run.h lists them).
#pragma once

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "compiler/backend/lane_kernel.h"
#include "compiler/backend/matmul_kernel.h"
#include "compiler/ir/dtype.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/tiling.h"
#include "isa/chip_config.h"

namespace lpu::compiler::schedule_detail {

// The lane kernel's mode of a lowered lane step (the two enums are separate so that passes/ does
// not depend on backend/; this mapping is the one place that joins them).
inline LaneMode lane_mode(LoweredLane::Mode m) {
  switch (m) {
    case LoweredLane::Mode::Max:
      return LaneMode::Max;
    case LoweredLane::Mode::Sum:
      return LaneMode::Sum;
    case LoweredLane::Mode::Broadcast:
      return LaneMode::Broadcast;
    case LoweredLane::Mode::Move:
      return LaneMode::Move;
  }
  throw std::logic_error("lane_mode: unknown lowered lane mode");
}

inline void add_stats(MatmulStats* a, const MatmulStats& b) {
  a->abc += b.abc;
  a->lw += b.lw;
  a->iw += b.iw;
  a->acc += b.acc;
  a->reads += b.reads;
  a->writes += b.writes;
  a->vxm += b.vxm;
  a->first_issue = std::min(a->first_issue, b.first_issue);
  a->last_end = std::max(a->last_end, b.last_end);
}

// Rows of a dense step's output (its M): the tap rows' or row map's count, else X's stored rows
// (LoweredModel::stored_shape: a 1x1 conv's X is stored [H W, C] for an IR shape [1, C, H, W]).
inline int64_t product_rows(const ir::Graph& g, const LoweredModel& lm, const LoweredLayer& L) {
  if (!L.tap_rows.empty()) return static_cast<int64_t>(L.tap_rows[0].size());
  if (!L.x_rows.empty()) return static_cast<int64_t>(L.x_rows.size());
  return stored_rows(lm.stored_shape(g, L.x));
}

// Whether a product of M rows is tall: at least tiling.port_split_min_rows rows (0: none is).
inline bool tall_rows(const TilingOptions& tiling, int64_t M) {
  return tiling.port_split_min_rows > 0 && M >= tiling.port_split_min_rows;
}

// Whether TilingOptions::spread_epilogue_rows applies to a product of M rows: it spreads the rows
// of an install-bound product (which keeps [1, N] otherwise) of at least port_split_min_rows rows.
inline bool spread_applies(const ChipConfig& cfg, const TilingOptions& tiling, int64_t M) {
  return tall_rows(tiling, M) && install_bound_rows(cfg, M, DType::I8);
}

// Whether TilingOptions::whole_tile_cut applies to a product of M rows (MatmulSpec::whole_tiles).
inline bool whole_tiles_apply(const TilingOptions& tiling, int64_t M) {
  return tiling.whole_tile_cut && M >= tiling.whole_tile_min_rows;
}

}  // namespace lpu::compiler::schedule_detail
