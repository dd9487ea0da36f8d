// V's ones column from its projection (docs/compiler/attention.md "Packed heads"): a post-pass
// after the packed and paired heads (lower_attention.h pack_segments, pair_heads.h).
// The packed heads' P.[V|1] products install V1 = max(MV, c): MV is V's rows moved by an SXM lane
// move to their slot's lanes (zeros elsewhere), and c, one constant row a slot, is -inf on the V
// lanes and 1 in the slot's ones lane. That "ones pass" reads, rewrites and stores every V row
// once more (BERT-base: 1,536 vectors a layer). When V's source is a product with constant weights
// read only by lane moves (a fused q|k|v projection), this pass instead:
//   - gives that product a ones column (weight 0, bias 1: exactly 1 at any precision, int8
//     included) in every vector holding V columns. The product's columns are repacked (first fit,
//     widest range first, one lane kept in each vector holding a V range; unread columns fill the
//     free places) into no more column tiles than before, so its installs and `abc` rows do not
//     change. The graph tensor gets a layout (LoweredModel::layouts) and every lane move reading
//     it follows;
//   - makes V's move copy that column to the row's ones lane along with the row's V lanes
//     (LoweredLane::one_cols / one_lanes: one more entry of the same `permute` map), writing V1
//     itself;
//   - drops the ones pass.
// V1's bytes are the pass's (max(v, -inf) = v, max(0, 1) = 1, max(0, -inf or 0) = 0). The
// projection's other columns may move to another column tile, and with it their K-split over the
// MXM planes, so an fp16 projection may differ in its last bit (within its bound), as after
// pair_heads' column reorder.
#pragma once
#include <cstdint>

#include "compiler/ir/graph.h"
#include "compiler/passes/lowering.h"

namespace lpu::compiler {

// Rewrites every ones pass of `lm` that matches (lanes: the chip's vector lanes; runs before
// lm.outputs is listed, so graph outputs are taken from g). Returns the number rewritten.
int ones_in_projection(const ir::Graph& g, LoweredModel* lm, uint32_t lanes);

}  // namespace lpu::compiler
