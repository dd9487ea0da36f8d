// Host memory available to lpusim and the up-front refusal: see host_memory.h.
#include "isa/host_memory.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "isa/chip_config.h"

namespace lpu {

namespace {

std::string slurp(const char* path) {
  std::ifstream f(path);
  if (!f) return "";
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// A cgroup number file ("max" or bytes): 0 if absent or unlimited.
uint64_t cgroup_value(const char* path) {
  const std::string t = slurp(path);
  if (t.empty() || t.compare(0, 3, "max") == 0) return 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(t.c_str(), &end, 10);
  return end == t.c_str() ? 0 : v;
}

}  // namespace

uint64_t parse_meminfo_available(const std::string& text) {
  std::istringstream in(text);
  std::string key, unit;
  unsigned long long v = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    if (!(l >> key >> v) || key != "MemAvailable:") continue;
    l >> unit;
    return unit == "kB" ? v * 1024 : v;
  }
  return 0;
}

HostMemory host_memory_available() {
  HostMemory m;
  if (const char* env = std::getenv("LPUSIM_MEM_AVAILABLE")) {
    const std::string s(env);
    char* end = nullptr;
    const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || *end != '\0' || v == 0)
      throw InputError(fmt::format("LPUSIM_MEM_AVAILABLE: must be a whole number of bytes >= 1; got '{}'", s));
    m.bytes = v;
    m.source = "LPUSIM_MEM_AVAILABLE";
    return m;
  }
  m.bytes = parse_meminfo_available(slurp("/proc/meminfo"));
  m.source = "MemAvailable in /proc/meminfo";
  // A container's limit is not in /proc/meminfo: take the room left under the cgroup's limit.
  struct Cg { const char* limit; const char* usage; const char* name; };
  for (const Cg& cg : {Cg{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "cgroup memory.max"},
                       Cg{"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
                          "cgroup memory.limit_in_bytes"}}) {
    const uint64_t limit = cgroup_value(cg.limit);
    if (limit == 0 || limit >= (uint64_t{1} << 62)) continue;  // absent or unlimited
    const uint64_t used = cgroup_value(cg.usage);
    const uint64_t room = limit > used ? limit - used : 0;
    if (m.bytes == 0 || room < m.bytes) {
      m.bytes = std::max<uint64_t>(room, 1);
      m.source = cg.name;
    }
    break;
  }
  return m;
}

std::string format_bytes(uint64_t bytes) {
  return fmt::format("{:.2f} GiB ({} bytes)", static_cast<double>(bytes) / (uint64_t{1} << 30), bytes);
}

void require_host_memory(const std::string& what, uint64_t need, const std::string& detail, const HostMemory& avail,
                         const std::string& remedy) {
  if (avail.bytes == 0 || need <= avail.bytes) return;
  throw InputError(fmt::format("{}: needs an estimated {} of host memory ({}), more than the {} available ({}); {}", what,
                               format_bytes(need), detail, format_bytes(avail.bytes), avail.source, remedy));
}

}  // namespace lpu
