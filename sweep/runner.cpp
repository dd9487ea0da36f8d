// Sweep runner (subprocess pool, in-order appends, resume) and shard merge (sweep/runner.h).
#include "sweep/runner.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "isa/chip_config.h"
#include "isa/fnv_hash.h"
#include "sweep/results.h"
#include "sweep/spec.h"
#include "sweep/subprocess.h"

namespace lpu::sweep {

namespace fs = std::filesystem;

void parse_shard(const std::string& text, uint32_t& index, uint32_t& count) {
  const size_t slash = text.find('/');
  auto bad = [&]() {
    return InputError(fmt::format("--shard: '{}' is not a shard (write i/N with 0 <= i < N, e.g. 0/4)", text));
  };
  if (slash == std::string::npos) throw bad();
  try {
    size_t u1 = 0, u2 = 0;
    const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
    const unsigned long i = std::stoul(a, &u1), n = std::stoul(b, &u2);
    if (u1 != a.size() || u2 != b.size() || n == 0 || i >= n || n > 1000000 || a[0] == '-' || b[0] == '-') throw bad();
    index = static_cast<uint32_t>(i);
    count = static_cast<uint32_t>(n);
  } catch (const std::logic_error&) {
    throw bad();
  }
}

namespace {

// Appends one line to a file and flushes it at once.
class Appender {
 public:
  explicit Appender(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "ab")) {
    if (!f_) throw InputError(fmt::format("{}: cannot open for appending: {}", path, std::strerror(errno)));
  }
  ~Appender() { std::fclose(f_); }
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;
  void append(const std::string& text) {
    if (std::fwrite(text.data(), 1, text.size(), f_) != text.size() || std::fflush(f_) != 0)
      throw InputError(fmt::format("{}: writing failed: {}", path_, std::strerror(errno)));
  }

 private:
  std::string path_;
  FILE* f_;
};

struct Running {
  size_t pending_pos;  // into the pending list
  std::chrono::steady_clock::time_point started;
  bool timed_out = false;
};

void ensure_dir(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec || !fs::is_directory(p)) throw InputError(fmt::format("{}: cannot create directory: {}", p.string(), ec.message()));
}

}  // namespace

