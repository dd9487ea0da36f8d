// VXM semantics: lane-wise ALU ops on the instruction's dtype (docs/architecture.md "Units").
// Integer arithmetic wraps; float ops compute in fp32 and round to the destination type.
// Choices the docs leave open (tell the lead): integer muli/addi use the fp32 immediate rounded
// to the nearest integer (ties to even), then wrap; cvt between integer types saturates, float ->
// integer rounds to nearest even and saturates (NaN -> 0); sel tests c != 0 in c's dtype.
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "sim/core/chip_engine.h"
#include "sim/core/lane_math.h"

namespace lpu::sim::core {

namespace {

int vxm_inputs(Opcode op) {
  switch (op) {
    case Opcode::Add: case Opcode::Sub: case Opcode::Mul: case Opcode::Div: case Opcode::Max:
    case Opcode::Min: case Opcode::CmpGt:
      return 2;
    case Opcode::Select:
      return 3;
    case Opcode::Mov: case Opcode::Neg: case Opcode::Abs: case Opcode::Relu: case Opcode::Tanh:
    case Opcode::Exp: case Opcode::Log: case Opcode::Sqrt: case Opcode::Rsqrt: case Opcode::Recip:
    case Opcode::Sigmoid: case Opcode::Erf: case Opcode::Cvt: case Opcode::MulImm: case Opcode::AddImm:
      return 1;
    default:
      throw std::logic_error(fmt::format("exec_vxm: opcode {} is not a VXM instruction", op_info(op).mnemonic));
  }
}

float unary_float(Opcode op, float a) {
  switch (op) {
    case Opcode::Mov: return a;
    case Opcode::Neg: return -a;
    case Opcode::Abs: return std::fabs(a);
    case Opcode::Relu: return a > 0.f ? a : 0.f;
    case Opcode::Tanh: return std::tanh(a);
    case Opcode::Exp: return std::exp(a);
    case Opcode::Log: return std::log(a);
    case Opcode::Sqrt: return std::sqrt(a);
    case Opcode::Rsqrt: return 1.f / std::sqrt(a);
    case Opcode::Recip: return 1.f / a;
    case Opcode::Sigmoid: return 1.f / (1.f + std::exp(-a));
    case Opcode::Erf: return std::erf(a);
    default: throw std::logic_error("unary_float: not a unary op");
  }
}

float binary_float(Opcode op, float a, float b) {
  switch (op) {
    case Opcode::Add: return a + b;
    case Opcode::Sub: return a - b;
    case Opcode::Mul: return a * b;
    case Opcode::Div: return a / b;
    case Opcode::Max: return std::fmax(a, b);
    case Opcode::Min: return std::fmin(a, b);
    case Opcode::CmpGt: return a > b ? 1.f : 0.f;
    default: throw std::logic_error("binary_float: not a binary op");
  }
}

int64_t binary_int(Opcode op, int64_t a, int64_t b) {
  switch (op) {
    case Opcode::Add: return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
    case Opcode::Sub: return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
    case Opcode::Mul: return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
    case Opcode::Max: return a > b ? a : b;
    case Opcode::Min: return a < b ? a : b;
    case Opcode::CmpGt: return a > b ? 1 : 0;
    default: throw std::logic_error("binary_int: not an integer binary op");
  }
}

int64_t unary_int(Opcode op, int64_t a) {
  switch (op) {
    case Opcode::Mov: return a;
    case Opcode::Neg: return static_cast<int64_t>(0 - static_cast<uint64_t>(a));
    case Opcode::Abs: return a < 0 ? static_cast<int64_t>(0 - static_cast<uint64_t>(a)) : a;
    case Opcode::Relu: return a > 0 ? a : 0;
    default: throw std::logic_error("unary_int: not an integer unary op");
  }
}

}  // namespace

void ChipEngine::exec_vxm(const Instr& in, uint64_t t, const TimingEntry& tm) {
  const DType T = in.dtype();
  const int nb = dtype_bytes(T);
  const int ninputs = vxm_inputs(in.op);
  const uint8_t* A[4] = {};
  const uint8_t* B[4] = {};
  const uint8_t* C[4] = {};
  if (in.op == Opcode::Select) {
    read_group(in.src_c(), nb, t, C);
    read_group(in.src_a(), nb, t, A);
    read_group(in.src_b(), nb, t, B);
  } else {
    read_group(in.src_a(), nb, t, A);
    if (ninputs == 2) read_group(in.src_b(), nb, t, B);
  }
  const DType D = in.op == Opcode::Cvt ? in.dtype2() : T;
  const int nd = dtype_bytes(D);
  uint8_t* out[4] = {};
  write_group(in.dst(), nd, t + tm.latency, out);
  const bool trans = op_info(in.op).sched == SchedClass::VxmTrans;
  count(trans ? EnergyEvent::VxmTransOp : EnergyEvent::VxmOp, static_cast<uint64_t>(nb));
  if (!functional_) return;

  const bool fl = dtype_is_float(T);
  const uint32_t L = lanes_;
  switch (in.op) {
    case Opcode::Add: case Opcode::Sub: case Opcode::Mul: case Opcode::Div: case Opcode::Max:
    case Opcode::Min: case Opcode::CmpGt:
      if (fl)
        for (uint32_t i = 0; i < L; ++i) store_float(T, out, i, binary_float(in.op, load_float(T, A, i), load_float(T, B, i)));
      else
        for (uint32_t i = 0; i < L; ++i) store_int(T, out, i, binary_int(in.op, load_int(T, A, i), load_int(T, B, i)));
      return;
    case Opcode::Select:
      for (uint32_t i = 0; i < L; ++i) {
        const bool c = fl ? load_float(T, C, i) != 0.f : load_int(T, C, i) != 0;
        store_raw(out, nb, i, load_raw(c ? A : B, nb, i));
      }
      return;
    case Opcode::Mov:
      for (int b = 0; b < nb; ++b) std::memcpy(out[b], A[b], L);
      return;
    case Opcode::Neg: case Opcode::Abs: case Opcode::Relu:
      if (fl)
        for (uint32_t i = 0; i < L; ++i) store_float(T, out, i, unary_float(in.op, load_float(T, A, i)));
      else
        for (uint32_t i = 0; i < L; ++i) store_int(T, out, i, unary_int(in.op, load_int(T, A, i)));
      return;
    case Opcode::Tanh: case Opcode::Exp: case Opcode::Log: case Opcode::Sqrt: case Opcode::Rsqrt:
    case Opcode::Recip: case Opcode::Sigmoid: case Opcode::Erf:
      for (uint32_t i = 0; i < L; ++i) store_float(T, out, i, unary_float(in.op, load_float(T, A, i)));
      return;
    case Opcode::MulImm: case Opcode::AddImm: {
      const float imm = in.fimm();
      const bool mul = in.op == Opcode::MulImm;
      if (fl) {
        for (uint32_t i = 0; i < L; ++i) {
          const float a = load_float(T, A, i);
          store_float(T, out, i, mul ? a * imm : a + imm);
        }
      } else {
        const double r = std::nearbyint(static_cast<double>(imm));
        const int64_t k = std::isfinite(r) && std::fabs(r) < 9.0e18 ? static_cast<int64_t>(r) : 0;
        for (uint32_t i = 0; i < L; ++i)
          store_int(T, out, i, binary_int(mul ? Opcode::Mul : Opcode::Add, load_int(T, A, i), k));
      }
      return;
    }
    case Opcode::Cvt: {
      const bool dfl = dtype_is_float(D);
      for (uint32_t i = 0; i < L; ++i) {
        if (fl && dfl) store_float(D, out, i, load_float(T, A, i));
        else if (fl) store_int(D, out, i, float_to_int_sat(D, load_float(T, A, i)));
        else if (dfl) store_float(D, out, i, static_cast<float>(load_int(T, A, i)));
        else store_int(D, out, i, int_saturate(D, load_int(T, A, i)));
      }
      return;
    }
    default:
      throw std::logic_error(fmt::format("exec_vxm: opcode {} is not a VXM instruction", op_info(in.op).mnemonic));
  }
}

}  // namespace lpu::sim::core
