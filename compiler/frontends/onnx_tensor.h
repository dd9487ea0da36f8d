// Internal to the ONNX front end: decoding onnx.TensorProto into IR dtype/shape/bytes and mapping
// ONNX element types. Includes ONNX headers, so only front-end .cpp files include it.
#pragma once
#include <onnx/onnx_pb.h>

#include <optional>
#include <string>
#include <vector>

#include "compiler/ir/dtype.h"

namespace lpu::frontend {

// IR dtype of an ONNX TensorProto_DataType, or nullopt if the IR has no such type.
std::optional<ir::DType> dtype_from_onnx(int32_t onnx_type);
std::string onnx_type_name(int32_t onnx_type);       // "FLOAT", "DOUBLE", ... or the number
const char* kOnnxSupportedTypes();                   // "FLOAT, FLOAT16, INT8, INT32, INT64, BOOL"

struct DecodedTensor {
  ir::DType dtype = ir::DType::F32;
  ir::Shape shape;
  std::vector<uint8_t> data;  // little-endian in dtype, as ir::Tensor::data
};
// Throws InputError "<where>: ..." for unsupported types, external data, dims < 1, size mismatch.
DecodedTensor decode_tensor(const onnx::TensorProto& t, const std::string& where);

}  // namespace lpu::frontend
