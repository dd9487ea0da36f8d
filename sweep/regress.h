// Comparison of a run's JSON report (docs/report-schema.md) with a golden report, behind
// `lpusim regress` (docs/regress.md): which figures moved, by how much, and whether that fails.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lpu::sweep {

struct FigureDiff {
  std::string path;      // e.g. "cycles", "utilization.by_kind.MEM.busy_cycles", "utilization.busiest.0.slice"
  std::string golden;    // value text ("(absent)" if the key is missing)
  std::string current;
  std::string delta;     // "+2", "-1.5e-06"; "" for text values or absent keys
  std::string percent;   // "+5.26%"; "" when not a number or golden is 0
  bool is_cycles = false;  // a cycle count ("cycles" or "*_cycles"): any change fails
  bool fails = false;
  std::string why;       // "cycle count changed", "beyond 1% tolerance", "within 1% tolerance", "new key", ...
};

struct RegressResult {
  size_t compared = 0;              // leaf figures present in the golden report
  std::vector<FigureDiff> moved;    // in golden order, then keys new in current
  bool failed = false;
};

// Compares every leaf (numbers, text, booleans; objects and arrays flattened with dotted paths).
// tolerance_pct < 0: every change fails. Otherwise non-cycle numbers may move by up to that
// percentage of the golden value. Cycle counts must always be equal. Keys missing from the current
// report fail; keys only in the current report are listed (new keys may be added to the schema)
// but do not fail.
RegressResult compare_reports(const nlohmann::ordered_json& golden, const nlohmann::ordered_json& current,
                              double tolerance_pct);

// The readable table printed by `lpusim regress` (ends with a verdict line).
std::string regress_text(const RegressResult& r, const std::string& golden_name, const std::string& current_name,
                         double tolerance_pct);

}  // namespace lpu::sweep
