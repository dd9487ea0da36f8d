// `lpusim sweep SPEC.yaml -o DIR` (what-if sweeps over chip-config fields, workloads and precisions)
// and `lpusim sweep merge DIR... -o DIR` (join shard outputs); the engine is in sweep/.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "isa/chip_config.h"
#include "sweep/runner.h"
#include "tools/commands.h"

namespace lpu::cli {

namespace {

struct SweepArgs {
  std::vector<std::string> args;
  std::string out;
  unsigned jobs = 1;
  bool resume = false;
  std::string shard = "0/1";
  std::string lpusim;
  bool allow_large = false;
  uint64_t max_points = sweep::kLargeSweepPoints;
  double timeout_s = 0;
};

void run_sweep_cmd(const SweepArgs& a) {
  if (!a.args.empty() && a.args[0] == "merge") {
    sweep::merge_sweeps(std::vector<std::string>(a.args.begin() + 1, a.args.end()), a.out, std::cout);
    return;
  }
  if (a.args.size() != 1)
    throw InputError("sweep: give one spec file (lpusim sweep SPEC.yaml -o DIR), or merge shard directories (lpusim "
                     "sweep merge DIR... -o DIR)");
  if (a.timeout_s < 0) throw InputError("--timeout: must be >= 0 seconds (0 = none)");
  sweep::RunOptions o;
  o.spec_path = a.args[0];
  o.out_dir = a.out;
  o.jobs = a.jobs;
  o.resume = a.resume;
  sweep::parse_shard(a.shard, o.shard_index, o.shard_count);
  o.lpusim = a.lpusim;
  o.allow_large = a.allow_large;
  if (a.max_points == 0) throw InputError("--max-points: must be at least 1; got 0");
  o.max_points = a.max_points;
  o.timeout_s = a.timeout_s;
  sweep::run_sweep(o, std::cout);
}

}  // namespace

void register_sweep(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* s = app.add_subcommand(
      "sweep", "Run a what-if sweep (SPEC.yaml -o DIR), or merge shard outputs (merge DIR... -o DIR); docs/sweeps.md");
  s->add_option("args", a->args, "SPEC.yaml, or `merge` followed by shard output directories")->required();
  s->add_option("-o,--output", a->out, "output directory (results.csv, results.jsonl, sweep.json, configs/, reports/)")
      ->required();
  s->add_option("--jobs,-j", a->jobs, "points to run in parallel (default 1)");
  s->add_flag("--resume", a->resume, "continue an interrupted sweep: skip points already in DIR/results.jsonl");
  s->add_option("--shard", a->shard, "run only points with index % N == i (i/N, default 0/1)");
  s->add_option("--lpusim", a->lpusim, "lpusim executable to run per point (default: this one)");
  s->add_flag("--allow-large", a->allow_large, "allow sweeps of more than 100000 points (no limit)");
  s->add_option("--max-points", a->max_points,
                "refuse a sweep of more than N points, counted before any work (default 100000)");
  s->add_option("--timeout", a->timeout_s, "seconds after which a point is killed and recorded as timeout (0 = none)");
  s->callback([a]() { run_sweep_cmd(*a); });
}

}  // namespace lpu::cli
