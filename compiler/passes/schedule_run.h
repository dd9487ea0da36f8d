// ModelScheduler: the working state of one schedule_model call (schedule.h has the contract),
// private to the scheduling pass. Its parts:
//   schedule.cpp            the driver: graph inputs, the precision notes, the layout rules, the
//                           step loop, each step's span, outputs listed and dead tensors released;
//   schedule_constants.cpp  every constant placed before any activation (weights, epilogue rows,
//                           lookup tables, masks, elementwise constants, zero rows);
//   schedule_steps.cpp      one step of each kind on its kernel (lookup, gather, lane, row copy,
//                           product, elementwise).
// Field names are schedule_model's arguments and locals as they were; everything lives for one call.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compiler/backend/elementwise_kernel.h"
#include "compiler/backend/gather_kernel.h"
#include "compiler/backend/lane_kernel.h"
#include "compiler/passes/schedule.h"

namespace lpu::compiler {

class ModelScheduler {
 public:
  ModelScheduler(const ir::Graph& g, const LoweredModel& lm, ScheduleBuilder& b, SramAllocator& alloc,
                 const TilingOptions& tiling, bool keep_intermediates, const QuantPlan* quant,
                 const std::vector<MatmulDecision>* matmul_replay);
  ScheduledModel run();

 private:
  // schedule.cpp
  void place_inputs();
  void note_precision();
  void layout_rules();                            // wide_x, pool_rows
  TilingOptions tiling_of(ir::TensorId t) const;  // the tiling with t's layout rules applied
  float inv_scale(ir::TensorId t) const;          // 1 / the i8 scale of t (an on-chip quantization's muli)
  bool as_copy(size_t li) const;                  // a row copy layer that stays one (f16 both ends)
  void add_step(const MatmulStats& s);            // a kernel's figures into the model's and the step's
  void record_span(size_t si, const MatmulStats& before);
  void finish_step(size_t si, ir::TensorId yid);  // outputs listed, dead activations released
  // A step's fused quantized copy of its y (LoweredLayer::y2, LoweredEltwise::y2): an i8 tensor of
  // y's stored shape, placed before the step; keep_copy lists and records it after the step.
  struct Copy {
    PlacedTensor t;
    ir::TensorId id = ir::kNoTensor;
  };
  Copy place_copy(const std::string& step, ir::TensorId id, const std::vector<int64_t>& shape, bool y_i8);
  void keep_copy(Copy& c);

  // schedule_constants.cpp
  using RowRanges = std::vector<std::pair<uint32_t, uint32_t>>;
  void place_constants();
  void place_zero(size_t si, DType dt, int64_t inner);
  void place_epilogue_row(const LoweredLayer& L, bool i8, const std::string& name,
                          const std::vector<float>& vals, PlacedTensor* out);
  void place_layer_weights(size_t si, const LoweredLayer& L, int64_t K, DType dt,
                           const std::vector<uint8_t>& bytes, const LayerQuant* q, const RowRanges* rows);
  void lookup_table_constants(size_t si);
  void lane_constants(size_t si);
  void dense_constants(size_t si);
  void eltwise_constants(size_t si);

  // schedule_steps.cpp: each returns the tensor the step writes.
  ir::TensorId lookup_step(size_t si);
  ir::TensorId gather_step(size_t si);
  ir::TensorId lane_step(size_t si);
  ir::TensorId dense_step(size_t si);
  void copy_rows(size_t si, PlacedTensor& x, PlacedTensor& y);
  void product(size_t si, PlacedTensor& x, PlacedTensor& y);
  ir::TensorId eltwise_step(size_t si);

  const ir::Graph& g;
  const LoweredModel& lm;
  ScheduleBuilder& b;
  SramAllocator& alloc;
  const TilingOptions& tiling;
  const bool keep_intermediates;
  const QuantPlan* quant;
  const uint32_t lanes;
  MatmulScheduler mm;
  EltwiseScheduler ew;
  GatherScheduler gather;
  LaneScheduler lane;
  ScheduledModel res;
  std::map<ir::TensorId, PlacedTensor> placed;  // ordered by id: deterministic
  std::map<ir::TensorId, std::vector<int>> alloc_ids;
  // Constants per step (place_constants): weights, epilogue bias / scale / i8-residual scale rows,
  // the step's other constants (lookup table parts, lane masks, elementwise operands), a zero row.
  std::vector<PlacedWeights> weights;
  std::vector<PlacedTensor> biases, scales, rscales;
  std::vector<std::vector<PlacedTensor>> consts;
  std::vector<PlacedTensor> zeros;
  std::map<ir::TensorId, int64_t> wide_x;     // tensor (X or Y) -> rows per block (layout_rules)
  std::map<ir::TensorId, int64_t> pool_rows;  // tensor -> max rows per block (layout_rules)
  StepUses uses;                              // for the products' column need order (column_need.h)
  uint64_t step_first = UINT64_MAX;           // this step's first issue (StepSpan::start)
  uint64_t step_end = 0;                      // this step's own last landing (StepSpan::own_end)
};

}  // namespace lpu::compiler
