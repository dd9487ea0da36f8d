// ICU issue semantics (docs/architecture.md "Issue"): nop, repeat with stepping, sync/notify
// release rules, end-of-program cycle count, per-slice stats; and the InputErrors simulate()
// raises for programs, inputs or configs it cannot run.
#include <catch2/catch.hpp>

#include <string>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;

namespace {

sim::SimResult run(const std::string& src, const ChipConfig& cfg, std::map<std::string, std::vector<uint8_t>> in = {}) {
  sim::SimOptions o;
  o.record_trace = true;
  o.inputs = std::move(in);
  return sim::simulate(assemble(src, "icu.s", cfg), cfg, o);
}

std::vector<uint64_t> issues_of(const sim::SimResult& r, Opcode op) {
  std::vector<uint64_t> v;
  for (const auto& e : r.trace)
    if (e.op == op) v.push_back(e.issue);
  return v;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("icu: repeat re-issues every stride cycles, steps the address and moves the cursor past it") {
  auto cfg = default_chip_config();
  // MEM_E0 (47) reads 5..8 on 0, 4, 8, 12 onto E0; MEM_E1 (48) writes them to 10..13 one cycle
  // after each lands at 47. After `repeat 3, 4` the cursor is 0 + 3*4 + 1 = 13.
  const std::string src = R"(
.config tsp-v1
.chips 1
.tensor input a i8 [4,320] chip=0 slices=MEM_E0 addr=5
.tensor output b i8 [4,320] chip=0 slices=MEM_E1 addr=10
.chip 0
.queue MEM_E0
    read 5, E0
    repeat 3, 4
    config 1
.queue MEM_E1
    nop 3
    write E0, 10
    repeat 3, 4
)";
  std::vector<uint8_t> a(4 * 320);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i * 11 + i / 320);
  sim::SimResult r = run(src, *cfg, {{"a", a}});
  CHECK(r.outputs.at("b") == a);
  CHECK(issues_of(r, Opcode::Read) == std::vector<uint64_t>{0, 4, 8, 12});
  CHECK(issues_of(r, Opcode::Write) == std::vector<uint64_t>{3, 7, 11, 15});
  CHECK(issues_of(r, Opcode::Config) == std::vector<uint64_t>{13});
  // Every repetition is an executed instruction of the repeated one; repeat itself is not.
  for (const auto& e : r.trace) CHECK(e.op != Opcode::Repeat);
  CHECK(r.instructions == 9);
  const int e0 = cfg->slice_index("MEM_E0");
  CHECK(r.chips[0].slices[e0].instructions == 5);
  CHECK(r.chips[0].slices[e0].busy_cycles == 5);
  CHECK(r.cycles == 15 + 2 + 19);
  // Stride 1: the repetitions use the SRAM port on consecutive cycles, which is allowed.
  CHECK_NOTHROW(run(replace(replace(src, "repeat 3, 4\n    config", "repeat 3, 1\n    config"), "repeat 3, 4", "repeat 3, 1"), *cfg, {{"a", a}}));
}

TEST_CASE("icu: notify releases only queues parked at or before it, resuming sync latency later") {
  auto cfg = default_chip_config();
  const std::string src = R"(
.config tsp-v1
.chips 1
.chip 0
.queue VXM.0
    nop 5
    notify
    nop 6
    notify
.queue VXM.1
    sync
    ifetch 1
    sync
    ifetch 2
.queue VXM.2
    nop 10
    sync
    config 3
)";
  // VXM.1 parks at 0; notify @5 -> ifetch @7; parks again at 8; notify @12 -> ifetch @14.
  // VXM.2 parks at 10 (after the notify at 5): released by the one at 12 -> config @14.
  sim::SimResult r = run(src, *cfg);
  CHECK(issues_of(r, Opcode::Notify) == std::vector<uint64_t>{5, 12});
  CHECK(issues_of(r, Opcode::Ifetch) == std::vector<uint64_t>{7, 14});
  CHECK(issues_of(r, Opcode::Config) == std::vector<uint64_t>{14});
  CHECK(r.cycles == 14 + 1 + 19);
  CHECK(r.instructions == 5);  // sync and nop are not executed instructions
  // The trace is ordered by (issue, chip, slice, queue).
  REQUIRE(r.trace.size() == 5);
  CHECK(r.trace[3].queue == 1);
  CHECK(r.trace[4].queue == 2);
}

