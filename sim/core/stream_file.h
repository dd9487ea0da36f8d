// The chip's stream registers in time-space, kept lazily: one slot per (direction, stream,
// diagonal) in a ring indexed by diagonal (east d = t - p, west d = t + p), so writes, reads and
// collision checks are O(1) and nothing moves per cycle. Values are stored only if requested
// (functional mode); timing mode keeps only occupancy. Counts stream hops for energy.
//
// Ring size: at cycle `now` a read touches east diagonals in [now - P + 1, now] (west: [now,
// now + P - 1]) and a write lands at most max_latency ahead, so live diagonals span fewer than
// P + max_latency consecutive values (P = positions). A window of at least P + max_latency + 2
// entries therefore never lets a live value share a ring entry with another one; an entry whose
// stored diagonal differs from the one asked for is stale (empty).
#pragma once
#include <cstdint>
#include <vector>

#include "isa/isa.h"
#include "isa/stream_envelope.h"

namespace lpu::sim::core {

// Who put a value on the stream: enough to name it in an error message.
struct Producer {
  uint32_t queue = 0;       // engine queue id
  uint32_t instr = 0;       // index in that queue's code
  uint64_t issue = 0;       // issue cycle
};

struct StreamSlot {
  int64_t diag = INT64_MIN; // which diagonal this ring entry currently holds (INT64_MIN: never used)
  uint32_t pos = 0;         // producer position
  uint64_t land = 0;        // cycle the value appears at the producer position
  uint32_t far = 0;         // farthest distance from pos at which it was read
  bool read = false;
  Producer prod;
};

class StreamFile {
 public:
  // num_positions: floorplan width; max_latency: largest latency of any class (bounds how far
  // ahead of the current cycle a write can land).
  void init(uint32_t num_positions, uint32_t streams_per_dir, uint32_t lanes, uint32_t max_latency, bool values);

  // Stream ids in StreamEnvelope order (isa/stream_envelope.h).
  static uint32_t sid(StreamRef s, uint32_t streams_per_dir) { return envelope_stream(s.dir, s.index, streams_per_dir); }
  static int64_t diagonal(Dir d, uint32_t pos, uint64_t cycle) {
    return d == Dir::East ? static_cast<int64_t>(cycle) - pos : static_cast<int64_t>(cycle) + pos;
  }

  // A value lands on stream `sid` at position pos on cycle land. Returns the slot that already
  // holds a value on that diagonal (a collision) without writing, or nullptr after recording it.
  // `data` receives the slot's lane buffer (nullptr in timing mode).
  const StreamSlot* write(uint32_t sid, uint32_t pos, uint64_t land, const Producer& p, uint8_t** data);

  // Reads stream `sid` at (pos, cycle). Returns nullptr if no value is there; otherwise records
  // the read for hop counting. `data` receives the lane buffer (nullptr in timing mode).
  const StreamSlot* read(uint32_t sid, uint32_t pos, uint64_t cycle, const uint8_t** data);

  // The value on the diagonal through (pos, cycle), if any, even if it has not reached pos
  // (used to explain an empty read).
  const StreamSlot* on_diagonal(uint32_t sid, uint32_t pos, uint64_t cycle) const;

  // Adds the hops of every value still held and returns the total (byte planes x positions).
  uint64_t finish_hops();

  // StreamEnvelope's bits: `head` (kept on every write) and, for a program ending at
  // `cycles`, `tail` (read from the ring, which still holds every diagonal near the end).
  const std::vector<std::vector<uint64_t>>& head() const { return head_; }
  std::vector<std::vector<uint64_t>> tail(uint64_t cycles) const;

 private:
  uint32_t streams_ = 0, lanes_ = 0, window_ = 0, mask_ = 0;
  bool values_ = false;
  std::vector<StreamSlot> slots_;   // [sid][window]
  std::vector<uint8_t> data_;       // [sid][window][lanes] (functional mode)
  uint64_t hops_ = 0;
  uint32_t positions_ = 0;
  std::vector<std::vector<uint64_t>> head_;  // [sid][word]: StreamEnvelope::head
  size_t index(uint32_t sid, int64_t diag) const {
    return static_cast<size_t>(sid) * window_ + (static_cast<uint64_t>(diag) & mask_);
  }
  static Dir dir_of(uint32_t sid, uint32_t streams) { return envelope_dir(sid, streams); }
};

}  // namespace lpu::sim::core
