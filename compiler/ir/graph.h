// The compiler's graph IR: typed static-shape tensors (constants carry their data), ops in
// canonical form (see op_kinds.def for each op's inputs and attributes), graph inputs/outputs, and
// a deterministic text dump. Front ends build it; passes and the reference interpreter read it.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "compiler/ir/dtype.h"

namespace lpu::ir {

enum class OpKind : uint8_t {
#define LPU_IR_OP(Id, name, min_in, max_in, outs, doc) Id,
#include "compiler/ir/op_kinds.def"
#undef LPU_IR_OP
};
constexpr int kNumOpKinds = 0
#define LPU_IR_OP(Id, name, min_in, max_in, outs, doc) +1
#include "compiler/ir/op_kinds.def"
#undef LPU_IR_OP
    ;

struct OpKindInfo {
  std::string_view name;  // ONNX-style name, e.g. "MatMul"
  int min_inputs, max_inputs;
  int outputs;            // -1: variable (Split)
  std::string_view doc;
};
const OpKindInfo& op_kind_info(OpKind k);
std::string_view op_kind_name(OpKind k);
bool op_kind_from_name(std::string_view s, OpKind* out);  // false if unknown
std::string op_kind_list();                                // "Add, Sub, ..." in table order

// An attribute value: int, float, string, ints.
using AttrValue = std::variant<int64_t, float, std::string, std::vector<int64_t>>;

using TensorId = int32_t;
constexpr TensorId kNoTensor = -1;

struct Tensor {
  std::string name;                 // unique in the graph
  DType dtype = DType::F32;
  Shape shape;                      // static, every dim >= 1
  bool is_const = false;            // true: `data` holds num_elements * dtype_bytes bytes
  std::vector<uint8_t> data;        // little-endian, row-major; empty unless is_const
  int producer = -1;                // index of the op writing it; -1 for graph inputs/constants

  int64_t elements() const { return num_elements(shape); }
  int64_t bytes() const { return elements() * dtype_bytes(dtype); }
  // Constant data converted element-wise (ints exactly; f16 widened). Throw if not constant.
  std::vector<float> const_floats() const;
  std::vector<int64_t> const_ints() const;   // int/bool dtypes only
};

struct Op {
  OpKind kind;
  std::string name;                         // unique in the graph (ONNX node name or generated)
  std::vector<TensorId> inputs;             // kNoTensor allowed only for omitted optional inputs
  std::vector<TensorId> outputs;
  std::map<std::string, AttrValue> attrs;   // sorted: dumps are deterministic

  bool has(const std::string& a) const { return attrs.count(a) != 0; }
  // Typed getters: throw std::logic_error (IR invariant broken) if absent or of another type.
  int64_t attr_int(const std::string& a) const;
  float attr_float(const std::string& a) const;
  const std::string& attr_string(const std::string& a) const;
  const std::vector<int64_t>& attr_ints(const std::string& a) const;
};

// Invariants (checked by validate()): ops are stored in topological order (every input is a graph
// input, a constant, or an output of an earlier op); each non-input, non-constant tensor has
// exactly one producer; names are unique; shapes are static and positive.
class Graph {
 public:
  std::string name;

  // Builders. add_* throw std::logic_error on duplicate names (front ends check first).
  TensorId add_input(const std::string& name, DType t, const Shape& s);
  TensorId add_constant(const std::string& name, DType t, const Shape& s, std::vector<uint8_t> data);
  TensorId add_constant_floats(const std::string& name, const Shape& s, const std::vector<float>& v);  // f32
  TensorId add_constant_ints(const std::string& name, DType t, const Shape& s, const std::vector<int64_t>& v);
  TensorId add_tensor(const std::string& name, DType t, const Shape& s);  // an op output, no data yet
  int add_op(Op op);  // sets producer of its outputs; returns op index
  void mark_output(TensorId t);

  const std::vector<Tensor>& tensors() const { return tensors_; }
  const std::vector<Op>& ops() const { return ops_; }
  const std::vector<TensorId>& inputs() const { return inputs_; }
  const std::vector<TensorId>& outputs() const { return outputs_; }
  const Tensor& tensor(TensorId id) const { return tensors_.at(static_cast<size_t>(id)); }
  Op& mutable_op(int i) { return ops_.at(static_cast<size_t>(i)); }  // keep invariants
  Tensor& mutable_tensor(TensorId id) { return tensors_.at(static_cast<size_t>(id)); }
  TensorId find(std::string_view name) const;  // kNoTensor if absent
  std::string unique_name(const std::string& base) const;  // base, or base_1, base_2, ...

  // Consumers of each tensor (op indices, ascending), computed on demand.
  std::vector<std::vector<int>> consumers() const;
  // Drops ops whose outputs reach no graph output and tensors nobody uses; renumbers ids (names
  // are kept). Keeps graph inputs even if unused.
  void remove_dead();
  // Replaces every use of `from` by `to` (op inputs and graph outputs). If `from` is a graph output
  // and `to` is an op output, the two tensors swap names so graph output names are preserved.
  void replace_uses(TensorId from, TensorId to);
  // Checks the invariants above; throws std::logic_error with the broken one.
  void validate() const;

  // Deterministic text dump, one line each for inputs, constants (name, type, shape, first values),
  // ops in order (outputs = kind(inputs) {attrs}), outputs. Used by tests and people.
  std::string to_text() const;

 private:
  std::vector<Tensor> tensors_;
  std::vector<Op> ops_;
  std::vector<TensorId> inputs_, outputs_;
  std::map<std::string, TensorId, std::less<>> by_name_;
};

}  // namespace lpu::ir
