// Lowering pass: matches the IR graph onto the back end's kernels. Today that is a chain of dense
// layers: y = relu?(x . W + b) from MatMul/Gemm with a constant weight, an optional Add of a
// constant bias and an optional Relu; Reshape of a graph input is folded into the input's shape
// (same row-major bytes). Anything else throws InputError naming the op and what is supported.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace lpu::compiler {

struct LoweredLayer {
  std::string name;              // name of the matmul op
  ir::TensorId x = ir::kNoTensor;  // activation input (a graph input or an earlier layer's y)
  ir::TensorId y = ir::kNoTensor;  // final output of the layer (after bias and relu)
  int64_t K = 0, N = 0;
  std::vector<float> w;          // K x N row-major (Gemm transB and alpha folded in)
  std::vector<float> bias;       // N values, empty if none (Gemm beta folded in)
  bool relu = false;
};

struct LoweredInput {
  ir::TensorId id = ir::kNoTensor;  // graph input
  std::vector<int64_t> shape;       // shape the chip sees (a folded Reshape's output shape)
  ir::TensorId alias = ir::kNoTensor;  // tensor the layers read (the Reshape output), or id
};

struct LoweredModel {
  std::vector<LoweredInput> inputs;
  std::vector<LoweredLayer> layers;
  std::vector<ir::TensorId> outputs;  // graph outputs (each some layer's y)
};

LoweredModel lower_graph(const ir::Graph& g);

}  // namespace lpu::compiler
