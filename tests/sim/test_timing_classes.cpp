// Timing conformance: for every scheduling class of isa/sched_classes.def with a data consumer, a
// small program issues the consumer exactly `latency` cycles after the producer (must run) and one
// cycle earlier (must fail with the named rule). Classes with occupancy > 1 are issued twice on one
// resource occupancy-1 cycles apart ("unit-busy") and occupancy apart (runs). The class list comes
// from the table itself: a class that is neither probed nor listed as untestable fails the test.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <functional>
#include <set>

#include "isa/asm.h"
#include "sim/simulator.h"

using namespace lpu;

namespace {

// Builds a program in which the consumer issues `off` cycles after the cycle the class's latency
// allows (off = 0: exactly on time; off = -1: one cycle early).
using Builder = std::function<std::string(const ChipConfig& cfg, int off)>;

struct Probe {
  SchedClass cls;
  const char* rule;           // rule id expected for off = -1
  bool timing_mode_too;       // false where the rule is checked in functional mode only (documented)
  Builder build;
};

struct Untestable {
  SchedClass cls;
  const char* reason;
};

uint32_t lat(const ChipConfig& cfg, SchedClass c) { return cfg.timing[static_cast<int>(c)].latency; }
uint32_t pos(const ChipConfig& cfg, const char* slice) {
  const int i = cfg.slice_index(slice);
  REQUIRE(i >= 0);
  return cfg.slices[i].position;
}
uint32_t send_latency(const ChipConfig& cfg) {
  Instr s = make_instr(Opcode::Send);
  return instr_timing(cfg, s).latency;
}

// "nop n" lines that move a queue's cursor from `from` to `to` (nothing if equal).
std::string pad(uint64_t from, uint64_t to) {
  REQUIRE(to >= from);
  return to > from ? fmt::format("    nop {}\n", to - from) : "";
}

// A VXM-class probe: an f16 pair (E0, E1) meets the VXM on cycle 4 (MEM_W0 at 45 reads E0 on 1,
// MEM_W1 at 44 reads E1 on 0: 1 + 2 + 1 = 0 + 2 + 2 = 4); `op` issues on VXM.0 on 4; its result is
// on `dst` at 46 on 4 + latency, where VXM.1 reads it with a mov.
Builder vxm_probe(SchedClass cls, const std::string& op, const std::string& consumer) {
  return [=](const ChipConfig& cfg, int off) {
    const uint64_t c = 4 + lat(cfg, cls) + off;
    return fmt::format(
        ".queue MEM_W0\n    nop 1\n    read 0, E0\n.queue MEM_W1\n    read 0, E1\n"
        ".queue VXM.0\n    nop 4\n    {}\n.queue VXM.1\n{}    {}\n",
        op, pad(0, c), consumer);
  };
}

// An SXM-class probe on SXM_W (1): MEM_W43 (2) reads onto W0 on 0 (at 1 on 0 + 2 + 1 = 3); `op`
// issues on 3; its result on E0 reaches MEM_W43 (2) one cycle after it appears at 1, and is written
// there. `identity_map` adds map 0 (lane i <- lane i) for permute.
Builder sxm_probe(SchedClass cls, const std::string& op, bool identity_map) {
  return [=](const ChipConfig& cfg, int off) {
    std::string s;
    if (identity_map) {
      s = ".map 0";
      for (uint32_t i = 0; i < cfg.vector_bytes(); ++i) s += fmt::format(" {}", i);
      s += "\n";
    }
    const uint64_t w = 3 + lat(cfg, cls) + 1 + off;
    return s + fmt::format(".queue MEM_W43\n    read 0, W0\n{}    write E0, 1\n.queue SXM_W\n    nop 3\n    {}\n",
                           pad(1, w), op);
  };
}

const std::vector<Probe>& probes() {
  static const std::vector<Probe> p = {
      // sync: the notify on VXM.1 issues on 4; VXM.0 resumes on 4 + latency(icu_sync) (2 -> 6) and
      // reads E0 there. MEM_W0 (45) reads onto E0 on r: at 46 on r + 3. With r = 3 - off the value
      // is at the VXM on 6 - off: on time for off = 0, one cycle after the resumed read for off = -1.
      {SchedClass::IcuSync, "stream-empty-read", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t resume = 4 + lat(cfg, SchedClass::IcuSync);
         const uint64_t r = resume - 3 - off;
         return fmt::format(".queue MEM_W0\n{}    read 0, E0\n.queue VXM.0\n    sync\n    mov.i8 E0 -> E1\n"
                            ".queue VXM.1\n    nop 4\n    notify\n",
                            pad(0, r));
       }},
      // read on MEM_W0 (45) on 0: on E0 at 45 on 0 + 2, at the VXM (46) on 3; mov there.
      {SchedClass::MemRead, "stream-empty-read", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t c = lat(cfg, SchedClass::MemRead) + (pos(cfg, "VXM") - pos(cfg, "MEM_W0")) + off;
         return fmt::format(".queue MEM_W0\n    read 0, E0\n.queue VXM.0\n{}    mov.i8 E0 -> E1\n", pad(0, c));
       }},
      // MEM_W1 (44) reads onto E0 on 0: at MEM_W0 (45) on 0 + 2 + 1 = 3. MEM_W0 writes it to
      // address 7 on 3 (lands 3 + 2 = 5) and reads address 7 back on 5.
      {SchedClass::MemWrite, "sram-hazard", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t w = lat(cfg, SchedClass::MemRead) + 1;
         const uint64_t r = w + lat(cfg, SchedClass::MemWrite) + off;
         return fmt::format(".queue MEM_W1\n    read 0, E0\n.queue MEM_W0\n{}    write E0, 7\n{}    read 7, E2\n",
                            pad(0, w), pad(w + 1, r));
       }},
      // The int16 index pair E0/E1 meets MEM_W0 (45) on 4 (MEM_W1 at 44 reads E0 on 1, MEM_W2 at
      // 43 reads E1 on 0). gather on 4: on E2 at 45 on 4 + 3 = 7, at the VXM (46) on 8.
      {SchedClass::MemGather, "stream-empty-read", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t c = 4 + lat(cfg, SchedClass::MemGather) + 1 + off;
         return fmt::format(".queue MEM_W1\n    nop 1\n    read 0, E0\n.queue MEM_W2\n    read 0, E1\n"
                            ".queue MEM_W0\n    nop 4\n    gather E0, 0 -> E2\n.queue VXM.0\n{}    mov.i8 E2 -> E3\n",
                            pad(0, c));
       }},
      // Index pair E0/E1 and data E4 meet MEM_W0 (45) on 5 (MEM_W1/W2/W3 at 44/43/42 read on 2/1/0).
      // scatter on 5 writes address 0 + idx (idx = 0: unwritten SRAM is zero); lands 5 + 3 = 8;
      // MEM_W0 reads address 0 back on 8. Functional mode only: lane addresses are data
      // (sim/units/mem.cpp checks their hazards in functional mode).
      {SchedClass::MemScatter, "sram-hazard", false,
       [](const ChipConfig& cfg, int off) {
         const uint64_t r = 5 + lat(cfg, SchedClass::MemScatter) + off;
         return fmt::format(".queue MEM_W1\n    nop 2\n    read 0, E0\n.queue MEM_W2\n    nop 1\n    read 0, E1\n"
                            ".queue MEM_W3\n    read 0, E4\n.queue MEM_W0\n    nop 5\n    scatter E4, E0, 0\n{}    read 0, E8\n",
                            pad(6, r));
       }},
      // VXM classes: producer on 4, consumer on 4 + latency (alu 3, mul 4, trans 8, conv 3).
      {SchedClass::VxmAlu, "stream-empty-read", true, vxm_probe(SchedClass::VxmAlu, "add.f16 E0, E0 -> E2", "mov.f16 E2 -> E4")},
      {SchedClass::VxmMul, "stream-empty-read", true, vxm_probe(SchedClass::VxmMul, "mul.f16 E0, E0 -> E2", "mov.f16 E2 -> E4")},
      {SchedClass::VxmTrans, "stream-empty-read", true, vxm_probe(SchedClass::VxmTrans, "exp.f16 E0 -> E2", "mov.f16 E2 -> E4")},
      {SchedClass::VxmConv, "stream-empty-read", true, vxm_probe(SchedClass::VxmConv, "cvt.f16 E0 -> .f32 E4", "mov.f32 E4 -> E8")},
      // iw on MXM_W (0) on 0 lands on 20; MEM_W43 (2) reads x onto W0 on 16 + off: at 0 on 20 + off,
      // where abc reads it.
      {SchedClass::MxmIw, "abc-no-weights", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t a = lat(cfg, SchedClass::MxmIw) + off;
         const uint64_t hops = pos(cfg, "MEM_W43") - pos(cfg, "MXM_W");
         return fmt::format(".queue MEM_W43\n{}    read 0, W0\n.queue MXM_W\n    iw.i8 p0\n{}    abc.i8 p0, W0, r0\n",
                            pad(0, a - lat(cfg, SchedClass::MemRead) - hops), pad(1, a));
       }},
      // MEM_W43 (2) reads onto W0 on 0: at 2 on 2, at MXM_W (0) on 4; lw on 4 lands on 4 + 2 = 6;
      // the iw that installs it may issue on 6 (a lw still in flight at an iw is "lw-in-flight").
      {SchedClass::MxmLw, "lw-in-flight", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t l = lat(cfg, SchedClass::MemRead) + pos(cfg, "MEM_W43") - pos(cfg, "MXM_W");
         const uint64_t i = l + lat(cfg, SchedClass::MxmLw) + off;
         return fmt::format(".queue MEM_W43\n    read 0, W0\n.queue MXM_W\n{}    lw.i8 p0, W0, r0\n"
                            ".queue MXM_W.1\n{}    iw.i8 p0\n",
                            pad(0, l), pad(0, i));
       }},
      // iw on 0 (lands 20), abc on 20 (x read on 16); acc[0] lands on 20 + 24 = 44; acc on 44.
      {SchedClass::MxmAbc, "acc-in-flight", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t a = lat(cfg, SchedClass::MxmIw);
         const uint64_t hops = pos(cfg, "MEM_W43") - pos(cfg, "MXM_W");
         const uint64_t c = a + lat(cfg, SchedClass::MxmAbc) + off;
         return fmt::format(".queue MEM_W43\n{}    read 0, W0\n.queue MXM_W\n    iw.i8 p0\n{}    abc.i8 p0, W0, r0\n"
                            ".queue MXM_W.1\n{}    acc.i32 p0, r0 -> E0\n",
                            pad(0, a - lat(cfg, SchedClass::MemRead) - hops), pad(1, a), pad(0, c));
       }},
      // As above, acc on 44: E0..E3 at MXM_W (0) on 44 + 2 = 46, at MEM_W43 (2) on 48: written there.
      {SchedClass::MxmAcc, "stream-empty-read", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t a = lat(cfg, SchedClass::MxmIw);
         const uint64_t hops = pos(cfg, "MEM_W43") - pos(cfg, "MXM_W");
         const uint64_t r = a - lat(cfg, SchedClass::MemRead) - hops;
         const uint64_t c = a + lat(cfg, SchedClass::MxmAbc);
         const uint64_t w = c + lat(cfg, SchedClass::MxmAcc) + hops + off;
         return fmt::format(".queue MEM_W43\n{}    read 0, W0\n{}    write E0, 5\n.queue MXM_W\n    iw.i8 p0\n{}    abc.i8 p0, W0, r0\n"
                            ".queue MXM_W.1\n{}    acc.i32 p0, r0 -> E0\n",
                            pad(0, r), pad(r + 1, w), pad(1, a), pad(0, c));
       }},
      // SXM_W (1): MEM_W43 (2) reads onto W0 on 0: at 1 on 0 + 2 + 1 = 3. The SXM op issues on 3; its
      // result is on E0 at 1 on 3 + latency (shift 3 -> 6, permute 4 -> 7) and at MEM_W43 (2) one
      // cycle later, where it is written.
      {SchedClass::SxmShift, "stream-empty-read", true, sxm_probe(SchedClass::SxmShift, "shift.i8 W0, 1 -> E0", false)},
      {SchedClass::SxmPermute, "stream-empty-read", true, sxm_probe(SchedClass::SxmPermute, "permute.i8 W0, m0 -> E0", true)},
      // transpose sg16: MEM_W(43-k) (position 2+k) reads onto W<k> on 15-k: at SXM_W (1) on
      // 15-k + 2 + 1+k = 18 for all k. transpose on 18: E0..E15 at 1 on 18 + 20 = 38, at MEM_W43 (2)
      // on 39, where E0 is written.
      {SchedClass::SxmTranspose, "stream-empty-read", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t t = 18;
         const uint64_t w = t + lat(cfg, SchedClass::SxmTranspose) + 1 + off;
         std::string s = fmt::format(".queue SXM_W\n    nop {}\n    transpose.i8 W0 -> E0\n", t);
         for (int k = 0; k < 16; ++k) {
           const uint64_t r = t - lat(cfg, SchedClass::MemRead) - (1 + k);
           s += fmt::format(".queue MEM_W{}\n{}    read 0, W{}\n", 43 - k, pad(0, r), k);
           if (k == 0) s += pad(r + 1, w) + "    write E0, 1\n";
         }
         return s;
       }},
      // chip 0: MEM_E43 (90) reads onto E0 on 0: at the C2C (93) on 0 + 2 + 3 = 5; send on 5 arrives
      // at chip 1 on 5 + (4 + 180 wire + 21 serialization) = 210, where chip 1 receives it.
      {SchedClass::C2cSend, "recv-no-send", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t s = lat(cfg, SchedClass::MemRead) + (pos(cfg, "C2C") - pos(cfg, "MEM_E43"));
         return fmt::format(".chips 2\n.link 0:0 1:0\n.chip 0\n.queue MEM_E43\n    read 0, E0\n.queue C2C\n{}    send l0, E0\n"
                            ".chip 1\n.queue C2C\n{}    recv l0 -> W0\n",
                            pad(0, s), pad(0, s + send_latency(cfg) + off));
       }},
      // As above; recv on 210 puts the vector on W0 at 93 on 212, at MEM_E43 (90) on 215: written there.
      {SchedClass::C2cRecv, "stream-empty-read", true,
       [](const ChipConfig& cfg, int off) {
         const uint64_t hops = pos(cfg, "C2C") - pos(cfg, "MEM_E43");
         const uint64_t s = lat(cfg, SchedClass::MemRead) + hops;
         const uint64_t rv = s + send_latency(cfg);
         return fmt::format(".chips 2\n.link 0:0 1:0\n.chip 0\n.queue MEM_E43\n    read 0, E0\n.queue C2C\n{}    send l0, E0\n"
                            ".chip 1\n.queue C2C\n{}    recv l0 -> W0\n.queue MEM_E43\n{}    write W0, 0\n",
                            pad(0, s), pad(0, rv), pad(0, rv + lat(cfg, SchedClass::C2cRecv) + hops + off));
       }},
  };
  return p;
}

