// ChipConfig loader (YAML -> validated ChipConfig), its YAML dump, derived figures and instr_timing.
// Contract (isa/chip_config.h): every key of the schema is required, unknown keys and wrong types
// are errors, and every error is an InputError "<file>: <field path>: <problem>; got <value>".
#include "isa/chip_config.h"
#include "isa/yaml_documents.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

extern const char* const lpu_default_chip_yaml;

namespace lpu {

// ---- slice kinds ---------------------------------------------------------------------------------

namespace {
constexpr SliceKind kAllKinds[] = {SliceKind::MEM, SliceKind::VXM, SliceKind::MXM, SliceKind::SXM, SliceKind::C2C};
}  // namespace

std::string_view slice_kind_name(SliceKind k) {
  switch (k) {
    case SliceKind::MEM: return "MEM";
    case SliceKind::VXM: return "VXM";
    case SliceKind::MXM: return "MXM";
    case SliceKind::SXM: return "SXM";
    case SliceKind::C2C: return "C2C";
  }
  throw std::logic_error("slice_kind_name: bad slice kind");
}

Unit slice_unit(SliceKind k) {
  switch (k) {
    case SliceKind::MEM: return Unit::MEM;
    case SliceKind::VXM: return Unit::VXM;
    case SliceKind::MXM: return Unit::MXM;
    case SliceKind::SXM: return Unit::SXM;
    case SliceKind::C2C: return Unit::C2C;
  }
  throw std::logic_error("slice_unit: bad slice kind");
}

// ---- derived figures -----------------------------------------------------------------------------

uint32_t ChipConfig::num_positions() const {
  uint32_t n = 0;
  for (const SliceSpec& s : slices) n = std::max(n, s.position + 1);
  return n;
}

int ChipConfig::slice_index(std::string_view n) const {
  for (size_t i = 0; i < slices.size(); ++i)
    if (slices[i].name == n) return static_cast<int>(i);
  return -1;
}

std::vector<int> ChipConfig::slices_of(SliceKind k) const {
  std::vector<int> out;
  for (size_t i = 0; i < slices.size(); ++i)
    if (slices[i].kind == k) out.push_back(static_cast<int>(i));
  std::stable_sort(out.begin(), out.end(), [&](int a, int b) { return slices[a].position < slices[b].position; });
  return out;
}

uint64_t ChipConfig::sram_bytes_per_chip() const {
  uint64_t mem = 0;
  for (const SliceSpec& s : slices) mem += s.kind == SliceKind::MEM;
  return mem * sram_addresses * vector_bytes();
}

namespace {
// ceil(vector_bytes / (link_bytes_per_s / clock_hz)); a quotient within 1e-9 (relative) of an
// integer counts as that integer, so 320 B at exactly 32 B/cycle is 10 cycles, not 11.
uint64_t serialization_cycles(double vector_bytes, double clock_hz, double link_bytes_per_s) {
  const double q = vector_bytes * clock_hz / link_bytes_per_s;
  const double r = std::nearbyint(q);
  if (std::fabs(q - r) <= 1e-9 * std::max(1.0, q)) return static_cast<uint64_t>(std::max(1.0, r));
  return static_cast<uint64_t>(std::ceil(q));
}
}  // namespace

uint32_t ChipConfig::c2c_serialization_cycles() const {
  return static_cast<uint32_t>(serialization_cycles(vector_bytes(), clock_hz, c2c_link_bytes_per_s));
}

uint64_t ChipConfig::peak_int8_macs_per_cycle() const {
  uint64_t mxm = 0;
  for (const SliceSpec& s : slices) mxm += s.kind == SliceKind::MXM;
  const uint64_t lanes = vector_bytes();
  return mxm * mxm_planes * lanes * lanes;
}

// ---- timing --------------------------------------------------------------------------------------

TimingEntry instr_timing(const ChipConfig& cfg, const Instr& in) {
  const OpInfo& oi = op_info(in.op);  // throws std::logic_error on an opcode outside the table
  TimingEntry t = cfg.timing[static_cast<int>(oi.sched)];
  switch (oi.sched) {
    case SchedClass::MxmAbc:
      if (in.dtype() == DType::F16) t.occupancy *= cfg.mxm_fp16_slowdown;
      break;
    case SchedClass::C2cSend: {
      const uint32_t ser = cfg.c2c_serialization_cycles();
      t.latency += cfg.c2c_wire_latency_cycles + ser;
      t.occupancy = ser;
      break;
    }
    default: break;  // every other class takes its table entry unchanged
  }
  return t;
}

// ---- loader --------------------------------------------------------------------------------------

namespace {

// Upper bounds of fields the ISA does not bound itself: generous, only there to catch typos and
// keep derived arithmetic inside 32/64 bits.
constexpr int64_t kMaxCycles = 100000;      // any latency / occupancy / wire latency
constexpr int64_t kMaxLanes = 4096;         // superlanes, lanes per superlane
constexpr int64_t kMaxVectorBytes = 65535;  // lane indices are 16-bit with 0xFFFF reserved (permute maps)
constexpr int64_t kMaxQueues = 256;
constexpr int64_t kMaxCount = 4096;         // slices in one floorplan entry
constexpr int64_t kMaxSlices = 65536;       // slices in the whole floorplan (programs name a slice in 16 bits)
constexpr int64_t kMaxSlowdown = 1024;
constexpr int64_t kMaxTopology = 1000000;

// Reads one YAML document into a ChipConfig, throwing InputError with file, path, value, range.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& path, const YAML::Node* at, const std::string& what) const {
    std::string line;
    if (at && at->IsDefined() && at->Mark().line >= 0) line = fmt::format(" (line {})", at->Mark().line + 1);
    throw InputError(fmt::format("{}: {}: {}{}", file_, path, what, line));
  }

