// HF config.json parser for the LLM front end (see llm_config.h and docs/llm.md for the fields).
#include "compiler/llm/llm_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "isa/chip_config.h"  // lpu::InputError

namespace lpu::llm {

using nlohmann::json;

namespace {

// Upper limits keep params() inside int64 and reject absurd files early.
constexpr int64_t kMaxDim = int64_t{1} << 20;     // hidden, ffn, heads, positions
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxExperts = 256;

class Reader {
 public:
  Reader(const json& j, std::string source) : j_(j), src_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw InputError(src_ + ": field '" + field + "': " + what);
  }
  bool has(const std::string& f) const { return j_.contains(f) && !j_.at(f).is_null(); }
  std::string got(const std::string& f) const { return j_.at(f).dump(); }

  // Required integer in [1, max]; `allowed_note` is appended to the message.
  int64_t pos_int(const std::string& f, int64_t max) const {
    if (!j_.contains(f)) fail(f, "missing required field (a positive integer)");
    return check_int(f, max);
  }
  // Optional integer in [1, max]; missing or null -> dflt.
  int64_t opt_pos_int(const std::string& f, int64_t max, int64_t dflt) const {
    return has(f) ? check_int(f, max) : dflt;
  }
  double pos_num(const std::string& f) const {
    if (!j_.contains(f)) fail(f, "missing required field (a positive finite number)");
    return check_num(f);
  }
  double opt_pos_num(const std::string& f, double dflt) const { return has(f) ? check_num(f) : dflt; }
  bool opt_bool(const std::string& f, bool dflt) const {
    if (!has(f)) return dflt;
    if (!j_.at(f).is_boolean()) fail(f, "must be true or false; got " + got(f));
    return j_.at(f).get<bool>();
  }
  std::string str(const std::string& f) const {
    if (!j_.contains(f)) fail(f, "missing required field (a string)");
    if (!j_.at(f).is_string()) fail(f, "must be a string; got " + got(f));
    return j_.at(f).get<std::string>();
  }

 private:
  int64_t check_int(const std::string& f, int64_t max) const {
    const json& v = j_.at(f);
    const std::string range = "must be an integer in [1, " + std::to_string(max) + "]";
    if (!v.is_number_integer()) fail(f, range + "; got " + got(f) + (v.is_string() ? " (a string)" : ""));
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u < 1 || u > static_cast<uint64_t>(max)) fail(f, range + "; got " + got(f));
      return static_cast<int64_t>(u);
    }
    const int64_t x = v.get<int64_t>();
    if (x < 1 || x > max) fail(f, range + "; got " + got(f));
    return x;
  }
  double check_num(const std::string& f) const {
    const json& v = j_.at(f);
    if (!v.is_number()) fail(f, "must be a positive finite number; got " + got(f) + (v.is_string() ? " (a string)" : ""));
    const double x = v.get<double>();
    if (!(x > 0) || !std::isfinite(x)) fail(f, "must be a positive finite number; got " + got(f));
    return x;
  }

  const json& j_;
  std::string src_;
};

const char* kFamilies = "gpt2, llama, mixtral, bert";

std::string family_of(const json& j, const Reader& r, const std::string& src) {
  if (j.contains("model_type")) {
    const std::string t = r.str("model_type");
    if (t == "gpt2" || t == "llama" || t == "mixtral" || t == "bert") return t;
    r.fail("model_type", "unknown model type '" + t + "'; allowed: " + kFamilies);
  }
  if (!j.contains("architectures"))
    throw InputError(src + ": neither 'model_type' nor 'architectures' is given; model_type must be one of " +
                     kFamilies);
  const json& a = j.at("architectures");
  if (!a.is_array() || a.empty() || !a.at(0).is_string())
    r.fail("architectures", "must be a non-empty list of class names; got " + a.dump());
  const std::string c = a.at(0).get<std::string>();
  if (c.rfind("GPT2", 0) == 0) return "gpt2";
  if (c.rfind("Llama", 0) == 0) return "llama";
  if (c.rfind("Mixtral", 0) == 0) return "mixtral";
  if (c.rfind("Bert", 0) == 0) return "bert";
  r.fail("architectures", "unknown architecture '" + c + "' (and no model_type); allowed: GPT2*, Llama*, Mixtral*, Bert*");
}

