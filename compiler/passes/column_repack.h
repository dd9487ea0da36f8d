// Repacking a product's output columns, shared by the passes that rearrange a fused projection for
// the lane moves reading it: pair_heads.h (no q pair across a vector) and ones_in_projection.h
// (a ones column in each vector holding V). Every reader of the product's output must be a lane
// move (the callers check); the values of the moved columns do not change, though a column's
// K-split over the MXM planes (so its f32 summation order) follows its new column tile.
#pragma once
#include <cstdint>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/passes/lowering.h"

namespace lpu::compiler {

// Whether P's columns may be permuted: constant weights (K x N), no row maps, no row copy, no
// fused residual or second output, and its output stored [rows, N].
bool columns_repackable(const ir::Graph& g, const LoweredModel& lm, const LoweredLayer& P);

// Column c of P's output becomes column newcol[c] of a row of N2 >= P.N columns (columns no c maps
// to get weight 0 and bias 0): P's weight and bias columns (an empty bias stays empty), its stored
// shape when N2 != P.N, the graph tensor's layout in lm.layouts (composed with an earlier one),
// and the source columns of the lane moves lm.lanes[i], i in `moves`.
void repack_columns(const ir::Graph& g, LoweredModel& lm, LoweredLayer& P, const std::vector<int64_t>& newcol,
                    int64_t N2, const std::vector<size_t>& moves);

}  // namespace lpu::compiler