RunSummary run_sweep(const RunOptions& o, std::ostream& log) {
  if (o.jobs == 0) throw InputError("--jobs: must be at least 1; got 0");
  if (o.out_dir.empty()) throw InputError("sweep: -o DIR is required (the output directory)");
  const SweepSpec spec = load_sweep_spec(o.spec_path);
  RunSummary sum;
  sum.total = count_points(spec);
  log << fmt::format("sweep {}: {} points ({} config points x {} workloads{})\n", spec.name, sum.total,
                     count_config_points(spec), spec.workloads.size(),
                     spec.precisions.empty() ? "" : fmt::format(", precisions {}", spec.precisions.size()));
  const uint64_t limit = o.max_points ? o.max_points : kLargeSweepPoints;
  if (sum.total > limit && !o.allow_large)
    throw InputError(fmt::format("{}: the sweep has {} points, more than {}; pass --allow-large or --max-points {} to "
                                 "run it", o.spec_path, sum.total, limit, sum.total));
  const Expansion ex = expand_sweep(spec, o.shard_index, o.shard_count);
  const std::string exe = o.lpusim.empty() ? self_exe() : o.lpusim;
  if (::access(exe.c_str(), X_OK) != 0)
    throw InputError(fmt::format("--lpusim: '{}' is not an executable file", exe));

  const fs::path dir(o.out_dir);
  ensure_dir(dir);
  ensure_dir(dir / "configs");
  ensure_dir(dir / "reports");
  ensure_dir(dir / "logs");
  const std::string meta = sweep_meta_text(spec, sum.total);
  const fs::path meta_path = dir / "sweep.json", jsonl_path = dir / "results.jsonl", csv_path = dir / "results.csv";
  std::error_code ec;
  const bool had_results = fs::exists(jsonl_path, ec) && fs::file_size(jsonl_path, ec) > 0;
  if (had_results && !o.resume)
    throw InputError(fmt::format("{}: already holds sweep results; pass --resume to continue that sweep, or use a new "
                                 "output directory", o.out_dir));
  if (fs::exists(meta_path, ec) && read_text(meta_path.string()) != meta) {
    if (had_results)
      throw InputError(fmt::format("{}: holds results of a different sweep (its sweep.json differs from {}'s); use a "
                                   "new output directory", o.out_dir, o.spec_path));
  }
  write_file_atomic(meta_path.string(), meta);

  // Points of this shard, and those already done (resume).
  std::vector<const SweepPoint*> shard;
  for (const SweepPoint& p : ex.points)
    if (p.index % o.shard_count == o.shard_index) shard.push_back(&p);
  sum.in_shard = shard.size();
  std::set<uint64_t> done;
  std::vector<std::string> fig_columns;
  for (const Figure& f : sweep_figures(spec)) fig_columns.push_back(f.column);
  std::string kept_jsonl, kept_csv = csv_header(spec.columns, fig_columns);
  if (had_results) {
    const JsonlContents c = read_results_jsonl(jsonl_path.string(), true);
    for (size_t i = 0; i < c.records.size(); ++i) {
      const uint64_t idx = c.records[i]["index"].get<uint64_t>();
      const std::string h = c.records[i]["hash"].is_string() ? c.records[i]["hash"].get<std::string>() : "";
      if (idx >= ex.points.size() || hash_hex(ex.points[idx].hash) != h || idx % o.shard_count != o.shard_index)
        throw InputError(fmt::format("{}:{}: point {} (hash {}) is not point {} of shard {}/{} of {}; use a new output "
                                     "directory", jsonl_path.string(), i + 1, idx, h, idx, o.shard_index, o.shard_count,
                                     o.spec_path));
      if (!done.insert(idx).second)
        throw InputError(fmt::format("{}:{}: point {} is recorded twice", jsonl_path.string(), i + 1, idx));
      kept_jsonl += c.lines[i] + "\n";
      kept_csv += csv_row(c.records[i], spec.columns, fig_columns);
    }
    if (c.dropped_tail) log << fmt::format("resume: dropped a truncated last line of {}\n", jsonl_path.string());
  }
  // Rewrite both files from the kept records (drops a truncated tail; regenerates the CSV).
  write_file_atomic(jsonl_path.string(), kept_jsonl);
  write_file_atomic(csv_path.string(), kept_csv);
  sum.skipped = done.size();

  std::vector<const SweepPoint*> pending;
  for (const SweepPoint* p : shard)
    if (!done.count(p->index)) pending.push_back(p);
  log << fmt::format("shard {}/{}: {} points, {} already done, {} to run with {} jobs\n", o.shard_index, o.shard_count,
                     sum.in_shard, sum.skipped, pending.size(), o.jobs);

  // Config files of the pending points.
  for (const SweepPoint* p : pending) {
    const ConfigPoint& cp = ex.configs[p->config];
    const fs::path cfg_path = dir / "configs" / (hash_hex(cp.hash) + ".yaml");
    if (!fs::exists(cfg_path, ec)) write_file_atomic(cfg_path.string(), cp.yaml);
  }

  Appender jsonl(jsonl_path.string()), csv(csv_path.string());
  std::map<pid_t, Running> running;
  std::map<size_t, ojson> finished;  // by pending position, waiting for their turn
  size_t next_launch = 0, next_flush = 0;

  auto launch = [&](size_t pos) {
    const SweepPoint& p = *pending[pos];
    const Workload& w = spec.workloads[p.workload];
    const std::string h = hash_hex(p.hash);
    const std::string report = (dir / "reports" / (h + ".json")).string();
    fs::remove(report, ec);
    std::vector<std::string> argv = {exe};
    argv.push_back(w.kind == Workload::Kind::Program ? "sim" : w.kind == Workload::Kind::Llm ? "llm" : "run");
    argv.push_back(w.path);
    if (w.kind == Workload::Kind::Llm)
      for (const Override& opt : ex.configs[p.config].llm) {  // every option, explicitly
        std::string flag = opt.first;  // option names use '_', the command line '-' (in_flight -> --in-flight)
        std::replace(flag.begin(), flag.end(), '_', '-');
        argv.push_back("--" + flag);
        argv.push_back(opt.second);
      }
    argv.push_back("--chip");
    argv.push_back((dir / "configs" / (hash_hex(ex.configs[p.config].hash) + ".yaml")).string());
    if (!p.precision.empty()) {
      argv.push_back("--precision");
      argv.push_back(p.precision);
    }
    if (!spec.mode.empty()) {
      argv.push_back("--mode");
      argv.push_back(spec.mode);
    }
    argv.push_back("--json");
    argv.push_back(report);
    const pid_t pid = spawn_logged(argv, (dir / "logs" / (h + ".log")).string());
    running[pid] = Running{pos, std::chrono::steady_clock::now()};
  };

  auto complete = [&](const Running& r, int wait_status) {
    const SweepPoint& p = *pending[r.pending_pos];
    const std::string h = hash_hex(p.hash);
    const std::string report_path = (dir / "reports" / (h + ".json")).string();
    const std::string log_path = (dir / "logs" / (h + ".log")).string();
    const ExitStatus st = decode_wait_status(wait_status);
    nlohmann::json report;
    std::string error;
    if (fs::exists(report_path, ec)) {
      try {
        report = nlohmann::json::parse(read_text(report_path));
      } catch (const nlohmann::json::exception& e) {
        error = fmt::format("report {} does not parse: {}", report_path, e.what());
      }
    }
    std::string status = "ok";
    if (r.timed_out) {
      status = "timeout";
      error = fmt::format("killed after the --timeout of {} s", o.timeout_s);
    } else if (!st.ok()) {
      status = "failed";
      error = st.text() + ": " + tail_text(log_path);
    } else if (!report.is_object()) {
      status = "failed";
      if (error.empty()) error = "no JSON report was written";
    }
    if (status == "ok") fs::remove(log_path, ec);  // keep logs of failures only
    else ++sum.failed;
    ++sum.ran;
    finished[r.pending_pos] = make_record(spec, ex, p, status, st.exit_code, error, report);
    while (finished.count(next_flush)) {
      const ojson& rec = finished[next_flush];
      jsonl.append(record_line(rec) + "\n");
      csv.append(csv_row(rec, spec.columns, fig_columns));
      finished.erase(next_flush);
      ++next_flush;
    }
  };

  while (next_flush < pending.size()) {
    while (next_launch < pending.size() && running.size() < o.jobs) launch(next_launch++);
    int status = 0;
    pid_t pid = 0;
    if (o.timeout_s > 0) {
      pid = waitpid(-1, &status, WNOHANG);
      if (pid == 0) {
        const auto now = std::chrono::steady_clock::now();
        for (auto& [cpid, r] : running)
          if (!r.timed_out && std::chrono::duration<double>(now - r.started).count() > o.timeout_s) {
            kill(cpid, SIGKILL);
            r.timed_out = true;
          }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
    } else {
      pid = waitpid(-1, &status, 0);
    }
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(fmt::format("sweep: waitpid failed: {}", std::strerror(errno)));
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;  // not one of ours
    const Running r = it->second;
    running.erase(it);
    complete(r, status);
  }
  log << fmt::format("sweep {}: ran {} points ({} failed), skipped {}; results in {}\n", spec.name, sum.ran, sum.failed,
                     sum.skipped, o.out_dir);
  return sum;
}

void merge_sweeps(const std::vector<std::string>& dirs, const std::string& out_dir, std::ostream& log) {
  if (dirs.empty()) throw InputError("sweep merge: give at least one shard directory");
  if (out_dir.empty()) throw InputError("sweep merge: -o DIR is required (the merged output directory)");
  std::string meta;
  std::map<uint64_t, std::pair<std::string, ojson>> by_index;  // index -> (line, record)
  for (const std::string& d : dirs) {
    const fs::path mp = fs::path(d) / "sweep.json";
    std::error_code ec;
    if (!fs::exists(mp, ec))
      throw InputError(fmt::format("{}: not a sweep output directory (no sweep.json)", d));
    const std::string m = read_text(mp.string());
    if (meta.empty()) meta = m;
    else if (m != meta)
      throw InputError(fmt::format("{}: sweep.json differs from {}'s: these are shards of different sweeps", d, dirs[0]));
    const std::string jp = (fs::path(d) / "results.jsonl").string();
    if (!fs::exists(jp, ec)) throw InputError(fmt::format("{}: no results.jsonl", d));
    const JsonlContents c = read_results_jsonl(jp, false);
    for (size_t i = 0; i < c.records.size(); ++i) {
      const uint64_t idx = c.records[i]["index"].get<uint64_t>();
      auto [it, fresh] = by_index.emplace(idx, std::make_pair(c.lines[i], c.records[i]));
      if (!fresh && it->second.first != c.lines[i])
        throw InputError(fmt::format("{}:{}: point {} is also in another shard with a different result", jp, i + 1, idx));
    }
  }
  const ojson mj = ojson::parse(meta);
  const uint64_t total = mj.at("points").get<uint64_t>();
  std::vector<std::string> columns = mj.at("columns").get<std::vector<std::string>>();
  std::vector<uint64_t> missing;
  for (uint64_t i = 0; i < total; ++i)
    if (!by_index.count(i)) missing.push_back(i);
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + std::to_string(missing[i]);
    throw InputError(fmt::format("sweep merge: {} of {} points are missing (points {}{}); give every shard's directory "
                                 "and finish unfinished shards with --resume", missing.size(), total, list,
                                 missing.size() > 10 ? ", ..." : ""));
  }
  if (by_index.size() != total || by_index.rbegin()->first >= total)
    throw InputError(fmt::format("sweep merge: records name points beyond the sweep's {} points", total));
  const fs::path out(out_dir);
  ensure_dir(out);
  std::error_code ec;
  if (fs::exists(out / "results.jsonl", ec) && fs::file_size(out / "results.jsonl", ec) > 0) {
    bool is_input = false;
    for (const std::string& d : dirs) is_input = is_input || fs::equivalent(d, out, ec);
    if (!is_input) throw InputError(fmt::format("{}: already holds sweep results; merge into a new directory", out_dir));
  }
  const std::vector<std::string> fig_columns = figure_columns_of_meta(mj);
  std::string jsonl, csv = csv_header(columns, fig_columns);
  for (const auto& [idx, lr] : by_index) {
    jsonl += lr.first + "\n";
    csv += csv_row(lr.second, columns, fig_columns);
  }
  ensure_dir(out / "configs");
  ensure_dir(out / "reports");
  for (const std::string& d : dirs)
    for (const char* sub : {"configs", "reports"}) {
      const fs::path from = fs::path(d) / sub;
      if (!fs::is_directory(from, ec) || fs::equivalent(from, out / sub, ec)) continue;
      for (const fs::directory_entry& e : fs::directory_iterator(from)) {
        const fs::path to = out / sub / e.path().filename();
        if (!fs::exists(to, ec)) fs::copy_file(e.path(), to, ec);
      }
    }
  write_file_atomic((out / "sweep.json").string(), meta);
  write_file_atomic((out / "results.jsonl").string(), jsonl);
  write_file_atomic((out / "results.csv").string(), csv);
  log << fmt::format("sweep merge: {} points from {} directories into {}\n", total, dirs.size(), out_dir);
}

}  // namespace lpu::sweep
