// FNV-1a 64-bit hashing: names sweep points and configs, keys the LLM piece cache (stable across runs and machines).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace lpu {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;  // 0xcbf29ce484222325

// FNV-1a 64 of `data`, continuing from `h` (chain calls to hash several parts).
uint64_t fnv1a64(std::string_view data, uint64_t h = kFnvOffset);
// 16 lower-case hex digits.
std::string hash_hex(uint64_t h);

}  // namespace lpu
