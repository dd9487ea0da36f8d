// The sweep as a Slurm job array: starts a single-node Slurm on localhost (scripts/slurm/start.sh),
// runs a spec as 3 array tasks (one shard each), merges, and checks the merge equals the unsharded
// run byte for byte; then the same for a sweep of LLM points. Fails (never skips) when Slurm or
// munge is missing or does not start.
#include <algorithm>

#include "sweep_test_util.h"

using namespace sweep_test;
namespace fs = std::filesystem;

namespace {
// Stops the daemons start.sh started, whatever happens in the test.
struct SlurmGuard {
  fs::path state;
  ~SlurmGuard() {
    const std::string cmd = "'" + std::string(LPU_SOURCE_DIR) + "/scripts/slurm/stop.sh' '" + state.string() + "' >/dev/null 2>&1";
    (void)std::system(cmd.c_str());
  }
};
}  // namespace

TEST_CASE("sweep: a Slurm job array of shards merges to the unsharded run byte for byte") {
  const fs::path d = scratch("slurm");
  const std::string scripts = std::string(LPU_SOURCE_DIR) + "/scripts/slurm/";
  write_file(d / "spec.yaml", "grid:\n  clock_hz: [600.0e6, 1.2e9]\n  energy.static_power_w: [30.0, 60.0]\n"
                              "workloads: [" + asm_path("vector_add.s") + ", " + asm_path("reduction.s") + ", " +
                                  asm_path("transpose.s") + "]\n");
  const Run whole = lpusim("sweep '" + (d / "spec.yaml").string() + "' -o '" + (d / "whole").string() + "' --jobs 2", d);
  REQUIRE(whole.status == 0);

  SlurmGuard guard{d / "slurm"};
  const std::string start = "'" + scripts + "start.sh' '" + guard.state.string() + "' >'" + (d / "start.log").string() +
                            "' 2>&1";
  const int started = std::system(start.c_str());
  INFO(read_file(d / "start.log"));
  REQUIRE(WIFEXITED(started));
  REQUIRE(WEXITSTATUS(started) == 0);

  const std::string run = "SLURM_CONF='" + (guard.state / "slurm.conf").string() + "' '" + scripts + "run_array.sh' '" +
                          lpusim_exe() + "' '" + (d / "spec.yaml").string() + "' '" + (d / "array").string() +
                          "' 3 120 >'" + (d / "array.log").string() + "' 2>&1";
  const int ran = std::system(run.c_str());
  INFO(read_file(d / "array.log"));
  REQUIRE(WIFEXITED(ran));
  REQUIRE(WEXITSTATUS(ran) == 0);
  for (int i = 0; i < 3; ++i) CHECK(fs::exists(d / "array" / ("shard-" + std::to_string(i)) / "results.jsonl"));
  require_same_outputs(d / "whole", d / "array/merged");
  const std::string csv = read_file(d / "array/merged/results.csv");
  CHECK(count_lines(csv) == 13);  // header + 4 configs x 3 points

  // LLM points (`lpusim llm` per point) as an array of 2 tasks on the same Slurm: the same bytes too.
  const std::string llm_dir = std::string(LPU_SOURCE_DIR) + "/workloads/llm/";
  write_file(d / "llm.yaml", "grid:\n  llm.chips: [1, 2]\nworkloads: [" + llm_dir + "tiny-llama.json, " + llm_dir +
                                 "tiny-gpt2.json]\nllm: {phase: decode, prompt: 8, context: 32}\n");
  REQUIRE(lpusim("sweep '" + (d / "llm.yaml").string() + "' -o '" + (d / "llm-whole").string() + "' --jobs 2", d)
              .status == 0);
  const std::string run_llm = "SLURM_CONF='" + (guard.state / "slurm.conf").string() + "' '" + scripts +
                              "run_array.sh' '" + lpusim_exe() + "' '" + (d / "llm.yaml").string() + "' '" +
                              (d / "llm-array").string() + "' 2 120 >'" + (d / "llm-array.log").string() + "' 2>&1";
  const int ran_llm = std::system(run_llm.c_str());
  INFO(read_file(d / "llm-array.log"));
  REQUIRE(WIFEXITED(ran_llm));
  REQUIRE(WEXITSTATUS(ran_llm) == 0);
  require_same_outputs(d / "llm-whole", d / "llm-array/merged");
  const std::string llm_csv = read_file(d / "llm-array/merged/results.csv");
  CHECK(count_lines(llm_csv) == 5);  // header + 2 chip counts x 2 models
  CHECK(llm_csv.find(",failed,") == std::string::npos);
  // The scratch folder is kept (logs of the daemons and tasks); the guard stops the daemons.
}
