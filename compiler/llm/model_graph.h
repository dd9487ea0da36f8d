// One IR graph for a whole model step, stitched from build_segment() graphs: every layer's
// Attention and Ffn segments for shards 0..size-1 with their "partial" outputs summed (Add, in rank
// order), then the LmHead shards concatenated along the vocab axis. For checking the segment
// graphs end to end on the reference interpreter (ref::run / run_with_error_bound carry values and
// error bounds through every layer); the chip runs the segments themselves.
#pragma once
#include <cstdint>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/llm/segments.h"

namespace lpu::llm {

struct ModelGraphSpec {
  StepShape shape;
  int64_t shard_size = 1;
  WeightFill fill = WeightFill::Random;
  uint64_t seed = 1;
  int64_t position = 0;
  // MoE only, optional: per layer, the expert selection to use (build_segment_with_routing);
  // empty = computed from the router logits in the graph (build_segment).
  std::vector<Routing> routing;
};

// Inputs: "x" [B*T, hidden]; if context > 0, per layer l and global kv head g ascending:
// "k_cache_l<l>_<g>", "v_cache_l<l>_<g>" [B*C, head_dim]. Outputs, in order: the logits [B*T, vocab],
// then per layer and kv head ascending k_new, v_new [B*T, head_dim] (KV-head replication: the first
// replica's; output tensor names carry the
// segment prefix, e.g. "l0_attn_r1/k_new_1"; read outputs by position).
ir::Graph build_model_graph(const LlmConfig& cfg, const ModelGraphSpec& spec);

// One layer's Attention and Ffn segments (as `seg` describes them, seg.kind ignored) stitched into
// one graph: input "x", output the FFN's "partial" (tensor names prefixed "attn/" and "ffn/"). For
// measuring a layer compiled as ONE program against its two pieces back to back
// (`bench_prefill --joint`); a prefill step with no KV cache inputs (seg.shape.context == 0).
ir::Graph build_layer_graph(const LlmConfig& cfg, SegmentSpec seg, int64_t layer);

}  // namespace lpu::llm
