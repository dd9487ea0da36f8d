// The simulator core for one chip, plain C++ (no SystemC): issue cursors of every instruction
// queue, a deterministic event order, resource/stream/SRAM/MXM/C2C state and every schedule-rule
// check. The SystemC chip module (sim/systemc/chip_module.h) only decides how far to run it.
//
// Order within one cycle: events are processed by (cycle, queue id), queue id = index in the
// program's (slice, queue)-sorted queue list, i.e. by slice position then queue. Stream reads of
// cycle t see every value landing at cycles <= t: a value is recorded when its producer issues
// and every data-producing class has latency >= 1 (checked at construction), so nothing issued
// at t can land at t.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "isa/program.h"
#include "sim/core/link_endpoint.h"
#include "sim/core/sram.h"
#include "sim/core/stream_file.h"
#include "sim/simulator.h"
#include "sim/units/mxm_plane.h"

namespace lpu::sim::core {

// Per-instruction facts resolved once at load: timing and the resource it occupies.
struct Decoded {
  TimingEntry tm;
  uint64_t* resource = nullptr;  // busy-until cycle of its resource (nullptr: nop/repeat/sync)
  Unit unit = Unit::ICU;
};

struct EngineQueue {
  const std::vector<Instr>* code = nullptr;
  std::vector<Decoded> dec;
  uint32_t slice = 0;
  uint32_t queue = 0;      // queue index within the slice
  uint32_t qc_index = 0;   // index in ChipCode::queues
  uint32_t position = 0;   // the slice's floorplan position
  uint32_t pc = 0;         // next instruction to consider
  uint64_t cursor = 0;
  uint64_t busy_until = 0; // Resource::Queue
  // repeat in progress: instruction rep_pc issues again at rep_next, step rep_k (1..rep_n)
  bool in_repeat = false;
  uint32_t rep_pc = 0, rep_k = 0, rep_n = 0, rep_stride = 0;
  uint64_t rep_next = 0;
  // parked on sync
  bool parked = false;
  uint32_t park_pc = 0;
  uint64_t park_cursor = 0;
};

struct LinkState {
  uint64_t tx_busy = 0, rx_busy = 0;
  LinkEndpoint* tx = nullptr;  // the peer's receive FIFO
  LinkEndpoint* rx = nullptr;  // this chip's receive FIFO
};

class ChipEngine {
 public:
  ChipEngine(const ChipConfig& cfg, const Program& prog, uint32_t chip, const SimOptions& opt);
  ChipEngine(const ChipEngine&) = delete;
  ChipEngine& operator=(const ChipEngine&) = delete;

  void connect_link(uint32_t link, LinkEndpoint* tx, LinkEndpoint* rx);
  // Writes the data image and the given input tensors into SRAM and schedules the first issues.
  void start();
  // Processes every event with cycle < horizon, in order. Throws SimError on a broken rule.
  void run_until(uint64_t horizon);
  bool idle() const { return wheel_count_ == 0 && overflow_.empty(); }
  uint64_t next_cycle() const;  // earliest pending issue (UINT64_MAX if idle)
  // After the last event: parked queues are an error; totals stream hops.
  void finish();

  // Results.
  uint64_t end_cycle() const { return end_; }  // max(issue + latency), 0 if nothing executed
  bool executed_any() const { return executed_any_; }
  uint64_t instructions() const { return instructions_; }
  ChipStats& stats() { return stats_; }
  // The chip's StreamEnvelope for a program that ends at `cycles` (SimResult::cycles).
  StreamEnvelope stream_envelope(uint64_t cycles) const;
  std::vector<TraceEvent>& trace() { return trace_; }
  SramSlice& sram(uint32_t slice) { return sram_[slice]; }
  const ChipConfig& cfg() const { return cfg_; }

 private:
  struct Event {
    uint64_t cycle;
    uint32_t qid;
    bool operator>(const Event& o) const { return cycle != o.cycle ? cycle > o.cycle : qid > o.qid; }
  };

