// LLM front end, part 2: IR graphs of one transformer segment for one tensor-parallel shard, and
// an independent plain Eigen fp32 forward of the whole model from the same seeded weights.
// Contract shared with the LLM system code: /tmp/prompts/llm_api.md. Design notes: docs/llm.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/llm/llm_config.h"

namespace lpu::llm {

enum class Phase { Prefill, Decode };
struct StepShape {
  Phase phase = Phase::Decode;
  int64_t batch = 1;        // sequences served together
  int64_t tokens = 1;       // new tokens per sequence this step (prefill: prompt length P; decode: 1)
  int64_t context = 0;      // tokens already in the KV cache per sequence (decode: C; prefill: 0)
};
// A decode step: `batch` sequences, one new token each, `context` tokens already cached per sequence.
inline StepShape decode_step(int64_t batch, int64_t context) { return {Phase::Decode, batch, 1, context}; }
// A prefill step: `batch` prompts of `tokens` tokens each, nothing cached.
inline StepShape prefill_step(int64_t batch, int64_t tokens) { return {Phase::Prefill, batch, tokens, 0}; }
struct Shard { int64_t rank = 0, size = 1; };   // tensor-parallel shard: heads / FFN columns / experts split over `size` chips
enum class SegmentKind { Attention, Ffn, LmHead };
enum class WeightFill { Zero, Random };          // Zero: timing studies; Random: seeded, N(0, 0.02)-like, deterministic
// "attention", "ffn" or "lm_head": the name reports and piece labels use.
const char* segment_kind_name(SegmentKind k);
struct SegmentSpec {
  SegmentKind kind = SegmentKind::Attention;
  StepShape shape;
  Shard shard;
  WeightFill fill = WeightFill::Zero;
  uint64_t seed = 1;        // Random weights: the MODEL seed; build_segment derives each layer's
                            // and each tensor's stream from (seed, layer, tensor), so pass the
                            // same seed for every layer (layers still differ).
  int64_t position = 0;     // position of the first new token (RoPE / learned positions)
  // int8 pieces: a float Cast (identity in value) between each head's rows of its kv group's
  // stacked P.V product and its o_proj matmul, an elementwise step that can quantize o_proj's
  // input on chip (the P.V matmul's own epilogue cannot: its weights are activations). Off for
  // fp16 (it would only add a VXM pass).
  bool o_proj_cast = false;
  // LmHead of an encoder only: the graph is the LayerNorm that ends the last layer (the encoder's
  // output, "partial" [B*T, hidden]) and nothing after it (llm::PlanPiece::norm_only).
  bool norm_only = false;
};

// One segment of one transformer layer (or the LM head) for one tensor-parallel shard, as an IR graph
// in fp32 semantics that the compiler can lower (fp16 on chip):
//  Attention: inputs "x" [B*T, hidden]; for decode also "k_cache_<g>" and "v_cache_<g>" [B*C, head_dim]
//             for each kv head g of this shard (resident in SRAM); output "partial" [B*T, hidden] =
//             (rank 0 only: x +) o_proj of this shard's heads (norm1 computed redundantly on every
//             shard); decoders also output "k_new_<g>", "v_new_<g>" [B*T, head_dim] (to append to
//             the cache; encoders have no cache and no such outputs).
//  Ffn:       input "x" [B*T, hidden]; output "partial" = (rank 0: x +) this shard's FFN columns
//             (norm2 inside; MoE: this shard's experts, weighted by the top-k gate; a shard size
//             that is a multiple k of the experts gives shard r columns (r mod k)/k of expert r / k).
//             Dense FFNs split the columns over any divisor size of ffn.
//  LmHead:    input "x"; output "logits" [B*T, vocab/size slice] (final norm inside); with
//             norm_only (encoders), output "partial" [B*T, hidden] = the final norm alone.
// The sum over shards of "partial" is the layer's residual-stream output. Sizes not divisible by
// `size` are an InputError naming the field. All weights are constants of the graph.
// <g> is the GLOBAL kv-head index. Attention shards (kv = kv_heads, group = heads / kv):
//  - s divides kv: shard r of s holds kv heads r*kv/s .. (r+1)*kv/s-1 and all query heads of
//    those groups;
//  - s a multiple of kv with heads % s == 0 (KV-head replication, tp wider than the kv heads):
//    rep = s / kv shards hold a copy of kv head g = r / rep (its k/v projection columns, and its
//    k_cache_<g> / v_cache_<g> inputs: every replica reads the same cache and writes the same
//    k_new_<g> / v_new_<g>, each into its own copy) and query heads
//    g*group + (r % rep)*(group/rep) .. + group/rep - 1; o_proj covers only those query heads;
//  - any other s is an InputError naming num_key_value_heads (n_head, num_attention_heads).
// Graph inputs are in the order: x, then k_cache_<g>, v_cache_<g>
// per g ascending; outputs: partial, then k_new_<g>, v_new_<g> per g ascending (or logits).
// Keys in the cache and in k_new are post-RoPE (what attention multiplies with).
// The cache inputs exist iff shape.context > 0 (Decode; Prefill needs context 0). Encoders (bert)
// accept Prefill only. position + tokens <= max_positions. bert is post-LN: each segment starts
// with the LayerNorm that ended the previous sub-block and adds that normalized value as the
// residual (docs/llm.md), so the shard sum is still the residual-stream value.
// Other bad requests (batch/tokens < 1, layer out of range, shard rank outside [0, size)) are
// InputErrors too.
// Bias-free families (llama, mixtral) have no bias constants; gpt2/bert biases are added by the
// shard of rank 0 for the row-parallel output projections (o_proj, FFN down).
ir::Graph build_segment(const LlmConfig& cfg, const SegmentSpec& spec, int64_t layer);

// The layer whose build_segment graph has the same operations as `layer`'s (weights aside): 0 for
// every layer of pre-LN families, and for bert's Ffn; for bert's Attention, 1 for every layer > 0
// (it starts with the previous layer's LayerNorm, layer 0 has none). Timing runs compile one
// graph per representative layer (system/llm_system.cpp).
int64_t representative_layer(const LlmConfig& cfg, SegmentKind kind, int64_t layer);

// True for the name of a model weight matrix in build_segment's graphs (the shard's fused q|k, v or
// q|k|v projections, o_proj, FFN up/gate/down of dense FFNs and experts, the MoE router, the LM head, BERT's MLM dense)
// and false for the graph's helper constants (RoPE tables, masks, top-k selection matrices, norm
// gains, biases, the RoPE rotate-half permutation). `--precision int8` runs exactly these projections int8 (compiler Int8Options::
// layer_filter); the helper matmuls stay fp16 (the top-k selection relies on exact f32 arithmetic).
// A stitched graph's "<segment>/" prefixes (model_graph.h) are looked past: "attn/wo_3" is one.
bool is_projection_weight(const std::string& constant_name);

// MoE routing of one step for one layer: for every row (b*T + t) the experts_per_token selected
// experts, best first (ties: lower index first), row-major [B*T, k].
using Routing = std::vector<int64_t>;
// Test hook, Ffn segments of MoE models only: same graph as build_segment except that the expert
// selection (which is computed from the router logits in build_segment) is given as constant
// 0/1 masks from `routing`. With the same routing the outputs are bit-identical to build_segment's;
// its error bound (ref::run_with_error_bound) is finite where the data-dependent selection's is not.
ir::Graph build_segment_with_routing(const LlmConfig& cfg, const SegmentSpec& spec, int64_t layer,
                                     const Routing& routing);

// KV cache contents for a decode step: k[l][g], v[l][g] hold [B*C, head_dim] row-major (sequence
// b at rows b*C .. b*C+C-1) for layer l and global kv head g. Keys are post-RoPE.
struct KvCache {
  std::vector<std::vector<std::vector<float>>> k, v;
};
// Deterministic random cache for tests (values ~U(-1,1) from `seed`), shaped for `shape`.
KvCache random_kv_cache(const LlmConfig& cfg, const StepShape& shape, uint64_t seed);

// Plain C++/Eigen fp32 reference forward (no IR, no compiler) of the whole model from the same
// seeded weights as build_segment(spec.fill = Random, spec.seed = seed): hidden states in, logits
// [B*T, vocab] out. `x_embedded` [B*T, hidden] is the embedded input (token + learned position /
// token type embeddings are the host's job, see docs/llm.md). `cache` is required for decode
// (shape.context > 0) and ignored for prefill. `position` = position of the first new token.
// If `new_kv` is given it receives the step's k_new/v_new per layer and kv head ([B*T, head_dim]);
// if `routing` is given (MoE) it receives each layer's expert selection; if `segment_inputs` is
// given it receives the residual-stream value entering each segment in execution order ([B*T,
// hidden] each: Attention 0, Ffn 0, Attention 1, ..., LmHead; 2*layers+1 entries; for bert the
// un-normalized sums, see docs/llm.md), so each segment can be checked on its own.
std::vector<float> reference_forward(const LlmConfig& cfg, const StepShape& shape, uint64_t seed,
                                     const std::vector<float>& x_embedded, const KvCache* cache,
                                     int64_t position, KvCache* new_kv = nullptr,
                                     std::vector<Routing>* routing = nullptr /* MoE: per layer */,
                                     std::vector<std::vector<float>>* segment_inputs = nullptr);

}  // namespace lpu::llm
