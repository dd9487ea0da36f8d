// Helpers for ONNX backend test cases (model.onnx + test_data_set_N/), used by `lpusim
// conformance`: the op types a model uses, read without importing it (so rejected models can be
// grouped by op too), and a copy of a model whose parameter inputs are bound to constants the way
// an exporter writes weights and shapes (node tests pass Conv weights, Reshape shapes, ... as graph
// inputs, which the chip's static schedule needs as constants).
#pragma once
#include <string>
#include <vector>

namespace lpu::frontend {

// Distinct op types of the main graph's nodes, in order of first appearance (ops of a custom
// domain are written "domain:OpType"). InputError naming the file if it cannot be read or is not
// a serialized ONNX ModelProto.
std::vector<std::string> onnx_op_types(const std::string& path);

// Number of graph inputs of the model at `path` that are not initializers (the ones test data
// sets give as input_0.pb, input_1.pb, ...).
int onnx_runtime_inputs(const std::string& path);

// Serialized copy of the model at `path` in which runtime input k (k >= first, counted like
// onnx_runtime_inputs) becomes an initializer holding the onnx.TensorProto stored in
// `tensor_files[k - first]`; the remaining inputs keep their order. InputError naming the file if a
// file is unreadable or `tensor_files` does not cover exactly inputs first..n-1.
std::string onnx_bind_inputs(const std::string& path, int first, const std::vector<std::string>& tensor_files);

}  // namespace lpu::frontend
