// Choosing the split (the planner cost model): llm::plan_candidates lists every tensor-parallel
// size that fits the request (the same fewest chips, or the --chips budget); which of them serves
// a token fastest depends on the pieces' cycles, which only compiling them tells. choose_split
// composes the deciding step (decoder: one decode token at the request's context; encoder: the
// forward pass) for each candidate, cheapest install bound first, and keeps the shortest (with
// K > 1 groups in flight: the shortest period of the groups' tokens, pipeline_serving.h).
// A candidate whose install bound (llm::install_bound_cycles, a lower bound on any step of it) is
// not below the best composed step so far cannot win and is not composed (unless the request asks
// for every split, PlanRequest::all_splits: the choice is the same). Ties go to the larger tp
// (fewer stages). A candidate that needs a dense stand-in (a piece graph that does not compile) is
// only taken if no candidate runs on the real graphs; then the capacity default (largest tp) is
// taken, as without a choice. Deterministic: the order and the figures depend only on the inputs.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compiler/llm/llm_config.h"
#include "compiler/llm/partition.h"
#include "system/llm_system.h"

namespace lpu::system {

struct SplitOption {
  int64_t tp = 1, stages = 1, chips = 1;
  uint64_t bound_cycles = 0;  // llm::install_bound_cycles of the plan
  uint64_t cycles = 0;        // composed cycles of the deciding step (0: not composed)
  double seconds = 0;         // ... and its time with the host transfer (StepResult::seconds; 0: not composed)
  uint64_t cost_cycles = 0;   // what the choice compares: `cycles`, or with K > 1 groups in flight
                              // (PlanRequest::in_flight) max(cycles, K x busiest chip span)
  std::string status;         // "chosen", "slower", "not composed: ...", "stand-in: ...", "does not compile: ..."
};

struct SplitChoice {
  std::string step;                  // the deciding step, e.g. "decode B1 at context 2047"
  std::vector<SplitOption> options;  // planner order: largest tp first
  size_t chosen = 0;
  double search_seconds = 0;         // host wall time composing the candidates not chosen (not in reports)
};

// The system to run, built on the chosen plan (its pieces already compiled and simulated for the
// deciding step). `build`, `fallback`, `precision` as for LlmSystem. A logic_error if a composed
// step is shorter than its install bound (the bound, and so the pruning, would be wrong).
std::unique_ptr<LlmSystem> choose_split(const ChipConfig& chip, const llm::LlmConfig& model,
                                        const llm::PlanRequest& req, std::vector<llm::Plan> candidates,
                                        const SegmentBuilder& build, const SegmentBuilder& fallback,
                                        SplitChoice* choice);

// The step that decides the split: decode of one token at req.context (decoders), the prefill of
// req.prompt tokens (encoders).
llm::StepShape deciding_step(const llm::LlmConfig& model, const llm::PlanRequest& req);

}  // namespace lpu::system
