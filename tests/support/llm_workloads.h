// The LLM configs shipped in workloads/llm/, loaded by name for tests ("tiny-llama", "llama-2-70b").
#pragma once
#include <string>

#include "compiler/llm/llm_config.h"

namespace lpu::test {

inline llm::LlmConfig workload_llm(const std::string& name) {
  return llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/" + name + ".json");
}

}  // namespace lpu::test
