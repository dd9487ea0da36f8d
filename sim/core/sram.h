// One MEM slice's state: SRAM contents (functional mode, allocated lazily in pages), the landing
// cycle of the last write to each address (for the read-before-landed hazard), which addresses
// were ever written, and the SRAM port's busy-until cycle.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace lpu::sim::core {

class SramSlice {
 public:
  static constexpr uint32_t kPageVectors = 256;

  void init(uint32_t addresses, uint32_t lanes, bool values) {
    addresses_ = addresses;
    lanes_ = lanes;
    values_ = values;
    pages_.clear();
    pages_.resize((addresses + kPageVectors - 1) / kPageVectors);
    pending_.clear();
    used_.clear();
    port_busy_until = 0;
  }
  bool has_values() const { return values_; }
  uint32_t lanes() const { return lanes_; }

  // Writable vector at addr (functional mode only; allocates its page on first touch).
  uint8_t* vec(uint32_t addr) {
    auto& p = pages_[addr / kPageVectors];
    if (!p) p.reset(new uint8_t[static_cast<size_t>(kPageVectors) * lanes_]());
    return p.get() + static_cast<size_t>(addr % kPageVectors) * lanes_;
  }
  // Read-only vector at addr, nullptr if never touched (all zero).
  const uint8_t* peek(uint32_t addr) const {
    const auto& p = pages_[addr / kPageVectors];
    return p ? p.get() + static_cast<size_t>(addr % kPageVectors) * lanes_ : nullptr;
  }

  // Landing cycle of the latest write to addr (0 if none).
  uint64_t pending(uint32_t addr) const { return pending_.empty() ? 0 : pending_[addr]; }
  void note_write(uint32_t addr, uint64_t land) {
    if (pending_.empty()) pending_.assign(addresses_, 0);
    if (land > pending_[addr]) pending_[addr] = land;
    mark_used(addr);
  }
  void mark_used(uint32_t addr) {
    if (used_.empty()) used_.assign(addresses_, 0);
    used_[addr] = 1;
  }
  uint64_t used_count() const {
    uint64_t n = 0;
    for (uint8_t u : used_) n += u;
    return n;
  }

  uint64_t port_busy_until = 0;  // the slice's SRAM port (Resource::Sram)

 private:
  uint32_t addresses_ = 0, lanes_ = 0;
  bool values_ = false;
  std::vector<std::unique_ptr<uint8_t[]>> pages_;
  std::vector<uint64_t> pending_;
  std::vector<uint8_t> used_;
};

}  // namespace lpu::sim::core
