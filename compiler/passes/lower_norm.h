// Lowering of row reductions and normalizations over the last axis (docs/compiler.md "Elementwise
// ops, reductions, normalization"): Softmax, LayerNormalization, ReduceSum and ReduceMean become
// lane steps (LoweredLane: a VXM chain over the row's vectors + an SXM lane all-reduce, the result
// in every lane of one vector per row, backend/lane_kernel.h) and VXM elementwise steps that read
// such per-row results for every chunk (EltOperand::lane_bcast). No constant is bigger than one
// row. A per-row scalar [.., 1] broadcast over the last axis by an elementwise op is an SXM
// `distribute` (row_scalar()). Anything else throws InputError naming the node.
#pragma once
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/passes/lower_attention.h"
#include "compiler/passes/lowering.h"

namespace lpu::compiler {

class NormLowering {
 public:
  // activation(op, t): t as a stored float activation (InputError otherwise; views materialized).
  NormLowering(const ir::Graph& g, LoweredModel& lm, std::vector<char>& produced, AttentionLowering& attn,
               std::function<ir::TensorId(const ir::Op&, ir::TensorId)> activation);
  // Lowers Softmax, LayerNormalization, ReduceSum, ReduceMean; false for other ops.
  bool lower(const ir::Op& op);
  // A tensor holding the [.., 1] activation `t` in every lane of each row's vector, for an
  // elementwise operand with lane_bcast: `t` itself if a lane step wrote it, else a broadcast step.
  ir::TensorId row_scalar(const ir::Op& op, ir::TensorId t);

 private:
  ir::TensorId fresh(const ir::Op& op, const std::string& suffix, ir::DType dt, const ir::Shape& shape);
  void lane(const ir::Op& op, const std::string& suffix, LoweredLane::Mode mode, ir::TensorId x, ir::TensorId y,
            const ir::Shape& ys, bool y_f32, bool square, std::vector<LoweredLane::Post> post);
  void elt(const ir::Op& op, const std::string& suffix, int vxm_op, std::vector<EltOperand> ops, ir::TensorId y,
           const ir::Shape& ys, bool y_f32);
  // ReduceSum/ReduceMean over one axis that is not the last: VXM adds of row-mapped operands.
  void reduce_rows(const ir::Op& op, ir::TensorId a, int64_t axis);
  [[noreturn]] void fail(const ir::Op& op, const std::string& why) const;

  const ir::Graph& g_;
  LoweredModel& lm_;
  std::vector<char>& produced_;
  AttentionLowering& attn_;
  std::function<ir::TensorId(const ir::Op&, ir::TensorId)> activation_;
  std::set<ir::TensorId> all_lane_;  // written by a lane step: the row's value in every lane
};

}  // namespace lpu::compiler
