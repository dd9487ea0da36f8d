// Partition planner: how many chips an LLM needs and what each holds. A model is cut into pieces
// in execution order (per layer: Attention, Ffn; then the LM head); each piece is split
// tensor-parallel over `tp` chips (heads / FFN columns / experts; the LM head over vocab columns;
// a group of tp chips is one node or several whole nodes, collective.h)
// and consecutive pieces are packed into pipeline stages of tp chips each, so that every chip's
// weights + KV cache + activation working set fit its SRAM with a safety margin. A stage boundary
// may fall between a layer's Attention and its Ffn (finer packing than whole layers). An LM head
// whose shard would exceed a quarter of a chip's usable SRAM is cut into parts (consecutive pieces,
// each a vocab slice): the compiler's SRAM allocator needs contiguous room per weight group.
// The working set is an ESTIMATE (the compiler's real SRAM use is known only after compiling):
// the larger of prefill and decode of x, norms, f32 partials, FFN intermediates, q/k/v and the
// attention scores of ONE head (heads are computed one after another, their SRAM reused);
// the margin absorbs it and compile() reports an InputError if a piece still does not fit.
// Separately, a tp is only chosen if every piece's OWN compiled program fits one chip as the
// compiler lays it out (PlanPiece::compile_bytes, piece_sram_need: 320x320 weight tiles, so a
// per-head [hidden, 128] projection costs 2.5x its parameters); stage packing counts parameters.
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

constexpr int64_t kMaxInFlight = 4096;  // PlanRequest::in_flight limit (an input bound, not a chip number)

struct PlanRequest {
  WeightPrecision precision = WeightPrecision::FP16;
  int64_t batch = 1;          // sequences served together
  int64_t in_flight = 1;      // groups of `batch` sequences in flight through the pipeline stages, each
                              // with its own KV cache on every chip (system/pipeline_serving.h)
  int64_t prompt = 1;         // prompt length P (prefill)
  int64_t context = 0;        // decode context C; the KV cache is sized for max(P, C + 1) per sequence
  int64_t chips = 0;          // 0: the fewest chips that fit; else exactly this many (InputError if not)
  int64_t tp = 0;             // 0: the planner chooses; else this tensor-parallel size (must be valid_tp)
                              // (plan_candidates lists the sizes that fit; plan_partition returns the
                              // capacity default, the largest of them; system::run_llm picks among
                              // them by the composed token time: docs/llm-system.md "Choosing the split")
  double margin = 0.05;       // fraction of each chip's SRAM kept free [assumed planner policy]
  bool all_splits = false;    // system::choose_split composes every candidate, none pruned by its install
                              // bound (the reports then give every split's step; the choice is the same)
};

// One piece of the model in execution order.
struct PlanPiece {
  SegmentKind kind = SegmentKind::Attention;
  int64_t layer = 0;          // -1 for the LM head
  int64_t tp = 1;             // chips it runs on (ranks 0..tp-1 of the stage)
  int64_t shard_size = 1;     // Shard::size of its graphs (LM head in parts: tp x parts; else tp)
  int64_t part = 0;           // LM head / FFN cut into parts: which part (ranks part*tp .. part*tp+tp-1 of shard_size)
  uint64_t weight_bytes = 0;  // per chip
  uint64_t matrix_weights = 0;  // per chip: weights of its projection matrices (installed on the MXM once
                                // per step; norms, biases and the router left out): install_bound_cycles
  uint64_t kv_bytes = 0;      // per chip (Attention: this layer's KV cache shard)
  // An encoder's last piece (kind LmHead, layer -1): only the LayerNorm that ends its last layer,
  // i.e. the encoder's output (bert is post-LN and each LayerNorm starts the piece after it, so
  // the last one needs a piece of its own; no task head is modelled). SegmentSpec::norm_only.
  bool norm_only = false;
  // SRAM the piece's own compiled program needs on one chip, laid out as the compiler's allocator
  // places it (piece_sram_need): every weight matrix in whole 320x320 tiles (an attention head's
  // [hidden, head_dim 128] projection takes a 320-wide tile: 2.5x its parameters), the RoPE twin
  // projections, the KV cache inputs one vector per row, plus the working set. A tp where some
  // piece needs more than the usable SRAM is rejected (its graph would not compile).
  uint64_t compile_bytes = 0;
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

// Tensor-parallel sizes the model allows on this chip: t that the all-reduce can connect
// (collective.h link_plan: up to one node, or whole nodes of one rack as far as the C2C links go),
// dividing heads; dividing kv_heads, or a multiple of kv_heads (KV-head replication, segments.h);
// dense: dividing ffn; MoE: dividing the experts, or a multiple of them whose quotient divides ffn
// (expert column split). Ascending; always contains 1.
std::vector<int64_t> valid_tp(const LlmConfig& m, const ChipConfig& chip);

// The LM head's tensor-parallel size on a stage of `tp` chips: the largest divisor of the vocab <= tp.
int64_t head_tp(const LlmConfig& m, int64_t tp);

// SRAM bytes (all byte planes) the compiler gives a [K, N] weight matrix of `bytes_per_weight`:
// place_weights (compiler/passes/tiling.cpp) stores it in ceil(K/320) x ceil(N/320) tiles of 320
// rows of one vector, the rows spread over `groups` slices (rows per group rounded up).
uint64_t placed_weight_bytes(int64_t K, int64_t N, int64_t bytes_per_weight, const ChipConfig& chip);

// What the compiled graph of piece `p` needs in one chip's SRAM (PlanPiece::compile_bytes without
// the working set): padded weights (+ int8 scales), the KV cache inputs and one kv head's cache
// copies (Concat and K^T) at `r`'s decode context, one vector per row of head_dim.
uint64_t piece_sram_need(const LlmConfig& m, const PlanRequest& r, const PlanPiece& p, const ChipConfig& chip);

// Every plan the request allows, one per tensor-parallel size, largest tp first: with req.tp, that
// size; with req.chips, each valid tp dividing it whose pieces fit in chips / tp stages (a plan may
// use fewer); with neither, each tp whose fewest-chips plan needs the overall fewest chips. The
// capacity planner cannot tell which is fastest (that needs the pieces' cycles: system::run_llm
// composes them). InputError naming the numbers (needed vs usable per chip) if none fits (e.g.
// --chips too small, or one piece larger than a chip even at the largest tp).
std::vector<Plan> plan_candidates(const LlmConfig& m, const PlanRequest& req, const ChipConfig& chip);

// The capacity default: plan_candidates(...).front(), the largest tp that fits (fewer stages, each
// token's weight installs spread over more chips). For answers without compiling (--phase plan).
Plan plan_partition(const LlmConfig& m, const PlanRequest& req, const ChipConfig& chip);

// A lower bound on the cycles of one step of `plan` (any phase): every projection weight of a chip
// is installed on its MXM at least once per step, at most one lw row of vector_bytes weights per
// MXM plane per lw occupancy, and the pieces along the pipeline run one after another (so the
// bound is the sum over pieces of PlanPiece::matrix_weights / that rate). system::run_llm relies on
// it to skip splits that cannot win, and checks it against every step it composes.
uint64_t install_bound_cycles(const Plan& plan, const ChipConfig& chip);

// The rate install_bound_cycles assumes: weights one chip installs per cycle at most (one lw row
// of vector_bytes weights per MXM plane per lw occupancy; tsp-v1: 4 planes x 320 = 1,280).
uint64_t install_weights_per_cycle(const ChipConfig& chip);

}  // namespace lpu::llm
