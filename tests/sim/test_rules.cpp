// Schedule rules: each test breaks one rule on purpose and pins the SimError's rule id and where
// it happened (cycle, slice, queue, instruction text, stream); most also show that the schedule
// one cycle later (or without the offending instruction) runs, so the check is not vacuous.
#include <catch2/catch.hpp>

#include <string>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;

namespace {

sim::SimResult run(const std::string& body, sim::Mode mode = sim::Mode::Functional, const SourceMap* map = nullptr) {
  auto cfg = default_chip_config();
  Program p = assemble(body, "rules.s", *cfg);
  sim::SimOptions opt;
  opt.mode = mode;
  opt.source_map = map;
  return sim::simulate(p, *cfg, opt);
}

// Runs `body` in both modes and returns the (identical) SimError.
sim::SimError expect_error(const std::string& body, const std::string& rule) {
  for (sim::Mode mode : {sim::Mode::Timing, sim::Mode::Functional}) {
    try {
      run(body, mode);
    } catch (const sim::SimError& e) {
      CHECK(e.rule() == rule);
      if (mode == sim::Mode::Functional) return e;
      continue;
    }
    FAIL("expected SimError " << rule << " in " << (mode == sim::Mode::Timing ? "timing" : "functional") << " mode");
  }
  throw std::logic_error("unreachable");
}

std::string with(const std::string& s, const std::string& from, const std::string& to) {
  std::string r = s;
  const size_t at = r.find(from);
  REQUIRE(at != std::string::npos);
  r.replace(at, from.size(), to);
  return r;
}

}  // namespace

TEST_CASE("rules: two values on one stream diagonal collide") {
  // MEM_W5 (position 40) puts a value on E0 at 40 on cycle 2; MEM_W4 (41) puts one on E0 at 41
  // on cycle 3 -- the first value is there on that very cycle.
  const std::string src = R"(
.config tsp-v1
.chips 1
.chip 0
.queue MEM_W5
    read 0, E0
.queue MEM_W4
    nop 1
    read 0, E0
)";
  sim::SimError e = expect_error(src, "stream-collision");
  CHECK(e.where().cycle == 1);
  CHECK(e.where().slice == "MEM_W4");
  CHECK(e.where().queue == 0);
  CHECK(e.where().instr_index == 1);
  CHECK(e.where().instr_text == "read 0, E0");
  CHECK(e.where().stream == "E0");
  const std::string what = e.what();
  CHECK(what.find("stream-collision") == 0);
  CHECK(what.find("MEM_W5 queue 0 instr 0 `read 0, E0`") != std::string::npos);
  CHECK(what.find("position 41 on cycle 3") != std::string::npos);
  // One cycle later the second value rides the next diagonal: no collision.
  CHECK_NOTHROW(run(with(src, "nop 1", "nop 2")));
  // The westward stream of the same index is a different register.
  CHECK_NOTHROW(run(with(src, "nop 1\n    read 0, E0", "nop 1\n    read 0, W0")));
}

TEST_CASE("rules: reads and collisions are checked per byte plane of a stream group") {
  // MEM_W1 (position 44) puts E0 at 44 on cycle 2 (at the VXM, 46, on 4); MEM_W0 (45) puts E1 at
  // 45 on 3 (at 46 on 4). mov.i16 @4 reads the group E0,E1 and writes E2,E3 at 46 on 7.
  const std::string ok = R"(
.config tsp-v1
.chips 1
.chip 0
.queue MEM_W1
    read 0, E0
.queue MEM_W0
    nop 1
    read 0, E1
.queue VXM.0
    nop 4
    mov.i16 E0 -> E2
)";
  CHECK_NOTHROW(run(ok));
  // Plane 1 one cycle late: E1 reaches 46 on 5, so the read of plane 1 on 4 is empty.
  sim::SimError e = expect_error(with(ok, "nop 1", "nop 2"), "stream-empty-read");
  CHECK(e.where().stream == "E1");
  CHECK(e.where().slice == "VXM");
  CHECK(e.where().cycle == 4);
  // Plane 1 of the result (E3 at 46 on 7, at 47 on 8) meets a value MEM_E0 (47) puts on E3 on 8.
  const std::string clash = ok + ".queue MEM_E0\n    nop 6\n    read 0, E3\n";
  sim::SimError c = expect_error(clash, "stream-collision");
  CHECK(c.where().stream == "E3");
  CHECK(c.where().slice == "MEM_E0");
  CHECK(c.where().cycle == 6);
  CHECK(std::string(c.what()).find("VXM queue 0 instr 1 `mov.i16 E0 -> E2`") != std::string::npos);
  CHECK_NOTHROW(run(with(clash, "read 0, E3", "read 0, E4")));
}

