// SXM semantics: shift, rotate, permute/distribute (by a program map) and 16x16 transpose, applied
// to every byte plane of the stream group alike (docs/architecture.md "Units").
#include <cstring>

#include <fmt/format.h>

#include "sim/core/chip_engine.h"

namespace lpu::sim::core {

void ChipEngine::exec_sxm(const Instr& in, uint64_t t, const TimingEntry& tm) {
  const int nb = stream_group_size(in, Field::SrcA);  // 16 for transpose, else the dtype's bytes
  const uint8_t* A[16] = {};
  uint8_t* out[16] = {};
  read_group(in.src_a(), nb, t, A);
  write_group(in.dst(), nb, t + tm.latency, out);
  count(EnergyEvent::SxmOp, static_cast<uint64_t>(nb));
  if (!functional_) return;
  const int64_t L = lanes_;
  switch (in.op) {
    case Opcode::Shift: {
      const int64_t s = in.simm();
      for (int b = 0; b < nb; ++b)
        for (int64_t i = 0; i < L; ++i) {
          const int64_t j = i - s;
          out[b][i] = (j >= 0 && j < L) ? A[b][j] : 0;
        }
      return;
    }
    case Opcode::Rotate: {
      const int64_t s = ((in.simm() % L) + L) % L;
      for (int b = 0; b < nb; ++b)
        for (int64_t i = 0; i < L; ++i) out[b][i] = A[b][(i - s + L) % L];
      return;
    }
    case Opcode::Permute:
    case Opcode::Distribute: {
      const std::vector<uint16_t>& map = prog_.maps[in.get(Field::Imm)];  // checked at load
      for (int b = 0; b < nb; ++b)
        for (int64_t i = 0; i < L; ++i) out[b][i] = map[i] == 0xFFFF ? 0 : A[b][map[i]];
      return;
    }
    case Opcode::Transpose:
      // Block k covers lanes 16k..16k+15; out stream j lane 16k+i = in stream i lane 16k+j.
      for (int64_t k = 0; k < L / 16; ++k)
        for (int j = 0; j < 16; ++j)
          for (int i = 0; i < 16; ++i) out[j][16 * k + i] = A[i][16 * k + j];
      return;
    default:
      throw std::logic_error(fmt::format("exec_sxm: opcode {} is not an SXM instruction", op_info(in.op).mnemonic));
  }
}

}  // namespace lpu::sim::core
