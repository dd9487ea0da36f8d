// VXM instructions as the kernels build them (operand and destination fields are the caller's).
#pragma once
#include <cstdint>
#include <cstring>

#include "isa/isa.h"

namespace lpu::compiler {

// `cvt.from.to`.
inline Instr cvt_instr(DType from, DType to) {
  Instr in = make_instr(Opcode::Cvt, from);
  in.set(Field::DType2, static_cast<uint32_t>(to));
  return in;
}

// `muli.f32` by `factor` (the fp32 immediate).
inline Instr muli_f32(float factor) {
  Instr in = make_instr(Opcode::MulImm, DType::F32);
  uint32_t bits;
  std::memcpy(&bits, &factor, sizeof bits);
  in.set(Field::FImm, bits);
  return in;
}

}  // namespace lpu::compiler
