// Sweep spec loading, config overrides by YAML path and point expansion (sweep/spec.h).
#include "sweep/spec.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "compiler/llm/llm_config.h"
#include "compiler/llm/partition.h"
#include "isa/chip_config.h"
#include "isa/fnv_hash.h"
#include "sweep/results.h"

namespace lpu::sweep {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, std::string_view suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

// A scalar spec value as written ("900.0e6", "true"); anything else is an error naming `where`.
std::string scalar_of(const YAML::Node& n, const std::string& source, const std::string& where) {
  if (!n.IsScalar())
    throw InputError(fmt::format("{}: {}: must be a single value (number, true/false or word); got a {}", source, where,
                                 n.IsSequence() ? "list" : n.IsMap() ? "map" : "null"));
  return n.Scalar();
}

constexpr const char* kTopKeys[] = {"sweep",      "description", "base", "grid", "points",
                                     "workloads", "precisions",  "mode", "llm"};

Workload resolve_workload(const std::string& w, const fs::path& spec_dir, const std::string& source, size_t i) {
  Workload out;
  out.name = w;
  if (w.rfind("gemm:", 0) == 0) {
    out.kind = Workload::Kind::Model;
    out.path = w;
    return out;
  }
  if (ends_with(w, ".s") || ends_with(w, ".lpu")) {
    out.kind = Workload::Kind::Program;
  } else if (ends_with(w, ".onnx")) {
    out.kind = Workload::Kind::Model;
  } else if (ends_with(w, ".json")) {
    out.kind = Workload::Kind::Llm;
  } else {
    throw InputError(fmt::format("{}: workloads[{}]: '{}' is not a workload (allowed: a .s or .lpu program, an .onnx "
                                 "model, or gemm:MxKxN, or an LLM config .json)", source, i, w));
  }
  fs::path p(w);
  if (p.is_relative()) p = spec_dir / p;
  std::error_code ec;
  if (!fs::is_regular_file(p, ec))
    throw InputError(fmt::format("{}: workloads[{}]: '{}': no such file (looked at {}; relative paths are relative to "
                                 "the spec file)", source, i, w, p.string()));
  out.path = fs::absolute(p).lexically_normal().string();
  out.content_hash = fnv1a64(read_text(out.path, "the workload"));
  if (out.kind == Workload::Kind::Llm) {
    try {
      llm::load_llm_config(out.path);  // a bad LLM config is refused before anything runs
    } catch (const InputError& e) {
      throw InputError(fmt::format("{}: workloads[{}]: '{}': not an LLM config: {}", source, i, w, e.what()));
    }
  }
  return out;
}

bool parse_int(const std::string& v, int64_t& out) {
  try {
    size_t used = 0;
    out = std::stoll(v, &used, 10);
    return used == v.size() && !v.empty();
  } catch (const std::exception&) {
    return false;
  }
}

// The LLM options of one point: the spec's `llm:` map, then the point's llm.* overrides; every
// option present (defaults as `lpusim llm`: context = prompt), in llm_option_names() order.
Overrides resolve_llm(const Overrides& spec_llm, const Overrides& point) {
  std::map<std::string, std::string> v;
  for (const LlmOption& o : llm_options())
    if (!o.default_value.empty()) v[o.name] = o.default_value;
  for (const Override& o : spec_llm) v[o.first] = o.second;
  for (const Override& o : point)
    if (is_llm_field(o.first)) v[o.first.substr(4)] = o.second;
  if (!v.count("context")) v["context"] = v["prompt"];
  Overrides out;
  for (const std::string& n : llm_option_names()) {
    int64_t i = 0;
    // integers in canonical form, so 0128 and 128 are one point
    out.emplace_back(n, n != "phase" && n != "pieces" && parse_int(v[n], i) ? std::to_string(i) : v[n]);
  }
  return out;
}

// The option names joined by ", ", each after `prefix` (the allowed lists of the error messages).
std::string joined_llm_names(const std::string& prefix) {
  std::string out;
  for (const std::string& n : llm_option_names()) out += (out.empty() ? "" : ", ") + prefix + n;
  return out;
}

// The default of an option hashed only when set otherwise (LlmOption::hash_default false), or null.
const LlmOption* unhashed_default(const std::string& name) {
  for (const LlmOption& o : llm_options())
    if (o.name == name && !o.hash_default) return &o;
  return nullptr;
}

}  // namespace

