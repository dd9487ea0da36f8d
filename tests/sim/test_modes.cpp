// Timing mode vs functional mode: the same program gives the same cycles, instruction counts,
// per-slice stats, energy events and trace in both modes (timing mode only skips the values), and
// simulate() can run several different simulations in one process.
#include <catch2/catch.hpp>

#include "tests/support/files.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;

namespace {

void same_in_both_modes(const std::string& path) {
  auto cfg = default_chip_config();
  Program p = assemble(read_text(path), path, *cfg);
  sim::SimOptions f, t;
  f.mode = sim::Mode::Functional;
  t.mode = sim::Mode::Timing;
  f.record_trace = t.record_trace = true;
  const sim::SimResult rf = sim::simulate(p, *cfg, f);
  const sim::SimResult rt = sim::simulate(p, *cfg, t);
  INFO(path);
  CHECK(rf.cycles > 0);
  CHECK(rf.cycles == rt.cycles);
  CHECK(rf.instructions == rt.instructions);
  REQUIRE(rf.chips.size() == rt.chips.size());
  for (size_t c = 0; c < rf.chips.size(); ++c) {
    CHECK(rf.chips[c].events == rt.chips[c].events);
    CHECK(rf.chips[c].sram_vectors_used == rt.chips[c].sram_vectors_used);
    REQUIRE(rf.chips[c].slices.size() == rt.chips[c].slices.size());
    for (size_t s = 0; s < rf.chips[c].slices.size(); ++s) {
      CHECK(rf.chips[c].slices[s].instructions == rt.chips[c].slices[s].instructions);
      CHECK(rf.chips[c].slices[s].busy_cycles == rt.chips[c].slices[s].busy_cycles);
    }
  }
  REQUIRE(rf.trace.size() == rt.trace.size());
  size_t differ = 0;
  for (size_t i = 0; i < rf.trace.size(); ++i)
    differ += rf.trace[i].issue != rt.trace[i].issue || rf.trace[i].slice != rt.trace[i].slice ||
              rf.trace[i].queue != rt.trace[i].queue || rf.trace[i].instr_index != rt.trace[i].instr_index;
  CHECK(differ == 0);
  CHECK(rt.outputs.empty());
  if (p.predicted_cycles) CHECK(rf.cycles == p.predicted_cycles);
}

}  // namespace

TEST_CASE("modes: sample programs give identical timing and events in both modes") {
  for (const char* name : {"add_vectors.s", "matvec_i8.s", "sxm_sync.s", "two_chips.s"})
    same_in_both_modes(std::string(LPU_SOURCE_DIR) + "/tests/data/asm/" + name);
}

TEST_CASE("modes: the full-chip busy program gives identical timing and events in both modes") {
  same_in_both_modes(std::string(LPU_SOURCE_DIR) + "/workloads/asm/full_busy.s");
}

TEST_CASE("modes: a rule broken in functional mode is broken identically in timing mode") {
  auto cfg = default_chip_config();
  const char* src = ".chips 1\n.chip 0\n.queue MEM_W5\n    read 0, E0\n.queue MEM_W4\n    nop 1\n    read 0, E0\n";
  Program p = assemble(src, "c.s", *cfg);
  std::string msg[2];
  for (int m = 0; m < 2; ++m) {
    sim::SimOptions o;
    o.mode = m ? sim::Mode::Timing : sim::Mode::Functional;
    try {
      sim::simulate(p, *cfg, o);
    } catch (const sim::SimError& e) {
      msg[m] = e.what();
    }
  }
  CHECK(!msg[0].empty());
  CHECK(msg[0] == msg[1]);
}

TEST_CASE("modes: several different simulations run in one process, each correct and repeatable") {
  auto cfg = default_chip_config();
  const std::string dir = std::string(LPU_SOURCE_DIR) + "/tests/data/asm/";
  Program add = assemble(read_text(dir + "add_vectors.s"), "add_vectors.s", *cfg);
  Program mv = assemble(read_text(dir + "matvec_i8.s"), "matvec_i8.s", *cfg);
  sim::SimOptions o;
  std::vector<uint8_t> a(320, 3), b(320, 4);
  o.inputs = {{"a", a}, {"b", b}};
  const sim::SimResult r1 = sim::simulate(add, *cfg, o);
  sim::SimOptions o2;
  o2.inputs = {{"x", std::vector<uint8_t>(320, 1)}};
  const sim::SimResult r2 = sim::simulate(mv, *cfg, o2);
  const sim::SimResult r3 = sim::simulate(add, *cfg, o);
  CHECK(r1.cycles == add.predicted_cycles);
  CHECK(r2.cycles == mv.predicted_cycles);
  CHECK(r1.outputs.at("c") == std::vector<uint8_t>(320, 7));
  CHECK(r3.outputs == r1.outputs);
  CHECK(r3.cycles == r1.cycles);
  CHECK(r3.chips[0].events == r1.chips[0].events);
  // A simulation that fails leaves the next one unaffected.
  Program bad = assemble(".chips 1\n.chip 0\n.queue VXM.0\n    mov.i8 E0 -> E1\n", "bad.s", *cfg);
  CHECK_THROWS_AS(sim::simulate(bad, *cfg, sim::SimOptions{}), sim::SimError);
  const sim::SimResult r4 = sim::simulate(mv, *cfg, o2);
  CHECK(r4.outputs == r2.outputs);
}

