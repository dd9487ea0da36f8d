// One direction of a C2C cable as a SystemC primitive channel: a FIFO of vectors stamped with
// their arrival cycle. Determinism does not depend on process order: a vector sent on cycle t
// arrives at t + latency >= t + 1, and chip modules never run further ahead than that (see
// chip_module.h), so a receiver on cycle t only ever looks at sends from cycles < t.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include <systemc>

#include "sim/core/link_endpoint.h"

namespace lpu::sim::sysc {

class C2cLink : public sc_core::sc_prim_channel, public core::LinkEndpoint {
 public:
  C2cLink(const char* name, uint32_t vector_bytes, bool values)
      : sc_core::sc_prim_channel(name), bytes_(vector_bytes), values_(values) {}

  void push(uint64_t arrival, const uint8_t* data) override {
    if (count_ == arrivals_.size()) grow();
    const size_t slot = (head_ + count_) % arrivals_.size();
    arrivals_[slot] = arrival;
    if (values_ && data) std::memcpy(&data_[slot * bytes_], data, bytes_);
    ++count_;
  }

  bool pop(uint64_t cycle, uint8_t* out, uint64_t* arrival) override {
    if (count_ == 0 || arrivals_[head_] > cycle) return false;
    if (arrival) *arrival = arrivals_[head_];
    if (values_ && out) std::memcpy(out, &data_[head_ * bytes_], bytes_);
    head_ = (head_ + 1) % arrivals_.size();
    --count_;
    return true;
  }

 private:
  void grow() {  // doubles the ring, keeping FIFO order
    const size_t cap = arrivals_.empty() ? 8 : arrivals_.size() * 2;
    std::vector<uint64_t> a(cap);
    std::vector<uint8_t> d(values_ ? cap * bytes_ : 0);
    for (size_t i = 0; i < count_; ++i) {
      const size_t from = (head_ + i) % arrivals_.size();
      a[i] = arrivals_[from];
      if (values_) std::memcpy(&d[i * bytes_], &data_[from * bytes_], bytes_);
    }
    arrivals_.swap(a);
    data_.swap(d);
    head_ = 0;
  }

  uint32_t bytes_;
  bool values_;
  std::vector<uint64_t> arrivals_;
  std::vector<uint8_t> data_;
  size_t head_ = 0, count_ = 0;
};

}  // namespace lpu::sim::sysc