const std::vector<LlmOption>& llm_options() {
  static const std::vector<LlmOption> o = {
      {"phase", "all", true}, {"prompt", "128", true}, {"context", "", true},       {"batch", "1", true},
      {"chips", "0", true},   {"tp", "0", true},       {"pieces", "segments", true}, {"in_flight", "1", false}};
  return o;
}

const std::vector<std::string>& llm_option_names() {
  static const std::vector<std::string> n = [] {
    std::vector<std::string> v;
    for (const LlmOption& o : llm_options()) v.push_back(o.name);
    return v;
  }();
  return n;
}

bool is_llm_field(const std::string& path) { return path.rfind("llm.", 0) == 0; }

void check_llm_option(const std::string& name, const std::string& value, const std::string& context) {
  auto bad = [&](const std::string& allowed) {
    return InputError(fmt::format("{}: llm.{}: {}; got {}", context, name, allowed, value.empty() ? "''" : value));
  };
  auto integer = [&](int64_t lo, int64_t hi, const std::string& what) {
    int64_t i = 0;
    if (!parse_int(value, i) || i < lo || i > hi) throw bad(fmt::format("must be an integer in [{}, {}] ({})", lo, hi, what));
  };
  if (name == "phase") {
    if (value != "all" && value != "decode" && value != "plan")
      throw bad("must be all (prefill, first token and the decode token: TTFT and token figures), decode (the decode "
                "token only) or plan (the partition planner only: chips and SRAM, nothing simulated)");
  } else if (name == "prompt") {
    integer(1, 1000000, "prompt tokens");
  } else if (name == "context") {
    integer(0, 1000000, "context of the decode token");
  } else if (name == "batch") {
    integer(1, 65536, "sequences served together");
  } else if (name == "chips") {
    integer(0, 1000000, "0 = the fewest chips that fit");
  } else if (name == "tp") {
    integer(0, 1024, "tensor-parallel size; 0 = the planner's choice");
  } else if (name == "in_flight") {
    integer(1, llm::kMaxInFlight, "groups of llm.batch sequences in flight through the pipeline");
  } else if (name == "pieces") {
    if (value != "segments" && value != "segments-strict" && value != "dense-standin")
      throw bad("must be segments, segments-strict or dense-standin");
  } else {
    throw InputError(
        fmt::format("{}: llm.{}: unknown LLM option (allowed: {})", context, name, joined_llm_names("llm.")));
  }
}

std::string describe(const Overrides& ov) {
  if (ov.empty()) return "(base config)";
  std::string s;
  for (const Override& o : ov) s += (s.empty() ? "" : ", ") + o.first + "=" + o.second;
  return s;
}

