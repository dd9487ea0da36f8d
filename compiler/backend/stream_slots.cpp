// StreamSlots: per (direction, stream) bitsets over diagonals with an undo log.
#include "compiler/backend/stream_slots.h"

#include <stdexcept>

namespace lpu::compiler {

bool StreamSlots::free(Dir dir, uint32_t stream, uint64_t d) const {
  const auto& v = row(dir, stream);
  uint64_t w = d >> 6;
  return w >= v.size() || !((v[w] >> (d & 63)) & 1u);
}

int StreamSlots::find_group(Dir dir, uint32_t width, uint64_t d) const {
  for (uint32_t base = 0; base + width <= streams_; base += width) {
    bool ok = true;
    for (uint32_t b = 0; b < width && ok; ++b) ok = free(dir, base + b, d);
    if (ok) return static_cast<int>(base);
  }
  return -1;
}

void StreamSlots::take(Dir dir, uint32_t base, uint32_t width, uint64_t d) {
  for (uint32_t b = 0; b < width; ++b) {
    uint32_t idx = static_cast<uint32_t>(dir) * streams_ + base + b;
    auto& v = bits_[idx];
    uint64_t w = d >> 6;
    if (w >= v.size()) v.resize(static_cast<size_t>(w + 1 + (w >> 2)), 0);
    if ((v[w] >> (d & 63)) & 1u) throw std::logic_error("StreamSlots::take: slot already taken");
    v[w] |= uint64_t{1} << (d & 63);
    log_.push_back({idx, d});
  }
}

void StreamSlots::rollback(size_t m) {
  while (log_.size() > m) {
    const Entry& e = log_.back();
    bits_[e.idx][e.d >> 6] &= ~(uint64_t{1} << (e.d & 63));
    log_.pop_back();
  }
}

}  // namespace lpu::compiler
