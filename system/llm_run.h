// An LLM serving run on a planned multi-chip system: the prefill of the prompt, the first decode
// token and a decode token at the requested context, each a composed step (llm_system.h), and the
// figures users ask for: time to first token, per-token latency, tokens per second (per user and
// for the whole batch), tokens per joule, average power, SRAM per chip, where a token's time goes.
// Text and JSON reports (docs/report-schema.md, "LLM report").
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compiler/llm/llm_config.h"
#include "compiler/llm/partition.h"
#include "system/llm_system.h"
#include "system/pipeline_serving.h"
#include "system/split_choice.h"

namespace lpu::system {

struct LlmRun {
  llm::LlmConfig model;
  llm::PlanRequest request;
  llm::Plan plan;
  SplitChoice split;             // the tensor-parallel sizes that fit and which one was run (split_choice.h)
  std::string chip_name;
  std::string phase = "all";     // steps run: "all" (prefill, first token, decode at C), "decode" (the decode
                                 // token only) or "plan" (plan_llm: the partition, nothing simulated)
  bool decoder = true;           // false: encoder (bert): one forward pass, no decode
  bool has_prefill = true;       // prefill and first_decode were run
  StepResult prefill;            // P tokens per sequence, empty cache
  StepResult first_decode;       // decoder: one token at context P
  StepResult decode;             // decoder: one token at context C (the steady-state token)
  size_t simulations = 0;        // distinct programs simulated
  size_t compiles = 0;           // distinct piece graphs compiled
  double compile_seconds = 0;    // host wall time (not part of the reports: they stay deterministic)
  double simulate_seconds = 0;
  std::string piece_graphs = "segments";  // "segments" (llm::build_segment) or "dense-standin" (standin_segments.h);
                                          // "segments+dense-standin" when some pieces fell back (see standins)
  std::vector<std::string> standins;      // pieces timed by the fallback builder: "STAND-IN <label>: <compile error>"
  // Figures (us, tokens/s, tokens/J, W).
  double ttft_us = 0;            // decoder: prefill + first decode; encoder: the forward pass
  double token_latency_us = 0;   // decoder: decode step at C; encoder: the forward pass
  // Served with request.in_flight groups of `batch` sequences in the pipeline (pipeline_serving.h;
  // one group: a token every token latency, the figures of the step alone).
  PipelineServing serving;
  double tokens_per_second_per_user = 0;  // serving: a sequence's tokens per period (encoder: P per pass)
  double tokens_per_second = 0;  // aggregate: in_flight x batch x per user
  double tokens_per_joule = 0;   // tokens of a period / its energy
  double power_w = 0;            // average system power while serving
};

// Plans, chooses the split (choose_split: the candidate with the shortest deciding step),
// composes and simulates. `build` as for LlmSystem. with_prefill = false skips the prefill
// and first-token steps of a decoder (ttft_us is then 0): for throughput-only studies (validate).
// `piece_graphs` names what `build` builds, for the reports ("segments" for the default).
// `fallback`: see LlmSystem (a piece whose graph does not compile is timed with it and listed in
// `standins`; the reports print each one).
LlmRun run_llm(const ChipConfig& chip, const llm::LlmConfig& model, const llm::PlanRequest& req,
               SegmentBuilder build = {}, bool with_prefill = true, const std::string& piece_graphs = "segments",
               SegmentBuilder fallback = {});

// The partition plan alone (phase "plan"): chips, tensor-parallel size, stages and SRAM per chip,
// without compiling or simulating anything (milliseconds: for capacity questions such as the fewest
// chips that hold a model for each SRAM size). The reports then hold the plan's figures only.
LlmRun plan_llm(const ChipConfig& chip, const llm::LlmConfig& model, const llm::PlanRequest& req);

std::string llm_text_report(const LlmRun& run, const ChipConfig& chip);
nlohmann::ordered_json llm_json_report(const LlmRun& run, const ChipConfig& chip);

}  // namespace lpu::system
