// Building ONNX models by hand in tests (the importer's forms and refusals): value infos, nodes,
// attributes, f32 initializers, the serialized model, and the importer's error for it.
#pragma once
// The ONNX protobuf classes, configured as the library was built (compiler/CMakeLists.txt links
// onnx with ONNX_ML=1, ONNX_NAMESPACE=onnx).
#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "compiler/frontends/onnx_import.h"
#include "compiler/ir/dtype.h"
#include "isa/chip_config.h"  // InputError

namespace lpu::test::onnx_build {

// A tensor's value info; `elem` FLOAT or FLOAT16.
inline onnx::ValueInfoProto vinfo(const std::string& name, const std::vector<int64_t>& dims,
                                  int elem = onnx::TensorProto::FLOAT) {
  onnx::ValueInfoProto v;
  v.set_name(name);
  auto* tt = v.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  tt->mutable_shape();  // a scalar has a shape too, of no dims
  for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
  return v;
}
inline void attr_ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
inline void attr_int(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
inline onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op,
                                 const std::vector<std::string>& in, const std::vector<std::string>& out,
                                 const std::string& name) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
  return n;
}
// An initializer of `elem` FLOAT or FLOAT16 (v rounded to f16) holding v.
inline void add_init(onnx::GraphProto* g, const std::string& name, const std::vector<int64_t>& dims,
                     const std::vector<float>& v, int elem = onnx::TensorProto::FLOAT) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(elem);
  for (int64_t d : dims) t->add_dims(d);
  for (float x : v)
    if (elem == onnx::TensorProto::FLOAT16)
      t->add_int32_data(ir::f32_to_f16(x));  // ONNX keeps f16 bits in int32_data
    else
      t->add_float_data(x);
  // Opsets < 9 list initializers among the graph inputs.
  *g->add_input() = vinfo(name, dims, elem);
}
inline std::string model_bytes(onnx::ModelProto& m, int opset) {
  m.set_ir_version(opset < 9 ? 3 : 4);
  m.set_producer_name("lpusim-test");
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m.SerializeAsString();
}
inline std::string import_error(const std::string& bytes) {
  try {
    frontend::import_onnx_bytes(bytes, "m.onnx");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

inline void attr_float(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

}  // namespace lpu::test::onnx_build
