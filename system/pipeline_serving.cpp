// Pipelined serving figures and the periodic timeline of K groups in flight (pipeline_serving.h).
#include "system/pipeline_serving.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

namespace lpu::system {

uint64_t busiest_chip_span(const StepResult& step, const ChipConfig& chip) {
  std::map<uint64_t, uint64_t> cycles_of;  // program hash -> cycles
  for (const PieceUse& u : step.pieces) cycles_of[u.hash] = u.cycles;
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> span;  // chip -> [first start, last window end)
  for (const TimelineEntry& e : step.timeline) {
    auto it = cycles_of.find(e.hash);
    if (it == cycles_of.end())
      throw std::logic_error(fmt::format("busiest_chip_span: timeline program {:016x} is not among the step's pieces", e.hash));
    const uint64_t end = e.offset + piece_window(chip, it->second);
    for (uint32_t c : e.chips) {
      auto [s, added] = span.emplace(c, std::make_pair(e.offset, end));
      if (!added) {
        s->second.first = std::min(s->second.first, e.offset);
        s->second.second = std::max(s->second.second, end);
      }
    }
  }
  uint64_t busiest = 0;
  for (const auto& [c, se] : span) busiest = std::max(busiest, se.second - se.first);
  return busiest;
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
