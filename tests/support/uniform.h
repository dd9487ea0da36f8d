// Deterministic U(-1, 1) test data from a xorshift generator: the same values on every platform and
// standard library (std::uniform_real_distribution is not specified bit for bit).
#pragma once
#include <cstdint>
#include <vector>

namespace lpu::test {

inline std::vector<float> uniform(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (auto& x : v) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    x = static_cast<float>(static_cast<double>(s >> 40) / 8388608.0 - 1.0);
  }
  return v;
}

}  // namespace lpu::test
