// Pipelined serving figures and the periodic timeline of K groups in flight (pipeline_serving.h).
#include "system/pipeline_serving.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "system/start_rule.h"

namespace lpu::system {

uint64_t busiest_chip_span(const StepResult& step, const ChipConfig& chip) {
  std::map<uint64_t, const PieceUse*> use_of;  // program hash -> its use
  for (const PieceUse& u : step.pieces) use_of[u.hash] = &u;
  // Per chip: its first program's start and stream envelope, its last program's end and envelope.
  struct Span {
    uint64_t first = UINT64_MAX, last_start = 0, last_end = 0;
    const StreamEnvelope *head = nullptr, *tail = nullptr;
  };
  std::map<uint32_t, Span> span;
  for (const TimelineEntry& e : step.timeline) {
    auto it = use_of.find(e.hash);
    if (it == use_of.end())
      throw std::logic_error(fmt::format("busiest_chip_span: timeline program {:016x} is not among the step's pieces", e.hash));
    const PieceUse& u = *it->second;
    if (u.streams.size() != e.chips.size())
      throw std::logic_error(fmt::format("busiest_chip_span: program {:016x} has {} stream envelopes for {} chips", e.hash,
                                         u.streams.size(), e.chips.size()));
    for (size_t pc = 0; pc < e.chips.size(); ++pc) {
      Span& s = span[e.chips[pc]];
      if (e.offset < s.first) s.first = e.offset, s.head = &u.streams[pc];
      if (!s.tail || e.offset >= s.last_start) s.last_start = e.offset, s.last_end = e.offset + u.cycles, s.tail = &u.streams[pc];
    }
  }
  // The smallest shift between two groups' copies of the step at which, on every chip, the next
  // copy's first program starts after this copy's last one ends with their streams clear
  // (start_rule.h; not monotone in the gap, hence the search over shifts, at most a drain long).
  uint64_t least = 0;
  for (const auto& [c, s] : span) least = std::max(least, s.last_end - s.first);
  const uint64_t drain = stream_drain(chip);
  for (uint64_t shift = least; shift <= least + drain; ++shift) {
    bool clear = true;
    for (const auto& [c, s] : span)
      if (!streams_clear(*s.tail, *s.head, shift - (s.last_end - s.first))) {
        clear = false;
        break;
      }
    if (clear) return shift;
  }
  throw std::logic_error("busiest_chip_span: no shift clear within a drain of the longest span");
}

PipelineServing pipeline_serving(const StepResult& step, int64_t in_flight, int64_t tokens_per_sequence,
                                 uint32_t chips, const ChipConfig& chip) {
  if (in_flight < 1) throw std::logic_error("pipeline_serving: in_flight must be >= 1");
  PipelineServing p;
  p.in_flight = in_flight;
  p.busiest_chip_cycles = busiest_chip_span(step, chip);
  p.interval_cycles = p.busiest_chip_cycles;
  p.interval_seconds = std::max(static_cast<double>(p.interval_cycles) / chip.clock_hz, step.host_link_seconds);
  const double k = static_cast<double>(in_flight);
  p.period_seconds = std::max(step.seconds, k * p.interval_seconds);
  p.full_at = p.interval_seconds > 0 ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(step.seconds / p.interval_seconds)))
                                     : 1;
  if (p.period_seconds <= 0) return p;
  const double tokens = k * static_cast<double>(step.shape.batch * tokens_per_sequence);
  p.tokens_per_second_per_user = static_cast<double>(tokens_per_sequence) / p.period_seconds;
  p.tokens_per_second = tokens / p.period_seconds;
  p.energy_j = k * step.dynamic_j + chip.static_power_w * static_cast<double>(chips) * p.period_seconds;
  p.tokens_per_joule = p.energy_j > 0 ? tokens / p.energy_j : 0;
  p.power_w = p.energy_j / p.period_seconds;
  return p;
}

std::vector<TimelineEntry> pipelined_timeline(const StepResult& step, int64_t in_flight, uint64_t interval_cycles) {
  std::vector<TimelineEntry> out;
  out.reserve(step.timeline.size() * static_cast<size_t>(std::max<int64_t>(1, in_flight)));
  for (int64_t j = 0; j < in_flight; ++j)
    for (TimelineEntry e : step.timeline) {
      e.offset += static_cast<uint64_t>(j) * interval_cycles;
      out.push_back(std::move(e));
    }
  // concatenate() appends each chip's programs in order: sort by start (stable: same-cycle entries
  // keep the step's order).
  std::stable_sort(out.begin(), out.end(),
                   [](const TimelineEntry& a, const TimelineEntry& b) { return a.offset < b.offset; });
  return out;
}

}  // namespace lpu::system
