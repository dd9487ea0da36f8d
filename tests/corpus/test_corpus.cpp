// Bad-input corpus: runs every entry of tests/corpus/corpus.tsv through the real `lpusim` executable
// and checks it is refused cleanly: expected exit status, pinned message substring, no signal, no hang.
#include <catch2/catch.hpp>

#include "tests/support/cli.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

// One line of corpus.tsv.
struct CorpusEntry {
  int line = 0;
  std::string name;
  int status = 0;
  std::vector<std::string> args;
  std::string pinned;
  bool known_bug = false;
};

// Outcome of one lpusim run.
struct RunResult {
  bool timed_out = false;
  bool signaled = false;
  int signal = 0;
  int status = -1;
  std::string output;  // stdout and stderr interleaved
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

// Reads the table; a malformed line fails the test (the table itself is under test too).
std::vector<CorpusEntry> load_corpus(const std::string& path, const std::string& tmp) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<CorpusEntry> out;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.empty() || text[0] == '#') continue;
    auto cols = split(text, '\t');
    INFO(path << ":" << line << ": " << text);
    REQUIRE((cols.size() == 4 || cols.size() == 5));
    CorpusEntry e;
    e.line = line;
    e.name = cols[0];
    e.status = std::stoi(cols[1]);
    for (const auto& a : split(replace_all(replace_all(cols[2], "{REPO}", LPU_SOURCE_DIR), "{TMP}", tmp), ' '))
      if (!a.empty()) e.args.push_back(a);
    e.pinned = cols[3];
    REQUIRE(!e.pinned.empty());
    if (cols.size() == 5) {
      REQUIRE(cols[4] == "known_bug");
      e.known_bug = true;
    }
    out.push_back(e);
  }
  return out;
}

// Runs `lpusim args...` with output to a file; kills it after `limit` (counted as a hang).
RunResult run_lpusim(const std::string& exe, const std::vector<std::string>& args, const std::string& out_file,
                     std::chrono::seconds limit) {
  std::vector<std::string> argv_s{exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);

  RunResult r;
  int wstatus = 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    pid_t w = waitpid(pid, &wstatus, WNOHANG);
    REQUIRE(w >= 0);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFSIGNALED(wstatus)) {
    r.signaled = true;
    r.signal = WTERMSIG(wstatus);
  } else if (WIFEXITED(wstatus)) {
    r.status = WEXITSTATUS(wstatus);
  }
  std::ifstream in(out_file, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

}  // namespace

TEST_CASE("corpus: every bad input is refused with its pinned status and message, no signal, no hang", "[corpus]") {
  const std::string exe = lpusim_exe();
  char tmpl[] = "/tmp/lpusim_corpus_XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string tmp = tmpl;
  const auto entries = load_corpus(std::string(LPU_SOURCE_DIR) + "/tests/corpus/corpus.tsv", tmp);
  CHECK(entries.size() >= 60);

  std::set<std::string> names;
  int known_bugs = 0;
  for (const auto& e : entries) {
    INFO("corpus.tsv:" << e.line << " entry '" << e.name << "'");
    CHECK(names.insert(e.name).second);  // names are unique
    // Sanitizer builds run lpusim several times slower; the bound is about hangs, not speed.
    const RunResult r = run_lpusim(exe, e.args, tmp + "/output.txt", std::chrono::seconds(60));
    INFO("output: " << r.output);
    CHECK_FALSE(r.timed_out);
    CHECK_FALSE(r.signaled);
    CHECK(r.status == e.status);
    if (e.known_bug) {
      ++known_bugs;
      // Still broken as reported? When this fails, the bug is fixed: drop the known_bug flag.
      CHECK(r.output.find(e.pinned) == std::string::npos);
    } else {
      CHECK(r.output.find(e.pinned) != std::string::npos);
    }
  }
  if (known_bugs > 0) WARN(known_bugs << " corpus entries are flagged known_bug (see docs/reliability.md)");
  std::remove((tmp + "/output.txt").c_str());
  std::remove((tmp + "/out.lpu").c_str());
  rmdir(tmp.c_str());
}
