// Tests of sweep specs: rejected bad specs (tests/data/bad_sweeps), grid/list expansion order,
// point hashing, config overrides by field path, point counting and shard parsing.
#include <algorithm>
#include <set>

#include "isa/chip_config.h"
#include "isa/fnv_hash.h"
#include "sweep/runner.h"
#include "sweep/spec.h"
#include "sweep_test_util.h"

using namespace lpu;
using namespace lpu::sweep;
using sweep_test::read_file;
namespace fs = std::filesystem;

namespace {

// The "# expect: <substring>" line every bad spec carries.
std::string expected_error(const fs::path& p) {
  std::istringstream in(read_file(p));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("# expect: ", 0) == 0) return line.substr(10);
  return "";
}

// Loads and expands a spec; returns the InputError text ("" if it was accepted).
std::string load_error(const std::string& path) {
  try {
    expand_sweep(load_sweep_spec(path));
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

SweepSpec spec_of(const std::string& text) { return parse_sweep_spec(text, "/virtual/spec.yaml"); }

}  // namespace

TEST_CASE("sweep: every bad spec is rejected naming the spec file, the field and the value") {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(LPU_SOURCE_DIR) / "tests/data/bad_sweeps"))
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 8);
  for (const fs::path& f : files) {
    INFO(f.filename().string());
    const std::string expect = expected_error(f);
    REQUIRE_FALSE(expect.empty());
    const std::string err = load_error(f.string());
    CHECK(err.rfind(f.string(), 0) == 0);  // starts with the spec file
    CHECK(err.find(expect) != std::string::npos);
  }
}

TEST_CASE("sweep: grid expands as a cartesian product, last key fastest, precisions only for models") {
  const SweepSpec s = spec_of(
      "grid:\n  clock_hz: [600.0e6, 900.0e6]\n  timing.mxm_abc.latency: [16, 24, 32]\n"
      "workloads: [" + sweep_test::asm_path("vector_add.s") + ", gemm:64x64x64]\nprecisions: [int8, fp16]\n");
  CHECK(s.columns == std::vector<std::string>{"clock_hz", "timing.mxm_abc.latency"});
  CHECK(count_config_points(s) == 6);
  CHECK(count_points(s) == 6 * (1 + 2));
  const Expansion e = expand_sweep(s);
  REQUIRE(e.configs.size() == 6);
  REQUIRE(e.points.size() == 18);
  CHECK(e.configs[0].overrides == Overrides{{"clock_hz", "600.0e6"}, {"timing.mxm_abc.latency", "16"}});
  CHECK(e.configs[1].overrides == Overrides{{"clock_hz", "600.0e6"}, {"timing.mxm_abc.latency", "24"}});
  CHECK(e.configs[3].overrides == Overrides{{"clock_hz", "900.0e6"}, {"timing.mxm_abc.latency", "16"}});
  // Per config: the program once (no precision), then the model at each precision.
  CHECK(e.points[0].workload == 0);
  CHECK(e.points[0].precision.empty());
  CHECK(e.points[1].workload == 1);
  CHECK(e.points[1].precision == "int8");
  CHECK(e.points[2].precision == "fp16");
  CHECK(e.points[3].config == 1);
  for (size_t i = 0; i < e.points.size(); ++i) CHECK(e.points[i].index == i);
  // The dumped config carries the overridden values.
  const auto cfg = parse_chip_config(e.configs[5].yaml, "dump");
  CHECK(cfg->clock_hz == 900e6);
  CHECK(cfg->timing[static_cast<size_t>(SchedClass::MxmAbc)].latency == 32);
}

TEST_CASE("sweep: point hashes are stable, distinct, and change with config, workload and precision") {
  const std::string text = "grid:\n  clock_hz: [600.0e6, 900.0e6]\nworkloads: [gemm:64x64x64, gemm:64x64x128]\n"
                           "precisions: [int8, fp16]\n";
  const Expansion a = expand_sweep(spec_of(text)), b = expand_sweep(spec_of(text));
  std::set<uint64_t> hashes;
  for (size_t i = 0; i < a.points.size(); ++i) {
    CHECK(a.points[i].hash == b.points[i].hash);
    hashes.insert(a.points[i].hash);
  }
  CHECK(hashes.size() == a.points.size());
  // Writing the same value differently (9e8 vs 900.0e6) is the same configuration.
  const Expansion c = expand_sweep(spec_of("grid:\n  clock_hz: [6.0e8, 9e8]\nworkloads: [gemm:64x64x64, gemm:64x64x128]\n"
                                           "precisions: [int8, fp16]\n"));
  CHECK(c.points[5].hash == a.points[5].hash);
  // The base config itself (no grid) hashes as the built-in config's dump.
  const Expansion d = expand_sweep(spec_of("workloads: [gemm:64x64x64]\n"));
  REQUIRE(d.configs.size() == 1);
  CHECK(d.configs[0].hash == fnv1a64(dump_chip_config(*default_chip_config())));
  CHECK(fnv1a64("") == kFnvOffset);
  CHECK(hash_hex(fnv1a64("a")) == "af63dc4c8601ec8c");  // FNV-1a 64 test vector
}

