// Unit tests of the scheduler infrastructure: reservation table, stream-slot allocator, the
// ScheduleBuilder's read timing, and per-queue emission (nops, repeat) preserving issue cycles.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "compiler/backend/busy_table.h"
#include "compiler/backend/queue_emitter.h"
#include "compiler/backend/schedule_builder.h"
#include "compiler/backend/stream_slots.h"
#include "isa/chip_config.h"

using namespace lpu;
using namespace lpu::compiler;

TEST_CASE("schedule: busy table reserves intervals and rolls back") {
  BusyTable t(2);
  CHECK(t.free(0, 0, 1000));
  const size_t m = t.mark();
  t.take(0, 10, 4);  // cycles 10..13
  CHECK(t.free(0, 0, 10));
  CHECK_FALSE(t.free(0, 9, 2));
  CHECK_FALSE(t.free(0, 13, 1));
  CHECK(t.free(0, 14, 100));
  CHECK(t.free(1, 10, 4));  // other resource untouched
  CHECK(t.next_free(0, 11, 2) == 14);
  t.take(1, 70000, 1);      // far cycles grow the table
  CHECK_FALSE(t.free(1, 70000, 1));
  t.rollback(m);
  CHECK(t.free(0, 0, 100000));
  CHECK(t.free(1, 70000, 1));
}

TEST_CASE("schedule: busy table ranges across word boundaries match a per-cycle model") {
  // take / free / rollback work a 64-cycle word at a time: compare with a plain set of busy cycles
  // on ranges that start, end and span anywhere (deterministic pseudo-random sequence).
  BusyTable t(3);
  std::vector<std::set<uint64_t>> model(3);
  std::vector<std::pair<size_t, std::vector<std::set<uint64_t>>>> marks;
  uint64_t x = 12345;
  auto next = [&x](uint64_t n) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return (x >> 33) % n;
  };
  auto model_free = [&](int r, uint64_t a, uint64_t len) {
    for (uint64_t c = a; c < a + len; ++c)
      if (model[static_cast<size_t>(r)].count(c)) return false;
    return true;
  };
  for (int i = 0; i < 4000; ++i) {
    const int r = static_cast<int>(next(3));
    const uint64_t a = next(700), len = 1 + next(i % 7 == 0 ? 200 : 9);
    REQUIRE(t.free(r, a, len) == model_free(r, a, len));
    if (next(4) == 0) {
      marks.push_back({t.mark(), model});
    } else if (next(8) == 0 && !marks.empty()) {
      t.rollback(marks.back().first);
      model = marks.back().second;
      marks.pop_back();
    } else if (model_free(r, a, len)) {
      t.take(r, a, len);
      for (uint64_t c = a; c < a + len; ++c) model[static_cast<size_t>(r)].insert(c);
    }
  }
  for (int r = 0; r < 3; ++r)
    for (uint64_t c = 0; c < 1000; ++c) REQUIRE(t.free(r, c, 1) == model_free(r, c, 1));
}

TEST_CASE("schedule: stream slots key values by diagonal and allocate aligned groups") {
  StreamSlots s(32, 94);
  // East: a value at position 10 on cycle 20 is at position 15 on cycle 25: same diagonal.
  CHECK(s.diagonal(Dir::East, 10, 20) == s.diagonal(Dir::East, 15, 25));
  CHECK(s.diagonal(Dir::East, 10, 20) != s.diagonal(Dir::East, 10, 21));
  // West: position 40 on cycle 5 is at 30 on cycle 15.
  CHECK(s.diagonal(Dir::West, 40, 5) == s.diagonal(Dir::West, 30, 15));
  CHECK(s.time_at(Dir::West, s.diagonal(Dir::West, 40, 5), 30) == 15);
  CHECK(s.time_at(Dir::East, s.diagonal(Dir::East, 0, 3), 93) == 96);
  const uint64_t d = s.diagonal(Dir::East, 0, 100);
  CHECK(s.find_group(Dir::East, 4, d) == 0);
  s.take(Dir::East, 0, 1, d);
  CHECK(s.find_group(Dir::East, 1, d) == 1);
  CHECK(s.find_group(Dir::East, 2, d) == 2);  // base must be a multiple of the width
  CHECK(s.find_group(Dir::East, 4, d) == 4);
  CHECK(s.find_group(Dir::West, 4, d) == 0);  // directions are independent
  CHECK(s.find_group(Dir::East, 4, d + 1) == 0);
  const size_t m = s.mark();
  for (uint32_t b = 1; b < 32; ++b) s.take(Dir::East, b, 1, d);
  CHECK(s.find_group(Dir::East, 1, d) == -1);
  CHECK_THROWS_AS(s.take(Dir::East, 5, 1, d), std::logic_error);
  s.rollback(m);
  CHECK(s.find_group(Dir::East, 1, d) == 1);
}

