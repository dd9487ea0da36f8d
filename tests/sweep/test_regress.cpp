// Tests of `lpusim regress`: the report comparison (which figures moved, what fails) and the
// command's exit codes and text against a golden report of workloads/asm/vector_add.s.
#include "sweep/regress.h"
#include "sweep_test_util.h"

using namespace sweep_test;
using lpu::sweep::compare_reports;
using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {
ojson sample() {
  return ojson::parse(R"({"schema_version":1,"config":"tsp-v1","cycles":38,"latency_us":0.5,"energy_j":2.0e-6,
    "utilization":{"by_kind":{"MEM":{"busy_cycles":3,"utilization":0.01}},"busiest":[{"slice":"VXM","busy_cycles":1}]}})");
}
}  // namespace

TEST_CASE("regress: identical reports pass, any cycle change fails, even with a tolerance") {
  const ojson g = sample();
  const auto same = compare_reports(g, g, -1);
  CHECK_FALSE(same.failed);
  CHECK(same.moved.empty());
  CHECK(same.compared == 9);
  ojson c = g;
  c["utilization"]["by_kind"]["MEM"]["busy_cycles"] = 4;
  const auto r = compare_reports(g, c, 50.0);
  CHECK(r.failed);
  REQUIRE(r.moved.size() == 1);
  CHECK(r.moved[0].path == "utilization.by_kind.MEM.busy_cycles");
  CHECK(r.moved[0].is_cycles);
  CHECK(r.moved[0].delta == "+1");
  CHECK(r.moved[0].percent == "+33.333%");
  CHECK(r.moved[0].why == "cycle count changed");
}

TEST_CASE("regress: non-cycle figures are exact unless a tolerance is given") {
  const ojson g = sample();
  ojson c = g;
  c["energy_j"] = 2.01e-6;  // +0.5%
  CHECK(compare_reports(g, c, -1).failed);
  const auto within = compare_reports(g, c, 1.0);
  CHECK_FALSE(within.failed);
  REQUIRE(within.moved.size() == 1);
  CHECK(within.moved[0].percent == "+0.500%");
  CHECK(within.moved[0].why == "within the 1% tolerance");
  CHECK(compare_reports(g, c, 0.25).failed);
  c = g;
  c["config"] = "tsp-v2";
  CHECK(compare_reports(g, c, 100.0).failed);  // text figures must match
  c = g;
  c["utilization"]["busiest"][0]["slice"] = "MEM_W5";
  CHECK(compare_reports(g, c, -1).moved[0].path == "utilization.busiest.0.slice");
}

TEST_CASE("regress: a missing key fails, a new key is listed but passes") {
  const ojson g = sample();
  ojson c = g;
  c.erase("latency_us");
  const auto missing = compare_reports(g, c, -1);
  CHECK(missing.failed);
  CHECK(missing.moved[0].current == "(absent)");
  c = g;
  c["work_items"] = 1;
  const auto added = compare_reports(g, c, -1);
  CHECK_FALSE(added.failed);
  REQUIRE(added.moved.size() == 1);
  CHECK(added.moved[0].golden == "(absent)");
}

TEST_CASE("regress: command exit codes and table against a golden report of vector_add.s") {
  const fs::path d = scratch("regress");
  const std::string golden = (d / "golden.json").string();
  REQUIRE(lpusim("sim '" + asm_path("vector_add.s") + "' --json '" + golden + "'", d).status == 0);

  const Run same = lpusim("regress '" + golden + "' '" + asm_path("vector_add.s") + "'", d);
  CHECK(same.status == 0);
  CHECK(same.out.find("identical: all ") != std::string::npos);
  CHECK(lpusim("regress '" + golden + "' --current '" + golden + "'", d).status == 0);

  // A golden that claims 2 fewer cycles: the run moved by +2 cycles -> exit 1 with a table.
  ojson g = ojson::parse(read_file(golden));
  const long long cycles = g["cycles"].get<long long>();
  g["cycles"] = cycles - 2;
  write_file(d / "older.json", g.dump(2));
  const Run moved = lpusim("regress '" + (d / "older.json").string() + "' '" + asm_path("vector_add.s") + "'", d);
  CHECK(moved.status == 1);
  CHECK(moved.out.find("figure") != std::string::npos);
  const size_t at = moved.out.find("\ncycles ");
  REQUIRE(at != std::string::npos);
  const std::string row = moved.out.substr(at + 1, moved.out.find('\n', at + 1) - at - 1);
  CHECK(row.find(" " + std::to_string(cycles - 2) + " ") != std::string::npos);
  CHECK(row.find(" " + std::to_string(cycles) + " ") != std::string::npos);
  CHECK(row.find(" +2 ") != std::string::npos);
  CHECK(row.find("FAIL: cycle count changed") != std::string::npos);
  CHECK(moved.out.find("1 of ") != std::string::npos);
  CHECK(moved.out.find(": FAIL\n") != std::string::npos);
  // An energy difference of 0.5%: fails exactly, passes with --tolerance-pct 1.
  g = ojson::parse(read_file(golden));
  g["energy_j"] = g["energy_j"].get<double>() * 1.005;
  write_file(d / "energy.json", g.dump(2));
  CHECK(lpusim("regress '" + (d / "energy.json").string() + "' --current '" + golden + "'", d).status == 1);
  const Run tol = lpusim("regress '" + (d / "energy.json").string() + "' --current '" + golden + "' --tolerance-pct 1", d);
  CHECK(tol.status == 0);
  CHECK(tol.out.find("within the 1% tolerance") != std::string::npos);
  CHECK(tol.out.find(": PASS\n") != std::string::npos);
  // Bad input: exit 2 naming the file.
  write_file(d / "bad.json", "{\"not\": \"a report\"}");
  const Run bad = lpusim("regress '" + (d / "bad.json").string() + "' --current '" + golden + "'", d);
  CHECK(bad.status == 2);
  CHECK(bad.err.find("bad.json: the golden report is not an lpusim JSON report") != std::string::npos);
  const Run both = lpusim("regress '" + golden + "'", d);
  CHECK(both.status == 2);
  fs::remove_all(d);
}
