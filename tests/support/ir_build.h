// Building IR ops by hand in tests (compiler/ir/graph.h).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "compiler/ir/graph.h"

inline lpu::ir::Op make_op(lpu::ir::OpKind k, const std::string& name, std::vector<lpu::ir::TensorId> in,
                           std::vector<lpu::ir::TensorId> out,
                           std::map<std::string, lpu::ir::AttrValue> attrs = {}) {
  lpu::ir::Op op;
  op.kind = k;
  op.name = name;
  op.inputs = std::move(in);
  op.outputs = std::move(out);
  op.attrs = std::move(attrs);
  return op;
}

// The common case of one output.
inline lpu::ir::Op make_op(lpu::ir::OpKind k, const std::string& name, std::vector<lpu::ir::TensorId> in,
                           lpu::ir::TensorId out, std::map<std::string, lpu::ir::AttrValue> attrs = {}) {
  return make_op(k, name, std::move(in), std::vector<lpu::ir::TensorId>{out}, std::move(attrs));
}
