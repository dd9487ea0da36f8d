// Output dtype/shape of an IR op from its inputs' dtypes/shapes and its (canonical) attributes.
// Front ends call it while building a graph; the reference interpreter and passes may re-check.
#pragma once
#include <utility>
#include <vector>

#include "compiler/ir/graph.h"

namespace lpu::ir {

struct TensorType {
  DType dtype = DType::F32;
  Shape shape;
  bool operator==(const TensorType& o) const { return dtype == o.dtype && shape == o.shape; }
};

// Numpy (ONNX multidirectional) broadcast of two shapes; throws lpu::InputError naming both shapes
// if they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b);

// Output types of `op` (one per op.outputs). Inputs are read from `g`. Throws lpu::InputError
// naming the op, the offending input/attribute, its value and what is allowed (e.g. rank or dtype
// mismatch, MatMul inner dims differ, Reshape element count changes, a dim that would be <= 0).
std::vector<TensorType> infer_output_types(const Graph& g, const Op& op);

// Spatial output size of a conv/pool window: floor or ceil of (in + pb + pe - dil*(k-1) - 1)/s + 1.
int64_t window_out_dim(int64_t in, int64_t k, int64_t stride, int64_t dil, int64_t pad_begin, int64_t pad_end,
                       bool ceil_mode);

}  // namespace lpu::ir
