// Exact start of a program after another on the same chip: see start_rule.h.
#include "system/start_rule.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace lpu::system {
namespace {

// True when some bit k of `a` has bit k + shift set in `b` (both bit sets of equal word counts).
bool meets_shifted(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b, uint64_t shift) {
  const size_t words = std::min(a.size(), b.size());
  const size_t ws = static_cast<size_t>(shift / 64);
  const unsigned bs = static_cast<unsigned>(shift % 64);
  for (size_t w = 0; w + ws < words; ++w) {
    // Bits of a shifted up by `shift` that fall in word w + ws of b.
    uint64_t s = a[w] << bs;
    if (s & b[w + ws]) return true;
    if (bs != 0 && w + ws + 1 < words) {
      s = a[w] >> (64 - bs);
      if (s & b[w + ws + 1]) return true;
    }
  }
  return false;
}

}  // namespace

uint64_t stream_drain(const ChipConfig& chip) {
  const uint64_t positions = chip.num_positions(), tail = chip.stagger_tail();
  return positions > tail ? positions - tail : 0;
}

bool streams_clear(const StreamEnvelope& before, const StreamEnvelope& after, uint64_t gap) {
  if (before.tail.empty() || before.tail.size() != after.head.size())
    throw std::logic_error(fmt::format("streams_clear: envelopes of {} and {} streams (one chip config?)",
                                       before.tail.size(), after.head.size()));
  const size_t per_dir = before.tail.size() / 2;
  for (size_t sid = 0; sid < before.tail.size(); ++sid) {
    // With `after` starting at before's end + gap, before's east value on diagonal cycles - k meets
    // after's on its diagonal -(k + gap); before's west value on cycles + k + gap meets after's on +k.
    const bool east = envelope_dir(sid, per_dir) == Dir::East;
    if (east ? meets_shifted(before.tail[sid], after.head[sid], gap) : meets_shifted(after.head[sid], before.tail[sid], gap))
      return false;
  }
  return true;
}

uint64_t start_gap(const ChipConfig& chip, const StreamEnvelope& before, const StreamEnvelope& after) {
  const uint64_t drain = stream_drain(chip);
  for (uint64_t g = 0; g <= drain; ++g)
    if (streams_clear(before, after, g)) return g;
  throw std::logic_error(fmt::format("start_gap: not clear even after the drain of {} cycles", drain));
}

namespace {
void require_streams(const ChipRun& r) {
  if (r.streams == nullptr) throw std::logic_error(fmt::format("ChipClock: chip {} run without its stream envelope", r.chip));
}
}  // namespace

uint64_t ChipClock::earliest(const std::vector<ChipRun>& runs, uint64_t not_before) const {
  uint64_t t = not_before;
  for (const ChipRun& r : runs) {
    require_streams(r);
    auto it = last_.find(r.chip);
    if (it != last_.end()) t = std::max(t, it->second.end);
  }
  const uint64_t first = t;
  const uint64_t drain = stream_drain(chip_);
  for (; t <= first + drain; ++t) {
    bool ok = true;
    for (const ChipRun& r : runs) {
      auto it = last_.find(r.chip);
      if (it == last_.end()) continue;
      ok = streams_clear(it->second.streams, *r.streams, t - it->second.end);
      if (!ok) break;
    }
    if (ok) return t;
  }
  throw std::logic_error(fmt::format("ChipClock: no start clear within the drain of {} cycles after {}", drain, first));
}

void ChipClock::place(const std::vector<ChipRun>& runs, uint64_t offset) {
  for (const ChipRun& r : runs) {
    require_streams(r);
    Last& l = last_[r.chip];
    l.end = offset + r.cycles;
    l.streams = *r.streams;
  }
}

}  // namespace lpu::system
