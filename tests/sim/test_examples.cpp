// Runs the teaching programs of workloads/asm/ and checks (1) their output values against results
// computed here from each program's own data image, (2) their cycle counts against the hand-derived
// numbers in tests/golden/<name>.json, (3) timing mode measuring the same cycles, and (4) the
// `lpusim sim` command line on them (report, JSON, trace, exit codes).
#include <catch2/catch.hpp>

#include "tests/support/cli.h"

#include "tests/support/files.h"
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>
#include <fstream>
#include <sstream>

#include "isa/asm.h"
#include "sim/energy.h"
#include "sim/simulator.h"

using namespace lpu;

namespace {

std::string example_path(const std::string& name) { return std::string(LPU_SOURCE_DIR) + "/workloads/asm/" + name + ".s"; }

Program load_example(const std::string& name, const ChipConfig& cfg) {
  const std::string path = example_path(name);
  return assemble(read_text(path), path, cfg);
}

// The "cycles" of tests/golden/<name>.json, the program's golden report (what `lpusim regress`
// reads; scripts/update_goldens.sh writes them). The counts equal the hand derivations in each
// program's header.
uint64_t golden_cycles(const std::string& name) {
  const auto j = nlohmann::json::parse(read_text(std::string(LPU_SOURCE_DIR) + "/tests/golden/" + name + ".json"));
  if (!j.contains("cycles") || !j["cycles"].is_number_unsigned()) FAIL("tests/golden/" << name << ".json holds no cycle count");
  return j["cycles"].get<uint64_t>();
}

const TensorDesc& tensor(const Program& p, const std::string& name) {
  for (const TensorDesc& t : p.tensors)
    if (t.name == name) return t;
  FAIL("no tensor " << name);
  throw std::logic_error("unreachable");
}

// Byte `lane` of vector `addr` of `slice` on `chip` in the program's initial SRAM image (.data/.fill).
uint8_t image_byte(const Program& p, uint32_t chip, uint16_t slice, uint32_t addr, uint32_t lane, uint32_t vb) {
  for (const DataBlob& b : p.data) {
    if (b.chip != chip || b.slice != slice || addr < b.addr) continue;
    const uint64_t off = static_cast<uint64_t>(addr - b.addr) * vb + lane;
    if (off < b.bytes.size()) return b.bytes[off];
  }
  FAIL("no initial data at chip " << chip << " slice " << slice << " address " << addr);
  return 0;
}

// Element (r, j) of a [rows, lanes] tensor of the data image, as the little-endian value of its
// byte planes (sign-extended to 64 bits for the tensor's dtype).
int64_t image_elem(const Program& p, const TensorDesc& t, uint32_t r, uint32_t j, uint32_t vb) {
  uint64_t u = 0;
  const int nb = dtype_bytes(t.dtype);
  for (int b = 0; b < nb; ++b) u |= static_cast<uint64_t>(image_byte(p, t.chip, t.slices[b], t.addr + r, j, vb)) << (8 * b);
  const int shift = 64 - 8 * nb;
  return static_cast<int64_t>(u << shift) >> shift;
}

// Element e of an output tensor (row-major elements, little-endian bytes of its dtype).
int64_t out_elem(const sim::SimResult& res, const TensorDesc& t, uint64_t e) {
  auto it = res.outputs.find(t.name);
  REQUIRE(it != res.outputs.end());
  const int nb = dtype_bytes(t.dtype);
  REQUIRE(it->second.size() >= (e + 1) * nb);
  uint64_t u = 0;
  for (int b = 0; b < nb; ++b) u |= static_cast<uint64_t>(it->second[e * nb + b]) << (8 * b);
  const int shift = 64 - 8 * nb;
  return static_cast<int64_t>(u << shift) >> shift;
}

// Runs the example in both modes; checks cycles against the golden file (both modes) and returns
// the functional result.
sim::SimResult run_and_check_cycles(const std::string& name, const Program& p, const ChipConfig& cfg) {
  sim::SimOptions fo;
  fo.mode = sim::Mode::Functional;
  const sim::SimResult fr = sim::simulate(p, cfg, fo);
  const uint64_t want = golden_cycles(name);
  INFO(name << ": golden (hand-derived) cycles " << want << ", measured " << fr.cycles << ", difference "
            << static_cast<int64_t>(fr.cycles) - static_cast<int64_t>(want));
  CHECK(fr.cycles == want);
  sim::SimOptions to;
  to.mode = sim::Mode::Timing;
  const sim::SimResult tr = sim::simulate(p, cfg, to);
  INFO(name << ": timing mode measured " << tr.cycles << ", functional " << fr.cycles);
  CHECK(tr.cycles == fr.cycles);
  CHECK(tr.instructions == fr.instructions);
  // Energy must not depend on the mode either.
  REQUIRE(tr.chips.size() == fr.chips.size());
  for (size_t c = 0; c < fr.chips.size(); ++c) {
    INFO("chip " << c);
    CHECK(tr.chips[c].events == fr.chips[c].events);
  }
  return fr;
}

int run_cli(const std::string& args, const std::string& out_file) {
  const std::string exe = lpusim_exe();
  const std::string cmd = exe + " " + args + " >" + out_file + " 2>&1";
  const int st = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(st));
  return WEXITSTATUS(st);
}

}  // namespace

