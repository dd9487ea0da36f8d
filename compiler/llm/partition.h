// Partition planner: how many chips an LLM needs and what each holds. A model is cut into pieces
// in execution order (per layer: Attention, Ffn; then the LM head); each piece is split
// tensor-parallel over `tp` chips (heads / FFN columns / experts; the LM head over vocab columns)
// and consecutive pieces are packed into pipeline stages of tp chips each, so that every chip's
// weights + KV cache + activation working set fit its SRAM with a safety margin. A stage boundary
// may fall between a layer's Attention and its Ffn (finer packing than whole layers). An LM head
// whose shard would exceed a quarter of a chip's usable SRAM is cut into parts (consecutive pieces,
// each a vocab slice): the compiler's SRAM allocator needs contiguous room per weight group.
// The working set is an ESTIMATE (the compiler's real SRAM use is known only after compiling):
// the larger of prefill and decode of x, norms, f32 partials, FFN intermediates, q/k/v and the
// attention scores of ONE head (heads are computed one after another, their SRAM reused);
// the margin absorbs it and compile() reports an InputError if a piece still does not fit.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/llm/llm_config.h"
#include "compiler/llm/segments.h"
#include "isa/chip_config.h"

namespace lpu::llm {

enum class WeightPrecision { FP16, INT8 };  // bytes per weight: 2 / 1 (capacity and MXM rate)
int weight_bytes(WeightPrecision p);
std::string precision_name(WeightPrecision p);  // "fp16" / "int8"

struct PlanRequest {
  WeightPrecision precision = WeightPrecision::FP16;
  int64_t batch = 1;          // sequences served together
  int64_t prompt = 1;         // prompt length P (prefill)
  int64_t context = 0;        // decode context C; the KV cache is sized for max(P, C + 1) per sequence
  int64_t chips = 0;          // 0: the fewest chips that fit; else exactly this many (InputError if not)
  int64_t tp = 0;             // 0: the planner chooses; else this tensor-parallel size (must be valid_tp)
  double margin = 0.05;       // fraction of each chip's SRAM kept free [assumed planner policy]
};

// One piece of the model in execution order.
struct PlanPiece {
  SegmentKind kind = SegmentKind::Attention;
  int64_t layer = 0;          // -1 for the LM head
  int64_t tp = 1;             // chips it runs on (ranks 0..tp-1 of the stage)
  int64_t shard_size = 1;     // Shard::size of its graphs (LM head in parts: tp x parts; else tp)
  int64_t part = 0;           // LM head / FFN cut into parts: which part (ranks part*tp .. part*tp+tp-1 of shard_size)
  uint64_t weight_bytes = 0;  // per chip
  uint64_t kv_bytes = 0;      // per chip (Attention: this layer's KV cache shard)
};

struct StagePlan {
  std::vector<size_t> pieces;  // indices into Plan::pieces, consecutive
  uint64_t weight_bytes = 0, kv_bytes = 0, work_bytes = 0;  // per chip of the stage
  uint64_t total() const { return weight_bytes + kv_bytes + work_bytes; }
};

struct Plan {
  int64_t tp = 1;
  int64_t chips = 0;              // tp x stages
  int64_t requested_chips = 0;    // PlanRequest::chips (0 = fewest)
  uint64_t sram_per_chip = 0;     // capacity
  uint64_t usable_per_chip = 0;   // capacity x (1 - margin)
  uint64_t work_bytes = 0;        // activation working-set estimate per chip (reused by every piece)
  std::vector<PlanPiece> pieces;
  std::vector<StagePlan> stages;
  std::string describe() const;   // multi-line summary, deterministic
};

// Tensor-parallel sizes the model allows on this chip: t <= chips_per_node and t <= c2c links,
// dividing heads, kv_heads, ffn (and experts for MoE). Ascending; always contains 1.
std::vector<int64_t> valid_tp(const LlmConfig& m, const ChipConfig& chip);

// Plans `m` on chips of `chip`. InputError naming the numbers (needed vs usable per chip) if the
// request cannot fit (e.g. --chips too small, or one piece larger than a chip even at the largest tp).
Plan plan_partition(const LlmConfig& m, const PlanRequest& req, const ChipConfig& chip);

}  // namespace lpu::llm
