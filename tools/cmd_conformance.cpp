// `lpusim conformance [DATA_DIR]`: runs `lpusim check` (compile, timing simulation == prediction,
// functional simulation of every test_data_set_N compared within check's bound) on every ONNX
// backend test case under DATA_DIR/<suite>/<case>/ (Debian package libonnx-testdata) and
// classifies each case:
//   pass        check exited 0;
//   fail        check exited 1 (cycle mismatch, output outside the bound, schedule error), 3
//               (internal error) or died on a signal; the reason is check's FAIL/MISMATCH line;
//   unsupported check refused the case with an InputError (exit 2): an op, attribute, opset, dtype
//               or form the importer or the lowering does not handle; the reason is its message;
//   limit       the case is over --max-bytes (model + test data) or check ran over --timeout.
// Each case runs as its own `lpusim check` process (the same code path as the user's command, and a
// time limit can kill it); --jobs of them at once. Writes a Markdown report (-o) and a TSV of every
// case and its status (--tsv; tests/data/conformance_expected.tsv is one, which the ctest suite
// tests/compiler/test_conformance_chip.cpp replays). Output files are byte-identical for the same
// inputs and outcomes (no timings in them). See docs/conformance.md.
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "compiler/frontends/onnx_import.h"
#include "compiler/frontends/onnx_test_case.h"
#include "tools/cli_io.h"
#include "tools/commands.h"

extern char** environ;

namespace lpu::cli {

namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultDataDir = "/usr/share/libonnx-testdata/data";

struct ConformanceArgs {
  std::string data_dir = kDefaultDataDir;
  std::string out_md;
  std::string out_tsv;
  std::string filter;
  std::string chip;
  int jobs = 2;
  double timeout_s = 20;
  uint64_t max_bytes = 16u << 20;
};

enum class Status { Pass, Fail, Unsupported, Limit };

const char* status_name(Status s) {
  switch (s) {
    case Status::Pass: return "pass";
    case Status::Fail: return "fail";
    case Status::Unsupported: return "unsupported";
    case Status::Limit: return "limit";
  }
  return "?";
}

struct Case {
  std::string id;  // "<suite>/<case>", e.g. "node/test_add"
  fs::path dir;
  std::vector<std::string> ops;     // op types of model.onnx ("?" if unreadable)
  std::vector<std::string> datasets;
  uint64_t bytes = 0;               // model.onnx + test data
  Status status = Status::Unsupported;
  std::string reason;
  std::string note;  // how the case was run, if not as stored ("with inputs 1.. bound as constants")
};

uint64_t tree_bytes(const fs::path& p) {
  uint64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(p))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

// Every DATA_DIR/<suite>/<case>/model.onnx whose id matches `filter`, sorted by id.
std::vector<Case> find_cases(const ConformanceArgs& a) {
  if (!fs::is_directory(a.data_dir))
    throw InputError(fmt::format("DATA_DIR '{}': not a directory; the ONNX backend test cases are in Debian's "
                                 "libonnx-testdata package (scripts/install-deps.sh installs it) under {}",
                                 a.data_dir, kDefaultDataDir));
  std::regex re;
  try {
    re = std::regex(a.filter.empty() ? std::string(".") : a.filter);
  } catch (const std::regex_error& e) {
    throw InputError(fmt::format("--filter: '{}' is not a regular expression ({})", a.filter, e.what()));
  }
  std::vector<Case> cases;
  for (const auto& suite : fs::directory_iterator(a.data_dir)) {
    if (!suite.is_directory()) continue;
    for (const auto& c : fs::directory_iterator(suite.path())) {
      if (!fs::is_regular_file(c.path() / "model.onnx")) continue;
      Case k;
      k.id = suite.path().filename().string() + "/" + c.path().filename().string();
      if (!std::regex_search(k.id, re)) continue;
      k.dir = c.path();
      for (const auto& d : fs::directory_iterator(c.path()))
        if (d.is_directory() && d.path().filename().string().rfind("test_data_set_", 0) == 0)
          k.datasets.push_back(d.path().string());
      std::sort(k.datasets.begin(), k.datasets.end());
      k.bytes = tree_bytes(c.path());
      try {
        k.ops = frontend::onnx_op_types((c.path() / "model.onnx").string());
      } catch (const InputError&) {
        k.ops = {"?"};
      }
      cases.push_back(std::move(k));
    }
  }
  std::sort(cases.begin(), cases.end(), [](const Case& x, const Case& y) { return x.id < y.id; });
  if (cases.empty())
    throw InputError(fmt::format("DATA_DIR '{}': no <suite>/<case>/model.onnx{}", a.data_dir,
                                 a.filter.empty() ? "" : " matching --filter '" + a.filter + "'"));
  return cases;
}

std::string self_exe() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) throw InputError("conformance: cannot find the lpusim executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

// Replaces every occurrence of `from` in `s` by `to`.
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; !from.empty() && (p = s.find(from, p)) != std::string::npos; p += to.size())
    s.replace(p, from.size(), to);
  return s;
}

