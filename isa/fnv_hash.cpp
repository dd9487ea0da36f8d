// FNV-1a 64 and its hex spelling (isa/fnv_hash.h).
#include "isa/fnv_hash.h"

#include <fmt/format.h>

namespace lpu {

uint64_t fnv1a64(std::string_view data, uint64_t h) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string hash_hex(uint64_t h) { return fmt::format("{:016x}", h); }

}  // namespace lpu