const std::vector<Untestable>& untestable() {
  static const std::vector<Untestable> u = {
      {SchedClass::IcuNop, "nop has no result; its length is covered by every probe's padding"},
      {SchedClass::IcuCtrl, "repeat/notify/ifetch/config produce no data; notify's release is timed by icu_sync (probed)"},
      {SchedClass::C2cDeskew, "deskew has no data effect (modelled as a link control op)"},
  };
  return u;
}

// Runs `text` (assembled against cfg) in the given mode; returns the rule id ("" if it ran).
std::string run_rule(const std::string& text, const ChipConfig& cfg, sim::Mode mode) {
  const Program p = assemble(text, "<probe>", cfg);
  sim::SimOptions o;
  o.mode = mode;
  try {
    sim::simulate(p, cfg, o);
  } catch (const sim::SimError& e) {
    return e.rule();
  }
  return "";
}

// Occupancy probes: the second instruction on the same resource issues `gap` cycles after the
// first; gap = occupancy - 1 must fail with "unit-busy", gap = occupancy must run.
struct OccProbe {
  SchedClass cls;
  const char* what;
  std::function<uint32_t(const ChipConfig&)> occupancy;
  std::function<std::string(const ChipConfig&, uint32_t gap)> build;
};

const std::vector<OccProbe>& occ_probes() {
  static const std::vector<OccProbe> p = {
      // fp16 abc: occupancy 1 x fp16_slowdown (4). iw.f16 on 0 lands 20. MEM_W43 (2) and MEM_W42 (3)
      // read the f16 pair W0/W1 every cycle so it is at MXM_W (0) on 20..30 (reads on 16.. and 15..).
      // abc.f16 on MXM_W.0 on 20, a second one on the same plane from MXM_W.1 on 20 + gap.
      {SchedClass::MxmAbc, "abc.f16 on one plane",
       [](const ChipConfig& cfg) {
         Instr a = make_instr(Opcode::Abc, DType::F16);
         return instr_timing(cfg, a).occupancy;
       },
       [](const ChipConfig& cfg, uint32_t gap) {
         const uint64_t a = lat(cfg, SchedClass::MxmIw);
         const uint64_t r = lat(cfg, SchedClass::MemRead);
         return fmt::format(".queue MEM_W43\n{}    read 0, W0\n    repeat 10, 1\n.queue MEM_W42\n{}    read 0, W1\n    repeat 10, 1\n"
                            ".queue MXM_W\n    iw.f16 p0\n{}    abc.f16 p0, W0, r0\n.queue MXM_W.1\n{}    abc.f16 p0, W0, r1\n",
                            pad(0, a - r - 2), pad(0, a - r - 3), pad(1, a), pad(0, a + gap));
       }},
      // send: occupancy = serialization (21). MEM_E43 (90) reads onto E0 every cycle so a value is at
      // the C2C (93) on 5..35; C2C.0 sends on 5, C2C.1 on the same link on 5 + gap; chip 1
      // receives both.
      {SchedClass::C2cSend, "send on one link",
       [](const ChipConfig& cfg) { return instr_timing(cfg, make_instr(Opcode::Send)).occupancy; },
       [](const ChipConfig& cfg, uint32_t gap) {
         const uint64_t s = lat(cfg, SchedClass::MemRead) + (pos(cfg, "C2C") - pos(cfg, "MEM_E43"));
         const uint64_t arrive = s + send_latency(cfg);
         return fmt::format(".chips 2\n.link 0:0 1:0\n.chip 0\n.queue MEM_E43\n    read 0, E0\n    repeat 40, 1\n"
                            ".queue C2C\n{}    send l0, E0\n.queue C2C.1\n{}    send l0, E0\n"
                            ".chip 1\n.queue C2C\n{}    recv l0 -> W0\n{}    recv l0 -> W0\n",
                            pad(0, s), pad(0, s + gap), pad(0, arrive), pad(arrive + 1, arrive + gap));
       }},
  };
  return p;
}

}  // namespace

