// The composition's start rule (system/start_rule.h): a program may start on a chip the first cycle
// after the previous program's end at which none of its stream values takes a diagonal that a
// value of the previous one still holds. Checked against SystemC on the concatenated programs:
// at the rule's gap they run, one cycle earlier they collide (the rule is exact, not a bound).
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "system/piece_runner.h"
#include "system/pipeline_serving.h"
#include "system/start_rule.h"

using namespace lpu;

namespace {

// One chip: `first` puts one value on stream <dir>0 from MEM slice `a` late in the program (after a
// nop); `second` puts two values on <dir>0 from slice `b` on its first cycles. Predicted cycles:
// the last `read`'s issue + its latency + the stagger tail (docs/architecture.md "End of program").
uint64_t ends_after_read(const ChipConfig& cfg, uint64_t last_issue) {
  return last_issue + instr_timing(cfg, make_instr(Opcode::Read)).latency + cfg.stagger_tail();
}
Program one_value(const ChipConfig& cfg, const std::string& a, char dir) {
  return assemble(fmt::format(".config tsp-v1\n.chips 1\n.predicted_cycles {}\n.chip 0\n.queue {}\n    nop 5\n    read 0, {}0\n",
                              ends_after_read(cfg, 5), a, dir),
                  "first.s", cfg);
}
Program two_values(const ChipConfig& cfg, const std::string& b, char dir) {
  return assemble(fmt::format(".config tsp-v1\n.chips 1\n.predicted_cycles {}\n.chip 0\n.queue {}\n    read 0, {}0\n    read 1, {}0\n",
                              ends_after_read(cfg, 1), b, dir, dir),
                  "second.s", cfg);
}

// Whether `second` started `gap` cycles after `first` ends simulates (a stream collision: no).
bool runs_at(const system::PieceRunner& runner, const system::PieceRun& first, const system::PieceRun& second,
             uint64_t gap, const ChipConfig& cfg) {
  std::vector<system::TimelineEntry> tl(2);
  tl[0] = {first.hash, 0, {0}};
  tl[1] = {second.hash, first.cycles + gap, {0}};
  sim::SimOptions opt;
  opt.mode = sim::Mode::Timing;
  try {
    sim::simulate(system::concatenate(tl, runner, 1, cfg), cfg, opt);
  } catch (const sim::SimError& e) {
    CHECK(e.rule() == "stream-collision");
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("start rule: the gap it gives runs, one cycle less collides", "[llm]") {
  auto cfg = default_chip_config();
  const uint64_t drain = system::stream_drain(*cfg);
  for (char dir : {'E', 'W'}) {
    // The first program's value: from the MEM slice nearest the edge it moves away from, so it
    // stays on the chip long after the program ends.
    std::string a;
    uint32_t best = 0;
    for (const SliceSpec& s : cfg->slices) {
      if (s.kind != SliceKind::MEM) continue;
      const uint32_t room = dir == 'E' ? cfg->num_positions() - 1 - s.position : s.position;
      if (room > best) best = room, a = s.name;
    }
    INFO("dir " << dir << ", first program from " << a);
    system::PieceRunner runner(*cfg);
    runner.keep_programs(true);
    const system::PieceRun& first = runner.run_program(one_value(*cfg, a, dir), "first");
    int positive = 0;
    for (const SliceSpec& s : cfg->slices) {
      if (s.kind != SliceKind::MEM) continue;
      const system::PieceRun& second = runner.run_program(two_values(*cfg, s.name, dir), "second " + s.name);
      const uint64_t g = system::start_gap(*cfg, first.streams.at(0), second.streams.at(0));
      INFO("second program from " << s.name << ": start gap " << g);
      CHECK(g <= drain);
      CHECK(runs_at(runner, first, second, g, *cfg));
      if (g > 0) {
        ++positive;
        CHECK_FALSE(runs_at(runner, first, second, g - 1, *cfg));
      }
    }
    CHECK(positive >= 2);  // the two values of `second` close gaps 0 and 1 for some slices
  }
}

TEST_CASE("start rule: ChipClock waits for the chip whose streams are in the way", "[llm]") {
  auto cfg = default_chip_config();
  system::PieceRunner runner(*cfg);
  const system::PieceRun& first = runner.run_program(one_value(*cfg, "MEM_W5", 'E'), "first");
  // Find a second program that collides at gap 0 with the first.
  const system::PieceRun* second = nullptr;
  for (const SliceSpec& s : cfg->slices) {
    if (s.kind != SliceKind::MEM) continue;
    const system::PieceRun& p = runner.run_program(two_values(*cfg, s.name, 'E'), "second " + s.name);
    if (!system::streams_clear(first.streams.at(0), p.streams.at(0), 0)) {
      second = &p;
      break;
    }
  }
  REQUIRE(second);
  const uint64_t g = system::start_gap(*cfg, first.streams.at(0), second->streams.at(0));
  REQUIRE(g > 0);
  system::ChipClock clock(*cfg);
  // Chip 3 ran `first`; chip 4 ran it 100 cycles earlier, so its values are gone by then.
  clock.place({{3, first.cycles, &first.streams.at(0)}}, 100);
  clock.place({{4, first.cycles, &first.streams.at(0)}}, 0);
  const uint64_t end3 = 100 + first.cycles;
  CHECK(clock.earliest({{4, second->cycles, &second->streams.at(0)}}, end3) == end3);
  CHECK(clock.earliest({{3, second->cycles, &second->streams.at(0)}}, 0) == end3 + g);
  CHECK(clock.earliest({{3, second->cycles, &second->streams.at(0)}, {4, second->cycles, &second->streams.at(0)}}, 0) ==
        end3 + g);
  // A chip with nothing placed imposes nothing; a run without its envelope is refused.
  CHECK(clock.earliest({{7, second->cycles, &second->streams.at(0)}}, 5) == 5);
  CHECK_THROWS_AS(clock.earliest({{3, second->cycles, nullptr}}, 0), std::logic_error);
}

TEST_CASE("start rule: groups in flight are shifted by the least span whose streams are clear", "[llm]") {
  auto cfg = default_chip_config();
  system::PieceRunner runner(*cfg);
  runner.keep_programs(true);
  // One chip runs `early` (two values on its first cycles) then `late` (one value near its end);
  // the next group's `early` must clear `late`'s values: pick the slice whose gap is the largest.
  const system::PieceRun& late = runner.run_program(one_value(*cfg, "MEM_W5", 'E'), "late");
  const system::PieceRun* early = nullptr;
  uint64_t g = 0;
  for (const SliceSpec& s : cfg->slices) {
    if (s.kind != SliceKind::MEM) continue;
    const system::PieceRun& p = runner.run_program(two_values(*cfg, s.name, 'E'), "early " + s.name);
    const uint64_t pg = system::start_gap(*cfg, late.streams.at(0), p.streams.at(0));
    if (pg > g) g = pg, early = &p;
  }
  REQUIRE(early);
  REQUIRE(g > 0);
  system::StepResult st;
  for (const system::PieceRun* p : {early, &late}) {
    system::PieceUse u;
    u.hash = p->hash;
    u.cycles = p->cycles;
    u.streams = p->streams;
    st.pieces.push_back(u);
  }
  const uint64_t second = early->cycles + system::start_gap(*cfg, early->streams.at(0), late.streams.at(0));
  st.timeline = {{early->hash, 0, {0}}, {late.hash, second, {0}}};
  st.cycles = second + late.cycles;
  const uint64_t shift = system::busiest_chip_span(st, *cfg);
  CHECK(shift == st.cycles + g);  // the span, then the start rule's gap from `late` to `early`
  // Two groups at that shift simulate; one cycle closer, the second group's values collide.
  sim::SimOptions opt;
  opt.mode = sim::Mode::Timing;
  CHECK(sim::simulate(system::concatenate(system::pipelined_timeline(st, 2, shift), runner, 1, *cfg), *cfg, opt).cycles ==
        shift + st.cycles);
  try {
    sim::simulate(system::concatenate(system::pipelined_timeline(st, 2, shift - 1), runner, 1, *cfg), *cfg, opt);
    FAIL("one cycle closer should collide");
  } catch (const sim::SimError& e) {
    CHECK(e.rule() == "stream-collision");
  }
}
