// Sweep output files (docs/sweeps.md): DIR/sweep.json (what the sweep is), DIR/results.jsonl (one
// JSON record per finished point) and DIR/results.csv (the same records as a table, a pure
// function of the JSONL records so it can always be regenerated).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sweep/spec.h"

namespace lpu::sweep {

using ojson = nlohmann::ordered_json;

// Version of the lpusim that wrote the results (the project version).
const char* tool_version();

// sweep.json: name, spec hash, base, swept columns, workloads, precisions, mode, point count,
// tool version. Shards of one sweep write identical bytes (no shard number inside).
std::string sweep_meta_text(const SweepSpec& s, uint64_t total_points);

// Report figures copied into each record (and CSV column) in this order; a report key
// "a.b" is nested (utilization.tops). Missing figures are left out (CSV: empty cell).
struct Figure { const char* column; const char* report_path; };
const std::vector<Figure>& figures();      // of `lpusim sim` / `lpusim run` reports
const std::vector<Figure>& llm_figures();  // of LLM reports (`lpusim llm --json`, docs/report-schema.md)
// The figures of a sweep: figures() for programs and models, llm_figures() for LLM configs, both
// (without repeats) when it has both kinds. sweep.json lists their columns ("figures").
std::vector<Figure> sweep_figures(const SweepSpec& s);
// Figure columns of a sweep from its sweep.json (a sweep.json without "figures": figures()).
std::vector<std::string> figure_columns_of_meta(const ojson& meta);

// One finished point. `report` is the parsed JSON report (null if none was written).
ojson make_record(const SweepSpec& s, const Expansion& e, const SweepPoint& p, const std::string& status,
                  int exit_code, const std::string& error, const nlohmann::json& report);
// The record as one JSONL line (no newline); invalid UTF-8 in error texts is replaced.
std::string record_line(const ojson& rec);

// `figures`: the sweep's figure columns (figure_columns_of_meta).
std::string csv_header(const std::vector<std::string>& columns, const std::vector<std::string>& figures);
std::string csv_row(const ojson& rec, const std::vector<std::string>& columns,
                    const std::vector<std::string>& figures);  // ends with '\n'

// Reads results.jsonl. A last line without '\n' or that does not parse is a truncated write: it is
// dropped when `allow_truncated_tail` (resume), else an InputError. Any other bad line is an
// InputError naming the file and line. Returns the records and their raw lines.
struct JsonlContents {
  std::vector<ojson> records;
  std::vector<std::string> lines;
  bool dropped_tail = false;
};
JsonlContents read_results_jsonl(const std::string& path, bool allow_truncated_tail);

// Writes `text` to `path` atomically (temporary file + rename).
void write_file_atomic(const std::string& path, const std::string& text);
// Whole file; InputError "<path>: cannot open <what> for reading".
std::string read_text(const std::string& path, const std::string& what = "the file");

}  // namespace lpu::sweep
