// Tests of sweeps over LLM workloads (workloads/llm/*.json, run by `lpusim llm`): each point's chip
// config and LLM options reach `lpusim llm` (figures equal a direct run's), the chip count and the
// other llm.* options are swept fields hashed into the point, and resume and shard/merge are as
// byte-exact as for programs. Tiny models (2 layers, hidden 128) keep each test about a second.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "isa/chip_config.h"
#include "sweep/spec.h"
#include "sweep_test_util.h"

using namespace sweep_test;
namespace fs = std::filesystem;

namespace {

std::string llm_path(const std::string& name) { return std::string(LPU_SOURCE_DIR) + "/workloads/llm/" + name; }

// 2 chip counts x 2 tiny models = 4 decode points.
fs::path write_llm_spec(const fs::path& dir) {
  const fs::path p = dir / "spec.yaml";
  write_file(p, "# tiny LLM sweep\nsweep: tiny_llm\ngrid:\n  llm.chips: [1, 2]\nworkloads: [" +
                    llm_path("tiny-llama.json") + ", " + llm_path("tiny-gpt2.json") +
                    "]\nllm:\n  phase: decode\n  prompt: 8\n  context: 32\n");
  return p;
}

std::vector<nlohmann::json> records(const fs::path& dir) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(dir / "results.jsonl"));
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST_CASE("sweep llm: LLM points run lpusim llm with the point's chip config and options, figures are the report's",
          "[sweep][llm]") {
  const fs::path d = scratch("llm-run");
  write_file(d / "spec.yaml", "grid:\n  clock_hz: [600.0e6, 1.2e9]\n  llm.chips: [1, 2]\nworkloads: [" +
                                  llm_path("tiny-llama.json") + "]\nllm: {phase: decode, prompt: 8, context: 32}\n");
  const Run r = lpusim("sweep '" + (d / "spec.yaml").string() + "' -o '" + (d / "out").string() + "' --jobs 2", d);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("ran 4 points (0 failed)") != std::string::npos);
  const std::vector<nlohmann::json> recs = records(d / "out");
  REQUIRE(recs.size() == 4);
  for (const nlohmann::json& rec : recs) {
    INFO(rec.dump());
    REQUIRE(rec["status"] == "ok");
    const nlohmann::json& f = rec["figures"];
    CHECK(f["chips"] == rec["params"]["llm.chips"]);  // the swept chip count is the planned one
    // The split run is the one with the shortest token of those that fit the chips (split_choice.h).
    CHECK(rec["params"]["llm.chips"].get<int64_t>() % f["tensor_parallel"].get<int64_t>() == 0);
    CHECK(f["piece_graphs"] == "segments");  // every piece the front end's real graph
    CHECK_FALSE(f.contains("ttft_us"));      // phase decode: no prefill was run
    CHECK(f["token_latency_us"].get<double>() > 0);
    // cycles are the same at both clocks; the chips' time scales as 1/clock, the host transfers
    // around them (compute + on-chip + chip-to-chip + host = the latency) do not
    const double chips_us = f["token_cycles"].get<double>() / rec["params"]["clock_hz"].get<double>() * 1e6;
    const double host_us = f["token_latency_us"].get<double>() - chips_us;
    CHECK(host_us > 2.0);  // two host transfers of at least 1 us each (tsp-v1 host section)
    CHECK(host_us < 3.0);
  }
  // The same cycles at both clocks for one chip count; more tokens per joule at the faster clock
  // (static energy per token falls with the token time).
  CHECK(recs[0]["figures"]["token_cycles"] == recs[2]["figures"]["token_cycles"]);
  CHECK(recs[2]["figures"]["tokens_per_joule"].get<double>() > recs[0]["figures"]["tokens_per_joule"].get<double>());
  // A point's figures are those of `lpusim llm` run by hand with its config file and options.
  const nlohmann::json& last = recs[3];
  const Run direct = lpusim("llm '" + llm_path("tiny-llama.json") + "' --chip '" +
                                (d / "out/configs" / (last["config_hash"].get<std::string>() + ".yaml")).string() +
                                "' --phase decode --prompt 8 --context 32 --chips 2 --json '" +
                                (d / "direct.json").string() + "'",
                            d);
  REQUIRE(direct.status == 0);
  const nlohmann::json dj = nlohmann::json::parse(read_file(d / "direct.json"));
  CHECK(dj["token_latency_us"] == last["figures"]["token_latency_us"]);
  CHECK(dj["tokens_per_joule"] == last["figures"]["tokens_per_joule"]);
  CHECK(read_file(d / "out/reports" / (last["hash"].get<std::string>() + ".json")) == read_file(d / "direct.json"));
  // The CSV has the LLM figure columns, not the program ones.
  const std::string csv = read_file(d / "out/results.csv");
  CHECK(csv.rfind("index,hash,config_hash,workload,precision,clock_hz,llm.chips,status,exit_code,chips,"
                  "tensor_parallel,pipeline_stages,ttft_us,token_latency_us,",
                  0) == 0);
  CHECK(csv.find(",instructions,") == std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("sweep llm: phase plan answers chip counts without simulating, a model that does not fit is a failed point",
          "[sweep][llm]") {
  const fs::path d = scratch("llm-plan");
  write_file(d / "spec.yaml", "grid:\n  memory.addresses_per_slice: [16, 8192]\nworkloads: [" +
                                  llm_path("llama-2-70b.json") + "]\nprecisions: [fp16]\nllm: {phase: plan}\n");
  const Run r = lpusim("sweep '" + (d / "spec.yaml").string() + "' -o '" + (d / "out").string() + "'", d);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const std::vector<nlohmann::json> recs = records(d / "out");
  REQUIRE(recs.size() == 2);
  CHECK(recs[0]["status"] == "failed");
  CHECK(recs[0]["error"].get<std::string>().find("does not fit any tensor-parallel split") != std::string::npos);
  REQUIRE(recs[1]["status"] == "ok");
  const nlohmann::json& f = recs[1]["figures"];
  CHECK(f["chips"].get<int64_t>() == f["tensor_parallel"].get<int64_t>() * f["pipeline_stages"].get<int64_t>());
  CHECK(f["sram_per_chip_bytes"] == lpu::default_chip_config()->sram_bytes_per_chip());
  CHECK_FALSE(f.contains("token_latency_us"));  // nothing was timed
  CHECK_FALSE(f.contains("piece_graphs"));
  const Run bad = lpusim("llm '" + llm_path("tiny-llama.json") + "' --phase prefil", d);
  CHECK(bad.status == 2);
  CHECK(bad.err.find("--phase: 'prefil' is not a phase (allowed: all, decode, plan)") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("sweep llm: resume after a kill mid-line loses nothing and repeats nothing", "[sweep][llm]") {
  const fs::path d = scratch("llm-resume");
  const fs::path spec = write_llm_spec(d);
  REQUIRE(lpusim("sweep '" + spec.string() + "' -o '" + (d / "clean").string() + "' --jobs 2", d).status == 0);
  REQUIRE(count_lines(read_file(d / "clean/results.jsonl")) == 4);
  // The interrupted run: the first point whole, the second cut mid-line (a kill during the append).
  fs::copy(d / "clean", d / "cut", fs::copy_options::recursive);
  const std::string full = read_file(d / "cut/results.jsonl");
  const size_t first = full.find('\n') + 1;
  write_file(d / "cut/results.jsonl", full.substr(0, first + (full.find('\n', first) - first) / 2));
  write_file(d / "cut/results.csv", "index,hash");
  const Run r = lpusim("sweep '" + spec.string() + "' -o '" + (d / "cut").string() + "' --resume --jobs 2", d);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("dropped a truncated last line") != std::string::npos);
  CHECK(r.out.find("4 points, 1 already done, 3 to run") != std::string::npos);
  require_same_outputs(d / "clean", d / "cut");
  // Changing an LLM option changes the sweep: its results are not reused.
  const std::string text = read_file(spec);
  write_file(spec, text.substr(0, text.find("context: 32")) + "context: 33\n");
  const Run other = lpusim("sweep '" + spec.string() + "' -o '" + (d / "cut").string() + "' --resume", d);
  CHECK(other.status == 2);
  CHECK(other.err.find("holds results of a different sweep") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("sweep llm: shards merged equal the unsharded run byte for byte", "[sweep][llm]") {
  const fs::path d = scratch("llm-shards");
  const fs::path spec = write_llm_spec(d);
  REQUIRE(lpusim("sweep '" + spec.string() + "' -o '" + (d / "whole").string() + "' --jobs 2", d).status == 0);
  std::string dirs;
  for (int i = 0; i < 2; ++i) {
    const fs::path sd = d / ("shard" + std::to_string(i));
    REQUIRE(lpusim("sweep '" + spec.string() + "' -o '" + sd.string() + "' --shard " + std::to_string(i) + "/2", d)
                .status == 0);
    CHECK(count_lines(read_file(sd / "results.jsonl")) == 2u);
    dirs += " '" + sd.string() + "'";
  }
  const Run m = lpusim("sweep merge" + dirs + " -o '" + (d / "merged").string() + "'", d);
  REQUIRE(m.status == 0);
  require_same_outputs(d / "whole", d / "merged");
  for (const auto& e : fs::directory_iterator(d / "whole" / "reports"))
    CHECK(read_file(d / "merged/reports" / e.path().filename()) == read_file(e.path()));
  fs::remove_all(d);
}

TEST_CASE("sweep llm: the point hash covers every LLM option, and only LLM points carry them", "[sweep][llm]") {
  using namespace lpu::sweep;
  const std::string tiny = llm_path("tiny-llama.json");
  auto hashes = [&](const std::string& llm_text) {
    const SweepSpec s = parse_sweep_spec("grid:\n  llm.chips: [0, 1]\nworkloads: [" + tiny + "]\n" + llm_text,
                                         "/virtual/spec.yaml");
    const Expansion e = expand_sweep(s);
    REQUIRE(e.points.size() == 2);
    CHECK(e.configs[0].hash == e.configs[1].hash);  // one chip config
    CHECK(e.points[0].hash != e.points[1].hash);    // two chip counts
    return std::make_pair(e.points[0].hash, e.configs[0].llm);
  };
  const auto base = hashes("");
  // Defaults as `lpusim llm`: phase all, prompt 128, context = prompt, batch 1, tp 0, pieces segments.
  CHECK(describe(base.second) ==
        "phase=all, prompt=128, context=128, batch=1, chips=0, tp=0, pieces=segments, in_flight=1");
  for (const char* opt : {"llm: {phase: decode}", "llm: {prompt: 64}", "llm: {context: 64}", "llm: {batch: 2}",
                          "llm: {tp: 2}", "llm: {pieces: dense-standin}", "llm: {in_flight: 2}"}) {
    INFO(opt);
    CHECK(hashes(opt).first != base.first);
  }
  CHECK(hashes("llm: {prompt: 128, context: 128}").first == base.first);  // the same options spelled out
  CHECK(hashes("llm: {context: 0128}").first == base.first);              // integers in canonical form
  // in_flight came later: at its default it is left out of the hash, so older results resume.
  CHECK(hashes("llm: {in_flight: 1}").first == base.first);
  // An option both set and swept is ambiguous: refused.
  try {
    parse_sweep_spec("grid:\n  llm.chips: [0, 1]\nworkloads: [" + tiny + "]\nllm: {chips: 2}\n", "/virtual/spec.yaml");
    FAIL("accepted");
  } catch (const lpu::InputError& e) {
    CHECK(std::string(e.what()) ==
          "/virtual/spec.yaml: llm.chips: set in the llm: map (2) and swept in grid; give it in one place");
  }
}
