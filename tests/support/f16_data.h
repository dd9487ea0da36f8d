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

// Each value rounded to f16, two bytes little-endian.
inline std::vector<uint8_t> f16_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = ir::f32_to_f16(v[i]);
    b[2 * i] = static_cast<uint8_t>(h & 0xFF);
    b[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
  return b;
}

}  // namespace lpu::test
