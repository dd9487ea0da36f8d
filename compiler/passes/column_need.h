// Column need order of a product (docs/compiler/matmul-kernel.md "Column need order"): which of a
// dense step's output column tiles the program reads first. A fused projection whose columns feed
// different steps (an attention piece's q|k|v: q and K moves before the score products, V's only
// before P.V) gains when every MXM plane starts on tiles read early; the balanced cut deals its
// column tiles in this order (backend/matmul_kernel.h MatmulSpec::col_rank).
#pragma once
#include <cstdint>
#include <vector>

#include "compiler/passes/lowering.h"

namespace lpu::compiler {

// For the dense step at position `pos` of lm.steps: per column tile (`lanes` columns) of its
// output y, the position of the first later step reading a column of that tile (tiles nothing
// reads: lm.steps.size()). A lane Move reads only its rows' column ranges and a product reading y
// as column segments only those segments; every other reader reads all of y. Empty when every tile
// has the same first reader (or y has one tile): the natural order is then as good.
std::vector<uint32_t> column_need(const LoweredModel& lm, const StepUses& uses, size_t pos, uint32_t lanes);

}  // namespace lpu::compiler
