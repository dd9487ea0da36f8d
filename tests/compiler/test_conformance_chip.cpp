// ONNX conformance on the chip: every case that `lpusim conformance` found passing (status 'pass'
// in tests/data/conformance_expected.tsv, written by `lpusim conformance --tsv`) must keep passing
// `lpusim check MODEL test_data_set_*` (compile, simulated == predicted cycles, outputs within
// check's bound), run through `lpusim conformance --filter` on exactly those cases. The cases come from Debian's libonnx-testdata; the batches below split them so
// each test case stays within a few seconds. docs/conformance.md has the whole classification.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/cli.h"
#include "tests/support/files.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;

namespace {
constexpr const char* kDataDir = "/usr/share/libonnx-testdata/data";

// The (id, status) rows of a `lpusim conformance --tsv` file, in file order ('#' lines are comments).
std::vector<std::pair<std::string, std::string>> tsv_statuses(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::pair<std::string, std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    std::string id, status;
    std::getline(f, id, '\t');
    std::getline(f, status, '\t');
    rows.emplace_back(id, status);
  }
  return rows;
}

// The pass rows ("<suite>/<case>") of the committed expectation list.
std::vector<std::string> expected_passing() {
  const std::string path = std::string(LPU_SOURCE_DIR) + "/tests/data/conformance_expected.tsv";
  std::vector<std::string> ids;
  for (const auto& [id, status] : tsv_statuses(read_text(path)))
    if (status == "pass") ids.push_back(id);
  return ids;
}

// The batches, as regular expressions over the case id; together they must cover every pass row
// (the first test case insists). Each takes 5-7 s (`lpusim conformance --jobs 1` on its pass rows,
// 291 of 1072 cases in all: about 37 s).
const std::vector<std::string>& batches() {
  static const std::vector<std::string> b = {"^node/test_[a-c]",   "^node/test_[d-q]",    "^node/test_r",
                                             "^node/test_[s-z]",   "^pytorch-converted/", "^(pytorch-operator|simple)/"};
  return b;
}

// Runs `lpusim conformance` on exactly the pass rows whose id matches `batch` (the same command that
// wrote the list, so cases passing with their parameter inputs bound as constants are run that way
// again) and requires each of them to be 'pass' in the TSV it writes.
void check_batch(const std::string& batch) {
  if (!fs::is_directory(kDataDir))
    FAIL(std::string(kDataDir) + " is missing: install Debian's libonnx-testdata package (scripts/install-deps.sh)");
  const std::regex re(batch);
  std::vector<std::string> ids;
  for (const std::string& id : expected_passing())
    if (std::regex_search(id, re)) ids.push_back(id);
  REQUIRE(!ids.empty());  // an empty batch would pass without checking anything
  std::string filter = "^(";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) filter += "|";
    for (char c : ids[i]) filter += std::string(std::strchr(".[]{}()\\*+?^$|", c) ? "\\" : "") + c;
  }
  filter += ")$";
  const std::string base = std::string(LPU_BINARY_DIR) + "/conformance_chip_" +
                           std::to_string(std::hash<std::string>{}(batch));
  // The timeouts only catch hangs: a pass case must not turn into 'limit' because the build is slow
  // (under ASan+UBSan pytorch-operator/test_operator_conv took over the default 20 s per case).
  const ProcessResult r = run_process(lpusim_exe(), {"conformance", kDataDir, "--filter", filter, "--jobs", "1",
                                                     "--timeout", "120", "--tsv", base + ".tsv"},
                                      base + ".txt", std::chrono::seconds(600), Stderr::ToOutput);
  INFO(r.output);
  REQUIRE(!r.timed_out);
  REQUIRE(r.status == 0);
  std::map<std::string, std::string> got;  // id -> status
  for (const auto& [id, status] : tsv_statuses(read_text(base + ".tsv"))) got[id] = status;
  for (const std::string& id : ids) {
    INFO(id << " is 'pass' in tests/data/conformance_expected.tsv");
    CHECK(got[id] == "pass");
  }
  fs::remove(base + ".tsv");
  fs::remove(base + ".txt");
}
}  // namespace

TEST_CASE("conformance chip: every expected-pass case is in a batch", "[conformance]") {
  for (const std::string& id : expected_passing()) {
    const bool covered = std::any_of(batches().begin(), batches().end(),
                                     [&](const std::string& b) { return std::regex_search(id, std::regex(b)); });
    INFO(id);
    CHECK(covered);
  }
}

TEST_CASE("conformance chip: node tests a-c pass check", "[conformance]") { check_batch(batches()[0]); }
TEST_CASE("conformance chip: node tests d-q pass check", "[conformance]") { check_batch(batches()[1]); }
TEST_CASE("conformance chip: node tests r pass check", "[conformance]") { check_batch(batches()[2]); }
TEST_CASE("conformance chip: node tests s-z pass check", "[conformance]") { check_batch(batches()[3]); }
TEST_CASE("conformance chip: pytorch-converted tests pass check", "[conformance]") { check_batch(batches()[4]); }
TEST_CASE("conformance chip: pytorch-operator and simple tests pass check", "[conformance]") {
  check_batch(batches()[5]);
}
