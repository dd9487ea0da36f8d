// `lpusim llm CONFIG --mode functional` (see cmd_llm_functional.h).
#include "tools/cmd_llm_functional.h"

#include <algorithm>
#include <fmt/format.h>
#include <iostream>
#include <numeric>
#include <vector>

#include "system/llm_functional.h"
#include "system/llm_functional_check.h"

namespace lpu::cli {

namespace {

// The k largest entries of row `row` (ids, best first; ties: lower id first).
std::vector<int64_t> top_k(const std::vector<float>& logits, int64_t vocab, int64_t row, int64_t k) {
  std::vector<int64_t> ids(static_cast<size_t>(vocab));
  std::iota(ids.begin(), ids.end(), 0);
  const float* r = logits.data() + row * vocab;
  std::stable_sort(ids.begin(), ids.end(), [r](int64_t a, int64_t b) { return r[a] > r[b]; });
  ids.resize(static_cast<size_t>(std::min(k, vocab)));
  return ids;
}

std::string ids_text(const std::vector<int64_t>& ids) { return fmt::format("[{}]", fmt::join(ids, ", ")); }

// Runs, checks and prints one step; returns the run (for the prefill's cache) and whether it passed.
bool one_step(const ChipConfig& chip, const llm::LlmConfig& m, const system::FunctionalRequest& req,
              const std::vector<float>& x, const llm::KvCache* chip_cache, const llm::KvCache* ref_cache,
              const std::string& label, system::FunctionalRun* out) {
  system::FunctionalRun run = system::run_functional(chip, m, req, x, chip_cache);
  const system::FunctionalCheck chk = system::check_functional(m, req, run, x, chip_cache, ref_cache);
  const system::BoundaryCheck& l = chk.logits();
  const int64_t rows = req.shape.batch * req.shape.tokens;
  const int64_t vocab = static_cast<int64_t>(run.logits.size()) / rows;
  std::cout << fmt::format("{} on {} chip(s) = tp {} x {} stage(s): {} functional simulations; {} cycles composed as "
                           "in --mode timing (pieces {} + collectives {} + drains)\n",
                           label, run.plan.chips, run.plan.tp, run.plan.stages.size(), run.programs, run.step_cycles,
                           run.piece_cycles, run.collective_cycles);
  std::cout << fmt::format("  logits vs Eigen reference: max |error| {:.3g}, bound up to {:.3g} (max |logit| {:.3g}), "
                           "worst error/bound {:.3f}\n",
                           l.max_err, l.max_bound, l.max_ref, l.worst_ratio);
  for (int64_t b = 0; b < req.shape.batch; ++b) {
    const int64_t row = b * req.shape.tokens + req.shape.tokens - 1;  // the sequence's last token
    std::cout << fmt::format("  top-5 token ids, sequence {} last token: chips {}  reference {}\n", b,
                             ids_text(top_k(run.logits, vocab, row, 5)), ids_text(top_k(chk.reference_logits, vocab, row, 5)));
  }
  const system::BoundaryCheck* f = chk.first_failure();
  if (f)
    std::cout << fmt::format("  PRECISION CHECK FAILED at {}: {} of {} values outside the bound, {} unbounded "
                             "(max |error| {:.3g}, bound up to {:.3g})\n",
                             f->what, f->outside, f->elements, f->unbounded, f->max_err, f->max_bound);
  else {
    double worst = 0;
    for (const system::BoundaryCheck& c : chk.checks) worst = std::max(worst, c.worst_ratio);
    std::cout << fmt::format("  all {} checked boundaries (piece inputs, K/V rows, logits) within the fp16 bound "
                             "(worst error/bound {:.3f})\n",
                             chk.checks.size(), worst);
  }
  if (out) *out = std::move(run);
  return f == nullptr;
}

}  // namespace

bool run_llm_functional(const ChipConfig& chip, const llm::LlmConfig& m, const LlmFunctionalArgs& a) {
  system::check_functional_size(m);
  const bool decoder = m.causal;  // encoders (bert) have no decode step
  system::FunctionalRequest req;
  req.seed = a.seed;
  req.chips = a.chips > 0 ? a.chips : 1;
  req.tp = a.tp;
  req.shape = {llm::Phase::Prefill, a.batch, a.prompt, 0};
  const std::vector<float> prompt = system::seeded_embedded_input(m, a.batch * a.prompt, a.seed);
  system::FunctionalRun pre;
  std::cout << fmt::format("lpusim llm {} --mode functional: the model's values through simulated chips, seeded random "
                           "weights (seed {}), fp16 programs, checked against the plain Eigen fp32 reference\n",
                           m.name, a.seed);
  bool ok = one_step(chip, m, req, prompt, nullptr, nullptr, fmt::format("prefill B{} P{}", a.batch, a.prompt), &pre);
  if (!decoder) return ok;
  // The decode's cache: the K/V a simulated prefill of C tokens wrote (this prefill if C == P).
  system::FunctionalRun cache_run;
  const system::FunctionalRun* src = &pre;
  std::vector<float> cache_prompt = prompt;
  system::FunctionalRequest creq = req;
  if (a.context != a.prompt) {
    creq.shape.tokens = a.context;
    cache_prompt = system::seeded_embedded_input(m, a.batch * a.context, a.seed);
    ok &= one_step(chip, m, creq, cache_prompt, nullptr, nullptr,
                   fmt::format("prefill B{} P{} (the decode's cache)", a.batch, a.context), &cache_run);
    src = &cache_run;
  }
  const llm::KvCache chip_cache = system::prefill_cache(m, *src);
  llm::KvCache ref_cache;
  llm::reference_forward(m, creq.shape, a.seed, system::f16_rounded(cache_prompt), nullptr, 0, &ref_cache);
  system::FunctionalRequest dreq = req;
  dreq.shape = {llm::Phase::Decode, a.batch, 1, a.context};
  dreq.position = a.context;
  const std::vector<float> x = system::seeded_embedded_input(m, a.batch, a.seed + 1);
  ok &= one_step(chip, m, dreq, x, &chip_cache, &ref_cache,
                 fmt::format("decode B{} C{} (cache: the simulated prefill's K/V)", a.batch, a.context), nullptr);
  return ok;
}

}  // namespace lpu::cli
