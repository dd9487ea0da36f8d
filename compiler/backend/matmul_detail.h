// Constants and helpers shared by the matmul kernel's files (matmul_kernel.cpp and
// the MatmulScheduler::Run parts, matmul_run.h). Private to the kernel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "compiler/backend/kernel_common.h"

namespace lpu::compiler::matmul_detail {

constexpr uint64_t kMaxEpilogueRetime = 4;  // `mov`s that may hold an i8 residual row at the VXM
// Rows of a tile an abc may pick from (the next ones in the job's order). Measured (session 8):
// 8 -> 128 took ResNet-50 int8 94,501 -> 89,321 cycles and BERT-base's pieces 19,941 -> 19,223;
// 256 gained 0.3 % more on ResNet-50 for 30 % more compile time.
constexpr size_t kAbcWindow = 128;

[[noreturn]] inline void no_slot(const std::string& what) {
  throw std::logic_error("matmul scheduler: no cycle found for " + what + " within the search bound");
}

}  // namespace lpu::compiler::matmul_detail
