// Emission pass: the scheduled placements, SRAM image and tensor table become an lpu::Program
// whose predicted_cycles follows docs/architecture.md "End of program".
#pragma once
#include <vector>

#include "compiler/backend/queue_emitter.h"
#include "compiler/backend/schedule_builder.h"
#include "isa/program.h"

namespace lpu::compiler {

// Predicted cycles of placements: max(issue + latency) over non-nop instructions + stagger tail
// (0 if nothing is placed).
uint64_t predict_cycles(const ScheduleBuilder& b);

Program emit_program(ScheduleBuilder& b, std::vector<DataBlob> blobs, std::vector<TensorDesc> tensors,
                     const EmitOptions& opt);

}  // namespace lpu::compiler
