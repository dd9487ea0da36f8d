// Scheduling pass: places the lowered layers on the chip in order. Allocates every activation,
// weight and bias (tiling + SRAM allocation), runs the matmul kernel per layer on one shared
// ScheduleBuilder (so a layer's weight loads overlap the previous layer's compute), releases dead
// activations, and collects the SRAM image and the Program's tensor table.
#pragma once
#include <string>
#include <vector>

#include "compiler/backend/matmul_kernel.h"
#include "compiler/backend/schedule_builder.h"
#include "compiler/ir/graph.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/passes/sram_alloc.h"
#include "compiler/passes/tiling.h"
#include "isa/program.h"

namespace lpu::compiler {

// Per-step profile (bench/bench_conv_layers.cpp): the step's name and kind, the program's end
// (running maximum of every placed instruction's landing) after it was scheduled, so
// end_after[i] - end_after[i - 1] is what step i added to the program's length, and its MXM work.
struct StepSpan {
  std::string name;
  char kind = 'd';  // 'd' dense, 'g' gather/copy/lookup, 'l' lane, 'e' elementwise
  uint64_t end_after = 0, abc = 0, lw = 0, reads = 0, writes = 0;
  uint64_t vxm = 0;    // VXM instructions the step issued
  uint64_t start = 0;  // cycle of the step's first issued instruction (its pass spans start..last end)
  uint64_t own_end = 0;  // the step's own last landing (end_after is the program's, over all steps so far)
};

struct ScheduledModel {
  std::vector<DataBlob> blobs;          // weights and biases
  std::vector<TensorDesc> descs;        // graph inputs and outputs
  std::vector<std::string> diagnostics;
  uint64_t macs = 0;
  MatmulStats stats;
  std::vector<StepSpan> spans;          // one per lowered step, in schedule order
  std::vector<MatmulDecision> matmul_decisions;  // every product's timing-dependent plan, in order
};

// True if TilingOptions::spread_epilogue_rows changes the layout of `lm` under `quant`: an int8
// product of at least tiling.port_split_min_rows rows is install-bound (install_bound_rows), so it
// keeps [1, N] epilogue rows by default.
bool epilogue_rows_spreadable(const ir::Graph& g, const LoweredModel& lm, const ChipConfig& cfg, const QuantPlan* quant,
                              const TilingOptions& tiling);

// True if some product of `lm` (not a row copy) has at least tiling.port_split_min_rows rows: a
// prefill-sized product, whose schedule TilingOptions::whole_tile_cut may change (whether its cut
// splits a tile is known only when it is scheduled) and whose layout tuning also tries further
// weight group counts (CompileOptions::tune_whole_tiles, tune_weight_groups). Batch-1 decode
// pieces have none, so their programs and the LLM planner's figures stay as they are.
bool has_tall_product(const ir::Graph& g, const LoweredModel& lm, const TilingOptions& tiling);

// keep_intermediates (CompileOptions::keep_intermediates): no activation is released (no SRAM
// reuse) and every step's result is listed in the tensor table as an Output tensor, so a
// functional simulation exposes every intermediate (`lpusim check`, docs/compiler.md "Precision").
// fp16 data path: inputs/weights f16, accumulation and bias f32, hidden activations f16, outputs f32.
// quant (int8, passes/quantize.h): its int8 layers get i8 weights, an f32 scale row and an f32 bias,
// and its i8 tensors (inputs included) are stored i8; everything else stays fp16.
// matmul_replay (if given): the products take these decisions (MatmulScheduler::set_decisions)
// instead of choosing, e.g. another compile's ScheduledModel::matmul_decisions.
ScheduledModel schedule_model(const ir::Graph& g, const LoweredModel& lm, ScheduleBuilder& b, SramAllocator& alloc,
                              const TilingOptions& tiling, bool keep_intermediates = false,
                              const QuantPlan* quant = nullptr,
                              const std::vector<MatmulDecision>* matmul_replay = nullptr);

}  // namespace lpu::compiler
