// choose_split: the planner cost model (see split_choice.h, docs/llm-system.md "Choosing the split").
#include "system/split_choice.h"

#include <algorithm>
#include <fmt/format.h>
#include <numeric>
#include <stdexcept>

#include "system/pipeline_serving.h"

namespace lpu::system {

llm::StepShape deciding_step(const llm::LlmConfig& model, const llm::PlanRequest& req) {
  return model.causal ? llm::decode_step(req.batch, req.context) : llm::prefill_step(req.batch, req.prompt);
}

std::unique_ptr<LlmSystem> choose_split(const ChipConfig& chip, const llm::LlmConfig& model,
                                        const llm::PlanRequest& req, std::vector<llm::Plan> candidates,
                                        const SegmentBuilder& build, const SegmentBuilder& fallback,
                                        SplitChoice* choice) {
  if (candidates.empty()) throw std::logic_error("choose_split: no candidate plan");
  const llm::StepShape shape = deciding_step(model, req);
  SplitChoice c;
  c.step = model.causal ? fmt::format("decode B{} at context {}", shape.batch, shape.context)
                        : fmt::format("forward pass B{} of {} tokens", shape.batch, shape.tokens);
  if (req.in_flight > 1) c.step += fmt::format(" with {} groups in flight (their period)", req.in_flight);
  for (const llm::Plan& p : candidates) {
    SplitOption o;
    o.tp = p.tp;
    o.stages = static_cast<int64_t>(p.stages.size());
    o.chips = p.chips;
    o.bound_cycles = llm::install_bound_cycles(p, chip);
    c.options.push_back(o);
  }
  auto make = [&](size_t i) {
    return std::make_unique<LlmSystem>(chip, model, candidates[i], build, fallback, req.precision);
  };
  if (candidates.size() == 1) {  // nothing to choose: no composing ahead of the run
    c.options[0].status = "chosen";
    *choice = std::move(c);
    return make(0);
  }
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return c.options[a].bound_cycles < c.options[b].bound_cycles; });
  std::unique_ptr<LlmSystem> best, fallback_sys;
  size_t best_i = 0;
  std::string default_error;  // the capacity default's compile error (strict builds, no fallback)
  for (size_t i : order) {
    SplitOption& o = c.options[i];
    if (!req.all_splits && best && o.bound_cycles >= c.options[best_i].cost_cycles) {
      o.status = fmt::format("not composed: its install bound ({} cycles) is not below the best {}", o.bound_cycles,
                             req.in_flight > 1 ? "period" : "step");
      continue;
    }
    std::unique_ptr<LlmSystem> sys = make(i);
    // Host time of this candidate; the chosen one's is moved back out below (its runner reports it).
    struct Clock {
      SplitChoice& c;
      LlmSystem& s;
      ~Clock() { c.search_seconds += s.runner().compile_seconds() + s.runner().simulate_seconds(); }
    } clock{c, *sys};
    StepResult r;
    try {
      r = sys->step(shape);
    } catch (const InputError& e) {
      o.status = std::string("does not compile: ") + e.what();
      if (i == 0) default_error = e.what();
      continue;
    }
    o.cycles = r.cycles;
    o.seconds = r.seconds;
    // K groups in flight: one token of every group per max(step, K x busiest chip span) (the chips'
    // part of pipeline_serving's period); never below the step, so the install bound still prunes.
    o.cost_cycles = req.in_flight > 1
                        ? std::max<uint64_t>(r.cycles, static_cast<uint64_t>(req.in_flight) * busiest_chip_span(r, chip))
                        : r.cycles;
    if (r.cycles < o.bound_cycles)
      throw std::logic_error(fmt::format("choose_split: tp {} composed {} cycles, below its install bound {}", o.tp,
                                         r.cycles, o.bound_cycles));
    if (!r.standins.empty()) {
      o.status = fmt::format("stand-in: {} piece(s) do not compile as the real graph", r.standins.size());
      if (i == 0) fallback_sys = std::move(sys);
      continue;
    }
    const bool better = !best || o.cost_cycles < c.options[best_i].cost_cycles ||
                        (o.cost_cycles == c.options[best_i].cost_cycles && o.tp > c.options[best_i].tp);
    if (better) {
      if (best) c.options[best_i].status = "slower";
      best = std::move(sys);
      best_i = i;
    } else {
      o.status = "slower";
    }
  }
  if (!best) {  // no candidate runs on the real graphs: the capacity default, as without a choice
    if (!fallback_sys) {
      if (!default_error.empty()) throw InputError(default_error);
      fallback_sys = make(0);
    }
    best = std::move(fallback_sys);
    best_i = 0;
  }
  c.search_seconds -= best->runner().compile_seconds() + best->runner().simulate_seconds();
  c.options[best_i].status = "chosen";
  c.chosen = best_i;
  *choice = std::move(c);
  return best;
}

}  // namespace lpu::system
