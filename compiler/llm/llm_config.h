// LLM front end, part 1: the model hyper-parameters read from a Hugging Face style config.json
// (GPT-2, Llama-2/3, Mixtral, BERT), validated strictly, plus parameter counts.
// Contract shared with the LLM system code: /tmp/prompts/llm_api.md (namespace lpu::llm).
#pragma once
#include <cstdint>
#include <string>

namespace lpu::llm {

struct LlmConfig {
  std::string name;            // file stem, e.g. "llama-2-7b"
  std::string family;          // "gpt2" | "llama" | "mixtral" | "bert"
  int64_t hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int64_t ffn = 0;             // intermediate size (per expert for MoE)
  int64_t vocab = 0, max_positions = 0;
  int64_t experts = 0, experts_per_token = 0;   // 0 = dense
  bool causal = true;          // false for bert (encoder)
  bool gated_ffn = false;      // SwiGLU (llama, mixtral)
  bool rms_norm = false;       // RMSNorm (llama, mixtral) vs LayerNorm (gpt2, bert)
  bool rope = false;           // rotary positions (llama, mixtral) vs learned (gpt2, bert)
  double norm_eps = 1e-5, rope_theta = 10000.0;
  std::string activation;      // "gelu_new", "gelu", "silu"
  int64_t type_vocab = 0;      // bert: token type embeddings (counted in params()); 0 otherwise
  bool tied_embeddings = false;  // LM head shares the token embedding (gpt2, bert: not counted twice)

  // Total parameter count: embeddings (token, learned positions, bert token types and embedding
  // LayerNorm) + layers * layer_params() + final norm + LM head (untied only; bert: pooler
  // included, MLM head excluded, as the published 110M counts it).
  int64_t params() const;
  // One transformer layer: attention (q, k, v, o with biases where the family has them), FFN
  // (all experts and the router for MoE), the layer's norms.
  int64_t layer_params() const;
  // Multi-line human-readable summary (used by `lpusim llm-config`); deterministic.
  std::string describe() const;
};

// Parses config.json text. `source` (a file name) prefixes every error. Throws lpu::InputError
// naming source, field, value and what is allowed for: JSON syntax errors, missing or ill-typed
// required fields, non-positive sizes, hidden % heads != 0, heads % kv_heads != 0, unknown
// model_type / architectures, unknown activation. Unknown extra fields are ignored.
LlmConfig parse_llm_config(const std::string& json_text, const std::string& source);
// Reads `path` and parses it; name = file stem. InputError if unreadable.
LlmConfig load_llm_config(const std::string& path);

// The model's name for graph names and messages: its file stem, or its family when it has none.
inline std::string model_label(const LlmConfig& cfg) { return cfg.name.empty() ? cfg.family : cfg.name; }

}  // namespace lpu::llm
