// Host transfer around an LLM step (system/llm_system.h host_transfer_seconds, chip config section
// `host`): the formula, its place in the reports, and a chip config without a host link.
#include <catch2/catch.hpp>

#include <string>

#include "isa/chip_config.h"
#include "system/llm_run.h"
#include "tests/support/llm_workloads.h"

using namespace lpu;

namespace {

// The built-in config with its `host` section cut off (it is the last section of tsp-v1.yaml).
std::string yaml_without_host() {
  const std::string& y = default_chip_config_yaml();
  const size_t at = y.find("\nhost:");
  REQUIRE(at != std::string::npos);
  return y.substr(0, at + 1);
}

llm::PlanRequest request(int64_t chips, int64_t tp) {
  llm::PlanRequest r;
  r.prompt = 16;
  r.context = 16;
  r.chips = chips;
  r.tp = tp;
  return r;
}

}  // namespace

TEST_CASE("llm host transfer: rows in to the first stage, logits out of the LM-head chips", "[llm][host]") {
  auto chip = default_chip_config();
  REQUIRE(chip->host_link_bytes_per_s == 31.5e9);
  REQUIRE(chip->host_link_latency_s == 1.0e-6);
  const llm::LlmConfig m = test::workload_llm("tiny-llama");  // hidden 128, vocab 512
  const llm::Plan plan = llm::plan_partition(m, request(4, 2), *chip);
  const llm::StepShape decode = llm::decode_step(3, 16);
  // In: 3 rows x 128 x 2 B; out: 3 x 512 x 2 B over the 2 LM-head chips.
  const double want = 2e-6 + (3.0 * 128 * 2) / 31.5e9 + (3.0 * 512 * 2 / 2) / 31.5e9;
  CHECK(system::host_transfer_seconds(*chip, m, plan, decode) == Approx(want).epsilon(1e-12));
  llm::StepShape prefill = decode;
  prefill.phase = llm::Phase::Prefill;
  prefill.tokens = 16;
  prefill.context = 0;
  // Prefill writes every row; the host still reads one row of logits per sequence.
  CHECK(system::host_transfer_seconds(*chip, m, plan, prefill) ==
        Approx(2e-6 + (48.0 * 128 * 2) / 31.5e9 + (3.0 * 512 * 2 / 2) / 31.5e9).epsilon(1e-12));
}

TEST_CASE("llm host transfer: the step's latency is the chips' cycles plus the host time", "[llm][host]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = test::workload_llm("tiny-llama");
  const system::LlmRun run = system::run_llm(*chip, m, request(0, 0));
  const auto j = system::llm_json_report(run, *chip);
  const double host = j["token_time"]["host_transfer_us"];
  CHECK(host > 2.0);  // two transfers of at least 1 us each
  CHECK(j["token_latency_us"].get<double>() ==
        Approx(static_cast<double>(run.decode.cycles) / chip->clock_hz * 1e6 + host).epsilon(1e-12));
  for (const auto& st : j["steps"])
    CHECK(st["latency_us"].get<double>() ==
          Approx(st["cycles"].get<double>() / chip->clock_hz * 1e6 + st["host_transfer_us"].get<double>())
              .epsilon(1e-12));
  // TTFT = prefill + first token, each with its host transfers.
  CHECK(run.ttft_us == Approx((run.prefill.seconds + run.first_decode.seconds) * 1e6).epsilon(1e-12));
  CHECK(system::llm_text_report(run, *chip).find("host transfer ") != std::string::npos);

  // Without a host section: no host time, and the report says why.
  auto bare = parse_chip_config(yaml_without_host(), "no-host.yaml");
  CHECK(bare->host_link_bytes_per_s == 0);
  const system::LlmRun r0 = system::run_llm(*bare, m, request(0, 0));
  CHECK(r0.decode.cycles == run.decode.cycles);  // the chips do the same work
  CHECK(r0.decode.host_seconds == 0);
  CHECK(r0.token_latency_us == Approx(static_cast<double>(r0.decode.cycles) / bare->clock_hz * 1e6).epsilon(1e-12));
  CHECK(system::llm_text_report(r0, *bare).find("no host link in the chip config") != std::string::npos);
}

TEST_CASE("llm host transfer: the host section is optional, checked, and dumped", "[llm][host]") {
  const std::string base = yaml_without_host();
  CHECK(dump_chip_config(*parse_chip_config(default_chip_config_yaml(), "tsp-v1")).find("host:\n  link_bytes_per_s: ") !=
        std::string::npos);
  // Round trip: the dump reads back as the same host link.
  const auto again = parse_chip_config(dump_chip_config(*default_chip_config()), "dump");
  CHECK(again->host_link_bytes_per_s == default_chip_config()->host_link_bytes_per_s);
  CHECK(again->host_link_latency_s == default_chip_config()->host_link_latency_s);
  CHECK_THROWS_WITH(parse_chip_config(base + "host:\n  link_bytes_per_s: 0\n  link_latency_s: 1.0e-6\n", "bad.yaml"),
                    Catch::Contains("host.link_bytes_per_s") && Catch::Contains("got 0"));
  CHECK_THROWS_WITH(parse_chip_config(base + "host:\n  link_bytes_per_s: 1.0e9\n", "bad.yaml"),
                    Catch::Contains("missing required key 'link_latency_s'"));
  CHECK_THROWS_WITH(parse_chip_config(base + "host:\n  link_bytes_per_s: 1.0e9\n  link_latency_s: 2.0\n", "bad.yaml"),
                    Catch::Contains("host.link_latency_s"));
  CHECK_THROWS_WITH(parse_chip_config(base + "hosts: 1\n", "bad.yaml"), Catch::Contains("'hosts'") &&
                                                                        Catch::Contains("host"));
}
