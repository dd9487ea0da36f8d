// Lazy time-space stream registers: see stream_file.h.
#include "sim/core/stream_file.h"

#include <stdexcept>

namespace lpu::sim::core {

void StreamFile::init(uint32_t num_positions, uint32_t streams_per_dir, uint32_t lanes, uint32_t max_latency,
                      bool values) {
  streams_ = streams_per_dir;
  lanes_ = lanes;
  values_ = values;
  // Live diagonals span fewer than num_positions + max_latency values (stream_file.h).
  uint32_t need = num_positions + max_latency + 2;
  window_ = 1;
  while (window_ < need) window_ <<= 1;
  mask_ = window_ - 1;
  slots_.assign(static_cast<size_t>(2) * streams_ * window_, StreamSlot{});
  data_.clear();
  if (values_) data_.assign(static_cast<size_t>(2) * streams_ * window_ * lanes_, 0);
  hops_ = 0;
  positions_ = num_positions;
  head_.assign(static_cast<size_t>(2) * streams_, std::vector<uint64_t>((num_positions + 63) / 64, 0));
}

const StreamSlot* StreamFile::write(uint32_t sid, uint32_t pos, uint64_t land, const Producer& p, uint8_t** data) {
  const int64_t d = diagonal(dir_of(sid, streams_), pos, land);
  const size_t k = index(sid, d);
  StreamSlot& s = slots_[k];
  if (s.diag == d) return &s;
  if (s.diag != INT64_MIN) {
    if (s.diag > d) throw std::logic_error("StreamFile: ring window too small (write behind a live diagonal)");
    if (s.read) hops_ += s.far;
  }
  s.diag = d;
  s.pos = pos;
  s.land = land;
  s.far = 0;
  s.read = false;
  s.prod = p;
  if (data) *data = values_ ? &data_[k * lanes_] : nullptr;
  const int64_t h = dir_of(sid, streams_) == Dir::East ? -d : d;  // StreamEnvelope::head's k
  if (h >= 0 && h < static_cast<int64_t>(positions_)) head_[sid][static_cast<size_t>(h) / 64] |= 1ull << (h % 64);
  return nullptr;
}

const StreamSlot* StreamFile::read(uint32_t sid, uint32_t pos, uint64_t cycle, const uint8_t** data) {
  const Dir dir = dir_of(sid, streams_);
  const int64_t d = diagonal(dir, pos, cycle);
  const size_t k = index(sid, d);
  StreamSlot& s = slots_[k];
  if (s.diag != d) return nullptr;
  // The value exists from its producer position downstream only.
  if (dir == Dir::East ? s.pos > pos : s.pos < pos) return nullptr;
  const uint32_t dist = dir == Dir::East ? pos - s.pos : s.pos - pos;
  if (!s.read || dist > s.far) s.far = dist;
  s.read = true;
  if (data) *data = values_ ? &data_[k * lanes_] : nullptr;
  return &s;
}

const StreamSlot* StreamFile::on_diagonal(uint32_t sid, uint32_t pos, uint64_t cycle) const {
  const int64_t d = diagonal(dir_of(sid, streams_), pos, cycle);
  const StreamSlot& s = slots_[index(sid, d)];
  return s.diag == d ? &s : nullptr;
}

uint64_t StreamFile::finish_hops() {
  for (StreamSlot& s : slots_) {
    if (s.diag != INT64_MIN && s.read) hops_ += s.far;
    s.read = false;
  }
  return hops_;
}

std::vector<std::vector<uint64_t>> StreamFile::tail(uint64_t cycles) const {
  std::vector<std::vector<uint64_t>> out(head_.size(), std::vector<uint64_t>((positions_ + 63) / 64, 0));
  // Every value lands by cycles (an east diagonal is at most its land cycle, a west one at most
  // land + positions - 1), and the ring keeps more than positions + max_latency diagonals behind
  // the newest (stream_file.h), so each diagonal asked for here is still in it if it was written.
  for (uint32_t sid = 0; sid < head_.size(); ++sid) {
    const bool east = dir_of(sid, streams_) == Dir::East;
    for (uint32_t k = 0; k < positions_; ++k) {
      const int64_t d = static_cast<int64_t>(cycles) + (east ? -static_cast<int64_t>(k) : static_cast<int64_t>(k));
      if (slots_[index(sid, d)].diag == d) out[sid][k / 64] |= 1ull << (k % 64);
    }
  }
  return out;
}

}  // namespace lpu::sim::core
