// Limits up front (docs/reliability.md): the simulator's host-memory estimate against what real
// runs use, the refusal of runs and compiles that would exhaust the host (and --force), and the
// sweep point limit (--max-points), all checked before any work.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "isa/asm.h"
#include "isa/host_memory.h"
#include "sim/host_limits.h"
#include "sim/simulator.h"
#include "tests/support/files.h"
#include "tests/sweep/sweep_test_util.h"

namespace fs = std::filesystem;
using sweep_test::lpusim;
using sweep_test::Run;
using sweep_test::scratch;
using sweep_test::write_file;

namespace {

// Sets an environment variable for the lpusim runs of one test and restores it afterwards.
struct EnvVar {
  std::string name;
  EnvVar(const std::string& n, const std::string& v) : name(n) { setenv(n.c_str(), v.c_str(), 1); }
  ~EnvVar() { unsetenv(name.c_str()); }
};

std::string src(const std::string& rel) { return std::string(LPU_SOURCE_DIR) + "/" + rel; }

// tsp-v1 with one class at the largest allowed latency: the stream-register ring grows to 2^17
// entries per stream (about 3 GiB per chip in functional mode).
std::string slow_chip_yaml() {
  std::string y = read_text(src("workloads/chips/tsp-v1.yaml"));
  const std::string from = "vxm_trans:     {latency: 8,", to = "vxm_trans:     {latency: 100000,";
  const size_t at = y.find(from);
  REQUIRE(at != std::string::npos);
  return y.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("limits: meminfo MemAvailable is parsed in bytes, a malformed override is refused") {
  CHECK(lpu::parse_meminfo_available("MemTotal:       24000000 kB\nMemFree: 1 kB\nMemAvailable:   22421544 kB\n") ==
        22421544ull * 1024);
  CHECK(lpu::parse_meminfo_available("MemTotal: 5 kB\n") == 0);
  CHECK(lpu::parse_meminfo_available("") == 0);
  {
    EnvVar e("LPUSIM_MEM_AVAILABLE", "12345");
    const lpu::HostMemory m = lpu::host_memory_available();
    CHECK(m.bytes == 12345);
    CHECK(m.source == "LPUSIM_MEM_AVAILABLE");
    CHECK_NOTHROW(lpu::require_host_memory("x", 12345, "d", m));
    CHECK_THROWS_WITH(lpu::require_host_memory("x.s: simulating", 12346, "detail", m),
                      Catch::Contains("x.s: simulating: needs an estimated 0.00 GiB (12346 bytes) of host memory "
                                      "(detail), more than the 0.00 GiB (12345 bytes) available (LPUSIM_MEM_AVAILABLE); "
                                      "pass --force"));
  }
  for (const char* bad : {"", "12x", "-5", "0", "1e9"}) {
    EnvVar e("LPUSIM_MEM_AVAILABLE", bad);
    CHECK_THROWS_WITH(lpu::host_memory_available(),
                      Catch::Contains(std::string("LPUSIM_MEM_AVAILABLE: must be a whole number of bytes >= 1; got '") +
                                      bad + "'"));
  }
  const lpu::HostMemory real = lpu::host_memory_available();  // this host: known and plausible
  CHECK(real.bytes > (uint64_t{64} << 20));
}

TEST_CASE("limits: the simulator's estimate bounds what real runs of the teaching programs use") {
  const auto cfg = lpu::default_chip_config();
  for (const char* name : {"vector_add.s", "matmul_320_int8.s", "reduction.s", "transpose.s", "two_chip.s"}) {
    INFO(name);
    const std::string path = src(std::string("workloads/asm/") + name);
    const lpu::Program p = lpu::assemble(read_text(path), path, *cfg);
    lpu::sim::SimOptions fo;
    fo.mode = lpu::sim::Mode::Functional;
    fo.record_trace = true;
    lpu::sim::SimOptions to = fo;
    to.mode = lpu::sim::Mode::Timing;
    to.record_trace = false;
    const lpu::sim::SimMemoryEstimate ef = lpu::sim::estimate_sim_memory(p, *cfg, fo);
    const lpu::sim::SimMemoryEstimate et = lpu::sim::estimate_sim_memory(p, *cfg, to);
    const lpu::sim::SimResult r = lpu::sim::simulate(p, *cfg, fo);
    // Every trace event and every SRAM vector the run touched is inside the estimate.
    CHECK(r.trace.size() * sizeof(lpu::sim::TraceEvent) <= ef.trace);
    uint64_t used = 0;
    for (const auto& c : r.chips) used += c.sram_vectors_used;
    CHECK(used * cfg->vector_bytes() <= ef.sram);
    CHECK(ef.total == ef.streams + ef.sram + ef.mxm + ef.code + ef.trace);
    // Timing mode keeps no values and no trace was asked for.
    CHECK(et.trace == 0);
    CHECK(et.total < ef.total);
    CHECK(et.sram * 10 < ef.sram);
  }
}

TEST_CASE("limits: the estimate scales with chips and saturates instead of wrapping on absurd systems") {
  const auto cfg = lpu::default_chip_config();
  const std::string one = ".chips 1\n.chip 0\n.queue VXM.0\n    nop 1\n";
  const std::string many = ".chips 65536\n.chip 0\n.queue VXM.0\n    nop 1\n";
  const lpu::Program p1 = lpu::assemble(one, "one.s", *cfg);
  const lpu::Program pn = lpu::assemble(many, "many.s", *cfg);
  lpu::sim::SimOptions o;
  o.mode = lpu::sim::Mode::Functional;
  const auto e1 = lpu::sim::estimate_sim_memory(p1, *cfg, o);
  const auto en = lpu::sim::estimate_sim_memory(pn, *cfg, o);
  CHECK(en.streams == 65536 * e1.streams);
  CHECK(e1.sram < (uint64_t{1} << 20));  // no MEM slice is written: page tables only
  // A chip whose SRAM is all written holds the full image: 88 slices x 8192 x 320 B = 220 MiB.
  std::string all = ".chips 1\n.chip 0\n";
  for (int i = 0; i < 44; ++i) all += ".queue MEM_W" + std::to_string(i) + "\n    nop 1\n";
  for (int i = 0; i < 44; ++i) all += ".queue MEM_E" + std::to_string(i) + "\n    nop 1\n";
  const auto ea = lpu::sim::estimate_sim_memory(lpu::assemble(all, "all.s", *cfg), *cfg, o);
  CHECK(ea.sram >= uint64_t{220} << 20);
  CHECK(ea.sram < uint64_t{240} << 20);
  // 65536 chips with 2^17-entry stream rings: about 190 TiB, far beyond any host, not wrapped.
  const auto slow = lpu::parse_chip_config(slow_chip_yaml(), "slow.yaml");
  const auto es = lpu::sim::estimate_sim_memory(pn, *slow, o);
  CHECK(es.total > (uint64_t{100} << 40));
}

TEST_CASE("limits: lpusim sim refuses a system beyond host memory with the estimate, before simulating") {
  const fs::path d = scratch("limits-sim");
  write_file(d / "slow.yaml", slow_chip_yaml());
  write_file(d / "many.s", ".chips 65536\n.chip 0\n.queue VXM.0\n    nop 1\n");
  const Run r = lpusim("sim '" + (d / "many.s").string() + "' --chip '" + (d / "slow.yaml").string() + "'", d);
  CHECK(r.status == 2);
  CHECK(r.err.find("many.s: simulating 65536 chip(s) of 'tsp-v1' in functional mode: needs an estimated") !=
        std::string::npos);
  CHECK(r.err.find("(stream registers ") != std::string::npos);
  CHECK(r.err.find("available (") != std::string::npos);
  CHECK(r.err.find("pass --force to run it anyway") != std::string::npos);
  CHECK(r.out.empty());  // nothing was simulated

  // With a pretended small host, a small program is refused, and runs with --force.
  EnvVar e("LPUSIM_MEM_AVAILABLE", "1000000");
  const std::string prog = "'" + src("workloads/asm/vector_add.s") + "'";
  const Run small = lpusim("sim " + prog, d);
  CHECK(small.status == 2);
  CHECK(small.err.find("vector_add.s: simulating 1 chip(s) of 'tsp-v1' in functional mode: needs an estimated") !=
        std::string::npos);
  CHECK(small.err.find("more than the 0.00 GiB (1000000 bytes) available (LPUSIM_MEM_AVAILABLE)") != std::string::npos);
  const Run forced = lpusim("sim " + prog + " --force", d);
  CHECK(forced.status == 0);
  CHECK(forced.out.find("38") != std::string::npos);  // the documented 38 cycles
  fs::remove_all(d);
}

TEST_CASE("limits: lpusim compile refuses weights that would not fit in host memory as f32, before compiling") {
  const fs::path d = scratch("limits-compile");
  const Run g = lpusim("compile gemm:1x9999999x9999999 -o '" + (d / "g.lpu").string() + "'", d);
  CHECK(g.status == 2);
  CHECK(g.err.find("gemm:1x9999999x9999999: compiling: needs an estimated") != std::string::npos);
  CHECK(g.err.find("(99999980000001 weight elements as f32)") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "g.lpu"));

  EnvVar e("LPUSIM_MEM_AVAILABLE", "1000");
  const std::string mlp = "'" + src("workloads/models/mlp/model.onnx") + "'";
  const Run m = lpusim("compile " + mlp + " -o '" + (d / "m.lpu").string() + "'", d);
  CHECK(m.status == 2);
  CHECK(m.err.find("model.onnx: compiling: needs an estimated") != std::string::npos);
  CHECK(m.err.find("weight elements as f32), more than the 0.00 GiB (1000 bytes) available") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "m.lpu"));
  const Run forced = lpusim("compile " + mlp + " --force -o '" + (d / "m.lpu").string() + "'", d);
  CHECK(forced.status == 0);
  CHECK(fs::exists(d / "m.lpu"));
  fs::remove_all(d);
}

TEST_CASE("limits: lpusim sweep refuses more points than --max-points with the count, before any work") {
  const fs::path d = scratch("limits-sweep");
  write_file(d / "spec.yaml", "grid:\n  clock_hz: [600.0e6, 1.2e9]\n  energy.static_power_w: [30.0, 60.0]\n"
                              "workloads: [" + sweep_test::asm_path("vector_add.s") + "]\n");
  const std::string base = "sweep '" + (d / "spec.yaml").string() + "' -o '" + (d / "out").string() + "'";
  const Run r = lpusim(base + " --max-points 3", d);
  CHECK(r.status == 2);
  CHECK(r.out.find("4 points") != std::string::npos);
  CHECK(r.err.find("spec.yaml: the sweep has 4 points, more than 3; pass --allow-large or --max-points 4 to run it") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(d / "out"));  // refused before the output directory was made
  const Run ok = lpusim(base + " --max-points 4", d);
  CHECK(ok.status == 0);
  CHECK(fs::exists(d / "out/results.jsonl"));
  const Run zero = lpusim(base + " --max-points 0", d);
  CHECK(zero.status == 2);
  CHECK(zero.err.find("--max-points: must be at least 1; got 0") != std::string::npos);
  fs::remove_all(d);
}
