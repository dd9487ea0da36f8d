// SRAM allocation pass: gives every tensor a place (slices per byte plane, address range) and
// reuses the space of dead tensors. Allocation rotates over the MEM slices of alternating
// hemispheres so concurrently used tensors get different SRAM ports. A request that cannot be met
// throws InputError naming what was needed, what is free and the largest live tensors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "isa/chip_config.h"

namespace lpu::compiler {

struct MemoryMapEntry {
  std::string name;             // tensor or weight-group name
  std::vector<uint16_t> slices; // one per byte plane
  uint32_t addr = 0;
  uint32_t vectors = 0;         // per plane
  uint64_t from_cycle = 0;      // SRAM free for it from this cycle (reuse of dead tensors)
  bool freed = false;
};

class SramAllocator {
  struct Hole { uint32_t addr, len; uint64_t avail; };  // a free range of one slice

 public:
  explicit SramAllocator(const ChipConfig& cfg);
  // Allocates `vectors` addresses at one common address in `planes` distinct MEM slices on one
  // side of the VXM. Returns the map entry index; *not_before = first cycle writes may issue.
  int alloc(const std::string& name, uint32_t planes, uint32_t vectors, std::vector<uint16_t>* slices,
            uint32_t* addr, uint64_t* not_before);
  // The first cycle the next allocation's writes are expected (UINT64_MAX, the default: no hint).
  // With a hint, space held for a dead tensor's reads past it is taken only when no range of the
  // size is free by then (then the range free first); without, the lowest fitting address.
  void set_write_hint(uint64_t cycle) { hint_ = cycle; }
  // Frees entry `id` once its last read issued at `last_use` (later writes land after it).
  void release(int id, uint64_t last_use);
  const std::vector<MemoryMapEntry>& entries() const { return entries_; }
  // The free space, rotation and map as they are now: rollback(mark()) takes back every allocation
  // made after it, with no release in between (place_weights retries a matrix that does not fit in
  // smaller groups).
  struct Mark {
    std::vector<std::vector<Hole>> holes;
    std::vector<uint32_t> cursor;
    uint32_t next_side = 0;
    size_t entries = 0;
  };
  Mark mark() const { return {holes_, cursor_, next_side_, entries_.size()}; }
  void rollback(const Mark& m);
  const ChipConfig& cfg() const { return cfg_; }
  uint64_t free_vectors() const;
  // Human-readable memory map (one line per allocation, deterministic).
  std::string format_map() const;

 private:
  bool try_group(const std::vector<int>& group, uint32_t vectors, uint32_t* addr, uint64_t* avail,
                 uint64_t ready_by) const;
  void carve(int slice, uint32_t addr, uint32_t len);

  const ChipConfig& cfg_;
  std::vector<std::vector<int>> sides_;       // MEM slice indices per hemisphere (west, east)
  std::vector<std::vector<Hole>> holes_;      // per slice index, sorted by addr
  std::vector<uint32_t> cursor_;              // rotation pointer per side
  uint32_t next_side_ = 0;
  uint64_t hint_ = UINT64_MAX;
  std::vector<MemoryMapEntry> entries_;
};

}  // namespace lpu::compiler
