// The project's own cycle-count goldens (tests/golden/<name>.json, written by
// scripts/update_goldens.sh) are gated by `lpusim regress` exactly as a user's CI would gate theirs
// (docs/regress.md): every golden passes against a fresh run of workloads/asm/<name>.s, and a golden
// whose cycle count differs makes regress fail with a table naming the figure, both values and the
// difference.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/sweep/sweep_test_util.h"

using namespace sweep_test;
namespace fs = std::filesystem;

namespace {
std::vector<fs::path> project_goldens() {
  std::vector<fs::path> g;
  for (const auto& e : fs::directory_iterator(fs::path(LPU_SOURCE_DIR) / "tests" / "golden"))
    if (e.path().extension() == ".json") g.push_back(e.path());
  std::sort(g.begin(), g.end());
  return g;
}
}  // namespace

TEST_CASE("goldens: every project golden passes lpusim regress against a fresh run", "[golden][regress]") {
  const fs::path d = scratch("goldens");
  const auto goldens = project_goldens();
  REQUIRE(goldens.size() >= 6);  // full_busy, matmul_320_int8, reduction, transpose, two_chip, vector_add
  for (const fs::path& g : goldens) {
    const std::string name = g.stem().string();
    INFO(g.string());
    REQUIRE(fs::exists(asm_path(name + ".s")));
    const Run r = lpusim("regress '" + g.string() + "' '" + asm_path(name + ".s") + "'", d);
    INFO(r.out << r.err);
    CHECK(r.status == 0);
    CHECK(r.out.find("identical: all ") != std::string::npos);
  }
  fs::remove_all(d);
}

TEST_CASE("goldens: a changed cycle count makes regress fail with a readable difference", "[golden][regress]") {
  const fs::path d = scratch("goldens-moved");
  const fs::path golden = fs::path(LPU_SOURCE_DIR) / "tests" / "golden" / "reduction.json";
  nlohmann::ordered_json g = nlohmann::ordered_json::parse(read_file(golden));
  const long long cycles = g["cycles"].get<long long>();
  g["cycles"] = cycles + 3;  // the golden claims 3 more cycles than the program takes
  write_file(d / "reduction.json", g.dump(2) + "\n");
  const Run r = lpusim("regress '" + (d / "reduction.json").string() + "' '" + asm_path("reduction.s") + "'", d);
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  // The table row: figure, golden, current, delta, percent, verdict.
  const size_t at = r.out.find("\ncycles ");
  REQUIRE(at != std::string::npos);
  const std::string row = r.out.substr(at + 1, r.out.find('\n', at + 1) - at - 1);
  CHECK(row.find(" " + std::to_string(cycles + 3) + " ") != std::string::npos);
  CHECK(row.find(" " + std::to_string(cycles) + " ") != std::string::npos);
  CHECK(row.find(" -3 ") != std::string::npos);
  CHECK(row.find("FAIL: cycle count changed") != std::string::npos);
  CHECK(r.out.find(": FAIL\n") != std::string::npos);
  // A tolerance does not excuse a cycle change.
  CHECK(lpusim("regress '" + (d / "reduction.json").string() + "' '" + asm_path("reduction.s") + "' --tolerance-pct 50", d).status == 1);
  fs::remove_all(d);
}
