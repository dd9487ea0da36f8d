// Tests of `lpusim sweep` end to end: byte-identical results across --jobs, resume after a kill
// (truncated mid-line, and a real SIGKILL), shards merged == unsharded, failing points recorded,
// the --allow-large guard and refusing to overwrite results.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "sweep_test_util.h"

using namespace sweep_test;
namespace fs = std::filesystem;

namespace {

// 2 x 2 config points x 4 assembly programs = 16 fast points (programs only: these tests are
// about the sweep engine, not the compiler; models are covered by their own test below).
fs::path write_spec(const fs::path& dir) {
  const fs::path p = dir / "spec.yaml";
  write_file(p, "# test sweep\nsweep: test\ngrid:\n  clock_hz: [600.0e6, 1.2e9]\n  energy.static_power_w: [30.0, 60.0]\n"
                "workloads: [" + asm_path("vector_add.s") + ", " + asm_path("matmul_320_int8.s") + ", " +
                    asm_path("reduction.s") + ", " + asm_path("transpose.s") + "]\n");
  return p;
}

}  // namespace

TEST_CASE("sweep: --jobs 1 and --jobs 2 write byte-identical results, one line per point") {
  const fs::path d = scratch("jobs");
  const fs::path spec = write_spec(d);
  const Run r1 = lpusim("sweep '" + spec.string() + "' -o '" + (d / "j1").string() + "' --jobs 1", d);
  REQUIRE(r1.status == 0);
  CHECK(r1.out.find("16 points") != std::string::npos);
  const Run r2 = lpusim("sweep '" + spec.string() + "' -o '" + (d / "j2").string() + "' --jobs 2", d);
  REQUIRE(r2.status == 0);
  require_same_outputs(d / "j1", d / "j2");
  const std::string csv = read_file(d / "j1/results.csv");
  CHECK(count_lines(csv) == 17);  // header + 16
  CHECK(count_lines(read_file(d / "j1/results.jsonl")) == 16);
  CHECK(csv.find(",failed,") == std::string::npos);
  // vector_add.s runs 38 cycles whatever the clock; its latency follows the clock.
  CHECK(csv.find("vector_add.s,,600000000.0,30.0,ok,0,38,,0.06333333333333332,") != std::string::npos);
  CHECK(csv.find("transpose.s,,1200000000.0,60.0,ok,0,") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("sweep: resume after a kill mid-line loses nothing and repeats nothing") {
  const fs::path d = scratch("resume");
  const fs::path spec = write_spec(d);
  REQUIRE(lpusim("sweep '" + spec.string() + "' -o '" + (d / "clean").string() + "' --jobs 2", d).status == 0);
  REQUIRE(lpusim("sweep '" + spec.string() + "' -o '" + (d / "cut").string() + "' --jobs 2", d).status == 0);
  // Simulate a kill during the 7th append: 6 whole lines and half of the 7th; the CSV cut too.
  const std::string full = read_file(d / "cut/results.jsonl");
  size_t pos = 0;
  for (int i = 0; i < 6; ++i) pos = full.find('\n', pos) + 1;
  write_file(d / "cut/results.jsonl", full.substr(0, pos + (full.find('\n', pos) - pos) / 2));
  const std::string csv = read_file(d / "cut/results.csv");
  write_file(d / "cut/results.csv", csv.substr(0, csv.size() / 3));
  // Without --resume the directory is refused (nothing is overwritten).
  const Run refused = lpusim("sweep '" + spec.string() + "' -o '" + (d / "cut").string() + "'", d);
  CHECK(refused.status == 2);
  CHECK(refused.err.find("pass --resume") != std::string::npos);
  const Run r = lpusim("sweep '" + spec.string() + "' -o '" + (d / "cut").string() + "' --resume --jobs 2", d);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("dropped a truncated last line") != std::string::npos);
  CHECK(r.out.find("16 points, 6 already done, 10 to run") != std::string::npos);
  CHECK(r.out.find("ran 10 points (0 failed), skipped 6") != std::string::npos);
  require_same_outputs(d / "clean", d / "cut");
  // A second resume has nothing left to do and changes nothing.
  const Run again = lpusim("sweep '" + spec.string() + "' -o '" + (d / "cut").string() + "' --resume", d);
  REQUIRE(again.status == 0);
  CHECK(again.out.find("16 already done, 0 to run") != std::string::npos);
  require_same_outputs(d / "clean", d / "cut");
  fs::remove_all(d);
}

TEST_CASE("sweep: a sweep killed with SIGKILL midway resumes to the same bytes") {
  const fs::path d = scratch("sigkill");
  const fs::path spec = write_spec(d);
  REQUIRE(lpusim("sweep '" + spec.string() + "' -o '" + (d / "clean").string() + "' --jobs 2", d).status == 0);
  const fs::path out = d / "killed";
  const std::string cmd = "'" + lpusim_exe() + "' sweep '" + spec.string() + "' -o '" + out.string() +
                          "' --jobs 1 >/dev/null 2>&1 & echo $! > '" + (d / "pid").string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (count_lines(read_file(out / "results.jsonl")) < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const pid_t pid = static_cast<pid_t>(std::stol(read_file(d / "pid")));
  ::kill(pid, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let it die (the shell reaps it)
  const size_t before = count_lines(read_file(out / "results.jsonl"));
  INFO("lines before the kill: " << before);
  CHECK(before >= 3);
  const Run r = lpusim("sweep '" + spec.string() + "' -o '" + out.string() + "' --resume --jobs 2", d);
  REQUIRE(r.status == 0);
  CHECK(r.out.find(std::to_string(before) + " already done") != std::string::npos);
  require_same_outputs(d / "clean", out);
  fs::remove_all(d);
}

TEST_CASE("sweep: shards merged equal the unsharded run byte for byte") {
  const fs::path d = scratch("shards");
  const fs::path spec = write_spec(d);
  REQUIRE(lpusim("sweep '" + spec.string() + "' -o '" + (d / "whole").string() + "' --jobs 2", d).status == 0);
  std::string dirs;
  for (int i = 0; i < 3; ++i) {
    const fs::path sd = d / ("shard" + std::to_string(i));
    const Run r = lpusim("sweep '" + spec.string() + "' -o '" + sd.string() + "' --shard " + std::to_string(i) + "/3", d);
    REQUIRE(r.status == 0);
    CHECK(count_lines(read_file(sd / "results.jsonl")) == (i == 0 ? 6u : 5u));
    dirs += " '" + sd.string() + "'";
  }
  // A missing shard is an error naming the missing points.
  const Run partial = lpusim("sweep merge '" + (d / "shard0").string() + "' '" + (d / "shard2").string() + "' -o '" +
                                 (d / "partial").string() + "'",
                             d);
  CHECK(partial.status == 2);
  CHECK(partial.err.find("5 of 16 points are missing (points 1, 4, 7, 10, 13)") != std::string::npos);
  const Run m = lpusim("sweep merge" + dirs + " -o '" + (d / "merged").string() + "'", d);
  REQUIRE(m.status == 0);
  require_same_outputs(d / "whole", d / "merged");
  // Every report and config of the whole run is in the merged directory too.
  for (const char* sub : {"reports", "configs"})
    for (const auto& e : fs::directory_iterator(d / "whole" / sub))
      CHECK(read_file(d / "merged" / sub / e.path().filename()) == read_file(e.path()));
  fs::remove_all(d);
}

TEST_CASE("sweep: a failing point is recorded with its error and does not stop the sweep") {
  const fs::path d = scratch("failing");
  // matmul_320_int8.s is hand-scheduled for abc latency 24: at 30 its results arrive late.
  write_file(d / "spec.yaml", "grid:\n  timing.mxm_abc.latency: [24, 30]\nworkloads: [" + asm_path("matmul_320_int8.s") +
                                  "]\n");
  const Run r = lpusim("sweep '" + (d / "spec.yaml").string() + "' -o '" + (d / "out").string() + "' --jobs 2", d);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("ran 2 points (1 failed)") != std::string::npos);
  const std::string jsonl = read_file(d / "out/results.jsonl");
  REQUIRE(count_lines(jsonl) == 2);
  const std::string second = jsonl.substr(jsonl.find('\n') + 1);
  CHECK(jsonl.find("\"status\":\"ok\"") < jsonl.find('\n'));
  CHECK(second.find("\"status\":\"failed\",\"exit_code\":1") != std::string::npos);
  CHECK(second.find("schedule error") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("sweep: more than 100000 points needs --allow-large, and the count is printed") {
  const fs::path d = scratch("large");
  std::string text = "grid:\n";
  for (const char* f : {"clock_hz", "energy.mac_int8_pj", "energy.sram_read_pj", "energy.vxm_op_pj"}) {
    text += std::string("  ") + f + ": [";
    for (int i = 1; i <= 20; ++i) text += (i > 1 ? ", " : "") + std::to_string(i) + ".0e8";
    text += "]\n";
  }
  write_file(d / "big.yaml", text + "workloads: [gemm:64x64x64]\n");
  const Run r = lpusim("sweep '" + (d / "big.yaml").string() + "' -o '" + (d / "out").string() + "'", d);
  CHECK(r.status == 2);
  CHECK(r.out.find("160000 points") != std::string::npos);
  CHECK(r.err.find("big.yaml: the sweep has 160000 points, more than 100000; pass --allow-large") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "out/results.jsonl"));
  fs::remove_all(d);
}

TEST_CASE("sweep: --timeout records a hung point as timeout, --lpusim must be an executable") {
  const fs::path d = scratch("timeout");
  write_file(d / "spec.yaml", "workloads: [" + asm_path("vector_add.s") + "]\n");
  write_file(d / "hang.sh", "#!/bin/sh\nexec sleep 30\n");
  fs::permissions(d / "hang.sh", fs::perms::owner_all);
  const auto t0 = std::chrono::steady_clock::now();
  const Run r = lpusim("sweep '" + (d / "spec.yaml").string() + "' -o '" + (d / "out").string() + "' --timeout 0.5 --lpusim '" +
                           (d / "hang.sh").string() + "'",
                       d);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  REQUIRE(r.status == 0);
  const std::string jsonl = read_file(d / "out/results.jsonl");
  CHECK(jsonl.find("\"status\":\"timeout\"") != std::string::npos);
  CHECK(jsonl.find("killed after the --timeout of 0.5 s") != std::string::npos);
  const Run bad = lpusim("sweep '" + (d / "spec.yaml").string() + "' -o '" + (d / "out2").string() +
                             "' --lpusim /no/such/lpusim",
                         d);
  CHECK(bad.status == 2);
  CHECK(bad.err.find("--lpusim: '/no/such/lpusim' is not an executable file") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("sweep: models run through lpusim run at each precision") {
  const fs::path d = scratch("models");
  write_file(d / "spec.yaml", "grid:\n  timing.mxm_abc.latency: [16, 24]\nworkloads: [gemm:64x64x64]\n"
                              "precisions: [int8, fp16]\n");
  const Run r = lpusim("sweep '" + (d / "spec.yaml").string() + "' -o '" + (d / "out").string() + "' --jobs 2", d);
  REQUIRE(r.status == 0);
  const std::string csv = read_file(d / "out/results.csv");
  INFO(csv);
  CHECK(count_lines(csv) == 5);
  CHECK(csv.find(",failed,") == std::string::npos);
  for (const char* row : {"gemm:64x64x64,int8,16,ok,0,", "gemm:64x64x64,fp16,16,ok,0,", "gemm:64x64x64,int8,24,ok,0,",
                          "gemm:64x64x64,fp16,24,ok,0,"})
    CHECK(csv.find(row) != std::string::npos);
  // Each report is the one `lpusim run` writes for that precision (fp16 MACs only at fp16).
  const std::string jsonl = read_file(d / "out/results.jsonl");
  CHECK(jsonl.find("\"precision\":\"fp16\"") != std::string::npos);
  fs::remove_all(d);
}