namespace {

YAML::Node load_base(const std::string& base_yaml, const std::string& context) {
  try {
    return YAML::Load(base_yaml);
  } catch (const YAML::Exception& e) {
    throw InputError(fmt::format("{}: base chip config: YAML error: {}", context, e.what()));
  }
}

// apply_overrides on a private copy of an already parsed base (`root` is edited).
std::string apply_to_node(YAML::Node root, const Overrides& ov, const std::string& context) {
  for (const Override& o : ov) {
    const std::vector<std::string> parts = split_path(o.first);
    YAML::Node cur;
    cur.reset(root);
    std::string walked;
    for (const std::string& part : parts) {
      walked += (walked.empty() ? "" : ".") + part;
      if (part.empty())
        throw InputError(fmt::format("{}: '{}': empty component in the field path (write e.g. timing.mxm_abc.latency)",
                                     context, o.first));
      YAML::Node next;
      if (cur.IsMap()) {
        const YAML::Node& ccur = cur;
        const YAML::Node child = ccur[part];  // const access: a missing key is not created
        if (child.IsDefined()) next.reset(child);
      } else if (cur.IsSequence()) {
        size_t idx = 0;
        try {
          size_t used = 0;
          idx = std::stoul(part, &used);
          if (used != part.size()) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
          throw InputError(fmt::format("{}: '{}': '{}' is a list in the chip config; index it with a number (0..{})",
                                       context, o.first, walked.substr(0, walked.size() - part.size() - 1),
                                       cur.size() == 0 ? 0 : cur.size() - 1));
        }
        if (idx >= cur.size())
          throw InputError(fmt::format("{}: '{}': index {} is out of range (the list has {} entries)", context, o.first,
                                       idx, cur.size()));
        const YAML::Node& ccur = cur;
        next.reset(ccur[idx]);
      }
      if (!next.IsDefined() || next.IsNull() || (!cur.IsMap() && !cur.IsSequence()))
        throw InputError(fmt::format("{}: '{}': unknown chip-config field '{}' (not in the base config; fields are "
                                     "YAML paths such as clock_hz, memory.addresses_per_slice, timing.mxm_abc.latency, "
                                     "see docs/chip-config.md)", context, o.first, walked));
      cur.reset(next);
    }
    if (!cur.IsScalar())
      throw InputError(fmt::format("{}: '{}': is a {} in the chip config; only single values can be swept (name one of "
                                   "its fields)", context, o.first, cur.IsMap() ? "map" : "list"));
    cur = o.second;  // assigns the scalar in place (cur refers into root)
  }
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

}  // namespace

std::string apply_overrides(const std::string& base_yaml, const Overrides& ov, const std::string& context) {
  return apply_to_node(load_base(base_yaml, context), ov, context);
}

SweepSpec parse_sweep_spec(const std::string& yaml_text, const std::string& source) {
  SweepSpec s;
  s.source = source;
  s.spec_hash = fnv1a64(yaml_text);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw InputError(fmt::format("{}:{}:{}: YAML syntax error: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root.IsMap())
    throw InputError(fmt::format("{}: (document): a sweep spec is a map with keys base, grid or points, workloads, "
                                 "precisions, mode; got {}", source, root.IsNull() ? "an empty document" : "something else"));
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    bool known = false;
    for (const char* k : kTopKeys) known = known || key == k;
    if (!known)
      throw InputError(fmt::format("{}: {}: unknown key (allowed: sweep, description, base, grid, points, workloads, "
                                   "precisions, mode, llm)", source, key));
  }
  const fs::path spec_dir = fs::path(source).parent_path();
  s.name = root["sweep"] ? scalar_of(root["sweep"], source, "sweep") : fs::path(source).stem().string();

  // base config
  s.base = root["base"] ? scalar_of(root["base"], source, "base") : "tsp-v1";
  if (s.base == "tsp-v1") {
    s.base_yaml = default_chip_config_yaml();
  } else {
    fs::path p(s.base);
    if (p.is_relative()) p = spec_dir / p;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec))
      throw InputError(fmt::format("{}: base: '{}' is neither a built-in config (tsp-v1) nor a file (looked at {})",
                                   source, s.base, p.string()));
    s.base_yaml = read_text(p.string(), "the base chip config");
    parse_chip_config(s.base_yaml, p.string());  // a bad base config is reported as itself
  }