TEST_CASE("rules: reading a stream slot with no value is an error") {
  // The worked example with the add one cycle late (docs machine.md section 5).
  const std::string src = R"(
.config tsp-v1
.chips 1
.chip 0
.queue MEM_E7
    read 0, W1
.queue MEM_W5
    nop 2
    read 16, E0
.queue VXM.0
    nop 11
    add.i8 E0, W1 -> E2
)";
  sim::SimError e = expect_error(src, "stream-empty-read");
  CHECK(e.where().cycle == 11);
  CHECK(e.where().slice == "VXM");
  CHECK(e.where().queue == 0);
  CHECK(e.where().stream == "E0");
  CHECK(e.where().instr_text == "add.i8 E0, W1 -> E2");
  CHECK(std::string(e.what()).find("read of E0 at position 46 on cycle 11") != std::string::npos);
  CHECK_NOTHROW(run(with(src, "nop 11", "nop 10")));
  // A value that starts downstream of the reader never reaches it, and the message says so.
  const std::string down = R"(
.config tsp-v1
.chips 1
.chip 0
.queue MEM_E0
    read 0, E0
.queue VXM.0
    nop 1
    mov.i8 E0 -> E1
)";
  // E0 from 47 on cycle 2: on its diagonal t - p = -45, the VXM (46) would see it on cycle 1.
  sim::SimError d = expect_error(down, "stream-empty-read");
  CHECK(std::string(d.what()).find("never passes position 46") != std::string::npos);
}

TEST_CASE("rules: issuing on a busy resource is unit-busy") {
  // A send occupies the link's TX side for the serialization time (21 cycles on tsp-v1).
  const std::string src = R"(
.config tsp-v1
.chips 2
.link 0:0 1:0
.chip 0
.queue MEM_E43
    read 0, E0
    read 1, E1
.queue C2C.0
    nop 5
    send l0, E0
.queue C2C.1
    nop 6
    send l0, E1
)";
  sim::SimError e = expect_error(src, "unit-busy");
  CHECK(e.where().cycle == 6);
  CHECK(e.where().slice == "C2C");
  CHECK(e.where().queue == 1);
  CHECK(e.where().instr_text == "send l0, E1");
  CHECK(std::string(e.what()).find("link l0 TX is busy until cycle 26") != std::string::npos);
  // On another link it is fine.
  const std::string other = with(with(src, ".link 0:0 1:0", ".link 0:0 1:0\n.link 0:1 1:1"), "send l0, E1", "send l1, E1");
  CHECK_NOTHROW(run(other));
}

TEST_CASE("rules: fp16 abc keeps the plane's ABC port busy fp16_slowdown cycles") {
  // f16 x comes as the group W0,W1. MEM_W42 (position 3) reads @0: W0 at 3 on 2, at MXM_W (0) on
  // 5; MEM_W43 (2) reads @1: W1 at 2 on 3, at 0 on 5. lw @5, iw @6 lands @26. Second round:
  // MEM_W42 reads @27..32 and MEM_W43 @28..33, so x is at position 0 on cycles 32..37.
  const std::string src = R"(
.config tsp-v1
.chips 1
.chip 0
.queue MEM_W42
    read 0, W0
    nop 26
    read 0, W0
    repeat 5, 1
.queue MEM_W43
    nop 1
    read 0, W1
    nop 26
    read 0, W1
    repeat 5, 1
.queue MXM_W.0
    nop 5
    lw.f16 p0, W0, r0
    nop 1
    iw.f16 p0
    nop 25
    abc.f16 p0, W0, r0
    nop 2
    abc.f16 p0, W0, r1
)";
  // abc @33 and @36: 3 cycles apart, but an fp16 abc occupies the ABC port 1 x 4 cycles.
  sim::SimError e = expect_error(src, "unit-busy");
  CHECK(e.where().cycle == 36);
  CHECK(e.where().slice == "MXM_W");
  CHECK(e.where().instr_text == "abc.f16 p0, W0, r1");
  CHECK(std::string(e.what()).find("plane 0's ABC port is busy until cycle 37") != std::string::npos);
  CHECK_NOTHROW(run(with(src, "nop 2\n    abc.f16", "nop 3\n    abc.f16")));  // @37
  // The other plane has its own port (and no weights: that is the error then).
  sim::SimError g = expect_error(with(src, "abc.f16 p0, W0, r1", "abc.f16 p1, W0, r1"), "abc-no-weights");
  CHECK(g.where().cycle == 36);
}

TEST_CASE("rules: reading an address before its write lands is sram-hazard") {
  // MEM_E0 (47): read @0 puts E0 at 47 on 2; write @2 lands @4; read of the same address @3.
  const std::string src = R"(
.config tsp-v1
.chips 1
.chip 0
.queue MEM_E0
    read 0, E0
    nop 1
    write E0, 5
    read 5, E1
)";
  sim::SimError e = expect_error(src, "sram-hazard");
  CHECK(e.where().cycle == 3);
  CHECK(e.where().slice == "MEM_E0");
  CHECK(e.where().instr_index == 3);
  CHECK(e.where().instr_text == "read 5, E1");
  CHECK(std::string(e.what()).find("read of address 5 on cycle 3 while the write to it lands only on cycle 4") != std::string::npos);
  CHECK_NOTHROW(run(with(src, "read 5, E1", "nop 1\n    read 5, E1")));
  CHECK_NOTHROW(run(with(src, "read 5, E1", "read 6, E1")));
}

