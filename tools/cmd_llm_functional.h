// `lpusim llm CONFIG --mode functional`: a small model's VALUES through the simulated chips
// (system/llm_functional.h), checked against the plain Eigen reference forward within the fp16
// bound (system/llm_functional_check.h). Called by cmd_llm.cpp.
#pragma once
#include <cstdint>
#include <string>

#include "compiler/llm/llm_config.h"
#include "isa/chip_config.h"

namespace lpu::cli {

struct LlmFunctionalArgs {
  int64_t prompt = 8, context = 8, batch = 1, chips = 0, tp = 0;
  uint64_t seed = 1;
};

// Runs the prefill of `prompt` tokens and (decoders) one decode token at `context` whose KV cache
// is the simulated prefill's, prints per step the logits' top-5 token ids (chips and reference)
// and the max error vs the reference with its bound. Returns false if a precision check failed
// (the first failing boundary is printed). InputError for models above the functional limit.
bool run_llm_functional(const ChipConfig& chip, const llm::LlmConfig& m, const LlmFunctionalArgs& a);

}  // namespace lpu::cli