  // grid or points
  if (root["grid"] && root["points"])
    throw InputError(fmt::format("{}: grid, points: give either a grid (cartesian product) or a list of points, not both",
                                 source));
  std::set<std::string> seen;
  auto add_column = [&](const std::string& path) {
    if (seen.insert(path).second) s.columns.push_back(path);
  };
  if (const YAML::Node g = root["grid"]) {
    if (!g.IsMap() || g.size() == 0)
      throw InputError(fmt::format("{}: grid: must be a non-empty map of field path -> list of values", source));
    for (const auto& kv : g) {
      const std::string path = kv.first.Scalar();
      if (seen.count(path)) throw InputError(fmt::format("{}: grid.{}: field given twice", source, path));
      std::vector<std::string> values;
      if (kv.second.IsSequence()) {
        if (kv.second.size() == 0)
          throw InputError(fmt::format("{}: grid.{}: empty list of values (give at least one)", source, path));
        for (size_t i = 0; i < kv.second.size(); ++i)
          values.push_back(scalar_of(kv.second[i], source, fmt::format("grid.{}[{}]", path, i)));
      } else {
        values.push_back(scalar_of(kv.second, source, "grid." + path));
      }
      if (is_llm_field(path)) {
        for (const std::string& v : values)
          check_llm_option(path.substr(4), v, fmt::format("{}: grid {}={}", source, path, v));
      } else {
        apply_overrides(s.base_yaml, {{path, values.front()}}, fmt::format("{}: grid.{}", source, path));
      }
      add_column(path);
      s.grid.emplace_back(path, std::move(values));
    }
  } else if (const YAML::Node p = root["points"]) {
    s.is_grid = false;
    if (!p.IsSequence() || p.size() == 0)
      throw InputError(fmt::format("{}: points: must be a non-empty list of maps (field path -> value)", source));
    for (size_t i = 0; i < p.size(); ++i) {
      if (!p[i].IsMap())
        throw InputError(fmt::format("{}: points[{}]: must be a map of field path -> value", source, i));
      Overrides ov;
      std::set<std::string> here;
      for (const auto& kv : p[i]) {
        const std::string path = kv.first.Scalar();
        if (!here.insert(path).second)
          throw InputError(fmt::format("{}: points[{}].{}: field given twice", source, i, path));
        ov.emplace_back(path, scalar_of(kv.second, source, fmt::format("points[{}].{}", i, path)));
        if (is_llm_field(path))
          check_llm_option(path.substr(4), ov.back().second, fmt::format("{}: points[{}] {}={}", source, i, path,
                                                                         ov.back().second));
        else
          apply_overrides(s.base_yaml, {ov.back()}, fmt::format("{}: points[{}]", source, i));
        add_column(path);
      }
      s.list.push_back(std::move(ov));
    }
  }

  // workloads
  const YAML::Node w = root["workloads"];
  if (!w || !w.IsSequence() || w.size() == 0)
    throw InputError(fmt::format("{}: workloads: required, a non-empty list of programs (.s, .lpu) or models (.onnx, "
                                 "gemm:MxKxN) or LLM configs (.json)", source));
  std::set<std::string> wnames;
  for (size_t i = 0; i < w.size(); ++i) {
    const std::string name = scalar_of(w[i], source, fmt::format("workloads[{}]", i));
    if (!wnames.insert(name).second)
      throw InputError(fmt::format("{}: workloads[{}]: '{}' is listed twice", source, i, name));
    s.workloads.push_back(resolve_workload(name, spec_dir, source, i));
  }

  if (const YAML::Node pr = root["precisions"]) {
    if (!pr.IsSequence() || pr.size() == 0)
      throw InputError(fmt::format("{}: precisions: must be a non-empty list (allowed values: int8, fp16)", source));
    for (size_t i = 0; i < pr.size(); ++i) {
      const std::string v = scalar_of(pr[i], source, fmt::format("precisions[{}]", i));
      if (v != "int8" && v != "fp16")
        throw InputError(fmt::format("{}: precisions[{}]: '{}' is not a precision (allowed: int8, fp16)", source, i, v));
      for (const std::string& e : s.precisions)
        if (e == v) throw InputError(fmt::format("{}: precisions[{}]: '{}' is listed twice", source, i, v));
      s.precisions.push_back(v);
    }
  }
  if (const YAML::Node m = root["mode"]) {
    s.mode = scalar_of(m, source, "mode");
    if (s.mode != "functional" && s.mode != "timing")
      throw InputError(fmt::format("{}: mode: '{}' is not a mode (allowed: functional, timing)", source, s.mode));
  }

