// Lowering of row reductions and normalizations over the last axis (docs/compiler.md "Elementwise
// ops, reductions, normalization"): Softmax, LayerNormalization, ReduceSum and ReduceMean become
// lane steps (LoweredLane: a VXM chain over the row's vectors + an SXM lane all-reduce, the result
// in every lane of one vector per row, backend/lane_kernel.h) and VXM elementwise steps that read
// such per-row results for every chunk (EltOperand::lane_bcast). No constant is bigger than one
// row. A per-row scalar [.., 1] broadcast over the last axis by an elementwise op is an SXM
// `distribute` (row_scalar()). Anything else throws InputError naming the node.
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/passes/lower_attention.h"
#include "compiler/passes/lowering.h"
#include "isa/isa.h"

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
  // sole_writer(t): index into lm.eltwise of the one elementwise step writing t when nothing else
  // writes it and only one op reads it (lowering.cpp), else -1. Lets Softmax fuse its clamp into
  // that step (lower_norm.cpp); unset: never fused.
  void set_sole_writer(std::function<int(ir::TensorId)> f) { sole_writer_ = std::move(f); }
  // A Mul y = x * c by a one-element constant c > 0 (finite) whose output only `softmax`, a
  // Softmax over the last axis, reads (attention's scores times 1/sqrt(d)): when x cannot hold
  // -inf by design (may_hold_neg_inf), records it and returns true, and the caller emits no step
  // for the Mul: the Softmax reads x, takes its row max m (max of c x = c max x for c > 0) and
  // computes e = exp(-relu(c (m - x))) with the muli inside its exp pass (f32, no f16 rounding of
  // x * c: within the reference bound of the Mul + Softmax chain). False: lower the Mul as usual.
  bool defer_scale(ir::TensorId y, ir::TensorId x, float c, const ir::Op& softmax);

 private:
  ir::TensorId fresh(const ir::Op& op, const std::string& suffix, ir::DType dt, const ir::Shape& shape);
  void lane(const ir::Op& op, const std::string& suffix, LoweredLane::Mode mode, ir::TensorId x, ir::TensorId y,
            const ir::Shape& ys, bool y_f32, bool square, std::vector<LoweredLane::Post> post);
  void elt(const ir::Op& op, const std::string& suffix, int vxm_op, std::vector<EltOperand> ops, ir::TensorId y,
           const ir::Shape& ys, bool y_f32);
  // Row maps of a reduction over row axes `axes` (not the last) of xs: terms[j][o] = the input row
  // of output row o for the j-th combination of the reduced coordinates.
  static std::vector<std::vector<int64_t>> row_terms(const ir::Shape& xs, const std::vector<int64_t>& axes);
  // y (stored ys) = the terms of a over `axes` combined by `comb` (add / max / min) on the VXM,
  // one pass per term, partials in acc_dt.
  void combine_rows(const ir::Op& op, const std::string& tag, ir::TensorId a, const ir::Shape& xs,
                    const std::vector<int64_t>& axes, Opcode comb, ir::TensorId y, const ir::Shape& ys, bool y_f32,
                    ir::DType acc_dt);
  // Every Reduce* kind over any axes: lane step for the last axis, VXM passes for row axes.
  // The shape op's axes refer to: its input's graph shape. `a`, the stored tensor it reads, may
  // have another shape with the same rows (a Reshape view of a tensor stored as is).
  ir::Shape op_shape(const ir::Op& op, ir::TensorId a) const;
  void reduce(const ir::Op& op, ir::TensorId a);
  // lower()'s forms over the last axis: ReduceSum / ReduceMean as one lane step (sum_last);
  // Softmax as a row max, one exp pass, a row sum and a divide, or with the sum and divide deferred
  // to P.V (softmax_last; softmax_clamp: x with -inf clamped to -65504 when x may hold -inf, in
  // the step writing x when that is x's only writer); LayerNormalization as two lane steps and
  // one pass (layer_norm).
  void sum_last(const ir::Op& op, ir::TensorId a, const ir::Shape& xs);
  void softmax_last(const ir::Op& op, ir::TensorId a, const ir::Shape& xs, float in_scale);
  ir::TensorId softmax_clamp(const ir::Op& op, ir::TensorId a, const ir::Shape& xs);
  void layer_norm(const ir::Op& op, ir::TensorId a, const ir::Shape& xs);
  // Softmax along a row axis: VXM passes of row-mapped operands.
  void softmax_rows(const ir::Op& op, ir::TensorId a, int64_t axis);
  // A Softmax whose output only a MatMul reads, as its first operand (P.V): the row sum and divide
  // are left to that MatMul (AttentionLowering::defer_softmax).
  bool pv_only_reader(const ir::Op& op) const;
  // Whether graph tensor t may hold -inf by the model's design (a -inf constant, e.g. a causal
  // mask, or a graph input reaching it through elementwise ops and views), as opposed to only by
  // f16 overflow: the walk back from t stops at ops whose results are finite for finite inputs
  // (products, normalizations, reductions, pools); anything not known to keep values finite counts
  // as may.
  bool may_hold_neg_inf(ir::TensorId t) const;
  [[noreturn]] void fail(const ir::Op& op, const std::string& why) const;

  const ir::Graph& g_;
  LoweredModel& lm_;
  std::vector<char>& produced_;
  AttentionLowering& attn_;
  std::function<ir::TensorId(const ir::Op&, ir::TensorId)> activation_;
  std::function<int(ir::TensorId)> sole_writer_;
  std::set<ir::TensorId> all_lane_;  // written by a lane step: the row's value in every lane
  std::map<ir::TensorId, std::pair<ir::TensorId, float>> scaled_;  // defer_scale: Mul output -> (x, c)
};

}  // namespace lpu::compiler
