// docs/tutorial.md cannot go stale: every `$ command` of its ```console blocks runs, in document
// order, in a fresh directory (workloads/ and scripts/ linked from the repository, `lpusim` = the
// tool built with these tests, `python3` = the one with matplotlib, see python.h); each must exit
// 0, and the lines shown under it must appear in its output, in that order ("..." = lines left
// out). Fenced blocks whose info string has `file=PATH` (```asm file=tut/copy.s) are written to
// PATH when reached, as the reader saves them. The ```sh set-up block (PATH) is what this test
// does itself and is not run.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli.h"
#include "tests/support/process.h"
#include "tests/sweep/sweep_test_util.h"
#include "tests/tutorial/python.h"

using namespace sweep_test;
namespace fs = std::filesystem;

namespace {

// One step of the tutorial: a file to save or a command with the output lines it shows.
struct Step {
  int line = 0;            // line of the tutorial (1-based)
  std::string file, text;  // file step: path and contents
  std::string command;     // command step
  std::vector<std::string> shown;
};

std::string rtrim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::vector<Step> parse_tutorial(const std::string& md) {
  std::vector<Step> steps;
  std::istringstream in(md);
  std::string line;
  int n = 0;
  enum { Text, Console, File, Other } mode = Text;
  Step cur;
  while (std::getline(in, line)) {
    ++n;
    line = rtrim(line);
    if (line.rfind("```", 0) == 0) {
      if (mode == Text) {
        const std::string info = line.substr(3);
        const size_t f = info.find("file=");
        if (info == "console") {
          mode = Console;
        } else if (f != std::string::npos) {
          mode = File;
          cur = Step{};
          cur.line = n;
          cur.file = info.substr(f + 5, info.find(' ', f) == std::string::npos ? std::string::npos : info.find(' ', f) - f - 5);
        } else {
          mode = Other;
        }
      } else {
        if (mode == File) steps.push_back(cur);
        mode = Text;
      }
      continue;
    }
    if (mode == File) {
      cur.text += line + "\n";
    } else if (mode == Console) {
      if (line.rfind("$ ", 0) == 0) {
        Step s;
        s.line = n;
        s.command = line.substr(2);
        steps.push_back(s);
        while (!steps.back().command.empty() && steps.back().command.back() == '\\' && std::getline(in, line)) {
          ++n;
          steps.back().command.pop_back();
          steps.back().command += "\n" + rtrim(line);
        }
      } else if (!line.empty() && line != "...") {
        INFO("docs/tutorial.md:" << n << ": output shown before any command: " << line);
        REQUIRE(!steps.empty());
        REQUIRE(!steps.back().command.empty());
        steps.back().shown.push_back(line);
      }
    }
  }
  INFO("docs/tutorial.md: a fenced block is not closed");
  REQUIRE(mode == Text);
  return steps;
}

}  // namespace

TEST_CASE("tutorial: every console command runs and prints what the tutorial shows", "[tutorial]") {
  const fs::path doc = fs::path(LPU_SOURCE_DIR) / "docs" / "tutorial.md";
  const std::vector<Step> steps = parse_tutorial(read_file(doc));
  int commands = 0, files = 0;
  for (const Step& s : steps) (s.command.empty() ? files : commands)++;
  // The tutorial's four parts: 18 commands and 2 programs when this test was written.
  REQUIRE(commands >= 15);
  REQUIRE(files >= 2);

  const fs::path d = scratch("tutorial");
  const fs::path work = d / "work", bin = d / "bin";
  fs::create_directories(work);
  fs::create_directories(bin);
  fs::create_symlink(fs::path(LPU_SOURCE_DIR) / "workloads", work / "workloads");
  fs::create_symlink(fs::path(LPU_SOURCE_DIR) / "scripts", work / "scripts");
  fs::create_symlink(lpusim_exe(), bin / "lpusim");
  fs::create_symlink(debian_python3(), bin / "python3");
  const char* path = std::getenv("PATH");
  REQUIRE(setenv("PATH", (bin.string() + ":" + (path ? path : "/usr/bin:/bin")).c_str(), 1) == 0);
  const std::string out_file = (d / "step.out").string();

  for (const Step& s : steps) {
    INFO("docs/tutorial.md:" << s.line);
    if (!s.file.empty()) {
      fs::create_directories((work / s.file).parent_path());
      write_file(work / s.file, s.text);
      continue;
    }
    INFO("$ " << s.command);
    const ProcessResult r = run_process("/bin/bash", {"-c", "cd '" + work.string() + "' && " + s.command}, out_file,
                                        std::chrono::seconds(60), Stderr::ToOutput);
    INFO("output:\n" << r.output);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.status == 0);
    // Shown lines appear as whole lines, in order.
    std::istringstream got(r.output);
    std::string g;
    size_t next = 0;
    while (next < s.shown.size() && std::getline(got, g))
      if (rtrim(g) == s.shown[next]) ++next;
    INFO("first shown line not printed (in this order): " << (next < s.shown.size() ? s.shown[next] : ""));
    CHECK(next == s.shown.size());
  }
  fs::remove_all(d);
}
