// Sums over an SRAM memory map as SramAllocator::format_map() prints it (CompileResult::memory_map,
// one line per allocation: name, slices, addr..last, vectors/plane, bytes, free-from-cycle, status).
// For the tests and benchmarks that compare what the allocator placed with the LLM planner's
// estimate (compiler/llm/partition.h: piece_sram_need).
#pragma once
#include <cstdint>
#include <string>

namespace lpu::compiler {

struct SramMapSummary {
  uint64_t weights = 0, others = 0;  // bytes of the allocations named like a weight group ('.W.g'), of the rest
  uint64_t high_water = 0;           // highest address used + 1, over all slices
  std::string largest;               // the largest allocation and its bytes
  uint64_t largest_bytes = 0;
};
SramMapSummary summarize_sram_map(const std::string& map);

// Bytes of the allocations whose name contains `part` (".W.g": weight groups; "_cache_": KV caches).
uint64_t sram_map_bytes(const std::string& map, const std::string& part);

}  // namespace lpu::compiler
