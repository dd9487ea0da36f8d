// Sweep result records, CSV rendering, JSONL reading and sweep.json (sweep/results.h).
#include "sweep/results.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "isa/chip_config.h"
#include "isa/fnv_hash.h"

namespace lpu::sweep {

const char* tool_version() { return LPU_TOOL_VERSION; }

namespace {

// A swept value as JSON: an integer or a number when the YAML scalar is exactly one, else text.
ojson value_json(const std::string& v) {
  if (v.empty()) return v;
  errno = 0;
  char* end = nullptr;
  const long long i = std::strtoll(v.c_str(), &end, 10);
  if (*end == '\0' && errno == 0) return i;
  end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (*end == '\0' && v.find_first_of("xXnN") == std::string::npos) return d;  // no hex/inf/nan spellings
  return v;
}

const nlohmann::json* find_path(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json* cur = &j;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

std::string cell_of(const ojson& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace

const std::vector<Figure>& figures() {
  static const std::vector<Figure> f = {
      {"cycles", "cycles"},
      {"predicted_cycles", "predicted_cycles"},
      {"latency_us", "latency_us"},
      {"energy_j", "energy_j"},
      {"power_w", "power_w"},
      {"instructions", "instructions"},
      {"chips", "chips"},
      {"work_items", "work_items"},
      {"work_unit", "work_unit"},
      {"items_per_second", "items_per_second"},
      {"items_per_joule", "items_per_joule"},
      {"mxm_mac_utilization", "utilization.mxm_mac_utilization"},
      {"tops", "utilization.tops"},
      {"sram_used_bytes", "sram.used_bytes"},
  };
  return f;
}

const std::vector<Figure>& llm_figures() {
  static const std::vector<Figure> f = {
      {"chips", "chips"},
      {"tensor_parallel", "tensor_parallel"},
      {"pipeline_stages", "pipeline_stages"},
      {"ttft_us", "ttft_us"},
      {"token_latency_us", "token_latency_us"},
      {"tokens_per_second", "tokens_per_second"},
      {"tokens_per_second_per_user", "tokens_per_second_per_user"},
      {"tokens_per_joule", "tokens_per_joule"},
      {"power_w", "power_w"},
      {"token_cycles", "token_time.cycles"},
      {"compute_us", "token_time.compute_us"},
      {"onchip_data_movement_us", "token_time.onchip_data_movement_us"},
      {"chip_to_chip_us", "token_time.chip_to_chip_us"},
      {"sram_per_chip_bytes", "sram_per_chip.capacity_bytes"},
      {"sram_used_percent", "sram_per_chip.used_percent"},
      {"weights_per_chip_bytes", "sram_per_chip.weights_bytes"},
      {"kv_cache_per_chip_bytes", "sram_per_chip.kv_cache_bytes"},
      {"working_set_per_chip_bytes", "sram_per_chip.working_set_bytes"},
      {"piece_graphs", "piece_graphs"},
  };
  return f;
}

std::vector<Figure> sweep_figures(const SweepSpec& s) {
  bool llm = false, other = false;
  for (const Workload& w : s.workloads) (w.kind == Workload::Kind::Llm ? llm : other) = true;
  std::vector<Figure> out;
  if (other) out = figures();
  if (llm)
    for (const Figure& f : llm_figures()) {
      bool have = false;
      for (const Figure& g : out) have = have || std::string(g.column) == f.column;
      if (!have) out.push_back(f);
    }
  return out;
}

std::vector<std::string> figure_columns_of_meta(const ojson& meta) {
  if (meta.contains("figures")) return meta.at("figures").get<std::vector<std::string>>();
  std::vector<std::string> out;
  for (const Figure& f : figures()) out.push_back(f.column);
  return out;
}

std::string sweep_meta_text(const SweepSpec& s, uint64_t total_points) {
  ojson m;
  m["sweep"] = s.name;
  m["spec_hash"] = hash_hex(s.spec_hash);
  m["base"] = s.base;
  m["columns"] = s.columns;
  ojson w = ojson::array();
  for (const Workload& wl : s.workloads) w.push_back(wl.name);
  m["workloads"] = w;
  m["precisions"] = s.precisions;
  m["mode"] = s.mode;
  if (!s.llm.empty()) {
    ojson l = ojson::object();
    for (const Override& o : s.llm) l[o.first] = value_json(o.second);
    m["llm"] = l;
  }
  ojson figs = ojson::array();
  for (const Figure& f : sweep_figures(s)) figs.push_back(f.column);
  m["figures"] = figs;
  m["points"] = total_points;
  m["tool_version"] = tool_version();
  return m.dump(2) + "\n";
}

ojson make_record(const SweepSpec& s, const Expansion& e, const SweepPoint& p, const std::string& status,
                  int exit_code, const std::string& error, const nlohmann::json& report) {
  ojson r;
  r["index"] = p.index;
  r["hash"] = hash_hex(p.hash);
  r["config_hash"] = hash_hex(e.configs[p.config].hash);
  r["workload"] = s.workloads[p.workload].name;
  r["precision"] = p.precision;
  ojson params = ojson::object();
  for (const Override& o : e.configs[p.config].overrides) params[o.first] = value_json(o.second);
  r["params"] = params;
  r["status"] = status;
  r["exit_code"] = exit_code;
  r["tool_version"] = tool_version();
  ojson figs = ojson::object();
  if (report.is_object())
    for (const Figure& f : sweep_figures(s))
      if (const nlohmann::json* v = find_path(report, f.report_path)) figs[f.column] = *v;
  r["figures"] = figs;
  r["error"] = error;
  return r;
}

std::string record_line(const ojson& rec) { return rec.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string csv_header(const std::vector<std::string>& columns, const std::vector<std::string>& figures) {
  std::string h = "index,hash,config_hash,workload,precision";
  for (const std::string& c : columns) h += "," + csv_cell(c);
  h += ",status,exit_code";
  for (const std::string& f : figures) h += "," + csv_cell(f);
  return h + ",tool_version,error\n";
}

std::string csv_row(const ojson& rec, const std::vector<std::string>& columns, const std::vector<std::string>& figures) {
  std::string o;
  o += cell_of(rec.at("index")) + "," + cell_of(rec.at("hash")) + "," + cell_of(rec.at("config_hash")) + ",";
  o += csv_cell(cell_of(rec.at("workload"))) + "," + csv_cell(cell_of(rec.at("precision")));
  const ojson& params = rec.at("params");
  for (const std::string& c : columns) o += "," + (params.contains(c) ? csv_cell(cell_of(params.at(c))) : "");
  o += "," + csv_cell(cell_of(rec.at("status"))) + "," + cell_of(rec.at("exit_code"));
  const ojson& figs = rec.at("figures");
  for (const std::string& f : figures) o += "," + (figs.contains(f) ? csv_cell(cell_of(figs.at(f))) : "");
  o += "," + csv_cell(cell_of(rec.at("tool_version"))) + "," + csv_cell(cell_of(rec.at("error")));
  return o + "\n";
}

std::string read_text(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(fmt::format("{}: cannot open {} for reading", path, what));
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

JsonlContents read_results_jsonl(const std::string& path, bool allow_truncated_tail) {
  JsonlContents out;
  const std::string text = read_text(path);
  size_t pos = 0;
  size_t line_no = 0;
  while (pos < text.size()) {
    ++line_no;
    const size_t nl = text.find('\n', pos);
    const bool last = nl == std::string::npos || nl + 1 == text.size();
    const std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ojson rec;
    bool ok = nl != std::string::npos;
    if (ok) {
      try {
        rec = ojson::parse(line);
        ok = rec.is_object() && rec.contains("index") && rec.contains("hash") && rec.contains("params") &&
             rec.contains("figures") && rec.contains("status") && rec.contains("exit_code") &&
             rec.contains("tool_version") && rec.contains("error") && rec.contains("config_hash") &&
             rec.contains("workload") && rec.contains("precision") && rec["index"].is_number_unsigned();
      } catch (const nlohmann::json::exception&) {
        ok = false;
      }
    }
    if (!ok) {
      if (last && allow_truncated_tail) {
        out.dropped_tail = true;
        break;
      }
      throw InputError(fmt::format("{}:{}: not a complete sweep result record{} (an interrupted run? rerun that "
                                   "sweep with --resume)", path, line_no, last ? " (truncated last line)" : ""));
    }
    out.records.push_back(std::move(rec));
    out.lines.push_back(line);
  }
  return out;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw InputError(fmt::format("{}: cannot open for writing", tmp));
    f << text;
    if (!f.flush()) throw InputError(fmt::format("{}: writing failed", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw InputError(fmt::format("{}: cannot replace with {}", path, tmp));
}

}  // namespace lpu::sweep
