// Pipelined serving (system/pipeline_serving.h): K groups in flight through the stages.
// The periodic schedule is exact: K copies of a step's timeline, shifted by the busiest chip's
// span, concatenate into one system program that SystemC runs in (K-1) x interval + step cycles
// with K x the step's energy events (tiny-llama, tp 2 x 2 stages, the front end's real graphs).
// The serving figures follow the period formula; the planner counts K KV caches per chip.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "compiler/llm/partition.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_run.h"
#include "system/llm_system.h"
#include "system/pipeline_serving.h"

using namespace lpu;

namespace {

llm::LlmConfig tiny() {
  return llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/tiny-llama.json");
}

llm::PlanRequest four_chips() {
  llm::PlanRequest req;
  req.chips = 4;
  req.tp = 2;
  req.prompt = 4;
  req.context = 4;
  return req;
}

}  // namespace

TEST_CASE("pipeline serving: K shifted copies of a step simulate exactly as composed", "[llm]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = tiny();
  const llm::Plan plan = llm::plan_partition(m, four_chips(), *chip);
  REQUIRE(plan.stages.size() == 2);
  system::LlmSystem sys(*chip, m, plan);
  sys.runner().keep_programs(true);
  const llm::StepShape decode = llm::decode_step(2, 4);
  const system::StepResult st = sys.step(decode);
  const uint64_t interval = system::busiest_chip_span(st, *chip);
  // Two stages: no chip is busy for the whole step, so a second group can enter before it ends.
  CHECK(interval > 0);
  CHECK(interval < st.cycles);
  for (int64_t k : {2, 3}) {
    INFO("K = " << k);
    const auto timeline = system::pipelined_timeline(st, k, interval);
    CHECK(timeline.size() == st.timeline.size() * static_cast<size_t>(k));
    Program whole = system::concatenate(timeline, sys.runner(), static_cast<uint32_t>(plan.chips), *chip);
    const uint64_t want = static_cast<uint64_t>(k - 1) * interval + st.cycles;
    CHECK(whole.predicted_cycles == want);
    sim::SimOptions opt;
    opt.mode = sim::Mode::Timing;
    const sim::SimResult r = sim::simulate(whole, *chip, opt);
    CHECK(r.cycles == want);
    for (int e = 0; e < kNumEnergyEvents; ++e) {
      uint64_t n = 0;
      for (const auto& c : r.chips) n += c.events[static_cast<size_t>(e)];
      INFO("event " << e);
      CHECK(n == static_cast<uint64_t>(k) * st.events[static_cast<size_t>(e)]);
    }
  }
  // Groups entering closer together than their programs allow are refused, not overlapped.
  CHECK_THROWS_AS(system::concatenate(system::pipelined_timeline(st, 2, 1), sys.runner(),
                                      static_cast<uint32_t>(plan.chips), *chip),
                  std::logic_error);
}

TEST_CASE("pipeline serving: period, throughput and energy follow the groups in flight", "[llm]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = tiny();
  const llm::Plan plan = llm::plan_partition(m, four_chips(), *chip);
  system::LlmSystem sys(*chip, m, plan);
  const llm::StepShape decode = llm::decode_step(2, 4);
  const system::StepResult st = sys.step(decode);
  const uint32_t chips = static_cast<uint32_t>(plan.chips);
  const system::PipelineServing one = system::pipeline_serving(st, 1, 1, chips, *chip);
  // One group: a token every step (the host transfers around it are longer than any drain).
  CHECK(one.period_seconds == st.seconds);
  CHECK(one.tokens_per_second_per_user == Approx(1.0 / st.seconds));
  CHECK(one.tokens_per_second == Approx(2.0 / st.seconds));
  CHECK(one.tokens_per_joule == Approx(2.0 / st.energy_j));
  CHECK(one.full_at >= 2);
  double last_aggregate = 0, last_user = 1e300;
  for (int64_t k = 1; k <= one.full_at + 2; ++k) {
    INFO("K = " << k);
    const system::PipelineServing p = system::pipeline_serving(st, k, 1, chips, *chip);
    CHECK(p.interval_seconds == one.interval_seconds);
    const double period = std::max(st.seconds, static_cast<double>(k) * one.interval_seconds);
    CHECK(p.period_seconds == Approx(period));
    CHECK(p.tokens_per_second == Approx(static_cast<double>(2 * k) / period));
    CHECK(p.energy_j ==
          Approx(static_cast<double>(k) * st.dynamic_j + chip->static_power_w * static_cast<double>(chips) * period));
    CHECK(p.tokens_per_second >= last_aggregate * (1 - 1e-12));
    CHECK(p.tokens_per_second_per_user <= last_user * (1 + 1e-12));
    if (k <= one.full_at - 1) CHECK(p.tokens_per_second_per_user == Approx(1.0 / st.seconds));  // no user waits
    if (k > one.full_at) CHECK(p.tokens_per_second == Approx(last_aggregate));                // pipeline full
    last_aggregate = p.tokens_per_second;
    last_user = p.tokens_per_second_per_user;
  }
  CHECK(system::pipeline_serving(st, 2, 1, chips, *chip).tokens_per_joule > one.tokens_per_joule);
}

TEST_CASE("pipeline serving: the planner holds one KV cache per group in flight", "[llm]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = tiny();
  llm::PlanRequest req = four_chips();
  req.context = 64;
  const llm::Plan one = llm::plan_partition(m, req, *chip);
  req.in_flight = 3;
  const llm::Plan three = llm::plan_partition(m, req, *chip);
  REQUIRE(one.pieces.size() == three.pieces.size());
  uint64_t kv_one = 0, kv_three = 0;
  for (size_t i = 0; i < one.pieces.size(); ++i) {
    CHECK(three.pieces[i].kv_bytes == 3 * one.pieces[i].kv_bytes);
    kv_one += one.pieces[i].kv_bytes;
  }
  for (const llm::StagePlan& s : three.stages) kv_three += s.kv_bytes;  // the stages hold all of it
  CHECK(kv_one > 0);
  CHECK(kv_three == 3 * kv_one);
  req.in_flight = 0;
  CHECK_THROWS_WITH(llm::plan_partition(m, req, *chip), Catch::Contains("--in-flight 0 must be in [1, 4096]"));
  req.in_flight = llm::kMaxInFlight + 1;
  CHECK_THROWS_AS(llm::plan_partition(m, req, *chip), InputError);
}

TEST_CASE("pipeline serving: run_llm reports the served figures and picks the split by the period", "[llm]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = tiny();
  llm::PlanRequest req = four_chips();
  req.tp = 0;  // every tp that fits 4 chips is a candidate
  req.in_flight = 3;
  const system::LlmRun run = system::run_llm(*chip, m, req, {}, false);
  CHECK(run.serving.in_flight == 3);
  CHECK(run.tokens_per_second == Approx(run.serving.tokens_per_second));
  CHECK(run.tokens_per_second == Approx(3.0 / run.serving.period_seconds));
  // The chosen split has the shortest period of those composed.
  const system::SplitOption& chosen = run.split.options.at(run.split.chosen);
  for (const system::SplitOption& o : run.split.options)
    if (o.cycles > 0) {
      CHECK(o.cost_cycles >= o.cycles);
      CHECK(chosen.cost_cycles <= o.cost_cycles);
    }
  const auto j = system::llm_json_report(run, *chip);
  CHECK(j.at("in_flight") == 3);
  CHECK(j.at("pipeline").at("in_flight") == 3);
  CHECK(j.at("pipeline").at("period_us").get<double>() == Approx(run.serving.period_seconds * 1e6));
}
