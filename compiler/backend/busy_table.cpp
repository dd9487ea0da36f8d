// BusyTable: growable per-resource bitsets over cycles with an undo log.
#include "compiler/backend/busy_table.h"

namespace lpu::compiler {

bool BusyTable::free(int r, uint64_t t, uint64_t len) const {
  for (uint64_t k = 0; k < len; ++k)
    if (get(r, t + k)) return false;
  return true;
}

void BusyTable::take(int r, uint64_t t, uint64_t len) {
  auto& v = bits_[static_cast<size_t>(r)];
  for (uint64_t k = 0; k < len; ++k) {
    uint64_t c = t + k;
    uint64_t w = c >> 6;
    if (w >= v.size()) v.resize(static_cast<size_t>(w + 1 + (w >> 2)), 0);
    v[w] |= uint64_t{1} << (c & 63);
    log_.push_back({r, c});
  }
}

void BusyTable::rollback(size_t m) {
  while (log_.size() > m) {
    const Entry& e = log_.back();
    bits_[static_cast<size_t>(e.r)][e.t >> 6] &= ~(uint64_t{1} << (e.t & 63));
    log_.pop_back();
  }
}

uint64_t BusyTable::next_free(int r, uint64_t t, uint64_t len) const {
  while (!free(r, t, len)) ++t;
  return t;
}

}  // namespace lpu::compiler
