// Emission pass: placements -> per-queue code; blobs and tensors sorted for deterministic output.
#include "compiler/passes/emission.h"

#include <algorithm>

namespace lpu::compiler {

uint64_t predict_cycles(const ScheduleBuilder& b) {
  if (b.placements().empty()) return 0;
  return b.end_cycle() + b.cfg().stagger_tail();
}

Program emit_program(ScheduleBuilder& b, std::vector<DataBlob> blobs, std::vector<TensorDesc> tensors,
                     const EmitOptions& opt) {
  Program p;
  p.config_name = b.cfg().name;
  p.num_chips = 1;
  p.predicted_cycles = predict_cycles(b);
  p.maps = b.maps();  // SXM lane maps (lane kernel)
  p.chips.push_back(emit_queues(b.take_placements(), opt));
  std::stable_sort(blobs.begin(), blobs.end(), [](const DataBlob& x, const DataBlob& y) {
    return x.chip != y.chip ? x.chip < y.chip : x.slice != y.slice ? x.slice < y.slice : x.addr < y.addr;
  });
  p.data = std::move(blobs);
  p.tensors = std::move(tensors);
  return p;
}

}  // namespace lpu::compiler
