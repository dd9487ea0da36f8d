// Tests of the chip-config loader: the built-in tsp-v1 numbers, dump/parse fixed point, derived
// figures, instr_timing, every pinned bad config under tests/data/bad_configs, and `lpusim config show`.
#include <catch2/catch.hpp>

#include "tests/support/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "isa/chip_config.h"

namespace fs = std::filesystem;
using namespace lpu;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A small what-if chip: the same schema as tsp-v1 with different numbers. The bad configs under
// tests/data/bad_configs are this text with one defect each.
const char* const kTinyYaml = R"(name: tiny
clock_hz: 1.0e9
lanes:
  superlanes: 2
  lanes_per_superlane: 16
streams_per_direction: 8
stagger: false
floorplan:
  - {kind: MXM, name: MXM, queues: 2}
  - {kind: MEM, name: MEM_W, count: 2, order: descending, queues: 1}
  - {kind: VXM, name: VXM, queues: 4}
  - {kind: MEM, name: MEM_E, count: 2, order: ascending, queues: 1}
  - {kind: C2C, name: C2C, queues: 1}
memory:
  addresses_per_slice: 1024
mxm:
  planes_per_slice: 1
  acc_rows: 64
  fp16_slowdown: 4
timing:
  icu_nop:       {latency: 0,  occupancy: 0}
  icu_ctrl:      {latency: 1,  occupancy: 1}
  icu_sync:      {latency: 2,  occupancy: 1}
  mem_read:      {latency: 2,  occupancy: 1}
  mem_write:     {latency: 2,  occupancy: 1}
  mem_gather:    {latency: 3,  occupancy: 1}
  mem_scatter:   {latency: 3,  occupancy: 1}
  vxm_alu:       {latency: 3,  occupancy: 1}
  vxm_mul:       {latency: 4,  occupancy: 1}
  vxm_trans:     {latency: 8,  occupancy: 1}
  vxm_conv:      {latency: 3,  occupancy: 1}
  mxm_lw:        {latency: 2,  occupancy: 1}
  mxm_iw:        {latency: 20, occupancy: 1}
  mxm_abc:       {latency: 24, occupancy: 1}
  mxm_acc:       {latency: 2,  occupancy: 1}
  sxm_shift:     {latency: 3,  occupancy: 1}
  sxm_permute:   {latency: 4,  occupancy: 1}
  sxm_transpose: {latency: 20, occupancy: 1}
  c2c_send:      {latency: 4,  occupancy: 1}
  c2c_recv:      {latency: 2,  occupancy: 1}
  c2c_deskew:    {latency: 1,  occupancy: 1}
energy:
  mac_int8_pj: 0.2
  mac_fp16_pj: 0.8
  mxm_weight_row_pj: 64.0
  sram_read_pj: 320.0
  sram_write_pj: 360.0
  stream_hop_pj: 16.0
  vxm_op_pj: 100.0
  vxm_trans_pj: 300.0
  sxm_op_pj: 80.0
  mxm_acc_out_pj: 200.0
  c2c_byte_pj: 40.0
  static_power_w: 60.0
c2c:
  links: 2
  link_bytes_per_s: 16.0e9
  wire_latency_cycles: 100
topology:
  chips_per_node: 8
  nodes_per_rack: 9
)";

// `text` with the single occurrence of `from` replaced by `to` (fails the test if not exactly one).
std::string replace_once(const std::string& text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + 1) == std::string::npos);
  std::string s = text;
  s.replace(at, from.size(), to);
  return s;
}

// The InputError message of parsing `yaml`, or "" if it parsed.
std::string parse_error(const std::string& yaml, const std::string& source = "whatif.yaml") {
  try {
    parse_chip_config(yaml, source);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

struct RunResult { int status; std::string out, err; };

// Runs the built `lpusim` (env LPUSIM, else the build tree's tools/lpusim) with `args`, capturing
// stdout and stderr through files in a per-process temp folder.
RunResult run_lpusim(const std::string& args) {
  const std::string exe = lpusim_exe();
  REQUIRE(fs::exists(exe));
  const fs::path dir = fs::temp_directory_path() / ("lpusim-cfg-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path out = dir / "out.txt", err = dir / "err.txt";
  const std::string cmd = "'" + exe + "' " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int raw = std::system(cmd.c_str());
  RunResult r{WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_text(out), read_text(err)};
  fs::remove_all(dir);
  return r;
}

std::vector<fs::path> bad_config_files() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(LPU_SOURCE_DIR) / "tests/data/bad_configs"))
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// The "# expect: <substring>" line every bad config carries.
std::string expected_error(const fs::path& p) {
  std::istringstream in(read_text(p));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("# expect: ", 0) == 0) return line.substr(10);
  return "";
}

}  // namespace

