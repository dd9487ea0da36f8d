// Forms of supported ONNX ops that the core lowering (lowering.cpp, lower_attention.*, lower_conv.*)
// does not cover, added for ONNX conformance (docs/compiler.md "Other forms"):
//   output copies  a graph output that is a graph input or a constant (Identity, Dropout, Constant,
//                  and Reshape/Flatten/Squeeze/Unsqueeze of a graph input, whose Reshape is folded
//                  into the input's layout) is copied by one VXM pass (read, `mov`/`cvt`, write) so
//                  the output exists on the chip under its own name;
//   Gemm           C of any broadcastable shape (a row constant becomes the matmul's bias; a
//                  matrix C is added by a VXM step after an f32 product) and transA = 1 (a graph
//                  input is laid out transposed by the host, like conv inputs: host_map; an A
//                  computed on the chip is transposed by the Transpose form below);
//   BatchNormalization (inference, not folded into a Conv): y = (x - mean) * s + B, s = scale /
//                  sqrt(var + eps) resolved per channel at compile time: three VXM steps in f32;
//   Where          with a runtime bool condition: a graph input (the host writes it as f16 0/1) or
//                  an Equal of floats (stored f16 0/1: cmpgt both ways, add, sel), activations
//                  broadcast over rows by a row map (an attention mask [B,1,1,S]); `sel` takes c != 0;
//   Concat         along the last axis: one dense step on the MXM whose X is the concatenation of
//                  the activation inputs as column segments (each lands at its lane offset through
//                  an identity weight: exact, one f16 term per output), constant pieces added after
//                  by a VXM step;
//   Transpose      that moves the last axis (not only feeding a MatMul as B): per slice of the
//                  other axes, the slice's rows (gathered contiguous) are installed as MXM weights
//                  transposed (`iwt`) and multiplied by an identity: exact;
//   Gather         with constant indices: along a row axis a row gather (gather_kernel: whole
//                  vectors copied by a row map, no arithmetic), along the last axis a selection
//                  matmul (exact). With runtime indices (a graph input, int64/int32) into a constant
//                  [V, D] table along axis 0 (embedding lookup): MEM `gather`s of the table rows at
//                  per-lane offsets the host writes (LoweredGather::table, LoweredInput::lookup_*).
// Every other op returns false (the core lowering handles it or refuses it).
#pragma once
#include <set>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/passes/lower_attention.h"
#include "compiler/passes/lowering.h"

namespace lpu::compiler {

class FormLowering {
 public:
  // References lower_graph's state (see ConvLowering): `input_index` maps a graph input's tensor id
  // to its index in lm.inputs (-1 otherwise).
  FormLowering(const ir::Graph& g, LoweredModel& lm, std::vector<int>& layer_of, std::vector<char>& produced,
               std::vector<ir::TensorId>& alias, std::vector<int>& input_index, AttentionLowering& attn);
  // Lowers `op` if it is one of the forms above; false otherwise. InputError (naming the node) for
  // a form of these ops that cannot be lowered.
  bool lower(const ir::Op& op);

 private:
  bool output_copy(const ir::Op& op);
  bool gemm(const ir::Op& op);
  void batchnorm(const ir::Op& op);
  bool where(const ir::Op& op);
  bool concat_last(const ir::Op& op);
  bool gather(const ir::Op& op);
  bool lookup(const ir::Op& op);  // Gather with runtime indices (embedding lookup)
  bool equal(const ir::Op& op);
  bool transpose_lanes(const ir::Op& op);
  // Stores the transpose of activation `in` (perm moves the last axis) into `out` of shape `ys`.
  void transposed(const ir::Op& op, ir::TensorId in, const std::vector<int64_t>& perm, ir::TensorId out,
                  const ir::Shape& ys);
  // Row map of an activation operand broadcast over rows to `ys` (empty: same layout); InputError
  // if it would need lanes broadcast.
  std::vector<int64_t> row_broadcast(const ir::Op& op, ir::TensorId t, const ir::Shape& ts, const ir::Shape& ys);

  ir::TensorId fresh(const std::string& name, ir::DType dt, const ir::Shape& shape);
  bool is_graph_input(ir::TensorId t) const;
  bool is_graph_output(ir::TensorId t) const;
  bool conv_layout(ir::TensorId t) const;  // stored [N, H, W, C] (passes/lower_conv.h)
  // A float activation input as a stored tensor (views materialized); InputError otherwise.
  ir::TensorId activation(const ir::Op& op, ir::TensorId t);
  void add_eltwise(LoweredEltwise E, bool maybe_nonfinite);
  void add_layer(LoweredLayer L);

  const ir::Graph& g_;
  LoweredModel& lm_;
  std::vector<int>& layer_of_;
  std::vector<char>& produced_;
  std::vector<ir::TensorId>& alias_;
  std::vector<int>& input_index_;
  AttentionLowering& attn_;
  std::set<ir::TensorId> bool01_;  // bool tensors stored as f16 0/1 (Equal results)
};

}  // namespace lpu::compiler