  // An untagged, unquoted scalar: the only form numbers and booleans may take.
  static bool plain(const YAML::Node& n) { return n.IsScalar() && n.Tag() == "?"; }

  // Human description of a node for "got ..." parts of messages.
  static std::string describe(const YAML::Node& n) {
    if (!n.IsDefined()) return "nothing";
    switch (n.Type()) {
      case YAML::NodeType::Null: return "null (empty value)";
      case YAML::NodeType::Scalar: {
        std::string s = n.Scalar();
        if (s.size() > 60) s = s.substr(0, 57) + "...";
        if (n.Tag() == "!") return fmt::format("\"{}\" (a quoted string)", s);
        if (n.Tag() != "?") return fmt::format("{} (tagged {})", s, n.Tag());
        return s;
      }
      case YAML::NodeType::Sequence: return fmt::format("a list of {} items", n.size());
      case YAML::NodeType::Map: return fmt::format("a map of {} keys", n.size());
      case YAML::NodeType::Undefined: return "nothing";
    }
    return "?";
  }

  // Checks that `n` is a map whose keys are exactly `keys`: throws on a non-map and on unknown,
  // duplicate or missing keys.
  // `optional`: keys that may be left out (the rest of `keys` are required).
  void check_map(const YAML::Node& n, const std::string& path, const std::vector<std::string>& keys,
                 const std::vector<std::string>& optional = {}) const {
    const std::string where = path.empty() ? "top level" : path;
    if (!n.IsMap())
      fail(path.empty() ? "(document)" : path, &n,
           fmt::format("{}must be a map of settings; got {}", path.empty() ? "top level " : "", describe(n)));
    std::set<std::string> seen;
    for (const auto& kv : n) {
      const YAML::Node& k = kv.first;
      if (!k.IsScalar()) fail(where, &k, fmt::format("keys must be plain names; got {}", describe(k)));
      const std::string key = k.Scalar();
      const std::string kp = join(path, key);
      if (std::find(keys.begin(), keys.end(), key) == keys.end() &&
          std::find(optional.begin(), optional.end(), key) == optional.end()) {
        std::vector<std::string> all = keys;
        all.insert(all.end(), optional.begin(), optional.end());
        fail(kp, &k, fmt::format("unknown key; got '{}'; allowed {}", key, list(all)));
      }
      if (!seen.insert(key).second) fail(kp, &k, fmt::format("duplicate key; got '{}' twice", key));
    }
    for (const std::string& key : keys)
      if (!seen.count(key)) fail(join(path, key), &n, fmt::format("missing required key '{}'", key));
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  static std::string list(const std::vector<std::string>& keys) {
    std::string s;
    for (const std::string& k : keys) s += (s.empty() ? "" : ", ") + k;
    return s;
  }

  // A plain decimal integer in [lo, hi]; `above_hi`, if given, is the problem stated for v > hi.
  int64_t integer(const YAML::Node& n, const std::string& path, int64_t lo, int64_t hi,
                  std::string_view above_hi = {}) const {
    const std::string want = fmt::format("must be an integer in [{}, {}]", lo, hi);
    if (!plain(n)) fail(path, &n, fmt::format("{}; got {}", want, describe(n)));
    const std::string& s = n.Scalar();
    // Plain decimal only: one spelling per value keeps dumps and diffs stable.
    size_t i = (s.size() > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    bool ok = i < s.size() && s.size() - i <= 18 && !(s[i] == '0' && s.size() - i > 1);  // no leading zeros
    for (size_t j = i; ok && j < s.size(); ++j) ok = s[j] >= '0' && s[j] <= '9';
    if (!ok) fail(path, &n, fmt::format("{}; got {}", want, describe(n)));
    const int64_t v = std::stoll(s);
    if (v > hi && !above_hi.empty()) fail(path, &n, fmt::format("{}; got {}; allowed [{}, {}]", above_hi, v, lo, hi));
    if (v < lo || v > hi) fail(path, &n, fmt::format("{}; got {}", want, v));
    return v;
  }

  uint32_t u32(const YAML::Node& n, const std::string& path, int64_t lo, int64_t hi, std::string_view above_hi = {}) const {
    return static_cast<uint32_t>(integer(n, path, lo, hi, above_hi));
  }

  // A finite real number with lo <= v (or lo < v when lo_open) and v <= hi.
  double real(const YAML::Node& n, const std::string& path, double lo, bool lo_open, double hi) const {
    const std::string want = fmt::format("must be a finite number {} {} and <= {}", lo_open ? ">" : ">=", lo, hi);
    if (!plain(n)) fail(path, &n, fmt::format("{}; got {}", want, describe(n)));
    double v = 0;
    try {
      v = n.as<double>();
    } catch (const YAML::Exception&) {
      fail(path, &n, fmt::format("{}; got {}", want, describe(n)));
    }
    if (!std::isfinite(v) || v < lo || (lo_open && v == lo) || v > hi)
      fail(path, &n, fmt::format("{}; got {}", want, describe(n)));
    return v;
  }

  bool boolean(const YAML::Node& n, const std::string& path) const {
    if (plain(n)) {
      const std::string& s = n.Scalar();
      if (s == "true") return true;
      if (s == "false") return false;
    }
    fail(path, &n, fmt::format("must be true or false; got {}", describe(n)));
  }

  // A name: letters, digits, '_' (and '-' when allow_dash), starting with a letter or '_', <= 64
  // chars, so that it reads back from a dump as the same plain YAML scalar.
  std::string name(const YAML::Node& n, const std::string& path, bool allow_dash) const {
    const std::string want = fmt::format("must be a name of letters, digits{} and '_', starting with a letter or '_', "
                                         "at most 64 characters", allow_dash ? ", '-'" : "");
    if (!n.IsScalar()) fail(path, &n, fmt::format("{}; got {}", want, describe(n)));
    const std::string& s = n.Scalar();
    bool ok = !s.empty() && s.size() <= 64 && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_');
    for (char c : s)
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  (allow_dash && c == '-'));
    if (!ok) fail(path, &n, fmt::format("{}; got '{}'", want, s));
    return s;
  }

  ChipConfig read(const YAML::Node& root) const;

 private:
  void read_floorplan(const YAML::Node& fp, ChipConfig& c) const;
  std::string file_;
};

void Reader::read_floorplan(const YAML::Node& fp, ChipConfig& c) const {
  if (!fp.IsSequence() || fp.size() == 0)
    fail("floorplan", &fp, fmt::format("must be a non-empty list of slices; got {}", describe(fp)));
  uint32_t pos = 0;
  for (size_t i = 0; i < fp.size(); ++i) {
    const YAML::Node e = fp[i];
    const std::string p = fmt::format("floorplan[{}]", i);
    const bool has_count = e.IsMap() && e["count"].IsDefined();
    if (e.IsMap() && !has_count && e["order"].IsDefined())
      fail(p + ".order", &e, fmt::format("only allowed together with count; got order: {}", describe(e["order"])));
    if (has_count)
      check_map(e, p, {"kind", "name", "queues", "count", "order"});
    else
      check_map(e, p, {"kind", "name", "queues"});
    const YAML::Node kn = e["kind"];
    std::optional<SliceKind> kind;
    if (kn.IsScalar())
      for (SliceKind k : kAllKinds)
        if (slice_kind_name(k) == kn.Scalar()) kind = k;
    if (!kind) fail(p + ".kind", &kn, fmt::format("unknown slice kind; got {}; allowed MEM, VXM, MXM, SXM, C2C", describe(kn)));
    const std::string base = name(e["name"], p + ".name", false);
    const uint32_t queues = u32(e["queues"], p + ".queues", 1, kMaxQueues);
    // Checked before expanding: a short file must not expand into millions of slices.
    const int64_t adds = has_count ? u32(e["count"], p + ".count", 1, kMaxCount) : 1;
    if (static_cast<int64_t>(c.slices.size()) + adds > kMaxSlices)
      fail(p, &e, fmt::format("the floorplan has more than {} slices in total (programs name a slice in 16 bits); "
                              "this entry brings it to {}", kMaxSlices, c.slices.size() + adds));
    if (!has_count) {
      c.slices.push_back(SliceSpec{base, *kind, pos++, queues});
      continue;
    }
    const uint32_t count = u32(e["count"], p + ".count", 1, kMaxCount);
    const YAML::Node on = e["order"];
    if (!on.IsScalar() || (on.Scalar() != "ascending" && on.Scalar() != "descending"))
      fail(p + ".order", &on, fmt::format("must be ascending or descending; got {}", describe(on)));
    const bool desc = on.Scalar() == "descending";
    for (uint32_t k = 0; k < count; ++k) {
      const uint32_t idx = desc ? count - 1 - k : k;
      c.slices.push_back(SliceSpec{base + std::to_string(idx), *kind, pos++, queues});
    }
  }
  // Unique names (after expansion), in list order so the first clash is the one reported.
  std::set<std::string> names;
  for (const SliceSpec& s : c.slices)
    if (!names.insert(s.name).second)
      fail("floorplan", &fp, fmt::format("duplicate slice name; got '{}' twice (after count expansion); names must be unique", s.name));
  for (SliceKind k : {SliceKind::MEM, SliceKind::VXM, SliceKind::MXM})
    if (c.slices_of(k).empty())
      fail("floorplan", &fp, fmt::format("needs at least one {} slice; got none", slice_kind_name(k)));
}

ChipConfig Reader::read(const YAML::Node& root) const {
  check_map(root, "", {"name", "clock_hz", "lanes", "streams_per_direction", "stagger", "floorplan", "memory",
                       "mxm", "timing", "energy", "c2c", "topology"},
            {"host", "vxm"});
  ChipConfig c;
  c.name = name(root["name"], "name", true);
  c.clock_hz = real(root["clock_hz"], "clock_hz", 0, true, 1e12);

  const YAML::Node lanes = root["lanes"];
  check_map(lanes, "lanes", {"superlanes", "lanes_per_superlane"});
  c.superlanes = u32(lanes["superlanes"], "lanes.superlanes", 1, kMaxLanes);
  c.lanes_per_superlane = u32(lanes["lanes_per_superlane"], "lanes.lanes_per_superlane", 1, kMaxLanes);
  if (c.vector_bytes() > kMaxVectorBytes)
    fail("lanes", &lanes, fmt::format("superlanes x lanes_per_superlane must be at most {} (16-bit lane indices); got {}",
                                      kMaxVectorBytes, uint64_t{c.superlanes} * c.lanes_per_superlane));
  c.streams_per_direction = u32(root["streams_per_direction"], "streams_per_direction", 1, 32);
  c.stagger = boolean(root["stagger"], "stagger");

  const YAML::Node fpn = root["floorplan"];
  read_floorplan(fpn, c);

  const YAML::Node mem = root["memory"];
  check_map(mem, "memory", {"addresses_per_slice"});
  c.sram_addresses = u32(mem["addresses_per_slice"], "memory.addresses_per_slice", 1, 65536,
                         "SRAM larger than addressable (the addr field has 16 bits)");

  const YAML::Node mxm = root["mxm"];
  check_map(mxm, "mxm", {"planes_per_slice", "acc_rows", "fp16_slowdown"}, {"transposed_install"});
  c.mxm_planes = u32(mxm["planes_per_slice"], "mxm.planes_per_slice", 1, 4);
  c.mxm_acc_rows = u32(mxm["acc_rows"], "mxm.acc_rows", 1, 65536);
  c.mxm_fp16_slowdown = u32(mxm["fp16_slowdown"], "mxm.fp16_slowdown", 1, kMaxSlowdown);
  if (mxm["transposed_install"]) c.mxm_transposed_install = boolean(mxm["transposed_install"], "mxm.transposed_install");

  if (const YAML::Node vxm = root["vxm"]) {
    check_map(vxm, "vxm", {}, {"fused_multiply_add"});
    if (vxm["fused_multiply_add"]) c.vxm_fma = boolean(vxm["fused_multiply_add"], "vxm.fused_multiply_add");
  }

  const YAML::Node timing = root["timing"];
  {
    std::vector<std::string> keys;
    for (int i = 0; i < kNumSchedClasses; ++i) keys.emplace_back(sched_info(static_cast<SchedClass>(i)).key);
    check_map(timing, "timing", keys);
    for (int i = 0; i < kNumSchedClasses; ++i) {
      const std::string p = "timing." + keys[i];
      const YAML::Node t = timing[keys[i]];
      check_map(t, p, {"latency", "occupancy"});
      c.timing[i].latency = u32(t["latency"], p + ".latency", 0, kMaxCycles);
      c.timing[i].occupancy = u32(t["occupancy"], p + ".occupancy", 0, kMaxCycles);
    }
  }

  const YAML::Node energy = root["energy"];
  {
    std::vector<std::string> keys;
    for (int i = 0; i < kNumEnergyEvents; ++i) keys.emplace_back(energy_info(static_cast<EnergyEvent>(i)).key);
    keys.emplace_back("static_power_w");
    check_map(energy, "energy", keys);
    for (int i = 0; i < kNumEnergyEvents; ++i)
      c.energy_pj[i] = real(energy[keys[i]], "energy." + keys[i], 0, false, 1e12);
    c.static_power_w = real(energy["static_power_w"], "energy.static_power_w", 0, false, 1e9);
  }

  const YAML::Node c2c = root["c2c"];
  check_map(c2c, "c2c", {"links", "link_bytes_per_s", "wire_latency_cycles"});
  c.c2c_links = u32(c2c["links"], "c2c.links", 0, 32);
  c.c2c_link_bytes_per_s = real(c2c["link_bytes_per_s"], "c2c.link_bytes_per_s", 0, true, 1e15);
  c.c2c_wire_latency_cycles = u32(c2c["wire_latency_cycles"], "c2c.wire_latency_cycles", 0, kMaxCycles);
  {
    const YAML::Node lbs = c2c["link_bytes_per_s"];
    const uint64_t ser = serialization_cycles(c.vector_bytes(), c.clock_hz, c.c2c_link_bytes_per_s);
    if (ser > static_cast<uint64_t>(kMaxCycles))
      fail("c2c.link_bytes_per_s", &lbs,
           fmt::format("link too slow: one {}-byte vector takes {} cycles to serialize; allowed at most {}",
                       c.vector_bytes(), ser, kMaxCycles));
  }
  if (c.c2c_links > 0 && c.slices_of(SliceKind::C2C).empty())
    fail("floorplan", &fpn,
         fmt::format("needs a C2C slice because c2c.links is {}; got none (set c2c.links: 0 for a chip without links)",
                     c.c2c_links));

  const YAML::Node topo = root["topology"];
  check_map(topo, "topology", {"chips_per_node", "nodes_per_rack"});
  c.chips_per_node = u32(topo["chips_per_node"], "topology.chips_per_node", 1, kMaxTopology);
  c.nodes_per_rack = u32(topo["nodes_per_rack"], "topology.nodes_per_rack", 1, kMaxTopology);

  if (const YAML::Node host = root["host"]) {
    check_map(host, "host", {"link_bytes_per_s", "link_latency_s"});
    c.host_link_bytes_per_s = real(host["link_bytes_per_s"], "host.link_bytes_per_s", 0, true, 1e15);
    c.host_link_latency_s = real(host["link_latency_s"], "host.link_latency_s", 0, false, 1.0);
  }
  return c;
}

}  // namespace

