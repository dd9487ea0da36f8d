// Runs a sweep (or one shard of it) as lpusim subprocesses, appending each finished point to
// DIR/results.jsonl and DIR/results.csv in point order; and merges shard outputs (docs/sweeps.md).
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace lpu::sweep {

constexpr uint64_t kLargeSweepPoints = 100000;  // more needs allow_large

struct RunOptions {
  std::string spec_path;
  std::string out_dir;
  unsigned jobs = 1;
  bool resume = false;
  uint32_t shard_index = 0;  // runs points with index % shard_count == shard_index
  uint32_t shard_count = 1;
  std::string lpusim;        // executable to run per point ("" = this executable)
  bool allow_large = false;  // no limit on the point count
  uint64_t max_points = 0;   // refuse more points than this (0 = kLargeSweepPoints); checked before any work
  double timeout_s = 0;      // per point; 0 = none
};

struct RunSummary {
  uint64_t total = 0;     // points in the whole sweep
  uint64_t in_shard = 0;  // points of this shard
  uint64_t skipped = 0;   // already in results.jsonl (resume)
  uint64_t ran = 0;
  uint64_t failed = 0;    // of those run, status != ok
};

// Parses "i/N" (0 <= i < N). Throws InputError naming `what`.
void parse_shard(const std::string& text, uint32_t& index, uint32_t& count);

// Progress lines go to `log`. Throws InputError on a bad spec or output directory (before running
// anything); failing points do not throw (they are recorded).
RunSummary run_sweep(const RunOptions& o, std::ostream& log);

// Joins the outputs of shards (same sweep.json) into out_dir: the same results.jsonl/results.csv
// bytes an unsharded run writes, plus their configs/ and reports/. Every point must be present
// exactly once (InputError otherwise, naming the missing or duplicated points).
void merge_sweeps(const std::vector<std::string>& dirs, const std::string& out_dir, std::ostream& log);

}  // namespace lpu::sweep
