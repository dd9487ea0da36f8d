// Comparison of stream envelopes (stream_envelope.h).
#include "isa/stream_envelope.h"

#include <fmt/format.h>

namespace lpu {
namespace {

// First difference in one of the two bit sets, or "".
std::string first_difference(const std::vector<std::vector<uint64_t>>& a, const std::vector<std::vector<uint64_t>>& b,
                             const char* part, const char* a_name, const char* b_name) {
  if (a.size() != b.size())
    return fmt::format("{}: {} streams {}, {} streams {}", part, a.size(), a_name, b.size(), b_name);
  const size_t per_dir = a.size() / 2;
  for (size_t s = 0; s < a.size(); ++s) {
    if (a[s].size() != b[s].size())
      return fmt::format("{} stream {}: {} words {}, {} words {}", part, s, a[s].size(), a_name, b[s].size(), b_name);
    for (size_t w = 0; w < a[s].size(); ++w) {
      const uint64_t x = a[s][w] ^ b[s][w];
      if (x == 0) continue;
      unsigned bit = 0;
      while (((x >> bit) & 1u) == 0) ++bit;
      const bool east = envelope_dir(s, per_dir) == Dir::East;
      return fmt::format("{} stream {} ({} {}) k {}: {} {}, {} {}", part, s, east ? "east" : "west",
                         east ? s : s - per_dir, w * 64 + bit, a_name, (a[s][w] >> bit) & 1u, b_name,
                         (b[s][w] >> bit) & 1u);
    }
  }
  return "";
}

}  // namespace

std::string envelope_difference(const StreamEnvelope& a, const StreamEnvelope& b, const char* a_name,
                                const char* b_name) {
  std::string d = first_difference(a.head, b.head, "head", a_name, b_name);
  return d.empty() ? first_difference(a.tail, b.tail, "tail", a_name, b_name) : d;
}

}  // namespace lpu