TEST_CASE("config: built-in tsp-v1 has the numbers of machine.md") {
  const auto cfg = default_chip_config();
  CHECK(cfg->name == "tsp-v1");
  CHECK(cfg->source == "<built-in tsp-v1>");
  CHECK(cfg->clock_hz == 900e6);
  CHECK(cfg->vector_bytes() == 320);
  CHECK(cfg->streams_per_direction == 32);
  CHECK(cfg->slices_of(SliceKind::MEM).size() == 88);
  CHECK(cfg->sram_addresses == 8192);
  CHECK(cfg->sram_bytes_per_chip() == 220ull * 1024 * 1024);
  CHECK(cfg->peak_int8_macs_per_cycle() == 409600);
  CHECK(cfg->mxm_planes * cfg->slices_of(SliceKind::MXM).size() == 4);
  CHECK(cfg->mxm_fp16_slowdown == 4);
  CHECK(cfg->c2c_links == 16);
  CHECK(cfg->chips_per_node == 8);
  CHECK(cfg->nodes_per_rack == 9);
  CHECK(cfg->stagger_tail() == 19);
  // 320 B at 14e9 B/s and 900 MHz = 15.56 B/cycle -> 20.57 -> 21 cycles.
  CHECK(cfg->c2c_serialization_cycles() == 21);

  // Worked example of machine.md and the floorplan of docs/architecture.md.
  REQUIRE(cfg->slice_index("VXM") >= 0);
  CHECK(cfg->slices[cfg->slice_index("VXM")].position == 46);
  CHECK(cfg->slices[cfg->slice_index("MEM_W5")].position == 40);
  CHECK(cfg->slices[cfg->slice_index("MEM_E7")].position == 54);
  CHECK(cfg->slices[cfg->slice_index("MXM_W")].position == 0);
  CHECK(cfg->slices[cfg->slice_index("SXM_W")].position == 1);
  CHECK(cfg->slices[cfg->slice_index("MEM_W43")].position == 2);
  CHECK(cfg->slices[cfg->slice_index("MEM_W0")].position == 45);
  CHECK(cfg->slices[cfg->slice_index("MEM_E0")].position == 47);
  CHECK(cfg->slices[cfg->slice_index("MEM_E43")].position == 90);
  CHECK(cfg->slices[cfg->slice_index("SXM_E")].position == 91);
  CHECK(cfg->slices[cfg->slice_index("MXM_E")].position == 92);
  CHECK(cfg->slices[cfg->slice_index("C2C")].position == 93);
  CHECK(cfg->num_positions() == 94);
  CHECK(cfg->slice_index("MEM_W44") == -1);
  // slices are sorted by position, one per position
  for (size_t i = 0; i < cfg->slices.size(); ++i) CHECK(cfg->slices[i].position == i);
  // 144 instruction queues outside the C2C slice (machine.md: 2 x (44 + 14 + 6) + 16).
  uint32_t queues = 0;
  for (const SliceSpec& s : cfg->slices)
    if (s.kind != SliceKind::C2C) queues += s.queues;
  CHECK(queues == 144);
}

TEST_CASE("config: default config is cached and equals workloads/chips/tsp-v1.yaml") {
  CHECK(default_chip_config() == default_chip_config());
  const fs::path file = fs::path(LPU_SOURCE_DIR) / "workloads/chips/tsp-v1.yaml";
  CHECK(default_chip_config_yaml() == read_text(file));
  const auto from_file = load_chip_config(file.string());
  CHECK(from_file->source == file.string());
  CHECK(dump_chip_config(*from_file) == dump_chip_config(*default_chip_config()));
}