TEST_CASE("timing: every scheduling class is probed or listed as untestable with a reason", "[timing]") {
  std::set<int> probed, skipped;
  for (const Probe& p : probes()) {
    INFO(sched_info(p.cls).key);
    CHECK(probed.insert(static_cast<int>(p.cls)).second);
  }
  for (const Untestable& u : untestable()) {
    INFO(sched_info(u.cls).key);
    CHECK(std::string(u.reason).size() > 10);
    CHECK(skipped.insert(static_cast<int>(u.cls)).second);
    CHECK(probed.count(static_cast<int>(u.cls)) == 0);
  }
  for (int c = 0; c < kNumSchedClasses; ++c) {
    INFO("class " << sched_info(static_cast<SchedClass>(c)).key << " is neither probed nor listed as untestable");
    CHECK(probed.count(c) + skipped.count(c) == 1);
  }
}

TEST_CASE("timing: consumers at producer + latency run and one cycle earlier fail with the rule", "[timing]") {
  const auto cfg = default_chip_config();
  for (const Probe& p : probes()) {
    const std::string key(sched_info(p.cls).key);
    for (sim::Mode mode : {sim::Mode::Functional, sim::Mode::Timing}) {
      if (mode == sim::Mode::Timing && !p.timing_mode_too) continue;
      const char* mname = mode == sim::Mode::Functional ? "functional" : "timing";
      const std::string on_time = p.build(*cfg, 0), early = p.build(*cfg, -1);
      {
        INFO(key << " (" << mname << "), consumer at producer + latency:\n" << on_time);
        CHECK(run_rule(on_time, *cfg, mode) == "");
      }
      {
        INFO(key << " (" << mname << "), consumer at producer + latency - 1:\n" << early);
        CHECK(run_rule(early, *cfg, mode) == p.rule);
      }
    }
  }
}