  // LLM options: the `llm:` map, and llm.* fields only when every workload is an LLM config (a
  // program or model would run once per LLM option value, the same point again and again).
  if (const YAML::Node l = root["llm"]) {
    if (!l.IsMap())
      throw InputError(fmt::format("{}: llm: must be a map of LLM options ({})", source, joined_llm_names("")));
    for (const auto& kv : l) {
      const std::string name = kv.first.Scalar();
      const std::string v = scalar_of(kv.second, source, "llm." + name);
      check_llm_option(name, v, source);
      s.llm.emplace_back(name, v);
    }
  }
  const Workload* llm_wl = nullptr;
  const Workload* other_wl = nullptr;
  for (const Workload& wl : s.workloads) (wl.kind == Workload::Kind::Llm ? llm_wl : other_wl) = &wl;
  for (const std::string& c : s.columns) {
    if (is_llm_field(c) && other_wl)
      throw InputError(fmt::format("{}: {}: LLM options apply to LLM workloads (.json) only, and '{}' is not one; "
                                   "sweep it in a spec of LLM workloads", source, c, other_wl->name));
    for (const Override& o : s.llm)
      if (c == "llm." + o.first)
        throw InputError(fmt::format("{}: {}: set in the llm: map ({}) and swept in {}; give it in one place",
                                     source, c, o.second, s.is_grid ? "grid" : "points"));
  }
  if (!s.llm.empty() && !llm_wl)
    throw InputError(fmt::format("{}: llm: LLM options given but no workload is an LLM config (.json)", source));
  if (!s.mode.empty() && llm_wl)
    throw InputError(fmt::format("{}: mode: does not apply to LLM workloads ('{}' is timed by `lpusim llm`); leave "
                                 "mode out", source, llm_wl->name));
  return s;
}

SweepSpec load_sweep_spec(const std::string& path) {
  return parse_sweep_spec(read_text(path, "the sweep spec"), path);
}

namespace {
// parse_chip_config on overridden YAML: its "(line N)" refers to the generated text, not to any
// file the user wrote, so it is dropped from the message.
std::shared_ptr<const ChipConfig> parse_overridden(const std::string& yaml, const std::string& ctx) {
  try {
    return parse_chip_config(yaml, ctx);
  } catch (const InputError& e) {
    std::string m = e.what();
    const size_t at = m.rfind(" (line ");
    if (at != std::string::npos && m.back() == ')' && m.find(')', at) == m.size() - 1) m.erase(at);
    throw InputError(m);
  }
}

uint64_t sat_mul(uint64_t a, uint64_t b) {
  if (a != 0 && b > UINT64_MAX / a) return UINT64_MAX;
  return a * b;
}
uint64_t per_config_points(const SweepSpec& s) {
  uint64_t n = 0;
  for (const Workload& w : s.workloads)
    n += (w.kind != Workload::Kind::Program && !s.precisions.empty()) ? s.precisions.size() : 1;
  return n;
}
}  // namespace

uint64_t count_config_points(const SweepSpec& s) {
  if (!s.is_grid) return s.list.size();
  uint64_t n = 1;
  for (const auto& g : s.grid) n = sat_mul(n, g.second.size());
  return n;
}

uint64_t count_points(const SweepSpec& s) { return sat_mul(count_config_points(s), per_config_points(s)); }

