// Reservation table of the scheduler: for each hardware resource (a queue's issue slot, a MEM
// slice's SRAM port, an MXM plane port, a link side) the set of busy cycles, with an undo log so a
// multi-instruction placement can be tried and rolled back as one transaction.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lpu::compiler {

class BusyTable {
 public:
  explicit BusyTable(int num_resources = 0) : bits_(static_cast<size_t>(num_resources)) {}
  int num_resources() const { return static_cast<int>(bits_.size()); }
  // True if resource r is free on every cycle of [t, t + len). len 0 is always free.
  bool free(int r, uint64_t t, uint64_t len) const;
  // Marks [t, t + len) busy (caller checked free()); logged for rollback().
  void take(int r, uint64_t t, uint64_t len);
  // Transaction support: mark() returns a point in the undo log; rollback(m) frees everything
  // taken after it.
  size_t mark() const { return log_.size(); }
  void rollback(size_t m);
  // Empties the undo log (keeps the reservations): call only when no transaction is open. The log
  // has one entry (24 B) per take(); without this it lives as long as the whole compile.
  void forget_undo() { log_.clear(); }
  // First cycle >= t at which r is free for len cycles.
  uint64_t next_free(int r, uint64_t t, uint64_t len) const;

 private:
  bool get(int r, uint64_t t) const {
    const auto& v = bits_[static_cast<size_t>(r)];
    uint64_t w = t >> 6;
    return w < v.size() && ((v[w] >> (t & 63)) & 1u);
  }
  std::vector<std::vector<uint64_t>> bits_;
  // Calls f(word, mask) for each 64-bit word of r's bitset that [t, t + len) touches (len > 0).
  template <class F>
  static void for_words(uint64_t t, uint64_t len, F f) {
    for (uint64_t c = t, end = t + len; c < end;) {
      const uint64_t w = c >> 6, lo = c & 63, n = std::min<uint64_t>(64 - lo, end - c);
      f(w, (n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1)) << lo);
      c += n;
    }
  }
  struct Entry { int r; uint64_t t, len; };
  std::vector<Entry> log_;
};

}  // namespace lpu::compiler