TEST_CASE("config: dump -> parse -> dump is a fixed point") {
  const std::string odd = replace_once(
      replace_once(replace_once(kTinyYaml, "clock_hz: 1.0e9", "clock_hz: 1234567891.25"), "mac_int8_pj: 0.2",
                   "mac_int8_pj: 1.0e-7"),
      "stagger: false", "stagger: true");
  for (const std::string& text : {default_chip_config_yaml(), std::string(kTinyYaml), odd}) {
    const auto a = parse_chip_config(text, "a.yaml");
    const std::string d1 = dump_chip_config(*a);
    const auto b = parse_chip_config(d1, "b.yaml");
    const std::string d2 = dump_chip_config(*b);
    CHECK(d1 == d2);
    // and the parsed values themselves survive the trip
    CHECK(b->clock_hz == a->clock_hz);
    CHECK(b->energy_pj == a->energy_pj);
    CHECK(b->slices.size() == a->slices.size());
  }
  const std::string d = dump_chip_config(*default_chip_config());
  CHECK(d.find("- {kind: VXM, name: VXM, queues: 16}  # position 46") != std::string::npos);
  CHECK(d.find("#   SRAM per chip:               220.0 MiB") != std::string::npos);
  CHECK(d.find("#   peak int8 MAC/cycle:         409600") != std::string::npos);
  CHECK(d.find("#   peak int8 TOPS:              737.28") != std::string::npos);
  CHECK(d.find("#   c2c serialization cycles:    21 per vector") != std::string::npos);
}

TEST_CASE("config: what-if config expands counts in order and derives its figures") {
  const auto c = parse_chip_config(kTinyYaml, "tiny.yaml");
  CHECK(c->source == "tiny.yaml");
  std::vector<std::string> names;
  for (const SliceSpec& s : c->slices) names.push_back(s.name);
  CHECK(names == std::vector<std::string>{"MXM", "MEM_W1", "MEM_W0", "VXM", "MEM_E0", "MEM_E1", "C2C"});
  CHECK(c->slices_of(SliceKind::MEM) == std::vector<int>{1, 2, 4, 5});
  CHECK(c->slices_of(SliceKind::SXM).empty());
  CHECK(c->vector_bytes() == 32);
  CHECK(c->sram_bytes_per_chip() == 4ull * 1024 * 32);
  CHECK(c->peak_int8_macs_per_cycle() == 32ull * 32);
  CHECK(c->stagger == false);
  CHECK(c->stagger_tail() == 0);
  // 32 B at 16 B/cycle: exactly 2 cycles (an exact quotient is not rounded up)
  CHECK(c->c2c_serialization_cycles() == 2);
  const auto c3 = parse_chip_config(replace_once(kTinyYaml, "link_bytes_per_s: 16.0e9", "link_bytes_per_s: 15.0e9"), "t");
  CHECK(c3->c2c_serialization_cycles() == 3);  // 32 / 15 = 2.13 -> 3
  const auto c0 = parse_chip_config(
      replace_once(replace_once(kTinyYaml, "links: 2", "links: 0"), "  - {kind: C2C, name: C2C, queues: 1}\n", ""), "t");
  CHECK(c0->c2c_links == 0);  // a chip without links needs no C2C slice
  CHECK(c0->slices_of(SliceKind::C2C).empty());
}

TEST_CASE("config: instr_timing applies the fp16 abc slowdown and send serialization") {
  const auto cfg = default_chip_config();
  Instr abc = make_instr(Opcode::Abc, DType::I8);
  CHECK(instr_timing(*cfg, abc).latency == 24);
  CHECK(instr_timing(*cfg, abc).occupancy == 1);
  abc.set(Field::DType, static_cast<uint32_t>(DType::F16));
  CHECK(instr_timing(*cfg, abc).latency == 24);
  CHECK(instr_timing(*cfg, abc).occupancy == 4);
  Instr lw = make_instr(Opcode::LoadW, DType::F16);
  CHECK(instr_timing(*cfg, lw).occupancy == 1);  // docs/architecture.md: only abc is slowed
  const Instr send = make_instr(Opcode::Send);
  CHECK(instr_timing(*cfg, send).latency == 4 + 180 + 21);
  CHECK(instr_timing(*cfg, send).occupancy == 21);
  CHECK(instr_timing(*cfg, make_instr(Opcode::Recv)).latency == 2);
  CHECK(instr_timing(*cfg, make_instr(Opcode::Nop)).occupancy == 0);
  // every other opcode takes its class entry unchanged
  for (int i = 0; i < kNumOpcodes; ++i) {
    const Opcode op = static_cast<Opcode>(i);
    if (op == Opcode::Abc || op == Opcode::Send) continue;
    const TimingEntry t = instr_timing(*cfg, make_instr(op));
    const TimingEntry& want = cfg->timing[static_cast<int>(op_info(op).sched)];
    CHECK(t.latency == want.latency);
    CHECK(t.occupancy == want.occupancy);
  }
  // a what-if config changes the numbers
  const auto tiny = parse_chip_config(replace_once(kTinyYaml, "fp16_slowdown: 4", "fp16_slowdown: 3"), "t");
  CHECK(instr_timing(*tiny, abc).occupancy == 3);
  CHECK(instr_timing(*tiny, send).latency == 4 + 100 + 2);
}

