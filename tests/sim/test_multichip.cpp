// Many chips: C2C send/recv between chip modules in one SystemC simulation, values and cycles.
#include <catch2/catch.hpp>

#include "tests/support/files.h"

#include <fstream>
#include <sstream>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;

namespace {

std::vector<uint8_t> ramp(int mul, int add) {
  std::vector<uint8_t> v(320);
  for (int i = 0; i < 320; ++i) v[i] = static_cast<uint8_t>(i * mul + add);
  return v;
}

}  // namespace

TEST_CASE("multichip: two_chips sample moves a vector across a cable") {
  auto cfg = default_chip_config();
  Program p = assemble(read_text(std::string(LPU_SOURCE_DIR) + "/tests/data/asm/two_chips.s"), "two_chips.s", *cfg);
  sim::SimOptions opt;
  opt.inputs["v"] = ramp(3, 11);
  sim::SimResult r = sim::simulate(p, *cfg, opt);
  CHECK(r.cycles == p.predicted_cycles);
  CHECK(r.outputs.at("w") == opt.inputs["v"]);
  REQUIRE(r.chips.size() == 2);
  CHECK(r.chips[0].events[static_cast<int>(EnergyEvent::C2cByte)] == 320);
  CHECK(r.chips[1].events[static_cast<int>(EnergyEvent::C2cByte)] == 0);
}

// Both directions at once, two vectors queued on one link (the second popped after the first),
// and two links feeding one VXM add on chip 1 on the same cycle.
TEST_CASE("multichip: bidirectional exchange with two vectors queued on one link") {
  auto cfg = default_chip_config();
  // send latency on tsp-v1 = 4 + 180 wire + ceil(320 / (14e9 / 900e6)) = 205 cycles.
  const char* exact = R"(
.config tsp-v1
.chips 2
.link 0:0 1:0
.link 0:1 1:1
.link 0:2 1:2
.tensor input a i8 [1,320] chip=0 slices=MEM_E43 addr=0
.tensor input b i8 [1,320] chip=0 slices=MEM_E42 addr=0
.tensor input c i8 [1,320] chip=1 slices=MEM_E43 addr=0
.tensor output sum i8 [1,320] chip=1 slices=MEM_E0 addr=0
.tensor output back i8 [1,320] chip=0 slices=MEM_E41 addr=0
.chip 0
.queue MEM_E43
    read 0, E0        ; @0: on E0 at C2C (93) on cycle 5
    nop 29
    read 0, E0        ; @30: again, at C2C on 35 (two vectors queued on l0)
.queue MEM_E42
    nop 1
    read 0, E1        ; @1: at 89 on 3, at C2C (93) on 7
.queue C2C.0
    nop 5
    send l0, E0       ; @5: arrives on chip 1 at 210
    nop 29
    send l0, E0       ; @35: arrives at 240
.queue C2C.1
    nop 300
    recv l1 -> W1     ; @300 (c arrived at 215): on W1 at 93 on 302, at MEM_E41 (88) on 307
.queue C2C.2
    nop 7
    send l2, E1       ; @7: arrives at 212
.queue MEM_E41
    nop 307
    write W1, 0
.chip 1
.queue MEM_E43
    read 0, E2        ; @0: at C2C on 5
.queue C2C.1
    nop 5
    send l1, E2       ; @5: arrives on chip 0 at 210
.queue C2C.0
    nop 250
    recv l0 -> W0     ; @250 pops the first a: on W0 at 93 on 252, at VXM (46) on 299
    recv l0 -> W3     ; @251 pops the second a (arrived 240): unused
.queue C2C.2
    nop 250
    recv l2 -> W1     ; @250 pops b: on W1 at 93 on 252, at VXM on 299
.queue VXM.0
    nop 299
    add.i8 W0, W1 -> E6  ; @299: sum on E6 at 46 on 302, at MEM_E0 (47) on 303
.queue MEM_E0
    nop 303
    write E6, 0       ; @303, lands 305: cycles = 309 (chip 0) + 19
)";
  Program p = assemble(exact, "exchange.s", *cfg);
  sim::SimOptions opt;
  opt.inputs["a"] = ramp(5, 1);
  opt.inputs["b"] = ramp(9, 200);
  opt.inputs["c"] = ramp(13, 7);
  sim::SimResult r = sim::simulate(p, *cfg, opt);
  const auto& sum = r.outputs.at("sum");
  REQUIRE(sum.size() == 320);
  for (int i = 0; i < 320; ++i) CHECK(sum[i] == static_cast<uint8_t>(opt.inputs["a"][i] + opt.inputs["b"][i]));
  CHECK(r.outputs.at("back") == opt.inputs["c"]);
  // Chip 0's last write @307 lands at 309; + stagger tail 19.
  CHECK(r.cycles == 309 + 19);
  CHECK(r.chips[0].events[static_cast<int>(EnergyEvent::C2cByte)] == 3 * 320);
  CHECK(r.chips[1].events[static_cast<int>(EnergyEvent::C2cByte)] == 320);
}

TEST_CASE("multichip: recv before the vector arrives is recv-no-send on the receiving chip") {
  auto cfg = default_chip_config();
  const char* src = R"(
.config tsp-v1
.chips 2
.link 0:3 1:5
.chip 0
.queue MEM_E43
    read 0, E0        ; at C2C on cycle 5
.queue C2C.0
    nop 5
    send l3, E0       ; @5, arrives at 210
.chip 1
.queue C2C.1
    nop 209
    recv l5 -> W0     ; @209: one cycle early
)";
  Program p = assemble(src, "early.s", *cfg);
  try {
    sim::simulate(p, *cfg, sim::SimOptions{});
    FAIL("expected a SimError");
  } catch (const sim::SimError& e) {
    CHECK(e.rule() == "recv-no-send");
    CHECK(e.where().chip == 1);
    CHECK(e.where().cycle == 209);
    CHECK(e.where().slice == "C2C");
    CHECK(e.where().queue == 1);
    CHECK(e.where().instr_text == "recv l5 -> W0");
  }
  // One cycle later it works.
  std::string ok = src;
  ok.replace(ok.find("nop 209"), 7, "nop 210");
  sim::SimResult r = sim::simulate(assemble(ok, "ontime.s", *cfg), *cfg, sim::SimOptions{});
  CHECK(r.cycles == 210 + 2 + 19);
}
