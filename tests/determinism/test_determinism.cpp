// Determinism: the same inputs give byte-identical reports, traces and compiled programs across
// repeated runs of the real `lpusim` executable (sim on every workloads/asm/*.s, run, compile), and
// sweep results across --jobs values and shard counts.
#include <catch2/catch.hpp>

#include "tests/support/cli.h"
#include "tests/support/process.h"
#include "tests/support/files.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>


namespace {

// Runs `lpusim args...` with stdout to `out_file` (stderr discarded); returns its exit status
// (-1 if it died by a signal). A run over 5 minutes fails the test.
int run_lpusim(const std::vector<std::string>& args, const std::string& out_file) {
  const ProcessResult r = run_process(lpusim_exe(), args, out_file, std::chrono::minutes(5), Stderr::Discard);
  REQUIRE(!r.timed_out);
  return r.signaled ? -1 : r.status;
}

// A fresh scratch directory per test case, removed (with its flat contents) at the end.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    char tmpl[] = "/tmp/lpusim_determinism_XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~ScratchDir() { remove_tree(path); }
  static void remove_tree(const std::string& p) {
    if (DIR* d = opendir(p.c_str())) {
      while (dirent* e = readdir(d)) {
        const std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        if (e->d_type == DT_DIR) remove_tree(p + "/" + n);
        else std::remove((p + "/" + n).c_str());
      }
      closedir(d);
    }
    rmdir(p.c_str());
  }
};

// Names of the regular files in a directory, sorted.
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  INFO("listing " << dir);
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d))
    if (e->d_type == DT_REG) out.push_back(e->d_name);
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Every regular file of directory `a` exists in `b` with the same bytes, and `b` has no other files.
void check_same_files(const std::string& a, const std::string& b) {
  const auto fa = files_in(a);
  REQUIRE(!fa.empty());
  CHECK(fa == files_in(b));
  for (const auto& f : fa) {
    INFO(a << "/" << f << " differs from " << b << "/" << f);
    CHECK(read_text(a + "/" + f) == read_text(b + "/" + f));
  }
}

// Runs the same command twice, each writing into its own set of output files, and compares every
// output byte for byte. `args` may contain {OUT} which becomes <dir>/<run>_<suffix> per output.
void check_twice_identical(const ScratchDir& dir, const std::string& tag, const std::vector<std::string>& args,
                           const std::vector<std::string>& outputs) {
  std::vector<std::string> bytes[2];
  for (int run = 0; run < 2; ++run) {
    std::vector<std::string> a = args;
    size_t k = 0;
    for (auto& s : a)
      if (s == "{OUT}") s = dir.path + "/" + tag + "_" + std::to_string(run) + "_" + outputs.at(k++);
    REQUIRE(k == outputs.size());
    const std::string stdout_file = dir.path + "/" + tag + "_" + std::to_string(run) + "_stdout.txt";
    INFO("lpusim run " << run << " for " << tag);
    REQUIRE(run_lpusim(a, stdout_file) == 0);
    // stdout may name the output files, which differ per run by construction: neutralize that.
    const std::string prefix = dir.path + "/" + tag + "_" + std::to_string(run) + "_";
    std::string out = read_text(stdout_file);
    for (size_t p = out.find(prefix); p != std::string::npos; p = out.find(prefix, p)) out.replace(p, prefix.size(), "{OUT}_");
    bytes[run].push_back(out);
    for (const auto& o : outputs) bytes[run].push_back(read_text(dir.path + "/" + tag + "_" + std::to_string(run) + "_" + o));
  }
  for (size_t i = 0; i < bytes[0].size(); ++i) {
    INFO(tag << ": output " << (i == 0 ? std::string("stdout") : outputs[i - 1]) << " differs between two runs");
    CHECK(!bytes[0][i].empty());
    CHECK(bytes[0][i] == bytes[1][i]);
  }
}

std::vector<std::string> workload_asm_files() {
  const std::string dir = std::string(LPU_SOURCE_DIR) + "/workloads/asm";
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 2 && n.compare(n.size() - 2, 2, ".s") == 0) out.push_back(dir + "/" + n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("determinism: lpusim sim gives byte-identical stdout, JSON and trace for every workloads/asm program",
          "[determinism]") {
  ScratchDir dir;
  const auto files = workload_asm_files();
  REQUIRE(files.size() >= 3);
  for (const auto& f : files) {
    const std::string tag = f.substr(f.rfind('/') + 1);
    for (const char* mode : {"timing", "functional"})
      check_twice_identical(dir, tag + "_" + mode, {"sim", f, "--mode", mode, "--json", "{OUT}", "--trace", "{OUT}"},
                            {"report.json", "trace.json"});
  }
}

TEST_CASE("determinism: lpusim run (MLP) gives byte-identical stdout, JSON and trace", "[determinism]") {
  ScratchDir dir;
  const std::string mlp = std::string(LPU_SOURCE_DIR) + "/workloads/models/mlp/model.onnx";
  check_twice_identical(dir, "run_mlp", {"run", mlp, "--json", "{OUT}", "--trace", "{OUT}"}, {"report.json", "trace.json"});
  check_twice_identical(dir, "run_mlp_functional", {"run", mlp, "--mode", "functional", "--json", "{OUT}"},
                        {"report.json"});
}

TEST_CASE("determinism: lpusim compile writes byte-identical .lpu and assembly for the same model", "[determinism]") {
  ScratchDir dir;
  const std::string models = std::string(LPU_SOURCE_DIR) + "/workloads/models";
  check_twice_identical(dir, "compile_mlp", {"compile", models + "/mlp/model.onnx", "-o", "{OUT}", "--asm", "{OUT}"},
                        {"model.lpu", "model.s"});
  check_twice_identical(dir, "compile_gemm_int8", {"compile", "gemm:64x320x96", "--precision", "int8", "-o", "{OUT}"},
                        {"gemm.lpu"});
}

TEST_CASE("determinism: lpusim sweep output is byte-identical across --jobs values and shard counts", "[determinism]") {
  ScratchDir dir;
  const std::string spec = std::string(LPU_SOURCE_DIR) + "/workloads/sweeps/energy_vs_clock.yaml";
  const std::string d = dir.path;
  REQUIRE(run_lpusim({"sweep", spec, "-o", d + "/j1", "--jobs", "1"}, d + "/stdout_j1.txt") == 0);
  REQUIRE(run_lpusim({"sweep", spec, "-o", d + "/j2", "--jobs", "2"}, d + "/stdout_j2.txt") == 0);
  for (const char* sub : {"", "/configs", "/reports"}) check_same_files(d + "/j1" + sub, d + "/j2" + sub);
  for (const char* shard : {"0/2", "1/2"})
    REQUIRE(run_lpusim({"sweep", spec, "-o", d + "/shard" + std::string(1, shard[0]), "--jobs", "2", "--shard", shard},
                       d + "/stdout_shard.txt") == 0);
  REQUIRE(run_lpusim({"sweep", "merge", d + "/shard0", d + "/shard1", "-o", d + "/merged"}, d + "/stdout_merge.txt") == 0);
  for (const char* sub : {"", "/configs", "/reports"}) check_same_files(d + "/j1" + sub, d + "/merged" + sub);
}
