// VXM semantics: lane-wise ALU ops on the instruction's dtype (docs/architecture.md "Units").
// Integer arithmetic wraps; float ops compute in fp32 and round to the destination type.
// Choices the docs leave open (tell the lead): integer muli/addi use the fp32 immediate rounded
// to the nearest integer (ties to even), then wrap; cvt between integer types saturates, float ->
// integer rounds to nearest even and saturates (NaN -> 0); sel tests c != 0 in c's dtype.
#include <cmath>
#include <cstring>
#include <type_traits>

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
    case Opcode::Select: case Opcode::Fma:
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

}  // namespace

void ChipEngine::exec_vxm(const Instr& in, uint64_t t, const TimingEntry& tm) {
  const DType T = in.dtype();
  const int nb = dtype_bytes(T);
  const int ninputs = vxm_inputs(in.op);
  const uint8_t* A[4] = {};
  const uint8_t* B[4] = {};
  const uint8_t* C[4] = {};
  if (ninputs == 3) {
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

  const uint32_t L = lanes_;
  const float imm = in.fimm();
  with_dtype(T, [&](auto tc) {
    constexpr DType TT = decltype(tc)::value;
    using E = Elem<TT>;
    using V = typename E::V;
    constexpr bool FL = std::is_same_v<V, float>;
    auto map1 = [&](auto f) {
      for (uint32_t i = 0; i < L; ++i) E::store(out, i, f(E::load(A, i)));
    };
    auto map2 = [&](auto f) {
      for (uint32_t i = 0; i < L; ++i) E::store(out, i, f(E::load(A, i), E::load(B, i)));
    };
    // Integer values are int64 holding at most 32 significant bits: +, -, * cannot overflow, and
    // the store keeps the low bytes (wrapping).
    switch (in.op) {
      case Opcode::Add: map2([](V a, V b) { return a + b; }); return;
      case Opcode::Sub: map2([](V a, V b) { return a - b; }); return;
      case Opcode::Mul: map2([](V a, V b) { return a * b; }); return;
      case Opcode::Fma:  // float: one rounding to fp32 (std::fma), then the store's to dtype
        for (uint32_t i = 0; i < L; ++i) {
          const V a = E::load(A, i), b = E::load(B, i), c = E::load(C, i);
          if constexpr (FL) E::store(out, i, std::fma(a, b, c));
          else E::store(out, i, a * b + c);
        }
        return;
      case Opcode::Max:
        if constexpr (FL) map2([](V a, V b) { return std::fmax(a, b); });
        else map2([](V a, V b) { return a > b ? a : b; });
        return;
      case Opcode::Min:
        if constexpr (FL) map2([](V a, V b) { return std::fmin(a, b); });
        else map2([](V a, V b) { return a < b ? a : b; });
        return;
      case Opcode::CmpGt: map2([](V a, V b) { return a > b ? V(1) : V(0); }); return;
      case Opcode::Select:
        for (uint32_t i = 0; i < L; ++i) store_raw(out, nb, i, load_raw(E::load(C, i) != V(0) ? A : B, nb, i));
        return;
      case Opcode::Mov:
        for (int b = 0; b < nb; ++b) std::memcpy(out[b], A[b], L);
        return;
      case Opcode::Neg: map1([](V a) { return -a; }); return;
      case Opcode::Abs:
        if constexpr (FL) map1([](V a) { return std::fabs(a); });
        else map1([](V a) { return a < 0 ? -a : a; });
        return;
      case Opcode::Relu: map1([](V a) { return a > V(0) ? a : V(0); }); return;
      case Opcode::Div: case Opcode::Tanh: case Opcode::Exp: case Opcode::Log: case Opcode::Sqrt:
      case Opcode::Rsqrt: case Opcode::Recip: case Opcode::Sigmoid: case Opcode::Erf:
        if constexpr (FL) {
          if (in.op == Opcode::Div) map2([](V a, V b) { return a / b; });
          else map1([op = in.op](V a) { return unary_float(op, a); });
          return;
        } else {
          throw std::logic_error("exec_vxm: float-only op on an integer dtype (load check missed it)");
        }
      case Opcode::MulImm:
      case Opcode::AddImm: {
        const bool mul = in.op == Opcode::MulImm;
        if constexpr (FL) {
          if (mul) map1([imm](V a) { return a * imm; });
          else map1([imm](V a) { return a + imm; });
        } else {
          const double r = std::nearbyint(static_cast<double>(imm));
          const int64_t k = std::isfinite(r) && std::fabs(r) < 9.0e18 ? static_cast<int64_t>(r) : 0;
          if (mul) map1([k](V a) { return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(k)); });
          else map1([k](V a) { return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(k)); });
        }
        return;
      }
      case Opcode::Cvt:
        with_dtype(D, [&](auto dc) {
          constexpr DType DD = decltype(dc)::value;
          using ED = Elem<DD>;
          constexpr bool DFL = std::is_same_v<typename ED::V, float>;
          for (uint32_t i = 0; i < L; ++i) {
            const V a = E::load(A, i);
            if constexpr (FL && DFL) ED::store(out, i, a);
            else if constexpr (FL) ED::store(out, i, float_to_int_sat(DD, a));
            else if constexpr (DFL) ED::store(out, i, static_cast<float>(a));
            else ED::store(out, i, int_saturate(DD, a));
          }
        });
        return;
      default:
        throw std::logic_error(fmt::format("exec_vxm: opcode {} is not a VXM instruction", op_info(in.op).mnemonic));
    }
  });
}

}  // namespace lpu::sim::core
