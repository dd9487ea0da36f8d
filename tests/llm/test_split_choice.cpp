// Choosing the split (system/split_choice.h, docs/llm-system.md "Choosing the split"): the
// candidates the planner lists, the install bound that prunes them, and that the run takes the
// candidate whose composed token is shortest, each candidate's figure equal to a run forced to it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fmt/format.h>

#include "compiler/llm/partition.h"
#include "isa/chip_config.h"
#include "tests/support/llm_workloads.h"
#include "system/llm_run.h"

using namespace lpu;

namespace {

llm::PlanRequest decode_request(int64_t chips, int64_t tp = 0) {
  llm::PlanRequest r;
  r.prompt = 128;
  r.context = 128;
  r.chips = chips;
  r.tp = tp;
  return r;
}

// A decode-only run (no prefill), as `lpusim llm --phase decode`.
system::LlmRun decode_run(const llm::LlmConfig& m, const llm::PlanRequest& r) {
  auto chip = default_chip_config();
  return system::run_llm(*chip, m, r, {}, /*with_prefill=*/false);
}

}  // namespace

TEST_CASE("llm split: the candidates are every tp that fits the request, largest first", "[llm][split]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = test::workload_llm("tiny-wide");  // 16 heads, 4 kv heads
  const std::vector<llm::Plan> budget = llm::plan_candidates(m, decode_request(16), *chip);
  std::vector<int64_t> tps;
  for (const llm::Plan& p : budget) {
    tps.push_back(p.tp);
    CHECK(16 % p.tp == 0);
    CHECK(p.chips <= 16);
  }
  CHECK(tps == std::vector<int64_t>{16, 8, 4, 2, 1});
  CHECK(llm::plan_partition(m, decode_request(16), *chip).tp == 16);  // the capacity default: the first
  // Without --chips: only the sizes reaching the overall fewest chips (one chip holds tiny-wide).
  const std::vector<llm::Plan> fewest = llm::plan_candidates(m, decode_request(0), *chip);
  REQUIRE(fewest.size() == 1);
  CHECK(fewest[0].chips == 1);
  // --tp: that size only.
  REQUIRE(llm::plan_candidates(m, decode_request(16, 4), *chip).size() == 1);
  CHECK(llm::plan_candidates(m, decode_request(16, 4), *chip)[0].tp == 4);
}

TEST_CASE("llm split: matrix weights of a plan are the model's projections, and bound its steps", "[llm][split]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = test::workload_llm("tiny-llama");
  for (int64_t tp : {1, 2, 4}) {
    const llm::Plan p = llm::plan_partition(m, decode_request(0, tp), *chip);
    uint64_t total = 0, per_chip = 0;
    for (const llm::PlanPiece& pc : p.pieces) {
      total += pc.matrix_weights * static_cast<uint64_t>(pc.shard_size);
      per_chip += pc.matrix_weights;
    }
    // k and v once per kv head, or one copy per chip when tp is wider (KV-head replication).
    const uint64_t attn =
        static_cast<uint64_t>(2 * m.hidden * (m.heads + std::max<int64_t>(m.kv_heads, tp)) * m.head_dim);
    const uint64_t ffn = static_cast<uint64_t>((m.gated_ffn ? 3 : 2) * m.hidden * m.ffn);
    CHECK(total == static_cast<uint64_t>(m.layers) * (attn + ffn) + static_cast<uint64_t>(m.hidden * m.vocab));
    // 1,280 weights per cycle on tsp-v1: 2 MXMs x 2 planes x one lw row of 320.
    const uint64_t rate = llm::install_weights_per_cycle(*chip);
    CHECK(rate == 1280);
    CHECK(llm::install_bound_cycles(p, *chip) <= per_chip / rate);
    CHECK(llm::install_bound_cycles(p, *chip) + p.pieces.size() >= per_chip / rate);
  }
}