void check_heads(const Reader& r, const LlmConfig& c, const char* hidden_f, const char* heads_f, const char* kv_f) {
  if (c.hidden % c.heads != 0)
    r.fail(heads_f, "must divide " + std::string(hidden_f) + " = " + std::to_string(c.hidden) + "; got " +
                        std::to_string(c.heads));
  if (kv_f && c.heads % c.kv_heads != 0)
    r.fail(kv_f, "must divide " + std::string(heads_f) + " = " + std::to_string(c.heads) + "; got " +
                     std::to_string(c.kv_heads));
  if (kv_f && c.kv_heads > c.heads)
    r.fail(kv_f, "must be <= " + std::string(heads_f) + " = " + std::to_string(c.heads) + "; got " +
                     std::to_string(c.kv_heads));
}

std::string activation(const Reader& r, const std::string& f, const std::vector<std::string>& allowed) {
  const std::string a = r.str(f);
  std::string list;
  for (const auto& x : allowed) {
    if (a == x) return a == "gelu_pytorch_tanh" ? "gelu_new" : a;
    list += (list.empty() ? "" : ", ") + x;
  }
  r.fail(f, "unsupported activation '" + a + "'; allowed: " + list);
}

}  // namespace

LlmConfig parse_llm_config(const std::string& json_text, const std::string& source) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw InputError(source + ": JSON syntax error at byte " + std::to_string(e.byte) + ": " + e.what());
  }
  if (!j.is_object()) throw InputError(source + ": top level must be a JSON object; got " + std::string(j.type_name()));
  const Reader r(j, source);
  LlmConfig c;
  c.family = family_of(j, r, source);
  if (c.family == "gpt2") {
    c.hidden = r.pos_int("n_embd", kMaxDim);
    c.layers = r.pos_int("n_layer", kMaxLayers);
    c.heads = r.pos_int("n_head", kMaxDim);
    c.kv_heads = c.heads;
    c.ffn = r.opt_pos_int("n_inner", kMaxDim, 4 * c.hidden);  // HF: null -> 4 * n_embd
    c.max_positions = r.pos_int("n_positions", kMaxDim);
    c.vocab = r.pos_int("vocab_size", kMaxVocab);
    c.norm_eps = r.pos_num("layer_norm_epsilon");
    c.activation = activation(r, "activation_function", {"gelu_new", "gelu", "gelu_pytorch_tanh", "relu"});
    c.tied_embeddings = r.opt_bool("tie_word_embeddings", true);
    check_heads(r, c, "n_embd", "n_head", nullptr);
  } else if (c.family == "bert") {
    c.hidden = r.pos_int("hidden_size", kMaxDim);
    c.layers = r.pos_int("num_hidden_layers", kMaxLayers);
    c.heads = r.pos_int("num_attention_heads", kMaxDim);
    c.kv_heads = c.heads;
    c.ffn = r.pos_int("intermediate_size", kMaxDim);
    c.max_positions = r.pos_int("max_position_embeddings", kMaxDim);
    c.vocab = r.pos_int("vocab_size", kMaxVocab);
    c.type_vocab = r.opt_pos_int("type_vocab_size", kMaxDim, 2);
    c.norm_eps = r.pos_num("layer_norm_eps");
    c.activation = activation(r, "hidden_act", {"gelu", "gelu_new", "gelu_pytorch_tanh", "relu"});
    c.tied_embeddings = r.opt_bool("tie_word_embeddings", true);
    c.causal = false;
    check_heads(r, c, "hidden_size", "num_attention_heads", nullptr);
  } else {  // llama, mixtral
    c.hidden = r.pos_int("hidden_size", kMaxDim);
    c.layers = r.pos_int("num_hidden_layers", kMaxLayers);
    c.heads = r.pos_int("num_attention_heads", kMaxDim);
    c.kv_heads = r.opt_pos_int("num_key_value_heads", kMaxDim, c.heads);  // HF: absent -> MHA
    c.ffn = r.pos_int("intermediate_size", kMaxDim);
    c.max_positions = r.pos_int("max_position_embeddings", kMaxDim);
    c.vocab = r.pos_int("vocab_size", kMaxVocab);
    c.norm_eps = r.pos_num("rms_norm_eps");
    c.rope_theta = r.opt_pos_num("rope_theta", 10000.0);  // HF default; Llama-2 configs omit it
    c.activation = activation(r, "hidden_act", {"silu"});
    c.tied_embeddings = r.opt_bool("tie_word_embeddings", false);
    c.gated_ffn = c.rms_norm = c.rope = true;
    check_heads(r, c, "hidden_size", "num_attention_heads", "num_key_value_heads");
    if (r.has("rope_scaling"))
      r.fail("rope_scaling", "is not supported (must be null or absent); got " + r.got("rope_scaling"));
    if (c.family == "mixtral") {
      c.experts = r.pos_int("num_local_experts", kMaxExperts);
      c.experts_per_token = r.pos_int("num_experts_per_tok", kMaxExperts);
      if (c.experts_per_token > c.experts)
        r.fail("num_experts_per_tok", "must be <= num_local_experts = " + std::to_string(c.experts) + "; got " +
                                          std::to_string(c.experts_per_token));
    }
  }
  c.head_dim = c.hidden / c.heads;
  if (c.rope && c.head_dim % 2 != 0)
    r.fail("num_attention_heads", "head dim hidden/heads = " + std::to_string(c.head_dim) +
                                      " must be even for rotary embeddings; got heads " + std::to_string(c.heads));
  return c;
}

