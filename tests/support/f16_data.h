// Test data helpers for fp16 compiles: f16-exact random values and their little-endian f16 bytes
// (the layout of a Program's f16 tensors and of compiler constants).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "compiler/ir/dtype.h"

namespace lpu::test {

// n f16-exact values drawn uniformly from [lo, hi] with a fixed seed.
inline std::vector<float> random_f16(int64_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = ir::round_f16(d(rng));
  return v;
}

// Each value rounded to f16, two bytes little-endian (the compiler's own packing).
using ir::f16_bytes;

}  // namespace lpu::test
