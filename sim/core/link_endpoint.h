// The C2C receive side as the chip engine sees it: a FIFO of vectors with arrival cycles. The
// SystemC channel (sim/systemc/c2c_link.h) implements it; the core stays SystemC-free.
#pragma once
#include <cstdint>

namespace lpu::sim::core {

class LinkEndpoint {
 public:
  virtual ~LinkEndpoint() = default;
  // Enqueues a vector arriving at `arrival` (data is nullptr in timing mode). Arrivals are pushed
  // in non-decreasing order (one sender per cable, fixed latency).
  virtual void push(uint64_t arrival, const uint8_t* data) = 0;
  // Pops the oldest vector with arrival <= cycle; copies it to `out` if both exist. False if none.
  virtual bool pop(uint64_t cycle, uint8_t* out, uint64_t* arrival) = 0;
};

}  // namespace lpu::sim::core
