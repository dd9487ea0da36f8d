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

// Before libonnx reads a tensor (its shape inference parses constant inputs such as Slice's starts
// with a memcpy of dims x element size from raw_data, unchecked): throws InputError when t's
// raw_data does not hold exactly that many bytes, or a dim is negative or the size overflows, for
// any element type of fixed size (also ones lpusim does not support; decode_tensor refuses those
// where they are used). Found by fuzz_onnx_import.
void check_raw_data_size(const onnx::TensorProto& t, const std::string& where);

}  // namespace lpu::frontend
