// scripts/plot_sweep.py on a committed sweep's output: it writes the line, heat-map and Pareto
// pictures as non-empty PNG and SVG, the bytes are the same on a second run, the pictures
// follow the data, and bad input exits 2 naming the file and the field.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/sweep/sweep_test_util.h"
#include "tests/tutorial/python.h"

using namespace sweep_test;
namespace fs = std::filesystem;

namespace {
const std::string kScript = std::string(LPU_SOURCE_DIR) + "/scripts/plot_sweep.py";

ProcessResult plot(const fs::path& dir, const std::vector<std::string>& args) {
  std::vector<std::string> a{kScript};
  a.insert(a.end(), args.begin(), args.end());
  return run_process(debian_python3(), a, (dir / "plot.out").string(), std::chrono::seconds(60), Stderr::ToOutput);
}

// Runs workloads/sweeps/energy_vs_clock.yaml (20 points, two swept fields) into dir/evc.
fs::path run_sweep(const fs::path& dir) {
  const fs::path out = dir / "evc";
  const Run r = lpusim("sweep '" + std::string(LPU_SOURCE_DIR) + "/workloads/sweeps/energy_vs_clock.yaml' -o '" +
                           out.string() + "' --jobs 2",
                       dir);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  return out;
}
}  // namespace

TEST_CASE("plot_sweep: line plots and heat map and Pareto front of a sweep as byte-stable SVG and PNG", "[plot][tutorial]") {
  const fs::path d = scratch("plot-sweep");
  const fs::path sweep = run_sweep(d);
  const ProcessResult a = plot(d, {sweep.string(), "-o", (d / "a").string(), "--y", "items_per_joule"});
  INFO(a.output);
  REQUIRE(a.status == 0);
  const std::vector<std::string> stems = {
      "energy_vs_clock-items_per_joule-vs-clock_hz", "energy_vs_clock-items_per_joule-vs-energy_static_power_w",
      "energy_vs_clock-items_per_joule-heatmap", "energy_vs_clock-pareto"};
  for (const std::string& s : stems) {
    INFO(s);
    const std::string svg = read_file(d / "a" / (s + ".svg")), png = read_file(d / "a" / (s + ".png"));
    CHECK(svg.size() > 1000);
    CHECK(svg.find("<svg") != std::string::npos);
    CHECK(svg.find("dc:date") == std::string::npos);  // no date: same bytes tomorrow
    CHECK(png.size() > 1000);
    CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
    CHECK(a.output.find((d / "a" / (s + ".svg")).string()) != std::string::npos);  // listed on stdout
  }
  // Same results, same bytes.
  const ProcessResult b = plot(d, {sweep.string(), "-o", (d / "b").string(), "--y", "items_per_joule"});
  REQUIRE(b.status == 0);
  for (const std::string& s : stems) {
    INFO(s);
    CHECK(read_file(d / "a" / (s + ".svg")) == read_file(d / "b" / (s + ".svg")));
    CHECK(read_file(d / "a" / (s + ".png")) == read_file(d / "b" / (s + ".png")));
  }
  // The pictures follow the data: one changed figure changes the line plot.
  std::string jsonl = read_file(sweep / "results.jsonl");
  const size_t at = jsonl.find("\"items_per_joule\":");
  REQUIRE(at != std::string::npos);
  jsonl.insert(at + 18, "1");  // a leading digit: a different value
  write_file(sweep / "results.jsonl", jsonl);
  const ProcessResult c = plot(d, {sweep.string(), "-o", (d / "c").string(), "--y", "items_per_joule", "--x", "clock_hz"});
  REQUIRE(c.status == 0);
  CHECK(read_file(d / "c" / (stems[0] + ".svg")) != read_file(d / "a" / (stems[0] + ".svg")));
  CHECK_FALSE(fs::exists(d / "c" / (stems[1] + ".svg")));  // --x: only that field's line plot
  fs::remove_all(d);
}

TEST_CASE("plot_sweep: bad input exits 2 naming the file and the field", "[plot][tutorial]") {
  const fs::path d = scratch("plot-sweep-bad");
  // No results file.
  ProcessResult r = plot(d, {(d / "nothing").string()});
  CHECK(r.status == 2);
  CHECK(r.output.find((d / "nothing" / "results.jsonl").string() + ": cannot read the sweep results file") != std::string::npos);
  const fs::path sweep = run_sweep(d);
  // Unknown metric and field.
  r = plot(d, {sweep.string(), "--y", "tokens_per_joule"});
  CHECK(r.status == 2);
  CHECK(r.output.find("results.jsonl: unknown metric 'tokens_per_joule' (--y)") != std::string::npos);
  CHECK(r.output.find("items_per_joule") != std::string::npos);  // lists what is there
  r = plot(d, {sweep.string(), "--x", "sram_bytes"});
  CHECK(r.status == 2);
  CHECK(r.output.find("unknown field 'sram_bytes' (--x): not a swept parameter; swept: clock_hz, energy.static_power_w") !=
        std::string::npos);
  // A damaged line names the file and the line.
  std::string jsonl = read_file(sweep / "results.jsonl");
  write_file(sweep / "results.jsonl", jsonl.substr(0, jsonl.find('\n') + 1) + "{\"index\": 1, \"trunc\n");
  r = plot(d, {sweep.string()});
  CHECK(r.status == 2);
  CHECK(r.output.find("results.jsonl:2: not a JSON record") != std::string::npos);
  CHECK_FALSE(fs::exists(sweep / "plots"));
  fs::remove_all(d);
}