TEST_CASE("rules: abc without installed weights or during an install is abc-no-weights") {
  // x from MEM_W43 (2) on W0 @0: at MXM_W (0) on cycle 4.
  const std::string none = R"(
.config tsp-v1
.chips 1
.chip 0
.queue MEM_W43
    read 0, W0
.queue MXM_W.0
    nop 4
    abc.i8 p0, W0, r0
)";
  sim::SimError e = expect_error(none, "abc-no-weights");
  CHECK(e.where().cycle == 4);
  CHECK(e.where().slice == "MXM_W");
  CHECK(e.where().instr_text == "abc.i8 p0, W0, r0");
  CHECK(std::string(e.what()).find("no iw was ever issued") != std::string::npos);
  // iw @0 lands @20 (latency 20): an abc at 19 is during the install, at 20 it is fine.
  const std::string inflight = R"(
.config tsp-v1
.chips 1
.chip 0
.queue MEM_W43
    nop 15
    read 0, W0
.queue MXM_W.0
    iw.i8 p0
    nop 18
    abc.i8 p0, W0, r0
)";
  sim::SimError f = expect_error(inflight, "abc-no-weights");
  CHECK(f.where().cycle == 19);
  CHECK(std::string(f.what()).find("while an iw is in flight (it lands on cycle 20)") != std::string::npos);
  CHECK_NOTHROW(run(with(with(inflight, "nop 15", "nop 16"), "nop 18", "nop 19")));
  // The other plane of the slice has its own weights.
  sim::SimError g = expect_error(with(with(inflight, "nop 15", "nop 16"), "nop 18\n    abc.i8 p0", "nop 19\n    abc.i8 p1"), "abc-no-weights");
  CHECK(g.where().cycle == 20);
}

TEST_CASE("rules: acc of a row with an abc in flight is acc-in-flight") {
  // iw @0 lands 20; x at MXM_W on 20 (read @16 from MEM_W43); abc @20 lands 44 (latency 24).
  const std::string src = R"(
.config tsp-v1
.chips 1
.chip 0
.queue MEM_W43
    nop 16
    read 0, W0
.queue MXM_W.0
    iw.i8 p0
    nop 19
    abc.i8 p0, W0, r7
    nop 22
    acc.i32 p0, r7 -> E0
)";
  sim::SimError e = expect_error(src, "acc-in-flight");
  CHECK(e.where().cycle == 43);
  CHECK(e.where().instr_text == "acc.i32 p0, r7 -> E0");
  CHECK(std::string(e.what()).find("lands only on cycle 44") != std::string::npos);
  CHECK_NOTHROW(run(with(src, "nop 22", "nop 23")));
  CHECK_NOTHROW(run(with(src, "acc.i32 p0, r7", "acc.i32 p0, r8")));
}

TEST_CASE("rules: a queue parked on sync with no later notify is sync-never-released") {
  const std::string src = R"(
.config tsp-v1
.chips 1
.chip 0
.queue VXM.3
    nop 4
    notify
.queue SXM_E.1
    nop 5
    sync
    ifetch 1
)";
  sim::SimError e = expect_error(src, "sync-never-released");
  CHECK(e.where().slice == "SXM_E");
  CHECK(e.where().queue == 1);
  CHECK(e.where().cycle == 5);
  CHECK(e.where().instr_index == 1);
  CHECK(e.where().instr_text == "sync");
  // Parked at 4 (same cycle as the notify): released, resumes at 4 + 2.
  sim::SimOptions opt;
  opt.record_trace = true;
  auto cfg = default_chip_config();
  sim::SimResult r = sim::simulate(assemble(with(src, "nop 5", "nop 4"), "s.s", *cfg), *cfg, opt);
  REQUIRE(r.trace.size() == 2);
  CHECK(r.trace[1].op == Opcode::Ifetch);
  CHECK(r.trace[1].issue == 6);
}

TEST_CASE("rules: recv with nothing arrived is recv-no-send") {
  const std::string src = R"(
.config tsp-v1
.chips 2
.link 0:0 1:0
.chip 1
.queue C2C.0
    nop 100
    recv l0 -> W0
)";
  sim::SimError e = expect_error(src, "recv-no-send");
  CHECK(e.where().chip == 1);
  CHECK(e.where().cycle == 100);
  CHECK(e.where().instr_text == "recv l0 -> W0");
}

TEST_CASE("rules: errors name the assembly line when a SourceMap is given") {
  const std::string src = ".config tsp-v1\n.chips 1\n.chip 0\n.queue MEM_E0\n    read 0, E0\n    nop 1\n    write E0, 5\n    read 5, E1\n";
  auto cfg = default_chip_config();
  SourceMap map;
  Program p = assemble(src, "hazard.s", *cfg, &map);
  sim::SimOptions opt;
  opt.source_map = &map;
  try {
    sim::simulate(p, *cfg, opt);
    FAIL("expected sram-hazard");
  } catch (const sim::SimError& e) {
    CHECK(e.where().source == "hazard.s:8");
    CHECK(std::string(e.what()).find("hazard.s:8: ") != std::string::npos);
  }
}