std::shared_ptr<const ChipConfig> parse_chip_config(const std::string& yaml_text, const std::string& source_name) {
  YamlDocuments docs;
  try {
    docs = load_yaml_documents(yaml_text);
  } catch (const YAML::Exception& e) {
    throw InputError(fmt::format("{}:{}:{}: YAML syntax error: {}", source_name, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (docs.count > 1)
    throw InputError(fmt::format("{}: (document): a chip config is one YAML document; got {} documents (separated by ---)",
                                 source_name, docs.count));
  const YAML::Node root = docs.first;
  if (!root.IsDefined() || root.IsNull())
    throw InputError(fmt::format("{}: (document): top level must be a map of chip settings; got an empty document", source_name));
  Reader r(source_name);
  ChipConfig c;
  try {
    c = r.read(root);
  } catch (const YAML::Exception& e) {  // yaml-cpp conversions we did not anticipate: still an input error
    throw InputError(fmt::format("{}:{}: invalid chip config: {}", source_name, e.mark.line + 1, e.msg));
  }
  c.source = source_name;
  return std::make_shared<const ChipConfig>(std::move(c));
}

std::shared_ptr<const ChipConfig> load_chip_config(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw InputError(fmt::format("{}: cannot read chip config: {}", path,
                                 std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open chip config for reading", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_chip_config(ss.str(), path);
}

const std::string& default_chip_config_yaml() {
  static const std::string s(lpu_default_chip_yaml);
  return s;
}

std::shared_ptr<const ChipConfig> default_chip_config() {
  static const std::shared_ptr<const ChipConfig> cfg = parse_chip_config(default_chip_config_yaml(), "<built-in tsp-v1>");
  return cfg;
}

// ---- dump ----------------------------------------------------------------------------------------

namespace {
// Shortest text that reads back as the same double, always with a '.' or exponent so YAML keeps
// it a real number.
std::string real_text(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}
}  // namespace

std::string dump_chip_config(const ChipConfig& c) {
  std::string o;
  auto line = [&o](const std::string& s) { o += s; o += '\n'; };
  const double macs = static_cast<double>(c.peak_int8_macs_per_cycle());
  line(fmt::format("# Effective chip configuration '{}', in the schema of docs/chip-config.md.", c.name));
  line("# Derived figures (computed, not read):");
  line(fmt::format("#   vector bytes (lanes):        {}", c.vector_bytes()));
  line(fmt::format("#   slice positions:             {}", c.num_positions()));
  line(fmt::format("#   MEM slices:                  {}", c.slices_of(SliceKind::MEM).size()));
  line(fmt::format("#   SRAM per chip:               {} MiB ({} bytes)",
                   real_text(static_cast<double>(c.sram_bytes_per_chip()) / (1024.0 * 1024.0)), c.sram_bytes_per_chip()));
  line(fmt::format("#   peak int8 MAC/cycle:         {}", c.peak_int8_macs_per_cycle()));
  line(fmt::format("#   peak int8 TOPS:              {:.2f}", 2.0 * macs * c.clock_hz / 1e12));
  line(fmt::format("#   peak fp16 TFLOPS:            {:.2f}", 2.0 * macs * c.clock_hz / 1e12 / c.mxm_fp16_slowdown));
  line(fmt::format("#   c2c serialization cycles:    {} per vector", c.c2c_serialization_cycles()));
  line(fmt::format("#   stagger tail cycles:         {}", c.stagger_tail()));
  line(fmt::format("name: {}", c.name));
  line(fmt::format("clock_hz: {}", real_text(c.clock_hz)));
  line("lanes:");
  line(fmt::format("  superlanes: {}", c.superlanes));
  line(fmt::format("  lanes_per_superlane: {}", c.lanes_per_superlane));
  line(fmt::format("streams_per_direction: {}", c.streams_per_direction));
  line(fmt::format("stagger: {}", c.stagger ? "true" : "false"));
  line("floorplan:");
  for (const SliceSpec& s : c.slices)
    line(fmt::format("  - {{kind: {}, name: {}, queues: {}}}  # position {}", slice_kind_name(s.kind), s.name, s.queues,
                     s.position));
  line("memory:");
  line(fmt::format("  addresses_per_slice: {}", c.sram_addresses));
  line("mxm:");
  line(fmt::format("  planes_per_slice: {}", c.mxm_planes));
  line(fmt::format("  acc_rows: {}", c.mxm_acc_rows));
  line(fmt::format("  fp16_slowdown: {}", c.mxm_fp16_slowdown));
  line(fmt::format("  transposed_install: {}", c.mxm_transposed_install ? "true" : "false"));
  line("vxm:");
  line(fmt::format("  fused_multiply_add: {}", c.vxm_fma ? "true" : "false"));
  line("timing:");
  for (int i = 0; i < kNumSchedClasses; ++i)
    line(fmt::format("  {}: {{latency: {}, occupancy: {}}}", sched_info(static_cast<SchedClass>(i)).key,
                     c.timing[i].latency, c.timing[i].occupancy));
  line("energy:");
  for (int i = 0; i < kNumEnergyEvents; ++i)
    line(fmt::format("  {}: {}", energy_info(static_cast<EnergyEvent>(i)).key, real_text(c.energy_pj[i])));
  line(fmt::format("  static_power_w: {}", real_text(c.static_power_w)));
  line("c2c:");
  line(fmt::format("  links: {}", c.c2c_links));
  line(fmt::format("  link_bytes_per_s: {}", real_text(c.c2c_link_bytes_per_s)));
  line(fmt::format("  wire_latency_cycles: {}", c.c2c_wire_latency_cycles));
  line("topology:");
  line(fmt::format("  chips_per_node: {}", c.chips_per_node));
  line(fmt::format("  nodes_per_rack: {}", c.nodes_per_rack));
  if (c.host_link_bytes_per_s > 0) {
    line("host:");
    line(fmt::format("  link_bytes_per_s: {}", real_text(c.host_link_bytes_per_s)));
    line(fmt::format("  link_latency_s: {}", real_text(c.host_link_latency_s)));
  }
  return o;
}

}  // namespace lpu