TEST_CASE("config: every bad config fails with its pinned message") {
  const auto files = bad_config_files();
  CHECK(files.size() >= 12);
  for (const fs::path& f : files) {
    INFO("bad config " << f.filename().string());
    const std::string want = expected_error(f);
    REQUIRE(!want.empty());
    std::string got;
    try {
      load_chip_config(f.string());
    } catch (const InputError& e) {
      got = e.what();
    }
    CHECK(got.rfind(f.string() + ":", 0) == 0);  // names the file first
    CHECK_THAT(got, Catch::Matchers::Contains(want));
  }
}

TEST_CASE("config: the base of the bad configs is valid") {
  // Guards the bad-config tests: each file is this text plus one defect, so the defect is what fails.
  CHECK(parse_error(kTinyYaml) == "");
}

TEST_CASE("config: more invalid values are rejected with field and value") {
  const std::string base = kTinyYaml;
  struct Case { const char* from; const char* to; const char* want; };
  const Case cases[] = {
      {"  superlanes: 2\n", "  superlanes: 0x10\n", "lanes.superlanes: must be an integer in [1, 4096]; got 0x10"},
      {"  superlanes: 2\n", "  superlanes: 2.5\n", "lanes.superlanes: must be an integer in [1, 4096]; got 2.5"},
      {"  superlanes: 2\n", "  superlanes: 1e3\n", "lanes.superlanes: must be an integer in [1, 4096]; got 1e3"},
      {"  superlanes: 2\n", "  superlanes: 99999999999999999999999\n", "lanes.superlanes: must be an integer in [1, 4096]; got 99999999999999999999999"},
      {"  superlanes: 2\n", "  superlanes: [2]\n", "lanes.superlanes: must be an integer in [1, 4096]; got a list of 1 items"},
      {"  superlanes: 2\n", "  superlanes:\n", "lanes.superlanes: must be an integer in [1, 4096]; got null"},
      {"  superlanes: 2\n  lanes_per_superlane: 16\n", "  superlanes: 4096\n  lanes_per_superlane: 4096\n",
       "lanes: superlanes x lanes_per_superlane must be at most 65535 (16-bit lane indices); got 16777216"},
      {"  acc_rows: 64\n", "  acc_rows: 65537\n", "mxm.acc_rows: must be an integer in [1, 65536]; got 65537"},
      {"  fp16_slowdown: 4\n", "  fp16_slowdown: 0\n", "mxm.fp16_slowdown: must be an integer in [1, 1024]; got 0"},
      {"  fp16_slowdown: 4\n", "  fp16_slowdown: 4\n  transposed_install: no\n",
       "mxm.transposed_install: must be true or false; got no"},
      {"  fp16_slowdown: 4\n", "  fp16_slowdown: 4\nvxm:\n  fused_multiply_add: 1\n",
       "vxm.fused_multiply_add: must be true or false; got 1"},
      {"  fp16_slowdown: 4\n", "  fp16_slowdown: 4\nvxm:\n  fma: true\n",
       "vxm.fma: unknown key; got 'fma'; allowed fused_multiply_add"},
      {"  fp16_slowdown: 4\n", "  fp16_slowdown: 4\n  transposed: true\n",
       "mxm.transposed: unknown key; got 'transposed'; allowed planes_per_slice, acc_rows, fp16_slowdown, transposed_install"},
      {"streams_per_direction: 8\n", "streams_per_direction: 0\n", "streams_per_direction: must be an integer in [1, 32]; got 0"},
      {"clock_hz: 1.0e9\n", "clock_hz: -1.0e9\n", "clock_hz: must be a finite number > 0 and <= 1000000000000; got -1.0e9"},
      {"clock_hz: 1.0e9\n", "clock_hz: fast\n", "clock_hz: must be a finite number > 0 and <= 1000000000000; got fast"},
      {"name: tiny\n", "name: [a, b]\n", "name: must be a name of letters, digits, '-' and '_'"},
      {"name: tiny\n", "name: 7nm\n", "got '7nm'"},
      {"name: tiny\n", "name: -x\n", "name: must be a name of letters, digits, '-' and '_', starting with a letter or '_'"},
      {"  acc_rows: 64\n", "  acc_rows: 064\n", "mxm.acc_rows: must be an integer in [1, 65536]; got 064"},
      {"  acc_rows: 64\n", "  acc_rows: !!str 64\n", "mxm.acc_rows: must be an integer in [1, 65536]; got 64 (tagged tag:yaml.org,2002:str)"},
      {"stagger: false\n", "stagger: False\n", "stagger: must be true or false; got False"},
      {"  links: 2\n", "  links: -1\n", "c2c.links: must be an integer in [0, 32]; got -1"},
      {"  wire_latency_cycles: 100\n", "  wire_latency_cycles: 100001\n", "c2c.wire_latency_cycles: must be an integer in [0, 100000]; got 100001"},
      {"  chips_per_node: 8\n", "  chips_per_node: 0\n", "topology.chips_per_node: must be an integer in [1, 1000000]; got 0"},
      {"  mxm_acc:       {latency: 2,  occupancy: 1}", "  mxm_acc:       {latency: 2,  occupancy: 100001}",
       "timing.mxm_acc.occupancy: must be an integer in [0, 100000]; got 100001"},
      {"  mxm_acc:       {latency: 2,  occupancy: 1}", "  mxm_acc:       {latency: 2}", "timing.mxm_acc.occupancy: missing required key 'occupancy'"},
      {"  mxm_acc:       {latency: 2,  occupancy: 1}", "  mxm_acc:       [2, 1]", "timing.mxm_acc: must be a map of settings; got a list of 2 items"},
      {"floorplan:\n", "floorplan: []\nunused:\n", "unused: unknown key"},
      {"  - {kind: MXM, name: MXM, queues: 2}\n", "", "floorplan: needs at least one MXM slice; got none"},
      {"{kind: MEM, name: MEM_W, count: 2, order: descending, queues: 1}", "{kind: MEM, name: MEM_W, count: 2, queues: 1}",
       "floorplan[1].order: missing required key 'order'"},
      {"{kind: MXM, name: MXM, queues: 2}", "{kind: MXM, name: MEM_E0, queues: 2}", "duplicate slice name; got 'MEM_E0' twice"},
  };
  for (const Case& c : cases) {
    INFO("replacing '" << c.from << "' by '" << c.to << "'");
    const std::string err = parse_error(replace_once(base, c.from, c.to));
    CHECK_THAT(err, Catch::Matchers::StartsWith("whatif.yaml: ") && Catch::Matchers::Contains(c.want));
  }
  CHECK_THAT(parse_error("floorplan: [\n", "x.yaml"), Catch::Matchers::StartsWith("x.yaml:") &&
                                                         Catch::Matchers::Contains("YAML syntax error"));
  CHECK_THAT(parse_error(std::string(kTinyYaml) + "---\n" + kTinyYaml, "x.yaml"),
             Catch::Matchers::Contains("x.yaml: (document): a chip config is one YAML document; got 2 documents"));
  CHECK_THAT(parse_error("", "x.yaml"), Catch::Matchers::Contains("x.yaml: (document): top level must be a map"));
  CHECK_THAT(parse_error("42", "x.yaml"), Catch::Matchers::Contains("x.yaml: (document): top level must be a map of settings; got 42"));
}