TEST_CASE("icu: a sync issued on the notify's own cycle is released by it") {
  auto cfg = default_chip_config();
  const std::string src = ".config tsp-v1\n.chips 1\n.chip 0\n.queue VXM.0\n    nop 3\n    notify\n"
                          ".queue VXM.5\n    nop 3\n    sync\n    ifetch 1\n";
  sim::SimResult r = run(src, *cfg);
  CHECK(issues_of(r, Opcode::Ifetch) == std::vector<uint64_t>{5});
  // Parked one cycle after the notify: never released.
  CHECK_THROWS_AS(run(replace(src, "nop 3\n    sync", "nop 4\n    sync"), *cfg), sim::SimError);
}

TEST_CASE("icu: end of program is the last landing plus the stagger tail, 0 without instructions") {
  auto cfg = default_chip_config();
  CHECK(run(".config tsp-v1\n.chips 1\n", *cfg).cycles == 0);
  CHECK(run(".config tsp-v1\n.chips 1\n.chip 0\n.queue VXM.0\n    nop 100\n", *cfg).cycles == 0);
  CHECK(run(".config tsp-v1\n.chips 1\n.chip 0\n.queue VXM.0\n    nop 100\n    notify\n", *cfg).cycles == 100 + 1 + 19);
  // Without staggering there is no tail.
  std::string yaml = default_chip_config_yaml();
  yaml = replace(yaml, "stagger: true", "stagger: false");
  auto flat = parse_chip_config(yaml, "flat.yaml");
  CHECK(run(".config tsp-v1\n.chips 1\n.chip 0\n.queue VXM.0\n    nop 100\n    notify\n", *flat).cycles == 101);
  // The latest landing wins, not the latest issue: exp (latency 8) @0 vs notify @5.
  const char* src = ".config tsp-v1\n.chips 1\n.chip 0\n.queue MEM_W0\n    read 0, E0\n"
                    ".queue VXM.0\n    nop 3\n    exp.f32 E0 -> E4\n";
  // exp.f32 reads a 4-stream group: only E0 is there.
  CHECK_THROWS_AS(run(src, *cfg), sim::SimError);
  const char* src2 = ".config tsp-v1\n.chips 1\n.chip 0\n.queue MEM_W0\n    read 0, E0\n"
                     ".queue VXM.0\n    nop 3\n    mov.i8 E0 -> E4\n.queue VXM.1\n    nop 4\n    notify\n";
  CHECK(run(src2, *cfg).cycles == 3 + 3 + 19);
}

TEST_CASE("icu: a config whose data-producing class has latency 0 is refused") {
  std::string yaml = replace(default_chip_config_yaml(), "vxm_alu:       {latency: 3,", "vxm_alu:       {latency: 0,");
  std::shared_ptr<const ChipConfig> cfg;
  try {
    cfg = parse_chip_config(yaml, "zero.yaml");
  } catch (const InputError&) {
    SUCCEED("the config loader already refuses latency 0");
    return;
  }
  try {
    run(".config tsp-v1\n.chips 1\n", *cfg);
    FAIL("expected InputError");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("zero.yaml: timing.vxm_alu.latency") != std::string::npos);
  }
}

TEST_CASE("icu: bad inputs and unwired links are InputErrors naming the problem") {
  auto cfg = default_chip_config();
  const std::string src = ".config tsp-v1\n.chips 1\n.tensor input a i8 [2,320] chip=0 slices=MEM_E0 addr=0\n"
                          ".tensor output b i8 [1,320] chip=0 slices=MEM_E1 addr=0\n";
  auto msg = [&](const std::string& s, std::map<std::string, std::vector<uint8_t>> in) {
    try {
      run(s, *cfg, std::move(in));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(msg(src, {{"z", {}}}) == "simulate: input 'z' is not a tensor of the program; its inputs are: a");
  CHECK(msg(src, {{"b", std::vector<uint8_t>(320)}}) == "simulate: 'b' is an output tensor of the program, not an input");
  CHECK(msg(src, {{"a", std::vector<uint8_t>(320)}}) == "simulate: input 'a' has 320 bytes; its 640 elements of i8 need 640");
  CHECK(msg(src, {{"a", std::vector<uint8_t>(640)}}) == "(no error)");
  const std::string unwired = ".config tsp-v1\n.chips 1\n.chip 0\n.queue C2C.0\n    deskew l4\n";
  CHECK(msg(unwired, {}).find("link l4 of chip 0 is not wired") != std::string::npos);
}