TEST_CASE("schedule: a two-plane fetch times each read to meet at the consumer") {
  auto cfg = default_chip_config();
  ScheduleBuilder b(*cfg);
  const int w0 = cfg->slice_index("MEM_W0"), w5 = cfg->slice_index("MEM_W5");
  const int vxm = cfg->slice_index("VXM");
  const uint32_t q = b.pos(vxm);
  StreamValue v;
  // Values flow east from the west hemisphere to the VXM; arrive at cycle 30.
  REQUIRE(b.fetch({static_cast<uint16_t>(w0), static_cast<uint16_t>(w5)}, 7, q, 30, Dir::East, 0, &v));
  CHECK(v.width == 2);
  CHECK(v.base % 2 == 0);
  CHECK(v.time_at(q) == 30);
  CHECK(v.time_at(q - 1) == UINT64_MAX);
  const uint64_t lat = cfg->timing[static_cast<size_t>(SchedClass::MemRead)].latency;
  REQUIRE(b.placements().size() == 2);
  for (const Placement& p : b.placements()) {
    CHECK(p.in.op == Opcode::Read);
    CHECK(p.t + lat + (q - b.pos(p.slice)) == 30);  // issue + latency + hops = arrival
  }
  // Same diagonal, both streams taken: a second value must use the next group.
  StreamValue v2;
  REQUIRE(b.fetch({static_cast<uint16_t>(cfg->slice_index("MEM_W1")), static_cast<uint16_t>(cfg->slice_index("MEM_W2"))},
                  0, q, 30, Dir::East, 0, &v2));
  CHECK(v2.base != v.base);
  // The SRAM port of MEM_W0 is busy at the cycle of its first read: a read needing it then fails.
  const uint64_t t0 = b.placements()[0].t;
  const uint32_t dist = q - b.pos(b.placements()[0].slice);
  CHECK_FALSE(b.fetch({b.placements()[0].slice}, 1, q, t0 + lat + dist, Dir::East, 0, nullptr));
  // Upstream/direction violations and not_before are refused.
  CHECK_FALSE(b.fetch({static_cast<uint16_t>(w0)}, 0, q, 100, Dir::West, 0, nullptr));
  CHECK_FALSE(b.fetch({static_cast<uint16_t>(w0)}, 0, q, 100, Dir::East, 99, nullptr));
  // The program's end counts issue + latency (the value on the stream at its own slice), so the
  // nearest slice's read ends last: 30 - hops from MEM_W0.
  CHECK(b.end_cycle() == 30 - (q - b.pos(w0)));
}