TEST_CASE("examples: vector_add.s adds A and B and takes the cycles of machine.md section 5", "[examples]") {
  const auto cfg = default_chip_config();
  const Program p = load_example("vector_add", *cfg);
  const sim::SimResult r = run_and_check_cycles("vector_add", p, *cfg);
  const uint32_t vb = cfg->vector_bytes();
  const TensorDesc &a = tensor(p, "a"), &b = tensor(p, "b"), &c = tensor(p, "c");
  for (uint32_t j = 0; j < vb; ++j) {
    const int8_t want = static_cast<int8_t>(static_cast<uint8_t>(image_elem(p, a, 0, j, vb) + image_elem(p, b, 0, j, vb)));
    INFO("lane " << j);
    REQUIRE(out_elem(r, c, j) == want);
  }
}

TEST_CASE("examples: matmul_320_int8.s equals a plain int8 x int8 -> int32 matrix product", "[examples]") {
  const auto cfg = default_chip_config();
  const Program p = load_example("matmul_320_int8", *cfg);
  const sim::SimResult r = run_and_check_cycles("matmul_320_int8", p, *cfg);
  const uint32_t L = cfg->vector_bytes();
  const TensorDesc &w = tensor(p, "w"), &x = tensor(p, "x"), &y = tensor(p, "y");
  std::vector<int64_t> W(static_cast<size_t>(L) * L);
  for (uint32_t i = 0; i < L; ++i)
    for (uint32_t j = 0; j < L; ++j) W[static_cast<size_t>(i) * L + j] = image_elem(p, w, i, j, L);
  for (uint32_t row = 0; row < 8; ++row) {
    for (uint32_t j = 0; j < L; ++j) {
      int64_t s = 0;
      for (uint32_t i = 0; i < L; ++i) s += image_elem(p, x, row, i, L) * W[static_cast<size_t>(i) * L + j];
      INFO("y[" << row << "][" << j << "]");
      REQUIRE(out_elem(r, y, static_cast<uint64_t>(row) * L + j) == s);
    }
  }
}

TEST_CASE("examples: reduction.s sums 8 int32 vectors (wrapping)", "[examples]") {
  const auto cfg = default_chip_config();
  const Program p = load_example("reduction", *cfg);
  const sim::SimResult r = run_and_check_cycles("reduction", p, *cfg);
  const uint32_t L = cfg->vector_bytes();
  const TensorDesc &x = tensor(p, "x"), &y = tensor(p, "y");
  for (uint32_t j = 0; j < L; ++j) {
    uint32_t s = 0;
    for (uint32_t k = 0; k < 8; ++k) s += static_cast<uint32_t>(image_elem(p, x, k, j, L));
    INFO("lane " << j);
    REQUIRE(out_elem(r, y, j) == static_cast<int32_t>(s));
  }
}

TEST_CASE("examples: transpose.s transposes every 16x16 block", "[examples]") {
  const auto cfg = default_chip_config();
  const Program p = load_example("transpose", *cfg);
  const sim::SimResult r = run_and_check_cycles("transpose", p, *cfg);
  const uint32_t L = cfg->vector_bytes();
  for (uint32_t k = 0; k < 16; ++k) {
    const TensorDesc& out = tensor(p, "t" + std::to_string(k));
    for (uint32_t blk = 0; blk < L / 16; ++blk)
      for (uint32_t i = 0; i < 16; ++i) {
        // out[k][16 blk + i] = in[i][16 blk + k]
        const int64_t want = image_elem(p, tensor(p, "a" + std::to_string(i)), 0, 16 * blk + k, L);
        INFO("t" << k << " lane " << 16 * blk + i);
        REQUIRE(out_elem(r, out, 16 * blk + i) == want);
      }
  }
}

TEST_CASE("examples: two_chip.s moves 4 vectors from chip 0 to chip 1", "[examples]") {
  const auto cfg = default_chip_config();
  const Program p = load_example("two_chip", *cfg);
  const sim::SimResult r = run_and_check_cycles("two_chip", p, *cfg);
  const uint32_t L = cfg->vector_bytes();
  const TensorDesc &x = tensor(p, "x"), &y = tensor(p, "y");
  for (uint32_t k = 0; k < 4; ++k)
    for (uint32_t j = 0; j < L; ++j) {
      INFO("y[" << k << "][" << j << "]");
      REQUIRE(out_elem(r, y, static_cast<uint64_t>(k) * L + j) == image_elem(p, x, k, j, L));
    }
  REQUIRE(r.chips.size() == 2);
  // 4 vectors x 320 bytes crossed the link
  CHECK(r.chips[0].events[static_cast<int>(EnergyEvent::C2cByte)] + r.chips[1].events[static_cast<int>(EnergyEvent::C2cByte)] ==
        4 * L);
}