// A one-line reason: paths made relative to the data dir, the importer's and lowering's long lists
// of what is supported cut off (docs/conformance.md lists them once), at most 400 characters.
std::string short_reason(std::string s, const std::string& data_dir) {
  s = replace_all(s, data_dir + "/", "");
  s = replace_all(s, "\t", " ");
  s = replace_all(s, "|", "\\|");
  for (const char* cut : {"; supported: ", " (supported: ", " (conv nets: "}) {
    const size_t p = s.find(cut);
    if (p != std::string::npos) s = s.substr(0, p);
  }
  if (s.size() > 400) s = s.substr(0, 400) + "...";
  return s;
}

// Classifies a finished `lpusim check` from its exit and its output.
void classify(Case& k, int wstatus, const std::string& out, const std::string& data_dir) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  auto first_with = [&](const std::vector<std::string>& keys) -> std::string {
    for (const std::string& l : lines)
      for (const std::string& key : keys)
        if (l.find(key) != std::string::npos) return l;
    return "";
  };
  if (WIFSIGNALED(wstatus)) {
    k.status = Status::Fail;
    k.reason = fmt::format("check died on signal {}", WTERMSIG(wstatus));
    return;
  }
  const int rc = WEXITSTATUS(wstatus);
  if (rc == 0) {
    k.status = Status::Pass;
    k.reason.clear();
    return;
  }
  if (rc == 2) {
    std::string l = first_with({"lpusim: error: "});
    if (l.empty()) l = lines.empty() ? "(no message)" : lines.back();
    k.reason = short_reason(replace_all(l, "lpusim: error: ", ""), data_dir);
    // check reports an output of the wrong size as an InputError too; that is the program's fault.
    k.status = l.find("the program produced") != std::string::npos ? Status::Fail : Status::Unsupported;
    return;
  }
  k.status = Status::Fail;
  std::string l = first_with({"schedule error", "MISMATCH", "-> FAIL", "internal error"});
  if (l.empty()) l = fmt::format("check exited {}{}", rc, lines.empty() ? "" : ": " + lines.back());
  // "  output 'y' (60 elements): max abs err ..." -> trimmed
  l.erase(0, l.find_first_not_of(' '));
  k.reason = short_reason(l, data_dir);
}

// One `lpusim check` to run: the case it is for, the model and its data-set directories.
struct Job {
  size_t index;
  std::string model;
  std::vector<std::string> datasets;
  std::string alias;  // a temporary directory the job's files are in, written as the case id in reasons
};

struct Running {
  pid_t pid;
  size_t job;
  std::string out_file;
  std::chrono::steady_clock::time_point start;
};

