// ONNX -> graph IR: parse, check, translate each node into canonical IR ops, fold constants.
#include "compiler/frontends/onnx_import.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "compiler/frontends/fold_batchnorm.h"
#include "compiler/frontends/onnx_activations.h"
#include "compiler/frontends/onnx_tensor.h"
#include "compiler/ir/shape_infer.h"
#include "isa/chip_config.h"
#include "isa/host_memory.h"

namespace lpu::frontend {

using ir::DType;
using ir::OpKind;
using ir::Shape;
using ir::TensorId;

namespace {

// True if the product of the dims (each >= 1) exceeds `limit`; never overflows.
bool exceeds_elements(const std::vector<int64_t>& dims, int64_t limit) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d > limit / n) return true;
    n *= d;
  }
  return false;
}

// ONNX op type -> attributes the importer understands (any other attribute is rejected).
const std::map<std::string, std::set<std::string>>& op_table() {
  static const std::map<std::string, std::set<std::string>> t = {
      {"Add", {}}, {"Sub", {}}, {"Mul", {}}, {"Div", {}}, {"Pow", {}}, {"Equal", {}}, {"Where", {}},
      {"Relu", {}}, {"Sigmoid", {}}, {"Tanh", {}}, {"Erf", {}}, {"Exp", {}}, {"Sqrt", {}},
      {"Reciprocal", {}}, {"Neg", {}}, {"Abs", {}}, {"Max", {}}, {"Min", {}}, {"Cast", {"to"}},
      {"MatMul", {}}, {"Gemm", {"alpha", "beta", "transA", "transB"}},
      {"Conv", {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}},
      {"MaxPool", {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"}},
      {"AveragePool", {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"}},
      {"GlobalAveragePool", {}},
      {"BatchNormalization", {"epsilon", "momentum", "training_mode"}},
      {"LayerNormalization", {"axis", "epsilon", "stash_type"}},
      {"Softmax", {"axis"}},
      {"ReduceMean", {"axes", "keepdims"}}, {"ReduceSum", {"axes", "keepdims", "noop_with_empty_axes"}},
      {"ReduceMax", {"axes", "keepdims"}}, {"ReduceMin", {"axes", "keepdims"}},
      {"ReduceSumSquare", {"axes", "keepdims"}}, {"ReduceL1", {"axes", "keepdims"}}, {"ReduceL2", {"axes", "keepdims"}},
      {"Transpose", {"perm"}}, {"Reshape", {"allowzero"}}, {"Flatten", {"axis"}},
      {"Squeeze", {"axes"}}, {"Unsqueeze", {"axes"}}, {"Concat", {"axis"}}, {"Split", {"axis", "split"}},
      {"Slice", {}}, {"Gather", {"axis"}}, {"Identity", {}}, {"Dropout", {"ratio", "seed"}},
      {"Constant", {"value", "value_float", "value_floats", "value_int", "value_ints"}},
      {"Shape", {"start", "end"}}, {"Log", {}}, {"Sum", {}}, {"Mean", {}}, {"LogSoftmax", {"axis"}},
      // Written as chains of IR ops (frontends/onnx_activations.h).
      {"Clip", {"min", "max"}}, {"LeakyRelu", {"alpha"}}, {"PRelu", {}}, {"Elu", {"alpha"}}, {"Celu", {"alpha"}},
      {"Selu", {"alpha", "gamma"}}, {"Softplus", {}}, {"Softsign", {}}, {"HardSigmoid", {"alpha", "beta"}},
      {"HardSwish", {}},
  };
  return t;
}

// Attributes of OLD versions of an op (opsets 6..10; see docs/onnx-support.md "Opsets"): op type ->
// (attributes, first op version that no longer has them). Each is handled or refused by the node's
// importer (legacy broadcast, BatchNormalization/Dropout is_test and spatial, Slice-1 attributes).
struct LegacyAttrs {
  std::set<std::string> names;
  int gone_in;  // op version (since_version) from which these attributes do not exist
};
const std::map<std::string, LegacyAttrs>& legacy_attrs() {
  static const std::map<std::string, LegacyAttrs> t = {
      {"Add", {{"broadcast", "axis"}, 7}}, {"Sub", {{"broadcast", "axis"}, 7}}, {"Mul", {{"broadcast", "axis"}, 7}},
      {"Div", {{"broadcast", "axis"}, 7}}, {"Pow", {{"broadcast", "axis"}, 7}}, {"Equal", {{"broadcast", "axis"}, 7}},
      {"Gemm", {{"broadcast"}, 7}}, {"BatchNormalization", {{"is_test", "spatial"}, 9}},
      {"Dropout", {{"is_test"}, 7}}, {"Slice", {{"starts", "ends", "axes"}, 10}},
  };
  return t;
}

std::string join(const std::vector<std::string>& v) {
  std::string r;
  for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + v[i];
  return r;
}
std::string ints_str(const std::vector<int64_t>& v) { return ir::shape_str(v); }

class Importer {
 public:
  Importer(const std::string& src, const OnnxImportOptions& o) : src_(src), opts_(o) {}

  ir::Graph run(const std::string& bytes) {
    parse(bytes);
    check();
    read_opset();
    infer_onnx_shapes();
    const onnx::GraphProto& gp = model_.graph();
    g_.name = gp.name().empty() ? "main" : gp.name();
    collect_names(gp);
    for (const auto& init : gp.initializer()) inits_.emplace(init.name(), &init);
    for (const auto& in : gp.input())
      if (!inits_.count(in.name())) add_graph_input(in);
    for (int i = 0; i < gp.node_size(); ++i) import_node(gp.node(i), i);
    for (const auto& out : gp.output()) {
      TensorId t = value(out.name(), "graph output '" + out.name() + "'");
      check_declared(out, t, "graph output");
      t = own_output(out.name(), t);
      g_.mark_output(t);
    }
    cross_check_shapes();
    if (opts_.fold_batchnorm) fold_batchnorm_into_conv(g_);
    g_.remove_dead();
    g_.validate();
    return std::move(g_);
  }

 private:
  const std::string src_;
  const OnnxImportOptions opts_;
  onnx::ModelProto model_;
  int opset_ = 0;
  ir::Graph g_;
  std::map<std::string, TensorId> vals_;                  // ONNX value name -> IR tensor
  std::map<std::string, const onnx::TensorProto*> inits_;  // not yet materialized initializers
  std::set<std::string> onnx_names_, op_names_;
  std::map<std::string, const onnx::ValueInfoProto*> infos_;  // ONNX-inferred/declared value types

  // Current node, for messages.
  const onnx::NodeProto* node_ = nullptr;
  std::string node_name_;
  int version_ = 0;  // the current node's op version (since_version of its schema at opset_)

  [[noreturn]] void fail(const std::string& m) const { throw InputError(src_ + ": " + m); }
  [[noreturn]] void node_fail(const std::string& m) const {
    fail("node '" + node_name_ + "' (" + node_->op_type() + ", opset " + std::to_string(opset_) + "): " + m);
  }

  void parse(const std::string& bytes) {
    if (bytes.empty()) fail("file is empty; expected a serialized ONNX ModelProto");
    if (!model_.ParseFromString(bytes))
      fail("not a valid ONNX protobuf (truncated or not an ONNX ModelProto; " + std::to_string(bytes.size()) + " bytes)");
    if (!model_.has_graph()) fail("the model has no graph (not an ONNX model?)");
  }

  // Names every node input must resolve to; reported before the checker's topological-order text.
  void check_defined() {
    const auto& gp = model_.graph();
    std::set<std::string> defined;
    for (const auto& i : gp.input()) defined.insert(i.name());
    for (const auto& i : gp.initializer()) defined.insert(i.name());
    for (const auto& n : gp.node())
      for (const auto& o : n.output()) defined.insert(o);
    for (int k = 0; k < gp.node_size(); ++k) {
      const auto& n = gp.node(k);
      for (const auto& i : n.input())
        if (!i.empty() && !defined.count(i))
          fail("node '" + (n.name().empty() ? n.op_type() + "_" + std::to_string(k) : n.name()) + "' (" + n.op_type() +
               ") reads '" + i + "', which is not a graph input, an initializer or any node's output (missing initializer?)");
    }
  }

  static std::string one_line(std::string m) {
    std::string r;
    for (char c : m) {
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
      if (c == ' ' && (r.empty() || r.back() == ' ')) continue;
      r += c;
    }
    while (!r.empty() && r.back() == ' ') r.pop_back();
    return r;
  }

  void check() {
    check_defined();
    try {
      onnx::checker::check_model(model_);
    } catch (const std::exception& e) {
      fail("ONNX checker: " + one_line(e.what()));
    }
  }

  void read_opset() {
    for (const auto& o : model_.opset_import()) {
      if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = static_cast<int>(o.version());
    }
    if (opset_ < kOnnxMinOpset || opset_ > kOnnxMaxOpset)
      fail("default-domain opset " + std::to_string(opset_) + " is not supported; allowed: " +
           std::to_string(kOnnxMinOpset) + ".." + std::to_string(kOnnxMaxOpset) + " (re-export with opset_version in that range)");
  }

  // libonnx's own shape inference (Debian's 1.13) indexes pads/strides/dilations and the input
  // shape by the weight's rank without checking them, so a Conv or pool whose attribute lengths or
  // ranks disagree crashes it (found by fuzz_onnx_import). Refuse such nodes first, by name.
  void check_conv_pool_ranks() const {
    std::map<std::string, int> rank;  // declared ranks of graph inputs and initializers
    for (const auto& i : model_.graph().input())
      if (i.type().tensor_type().has_shape()) rank[i.name()] = i.type().tensor_type().shape().dim_size();
    for (const auto& t : model_.graph().initializer()) rank[t.name()] = t.dims_size();
    for (const auto& n : model_.graph().node()) {
      const std::string& op = n.op_type();
      const bool conv = op == "Conv" || op == "ConvTranspose";
      if (!conv && op != "MaxPool" && op != "AveragePool" && op != "LpPool") continue;
      int spatial = -1;  // from the weight (conv) or kernel_shape (pools)
      if (conv && n.input_size() > 1 && rank.count(n.input(1))) spatial = rank.at(n.input(1)) - 2;
      for (const auto& a : n.attribute())
        if (a.name() == "kernel_shape" && spatial < 0) spatial = a.ints_size();
      if (spatial < 0) continue;
      auto bad = [&](const std::string& what) {
        fail("node '" + (n.name().empty() ? n.output_size() ? n.output(0) : std::string("?") : n.name()) + "' (" + op +
             "): " + what);
      };
      if (spatial < 1) bad("the weight must have rank >= 3 (got " + std::to_string(spatial + 2) + ")");
      if (n.input_size() > 0 && rank.count(n.input(0)) && rank.at(n.input(0)) != spatial + 2)
        bad("input '" + n.input(0) + "' has rank " + std::to_string(rank.at(n.input(0))) + ", the kernel needs rank " +
            std::to_string(spatial + 2));
      for (const auto& a : n.attribute()) {
        const int want = a.name() == "pads" ? 2 * spatial
                         : (a.name() == "strides" || a.name() == "dilations" || a.name() == "kernel_shape") ? spatial
                                                                                                               : -1;
        if (want >= 0 && a.ints_size() != want)
          bad("attribute '" + a.name() + "' has " + std::to_string(a.ints_size()) + " values; " +
              std::to_string(spatial) + " spatial dims need " + std::to_string(want));
      }
    }
  }

  // Every tensor libonnx may parse (initializers, the main graph's nodes' tensor attributes) has
  // raw_data of its declared size (check_raw_data_size).
  void check_tensor_sizes() const {
    for (const auto& init : model_.graph().initializer()) check_raw_data_size(init, src_);
    for (const auto& n : model_.graph().node())
      for (const auto& a : n.attribute()) {
        const std::string at = src_ + ": node '" + n.name() + "' attribute '" + a.name() + "'";
        if (a.has_t()) check_raw_data_size(a.t(), at);
        for (const auto& t : a.tensors()) check_raw_data_size(t, at);
      }
  }

  void infer_onnx_shapes() {
    check_conv_pool_ranks();
    check_tensor_sizes();
    try {
      onnx::shape_inference::InferShapes(model_, onnx::OpSchemaRegistry::Instance(), onnx::ShapeInferenceOptions(true, 1, false));
    } catch (const std::exception& e) {
      fail("ONNX shape inference: " + one_line(e.what()));
    }
    for (const auto& v : model_.graph().value_info()) infos_.emplace(v.name(), &v);
  }

  void collect_names(const onnx::GraphProto& gp) {
    for (const auto& i : gp.input()) onnx_names_.insert(i.name());
    for (const auto& i : gp.initializer()) onnx_names_.insert(i.name());
    for (const auto& n : gp.node())
      for (const auto& o : n.output()) onnx_names_.insert(o);
  }

  // Name for the IR tensor standing for ONNX value `name`: the ONNX name itself unless taken.
  std::string bind(const std::string& name) {
    return onnx_names_.count(name) && g_.find(name) == ir::kNoTensor ? name : fresh(name);
  }
  // A new name for a tensor the importer introduces: never an ONNX value name.
  std::string fresh(const std::string& base) {
    std::string c = base;
    for (int i = 1; g_.find(c) != ir::kNoTensor || onnx_names_.count(c); ++i) c = base + "_" + std::to_string(i);
    return c;
  }

  // Static shape from a ValueInfo; symbolic dims resolved from opts_.dim_values.
  Shape static_shape(const onnx::ValueInfoProto& v, const std::string& what) {
    if (!v.type().has_tensor_type()) fail(what + " '" + v.name() + "' is not a tensor (sequences/maps are not supported)");
    const auto& tt = v.type().tensor_type();
    if (!tt.has_shape()) fail(what + " '" + v.name() + "' has no shape; lpusim needs static shapes (re-export with fixed input sizes)");
    Shape s;
    for (int i = 0; i < tt.shape().dim_size(); ++i) {
      const auto& d = tt.shape().dim(i);
      int64_t x = 0;
      if (d.has_dim_value()) {
        x = d.dim_value();
      } else if (d.has_dim_param() && opts_.dim_values.count(d.dim_param())) {
        x = opts_.dim_values.at(d.dim_param());
      } else {
        fail(what + " '" + v.name() + "' dim " + std::to_string(i) + " is " +
             (d.has_dim_param() ? "symbolic '" + d.dim_param() + "'" : std::string("unknown")) +
             "; lpusim needs static shapes (give a value for it, e.g. --dim " +
             (d.has_dim_param() ? d.dim_param() : std::string("name")) + "=1, or re-export with fixed sizes)");
      }
      if (x < 1) fail(what + " '" + v.name() + "' dim " + std::to_string(i) + " is " + std::to_string(x) + "; every dim must be >= 1");
      s.push_back(x);
      if (exceeds_elements(s, int64_t(1) << 40))
        fail(what + " '" + v.name() + "' shape " + ir::shape_str(s) + " has more than 2^40 elements");
    }
    return s;
  }

  DType elem_type(const onnx::ValueInfoProto& v, const std::string& what) {
    const int32_t t = v.type().tensor_type().elem_type();
    auto d = dtype_from_onnx(t);
    if (!d) fail(what + " '" + v.name() + "' has element type " + onnx_type_name(t) + "; supported: " + kOnnxSupportedTypes());
    return *d;
  }

  void add_graph_input(const onnx::ValueInfoProto& in) {
    auto c = opts_.constant_inputs.find(in.name());
    if (c != opts_.constant_inputs.end()) {
      const ref::Value& v = c->second;
      const DType t = elem_type(in, "graph input");
      bool ok = v.dtype == t && in.type().tensor_type().shape().dim_size() == static_cast<int>(v.shape.size());
      for (int i = 0; ok && i < in.type().tensor_type().shape().dim_size(); ++i) {
        const auto& d = in.type().tensor_type().shape().dim(i);
        ok = !d.has_dim_value() || d.dim_value() == v.shape[i];
      }
      if (!ok)
        fail("constant value for graph input '" + in.name() + "' is " + std::string(ir::dtype_name(v.dtype)) +
             ir::shape_str(v.shape) + ", which does not match its declaration");
      vals_[in.name()] = g_.add_constant(bind(in.name()), t, v.shape, v.to_bytes());
      return;
    }
    const Shape s = static_shape(in, "graph input");
    const DType t = elem_type(in, "graph input");
    vals_[in.name()] = g_.add_input(in.name(), t, s);
  }

  void check_declared(const onnx::ValueInfoProto& v, TensorId id, const std::string& what) {
    if (!v.type().has_tensor_type()) return;
    const auto& tt = v.type().tensor_type();
    const ir::Tensor& t = g_.tensor(id);
    if (tt.elem_type() != 0) {
      auto d = dtype_from_onnx(tt.elem_type());
      if (!d || *d != t.dtype)
        fail(what + " '" + v.name() + "' is declared " + onnx_type_name(tt.elem_type()) + " but computes " + std::string(ir::dtype_name(t.dtype)));
    }
    if (!tt.has_shape()) return;
    if (tt.shape().dim_size() != static_cast<int>(t.shape.size()))
      fail(what + " '" + v.name() + "' is declared with rank " + std::to_string(tt.shape().dim_size()) + " but computes " + ir::shape_str(t.shape));
    for (int i = 0; i < tt.shape().dim_size(); ++i) {
      const auto& d = tt.shape().dim(i);
      if (d.has_dim_value() && d.dim_value() != t.shape[i])
        fail(what + " '" + v.name() + "' dim " + std::to_string(i) + " is declared " + std::to_string(d.dim_value()) +
             " but computes " + ir::shape_str(t.shape));
    }
  }

  void cross_check_shapes() {
    for (const auto& [name, vi] : infos_) {
      auto it = vals_.find(name);
      if (it != vals_.end()) check_declared(*vi, it->second, "value");
    }
  }

  TensorId value(const std::string& name, const std::string& what) {
    auto it = vals_.find(name);
    if (it != vals_.end()) return it->second;
    auto in = inits_.find(name);
    if (in != inits_.end()) {
      DecodedTensor d = decode_tensor(*in->second, src_ + ": initializer '" + name + "'");
      const TensorId id = g_.add_constant(bind(name), d.dtype, d.shape, std::move(d.data));
      vals_[name] = id;
      return id;
    }
    fail(what + " refers to '" + name + "', which is neither a graph input, an initializer nor an earlier node's output");
  }

  // ---- node helpers ----
  size_t nin() const { return static_cast<size_t>(node_->input_size()); }
  bool has_input(size_t i) const { return i < nin() && !node_->input(static_cast<int>(i)).empty(); }
  TensorId input(size_t i) {
    if (!has_input(i)) node_fail("input " + std::to_string(i) + " is required");
    return value(node_->input(static_cast<int>(i)), "node '" + node_name_ + "' input " + std::to_string(i));
  }
  // Type of input i, by value: materializing later inputs may grow the tensor table.
  struct TInfo {
    std::string name;
    DType dtype;
    Shape shape;
    int64_t elements() const { return ir::num_elements(shape); }
  };
  TInfo tin(size_t i) {
    const ir::Tensor& t = g_.tensor(input(i));
    return {t.name, t.dtype, t.shape};
  }
  int64_t rank(size_t i) { return static_cast<int64_t>(tin(i).shape.size()); }

  std::vector<int64_t> const_ints(size_t i, const char* what) {
    const TensorId t = input(i);
    const ir::Tensor& x = g_.tensor(t);
    if (!x.is_const)
      node_fail(std::string("input ") + std::to_string(i) + " ('" + what + "', tensor '" + x.name +
                "') must be a compile-time constant; it depends on graph inputs");
    if (ir::dtype_is_float(x.dtype)) node_fail(std::string("input '") + what + "' must be an integer tensor");
    return x.const_ints();
  }

  const onnx::AttributeProto* attr(const std::string& n) const {
    for (const auto& a : node_->attribute())
      if (a.name() == n) return &a;
    return nullptr;
  }
  int64_t attr_i(const std::string& n, int64_t def) const {
    auto a = attr(n);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto_AttributeType_INT) node_fail("attribute '" + n + "' must be an int");
    return a->i();
  }
  float attr_f(const std::string& n, float def) const {
    auto a = attr(n);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto_AttributeType_FLOAT) node_fail("attribute '" + n + "' must be a float");
    return a->f();
  }
  std::string attr_s(const std::string& n, const std::string& def) const {
    auto a = attr(n);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto_AttributeType_STRING) node_fail("attribute '" + n + "' must be a string");
    return a->s();
  }
  std::vector<int64_t> attr_ints(const std::string& n, const std::vector<int64_t>& def) const {
    auto a = attr(n);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto_AttributeType_INTS) node_fail("attribute '" + n + "' must be a list of ints");
    return {a->ints().begin(), a->ints().end()};
  }

  int64_t norm_axis(int64_t a, int64_t r, const std::string& what) const {
    if (a < -r || a >= r) node_fail(what + "=" + std::to_string(a) + " out of range [" + std::to_string(-r) + ", " + std::to_string(r) + ")");
    return a < 0 ? a + r : a;
  }

  // Only output 0 may be consumed (Dropout mask, MaxPool indices, BN training stats, ...).
  void only_first_output(const std::string& what) const {
    for (int i = 1; i < node_->output_size(); ++i)
      if (!node_->output(i).empty() && is_used(node_->output(i)))
        node_fail("output " + std::to_string(i) + " ('" + node_->output(i) + "', " + what + ") is used; only output 0 is supported");
  }
  bool is_used(const std::string& name) const {
    for (const auto& n : model_.graph().node())
      for (const auto& i : n.input())
        if (i == name) return true;
    for (const auto& o : model_.graph().output())
      if (o.name() == name) return true;
    return false;
  }

  void alias(const std::string& out, TensorId t) { vals_[out] = t; }

  // A graph output that is a graph input, a constant or already an output (Identity, Dropout,
  // Constant, a folded subgraph) gets its own tensor named after the ONNX output, written by an
  // explicit same-shape Reshape (not folded): the compiler then emits a copy so that the output
  // exists on the chip under its own name (passes/lower_forms.h).
  TensorId own_output(const std::string& name, TensorId t) {
    const ir::Tensor& tt = g_.tensor(t);
    const bool is_input = std::find(g_.inputs().begin(), g_.inputs().end(), t) != g_.inputs().end();
    const bool is_output = std::find(g_.outputs().begin(), g_.outputs().end(), t) != g_.outputs().end();
    if (!tt.is_const && !is_input && !is_output) return t;
    ir::Op op;
    op.kind = OpKind::Reshape;
    op.name = "output_copy_" + name;
    for (int i = 1; op_names_.count(op.name); ++i) op.name = "output_copy_" + name + "_" + std::to_string(i);
    op_names_.insert(op.name);
    op.inputs = {t};
    op.attrs = {{"shape", tt.shape}};
    const ir::DType dt = tt.dtype;
    const Shape sh = tt.shape;
    op.outputs = {g_.add_tensor(g_.find(name) == ir::kNoTensor ? name : fresh(name), dt, sh)};
    const TensorId y = op.outputs[0];
    g_.add_op(std::move(op));
    return y;
  }

  // Creates `kind` with outputs named `outs`; folds it into constants when every input is constant.
  std::vector<TensorId> emit(OpKind kind, std::vector<TensorId> inputs, std::map<std::string, ir::AttrValue> attrs,
                             const std::vector<std::string>& outs) {
    ir::Op op;
    op.kind = kind;
    op.name = fresh_op_name();
    op.inputs = std::move(inputs);
    op.attrs = std::move(attrs);
    op.outputs.assign(outs.size(), ir::kNoTensor);
    std::vector<ir::TensorType> types;
    try {
      types = ir::infer_output_types(g_, op);
    } catch (const InputError& e) {
      node_fail(e.what());
    }
    // Every tensor obeys the 2^40-element cap of the graph's inputs (broadcasting can exceed it,
    // and element counts beyond it would overflow further down).
    for (const ir::TensorType& t : types)
      if (exceeds_elements(t.shape, int64_t(1) << 40))
        node_fail("output shape " + ir::shape_str(t.shape) + " has more than 2^40 elements");
    bool all_const = !op.inputs.empty();
    for (TensorId t : op.inputs) all_const &= t == ir::kNoTensor || g_.tensor(t).is_const;
    if (all_const) {
      // Folding materializes the outputs (a reference value, then the constant's bytes: at most 16
      // bytes per element); a few broadcasts of small constants can ask for more than the host has.
      uint64_t elems = 0;
      for (const ir::TensorType& t : types) elems += static_cast<uint64_t>(ir::num_elements(t.shape));
      try {
        require_host_memory("while folding constants", elems * 16, std::to_string(elems) + " elements",
                            host_memory_available(), "lpusim folds constant subgraphs at import; shrink them");
      } catch (const InputError& e) {
        node_fail(e.what());
      }
    }
    for (size_t k = 0; k < outs.size(); ++k) op.outputs[k] = g_.add_tensor(bind(outs[k]), types[k].dtype, types[k].shape);
    if (all_const) {
      std::vector<ref::Value> ivals;
      ivals.reserve(op.inputs.size());
      for (TensorId t : op.inputs) ivals.push_back(t == ir::kNoTensor ? ref::Value() : ref::Value::from_constant(g_.tensor(t)));
      std::vector<const ref::Value*> ptrs;
      for (size_t k = 0; k < ivals.size(); ++k) ptrs.push_back(op.inputs[k] == ir::kNoTensor ? nullptr : &ivals[k]);
      std::vector<ref::Value> r;
      try {
        r = ref::eval_op(g_, op, ptrs);
      } catch (const InputError& e) {
        node_fail(std::string("while folding constants: ") + e.what());
      }
      for (size_t k = 0; k < outs.size(); ++k) {
        ir::Tensor& t = g_.mutable_tensor(op.outputs[k]);
        t.is_const = true;
        t.data = r[k].to_bytes();
      }
      return op.outputs;
    }
    std::vector<TensorId> result = op.outputs;
    g_.add_op(std::move(op));
    return result;
  }

  std::string fresh_op_name() {
    std::string c = node_name_;
    for (int i = 1; op_names_.count(c); ++i) c = node_name_ + "_" + std::to_string(i);
    op_names_.insert(c);
    return c;
  }

  // Emits an op with one output bound to ONNX output 0.
  void emit1(OpKind kind, std::vector<TensorId> inputs, std::map<std::string, ir::AttrValue> attrs = {}) {
    const std::string& out = node_->output(0);
    auto r = emit(kind, std::move(inputs), std::move(attrs), {out});
    vals_[out] = r[0];
  }

  // Legacy broadcasting of the binary ops before opset 7 (Add-6, Pow-1, Equal-1, ...): with
  // broadcast=1, B is broadcast to A's shape aligned at `axis` (default: at the trailing dims, the
  // numpy rule); B is reshaped with trailing 1s so that numpy broadcasting gives the same result.
  // Without broadcast=1 the shapes must be equal (numpy agrees).
  void legacy_broadcast(std::vector<TensorId>& ins) {
    if (version_ >= 7 || attr_i("broadcast", 0) == 0) return;
    if (!attr("axis")) return;
    const Shape a = g_.tensor(ins[0]).shape, b = g_.tensor(ins[1]).shape;
    const int64_t ra = static_cast<int64_t>(a.size()), rb = static_cast<int64_t>(b.size());
    const int64_t ax = norm_axis(attr_i("axis", 0), ra, "axis");
    if (ax + rb > ra)
      node_fail("broadcast=1, axis=" + std::to_string(ax) + ": B of shape " + ir::shape_str(b) +
                " does not fit A of shape " + ir::shape_str(a) + " at that axis");
    for (int64_t i = 0; i < rb; ++i)
      if (b[static_cast<size_t>(i)] != 1 && b[static_cast<size_t>(i)] != a[static_cast<size_t>(ax + i)])
        node_fail("broadcast=1, axis=" + std::to_string(ax) + ": B of shape " + ir::shape_str(b) +
                  " does not match A of shape " + ir::shape_str(a) + " from that axis");
    Shape nb = b;
    nb.resize(static_cast<size_t>(ra - ax), 1);
    ins[1] = reshape(ins[1], nb, fresh(g_.tensor(ins[1]).name + "_bcast"));
  }

  TensorId reshape(TensorId x, const Shape& s, const std::string& out_name) {
    if (g_.tensor(x).shape == s) return x;
    return emit(OpKind::Reshape, {x}, {{"shape", s}}, {out_name})[0];
  }

  // ---- the node switch ----
  void import_node(const onnx::NodeProto& n, int index) {
    node_ = &n;
    node_name_ = n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name();
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      node_fail("domain '" + n.domain() + "' is not supported; only the default ONNX domain is");
    auto it = op_table().find(n.op_type());
    if (it == op_table().end()) node_fail("op type is not supported; supported: " + join(onnx_supported_ops()));
    const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(n.op_type(), opset_, "");
    version_ = schema ? schema->since_version() : opset_;
    auto legacy = legacy_attrs().find(n.op_type());
    for (const auto& a : n.attribute())
      if (legacy != legacy_attrs().end() && version_ < legacy->second.gone_in && legacy->second.names.count(a.name()))
        continue;  // an old version's attribute, handled by the op's importer
      else if (!it->second.count(a.name()))
        node_fail("attribute '" + a.name() + "' is not supported" +
                  (it->second.empty() ? std::string("; this op takes none")
                                      : "; supported: " + join({it->second.begin(), it->second.end()})));
    const std::string& t = n.op_type();
    static const std::map<std::string, OpKind> simple = {
        {"Add", OpKind::Add}, {"Sub", OpKind::Sub}, {"Mul", OpKind::Mul}, {"Div", OpKind::Div},
        {"Pow", OpKind::Pow}, {"Equal", OpKind::Equal}, {"Where", OpKind::Where}, {"Relu", OpKind::Relu},
        {"Sigmoid", OpKind::Sigmoid}, {"Tanh", OpKind::Tanh}, {"Erf", OpKind::Erf}, {"Exp", OpKind::Exp},
        {"Sqrt", OpKind::Sqrt}, {"Reciprocal", OpKind::Reciprocal}, {"Neg", OpKind::Neg}, {"Abs", OpKind::Abs},
        {"Log", OpKind::Log},
        {"MatMul", OpKind::MatMul}, {"GlobalAveragePool", OpKind::GlobalAveragePool}};
    auto s = simple.find(t);
    if (s != simple.end()) {
      std::vector<TensorId> ins;
      for (size_t i = 0; i < nin(); ++i) ins.push_back(input(i));
      if (ins.size() == 2) legacy_broadcast(ins);
      emit1(s->second, ins);
    } else if (t == "Identity") {
      alias(n.output(0), input(0));
    } else if (t == "Dropout") {
      if (version_ < 7 && attr_i("is_test", 0) == 0)
        node_fail("is_test=0 (Dropout-6 in training mode: a random mask) is not supported; supported: is_test=1 "
                  "(inference)");
      if (has_input(2) && !const_ints(2, "training_mode").empty() && const_ints(2, "training_mode")[0] != 0)
        node_fail("training_mode is true; only inference (training_mode = false) is supported");
      only_first_output("mask");
      alias(n.output(0), input(0));
    } else if (t == "Constant") {
      import_constant();
    } else if (t == "Shape") {
      const Shape sh = tin(0).shape;
      const int64_t r = static_cast<int64_t>(sh.size());
      int64_t st = attr_i("start", 0), en = attr_i("end", r);
      st = std::clamp<int64_t>(st < 0 ? st + r : st, 0, r);
      en = std::clamp<int64_t>(en < 0 ? en + r : en, 0, r);
      if (en <= st) node_fail("start/end select no dims of rank-" + std::to_string(r) + " input (empty tensors are not supported)");
      const std::vector<int64_t> v(sh.begin() + st, sh.begin() + en);
      vals_[n.output(0)] = g_.add_constant_ints(bind(n.output(0)), DType::I64, {static_cast<int64_t>(v.size())}, v);
    } else if (t == "Cast") {
      const int64_t to = attr_i("to", -1);
      auto d = dtype_from_onnx(static_cast<int32_t>(to));
      if (!d) node_fail("to=" + onnx_type_name(static_cast<int32_t>(to)) + " is not supported; supported: " + kOnnxSupportedTypes());
      emit1(OpKind::Cast, {input(0)}, {{"to", static_cast<int64_t>(*d)}});
    } else if (t == "Gemm") {
      std::vector<TensorId> ins = {input(0), input(1)};
      if (has_input(2)) ins.push_back(input(2));
      emit1(OpKind::Gemm, ins, {{"alpha", attr_f("alpha", 1.f)}, {"beta", attr_f("beta", 1.f)},
                                {"transA", attr_i("transA", 0)}, {"transB", attr_i("transB", 0)}});
    } else if (t == "Conv" || t == "MaxPool" || t == "AveragePool") {
      import_window(t);
    } else if (t == "BatchNormalization") {
      if (version_ < 7 && attr_i("is_test", 0) == 0)
        node_fail("is_test=0 (BatchNormalization-6 in training mode: batch statistics) is not supported; supported: "
                  "is_test=1 (inference)");
      if (version_ < 9 && attr_i("spatial", 1) != 1)
        node_fail("spatial=" + std::to_string(attr_i("spatial", 1)) + " (BatchNormalization-" +
                  std::to_string(version_) + ": statistics per activation, not per channel) is not supported; "
                  "supported: spatial=1");
      if (attr_i("training_mode", 0) != 0) node_fail("training_mode=1 is not supported; only inference");
      only_first_output("training statistics");
      emit1(OpKind::BatchNormalization, {input(0), input(1), input(2), input(3), input(4)},
            {{"epsilon", attr_f("epsilon", 1e-5f)}});
    } else if (t == "LayerNormalization") {
      only_first_output("Mean/InvStdDev");
      const int64_t ax = norm_axis(attr_i("axis", -1), rank(0), "axis");
      std::vector<TensorId> ins = {input(0), input(1)};
      if (has_input(2)) ins.push_back(input(2));
      emit1(OpKind::LayerNormalization, ins, {{"axis", ax}, {"epsilon", attr_f("epsilon", 1e-5f)}});
    } else if (t == "Softmax" || t == "LogSoftmax") {
      import_softmax(t == "LogSoftmax");
    } else if (is_activation_chain(t)) {
      import_activation(t);
    } else if (t == "ReduceMean" || t == "ReduceSum" || t == "ReduceMax" || t == "ReduceMin" || t == "ReduceSumSquare" ||
               t == "ReduceL1" || t == "ReduceL2") {
      OpKind k{};  // the ONNX names are the IR's (op_kinds.def)
      if (!ir::op_kind_from_name(t, &k)) throw std::logic_error("onnx import: no IR op " + t);
      import_reduce(k);
    } else if (t == "Max" || t == "Min" || t == "Sum" || t == "Mean") {
      import_variadic(t);
    } else if (t == "Transpose") {
      const int64_t r = rank(0);
      std::vector<int64_t> def(static_cast<size_t>(r));
      for (int64_t i = 0; i < r; ++i) def[i] = r - 1 - i;
      emit1(OpKind::Transpose, {input(0)}, {{"perm", attr_ints("perm", def)}});
    } else if (t == "Reshape") {
      import_reshape();
    } else if (t == "Flatten") {
      const Shape sh = tin(0).shape;
      const int64_t r = static_cast<int64_t>(sh.size());
      int64_t ax = attr_i("axis", 1);
      if (ax < -r || ax > r) node_fail("axis=" + std::to_string(ax) + " out of range [" + std::to_string(-r) + ", " + std::to_string(r) + "]");
      if (ax < 0) ax += r;
      const int64_t a = ir::num_elements(Shape(sh.begin(), sh.begin() + ax));
      vals_[n.output(0)] = reshape(input(0), {a, tin(0).elements() / a}, n.output(0));
    } else if (t == "Squeeze" || t == "Unsqueeze") {
      import_squeeze(t == "Unsqueeze");
    } else if (t == "Concat") {
      std::vector<TensorId> ins;
      for (size_t i = 0; i < nin(); ++i) ins.push_back(input(i));
      emit1(OpKind::Concat, ins, {{"axis", norm_axis(attr_i("axis", 0), rank(0), "axis")}});
    } else if (t == "Split") {
      import_split();
    } else if (t == "Slice") {
      import_slice();
    } else if (t == "Gather") {
      emit1(OpKind::Gather, {input(0), input(1)}, {{"axis", norm_axis(attr_i("axis", 0), rank(0), "axis")}});
    } else {
      node_fail("internal: op type in the table but not handled");
    }
  }

  void import_constant() {
    const auto& attrs = node_->attribute();
    if (attrs.size() != 1) node_fail("needs exactly one value attribute, has " + std::to_string(attrs.size()));
    const auto& a = attrs[0];
    const std::string& out = node_->output(0);
    TensorId id;
    if (a.name() == "value") {
      DecodedTensor d = decode_tensor(a.t(), src_ + ": node '" + node_name_ + "' (Constant) value");
      id = g_.add_constant(bind(out), d.dtype, d.shape, std::move(d.data));
    } else if (a.name() == "value_float") {
      id = g_.add_constant_floats(bind(out), {}, {a.f()});
    } else if (a.name() == "value_floats") {
      if (a.floats_size() == 0) node_fail("value_floats is empty (empty tensors are not supported)");
      id = g_.add_constant_floats(bind(out), {a.floats_size()}, {a.floats().begin(), a.floats().end()});
    } else if (a.name() == "value_int") {
      id = g_.add_constant_ints(bind(out), DType::I64, {}, {a.i()});
    } else {  // value_ints
      if (a.ints_size() == 0) node_fail("value_ints is empty (empty tensors are not supported)");
      id = g_.add_constant_ints(bind(out), DType::I64, {a.ints_size()}, {a.ints().begin(), a.ints().end()});
    }
    vals_[out] = id;
  }

  void import_window(const std::string& t) {
    const TInfo x = tin(0);
    const int64_t r = static_cast<int64_t>(x.shape.size());
    if (r != 3 && r != 4)
      node_fail("input '" + x.name + "' has shape " + ir::shape_str(x.shape) + "; supported: 1 or 2 spatial dims (rank 3 or 4)");
    const size_t ns = static_cast<size_t>(r - 2);
    const bool conv = t == "Conv";
    std::vector<int64_t> k = attr_ints("kernel_shape", {});
    if (k.empty()) {
      if (!conv) node_fail("kernel_shape is required");
      const Shape w = tin(1).shape;
      if (w.size() != x.shape.size()) node_fail("weight shape " + ir::shape_str(w) + " rank differs from input " + ir::shape_str(x.shape));
      k.assign(w.begin() + 2, w.end());
    }
    const std::vector<int64_t> ones(ns, 1);
    const auto s = attr_ints("strides", ones);
    const auto d = attr_ints("dilations", ones);
    std::vector<int64_t> p = attr_ints("pads", std::vector<int64_t>(2 * ns, 0));
    if (k.size() != ns || s.size() != ns || d.size() != ns || p.size() != 2 * ns)
      node_fail("kernel_shape " + ints_str(k) + ", strides " + ints_str(s) + ", dilations " + ints_str(d) + ", pads " +
                ints_str(p) + " do not match " + std::to_string(ns) + " spatial dims");
    const std::string ap = attr_s("auto_pad", "NOTSET");
    const bool ceil_mode = attr_i("ceil_mode", 0) != 0;
    if (ap == "VALID") {
      std::fill(p.begin(), p.end(), 0);
    } else if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      for (size_t i = 0; i < ns; ++i) {
        const int64_t in = x.shape[2 + i], out = (in + s[i] - 1) / s[i];
        const int64_t total = std::max<int64_t>(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in);
        p[i] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
        p[i + ns] = total - p[i];
      }
    } else if (ap != "NOTSET") {
      node_fail("auto_pad='" + ap + "' is not supported; supported: NOTSET, VALID, SAME_UPPER, SAME_LOWER");
    }
    std::map<std::string, ir::AttrValue> at = {{"kernel_shape", k}, {"strides", s}, {"pads", p}};
    std::vector<TensorId> ins = {input(0)};
    if (conv) {
      at["dilations"] = d;
      at["group"] = attr_i("group", 1);
      ins.push_back(input(1));
      if (has_input(2)) ins.push_back(input(2));
    } else if (t == "MaxPool") {
      // storage_order only orders the Indices output: refuse that output first (the precise reason).
      only_first_output("Indices");
      at["dilations"] = d;
      at["ceil_mode"] = int64_t{ceil_mode};
    } else {
      at["ceil_mode"] = int64_t{ceil_mode};
      at["count_include_pad"] = attr_i("count_include_pad", 0);
    }
    const OpKind kind = conv ? OpKind::Conv : t == "MaxPool" ? OpKind::MaxPool : OpKind::AveragePool;
    if (ns == 2) {
      emit1(kind, ins, at);
      return;
    }
    // One spatial dim: the same window over [N, C, 1, L] (a 1 x k kernel, no padding on H), then
    // the result reshaped back to [N, C', L'] (row-major: the same bytes).
    auto lift = [](const std::vector<int64_t>& v, int64_t one) { return std::vector<int64_t>{one, v[0]}; };
    at["kernel_shape"] = lift(k, 1);
    at["strides"] = lift(s, 1);
    at["pads"] = std::vector<int64_t>{0, p[0], 0, p[1]};
    if (at.count("dilations")) at["dilations"] = lift(d, 1);
    const std::string& out = node_->output(0);
    ins[0] = reshape(ins[0], {x.shape[0], x.shape[1], 1, x.shape[2]}, fresh(x.name + "_2d"));
    if (conv) {
      const Shape w = g_.tensor(ins[1]).shape;
      ins[1] = reshape(ins[1], {w[0], w[1], 1, w[2]}, fresh(g_.tensor(ins[1]).name + "_2d"));
    }
    const TensorId y4 = emit(kind, ins, at, {fresh(out + "_2d")})[0];
    const Shape ys = g_.tensor(y4).shape;
    vals_[out] = reshape(y4, {ys[0], ys[1], ys[3]}, out);
  }

  // The importer's side of frontends/onnx_activations.h: ops named after the current node, the
  // chain's result `result_name`.
  class NodeChain : public ChainBuilder {
   public:
    NodeChain(Importer& im, std::string result_name) : im_(im), result_(std::move(result_name)) {}
    TensorId op(OpKind k, std::vector<TensorId> ins, bool last, std::map<std::string, ir::AttrValue> attrs) override {
      const std::string name = last ? result_ : im_.fresh(result_ + "_" + std::string(ir::op_kind_name(k)));
      return im_.emit(k, std::move(ins), std::move(attrs), {name})[0];
    }
    TensorId scalar(float v, TensorId like) override {
      const DType dt = im_.g_.tensor(like).dtype;
      const TensorId c = im_.g_.add_constant_floats(im_.fresh(result_ + "_c"), {}, {v});
      if (dt == DType::F32) return c;
      return im_.emit(OpKind::Cast, {c}, {{"to", static_cast<int64_t>(dt)}}, {im_.fresh(result_ + "_c")})[0];
    }

   private:
    Importer& im_;
    const std::string result_;
  };

  void import_activation(const std::string& t) {
    std::map<std::string, float> fa;
    for (const auto& a : node_->attribute()) fa[a.name()] = attr_f(a.name(), 0.f);
    std::vector<TensorId> extra;
    for (size_t i = 1; i < nin(); ++i) extra.push_back(has_input(i) ? input(i) : ir::kNoTensor);
    if (t == "PRelu" && version_ < 7 && tin(1).shape.size() == 1 && tin(0).shape.size() >= 2 &&
        tin(1).shape[0] == tin(0).shape[1] && tin(1).shape[0] > 1) {
      // PRelu-6 (opset < 7): a 1-D slope holds one value per channel (axis 1), as exporters wrote it.
      Shape per_channel(tin(0).shape.size() - 1, 1);
      per_channel[0] = tin(1).shape[0];
      extra[0] = reshape(extra[0], per_channel, fresh(tin(1).name + "_per_channel"));
    } else if (t == "PRelu") {  // unidirectional broadcast: the slope may not widen X
      const Shape xs = tin(0).shape, ss = tin(1).shape;
      bool ok = true;
      try {
        ok = ir::broadcast_shapes(xs, ss) == xs;
      } catch (const InputError&) {
        ok = false;
      }
      if (!ok)
        node_fail("slope of shape " + ir::shape_str(ss) + " does not broadcast to X's shape " + ir::shape_str(xs) +
                  " (PRelu broadcasts the slope to X, numpy-style from the last dim)");
    }
    NodeChain b(*this, node_->output(0));
    vals_[node_->output(0)] = write_activation(t, input(0), fa, extra, b);
  }

  // Max, Min, Sum, Mean of any number of inputs: a chain of binary IR ops (max and min are exact,
  // so their order does not matter; Sum and Mean add left to right, Mean then scales by 1/n).
  void import_variadic(const std::string& t) {
    const OpKind k = t == "Max" ? OpKind::Max : t == "Min" ? OpKind::Min : OpKind::Add;
    const bool mean = t == "Mean" && nin() > 1;
    const std::string& out = node_->output(0);
    TensorId acc = input(0);
    for (size_t i = 1; i < nin(); ++i) {
      const bool last = i + 1 == nin() && !mean;
      acc = emit(k, {acc, input(i)}, {}, {last ? out : fresh(out + "_" + t + std::to_string(i))})[0];
    }
    if (mean) {
      NodeChain nc(*this, out);
      ChainBuilder& b = nc;
      acc = b.op(OpKind::Mul, {acc, b.scalar(1.f / static_cast<float>(nin()), acc)}, true);
    }
    vals_[out] = acc;
  }

  // Softmax, or LogSoftmax (frontends/onnx_activations.h write_log_softmax), over one axis.
  void import_softmax(bool log) {
    const Shape sh = tin(0).shape;
    const int64_t r = static_cast<int64_t>(sh.size());
    const int64_t ax = norm_axis(attr_i("axis", opset_ >= 13 ? -1 : 1), r, "axis");
    auto over = [&](TensorId x, int64_t a, const std::string& name) {
      if (!log) return emit(OpKind::Softmax, {x}, {{"axis", a}}, {name})[0];
      NodeChain b(*this, name);
      return write_log_softmax(x, a, b);
    };
    const std::string& out = node_->output(0);
    if (opset_ >= 13 || ax == r - 1) {
      vals_[out] = over(input(0), ax, out);
      return;
    }
    // opset < 13: (log) softmax over the flattened dims [axis, rank) (coerced to 2-D).
    const int64_t a = ir::num_elements(Shape(sh.begin(), sh.begin() + ax));
    const TensorId flat = reshape(input(0), {a, tin(0).elements() / a}, fresh(out + "_2d"));
    const TensorId sm = over(flat, 1, fresh(out + "_2d_softmax"));
    vals_[out] = reshape(sm, sh, out);
  }

  void import_reduce(OpKind kind) {
    const int64_t r = rank(0);
    std::vector<int64_t> axes;
    bool from_input = kind == OpKind::ReduceSum && opset_ >= 13;
    if (from_input) {
      if (has_input(1)) axes = const_ints(1, "axes");
    } else {
      axes = attr_ints("axes", {});
    }
    const bool keep = attr_i("keepdims", 1) != 0;
    if (axes.empty()) {
      if (attr_i("noop_with_empty_axes", 0) != 0 || r == 0) {
        alias(node_->output(0), input(0));
        return;
      }
      for (int64_t i = 0; i < r; ++i) axes.push_back(i);
    }
    for (auto& a : axes) a = norm_axis(a, r, "axes entry");
    std::sort(axes.begin(), axes.end());
    if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) node_fail("axes " + ints_str(axes) + " repeat an axis");
    emit1(kind, {input(0)}, {{"axes", axes}, {"keepdims", int64_t{keep}}});
  }

  void import_reshape() {
    const Shape in = tin(0).shape;
    std::vector<int64_t> s = const_ints(1, "shape");
    const bool allowzero = attr_i("allowzero", 0) != 0;
    int infer = -1;
    int64_t known = 1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == 0 && !allowzero) {
        if (i >= in.size()) node_fail("shape " + ints_str(s) + " copies dim " + std::to_string(i) + " (0) but the input " + ir::shape_str(in) + " has no such dim");
        s[i] = in[i];
      }
      if (s[i] == -1) {
        if (infer >= 0) node_fail("shape " + ints_str(s) + " has more than one -1");
        infer = static_cast<int>(i);
        continue;
      }
      if (s[i] < 1) node_fail("shape " + ints_str(s) + " has dim " + std::to_string(s[i]) + "; allowed: >= 1, 0 (copy) or one -1");
      known *= s[i];
    }
    const int64_t n = tin(0).elements();
    if (infer >= 0) {
      if (n % known) node_fail("cannot infer -1 in shape " + ints_str(s) + " for " + std::to_string(n) + " elements");
      s[infer] = n / known;
    }
    if (ir::num_elements(s) != n)
      node_fail("shape " + ints_str(s) + " has " + std::to_string(ir::num_elements(s)) + " elements; input " + ir::shape_str(in) + " has " + std::to_string(n));
    vals_[node_->output(0)] = reshape(input(0), s, node_->output(0));
  }

  void import_squeeze(bool unsq) {
    const Shape in = tin(0).shape;
    std::vector<int64_t> axes;
    if (opset_ >= 13) {
      if (has_input(1)) axes = const_ints(1, "axes");
    } else {
      axes = attr_ints("axes", {});
    }
    Shape out;
    if (unsq) {
      if (axes.empty()) node_fail("axes is required");
      const int64_t r = static_cast<int64_t>(in.size() + axes.size());
      std::vector<char> ins(static_cast<size_t>(r), 0);
      for (int64_t a : axes) {
        const int64_t x = norm_axis(a, r, "axes entry");
        if (ins[x]) node_fail("axes " + ints_str(axes) + " repeat an axis");
        ins[x] = 1;
      }
      size_t j = 0;
      for (int64_t i = 0; i < r; ++i) out.push_back(ins[i] ? 1 : in[j++]);
    } else {
      const int64_t r = static_cast<int64_t>(in.size());
      std::vector<char> sq(in.size(), 0);
      for (int64_t a : axes) {
        const int64_t x = norm_axis(a, r, "axes entry");
        if (in[x] != 1) node_fail("axis " + std::to_string(a) + " of input " + ir::shape_str(in) + " has size " + std::to_string(in[x]) + "; only size-1 dims can be squeezed");
        sq[x] = 1;
      }
      for (size_t i = 0; i < in.size(); ++i)
        if (!(axes.empty() ? in[i] == 1 : sq[i] != 0)) out.push_back(in[i]);
    }
    vals_[node_->output(0)] = reshape(input(0), out, node_->output(0));
  }

  void import_split() {
    const Shape in = tin(0).shape;
    const int64_t ax = norm_axis(attr_i("axis", 0), static_cast<int64_t>(in.size()), "axis");
    std::vector<int64_t> sp;
    if (opset_ >= 13) {
      if (has_input(1)) sp = const_ints(1, "split");
    } else {
      sp = attr_ints("split", {});
    }
    const int64_t nout = node_->output_size();
    if (sp.empty()) {
      if (in[ax] % nout) node_fail("axis " + std::to_string(ax) + " of " + ir::shape_str(in) + " does not split evenly into " + std::to_string(nout) + " outputs");
      sp.assign(static_cast<size_t>(nout), in[ax] / nout);
    }
    std::vector<std::string> outs;
    for (int i = 0; i < node_->output_size(); ++i)
      outs.push_back(node_->output(i).empty() ? fresh(node_name_ + "_unused" + std::to_string(i)) : node_->output(i));
    auto r = emit(OpKind::Split, {input(0)}, {{"axis", ax}, {"split", sp}}, outs);
    for (int i = 0; i < node_->output_size(); ++i)
      if (!node_->output(i).empty()) vals_[node_->output(i)] = r[static_cast<size_t>(i)];
  }

  void import_slice() {
    const Shape in = tin(0).shape;
    const int64_t r = static_cast<int64_t>(in.size());
    // Slice-1 (opsets < 10): starts, ends, axes are attributes and there are no steps.
    const bool v1 = version_ < 10;
    if (v1 && !attr("starts")) node_fail("attribute 'starts' is required (Slice-1)");
    if (v1 && !attr("ends")) node_fail("attribute 'ends' is required (Slice-1)");
    const auto starts = v1 ? attr_ints("starts", {}) : const_ints(1, "starts");
    const auto ends = v1 ? attr_ints("ends", {}) : const_ints(2, "ends");
    std::vector<int64_t> axes, steps;
    if (v1 && attr("axes")) axes = attr_ints("axes", {});
    else if (!v1 && has_input(3)) axes = const_ints(3, "axes");
    else for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (!v1 && has_input(4)) steps = const_ints(4, "steps");
    else steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
      node_fail("starts " + ints_str(starts) + ", ends " + ints_str(ends) + ", axes " + ints_str(axes) + ", steps " + ints_str(steps) + " must have equal lengths");
    std::vector<int64_t> st(static_cast<size_t>(r), 0), sp(static_cast<size_t>(r), 1), cnt(in.begin(), in.end());
    std::vector<char> seen(static_cast<size_t>(r), 0);
    for (size_t i = 0; i < starts.size(); ++i) {
      const int64_t a = norm_axis(axes[i], r, "axes entry");
      if (seen[a]) node_fail("axes " + ints_str(axes) + " repeat an axis");
      seen[a] = 1;
      const int64_t dim = in[a], step = steps[i];
      if (step == 0) node_fail("steps " + ints_str(steps) + " contain 0");
      int64_t s = starts[i], e = ends[i];
      if (s < 0) s = s < -dim ? -1 : s + dim;  // avoid overflow on INT64_MIN
      if (e < 0) e = e < -dim ? -1 : e + dim;
      int64_t c;
      if (step > 0) {
        s = std::clamp<int64_t>(s, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        c = e > s ? (e - s + step - 1) / step : 0;
      } else {
        s = std::clamp<int64_t>(s, 0, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        c = s > e ? (s - e + (-step) - 1) / (-step) : 0;
      }
      if (c < 1) node_fail("slice of axis " + std::to_string(a) + " (size " + std::to_string(dim) + ") with start " + std::to_string(starts[i]) +
                           ", end " + std::to_string(ends[i]) + ", step " + std::to_string(step) + " is empty; empty tensors are not supported");
      st[a] = s;
      sp[a] = step;
      cnt[a] = c;
    }
    emit1(OpKind::Slice, {input(0)}, {{"starts", st}, {"steps", sp}, {"counts", cnt}});
  }
};

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {  // an ifstream would read it as an empty file
    const std::filesystem::path m = std::filesystem::path(path) / "model.onnx";
    throw InputError(path + ": is a directory; expected a file" +
                     (std::filesystem::is_regular_file(m, ec) ? " (did you mean " + m.string() + "?)" : std::string()));
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw InputError(path + ": read error");
  return ss.str();
}

}  // namespace

const std::vector<std::string>& onnx_supported_ops() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> r;
    for (const auto& [k, a] : op_table()) r.push_back(k);
    return r;
  }();
  return v;
}

ir::Graph import_onnx_bytes(const std::string& bytes, const std::string& source_name, const OnnxImportOptions& opts) {
  Importer im(source_name, opts);
  return im.run(bytes);
}

ir::Graph import_onnx(const std::string& path, const OnnxImportOptions& opts) {
  return import_onnx_bytes(read_file(path), path, opts);
}

ref::Value load_onnx_tensor_file(const std::string& path, std::string* name) {
  const std::string bytes = read_file(path);
  onnx::TensorProto t;
  if (bytes.empty() || !t.ParseFromString(bytes)) throw InputError(path + ": not a serialized onnx.TensorProto");
  if (name) *name = t.name();
  DecodedTensor d = decode_tensor(t, path);
  ir::Tensor tmp;
  tmp.name = t.name();
  tmp.dtype = d.dtype;
  tmp.shape = d.shape;
  tmp.is_const = true;
  tmp.data = std::move(d.data);
  return ref::Value::from_constant(tmp);
}

}  // namespace lpu::frontend