TEST_CASE("config: a missing or unreadable file is an InputError naming the path") {
  const std::string missing = std::string(LPU_SOURCE_DIR) + "/tests/data/bad_configs/no-such-file.yaml";
  CHECK_THROWS_WITH(load_chip_config(missing), Catch::Matchers::Contains(missing) && Catch::Matchers::Contains("no such file"));
  const std::string dir = std::string(LPU_SOURCE_DIR) + "/tests/data/bad_configs";
  CHECK_THROWS_WITH(load_chip_config(dir), Catch::Matchers::Contains(dir) && Catch::Matchers::Contains("not a regular file"));
  CHECK_THROWS_AS(load_chip_config(missing), InputError);
}

TEST_CASE("config: lpusim config show prints the effective config") {
  const RunResult r = run_lpusim("config show");
  CHECK(r.status == 0);
  CHECK(r.err == "");
  CHECK(r.out == "# source: <built-in tsp-v1>\n" + dump_chip_config(*default_chip_config()));
  const std::string file = std::string(LPU_SOURCE_DIR) + "/workloads/chips/tsp-v1.yaml";
  const RunResult f = run_lpusim("config show '" + file + "'");
  CHECK(f.status == 0);
  CHECK(f.out == "# source: " + file + "\n" + dump_chip_config(*default_chip_config()));
  const RunResult c = run_lpusim("config show --chip '" + file + "'");
  CHECK(c.status == 0);
  CHECK(c.out == f.out);
}

