// IR element types and shapes: names, sizes, fp16 <-> fp32 conversion. Distinct from lpu::DType
// (the chip's stream element types): the IR also has i64 and bool, which only exist before lowering.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lpu::ir {

enum class DType : uint8_t { I8 = 0, I32 = 1, I64 = 2, F16 = 3, F32 = 4, BOOL = 5 };
constexpr int kNumIrDTypes = 6;

std::string_view dtype_name(DType t);                  // "i8", "i32", "i64", "f16", "f32", "bool"
std::optional<DType> dtype_from_name(std::string_view s);
int dtype_bytes(DType t);                              // 1, 4, 8, 2, 4, 1
bool dtype_is_float(DType t);                          // f16, f32

// Static shape: every dim >= 1; rank 0 (scalar) has one element.
using Shape = std::vector<int64_t>;
int64_t num_elements(const Shape& s);                  // product of dims (1 for a scalar)
int64_t num_elements(const Shape& s, size_t first, size_t last);  // product of dims [first, last)
std::string shape_str(const Shape& s);                 // "[1,3,224,224]", scalar "[]"

// IEEE binary16 <-> binary32, round to nearest even; NaN/Inf preserved.
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
// f's nearest binary16 value as a float (f16_to_f32(f32_to_f16(f))): how an f16 tensor holds f.
inline float round_f16(float f) { return f16_to_f32(f32_to_f16(f)); }
// Values as little-endian bytes (a Program's tensors, SRAM image data): each rounded to f16, two
// bytes; or as f32, four bytes.
std::vector<uint8_t> f16_bytes(const std::vector<float>& v);
std::vector<uint8_t> f32_bytes(const std::vector<float>& v);

}  // namespace lpu::ir
