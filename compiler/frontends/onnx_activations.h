// ONNX activations the IR has no op for, written at import as short chains of IR ops: Clip,
// LeakyRelu, PRelu, Elu, Celu, Selu, Softplus, Softsign, HardSigmoid, HardSwish, LogSoftmax (over one
// axis). Each chain is the ONNX definition rewritten exactly (up to the rounding of its constants),
// in a form that stays finite where the plain one overflows (Softplus); docs/onnx-support.md lists
// the forms. The reference interpreter, the error bound and the back end then see only IR ops.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace lpu::frontend {

// What a chain needs from the importer.
class ChainBuilder {
 public:
  virtual ~ChainBuilder() = default;
  // Emits one IR op (folded when its inputs are constants) and returns its output. `last`: the
  // chain's result, named after the node's output; otherwise a fresh name.
  virtual ir::TensorId op(ir::OpKind kind, std::vector<ir::TensorId> inputs, bool last = false,
                          std::map<std::string, ir::AttrValue> attrs = {}) = 0;
  // A one-element constant of dtype `like`'s (the activation's) holding v.
  virtual ir::TensorId scalar(float v, ir::TensorId like) = 0;
};

// ONNX op types written by write_activation (each takes float attributes only).
bool is_activation_chain(const std::string& op_type);

// The ONNX activation `op_type` of x as a chain; `attrs` holds the node's float attributes (absent
// ones take ONNX's defaults), `extra` its inputs after x (PRelu: slope; Clip-11+: min, max, each
// kNoTensor when not given). Returns the chain's result.
ir::TensorId write_activation(const std::string& op_type, ir::TensorId x,
                              const std::map<std::string, float>& attrs,
                              const std::vector<ir::TensorId>& extra, ChainBuilder& b);

// log(softmax(x)) along `axis` as x - max - log(sum(exp(x - max))) (finite where softmax underflows).
ir::TensorId write_log_softmax(ir::TensorId x, int64_t axis, ChainBuilder& b);

}  // namespace lpu::frontend
