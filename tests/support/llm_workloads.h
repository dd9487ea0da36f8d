// The LLM configs shipped in workloads/llm/, loaded by name for tests ("tiny-llama", "llama-2-70b"),
// and the prefill segments the attention tests build from them.
#pragma once
#include <cstdint>
#include <string>

#include "compiler/llm/llm_config.h"
#include "compiler/llm/segments.h"

namespace lpu::test {

inline llm::LlmConfig workload_llm(const std::string& name) {
  return llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/" + name + ".json");
}

// One unsharded prefill piece of `tokens` rows with seeded random weights.
inline llm::SegmentSpec prefill_segment(llm::SegmentKind kind, int64_t tokens, uint32_t seed) {
  llm::SegmentSpec s;
  s.kind = kind;
  s.shape.phase = llm::Phase::Prefill;
  s.shape.tokens = tokens;
  s.shard = {0, 1};
  s.fill = llm::WeightFill::Random;
  s.seed = seed;
  return s;
}

// An unsharded prefill piece of `tokens` rows as `lpusim validate` builds its BERT-base row's
// pieces (config weights, o_proj reading P.V through the Cast view).
inline llm::SegmentSpec validate_prefill_segment(llm::SegmentKind kind, int64_t tokens = 128) {
  llm::SegmentSpec s;
  s.kind = kind;
  s.shape = llm::prefill_step(1, tokens);
  s.shard = {0, 1};
  s.o_proj_cast = true;
  return s;
}

// tiny-bert with `heads` heads of 64 lanes (hidden heads x 64, FFN 4 x hidden): 12 is BERT-base's
// attention shape.
inline llm::LlmConfig bert_like(int64_t heads) {
  llm::LlmConfig c = workload_llm("tiny-bert");
  c.heads = c.kv_heads = heads;
  c.head_dim = 64;
  c.hidden = heads * 64;
  c.ffn = 4 * c.hidden;
  return c;
}

}  // namespace lpu::test
