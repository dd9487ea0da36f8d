// Paired heads (docs/compiler/attention.md "Paired heads"): a post-pass over a lowered attention
// piece whose heads are already packed (lower_attention.h pack_segments). Each head's q.K^T used
// d of the MXM's weight rows and T columns, its P.V T rows: two heads fit one weight tile, so a
// PAIR of heads (2p, 2p + 1) runs as one product of each kind and shares every score row:
//   - q: head 2p's and 2p + 1's q columns side by side (one lane move a pair row, width 2 d); when
//     a pair's q columns cross a vector of the fused projection, that projection's columns are
//     reordered first (its weight and bias columns, and every lane move reading it);
//   - K: head h's rows moved to lanes d (h % 2) (zeros elsewhere), so the pair's 2 T token rows
//     installed transposed are block-diagonal: one `abc` a score row gives [s_a | s_b] (the other
//     head's q lanes meet zero weights);
//   - the Softmax's row max runs on the paired row in two segments of T lanes
//     (LoweredLane::segment) and its exp on T x 2 lanes a row: half the rows;
//   - P.V: the paired e row [e_a | e_b] times the pair's 2 T rows of the packed V|1 (head a's V at
//     its slot's lanes, b's at its own): one product of K = 2 T gives both heads' outputs and row
//     sums, and the packed sum adds G / 2 pair rows a group instead of G head rows.
// Half the `abc` rows of both products, half the max's and exp's rows, half the q moves. Every
// value is the same as one product a head (the extra terms are exact zeros), except after a column
// reorder: a column's K-split over the MXM planes (so its f32 summation order) follows its column
// tile, which may change, and with it the projection's last bit (within its bound). The graph tensors
// stored paired (the projection's output, the stacked q and K, the scores) are listed in
// LoweredModel::layouts for the step checks.
// Applies when: the heads are even in number, 2 T and 2 d fit a vector, the heads are packed (at
// least 32 rows a head: prefill), and the pattern matches exactly (otherwise the model is left as
// it is).
#pragma once
#include <cstdint>

#include "compiler/ir/graph.h"
#include "compiler/passes/lowering.h"

namespace lpu::compiler {

// Rewrites every matching attention in `lm` (lanes: the chip's vector lanes). Returns the number of
// attentions paired.
int pair_heads(const ir::Graph& g, LoweredModel* lm, uint32_t lanes);

}  // namespace lpu::compiler
