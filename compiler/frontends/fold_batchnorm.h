// Graph rewrite used by the front ends: BatchNormalization whose input is produced by a Conv (with
// constant weights, no other consumer) is folded into that Conv's weights and bias.
#pragma once
#include "compiler/ir/graph.h"

namespace lpu::frontend {

// W'[m] = W[m] * s[m], B'[m] = (B[m] - mean[m]) * s[m] + beta[m], s = scale / sqrt(var + eps).
// Returns the number of BatchNormalization ops removed. Other BatchNormalization ops are kept.
int fold_batchnorm_into_conv(ir::Graph& g);

}  // namespace lpu::frontend
