// The time-space scheduler's state for one chip: which queue issue slots, SRAM ports and MXM plane
// ports are busy on which cycles (BusyTable), which stream diagonals hold values (StreamSlots), and
// the instructions placed so far with their issue cycles. Kernel builders ask it "can this
// instruction issue here at t?" and place instructions; composite placements (a read, the op that
// consumes it, the write of its result) run as one transaction that can be rolled back.
// Timing always comes from lpu::instr_timing(), the same function the simulator uses.
#pragma once
#include <cstdint>
#include <vector>

#include "compiler/backend/busy_table.h"
#include "compiler/backend/stream_slots.h"
#include "isa/chip_config.h"

namespace lpu::compiler {

struct Placement {
  uint16_t slice = 0;
  uint8_t queue = 0;
  uint64_t t = 0;  // issue cycle
  Instr in;
};

// A value on a stream group: written at position `pos` on cycle `t0`, moving in `dir`, occupying
// streams base .. base+width-1 on diagonal `diag`.
struct StreamValue {
  Dir dir = Dir::East;
  uint32_t base = 0;
  uint32_t width = 1;
  uint32_t pos = 0;
  uint64_t t0 = 0;
  // Cycle the value is at position p, or UINT64_MAX if p is upstream of the producer.
  uint64_t time_at(uint32_t p) const {
    if (dir == Dir::East) return p >= pos ? t0 + (p - pos) : UINT64_MAX;
    return p <= pos ? t0 + (pos - p) : UINT64_MAX;
  }
  StreamRef ref() const { return StreamRef{dir, static_cast<uint8_t>(base)}; }
};

class ScheduleBuilder {
 public:
  explicit ScheduleBuilder(const ChipConfig& cfg);
  const ChipConfig& cfg() const { return cfg_; }
  uint32_t pos(int slice) const { return cfg_.slices[static_cast<size_t>(slice)].position; }

  // Queue issue slot free and the instruction's class resource free for its occupancy.
  bool can_issue(int slice, int queue, uint64_t t, const Instr& in) const;
  // Reserves what can_issue checked and records the placement (logic_error if not free).
  void issue(int slice, int queue, uint64_t t, const Instr& in);
  // First queue of `slice` on which `in` can issue at t, or -1.
  int free_queue(int slice, uint64_t t, const Instr& in) const;
  // Issues `in` at cycle t on the first queue of `slice` that can take it; false if none can.
  bool issue_any(int slice, uint64_t t, const Instr& in);

  struct Txn { size_t busy, slots, placed; };
  Txn begin() const { return {busy_.mark(), slots_.mark(), placed_.size()}; }
  void rollback(const Txn& x);
  // Drops the undo logs when no transaction is open (between steps; a Txn taken before is void).
  void forget_undo() {
    busy_.forget_undo();
    slots_.forget_undo();
  }

  // Reads vector `addr` from `slices` (one per byte plane, b-th slice holds plane b) so that the
  // whole group is at position q on cycle T moving in dir. Every read issues at >= not_before.
  // On success reserves everything and returns true.
  bool fetch(const std::vector<uint16_t>& slices, uint32_t addr, uint32_t q, uint64_t T, Dir dir,
             uint64_t not_before, StreamValue* out);
  // Writes value v into `slices` (plane b -> slices[b]) at addr, each write issued when the value
  // passes the slice. Every write issues at >= not_before. *landed = max landing cycle.
  bool store(const StreamValue& v, const std::vector<uint16_t>& slices, uint32_t addr,
             uint64_t not_before, uint64_t* landed);
  // Allocates a free stream group of `width` for a result written at position q on cycle T in dir.
  bool produce(Dir dir, uint32_t width, uint32_t q, uint64_t T, StreamValue* out);

  // max over placed instructions of issue + latency (0 if none).
  uint64_t end_cycle() const;
  const std::vector<Placement>& placements() const { return placed_; }
  std::vector<Placement> take_placements() { return std::move(placed_); }

  StreamSlots& slots() { return slots_; }
  const StreamSlots& slots() const { return slots_; }

  // SXM lane maps (permute/distribute) of the program: the id of `map` (lanes entries), added to
  // the table on first use. Emission copies the table into Program::maps.
  uint32_t map_id(const std::vector<uint16_t>& map);
  const std::vector<std::vector<uint16_t>>& maps() const { return maps_; }
  // Forgets the maps added after the table had n entries (a kernel's trial placement, rolled back
  // with every instruction that named them; lane_kernel.h radix trials).
  void drop_maps_from(size_t n) {
    if (n < maps_.size()) maps_.resize(n);
  }

 private:
  struct Res { int id; uint64_t len; };
  Res class_resource(int slice, const Instr& in, uint64_t occ) const;
  // What `in` reserves when it issues on `slice`: its queue for qlen cycles (a queue-class op for
  // its occupancy, any other for one cycle) and its class resource (res.id -1: none). Independent
  // of the queue and the cycle, so a placement query computes it once.
  struct Cost { uint64_t qlen; Res res; };
  Cost cost(int slice, const Instr& in) const;
  bool res_free(const Cost& c, uint64_t t) const { return c.res.id < 0 || busy_.free(c.res.id, t, c.res.len); }
  bool queue_free(int slice, int queue, const Cost& c, uint64_t t) const {
    return busy_.free(queue_base_[static_cast<size_t>(slice)] + queue, t, c.qlen);
  }
  // First queue of `slice` free for c at t (with c's class resource free), or -1.
  int first_queue(int slice, const Cost& c, uint64_t t) const;
  // Reserves c and records the placement; the caller checked queue_free and res_free.
  void place(int slice, int queue, uint64_t t, const Instr& in, const Cost& c);

  const ChipConfig& cfg_;
  std::vector<int> queue_base_;  // per slice: id of its queue 0
  std::vector<int> sram_id_;     // per slice: SRAM port id (-1 if not MEM)
  std::vector<int> mxm_base_;    // per slice: id of plane 0's LW port (-1 if not MXM)
  std::vector<int> link_base_;   // per slice: id of link 0's TX (-1 if not C2C)
  BusyTable busy_;
  StreamSlots slots_;
  std::vector<Placement> placed_;
  std::vector<std::vector<uint16_t>> maps_;
};

}  // namespace lpu::compiler
