// Stand-in pieces made of dense projections only, for timing studies while the front end's
// full segment graphs (llm::build_segment) need ops that do not lower yet. Each has exactly the
// real piece's weight matrices per shard, so for decode (weight-load bound) its time is close to
// the real piece's, but it OMITS: attention scores and softmax over the KV cache, RoPE, norms,
// the SwiGLU/GELU activation (a Mul/Relu stands in), MoE gating. Reports using it must say so.
//  Attention: x [R, hidden] -> q = x Wq [R, heads/tp*hd] -> partial = q Wo (+ x on rank 0);
//             kv_new = x Wkv [R, 2*kv/tp*hd] (a second output; [R, 2*hd] when tp is a
//             multiple of kv: one replicated kv head per shard, llm/segments.h).
//  Ffn:       per local expert (all experts/tp of the shard; 1 if dense): h = relu(x Wup) (gated:
//             (x Wgate) * (x Wup)); partial = sum of h Wdown (+ x on rank 0).
//  LmHead:    logits = x Wh [R, vocab/tp].
// Weights are zero (timing only).
#pragma once
#include "compiler/ir/graph.h"
#include "compiler/llm/llm_config.h"
#include "compiler/llm/segments.h"

namespace lpu::system {

ir::Graph standin_segment(const llm::LlmConfig& m, const llm::SegmentSpec& s);

}  // namespace lpu::system