LlmConfig load_llm_config(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw InputError(path + ": is a directory, not an LLM config.json");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot open LLM config for reading");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw InputError(path + ": read failed");
  LlmConfig c = parse_llm_config(ss.str(), path);
  std::string stem = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".json") == 0) stem.resize(stem.size() - 5);
  c.name = stem;
  return c;
}

int64_t LlmConfig::layer_params() const {
  const int64_t h = hidden, kvd = kv_heads * head_dim;
  const bool bias = family == "gpt2" || family == "bert";
  int64_t attn = h * h /*q*/ + 2 * h * kvd /*k, v*/ + h * h /*o*/;
  if (bias) attn += h + 2 * kvd + h;
  const int64_t mats = gated_ffn ? 3 : 2;
  int64_t one_ffn = mats * h * ffn + (bias ? ffn + h : 0);
  const int64_t ffn_all = experts > 0 ? experts * one_ffn + h * experts /*router*/ : one_ffn;
  const int64_t norms = rms_norm ? 2 * h : 4 * h;  // two norms, LayerNorm with bias
  return attn + ffn_all + norms;
}

int64_t LlmConfig::params() const {
  const int64_t h = hidden;
  int64_t p = vocab * h + layers * layer_params();
  if (!rope) p += max_positions * h;  // learned positions
  if (family == "gpt2") p += 2 * h;   // ln_f
  if (rms_norm) p += h;               // final RMSNorm
  if (family == "bert") p += type_vocab * h + 2 * h /*embedding LayerNorm*/ + h * h + h /*pooler*/;
  if (!tied_embeddings) p += vocab * h;  // separate LM head
  return p;
}

std::string LlmConfig::describe() const {
  std::ostringstream o;
  o << "name: " << name << "\nfamily: " << family << "\nhidden: " << hidden << "\nlayers: " << layers
    << "\nheads: " << heads << "\nkv_heads: " << kv_heads << "\nhead_dim: " << head_dim << "\nffn: " << ffn
    << "\nvocab: " << vocab << "\nmax_positions: " << max_positions << "\nexperts: " << experts
    << "\nexperts_per_token: " << experts_per_token << "\ncausal: " << (causal ? "true" : "false")
    << "\ngated_ffn: " << (gated_ffn ? "true" : "false") << "\nnorm: " << (rms_norm ? "rmsnorm" : "layernorm")
    << "\nnorm_eps: " << norm_eps << "\npositions: " << (rope ? "rope" : "learned");
  if (rope) o << "\nrope_theta: " << rope_theta;
  o << "\nactivation: " << activation << "\ntied_embeddings: " << (tied_embeddings ? "true" : "false")
    << "\nlayer_params: " << layer_params() << "\nparams: " << params() << "\n";
  return o.str();
}

}  // namespace lpu::llm
