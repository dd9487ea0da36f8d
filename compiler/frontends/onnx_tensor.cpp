// Decoding of onnx.TensorProto (initializers, Constant values, test-data files) into IR bytes.
#include "compiler/frontends/onnx_tensor.h"

#include <cstring>

#include "isa/chip_config.h"

namespace lpu::frontend {

std::optional<ir::DType> dtype_from_onnx(int32_t t) {
  switch (t) {
    case onnx::TensorProto_DataType_FLOAT: return ir::DType::F32;
    case onnx::TensorProto_DataType_FLOAT16: return ir::DType::F16;
    case onnx::TensorProto_DataType_INT8: return ir::DType::I8;
    case onnx::TensorProto_DataType_INT32: return ir::DType::I32;
    case onnx::TensorProto_DataType_INT64: return ir::DType::I64;
    case onnx::TensorProto_DataType_BOOL: return ir::DType::BOOL;
    default: return std::nullopt;
  }
}

std::string onnx_type_name(int32_t t) {
  if (onnx::TensorProto_DataType_IsValid(t)) return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(t));
  return std::to_string(t);
}

const char* kOnnxSupportedTypes() { return "FLOAT, FLOAT16, INT8, INT32, INT64, BOOL"; }

DecodedTensor decode_tensor(const onnx::TensorProto& t, const std::string& where) {
  const std::string nm = "tensor '" + t.name() + "'";
  auto dt = dtype_from_onnx(t.data_type());
  if (!dt)
    throw InputError(where + ": " + nm + " has element type " + onnx_type_name(t.data_type()) + "; supported: " + kOnnxSupportedTypes());
  if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL)
    throw InputError(where + ": " + nm + " uses external data; lpusim reads only data stored inside the .onnx file");
  if (t.has_segment()) throw InputError(where + ": " + nm + " is segmented; not supported");
  DecodedTensor d;
  d.dtype = *dt;
  int64_t n = 1;
  for (int64_t x : t.dims()) {
    if (x < 1) throw InputError(where + ": " + nm + " has dim " + std::to_string(x) + " in its shape; lpusim needs every dim >= 1");
    if (n > (int64_t(1) << 40) / x) throw InputError(where + ": " + nm + " is too large (more than 2^40 elements)");
    n *= x;
    d.shape.push_back(x);
  }
  const size_t b = static_cast<size_t>(ir::dtype_bytes(d.dtype));
  const size_t bytes = static_cast<size_t>(n) * b;
  if (t.has_raw_data()) {
    check_raw_data_size(t, where);
    d.data.assign(t.raw_data().begin(), t.raw_data().end());
    if (d.dtype == ir::DType::BOOL)
      for (auto& x : d.data) x = x ? 1 : 0;
    return d;
  }
  d.data.resize(bytes);
  auto count_fail = [&](int have) {
    throw InputError(where + ": " + nm + " holds " + std::to_string(have) + " values; shape " + ir::shape_str(d.shape) +
                     " needs " + std::to_string(n));
  };
  switch (d.dtype) {
    case ir::DType::F32:
      if (t.float_data_size() != n) count_fail(t.float_data_size());
      if (n) std::memcpy(d.data.data(), t.float_data().data(), bytes);
      break;
    case ir::DType::I64:
      if (t.int64_data_size() != n) count_fail(t.int64_data_size());
      if (n) std::memcpy(d.data.data(), t.int64_data().data(), bytes);
      break;
    case ir::DType::I32: case ir::DType::I8: case ir::DType::F16: case ir::DType::BOOL:
      if (t.int32_data_size() != n) count_fail(t.int32_data_size());
      for (int64_t k = 0; k < n; ++k) {
        const int32_t v = t.int32_data(static_cast<int>(k));
        if (d.dtype == ir::DType::BOOL) d.data[k] = v ? 1 : 0;
        else std::memcpy(d.data.data() + k * b, &v, b);  // low bytes (little-endian): i8, f16 bits
      }
      break;
  }
  return d;
}

void check_raw_data_size(const onnx::TensorProto& t, const std::string& where) {
  if (!t.has_raw_data() || t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) return;
  size_t b = 0;
  switch (t.data_type()) {
    case onnx::TensorProto_DataType_FLOAT: case onnx::TensorProto_DataType_INT32:
    case onnx::TensorProto_DataType_UINT32: b = 4; break;
    case onnx::TensorProto_DataType_DOUBLE: case onnx::TensorProto_DataType_INT64:
    case onnx::TensorProto_DataType_UINT64: case onnx::TensorProto_DataType_COMPLEX64: b = 8; break;
    case onnx::TensorProto_DataType_COMPLEX128: b = 16; break;
    case onnx::TensorProto_DataType_FLOAT16: case onnx::TensorProto_DataType_BFLOAT16:
    case onnx::TensorProto_DataType_INT16: case onnx::TensorProto_DataType_UINT16: b = 2; break;
    case onnx::TensorProto_DataType_INT8: case onnx::TensorProto_DataType_UINT8:
    case onnx::TensorProto_DataType_BOOL: b = 1; break;
    default: return;  // strings, undefined: libonnx does not memcpy them
  }
  const std::string nm = "tensor '" + t.name() + "'";
  uint64_t n = 1;
  ir::Shape shape;
  for (int64_t x : t.dims()) {
    if (x < 0) throw InputError(where + ": " + nm + " has dim " + std::to_string(x) + " in its shape");
    if (x > 0 && n > (uint64_t(1) << 40) / static_cast<uint64_t>(x))
      throw InputError(where + ": " + nm + " is too large (more than 2^40 elements)");
    n *= static_cast<uint64_t>(x);
    shape.push_back(x);
  }
  // (decode_tensor reports a raw_data size mismatch through this check too: one wording.)
  const auto dt = dtype_from_onnx(t.data_type());
  if (t.raw_data().size() != n * b)
    throw InputError(where + ": " + nm + " raw_data has " + std::to_string(t.raw_data().size()) + " bytes; shape " +
                     ir::shape_str(shape) + " of " + (dt ? std::string(ir::dtype_name(*dt)) : onnx_type_name(t.data_type())) +
                     " needs " + std::to_string(n * b));
}

}  // namespace lpu::frontend