// Random programs (fixed seed) over every opcode: whatever happens -- a run, a SimError, an
// InputError -- happens identically in both modes. Rules that depend on gather/scatter lane
// addresses are checked in functional mode only (documented in sim/units/mem.cpp), so programs
// ending in them are skipped.
TEST_CASE("modes: random programs end the same way in both modes") {
  auto cfg = default_chip_config();
  std::mt19937_64 rng(12345);
  const Opcode easy[] = {Opcode::Read, Opcode::Nop, Opcode::Notify, Opcode::Sync, Opcode::Repeat,
                         Opcode::InstW, Opcode::Acc, Opcode::Ifetch, Opcode::Deskew};
  auto outcome = [&](const Program& p, sim::Mode m, bool& lane_rule) {
    sim::SimOptions o;
    o.mode = m;
    try {
      const sim::SimResult r = sim::simulate(p, *cfg, o);
      std::string s = fmt::format("ok {} {}", r.cycles, r.instructions);
      for (const auto& c : r.chips)
        for (uint64_t e : c.events) s += " " + std::to_string(e);
      return s;
    } catch (const sim::SimError& e) {
      lane_rule = lane_rule || e.rule() == "sram-range" || (e.rule() == "sram-hazard" && std::string(e.what()).find("gather") != std::string::npos);
      return std::string(e.what());
    } catch (const InputError& e) {
      return std::string("input: ") + e.what();
    }
  };
  int ran = 0, compared = 0;
  for (int it = 0; it < 150; ++it) {
    Program p;
    p.num_chips = 1 + rng() % 2;
    p.chips.resize(p.num_chips);
    if (p.num_chips == 2) p.links = {{0, 0, 1, 0}, {0, 1, 1, 1}};
    std::vector<uint16_t> map(320);
    for (auto& m : map) m = rng() % 10 == 0 ? 0xFFFF : static_cast<uint16_t>(rng() % 320);
    p.maps.push_back(map);
    for (uint32_t c = 0; c < p.num_chips; ++c) {
      std::vector<std::pair<int, int>> qs;
      for (int k = 0; k < 6; ++k) {
        const int s = static_cast<int>(rng() % cfg->slices.size());
        qs.push_back({s, static_cast<int>(rng() % cfg->slices[s].queues)});
      }
      std::sort(qs.begin(), qs.end());
      qs.erase(std::unique(qs.begin(), qs.end()), qs.end());
      for (auto [s, q] : qs) {
        QueueCode qc;
        qc.slice = static_cast<uint16_t>(s);
        qc.queue = static_cast<uint8_t>(q);
        const Unit u = slice_unit(cfg->slices[s].kind);
        const int len = static_cast<int>(rng() % 12);
        for (int i = 0; i < len; ++i) {
          for (int tries = 0; tries < 100; ++tries) {
            const Opcode op = rng() % 10 < 8 ? easy[rng() % 9] : static_cast<Opcode>(rng() % kNumOpcodes);
            const OpInfo& oi = op_info(op);
            if (oi.unit != Unit::ICU && oi.unit != u) continue;
            if (op == Opcode::Repeat && (qc.code.empty() || op_info(qc.code.back().op).unit == Unit::ICU)) continue;
            Instr in = make_instr(op);
            for (int f = 0; f < kNumFields; ++f) {
              if (!(oi.used_fields & (1u << f))) continue;
              uint32_t v = 0;
              switch (static_cast<Field>(f)) {
                case Field::DType: case Field::DType2: v = rng() % 5; break;
                case Field::Dst: case Field::SrcA: case Field::SrcB: case Field::SrcC:
                  v = static_cast<uint32_t>((rng() % 2) << 5 | (rng() % 8) * 4);
                  break;
                case Field::Addr: v = rng() % 16; break;
                case Field::Imm: v = op == Opcode::Nop ? 1 + rng() % 30 : 0; break;
                case Field::SImm: v = rng() % 600; break;
                case Field::FImm: {
                  const float x = static_cast<float>(static_cast<int>(rng() % 9) - 4) * 0.5f;
                  std::memcpy(&v, &x, 4);
                  break;
                }
                case Field::Count: case Field::Stride: v = 1 + rng() % 4; break;
                case Field::Plane: case Field::AccFlag: v = rng() % 2; break;
                case Field::Row: v = rng() % 8; break;
                case Field::Link: v = rng() % 3; break;
                default: break;
              }
              in.set(static_cast<Field>(f), v);
            }
            if (!validate_fields(in).empty()) continue;
            qc.code.push_back(in);
            break;
          }
        }
        p.chips[c].queues.push_back(qc);
      }
    }
    bool lane_rule = false;
    const std::string f = outcome(p, sim::Mode::Functional, lane_rule);
    const std::string t = outcome(p, sim::Mode::Timing, lane_rule);
    if (lane_rule) continue;
    ++compared;
    ran += f.rfind("ok", 0) == 0;
    INFO("program " << it);
    CHECK(f == t);
  }
  CHECK(compared > 100);
  CHECK(ran > 3);
}
