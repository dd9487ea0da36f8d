// Reference interpreter of the graph IR: plain C++/Eigen, fp32 arithmetic for float tensors
// (f16 results rounded to f16 after every op), exact int64 arithmetic for integer tensors (wrapped
// to the tensor's width). Used by the front end to fold constants, and by tests and `lpusim check`
// as the ground truth the chip's results are compared with. Not fast; not for the hot path.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/ir/shape_infer.h"

namespace lpu::ref {

// A runtime tensor value. Exactly one of `f` (f16/f32) or `i` (i8/i32/i64/bool) holds
// num_elements(shape) elements, row-major.
struct Value {
  ir::DType dtype = ir::DType::F32;
  ir::Shape shape;
  std::vector<float> f;
  std::vector<int64_t> i;

  int64_t elements() const { return ir::num_elements(shape); }
  static Value from_constant(const ir::Tensor& t);  // t must be a constant
  static Value floats(const ir::Shape& s, std::vector<float> v, ir::DType t = ir::DType::F32);
  static Value ints(const ir::Shape& s, std::vector<int64_t> v, ir::DType t = ir::DType::I64);
  std::vector<uint8_t> to_bytes() const;            // little-endian in `dtype`, as ir::Tensor::data
  float as_float(int64_t k) const { return dtype_is_float(dtype) ? f[k] : static_cast<float>(i[k]); }
};

// Evaluates one op on its input values (kNoTensor inputs passed as nullptr). Returns one Value per
// op output. Throws lpu::InputError on bad shapes (via ir::infer_output_types rules).
std::vector<Value> eval_op(const ir::Graph& g, const ir::Op& op, const std::vector<const Value*>& inputs);

// Same semantics with caller-given output types and no check of the inputs against the graph's
// tensors. Only attributes and input values are read. The error-bound evaluation uses it to run
// data-movement and linear ops on bounds (f32 values standing for tensors of any dtype).
std::vector<Value> eval_op_typed(const ir::Op& op, const std::vector<ir::TensorType>& out_types,
                                 const std::vector<const Value*>& inputs);

// For every element of a tensor of shape `out` (row-major), the linear index of the element of a
// tensor of shape `in` that numpy broadcasting reads (in must broadcast to out).
std::vector<int64_t> broadcast_index_map(const ir::Shape& out, const ir::Shape& in);

// Throws InputError unless `inputs` match the graph inputs in number, dtype and shape.
void check_run_inputs(const ir::Graph& g, const std::vector<Value>& inputs);

// Runs the whole graph; `inputs` are in graph-input order and must match their dtype and shape
// (InputError naming the input otherwise). Returns graph outputs in order.
std::vector<Value> run(const ir::Graph& g, const std::vector<Value>& inputs);

// As run, returning every tensor's value, indexed by TensorId (inputs, constants, op outputs).
std::vector<Value> run_all(const ir::Graph& g, const std::vector<Value>& inputs);

}  // namespace lpu::ref
