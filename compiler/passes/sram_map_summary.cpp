// Reading SramAllocator::format_map() text back (see sram_map_summary.h).
#include "compiler/passes/sram_map_summary.h"

#include <algorithm>
#include <functional>
#include <sstream>

namespace lpu::compiler {

namespace {

// Calls f(name, last address, bytes) for every allocation line ('#' lines are comments).
void for_each_allocation(const std::string& map,
                         const std::function<void(const std::string&, uint64_t, uint64_t)>& f) {
  std::istringstream in(map);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string name, slices, range;
    uint64_t vectors = 0, bytes = 0;
    ls >> name >> slices >> range >> vectors >> bytes;
    const size_t dots = range.find("..");
    const uint64_t last = dots == std::string::npos ? 0 : std::stoull(range.substr(dots + 2));
    f(name, last, bytes);
  }
}

}  // namespace

SramMapSummary summarize_sram_map(const std::string& map) {
  SramMapSummary v;
  for_each_allocation(map, [&](const std::string& name, uint64_t last, uint64_t bytes) {
    v.high_water = std::max(v.high_water, last + 1);
    (name.find(".W.g") != std::string::npos ? v.weights : v.others) += bytes;
    if (bytes > v.largest_bytes) {
      v.largest_bytes = bytes;
      v.largest = name;
    }
  });
  return v;
}

uint64_t sram_map_bytes(const std::string& map, const std::string& part) {
  uint64_t n = 0;
  for_each_allocation(map, [&](const std::string& name, uint64_t, uint64_t bytes) {
    if (name.find(part) != std::string::npos) n += bytes;
  });
  return n;
}

}  // namespace lpu::compiler
