// Building IR ops by hand in tests (compiler/ir/graph.h).
#pragma once
#include <map>
#include <string>
#include <type_traits>
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

// The common case of one output, passed bare (`y`). A template so that a braced `{y}` is not a
// candidate (nothing to deduce from a braced list) and goes to the vector overload above instead of
// initializing this scalar with braces (Clang's -Wbraced-scalar-init in the sanitizer build).
template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
inline lpu::ir::Op make_op(lpu::ir::OpKind k, const std::string& name, std::vector<lpu::ir::TensorId> in, T out,
                           std::map<std::string, lpu::ir::AttrValue> attrs = {}) {
  return make_op(k, name, std::move(in), std::vector<lpu::ir::TensorId>{static_cast<lpu::ir::TensorId>(out)},
                 std::move(attrs));
}

// A one-op f16 graph: input "x" [xs] -> `kind` (node `op_name`, attributes `attrs`) -> output "y" [ys].
inline lpu::ir::Graph unary_graph(lpu::ir::OpKind kind, const lpu::ir::Shape& xs,
                                  std::map<std::string, lpu::ir::AttrValue> attrs, const lpu::ir::Shape& ys,
                                  const std::string& op_name = "op") {
  lpu::ir::Graph g;
  g.name = std::string(lpu::ir::op_kind_name(kind));
  const lpu::ir::TensorId x = g.add_input("x", lpu::ir::DType::F16, xs);
  const lpu::ir::TensorId y = g.add_tensor("y", lpu::ir::DType::F16, ys);
  g.add_op(make_op(kind, op_name, {x}, y, std::move(attrs)));
  g.mark_output(y);
  return g;
}