TEST_CASE("examples: full_busy.s keeps the MXM planes busy for its hand-derived cycle count", "[examples]") {
  const auto cfg = default_chip_config();
  const Program p = load_example("full_busy", *cfg);
  sim::SimOptions to;
  to.mode = sim::Mode::Timing;
  const sim::SimResult r = sim::simulate(p, *cfg, to);
  const uint64_t want = golden_cycles("full_busy");
  INFO("golden " << want << ", measured " << r.cycles << ", difference " << static_cast<int64_t>(r.cycles) - static_cast<int64_t>(want));
  CHECK(r.cycles == want);
  // 4 planes x 4096 abc x 320 x 320 MACs
  const uint64_t L = cfg->vector_bytes();
  CHECK(r.chips[0].events[static_cast<int>(EnergyEvent::MacInt8)] == 4 * 4096 * L * L);
}

TEST_CASE("examples: lpusim sim prints the report and writes JSON and a trace", "[examples][cli]") {
  const std::string dir = std::string(LPU_BINARY_DIR) + "/test_examples_cli";
  REQUIRE(std::system(("mkdir -p " + dir).c_str()) == 0);
  const std::string json = dir + "/va.json", trace = dir + "/va.trace.json", out = dir + "/va.out";
  REQUIRE(run_cli("sim " + example_path("vector_add") + " --json " + json + " --trace " + trace, out) == 0);
  const std::string text = read_text(out);
  CHECK(text.find("cycles        38") != std::string::npos);
  CHECK(text.find("average power") != std::string::npos);
  const auto j = nlohmann::json::parse(read_text(json));
  CHECK(j["cycles"] == 38);
  CHECK(j["config"] == "tsp-v1");
  CHECK(j["work_unit"] == "items");
  const auto t = nlohmann::json::parse(read_text(trace));
  int x = 0;
  for (const auto& e : t["traceEvents"]) x += e["ph"] == "X";
  CHECK(x == 4);  // read, read, add, write
  // Same input, same bytes.
  const std::string json2 = dir + "/va2.json";
  REQUIRE(run_cli("sim " + example_path("vector_add") + " --mode timing --json " + json2, out) == 0);
  CHECK(nlohmann::json::parse(read_text(json2))["cycles"] == 38);
  REQUIRE(run_cli("sim " + example_path("vector_add") + " --json " + json2, out) == 0);
  CHECK(read_text(json2) == read_text(json));
}

TEST_CASE("examples: lpusim sim exits 1 on a schedule error naming the line and 2 on bad input", "[examples][cli]") {
  const std::string dir = std::string(LPU_BINARY_DIR) + "/test_examples_cli";
  REQUIRE(std::system(("mkdir -p " + dir).c_str()) == 0);
  // vector_add with the add one cycle late (machine.md: "it reads nothing")
  std::string src = read_text(example_path("vector_add"));
  const std::string from = "    nop 10\n    add.i8", to = "    nop 11\n    add.i8";
  const size_t at = src.find(from);
  REQUIRE(at != std::string::npos);
  src.replace(at, from.size(), to);
  const std::string bad = dir + "/late_add.s", out = dir + "/late_add.out";
  std::ofstream(bad) << src;
  CHECK(run_cli("sim " + bad, out) == 1);
  const std::string msg = read_text(out);
  CHECK(msg.find("stream-empty-read") != std::string::npos);
  CHECK(msg.find("late_add.s:") != std::string::npos);
  CHECK(run_cli("sim " + dir + "/does_not_exist.s", out) == 2);
  CHECK(run_cli("sim " + example_path("vector_add") + " --mode fast", out) == 2);
  CHECK(read_text(out).find("functional, timing") != std::string::npos);
}

// The calibration target of machine.md section 7 (docs/energy.md derives the coefficients).
TEST_CASE("energy: a fully busy tsp-v1 chip draws 215-300 W", "[calibration]") {
  const auto cfg = default_chip_config();
  const Program p = load_example("full_busy", *cfg);
  sim::SimOptions to;
  to.mode = sim::Mode::Timing;
  const sim::EnergyBreakdown e = sim::compute_energy(sim::simulate(p, *cfg, to), *cfg);
  INFO("full_busy.s average power " << e.average_power_w << " W (machine.md section 7: 215-300 W)");
  CHECK(e.average_power_w >= 215.0);
  CHECK(e.average_power_w <= 300.0);
}
