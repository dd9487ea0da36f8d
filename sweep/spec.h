// Sweep specs (docs/sweeps.md): a base chip config, a grid or list of overrides of chip-config
// fields by YAML path, crossed with workloads and precisions; expansion into numbered, hashed points.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lpu::sweep {

// One field override: YAML path of a chip-config scalar (e.g. "timing.mxm_abc.latency") and the
// value as written in the spec (a YAML scalar, validated by parse_chip_config).
using Override = std::pair<std::string, std::string>;
using Overrides = std::vector<Override>;

struct Workload {
  // Program: `lpusim sim` (.s/.lpu); Model: `lpusim run` (.onnx, gemm:MxKxN); Llm: `lpusim llm` (an LLM
  // config.json, e.g. workloads/llm/llama-2-7b.json), with the spec's LLM options (llm_option_names).
  enum class Kind { Program, Model, Llm };
  std::string name;       // as written in the spec: the workload's identity in results
  std::string path;       // what is passed to lpusim (absolute path for files, the name for built-ins)
  Kind kind = Kind::Program;
  uint64_t content_hash = 0;  // FNV-1a 64 of the file (0 for built-ins)
};

// Options of LLM workloads, passed to `lpusim llm` (docs/llm-system.md): the spec's `llm:` map sets
// them for every point, and `llm.<name>` in grid/points sweeps them. Names in this order (it is the
// order of the point hash and of the command line): phase (all | decode | plan), prompt, context,
// batch, chips (0 = the fewest that fit), tp (0 = the planner's choice), pieces.
// One LLM option of a sweep (`llm:` map, llm.* fields), as `lpusim llm` takes it. default_value
// empty: none (context follows prompt). hash_default false: an option added after the first
// release, hashed only when not at its default, so older results keep their point hashes (--resume).
struct LlmOption {
  std::string name, default_value;
  bool hash_default = true;
};
// Every LLM option in the order points list them (resolve_llm, the point hash, CSV columns).
const std::vector<LlmOption>& llm_options();
const std::vector<std::string>& llm_option_names();  // the names of llm_options(), in order
// Checks one option value (name without "llm."); InputError "<context>: llm.<name>: ... got <value>".
void check_llm_option(const std::string& name, const std::string& value, const std::string& context);
// True for a swept field that is an LLM option ("llm.chips") rather than a chip-config field.
bool is_llm_field(const std::string& path);

struct SweepSpec {
  std::string source;                 // spec file (for messages)
  std::string name;                   // `sweep:` (defaults to the file's stem)
  std::string base;                   // `base:` as written (built-in name or path)
  std::string base_yaml;              // its YAML text
  std::vector<std::string> columns;   // swept field paths, first-appearance order
  bool is_grid = true;
  std::vector<std::pair<std::string, std::vector<std::string>>> grid;  // cartesian, last key fastest
  std::vector<Overrides> list;        // `points:`
  std::vector<Workload> workloads;
  std::vector<std::string> precisions;  // models and LLM configs; empty = the tool's default
  std::string mode;                     // "" = the tool's default; else functional | timing (not for LLMs)
  Overrides llm;                        // `llm:` options as written (name without "llm.", value)
  uint64_t spec_hash = 0;               // FNV-1a 64 of the spec text
};

// Parses and checks a spec (keys, types, workload files, field paths exist in the base config).
// Throws InputError naming the spec file, the key and the value. Values are validated by
// expand_sweep (which runs parse_chip_config on every config point).
SweepSpec parse_sweep_spec(const std::string& yaml_text, const std::string& source);
SweepSpec load_sweep_spec(const std::string& path);

// Number of config points (grid product or list length) and of sweep points, saturating at UINT64_MAX.
uint64_t count_config_points(const SweepSpec& s);
uint64_t count_points(const SweepSpec& s);

// Applies overrides to a chip-config YAML text: every path must name an existing scalar of the
// base (all chip-config keys are required, so no new keys can be valid). Throws InputError
// "<context>: <path>: ..." otherwise. Returns the edited YAML (comments dropped).
std::string apply_overrides(const std::string& base_yaml, const Overrides& ov, const std::string& context);

struct ConfigPoint {
  Overrides overrides;  // chip-config fields and llm.* options of this point, in column order
  std::string yaml;   // dump_chip_config of the validated config: the full configuration ("" if not in the shard)
  uint64_t hash = 0;  // FNV-1a 64 of `yaml` (0 if not in the shard)
  Overrides llm;      // resolved options of LLM workloads, every name of llm_option_names() in order
};

struct SweepPoint {
  uint64_t index = 0;       // position in the full sweep (configs outer, workloads, precisions inner)
  uint32_t config = 0;      // into Expansion::configs
  uint32_t workload = 0;    // into SweepSpec::workloads
  std::string precision;    // "" for programs or when the spec gives none
  uint64_t hash = 0;        // FNV-1a 64 of config yaml + workload name + content hash + precision + mode, and
                            // for LLM workloads the resolved LLM options (0 if not in the shard)
};

struct Expansion {
  std::vector<ConfigPoint> configs;
  std::vector<SweepPoint> points;
};

// Expands every point (ordered: config points in grid/list order; per config, workloads in spec
// order; per workload, precisions in spec order; programs take one point with precision "").
// Every swept value is validated alone on the base; every config point that shard i/N runs is
// validated with parse_chip_config and hashed (a bad value or combination throws InputError naming
// the spec, the point's fields and values and the reason). Points of other shards are listed but
// neither validated as a combination nor hashed, so shards of a huge sweep do not repeat each
// other's work. Two points of the shard with one hash are an error.
Expansion expand_sweep(const SweepSpec& s, uint32_t shard_index = 0, uint32_t shard_count = 1);

// "a=1, b=2" for messages and logs.
std::string describe(const Overrides& ov);

}  // namespace lpu::sweep