TEST_CASE("llm split: the run takes the shortest composed token, each equal to a run forced to its tp",
          "[llm][split][heavy]") {
  const llm::LlmConfig m = test::workload_llm("tiny-wide");
  const system::LlmRun run = decode_run(m, decode_request(16));
  const system::SplitChoice& c = run.split;
  REQUIRE(c.options.size() == 5);
  CHECK(c.step == "decode B1 at context 128");
  uint64_t fastest = 0;
  int64_t fastest_tp = 0;
  for (const system::SplitOption& o : c.options) {
    INFO("tp " << o.tp << ": " << o.status);
    const system::LlmRun forced = decode_run(m, decode_request(16, o.tp));
    CHECK(forced.split.options.size() == 1);
    const uint64_t cycles = forced.decode.cycles;
    CHECK(o.bound_cycles <= cycles);  // the install bound is a lower bound
    if (o.cycles) {
      CHECK(o.cycles == cycles);  // composed during the choice == the same split run on its own
    } else {
      CHECK(o.status.rfind("not composed", 0) == 0);
    }
    if (!fastest_tp || cycles < fastest || (cycles == fastest && o.tp > fastest_tp)) {
      fastest = cycles;
      fastest_tp = o.tp;
    }
  }
  CHECK(run.plan.tp == fastest_tp);
  CHECK(run.decode.cycles == fastest);
  CHECK(c.options[c.chosen].tp == fastest_tp);
  CHECK(c.options[c.chosen].status == "chosen");
  // Deterministic, and in both reports.
  auto chip = default_chip_config();
  const system::LlmRun again = decode_run(m, decode_request(16));
  CHECK(system::llm_json_report(again, *chip).dump() == system::llm_json_report(run, *chip).dump());
  const auto j = system::llm_json_report(run, *chip);
  REQUIRE(j["split"]["options"].size() == 5);
  CHECK(j["split"]["options"][c.chosen]["status"] == "chosen");
  CHECK(system::llm_text_report(run, *chip).find("split         tp " + std::to_string(fastest_tp) + " chosen of 5") !=
        std::string::npos);
}

TEST_CASE("llm split: a split whose install bound exceeds the best composed token is not composed",
          "[llm][split][heavy]") {
  // Llama-2 7B on 72 chips: tp 8 x 9, 4 x 17, 2 x 33 fit; the narrower ones install 2x and 4x the
  // weights per chip along the pipeline, more than tp 8's whole composed token.
  const llm::LlmConfig m = test::workload_llm("llama-2-7b");
  const system::LlmRun run = decode_run(m, decode_request(72));
  const system::SplitChoice& c = run.split;
  REQUIRE(c.options.size() == 3);
  CHECK(run.plan.tp == 8);
  const uint64_t best = c.options[c.chosen].cycles;
  CHECK(best == run.decode.cycles);
  CHECK(c.options[c.chosen].seconds == run.decode.seconds);
  for (const system::SplitOption& o : c.options) {
    if (o.tp == 8) continue;
    CHECK(o.cycles == 0);
    CHECK(o.seconds == 0);
    CHECK(o.bound_cycles >= best);
    CHECK(o.status.rfind("not composed", 0) == 0);
  }

  // PlanRequest::all_splits (`lpusim llm --all-splits`, validate's decode rows): the pruned splits
  // are composed too, each equal to a run forced to its tp, and the choice does not change. (tp 2's
  // attention piece compiles since place_weights retries smaller weight groups.)
  llm::PlanRequest every = decode_request(72);
  every.all_splits = true;
  const system::LlmRun all = decode_run(m, every);
  REQUIRE(all.split.options.size() == 3);
  CHECK(all.plan.tp == 8);
  CHECK(all.decode.cycles == run.decode.cycles);
  CHECK(all.split.options[all.split.chosen].status == "chosen");
  for (const system::SplitOption& o : all.split.options) {
    INFO("tp " << o.tp << ": " << o.status);
    CHECK(o.status.rfind("not composed", 0) == std::string::npos);
    const system::LlmRun forced = decode_run(m, decode_request(72, o.tp));
    CHECK(o.cycles == forced.decode.cycles);
    CHECK(o.seconds == forced.decode.seconds);
    CHECK(o.cycles >= o.bound_cycles);
    if (o.tp != 8) {
      CHECK(o.cycles > all.decode.cycles);  // the install bound's pruning was right
      CHECK(o.status == "slower");
    }
  }
  // The text report gives every split's step.
  auto chip = default_chip_config();
  const std::string text = system::llm_text_report(all, *chip);
  for (const system::SplitOption& o : all.split.options)
    if (o.cycles) CHECK(text.find(fmt::format("step {} cycles ({:.2f} us with the host transfer)", o.cycles, o.seconds * 1e6)) !=
          std::string::npos);
}
