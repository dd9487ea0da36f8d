// StreamSlots: per direction a mask of taken streams per diagonal, with an undo log.
#include "compiler/backend/stream_slots.h"

#include <stdexcept>

namespace lpu::compiler {

StreamSlots::StreamSlots(uint32_t streams_per_direction, uint32_t num_positions)
    : streams_(streams_per_direction), offset_(num_positions) {
  if (streams_ == 0 || streams_ > 32) throw std::logic_error("StreamSlots: 1 to 32 streams per direction");
}

namespace {
uint32_t group_mask(uint32_t base, uint32_t width) {
  return static_cast<uint32_t>(((uint64_t{1} << width) - 1) << base);
}
}  // namespace

int StreamSlots::find_group(Dir dir, uint32_t width, uint64_t d) const {
  if (width == 0) return 0;  // an empty group fits anywhere
  if (width > streams_) return -1;
  const uint32_t m = taken(dir, d);
  for (uint32_t base = 0; base + width <= streams_; base += width)
    if (!(m & group_mask(base, width))) return static_cast<int>(base);
  return -1;
}

void StreamSlots::take(Dir dir, uint32_t base, uint32_t width, uint64_t d) {
  if (width == 0) return;
  if (base + width > streams_) throw std::logic_error("StreamSlots::take: streams past the direction's last");
  std::vector<uint32_t>& v = masks_[static_cast<size_t>(dir)];
  if (d >= v.size()) v.resize(static_cast<size_t>(d + 1 + (d >> 2)), 0u);
  const uint32_t g = group_mask(base, width);
  if (v[d] & g) throw std::logic_error("StreamSlots::take: slot already taken");
  v[d] |= g;
  log_.push_back({static_cast<uint8_t>(dir), g, d});
}

void StreamSlots::rollback(size_t m) {
  while (log_.size() > m) {
    const Entry& e = log_.back();
    masks_[e.dir][e.d] &= ~e.mask;
    log_.pop_back();
  }
}

StreamEnvelope StreamSlots::envelope(uint64_t cycles) const {
  // The simulator's diagonals are t - p (east) and t + p (west); east ones are stored here shifted
  // by offset_ (the position count) to be non-negative.
  const uint64_t positions = offset_;
  const size_t words = static_cast<size_t>((positions + 63) / 64);
  StreamEnvelope e;
  e.head.assign(2 * static_cast<size_t>(streams_), std::vector<uint64_t>(words, 0));
  e.tail = e.head;
  for (uint64_t k = 0; k < positions; ++k) {
    const uint64_t bit = uint64_t{1} << (k % 64);
    const size_t w = static_cast<size_t>(k / 64);
    const uint32_t head[2] = {taken(Dir::East, offset_ - k), taken(Dir::West, k)};
    const uint32_t tail[2] = {taken(Dir::East, cycles + offset_ - k), taken(Dir::West, cycles + k)};
    for (size_t dir = 0; dir < 2; ++dir)
      for (uint32_t s = 0; s < streams_; ++s) {
        const size_t sid = envelope_stream(static_cast<Dir>(dir), s, streams_);
        if ((head[dir] >> s) & 1u) e.head[sid][w] |= bit;
        if ((tail[dir] >> s) & 1u) e.tail[sid][w] |= bit;
      }
  }
  return e;
}

}  // namespace lpu::compiler
