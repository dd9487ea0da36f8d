// BusyTable: growable per-resource bitsets over cycles with an undo log.
#include "compiler/backend/busy_table.h"

namespace lpu::compiler {

bool BusyTable::free(int r, uint64_t t, uint64_t len) const {
  if (len == 1) return !get(r, t);
  const auto& v = bits_[static_cast<size_t>(r)];
  bool ok = true;
  for_words(t, len, [&](uint64_t w, uint64_t m) { ok = ok && (w >= v.size() || !(v[w] & m)); });
  return ok;
}

void BusyTable::take(int r, uint64_t t, uint64_t len) {
  if (len == 0) return;
  auto& v = bits_[static_cast<size_t>(r)];
  const uint64_t last = (t + len - 1) >> 6;
  if (last >= v.size()) v.resize(static_cast<size_t>(last + 1 + (last >> 2)), 0);
  for_words(t, len, [&](uint64_t w, uint64_t m) { v[w] |= m; });
  log_.push_back({r, t, len});
}

void BusyTable::rollback(size_t m) {
  while (log_.size() > m) {
    const Entry& e = log_.back();
    auto& v = bits_[static_cast<size_t>(e.r)];
    for_words(e.t, e.len, [&](uint64_t w, uint64_t mask) { v[w] &= ~mask; });
    log_.pop_back();
  }
}

uint64_t BusyTable::next_free(int r, uint64_t t, uint64_t len) const {
  while (!free(r, t, len)) ++t;
  return t;
}

}  // namespace lpu::compiler
