// ONNX front end: loads a model file (opsets 6-17), checks it, imports it into the graph IR with
// constant subgraphs folded, Identity/Dropout removed and BatchNormalization folded into a
// preceding Conv. Every problem with the file is an lpu::InputError naming the file, the node (name,
// op type, opset) or tensor, the value and what is allowed. See docs/onnx-support.md.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/reference/interpreter.h"

namespace lpu::frontend {

struct OnnxImportOptions {
  // Values for symbolic input dims (ONNX dim_param, e.g. "batch" -> 1). Inputs with a symbolic dim
  // not listed here are rejected: the chip needs static shapes.
  std::map<std::string, int64_t> dim_values;
  bool fold_batchnorm = true;  // fold BatchNormalization into the Conv feeding it
  // Graph inputs bound to constant values at import (folded like initializers; they no longer
  // appear as graph inputs). dtype and shape must match the input's declaration.
  std::map<std::string, ref::Value> constant_inputs;
};

// Opsets 6..10 are imported where an op's old version means what the canonical IR op means or the
// difference is handled (legacy broadcast, Slice-1 attributes, BatchNormalization/Dropout is_test,
// spatial); any other old-version difference is refused by name (docs/onnx-support.md "Opsets").
constexpr int kOnnxMinOpset = 6;
constexpr int kOnnxMaxOpset = 17;

ir::Graph import_onnx(const std::string& path, const OnnxImportOptions& opts = {});
// Same, from the serialized bytes; `source_name` stands for the file in messages.
ir::Graph import_onnx_bytes(const std::string& bytes, const std::string& source_name,
                            const OnnxImportOptions& opts = {});

// ONNX op types the importer accepts (sorted), as listed in error messages.
const std::vector<std::string>& onnx_supported_ops();

// Reads a serialized onnx.TensorProto (the ONNX test-data layout, e.g. test_data_set_0/input_0.pb).
// `name`, if given, receives the TensorProto's name.
ref::Value load_onnx_tensor_file(const std::string& path, std::string* name = nullptr);

}  // namespace lpu::frontend