TEST_CASE("sweep: overrides edit nested scalars and list entries, and reject unknown paths") {
  const std::string& base = default_chip_config_yaml();
  const auto cfg = parse_chip_config(
      apply_overrides(base, {{"lanes.superlanes", "10"}, {"floorplan.3.queues", "8"}, {"c2c.link_bytes_per_s", "28.0e9"}},
                      "ctx"),
      "edited");
  CHECK(cfg->superlanes == 10);
  CHECK(cfg->slices[cfg->slice_index("VXM")].queues == 8);
  CHECK(cfg->c2c_link_bytes_per_s == 28e9);
  CHECK_THROWS_WITH(apply_overrides(base, {{"lanes.superlane", "10"}}, "ctx"),
                    Catch::Contains("ctx: 'lanes.superlane': unknown chip-config field 'lanes.superlane'"));
  CHECK_THROWS_WITH(apply_overrides(base, {{"floorplan.x", "1"}}, "ctx"), Catch::Contains("index it with a number"));
  CHECK_THROWS_WITH(apply_overrides(base, {{"timing..latency", "1"}}, "ctx"), Catch::Contains("empty component"));
}

TEST_CASE("sweep: a list of points keeps its order and the union of its fields as columns") {
  const SweepSpec s = spec_of("points:\n  - {clock_hz: 1.0e9}\n  - {mxm.planes_per_slice: 1, clock_hz: 5.0e8}\n"
                              "workloads: [gemm:64x64x64]\n");
  CHECK_FALSE(s.is_grid);
  CHECK(s.columns == std::vector<std::string>{"clock_hz", "mxm.planes_per_slice"});
  const Expansion e = expand_sweep(s);
  REQUIRE(e.points.size() == 2);
  CHECK(parse_chip_config(e.configs[1].yaml, "d")->mxm_planes == 1);
  CHECK(describe(e.configs[1].overrides) == "mxm.planes_per_slice=1, clock_hz=5.0e8");
}

TEST_CASE("sweep: huge grids are counted without being expanded") {
  std::string text = "grid:\n";
  for (const char* f : {"clock_hz", "energy.mac_int8_pj", "energy.sram_read_pj", "energy.vxm_op_pj"}) {
    text += std::string("  ") + f + ": [";
    for (int i = 1; i <= 20; ++i) text += (i > 1 ? ", " : "") + std::to_string(i) + ".0e8";
    text += "]\n";
  }
  text += "workloads: [gemm:64x64x64]\n";
  const SweepSpec s = spec_of(text);
  CHECK(count_points(s) == 160000);
  CHECK(count_points(s) > kLargeSweepPoints);
}

TEST_CASE("sweep: --shard i/N parsing") {
  uint32_t i = 9, n = 9;
  parse_shard("2/5", i, n);
  CHECK(i == 2);
  CHECK(n == 5);
  for (const char* bad : {"5/5", "1", "a/2", "-1/2", "1/0", "1/2x", "/2"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_shard(bad, i, n), InputError);
  }
}

TEST_CASE("sweep: a shard validates and hashes only its own points, with the unsharded hashes") {
  const SweepSpec s = spec_of("grid:\n  clock_hz: [6.0e8, 9.0e8, 1.2e9]\nworkloads: [gemm:64x64x64]\nprecisions: [int8, fp16]\n");
  const Expansion whole = expand_sweep(s);
  const Expansion shard = expand_sweep(s, 1, 4);  // points 1 and 5: configs 0 and 2
  REQUIRE(shard.points.size() == whole.points.size());
  for (const SweepPoint& p : shard.points) {
    INFO(p.index);
    CHECK(p.hash == (p.index % 4 == 1 ? whole.points[p.index].hash : 0u));
  }
  CHECK_FALSE(shard.configs[0].yaml.empty());
  CHECK(shard.configs[1].yaml.empty());  // points 2, 3 belong to other shards
  CHECK(shard.configs[2].hash == whole.configs[2].hash);
  // A bad combination is found by the shard that runs it, before it runs anything.
  const SweepSpec bad = spec_of("points:\n  - {clock_hz: 9.0e8}\n  - {clock_hz: abc}\nworkloads: [gemm:64x64x64]\n");
  CHECK_NOTHROW(expand_sweep(bad, 0, 2));
  CHECK_THROWS_WITH(expand_sweep(bad, 1, 2), Catch::Contains("points[1] (clock_hz=abc): clock_hz:"));
}
