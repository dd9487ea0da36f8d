// Where each element of a TensorDesc lives in SRAM (program.h's layout comment, implemented once):
// element e of the flattened tensor -> (vector v, lane); byte plane b is in slices[b] at addr + v.
#pragma once
#include <cstdint>

#include "isa/program.h"

namespace lpu::sim::core {

struct TensorLayout {
  uint64_t numel = 0, inner = 1, rows = 0, vpr = 0;  // vpr: vectors per row
  TensorLayout(const TensorDesc& t, uint32_t lanes) {
    numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<uint64_t>(d < 0 ? 0 : d);
    inner = t.shape.empty() ? 1 : static_cast<uint64_t>(t.shape.back() < 0 ? 0 : t.shape.back());
    rows = inner ? numel / inner : 0;
    vpr = (inner + lanes - 1) / lanes;
    lanes_ = lanes;
  }
  uint64_t vectors() const { return rows * vpr; }
  uint64_t vector_of(uint64_t e) const { return (e / inner) * vpr + (e % inner) / lanes_; }
  uint32_t lane_of(uint64_t e) const { return static_cast<uint32_t>((e % inner) % lanes_); }

 private:
  uint32_t lanes_ = 1;
};

}  // namespace lpu::sim::core
