// What the LLM planner's SRAM mirror (compiler/llm/partition.h: piece_sram_need) counts, read back
// from a compiled piece's memory map (CompileResult::memory_map), so tests can check the mirror
// byte for byte: weight tiles ('.W.g': projections, RoPE permutation, identity copies of views),
// int8 per-column scale rows ('.scale'), KV cache inputs ('_cache_') and the K / V row Concats of
// cache + new rows (Attention pieces; found in the graph, their allocations split in 256-row parts
// '<tensor>.rows_<a>_<b>'). Bias rows are not counted: for bias-free (RoPE) families only; and
// batch 1 (the planner counts one sequence's Concats, the map holds every sequence's).
#pragma once
#include <cstdint>
#include <string>

#include "compiler/ir/graph.h"
#include "compiler/passes/sram_map_summary.h"

namespace lpu::test {

struct MirroredSram {
  uint64_t weights = 0, scales = 0, caches = 0, concats = 0;
  int concat_ops = 0;  // Concats that read a cache input (0 for FFN / LM head pieces)
  uint64_t total() const { return weights + scales + caches + concats; }
};

inline MirroredSram mirrored_sram(const ir::Graph& g, const std::string& map) {
  MirroredSram s;
  s.weights = compiler::sram_map_bytes(map, ".W.g");
  s.scales = compiler::sram_map_bytes(map, ".scale");
  s.caches = compiler::sram_map_bytes(map, "_cache_");
  auto is_cache = [&](ir::TensorId t) {  // a cache input, or a row Slice of one (B > 1)
    if (g.tensor(t).name.find("_cache_") != std::string::npos) return true;
    for (const ir::Op& op : g.ops())
      if (op.outputs[0] == t && op.kind == ir::OpKind::Slice)
        return g.tensor(op.inputs[0]).name.find("_cache_") != std::string::npos;
    return false;
  };
  for (const ir::Op& op : g.ops()) {
    if (op.kind != ir::OpKind::Concat) continue;
    bool reads_cache = false;
    for (ir::TensorId t : op.inputs) reads_cache |= is_cache(t);
    if (!reads_cache) continue;
    ++s.concat_ops;
    s.concats += compiler::sram_map_bytes(map, g.tensor(op.outputs[0]).name + ".rows_");
  }
  return s;
}

}  // namespace lpu::test
