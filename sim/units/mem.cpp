// MEM slice semantics: read, write, gather, scatter (docs/architecture.md "Units").
// SRAM contents change at issue in this model; since reading an address before its write lands is
// an error ("sram-hazard"), that is observably the same as landing at issue + latency, except for
// two writes to one address in flight at once that land in an order different from their issue
// order (values are applied in issue order). Gather/scatter lane addresses are addr + int16 index;
// they are known only in functional mode, so their per-lane hazard and range checks (and
// scatter's sram_vectors_used marks) happen in functional mode only.
#include <cstring>

#include <fmt/format.h>

#include "sim/core/chip_engine.h"
#include "sim/core/lane_math.h"

namespace lpu::sim::core {

void ChipEngine::exec_mem(const Instr& in, uint32_t step, uint64_t t, const TimingEntry& tm) {
  SramSlice& m = sram_[queues_[cur_q_].slice];
  const uint64_t land = t + tm.latency;
  auto hazard = [&](uint32_t a) {
    if (m.pending(a) > t)
      fail("sram-hazard", "",
           fmt::format("read of address {} on cycle {} while the write to it lands only on cycle {}", a, t, m.pending(a)));
  };
  auto lane_addr = [&](const uint8_t* const* idx, uint32_t lane) -> uint32_t {
    const int64_t a = static_cast<int64_t>(in.get(Field::Addr)) + static_cast<int16_t>(load_raw(idx, 2, lane));
    if (a < 0 || a >= static_cast<int64_t>(cfg_.sram_addresses))
      fail("sram-range", stream_name(in.src_a()),
           fmt::format("lane {}: address {} + index {} = {} is outside 0..{}", lane, in.get(Field::Addr),
                       static_cast<int16_t>(load_raw(idx, 2, lane)), a, cfg_.sram_addresses - 1));
    return static_cast<uint32_t>(a);
  };
  switch (in.op) {
    case Opcode::Read: {
      const uint32_t a = in.get(Field::Addr) + step;
      hazard(a);
      uint8_t* out[1];
      write_group(in.dst(), 1, land, out);
      if (out[0]) {
        const uint8_t* src = m.peek(a);
        if (src) std::memcpy(out[0], src, lanes_);
        else std::memset(out[0], 0, lanes_);
      }
      count(EnergyEvent::SramRead, 1);
      return;
    }
    case Opcode::Write: {
      const uint32_t a = in.get(Field::Addr) + step;
      const uint8_t* src[1];
      read_group(in.src_a(), 1, t, src);
      m.note_write(a, land);
      if (src[0]) std::memcpy(m.vec(a), src[0], lanes_);
      count(EnergyEvent::SramWrite, 1);
      return;
    }
    case Opcode::Gather: {
      const uint8_t* idx[2];
      read_group(in.src_a(), 2, t, idx);
      if (functional_)
        for (uint32_t i = 0; i < lanes_; ++i) hazard(lane_addr(idx, i));
      uint8_t* out[1];
      write_group(in.dst(), 1, land, out);
      if (out[0])
        for (uint32_t i = 0; i < lanes_; ++i) {
          const uint8_t* v = m.peek(lane_addr(idx, i));
          out[0][i] = v ? v[i] : 0;
        }
      count(EnergyEvent::SramRead, 1);
      return;
    }
    case Opcode::Scatter: {
      const uint8_t* idx[2];
      const uint8_t* val[1];
      read_group(in.src_b(), 1, t, val);
      read_group(in.src_a(), 2, t, idx);
      if (functional_)
        for (uint32_t i = 0; i < lanes_; ++i) {
          const uint32_t a = lane_addr(idx, i);
          m.note_write(a, land);
          m.vec(a)[i] = val[0][i];
        }
      count(EnergyEvent::SramWrite, 1);
      return;
    }
    default:
      throw std::logic_error(fmt::format("exec_mem: opcode {} is not a MEM instruction", op_info(in.op).mnemonic));
  }
}

}  // namespace lpu::sim::core
