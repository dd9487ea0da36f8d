// ONNX backend test-case helpers (see onnx_test_case.h).
#include "compiler/frontends/onnx_test_case.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "isa/chip_config.h"

namespace lpu::frontend {

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot open for reading");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw InputError(path + ": read error");
  return ss.str();
}

onnx::ModelProto load_model(const std::string& path) {
  onnx::ModelProto m;
  if (!m.ParseFromString(read_bytes(path))) throw InputError(path + ": not a serialized ONNX ModelProto");
  return m;
}

// Indices into graph.input of the inputs that are not initializers.
std::vector<int> runtime_input_indices(const onnx::GraphProto& g) {
  std::set<std::string> inits;
  for (const auto& t : g.initializer()) inits.insert(t.name());
  std::vector<int> idx;
  for (int i = 0; i < g.input_size(); ++i)
    if (!inits.count(g.input(i).name())) idx.push_back(i);
  return idx;
}

}  // namespace

std::vector<std::string> onnx_op_types(const std::string& path) {
  const onnx::ModelProto m = load_model(path);
  std::vector<std::string> ops;
  for (const onnx::NodeProto& n : m.graph().node()) {
    const std::string op = n.domain().empty() || n.domain() == "ai.onnx" ? n.op_type() : n.domain() + ":" + n.op_type();
    if (std::find(ops.begin(), ops.end(), op) == ops.end()) ops.push_back(op);
  }
  return ops;
}

int onnx_runtime_inputs(const std::string& path) {
  return static_cast<int>(runtime_input_indices(load_model(path).graph()).size());
}

std::string onnx_bind_inputs(const std::string& path, int first, const std::vector<std::string>& tensor_files) {
  onnx::ModelProto m = load_model(path);
  onnx::GraphProto* g = m.mutable_graph();
  const std::vector<int> rt = runtime_input_indices(*g);
  if (first < 0 || static_cast<size_t>(first) + tensor_files.size() != rt.size())
    throw InputError(path + ": has " + std::to_string(rt.size()) + " runtime inputs; cannot bind inputs " +
                     std::to_string(first) + ".." + std::to_string(first + static_cast<int>(tensor_files.size()) - 1));
  std::set<int> bound;
  for (size_t k = 0; k < tensor_files.size(); ++k) {
    const int gi = rt[static_cast<size_t>(first) + k];
    onnx::TensorProto t;
    if (!t.ParseFromString(read_bytes(tensor_files[k])))
      throw InputError(tensor_files[k] + ": not a serialized onnx.TensorProto");
    t.set_name(g->input(gi).name());
    *g->add_initializer() = t;
    bound.insert(gi);
  }
  // IR versions < 4 (opsets <= 8) require every initializer to be listed as a graph input too (an
  // input with an initializer is a constant); later ones drop the bound inputs.
  if (m.ir_version() >= 4) {
    google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> kept;
    for (int i = 0; i < g->input_size(); ++i)
      if (!bound.count(i)) *kept.Add() = g->input(i);
    g->mutable_input()->Swap(&kept);
  }
  std::string out;
  if (!m.SerializeToString(&out)) throw InputError(path + ": cannot serialize the model with bound inputs");
  return out;
}

}  // namespace lpu::frontend