TEST_CASE("timing: every class with occupancy > 1 is probed and a busy resource is refused", "[timing]") {
  const auto cfg = default_chip_config();
  // Which classes can take more than one cycle of their resource on this config (any opcode, any dtype)?
  std::set<int> multi;
  for (int o = 0; o < kNumOpcodes; ++o) {
    const OpInfo& oi = op_info(static_cast<Opcode>(o));
    for (int d = 0; d < kNumDTypes; ++d) {
      Instr in = make_instr(oi.op);
      if (oi.used_fields & (1u << static_cast<int>(Field::DType))) in.set(Field::DType, static_cast<uint32_t>(d));
      if (instr_timing(*cfg, in).occupancy > 1) multi.insert(static_cast<int>(oi.sched));
    }
  }
  std::set<int> covered;
  for (const OccProbe& p : occ_probes()) covered.insert(static_cast<int>(p.cls));
  for (int c : multi) {
    INFO("class " << sched_info(static_cast<SchedClass>(c)).key << " has occupancy > 1 but no occupancy probe");
    CHECK(covered.count(c) == 1);
  }
  for (const OccProbe& p : occ_probes()) {
    const uint32_t occ = p.occupancy(*cfg);
    REQUIRE(occ > 1);
    for (sim::Mode mode : {sim::Mode::Functional, sim::Mode::Timing}) {
      const std::string busy = p.build(*cfg, occ - 1), free = p.build(*cfg, occ);
      {
        INFO(p.what << ": second issue " << occ - 1 << " cycles after the first (occupancy " << occ << "):\n" << busy);
        CHECK(run_rule(busy, *cfg, mode) == "unit-busy");
      }
      {
        INFO(p.what << ": second issue " << occ << " cycles after the first:\n" << free);
        CHECK(run_rule(free, *cfg, mode) == "");
      }
    }
  }
}