  // ---- ICU (sim/units/icu.cpp) ----
  void schedule(uint32_t qid, uint64_t cycle);
  void advance(uint32_t qid);                       // skip nops, park on sync, schedule next issue
  void after_issue(uint32_t qid, uint64_t t);       // cursor/repeat bookkeeping after an issue
  void park(uint32_t qid);
  void release(uint32_t qid, uint64_t notify_cycle);
  void exec_notify(uint64_t t);
  void issue(uint32_t qid, uint64_t t);             // one event: checks, execute, stats

  // ---- units (sim/units/<unit>.cpp); step = repeat iteration k (added to the step field) ----
  void exec_mem(const Instr& in, uint32_t step, uint64_t t, const TimingEntry& tm);
  void exec_vxm(const Instr& in, uint64_t t, const TimingEntry& tm);
  void exec_mxm(const Instr& in, uint32_t step, uint64_t t, const TimingEntry& tm);
  void exec_sxm(const Instr& in, uint64_t t, const TimingEntry& tm);
  void exec_c2c(const Instr& in, uint64_t t, const TimingEntry& tm);

  // ---- streams (sim/core/chip_engine.cpp) ----
  // Reads n streams from s at the current slice at cycle t; planes[b] gets plane b (nullptr in
  // timing mode). Fails "stream-empty-read".
  void read_group(StreamRef s, int n, uint64_t t, const uint8_t** planes);
  // Puts n streams from s at the current slice, landing at `land`; planes[b] receives the buffer
  // to fill (nullptr in timing mode). Fails "stream-collision".
  void write_group(StreamRef s, int n, uint64_t land, uint8_t** planes);

  // ---- errors ----
  [[noreturn]] void fail(const std::string& rule, const std::string& stream, const std::string& detail) const;
  std::string describe(uint32_t qid, uint32_t pc) const;  // "MEM_W5 queue 0 instr 3 `read 5, E1`"
  void count(EnergyEvent e, uint64_t n) { stats_.events[static_cast<int>(e)] += n; }

  const ChipConfig& cfg_;
  const Program& prog_;
  const uint32_t chip_;
  const SimOptions& opt_;
  const bool functional_;
  const uint32_t lanes_;
  const uint32_t streams_;

  std::vector<EngineQueue> queues_;
  // Pending issues (one per queue at most). Cycles in [now_, now_ + kWheel) sit in a timing
  // wheel of per-cycle queue bitsets (lowest queue id first = the deterministic order); later
  // ones wait in a min-heap and move into the wheel as it turns.
  static constexpr uint32_t kWheel = 256;
  uint64_t now_ = 0;
  uint32_t words_ = 1;               // 64-bit words per bucket
  std::vector<uint64_t> wheel_;      // [kWheel][words_]
  uint64_t wheel_count_ = 0;
  std::vector<Event> overflow_;      // min-heap (std::push_heap with greater)
  void refill();                     // overflow events now inside the wheel window -> wheel
  std::vector<uint64_t> notifies_;   // cycles of executed notifies, non-decreasing
  std::vector<uint32_t> parked_;     // queue ids currently parked

  StreamFile streams_file_;
  std::vector<SramSlice> sram_;                 // by slice index (only MEM slices initialized)
  std::vector<std::vector<units::MxmPlane>> mxm_;  // by slice index, then plane
  std::vector<LinkState> links_;

  // Current instruction (for error messages).
  uint32_t cur_q_ = 0, cur_pc_ = 0, cur_pos_ = 0;
  uint64_t cur_t_ = 0;

  // Scratch (no allocation per instruction).
  std::vector<uint8_t> scratch_;      // lanes * 16
  std::vector<float> fscratch_;       // lanes * 3
  std::vector<int64_t> iscratch_;     // lanes * 3

  uint64_t end_ = 0;
  bool executed_any_ = false;
  uint64_t instructions_ = 0;
  ChipStats stats_;
  std::vector<TraceEvent> trace_;
};

}  // namespace lpu::sim::core