TEST_CASE("schedule: emission inserts nops, folds regular runs into repeat, and replays to the same cycles") {
  auto cfg = default_chip_config();
  std::vector<Placement> pl;
  const uint16_t mem = static_cast<uint16_t>(cfg->slice_index("MEM_E3"));
  auto rd = [](uint32_t addr) {
    Instr in = make_instr(Opcode::Read);
    in.set(Field::Addr, addr);
    in.set(Field::Dst, StreamRef{Dir::East, 3}.encode());
    return in;
  };
  // A run of 5 reads 2 cycles apart with addr stepping by one, then two irregular ones.
  for (uint32_t k = 0; k < 5; ++k) pl.push_back({mem, 0, 10 + 2 * k, rd(100 + k)});
  pl.push_back({mem, 0, 19, rd(7)});
  pl.push_back({mem, 0, 40, rd(7)});
  std::vector<Placement> shuffled(pl.rbegin(), pl.rend());  // emission sorts by cycle
  ChipCode code = emit_queues(shuffled, EmitOptions{});
  REQUIRE(code.queues.size() == 1);
  const auto& c = code.queues[0].code;
  REQUIRE(c.size() == 6);
  CHECK(c[0].op == Opcode::Nop);
  CHECK(c[0].get(Field::Imm) == 10);
  CHECK(c[1] == rd(100));
  CHECK(c[2].op == Opcode::Repeat);
  CHECK(c[2].get(Field::Count) == 4);
  CHECK(c[2].get(Field::Stride) == 2);
  CHECK(c[3] == rd(7));  // at 19 = cursor after the repeat (18 + 1): no nop
  CHECK(c[4].op == Opcode::Nop);
  CHECK(c[4].get(Field::Imm) == 20);
  const auto replay = replay_queue(c);
  REQUIRE(replay.size() == pl.size());
  for (size_t i = 0; i < pl.size(); ++i) {
    CHECK(replay[i].first == pl[i].t);
    CHECK(replay[i].second == pl[i].in);
  }
  // Without repeat every instruction is explicit and replays identically.
  ChipCode flat = emit_queues(pl, EmitOptions{false});
  CHECK(flat.queues[0].code.size() == 13);  // 7 instructions, nop 10, four nop 1, nop 20
  const auto replay2 = replay_queue(flat.queues[0].code);
  REQUIRE(replay2.size() == pl.size());
  for (size_t i = 0; i < pl.size(); ++i) CHECK(replay2[i].first == pl[i].t);
  // Two instructions on one queue in one cycle is a scheduler bug, reported loudly.
  pl.push_back({mem, 0, 40, rd(8)});
  CHECK_THROWS_AS(emit_queues(pl, EmitOptions{}), std::logic_error);
}

TEST_CASE("schedule: emission groups placements of many queues by slice and queue, each in cycle order") {
  // Placements of 3 slices x 2 queues, shuffled together (as the kernels interleave them); each
  // queue's code must replay to exactly its own placements in cycle order.
  auto cfg = default_chip_config();
  const uint16_t s0 = static_cast<uint16_t>(cfg->slice_index("MEM_E3"));
  const uint16_t s1 = static_cast<uint16_t>(cfg->slice_index("MEM_W5"));
  const uint16_t s2 = static_cast<uint16_t>(cfg->slice_index("MEM_E0"));
  std::vector<Placement> pl;
  uint32_t x = 12345;
  auto next = [&x] { return x = x * 1103515245u + 12345u; };
  std::map<std::pair<uint16_t, uint8_t>, std::vector<Placement>> expect;
  for (uint16_t s : {s0, s1, s2})
    for (uint8_t q = 0; q < 2; ++q)
      for (uint64_t k = 0; k < 50; ++k) {
        Instr in = make_instr(Opcode::Read);
        in.set(Field::Addr, (next() >> 8) % 1000);  // irregular, so few repeats
        in.set(Field::Dst, StreamRef{Dir::East, 3}.encode());
        const Placement p{s, q, 3 * k + (next() >> 9) % 3, in};
        pl.push_back(p);
        expect[{s, q}].push_back(p);
      }
  for (size_t i = pl.size() - 1; i > 0; --i) std::swap(pl[i], pl[(next() >> 4) % (i + 1)]);
  const ChipCode code = emit_queues(pl, EmitOptions{});
  REQUIRE(code.queues.size() == expect.size());
  size_t qi = 0;
  for (const auto& [key, want] : expect) {  // std::map: (slice, queue) order, as emitted
    const QueueCode& qc = code.queues[qi++];
    CHECK(qc.slice == key.first);
    CHECK(qc.queue == key.second);
    const auto replay = replay_queue(qc.code);
    REQUIRE(replay.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      CHECK(replay[i].first == want[i].t);
      CHECK(replay[i].second == want[i].in);
    }
  }
}
