// C2C semantics: send puts the vector on the link (arrives at the peer at issue + latency, which
// instr_timing makes base + wire + serialization); recv pops the oldest vector that has arrived
// by its issue cycle; deskew is a control op on the link's RX side.
#include <fmt/format.h>

#include "sim/core/chip_engine.h"

namespace lpu::sim::core {

void ChipEngine::exec_c2c(const Instr& in, uint64_t t, const TimingEntry& tm) {
  const uint32_t l = in.get(Field::Link);
  LinkState& link = links_[l];
  switch (in.op) {
    case Opcode::Send: {
      const uint8_t* src[1];
      read_group(in.src_a(), 1, t, src);
      link.tx->push(t + tm.latency, src[0]);
      count(EnergyEvent::C2cByte, lanes_);
      return;
    }
    case Opcode::Recv: {
      uint8_t* out[1];
      write_group(in.dst(), 1, t + tm.latency, out);
      uint64_t arrival = 0;
      if (!link.rx->pop(t, out[0], &arrival))
        fail("recv-no-send", "",
             fmt::format("recv on link l{} of chip {} on cycle {}: no vector has arrived on it by then", l, chip_, t));
      return;
    }
    case Opcode::Deskew:
      return;
    default:
      throw std::logic_error(fmt::format("exec_c2c: opcode {} is not a C2C instruction", op_info(in.op).mnemonic));
  }
}

}  // namespace lpu::sim::core