TEST_CASE("config: lpusim config show fails on every bad config with its message on stderr") {
  for (const fs::path& f : bad_config_files()) {
    INFO("bad config " << f.filename().string());
    const RunResult r = run_lpusim("config show '" + f.string() + "'");
    CHECK(r.status == 2);
    CHECK(r.out == "");
    CHECK_THAT(r.err, Catch::Matchers::StartsWith("lpusim: error: " + f.string() + ":") &&
                          Catch::Matchers::Contains(expected_error(f)));
  }
  const RunResult m = run_lpusim("config show /nonexistent/chip.yaml");
  CHECK(m.status == 2);
  CHECK_THAT(m.err, Catch::Matchers::Contains("/nonexistent/chip.yaml"));
}

TEST_CASE("config: randomly damaged configs give InputError or load, never anything else") {
  // Seeded, so the same damage every run. Each damaged text must either load (then its dump must
  // load again) or fail with an InputError naming the source; any other exception fails the test.
  std::mt19937 rng(20261130);
  const std::string base = kTinyYaml;
  const std::string alphabet = "{}[]:,-#'\"\n 0123456789.eE_abcxyzMEM!&*|>?%@`\t~";
  int loaded = 0, rejected = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string s = base;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s.erase(at, 1 + rng() % 8); break;
        case 1: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        default: s[at] = alphabet[rng() % alphabet.size()]; break;
      }
    }
    try {
      const auto c = parse_chip_config(s, "damaged.yaml");
      const auto again = parse_chip_config(dump_chip_config(*c), "again.yaml");
      CHECK(dump_chip_config(*again) == dump_chip_config(*c));
      ++loaded;
    } catch (const InputError& e) {
      CHECK_THAT(std::string(e.what()), Catch::Matchers::StartsWith("damaged.yaml"));
      ++rejected;
    }
  }
  INFO("loaded " << loaded << ", rejected " << rejected);
  CHECK(loaded > 0);
  CHECK(rejected > 0);
}

TEST_CASE("config: every capability flag is optional (default true), explicit in tsp-v1, and round-trips") {
  // The [assumed] capabilities a what-if can turn off: the transposed install `iwt` and the fused
  // multiply-add `fma`. Each row: the YAML key, the text that turns it off in kTinyYaml (inserted
  // after the MXM's fp16_slowdown line), and the ChipConfig member.
  struct Cap {
    const char* key;
    const char* off_yaml;
    bool ChipConfig::*flag;
  };
  for (const Cap& c : {Cap{"transposed_install", "\n  transposed_install: false", &ChipConfig::mxm_transposed_install},
                       Cap{"fused_multiply_add", "\nvxm:\n  fused_multiply_add: false", &ChipConfig::vxm_fma}}) {
    INFO(c.key);
    CHECK((*default_chip_config()).*c.flag);
    CHECK_THAT(default_chip_config_yaml(), Catch::Matchers::Contains(std::string(c.key) + ": true"));
    CHECK((*parse_chip_config(kTinyYaml, "t.yaml")).*c.flag);
    const auto off = parse_chip_config(replace_once(kTinyYaml, "fp16_slowdown: 4", std::string("fp16_slowdown: 4") + c.off_yaml),
                                       "t.yaml");
    CHECK_FALSE((*off).*c.flag);
    const std::string d = dump_chip_config(*off);
    CHECK_THAT(d, Catch::Matchers::Contains(std::string(c.key) + ": false"));
    CHECK_FALSE((*parse_chip_config(d, "d.yaml")).*c.flag);
  }
}
