// How much host memory lpusim may use, and the up-front refusal of work that would exhaust it
// (docs/reliability.md "Limits up front"). The tools estimate a run's memory from sizes alone (the
// simulator: sim/host_limits.h; the compiler: its weights as f32) and call require_host_memory
// before allocating, so a too-large model or system is refused with the estimate instead of being
// killed by the operating system. Shared by every layer, so it lives in the base library.
#pragma once
#include <cstdint>
#include <string>

namespace lpu {

struct HostMemory {
  uint64_t bytes = 0;   // 0 = unknown (no check is made)
  std::string source;   // where `bytes` came from, for messages
};

// MemAvailable of a /proc/meminfo text, in bytes; 0 if absent or unreadable.
uint64_t parse_meminfo_available(const std::string& meminfo_text);

// Memory available now: the environment variable LPUSIM_MEM_AVAILABLE (bytes; for tests and for
// hosts whose limits /proc does not show) if set, else MemAvailable of /proc/meminfo, lowered to
// the room left under a cgroup memory limit (v2 memory.max, v1 memory.limit_in_bytes) if one is
// set. A malformed LPUSIM_MEM_AVAILABLE throws InputError.
HostMemory host_memory_available();

// Throws InputError "<what>: needs an estimated <need> of host memory (<detail>), more than the
// <available> available (<source>); <remedy>" if need > avail.bytes (and avail.bytes is known).
void require_host_memory(const std::string& what, uint64_t need, const std::string& detail, const HostMemory& avail,
                         const std::string& remedy = "pass --force to run it anyway");

// "1.50 GiB (1610612736 bytes)".
std::string format_bytes(uint64_t bytes);

}  // namespace lpu
