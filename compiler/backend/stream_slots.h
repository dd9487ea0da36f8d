// Stream-slot allocator: a value written on stream s in direction dir at position p on cycle t
// occupies the diagonal d = t - p (east) or t + p (west) of that stream up to the chip edge
// (docs/architecture.md: values are not consumed), so each (dir, stream, diagonal) holds at most
// one value. Streams are handed out like registers, per byte plane of a stream group.
// Storage: per direction, one mask of taken streams per diagonal (streams_per_direction <= 32,
// isa/chip_config.cpp), so a group search and a take are a few word operations.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "isa/isa.h"
#include "isa/stream_envelope.h"

namespace lpu::compiler {

class StreamSlots {
 public:
  StreamSlots(uint32_t streams_per_direction, uint32_t num_positions);
  // Diagonal (shifted to be non-negative) of a value at position p on cycle t moving in dir.
  uint64_t diagonal(Dir dir, uint32_t p, uint64_t t) const {
    return dir == Dir::East ? t + offset_ - p : t + p;
  }
  // Cycle at which the value on diagonal d is at position p.
  uint64_t time_at(Dir dir, uint64_t d, uint32_t p) const {
    return dir == Dir::East ? d + p - offset_ : d - p;
  }
  // Lowest base (a multiple of width) whose width streams are all free on diagonal d, or -1.
  int find_group(Dir dir, uint32_t width, uint64_t d) const;
  // Takes streams [base, base + width) on diagonal d; std::logic_error if one is taken already.
  void take(Dir dir, uint32_t base, uint32_t width, uint64_t d);
  size_t mark() const { return log_.size(); }
  void rollback(size_t m);
  void forget_undo() { log_.clear(); }  // as BusyTable::forget_undo
  uint32_t streams() const { return streams_; }
  // The program's predicted StreamEnvelope on this chip (isa/stream_envelope.h) for a program that
  // ends at `cycles` (its predicted cycles): the diagonals taken near its two ends.
  StreamEnvelope envelope(uint64_t cycles) const;

 private:
  uint32_t taken(Dir dir, uint64_t d) const {
    const std::vector<uint32_t>& v = masks_[static_cast<size_t>(dir)];
    return d < v.size() ? v[d] : 0u;
  }
  uint32_t streams_;
  uint64_t offset_;
  std::vector<uint32_t> masks_[2];  // [dir][diagonal]: bit s set = stream s holds a value
  struct Entry { uint8_t dir; uint32_t mask; uint64_t d; };
  std::vector<Entry> log_;
};

}  // namespace lpu::compiler
