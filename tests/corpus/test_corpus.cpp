// Bad-input corpus: runs every entry of tests/corpus/corpus.tsv through the real `lpusim` executable
// and checks it is refused cleanly: expected exit status, pinned message substring, no signal, no hang.
#include <catch2/catch.hpp>

#include "tests/support/cli.h"
#include "tests/support/process.h"

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
    const ProcessResult r = run_process(exe, e.args, tmp + "/output.txt", std::chrono::seconds(60), Stderr::ToOutput);
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
