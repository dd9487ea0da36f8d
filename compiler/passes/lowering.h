// Lowering pass: matches the IR graph onto the back end's kernels: dense layers
// y = relu?(x . W + b) from MatMul/Gemm with a constant weight, an optional Add of a constant bias
// and an optional Relu (folded into the matmul's VXM epilogue); every other elementwise op of the
// table in lowering.cpp becomes one VXM elementwise step; ReduceSum/ReduceMean, Softmax and
// LayerNormalization over the last axis become matmuls by constant matrices (ones, permutations)
// plus VXM steps, with intermediates in `extra`; Reshape of a graph input is folded into the
// input's shape (same row-major bytes). Anything else throws InputError naming the op and what
// is supported.
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
  std::vector<int64_t> y_shape;  // shape the chip stores y in (empty: y's graph shape)
  bool y_f32 = false;            // store a hidden y as f32 (default: f16)
};

// An operand of an elementwise step: an activation of the output's shape, or a constant resolved
// (numpy broadcasting) to `const_rows` rows of the output's last dimension: 1 row broadcast to all
// rows (a per-row vector or a scalar), or one row per output row.
struct EltOperand {
  ir::TensorId act = ir::kNoTensor;  // activation (kNoTensor: constant)
  std::vector<float> values;         // constant: const_rows x inner, row-major
  int64_t const_rows = 0;
};

// One elementwise op on the VXM: y = op(operands) with one VXM instruction (f32), or none (a Cast
// between float types). `vxm_op` is an lpu::Opcode value.
struct LoweredEltwise {
  std::string name;  // the IR op's name
  ir::OpKind kind = ir::OpKind::Add;
  bool has_op = true;
  int vxm_op = 0;    // lpu::Opcode (Select: operands are cond, a, b)
  std::vector<EltOperand> operands;
  ir::TensorId y = ir::kNoTensor;
  std::vector<int64_t> y_shape;  // shape the chip stores y in (empty: y's graph shape)
  bool y_f32 = false;            // store a hidden y as f32 (default: f16)
};

// Execution order of the lowered steps: layers[index] or eltwise[index].
struct LoweredStep {
  bool dense = true;
  size_t index = 0;
};

struct LoweredInput {
  ir::TensorId id = ir::kNoTensor;  // graph input
  std::vector<int64_t> shape;       // shape the chip sees (a folded Reshape's output shape)
  ir::TensorId alias = ir::kNoTensor;  // tensor the layers read (the Reshape output), or id
};

struct LoweredModel {
  std::vector<LoweredInput> inputs;
  std::vector<LoweredLayer> layers;
  std::vector<ir::TensorId> outputs;  // graph outputs (each some layer's or step's y)
  std::vector<LoweredEltwise> eltwise;
  std::vector<LoweredStep> steps;     // all layers and eltwise steps in graph order
  // Tensors the lowering introduced (intermediates of an op split into several steps); their ids
  // continue the graph's: id = g.tensors().size() + index.
  std::vector<ir::Tensor> extra;
  const ir::Tensor& tensor(const ir::Graph& g, ir::TensorId id) const {
    const size_t n = g.tensors().size();
    return static_cast<size_t>(id) < n ? g.tensor(id) : extra.at(static_cast<size_t>(id) - n);
  }
};

LoweredModel lower_graph(const ir::Graph& g);

}  // namespace lpu::compiler