// Runs every job's `lpusim check`, `a.jobs` at a time, and classifies its case.
void run_jobs(const std::vector<Job>& jobs, std::vector<Case>& cases, const ConformanceArgs& a, const fs::path& tmp,
              size_t* done) {
  const std::string exe = self_exe();
  std::vector<Running> running;
  size_t next = 0;
  auto launch = [&](size_t j) {
    std::vector<std::string> args{exe, "check", jobs[j].model};
    args.insert(args.end(), jobs[j].datasets.begin(), jobs[j].datasets.end());
    if (!a.chip.empty()) args.insert(args.end(), {"--chip", a.chip});
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    const std::string out = (tmp / fmt::format("{}.txt", j)).string();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw InputError(fmt::format("conformance: cannot start '{}' ({})", exe, std::strerror(rc)));
    running.push_back({pid, j, out, std::chrono::steady_clock::now()});
  };
  const auto limit = std::chrono::duration<double>(a.timeout_s);
  while (next < jobs.size() || !running.empty()) {
    while (next < jobs.size() && running.size() < static_cast<size_t>(a.jobs)) launch(next++);
    bool progressed = false;
    for (size_t r = 0; r < running.size();) {
      int ws = 0;
      const pid_t w = waitpid(running[r].pid, &ws, WNOHANG);
      Case& k = cases[jobs[running[r].job].index];
      const bool late = std::chrono::steady_clock::now() - running[r].start > limit;
      if (w == 0 && !late) {
        ++r;
        continue;
      }
      if (w == 0) {  // over the time limit
        kill(running[r].pid, SIGKILL);
        waitpid(running[r].pid, &ws, 0);
        k.status = Status::Limit;
        k.reason = fmt::format("check ran over the --timeout limit of {} s", a.timeout_s);
      } else {
        classify(k, ws, read_text_file(running[r].out_file, "check output"), a.data_dir);
        if (!jobs[running[r].job].alias.empty()) k.reason = replace_all(k.reason, jobs[running[r].job].alias, k.id);
      }
      if (!k.note.empty() && k.status != Status::Pass) k.reason = k.note + ": " + k.reason;
      fs::remove(running[r].out_file);
      std::cout << fmt::format("[{}/{}] {}: {}{}\n", ++*done, cases.size(), k.id, status_name(k.status),
                               k.reason.empty() ? "" : " (" + k.reason.substr(0, 160) + ")");
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(r));
      progressed = true;
    }
    if (!progressed) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// True if binding inputs 1.. as constants could change check's verdict: the case was refused, has
// two or more runtime inputs, and was not refused for something binding cannot change (an op type,
// opset, domain or a non-tensor input the importer lacks).
bool worth_binding(const Case& k) {
  if (k.status != Status::Unsupported) return false;
  for (const char* fixed : {"op type is not supported", "domain opset", "is not a tensor", "domain '"})
    if (k.reason.find(fixed) != std::string::npos) return false;
  return frontend::onnx_runtime_inputs((k.dir / "model.onnx").string()) >= 2;
}

// Second attempt at a case for which worth_binding(): a copy under `dir` whose runtime
// inputs 1..n-1 are initializers (as an exporter writes weights and shapes) and whose data sets keep
// input_0.pb and the outputs. Only when those inputs have the same bytes in every data set (so one
// constant stands for all); returns false otherwise.
bool bind_parameters(const Case& k, const fs::path& dir, Job* job) {
  const std::string model = (k.dir / "model.onnx").string();
  const int n = frontend::onnx_runtime_inputs(model);
  if (n < 2 || k.datasets.empty()) return false;
  std::vector<std::string> files;
  for (int i = 1; i < n; ++i) {
    const std::string f0 = fmt::format("{}/input_{}.pb", k.datasets[0], i);
    if (!fs::exists(f0)) return false;
    for (const std::string& d : k.datasets)
      if (read_text_file(fmt::format("{}/input_{}.pb", d, i), "test input") != read_text_file(f0, "test input"))
        return false;
    files.push_back(f0);
  }
  fs::create_directories(dir);
  job->model = (dir / "model.onnx").string();
  write_text_file(job->model, frontend::onnx_bind_inputs(model, 1, files));
  job->datasets.clear();
  for (const std::string& d : k.datasets) {
    const fs::path nd = dir / fs::path(d).filename();
    fs::create_directories(nd);
    for (const auto& e : fs::directory_iterator(d)) {
      const std::string name = e.path().filename().string();
      if (name == "input_0.pb" || name.rfind("output_", 0) == 0) fs::copy_file(e.path(), nd / name);
    }
    job->datasets.push_back(nd.string());
  }
  return true;
}

// Checks every case within the size limit; then retries, with inputs 1.. bound as constants, the
// refused cases for which worth_binding().
void run_cases(std::vector<Case>& cases, const ConformanceArgs& a) {
  std::string tmpl = (fs::temp_directory_path() / "lpusim-conformance-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw InputError("conformance: cannot create a temporary directory");
  const fs::path tmp(tmpl);
  size_t done = 0;
  std::vector<Job> jobs;
  for (size_t i = 0; i < cases.size(); ++i) {
    Case& k = cases[i];
    if (k.bytes > a.max_bytes) {
      k.status = Status::Limit;
      k.reason = fmt::format("model + test data are {} bytes, over the --max-bytes limit of {}", k.bytes, a.max_bytes);
      ++done;
      continue;
    }
    jobs.push_back({i, (k.dir / "model.onnx").string(), k.datasets, ""});
  }
  try {
    run_jobs(jobs, cases, a, tmp, &done);
    std::vector<Job> retry;
    for (const Job& j : jobs) {
      Case& k = cases[j.index];
      const fs::path dir = tmp / fmt::format("bound{}", j.index);
      Job r{j.index, "", {}, dir.string()};
      if (worth_binding(k) && bind_parameters(k, dir, &r)) {
        k.note = "with inputs 1.. bound as constants";
        retry.push_back(r);
      }
    }
    std::cout << fmt::format("retrying {} cases with their parameter inputs bound as constants\n", retry.size());
    done = cases.size() - retry.size();
    run_jobs(retry, cases, a, tmp, &done);
  } catch (...) {
    fs::remove_all(tmp);
    throw;
  }
  fs::remove_all(tmp);
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// A coarse bucket of an unsupported/fail reason, for the summary table only (each case's full
// reason is listed too).
std::string reason_class(const Case& k) {
  const std::string& r = k.reason;
  if (k.status == Status::Limit) return "over a limit";
  if (k.status == Status::Fail) {
    if (r.find("schedule error") != std::string::npos) return "fail: schedule error";
    if (r.find("MISMATCH") != std::string::npos) return "fail: simulated != predicted cycles";
    if (r.find("-> FAIL") != std::string::npos) return "fail: output outside the bound";
    if (r.find("the program produced") != std::string::npos)
      return "fail: check refused the output (element count or bound size differs)";
    return "fail: crash or internal error";
  }
  static const std::vector<std::pair<std::regex, std::string>> classes = {
      {std::regex("opset [0-9]+ is not supported"),
       fmt::format("opset outside {}..{} (importer)", frontend::kOnnxMinOpset, frontend::kOnnxMaxOpset)},
      {std::regex("op type is not supported"), "op not imported"},
      {std::regex("is not a tensor"), "sequence or map input (importer)"},
      {std::regex("domain '"), "op of a non-default domain (importer)"},
      {std::regex("every dim must be >=|needs every dim >=|empty tensors"), "empty tensor (importer)"},
      {std::regex("symbolic"), "symbolic input dim (importer)"},
      {std::regex("only output [0-9]+ is supported"), "optional extra output used (Mean/InvStdDev, mask, Indices)"},
      {std::regex("only inference"), "training mode (importer)"},
      {std::regex("ShapeInferenceError|TypeInferenceError"), "ONNX shape inference refused the model"},
      {std::regex("program: no tensor"), "graph input the program does not use (check cannot bind it)"},
      {std::regex("compile-time constant"), "parameter given as a graph input, needs a constant (importer)"},
      {std::regex("weight '[^']*' must be a constant"), "weight given as a graph input, needs a constant (lowering)"},
      {std::regex("does not fit in SRAM"), "does not fit in the chip's SRAM (compiler)"},
      {std::regex("has shape \\[[0-9]+,[0-9]+,[0-9]+,[0-9]+,[0-9]+\\]"), "3 spatial dims (conv/pool take 1 or 2)"},
      {std::regex("storage_order"), "attribute value not supported"},
      {std::regex("attribute"), "attribute value not supported"},
      {std::regex("dtype|int64|INT64|double|DOUBLE|F64|I64|bool|BOOL|string|STRING|uint|UINT|int8|INT8|int16|INT16|int32|INT32|float16|BF16|bfloat|BFLOAT16|type i(8|16|32|64)\\b|of type i64|no i64"), "dtype not supported"},
      {std::regex("model '"), "form not lowered (lowering)"},
  };
  for (const auto& [re, name] : classes)
    if (std::regex_search(r, re)) return "unsupported: " + name;
  return "unsupported: other";
}

std::string markdown(const std::vector<Case>& cases, const ConformanceArgs& a) {
  std::map<Status, int> total;
  std::map<std::string, std::map<Status, int>> by_suite, by_op;
  std::map<std::string, int> by_class;
  for (const Case& k : cases) {
    ++total[k.status];
    ++by_suite[k.id.substr(0, k.id.find('/'))][k.status];
    for (const std::string& op : k.ops) ++by_op[op][k.status];
    if (k.status != Status::Pass) ++by_class[reason_class(k)];
  }
  auto row = [](const std::string& name, std::map<Status, int>& m) {
    const int n = m[Status::Pass] + m[Status::Fail] + m[Status::Unsupported] + m[Status::Limit];
    return fmt::format("| {} | {} / {} | {} | {} | {} |\n", name, m[Status::Pass], n, m[Status::Fail],
                       m[Status::Unsupported], m[Status::Limit]);
  };
  std::string s;
  s += "# ONNX conformance on the chip\n\n";
  s += "Generated by `lpusim conformance` (tools/cmd_conformance.cpp); do not edit by hand. Regenerate with\n\n";
  s += "```\nlpusim conformance " + std::string(kDefaultDataDir) +
       " -o docs/conformance.md --tsv tests/data/conformance_expected.tsv\n```\n\n";
  s += fmt::format(
      "Every ONNX backend test case of Debian's `libonnx-testdata` (DATA_DIR/<suite>/<case>/model.onnx with "
      "test_data_set_N/) is run through `lpusim check MODEL test_data_set_*` (compile; timing simulation must "
      "take exactly the predicted cycles; functional simulation of each data set, every output within check's "
      "bound; see docs/compiler.md), each case as its own process with a {} s time limit and a {} byte size "
      "limit on model + data. A refused case with two or more inputs (the node tests give Conv/Gemm weights, "
      "Reshape shapes, Slice starts, ... as graph inputs), unless it was refused for an op type, opset or input "
      "kind binding cannot change, is run again with its runtime inputs 1.. bound "
      "as constants (initializers holding test_data_set_0's values, when every data set has the same ones), the "
      "way an exporter writes them; its reason then starts with \"with inputs 1.. bound as constants\". Status: **pass**; **fail** (check exited 1: output outside the bound, cycle "
      "mismatch or schedule error; or crashed); **unsupported** (check refused the case with an InputError: an "
      "op, attribute, opset, dtype or form the importer or the lowering does not handle; the reason is the "
      "error's text with its list of what is supported cut off); **limit** (over the size or time limit). The "
      "cases that pass are replayed by the ctest suite `conformance chip: ...` "
      "(tests/compiler/test_conformance_chip.cpp) from tests/data/conformance_expected.tsv.\n\n",
      a.timeout_s, a.max_bytes);
  s += fmt::format("Ops the importer accepts: {}.\n\n", join(frontend::onnx_supported_ops(), ", "));
  s += "## Totals\n\n| suite | pass / cases | fail | unsupported | limit |\n|---|---|---|---|---|\n";
  for (auto& [suite, m] : by_suite) s += row(suite, m);
  s += row("**all**", total);
  s += "\n## Why cases do not pass\n\n| reason (coarse class) | cases |\n|---|---|\n";
  std::vector<std::pair<std::string, int>> classes(by_class.begin(), by_class.end());
  std::stable_sort(classes.begin(), classes.end(), [](auto& x, auto& y) { return x.second > y.second; });
  for (const auto& [c, n] : classes) s += fmt::format("| {} | {} |\n", c, n);
  s += "\n## Per op\n\nA case counts for every op type its model uses (the expanded and pytorch cases use several).\n\n";
  s += "| op | pass / cases | fail | unsupported | limit |\n|---|---|---|---|---|\n";
  for (auto& [op, m] : by_op) s += row("`" + op + "`", m);
  s += "\n## Cases that pass\n\n";
  std::vector<std::string> passed;
  for (const Case& k : cases)
    if (k.status == Status::Pass) passed.push_back("`" + k.id + "`" + (k.note.empty() ? "" : "*"));
  s += "Marked * : passes with its runtime inputs 1.. bound as constants (see above).\n\n";
  s += passed.empty() ? "(none)\n" : join(passed, ", ") + "\n";
  for (Status st : {Status::Fail, Status::Limit, Status::Unsupported}) {
    s += fmt::format("\n## Cases with status {}\n\n| case | ops | reason |\n|---|---|---|\n", status_name(st));
    int n = 0;
    for (const Case& k : cases)
      if (k.status == st) {
        s += fmt::format("| `{}` | {} | {} |\n", k.id, join(k.ops, ", "), k.reason);
        ++n;
      }
    if (n == 0) s += "| (none) | | |\n";
  }
  return s;
}

std::string tsv(const std::vector<Case>& cases) {
  std::string s =
      "# case\tstatus\tops\tnote -- written by `lpusim conformance --tsv`; tests/compiler/test_conformance_chip.cpp "
      "requires every 'pass' case to keep passing `lpusim check`\n";
  for (const Case& k : cases)
    s += k.id + "\t" + status_name(k.status) + "\t" + join(k.ops, ",") + "\t" + k.note + "\n";
  return s;
}

void run_conformance(ConformanceArgs a) {
  while (a.data_dir.size() > 1 && a.data_dir.back() == '/') a.data_dir.pop_back();
  if (a.jobs < 1 || a.jobs > 256) throw InputError(fmt::format("--jobs: {} is out of range (allowed: 1..256)", a.jobs));
  if (!(a.timeout_s > 0 && a.timeout_s <= 3600))
    throw InputError(fmt::format("--timeout: {} is out of range (allowed: > 0 and <= 3600 seconds)", a.timeout_s));
  std::vector<Case> cases = find_cases(a);
  const auto t0 = std::chrono::steady_clock::now();
  run_cases(cases, a);
  std::map<Status, int> n;
  for (const Case& k : cases) ++n[k.status];
  std::cout << fmt::format("{} cases: {} pass, {} fail, {} unsupported, {} over a limit ({:.1f} s)\n", cases.size(),
                           n[Status::Pass], n[Status::Fail], n[Status::Unsupported], n[Status::Limit],
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (!a.out_md.empty()) write_text_file(a.out_md, markdown(cases, a), "-o");
  if (!a.out_tsv.empty()) write_text_file(a.out_tsv, tsv(cases), "--tsv");
}

}  // namespace

void register_conformance(CLI::App& app) {
  auto ca = std::make_shared<ConformanceArgs>();
  CLI::App* c = app.add_subcommand(
      "conformance", "Run `check` on every ONNX backend test case (libonnx-testdata) and classify each as pass, "
                     "fail, unsupported or over a limit");
  c->add_option("data_dir", ca->data_dir, std::string("directory of <suite>/<case>/model.onnx (default ") +
                                              kDefaultDataDir + ")");
  c->add_option("-o,--output", ca->out_md, "write the Markdown report (e.g. docs/conformance.md)");
  c->add_option("--tsv", ca->out_tsv, "write every case and its status (e.g. tests/data/conformance_expected.tsv)");
  c->add_option("--filter", ca->filter, "only cases whose '<suite>/<case>' matches this regular expression");
  c->add_option("--chip", ca->chip, "chip configuration YAML (default: built-in tsp-v1)");
  c->add_option("-j,--jobs", ca->jobs, "cases checked at once (default 2)");
  c->add_option("--timeout", ca->timeout_s, "seconds per case before it is killed and listed as over the limit "
                                            "(default 20)");
  c->add_option("--max-bytes", ca->max_bytes, "cases whose model + test data exceed this are listed as over the "
                                              "limit without running (default 16777216)");
  c->callback([ca]() { run_conformance(*ca); });
}

}  // namespace lpu::cli
