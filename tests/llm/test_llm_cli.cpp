// `lpusim llm` as a user runs it: the JSON report's top-level keys, consistent figures, and bad
// input named with exit status 2.
#include <catch2/catch.hpp>

#include "tests/support/cli.h"
#include "tests/support/files.h"
#include "tests/support/process.h"

#include <filesystem>
#include <nlohmann/json.hpp>

namespace {

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lpusim_llm_cli_" + std::to_string(::getpid()) + "_" + name)).string();
}

}  // namespace

TEST_CASE("llm cli: lpusim llm writes the LLM report with its top-level figures", "[llm]") {
  const std::string cfg = std::string(LPU_SOURCE_DIR) + "/workloads/llm/tiny-llama.json";
  const std::string json = tmp("report.json"), out = tmp("out.txt");
  ProcessResult r = run_process(lpusim_exe(),
                                {"llm", cfg, "--chips", "4", "--tp", "2", "--prompt", "8",
                                 "--context", "16", "--batch", "2", "--json", json},
                                out, std::chrono::seconds(60), Stderr::ToOutput);
  INFO(r.output);
  REQUIRE(r.status == 0);
  // The front end's real graphs compile for tiny-llama: no piece falls back to a stand-in.
  CHECK(r.output.find("STAND-IN") == std::string::npos);
  const auto j = nlohmann::json::parse(read_text(json));
  CHECK(j.at("chips") == 4);
  CHECK(j.at("piece_graphs") == "segments");
  CHECK(j.at("standin_pieces").empty());
  const double lat = j.at("token_latency_us"), ttft = j.at("ttft_us");
  CHECK(lat > 0);
  CHECK(ttft > lat);  // prefill of 8 tokens + the first token
  CHECK(j.at("tokens_per_second_per_user").get<double>() == Approx(1e6 / lat));
  CHECK(j.at("tokens_per_second").get<double>() == Approx(2e6 / lat));
  const double tpj = j.at("tokens_per_joule"), power = j.at("power_w");
  CHECK(tpj > 0);
  CHECK(power == Approx(2.0 / tpj / (lat * 1e-6)));  // energy per step = batch / tokens_per_joule
  const auto& tt = j.at("token_time");
  CHECK(tt.at("compute_us").get<double>() + tt.at("onchip_data_movement_us").get<double>() +
            tt.at("chip_to_chip_us").get<double>() + tt.at("host_transfer_us").get<double>() ==
        Approx(lat));
  CHECK(tt.at("host_transfer_us").get<double>() > 2.0);  // rows in, logits out: 1 us of latency each
  CHECK(j.at("sram_per_chip").at("capacity_bytes").get<uint64_t>() > 0);
  std::filesystem::remove(json);
  std::filesystem::remove(out);
}

TEST_CASE("llm cli: bad precision and too few chips are input errors", "[llm]") {
  const std::string cfg = std::string(LPU_SOURCE_DIR) + "/workloads/llm/llama-2-7b.json";
  const std::string out = tmp("err.txt");
  ProcessResult r = run_process(lpusim_exe(), {"llm", cfg, "--precision", "fp8"}, out, std::chrono::seconds(30),
                                Stderr::ToOutput);
  CHECK(r.status == 2);
  CHECK(r.output.find("--precision: 'fp8'") != std::string::npos);
  r = run_process(lpusim_exe(), {"llm", cfg, "--chips", "2"}, out, std::chrono::seconds(30), Stderr::ToOutput);
  CHECK(r.status == 2);
  CHECK(r.output.find("--chips 2") != std::string::npos);
  std::filesystem::remove(out);
}

TEST_CASE("llm cli: lpusim run with no MODEL is the LLM decode, timing only", "[llm]") {
  // The default run itself takes tens of seconds (scripts/run.sh); here only its argument contract.
  const std::string out = tmp("run.txt");
  ProcessResult r = run_process(lpusim_exe(), {"run", "--mode", "functional"}, out, std::chrono::seconds(30),
                                Stderr::ToOutput);
  CHECK(r.status == 2);
  CHECK(r.output.find("need a MODEL") != std::string::npos);
  r = run_process(lpusim_exe(), {"run", "--help"}, out, std::chrono::seconds(30), Stderr::ToOutput);
  CHECK(r.status == 0);
  CHECK(r.output.find("Llama-2 7B decode") != std::string::npos);
  std::filesystem::remove(out);
}

TEST_CASE("llm cli: an encoder's tokens/s says it counts prompt tokens through the model", "[llm]") {
  const std::string cfg = std::string(LPU_SOURCE_DIR) + "/workloads/llm/tiny-bert.json";
  const std::string out = tmp("bert.txt");
  ProcessResult r = run_process(lpusim_exe(), {"llm", cfg, "--prompt", "16"}, out, std::chrono::seconds(60),
                                Stderr::ToOutput);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("forward pass") != std::string::npos);
  CHECK(r.output.find("an encoder has no decode: prompt tokens through the model") != std::string::npos);
  CHECK(r.output.find("passes of 16 tokens a second per user") != std::string::npos);
  std::filesystem::remove(out);
}

TEST_CASE("llm cli: a config name resolves from an lpusim outside the source tree, an unknown name is named", "[llm]") {
  // A copy of lpusim in a temporary directory: neither the working directory (the test's) nor the
  // directories above the executable hold workloads/llm, so only the source tree it was built from
  // (tools/cli_io.h find_repo_file) can resolve the bare name.
  const std::filesystem::path dir = tmp("outside");
  std::filesystem::create_directories(dir);
  const std::filesystem::path exe = dir / "lpusim";
  std::filesystem::copy_file(lpusim_exe(), exe, std::filesystem::copy_options::overwrite_existing);
  const std::string out = tmp("name.txt");
  ProcessResult r = run_process(exe.string(), {"llm", "tiny-bert", "--prompt", "16"}, out, std::chrono::seconds(60),
                                Stderr::ToOutput);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("forward pass") != std::string::npos);
  r = run_process(exe.string(), {"llm", "no-such-model"}, out, std::chrono::seconds(30), Stderr::ToOutput);
  CHECK(r.status == 2);
  CHECK(r.output.find("'no-such-model' is neither a file nor the name of a config in workloads/llm") !=
        std::string::npos);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(out);
}
