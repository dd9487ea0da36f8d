// GraphLowering: lower_graph's state and steps, private to the passes. lowering.cpp holds the
// driver (the op loop, the folds of a bias Add and a Relu into a dense layer, a Reshape of a graph
// input); lower_eltwise.cpp the elementwise steps and their fusions into fewer VXM passes. The
// other op families have lowerings of their own (attn, norm, conv, forms below).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/passes/lower_attention.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lower_forms.h"
#include "compiler/passes/lower_norm.h"
#include "compiler/passes/lowering.h"
#include "isa/isa.h"

namespace lpu::compiler {

// InputError naming the node, why, and what the back end supports.
[[noreturn]] void unsupported(const ir::Graph& g, const ir::Op& op, const std::string& why);
// The table of elementwise IR ops with one VXM instruction each (f32 compute).
bool eltwise_opcode(ir::OpKind k, Opcode* op);

class GraphLowering {
 public:
  GraphLowering(const ir::Graph& g, uint32_t lanes, const LowerOptions& opt);
  LoweredModel run();

 private:
  bool is_graph_output(ir::TensorId t) const;
  bool single_use(ir::TensorId t) const;
  // Activation input t of op as a stored tensor (a view is materialized); InputError for a
  // constant or a non-float one.
  ir::TensorId activation(const ir::Op& op, ir::TensorId t);
  void lower_reshape(const ir::Op& op);  // folded into the graph input it reshapes
  void lower_add(const ir::Op& op);      // a dense layer's bias, else elementwise
  void lower_relu(const ir::Op& op);     // a dense layer's epilogue relu, else fused or elementwise

  // lower_eltwise.cpp
  // One elementwise step for `op` (InputError if its operands or types are not supported).
  void eltwise(const ir::Op& op);
  // t is a one-element finite constant; *v its value.
  bool one_const(ir::TensorId t, float* v) const;
  // The one elementwise step writing `in` (a plain stored activation read only by its reader), or -1.
  int sole_writer(ir::TensorId in) const;
  // Fusion (d) of lower_eltwise.cpp: a Mul of two activations as a post op of one's writer; returns
  // that step's index, or -1.
  int fuse_product(const ir::Op& op);
  // An elementwise op through the fusions (a)-(d) of lower_eltwise.cpp, else as its own step.
  void fused_eltwise(const ir::Op& op);

  const ir::Graph& g;
  const uint32_t lanes;
  const LowerOptions& opt;
  LoweredModel lm;
  const std::vector<std::vector<int>> consumers;
  std::vector<ir::TensorId> alias;
  std::vector<int> input_index;
  std::vector<int> layer_of;  // Layer producing each tensor (its y), -1 if none.
  std::vector<char> produced;
  AttentionLowering attn;  // views, activation matmuls (lower_attention.h)
  NormLowering norm;       // Softmax, LayerNorm, ReduceSum/Mean (lower_norm.h)
  std::map<ir::TensorId, std::pair<ir::TensorId, float>> deferred_scale;  // Mul output -> (input, c)
  ConvLowering conv;   // Conv, pools and their layout (lower_conv.h)
  FormLowering forms;  // conformance forms (lower_forms.h)
};

}  // namespace lpu::compiler
