// LLM front end: config.json parsing (compiler/llm/llm_config.h): published parameter counts of the
// committed HF configs and the strict refusal of bad fields.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "compiler/llm/llm_config.h"
#include "isa/chip_config.h"
#include "tests/support/cli.h"
#include "tests/support/process.h"

using lpu::llm::LlmConfig;
using lpu::llm::load_llm_config;
using lpu::llm::parse_llm_config;

namespace {
std::string llm_path(const std::string& name) { return std::string(LPU_SOURCE_DIR) + "/workloads/llm/" + name + ".json"; }

// Message of the InputError thrown by parsing `json` (fails the test if none is thrown).
std::string parse_error(const std::string& json) {
  try {
    parse_llm_config(json, "bad.json");
  } catch (const lpu::InputError& e) {
    return e.what();
  }
  FAIL("no InputError for " << json);
  return "";
}

const char* kLlama = R"({"model_type": "llama", "hidden_size": 128, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 256, "rms_norm_eps": 1e-5,
  "max_position_embeddings": 64, "vocab_size": 512, "hidden_act": "silu")";
std::string llama_with(const std::string& extra) { return std::string(kLlama) + extra + "}"; }
}  // namespace

TEST_CASE("llm config: published parameter counts of the committed HF configs within 1%", "[llm]") {
  struct Case { const char* name; double published; };
  const Case cases[] = {{"gpt2", 124e6},         {"llama-2-7b", 6.74e9}, {"llama-2-13b", 13.0e9},
                        {"llama-2-70b", 69.0e9}, {"llama-3-8b", 8.03e9}, {"llama-3-70b", 70.6e9},
                        {"mixtral-8x7b", 46.7e9}, {"bert-base", 110e6}};
  for (const Case& c : cases) {
    const LlmConfig cfg = load_llm_config(llm_path(c.name));
    INFO(c.name << ": params " << cfg.params() << " published " << c.published);
    CHECK(cfg.name == c.name);
    CHECK(std::fabs(static_cast<double>(cfg.params()) / c.published - 1.0) < 0.01);
  }
  // Exact figures known from the checkpoints' tensor sizes.
  CHECK(load_llm_config(llm_path("gpt2")).params() == 124439808);
  CHECK(load_llm_config(llm_path("llama-2-7b")).params() == 6738415616);
  CHECK(load_llm_config(llm_path("mixtral-8x7b")).params() == 46702792704);
}

TEST_CASE("llm config: fields of each family", "[llm]") {
  const LlmConfig g = load_llm_config(llm_path("gpt2"));
  CHECK(g.family == "gpt2");
  CHECK(g.ffn == 3072);  // n_inner absent -> 4 * n_embd
  CHECK(g.activation == "gelu_new");
  CHECK((g.causal && !g.rope && !g.rms_norm && !g.gated_ffn && g.tied_embeddings));
  const LlmConfig l = load_llm_config(llm_path("llama-2-70b"));
  CHECK((l.family == "llama" && l.heads == 64 && l.kv_heads == 8 && l.head_dim == 128 && l.ffn == 28672));
  CHECK((l.rope && l.rms_norm && l.gated_ffn && !l.tied_embeddings));
  CHECK(l.rope_theta == 10000.0);  // absent in Llama-2 configs: HF default
  CHECK(load_llm_config(llm_path("llama-3-8b")).rope_theta == 500000.0);
  const LlmConfig m = load_llm_config(llm_path("mixtral-8x7b"));
  CHECK((m.family == "mixtral" && m.experts == 8 && m.experts_per_token == 2 && m.rope_theta == 1e6));
  const LlmConfig b = load_llm_config(llm_path("bert-base"));
  CHECK((b.family == "bert" && !b.causal && b.norm_eps == 1e-12 && b.activation == "gelu" && b.type_vocab == 2));
  const LlmConfig t = load_llm_config(llm_path("tiny-gpt2"));
  CHECK((t.layers == 2 && t.hidden == 128 && t.ffn == 512));  // n_inner null -> 4 * n_embd
  // architectures is the fallback when model_type is absent; unknown fields are ignored.
  const LlmConfig a = parse_llm_config(
      R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 256, "rms_norm_eps": 1e-5, "max_position_embeddings": 64, "vocab_size": 512,
          "hidden_act": "silu", "some_future_field": {"x": [1, 2]}})",
      "a.json");
  CHECK((a.family == "llama" && a.kv_heads == 4));
  CHECK(load_llm_config(llm_path("tiny-llama")).describe().find("params: ") != std::string::npos);
}

