// Lane-wise element access for vectors held as byte planes (one plane per stream of a stream
// group, little-endian) and the numeric conversions the units share (f16 round-to-nearest-even).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include <Eigen/Core>

#include "isa/isa.h"

namespace lpu::sim::core {

inline float f16_bits_to_f32(uint16_t bits) {
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(bits));
}
inline uint16_t f32_to_f16_bits(float f) {  // round to nearest even (Eigen's conversion)
  return Eigen::numext::bit_cast<uint16_t>(Eigen::half(f));
}
inline float bits_to_f32(uint32_t bits) { return Eigen::numext::bit_cast<float>(bits); }
inline uint32_t f32_to_bits(float f) { return Eigen::numext::bit_cast<uint32_t>(f); }

// Raw little-endian word of lane i over `bytes` planes.
inline uint32_t load_raw(const uint8_t* const* planes, int bytes, uint32_t i) {
  uint32_t v = 0;
  for (int b = 0; b < bytes; ++b) v |= static_cast<uint32_t>(planes[b][i]) << (8 * b);
  return v;
}
inline void store_raw(uint8_t* const* planes, int bytes, uint32_t i, uint32_t v) {
  for (int b = 0; b < bytes; ++b) planes[b][i] = static_cast<uint8_t>(v >> (8 * b));
}

// Integer value of lane i (sign-extended) for I8/I16/I32.
inline int64_t load_int(DType t, const uint8_t* const* planes, uint32_t i) {
  const uint32_t raw = load_raw(planes, dtype_bytes(t), i);
  switch (t) {
    case DType::I8: return static_cast<int8_t>(raw);
    case DType::I16: return static_cast<int16_t>(raw);
    case DType::I32: return static_cast<int32_t>(raw);
    case DType::F16:
    case DType::F32: break;
  }
  throw std::logic_error("load_int: float dtype");
}
// Float value of lane i for F16/F32.
inline float load_float(DType t, const uint8_t* const* planes, uint32_t i) {
  switch (t) {
    case DType::F16: return f16_bits_to_f32(static_cast<uint16_t>(load_raw(planes, 2, i)));
    case DType::F32: return bits_to_f32(load_raw(planes, 4, i));
    case DType::I8:
    case DType::I16:
    case DType::I32: break;
  }
  throw std::logic_error("load_float: integer dtype");
}
// Any dtype as double (exact for every element type).
inline double load_any(DType t, const uint8_t* const* planes, uint32_t i) {
  return dtype_is_float(t) ? static_cast<double>(load_float(t, planes, i)) : static_cast<double>(load_int(t, planes, i));
}
// Integer store wraps (keeps the low bytes).
inline void store_int(DType t, uint8_t* const* planes, uint32_t i, int64_t v) {
  store_raw(planes, dtype_bytes(t), i, static_cast<uint32_t>(static_cast<uint64_t>(v)));
}
// Float store rounds fp32 to the destination type (f16: nearest even).
inline void store_float(DType t, uint8_t* const* planes, uint32_t i, float v) {
  if (t == DType::F16) store_raw(planes, 2, i, f32_to_f16_bits(v));
  else store_raw(planes, 4, i, f32_to_bits(v));
}
// Float -> integer type: round to nearest even, saturate, NaN -> 0.
inline int64_t float_to_int_sat(DType t, double v) {
  if (std::isnan(v)) return 0;
  const double r = std::nearbyint(v);  // default rounding mode: nearest even
  int64_t lo = 0, hi = 0;
  switch (t) {
    case DType::I8: lo = std::numeric_limits<int8_t>::min(); hi = std::numeric_limits<int8_t>::max(); break;
    case DType::I16: lo = std::numeric_limits<int16_t>::min(); hi = std::numeric_limits<int16_t>::max(); break;
    case DType::I32: lo = std::numeric_limits<int32_t>::min(); hi = std::numeric_limits<int32_t>::max(); break;
    case DType::F16:
    case DType::F32: throw std::logic_error("float_to_int_sat: float dtype");
  }
  if (r <= static_cast<double>(lo)) return lo;
  if (r >= static_cast<double>(hi)) return hi;
  return static_cast<int64_t>(r);
}
// Integer -> narrower integer type: saturate.
inline int64_t int_saturate(DType t, int64_t v) {
  switch (t) {
    case DType::I8: return std::clamp<int64_t>(v, INT8_MIN, INT8_MAX);
    case DType::I16: return std::clamp<int64_t>(v, INT16_MIN, INT16_MAX);
    case DType::I32: return std::clamp<int64_t>(v, INT32_MIN, INT32_MAX);
    case DType::F16:
    case DType::F32: break;
  }
  throw std::logic_error("int_saturate: float dtype");
}

// Compile-time element access, for the units' lane loops: Elem<T>::load(planes, i) gives the
// value as int64_t (integer types, sign-extended) or float; store() wraps integers and rounds
// floats to T (f16: nearest even).
template <DType T> struct Elem;
template <> struct Elem<DType::I8> {
  using V = int64_t;
  static V load(const uint8_t* const* p, uint32_t i) { return static_cast<int8_t>(p[0][i]); }
  static void store(uint8_t* const* p, uint32_t i, V v) { p[0][i] = static_cast<uint8_t>(v); }
};
template <> struct Elem<DType::I16> {
  using V = int64_t;
  static V load(const uint8_t* const* p, uint32_t i) { return static_cast<int16_t>(p[0][i] | (p[1][i] << 8)); }
  static void store(uint8_t* const* p, uint32_t i, V v) {
    p[0][i] = static_cast<uint8_t>(v);
    p[1][i] = static_cast<uint8_t>(v >> 8);
  }
};
template <> struct Elem<DType::I32> {
  using V = int64_t;
  static V load(const uint8_t* const* p, uint32_t i) { return static_cast<int32_t>(load_raw(p, 4, i)); }
  static void store(uint8_t* const* p, uint32_t i, V v) { store_raw(p, 4, i, static_cast<uint32_t>(static_cast<uint64_t>(v))); }
};
template <> struct Elem<DType::F16> {
  using V = float;
  static V load(const uint8_t* const* p, uint32_t i) { return f16_bits_to_f32(static_cast<uint16_t>(p[0][i] | (p[1][i] << 8))); }
  static void store(uint8_t* const* p, uint32_t i, V v) {
    const uint16_t b = f32_to_f16_bits(v);
    p[0][i] = static_cast<uint8_t>(b);
    p[1][i] = static_cast<uint8_t>(b >> 8);
  }
};
template <> struct Elem<DType::F32> {
  using V = float;
  static V load(const uint8_t* const* p, uint32_t i) { return bits_to_f32(load_raw(p, 4, i)); }
  static void store(uint8_t* const* p, uint32_t i, V v) { store_raw(p, 4, i, f32_to_bits(v)); }
};

// Calls f.template operator()<T>() with the runtime dtype as a compile-time constant.
template <class F> decltype(auto) with_dtype(DType t, F&& f) {
  switch (t) {
    case DType::I8: return f(std::integral_constant<DType, DType::I8>{});
    case DType::I16: return f(std::integral_constant<DType, DType::I16>{});
    case DType::I32: return f(std::integral_constant<DType, DType::I32>{});
    case DType::F16: return f(std::integral_constant<DType, DType::F16>{});
    case DType::F32: return f(std::integral_constant<DType, DType::F32>{});
  }
  throw std::logic_error("with_dtype: bad dtype");
}

}  // namespace lpu::sim::core
