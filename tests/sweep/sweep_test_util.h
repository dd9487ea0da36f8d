// Helpers shared by the sweep/regress tests: run the built lpusim, read files, make scratch dirs.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/support/cli.h"
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sweep_test {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_file(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
}

// A fresh scratch directory for one test (removed first if a previous run left it).
inline fs::path scratch(const std::string& name) {
  const fs::path d = fs::path(LPU_BINARY_DIR) / "sweep-tests" / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

inline size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

// A sweep's three output files (sweep.json, results.jsonl, results.csv) exist in both directories
// and are byte-identical.
inline void require_same_outputs(const fs::path& a, const fs::path& b) {
  for (const char* f : {"sweep.json", "results.jsonl", "results.csv"}) {
    INFO(f);
    REQUIRE(fs::exists(a / f));
    REQUIRE(fs::exists(b / f));
    CHECK(read_file(a / f) == read_file(b / f));
  }
}

struct Run { int status; std::string out, err; };

// Runs `lpusim ARGS` (args already shell-quoted as needed), capturing stdout and stderr.
inline Run lpusim(const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = "'" + lpusim_exe() + "' " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int raw = std::system(cmd.c_str());
  return Run{WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_file(out), read_file(err)};
}

inline std::string asm_path(const std::string& name) {
  return std::string(LPU_SOURCE_DIR) + "/workloads/asm/" + name;
}

}  // namespace sweep_test