TEST_CASE("llm config: bad fields are refused naming file, field, value and what is allowed", "[llm]") {
  CHECK_THAT(parse_error(std::string(kLlama)), Catch::Contains("bad.json: JSON syntax error"));
  CHECK_THAT(parse_error("[1, 2]"), Catch::Contains("top level must be a JSON object"));
  CHECK_THAT(parse_error(R"({"model_type": "mistral"})"),
             Catch::Contains("bad.json: field 'model_type': unknown model type 'mistral'; allowed: gpt2, llama, mixtral, bert"));
  CHECK_THAT(parse_error(R"({"architectures": ["T5ForConditionalGeneration"]})"), Catch::Contains("unknown architecture 'T5"));
  CHECK_THAT(parse_error(R"({"hidden_size": 4})"), Catch::Contains("neither 'model_type' nor 'architectures'"));
  CHECK_THAT(parse_error(R"({"model_type": "llama", "hidden_size": 128})"),
             Catch::Contains("field 'num_hidden_layers': missing required field (a positive integer)"));
  CHECK_THAT(parse_error(llama_with(R"(, "hidden_size": "128")")), Catch::Contains("got \"128\" (a string)"));
  CHECK_THAT(parse_error(llama_with(R"(, "hidden_size": 128.5)")),
             Catch::Contains("field 'hidden_size': must be an integer in [1, 1048576]; got 128.5"));
  CHECK_THAT(parse_error(llama_with(R"(, "num_hidden_layers": 0)")),
             Catch::Contains("field 'num_hidden_layers': must be an integer in [1, 4096]; got 0"));
  CHECK_THAT(parse_error(llama_with(R"(, "vocab_size": -5)")), Catch::Contains("got -5"));
  CHECK_THAT(parse_error(llama_with(R"(, "num_attention_heads": 3)")),
             Catch::Contains("field 'num_attention_heads': must divide hidden_size = 128; got 3"));
  CHECK_THAT(parse_error(llama_with(R"(, "num_key_value_heads": 3)")),
             Catch::Contains("field 'num_key_value_heads': must divide num_attention_heads = 4; got 3"));
  CHECK_THAT(parse_error(llama_with(R"(, "rms_norm_eps": 0)")),
             Catch::Contains("field 'rms_norm_eps': must be a positive finite number; got 0"));
  CHECK_THAT(parse_error(llama_with(R"(, "hidden_act": "gelu")")),
             Catch::Contains("field 'hidden_act': unsupported activation 'gelu'; allowed: silu"));
  CHECK_THAT(parse_error(llama_with(R"(, "tie_word_embeddings": "no")")), Catch::Contains("must be true or false"));
  CHECK_THAT(parse_error(llama_with(R"(, "rope_scaling": {"type": "linear", "factor": 2.0})")),
             Catch::Contains("field 'rope_scaling': is not supported"));
  CHECK_THAT(parse_error(std::string(kLlama).replace(16, 5, "mixtral") + R"(, "num_local_experts": 4, "num_experts_per_tok": 5})"),
             Catch::Contains("field 'num_experts_per_tok': must be <= num_local_experts = 4; got 5"));
  CHECK_THAT(parse_error(R"({"model_type": "gpt2", "n_embd": 96, "n_layer": 2, "n_head": 4, "n_positions": 64,
      "vocab_size": 100, "layer_norm_epsilon": 1e-5, "activation_function": "swish"})"),
             Catch::Contains("field 'activation_function': unsupported activation 'swish'"));
  CHECK_THROWS_WITH(load_llm_config("/nonexistent/x.json"), Catch::Contains("/nonexistent/x.json: cannot open"));
}

TEST_CASE("llm config: lpusim llm-config prints the parsed fields and the parameter count", "[llm]") {
  const std::string out =
      (std::filesystem::temp_directory_path() / ("lpusim_llm_config_" + std::to_string(::getpid()) + ".txt")).string();
  const ProcessResult r = run_process(lpusim_exe(), {"llm-config", llm_path("mixtral-8x7b")}, out,
                                      std::chrono::seconds(60), Stderr::ToOutput);
  std::filesystem::remove(out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output == load_llm_config(llm_path("mixtral-8x7b")).describe());
  CHECK(r.output.find("experts: 8\nexperts_per_token: 2\n") != std::string::npos);
  CHECK(r.output.find("params: 46702792704\n") != std::string::npos);
}