Expansion expand_sweep(const SweepSpec& s, uint32_t shard_index, uint32_t shard_count) {
  if (shard_count == 0 || shard_index >= shard_count)
    throw InputError(fmt::format("shard {}/{}: need 0 <= i < N", shard_index, shard_count));
  Expansion e;
  const YAML::Node base = load_base(s.base_yaml, s.source);
  std::vector<Overrides> config_ovs;
  if (s.is_grid) {
    // Each value alone first, so a bad value is blamed on itself rather than on a combination.
    for (const auto& g : s.grid)
      for (const std::string& v : g.second) {
        if (is_llm_field(g.first)) continue;  // checked by parse_sweep_spec
        const std::string ctx = fmt::format("{}: grid {}={}", s.source, g.first, v);
        parse_overridden(apply_to_node(YAML::Clone(base), {{g.first, v}}, ctx), ctx);
      }
    const uint64_t n = count_config_points(s);
    std::vector<size_t> digit(s.grid.size(), 0);
    for (uint64_t c = 0; c < n; ++c) {
      Overrides ov;
      for (size_t k = 0; k < s.grid.size(); ++k) ov.emplace_back(s.grid[k].first, s.grid[k].second[digit[k]]);
      config_ovs.push_back(std::move(ov));
      for (size_t k = s.grid.size(); k-- > 0;) {  // last key varies fastest
        if (++digit[k] < s.grid[k].second.size()) break;
        digit[k] = 0;
      }
    }
  } else {
    config_ovs = s.list;
  }
  const uint64_t per = per_config_points(s);
  auto in_shard = [&](uint64_t index) { return index % shard_count == shard_index; };
  for (size_t c = 0; c < config_ovs.size(); ++c) {
    ConfigPoint cp;
    cp.overrides = config_ovs[c];
    cp.llm = resolve_llm(s.llm, cp.overrides);
    bool needed = false;  // does this shard run a point of this config?
    for (uint64_t j = 0; j < per && j < shard_count && !needed; ++j) needed = in_shard(c * per + j);
    if (!needed) {
      e.configs.push_back(std::move(cp));
      continue;
    }
    const std::string ctx = s.is_grid ? fmt::format("{}: grid point {} ({})", s.source, c, describe(config_ovs[c]))
                                      : fmt::format("{}: points[{}] ({})", s.source, c, describe(config_ovs[c]));
    Overrides chip_ovs;
    for (const Override& o : cp.overrides)
      if (!is_llm_field(o.first)) chip_ovs.push_back(o);
    cp.yaml = dump_chip_config(*parse_overridden(apply_to_node(YAML::Clone(base), chip_ovs, ctx), ctx));
    cp.hash = fnv1a64(cp.yaml);
    e.configs.push_back(std::move(cp));
  }
  uint64_t index = 0;
  for (uint32_t c = 0; c < e.configs.size(); ++c) {
    for (uint32_t w = 0; w < s.workloads.size(); ++w) {
      const Workload& wl = s.workloads[w];
      std::vector<std::string> precs{""};
      if (wl.kind != Workload::Kind::Program && !s.precisions.empty()) precs = s.precisions;
      for (const std::string& p : precs) {
        SweepPoint pt;
        pt.index = index++;
        pt.config = c;
        pt.workload = w;
        pt.precision = p;
        if (!in_shard(pt.index)) {  // not hashed: another shard runs it
          e.points.push_back(std::move(pt));
          continue;
        }
        uint64_t h = fnv1a64(e.configs[c].yaml);
        h = fnv1a64(std::string_view("\0workload\0", 10), h);
        h = fnv1a64(wl.name, h);
        h = fnv1a64(hash_hex(wl.content_hash), h);
        h = fnv1a64(std::string_view("\0precision\0", 11), h);
        h = fnv1a64(p, h);
        h = fnv1a64(std::string_view("\0mode\0", 6), h);
        h = fnv1a64(s.mode, h);
        if (wl.kind == Workload::Kind::Llm) {  // the options `lpusim llm` runs with
          h = fnv1a64(std::string_view("\0llm\0", 5), h);
          for (const Override& o : e.configs[c].llm) {
            const LlmOption* later = unhashed_default(o.first);  // added after the first release
            if (later && o.second == later->default_value) continue;
            h = fnv1a64(o.first + "=" + o.second + ";", h);
          }
        }
        pt.hash = h;
        e.points.push_back(std::move(pt));
      }
    }
  }
  // Two points with one hash would share their report file and resume record: refuse them.
  std::map<uint64_t, uint64_t> first;
  for (const SweepPoint& p : e.points) {
    if (!in_shard(p.index)) continue;
    auto [it, fresh] = first.emplace(p.hash, p.index);
    if (!fresh)
      throw InputError(fmt::format("{}: points {} and {} are the same configuration and workload ({}; {}); list each "
                                   "value once", s.source, it->second, p.index,
                                   describe(e.configs[e.points[it->second].config].overrides),
                                   describe(e.configs[p.config].overrides)));
  }
  return e;
}

}  // namespace lpu::sweep
