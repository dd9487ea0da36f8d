// `lpusim validate` as a user runs it, on its one cheap row (the int8 GEMM, under a second), the
// ResNet-50 row without its ONNX file and one decode row: `--row` picks rows by name, `--json`
// writes them with the figures the markdown prints, and the committed docs/validation.md holds the
// same GEMM lines a rerun writes (the page is current). An unknown row name is a corpus entry
// (validate_unknown_row).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "isa/chip_config.h"
#include "tests/support/cli.h"
#include "tests/support/files.h"
#include "tests/support/process.h"

namespace {

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lpusim_validate_cli_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// The lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("validate cli: --row runs the named rows and --json holds the figures the page prints", "[llm]") {
  const std::string md = tmp("page.md"), json = tmp("rows.json"), out = tmp("out.txt");
  const ProcessResult r = run_process(lpusim_exe(),
                                      {"validate", "--row", "ResNet-50", "--row", "dense GEMM peak", "-o", md,
                                       "--json", json},
                                      out, std::chrono::seconds(120), Stderr::ToOutput);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(read_text(json));
  CHECK(j.at("target_error_pct") == 25.0);
  const auto& rows = j.at("rows");
  REQUIRE(rows.size() == 2);  // in the table's order, not the arguments'
  const auto& gemm = rows.at(0);
  CHECK(gemm.at("workload") == "dense GEMM peak");
  CHECK(gemm.at("status") == "simulated");
  const double v = gemm.at("simulated"), pub = gemm.at("published"), err = gemm.at("error_pct");
  CHECK(err == Approx(100.0 * (v - pub) / pub));
  CHECK(gemm.at("within_target") == (std::fabs(err) <= 25.0));
  // The rate is the GEMM's MACs over the simulated cycles the note gives, at the chip's clock.
  const std::string note = gemm.at("note");
  const double cycles = std::stod(note.substr(0, note.find(' ')));
  CHECK(v == Approx(2.0 * 2560.0 * 2560.0 * 2560.0 / (cycles / lpu::default_chip_config()->clock_hz) / 1e12));
  const auto& resnet = rows.at(1);
  CHECK(resnet.at("workload") == "ResNet-50");
  CHECK(resnet.at("status") == "not simulated");
  CHECK(resnet.at("simulated").is_null());
  CHECK(resnet.at("within_target").is_null());
  CHECK(resnet.at("note").get<std::string>().find("--resnet50 FILE") != std::string::npos);
  // The page: these two rows only, and the GEMM's table row and note as the committed page has them.
  const std::string page = read_text(md);
  CHECK(lines_starting(page, "| ").size() == 4);  // header, rule, two rows
  CHECK(page.find("only the 2 of 8 rows named by `--row`") != std::string::npos);
  const std::string committed = read_text(std::string(LPU_SOURCE_DIR) + "/docs/validation.md");
  for (const std::string& prefix : {std::string("| dense GEMM peak |"), std::string("- **dense GEMM peak**:")}) {
    const auto now = lines_starting(page, prefix), doc = lines_starting(committed, prefix);
    REQUIRE(now.size() == 1);
    CHECK(doc == now);
  }
  std::filesystem::remove(md);
  std::filesystem::remove(json);
  std::filesystem::remove(out);
}

// A decode row (Llama-2 7B, its 80 chips and both splits: ~10 s): the JSON gives its token per
// layer, published (1 / the published rate) and simulated (1 / the simulated rate), and the page
// prints the same figures after the table.
TEST_CASE("validate cli: a decode row's token per layer, published against simulated", "[llm][heavy]") {
  const std::string md = tmp("decode.md"), json = tmp("decode.json"), out = tmp("decode.txt");
  const ProcessResult r = run_process(lpusim_exe(), {"validate", "--row", "Llama-2 7B", "-o", md, "--json", json}, out,
                                      std::chrono::seconds(300), Stderr::ToOutput);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(read_text(json));
  REQUIRE(j.at("rows").size() == 1);
  const auto& row = j.at("rows").at(0);
  REQUIRE(row.at("status") == "simulated");
  const auto& pl = row.at("us_per_layer");
  REQUIRE(pl.is_object());
  CHECK(pl.at("layers") == 32);  // workloads/llm/llama-2-7b.json num_hidden_layers
  const double pub = pl.at("published"), sim = pl.at("simulated");
  CHECK(pub == Approx(1e6 / 750.0 / 32.0));
  CHECK(sim == Approx(1e6 / row.at("simulated").get<double>() / 32.0));
  const std::string page = read_text(md);
  char line[160];
  std::snprintf(line, sizeof line, "Llama-2 7B %.1f us against %.1f (%+.1f us a layer, 32 layers)", pub, sim, pub - sim);
  CHECK(page.find(line) != std::string::npos);
  std::filesystem::remove(md);
  std::filesystem::remove(json);
  std::filesystem::remove(out);
}
