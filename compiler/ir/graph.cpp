// Graph IR: op-kind table, builders, dead-code removal, validation and the text dump.
#include "compiler/ir/graph.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace lpu::ir {

namespace {
const OpKindInfo kOpInfo[] = {
#define LPU_IR_OP(Id, name, min_in, max_in, outs, doc) {name, min_in, max_in, outs, doc},
#include "compiler/ir/op_kinds.def"
#undef LPU_IR_OP
};

std::string fmt_float(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string attr_str(const AttrValue& v) {
  if (auto p = std::get_if<int64_t>(&v)) return std::to_string(*p);
  if (auto p = std::get_if<float>(&v)) return fmt_float(*p);
  if (auto p = std::get_if<std::string>(&v)) return "\"" + *p + "\"";
  const auto& xs = std::get<std::vector<int64_t>>(v);
  std::string r = "[";
  for (size_t i = 0; i < xs.size(); ++i) r += (i ? "," : "") + std::to_string(xs[i]);
  return r + "]";
}
}  // namespace

const OpKindInfo& op_kind_info(OpKind k) {
  const auto i = static_cast<size_t>(k);
  if (i >= static_cast<size_t>(kNumOpKinds)) throw std::logic_error("ir: unknown OpKind " + std::to_string(i));
  return kOpInfo[i];
}
std::string_view op_kind_name(OpKind k) { return op_kind_info(k).name; }
bool op_kind_from_name(std::string_view s, OpKind* out) {
  for (int i = 0; i < kNumOpKinds; ++i)
    if (kOpInfo[i].name == s) {
      *out = static_cast<OpKind>(i);
      return true;
    }
  return false;
}
std::string op_kind_list() {
  std::string r;
  for (int i = 0; i < kNumOpKinds; ++i) r += (i ? ", " : "") + std::string(kOpInfo[i].name);
  return r;
}

// ---- Tensor ----------------------------------------------------------------------------------
std::vector<float> Tensor::const_floats() const {
  if (!is_const) throw std::logic_error("ir: tensor '" + name + "' is not a constant");
  const int64_t n = elements();
  std::vector<float> v(static_cast<size_t>(n));
  const uint8_t* p = data.data();
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::F32: std::memcpy(&v[i], p + 4 * i, 4); break;
      case DType::F16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); v[i] = f16_to_f32(h); break; }
      case DType::I8: v[i] = static_cast<int8_t>(p[i]); break;
      case DType::BOOL: v[i] = p[i] ? 1.f : 0.f; break;
      case DType::I32: { int32_t x; std::memcpy(&x, p + 4 * i, 4); v[i] = static_cast<float>(x); break; }
      case DType::I64: { int64_t x; std::memcpy(&x, p + 8 * i, 8); v[i] = static_cast<float>(x); break; }
    }
  }
  return v;
}

std::vector<int64_t> Tensor::const_ints() const {
  if (!is_const) throw std::logic_error("ir: tensor '" + name + "' is not a constant");
  if (dtype_is_float(dtype)) throw std::logic_error("ir: tensor '" + name + "' is float, not int");
  const int64_t n = elements();
  std::vector<int64_t> v(static_cast<size_t>(n));
  const uint8_t* p = data.data();
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::I8: v[i] = static_cast<int8_t>(p[i]); break;
      case DType::BOOL: v[i] = p[i] ? 1 : 0; break;
      case DType::I32: { int32_t x; std::memcpy(&x, p + 4 * i, 4); v[i] = x; break; }
      case DType::I64: { int64_t x; std::memcpy(&x, p + 8 * i, 8); v[i] = x; break; }
      case DType::F16: case DType::F32: break;  // excluded above
    }
  }
  return v;
}

// ---- Op --------------------------------------------------------------------------------------
namespace {
template <class T>
const T& get_attr(const Op& op, const std::string& a, const char* type) {
  auto it = op.attrs.find(a);
  if (it == op.attrs.end())
    throw std::logic_error("ir: op '" + op.name + "' (" + std::string(op_kind_name(op.kind)) + ") has no attribute '" + a + "'");
  if (auto p = std::get_if<T>(&it->second)) return *p;
  throw std::logic_error("ir: attribute '" + a + "' of op '" + op.name + "' is not " + type);
}
}  // namespace
int64_t Op::attr_int(const std::string& a) const { return get_attr<int64_t>(*this, a, "an int"); }
float Op::attr_float(const std::string& a) const { return get_attr<float>(*this, a, "a float"); }
const std::string& Op::attr_string(const std::string& a) const { return get_attr<std::string>(*this, a, "a string"); }
const std::vector<int64_t>& Op::attr_ints(const std::string& a) const {
  return get_attr<std::vector<int64_t>>(*this, a, "a list of ints");
}

// ---- Graph builders --------------------------------------------------------------------------
TensorId Graph::add_tensor(const std::string& n, DType t, const Shape& s) {
  if (by_name_.count(n)) throw std::logic_error("ir: duplicate tensor name '" + n + "'");
  Tensor x;
  x.name = n;
  x.dtype = t;
  x.shape = s;
  tensors_.push_back(std::move(x));
  const auto id = static_cast<TensorId>(tensors_.size() - 1);
  by_name_.emplace(n, id);
  return id;
}

TensorId Graph::add_input(const std::string& n, DType t, const Shape& s) {
  TensorId id = add_tensor(n, t, s);
  inputs_.push_back(id);
  return id;
}

TensorId Graph::add_constant(const std::string& n, DType t, const Shape& s, std::vector<uint8_t> data) {
  if (static_cast<int64_t>(data.size()) != num_elements(s) * dtype_bytes(t))
    throw std::logic_error("ir: constant '" + n + "' has " + std::to_string(data.size()) + " bytes, shape " +
                           shape_str(s) + " of " + std::string(dtype_name(t)) + " needs " +
                           std::to_string(num_elements(s) * dtype_bytes(t)));
  TensorId id = add_tensor(n, t, s);
  tensors_[id].is_const = true;
  tensors_[id].data = std::move(data);
  return id;
}

TensorId Graph::add_constant_floats(const std::string& n, const Shape& s, const std::vector<float>& v) {
  std::vector<uint8_t> d(v.size() * 4);
  if (!v.empty()) std::memcpy(d.data(), v.data(), d.size());
  return add_constant(n, DType::F32, s, std::move(d));
}

TensorId Graph::add_constant_ints(const std::string& n, DType t, const Shape& s, const std::vector<int64_t>& v) {
  const int b = dtype_bytes(t);
  if (dtype_is_float(t)) throw std::logic_error("ir: add_constant_ints with float dtype for '" + n + "'");
  std::vector<uint8_t> d(v.size() * static_cast<size_t>(b));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::BOOL) { d[i] = v[i] ? 1 : 0; continue; }
    const int64_t x = v[i];
    std::memcpy(d.data() + i * b, &x, static_cast<size_t>(b));  // little-endian truncation = wrap
  }
  return add_constant(n, t, s, std::move(d));
}

int Graph::add_op(Op op) {
  const int idx = static_cast<int>(ops_.size());
  for (TensorId o : op.outputs) {
    Tensor& t = tensors_.at(static_cast<size_t>(o));
    if (t.producer >= 0 || t.is_const)
      throw std::logic_error("ir: tensor '" + t.name + "' already has a producer");
    t.producer = idx;
  }
  ops_.push_back(std::move(op));
  return idx;
}

void Graph::mark_output(TensorId t) { outputs_.push_back(t); }

TensorId Graph::find(std::string_view n) const {
  auto it = by_name_.find(n);
  return it == by_name_.end() ? kNoTensor : it->second;
}

std::string Graph::unique_name(const std::string& base) const {
  if (!by_name_.count(base)) return base;
  for (int i = 1;; ++i) {
    std::string c = base + "_" + std::to_string(i);
    if (!by_name_.count(c)) return c;
  }
}

std::vector<std::vector<int>> Graph::consumers() const {
  std::vector<std::vector<int>> c(tensors_.size());
  for (size_t i = 0; i < ops_.size(); ++i)
    for (TensorId t : ops_[i].inputs)
      if (t != kNoTensor && (c[t].empty() || c[t].back() != static_cast<int>(i))) c[t].push_back(static_cast<int>(i));
  return c;
}

void Graph::replace_uses(TensorId from, TensorId to) {
  for (auto& op : ops_)
    for (auto& t : op.inputs)
      if (t == from) t = to;
  bool was_output = false;
  for (auto& t : outputs_)
    if (t == from) { t = to; was_output = true; }
  Tensor& tt = tensors_.at(static_cast<size_t>(to));
  if (was_output && tt.producer >= 0 && std::find(inputs_.begin(), inputs_.end(), to) == inputs_.end()) {
    Tensor& ft = tensors_.at(static_cast<size_t>(from));
    std::swap(ft.name, tt.name);
    by_name_[ft.name] = from;
    by_name_[tt.name] = to;
  }
}

void Graph::remove_dead() {
  std::vector<char> live_t(tensors_.size(), 0), live_op(ops_.size(), 0);
  for (TensorId t : outputs_) live_t[t] = 1;
  for (size_t i = ops_.size(); i-- > 0;) {
    bool live = false;
    for (TensorId o : ops_[i].outputs) live |= live_t[o] != 0;
    if (!live) continue;
    live_op[i] = 1;
    for (TensorId o : ops_[i].outputs) live_t[o] = 1;  // all outputs of a live op stay (e.g. Split)
    for (TensorId t : ops_[i].inputs)
      if (t != kNoTensor) live_t[t] = 1;
  }
  for (TensorId t : inputs_) live_t[t] = 1;
  std::vector<TensorId> remap(tensors_.size(), kNoTensor);
  std::vector<Tensor> nt;
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (live_t[i]) {
      remap[i] = static_cast<TensorId>(nt.size());
      nt.push_back(std::move(tensors_[i]));
    }
  std::vector<Op> no;
  std::vector<int> op_remap(ops_.size(), -1);
  for (size_t i = 0; i < ops_.size(); ++i)
    if (live_op[i]) {
      op_remap[i] = static_cast<int>(no.size());
      no.push_back(std::move(ops_[i]));
    }
  for (auto& op : no) {
    for (auto& t : op.inputs) if (t != kNoTensor) t = remap[t];
    for (auto& t : op.outputs) t = remap[t];
  }
  for (auto& t : nt) if (t.producer >= 0) t.producer = op_remap[t.producer];
  for (auto& t : inputs_) t = remap[t];
  for (auto& t : outputs_) t = remap[t];
  tensors_ = std::move(nt);
  ops_ = std::move(no);
  by_name_.clear();
  for (size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, static_cast<TensorId>(i));
}

void Graph::validate() const {
  auto fail = [](const std::string& m) { throw std::logic_error("ir: invalid graph: " + m); };
  if (by_name_.size() != tensors_.size()) fail("tensor names are not unique");
  const auto n = static_cast<TensorId>(tensors_.size());
  std::vector<char> avail(tensors_.size(), 0);
  for (TensorId t : inputs_) {
    if (t < 0 || t >= n) fail("graph input id out of range");
    avail[t] = 1;
  }
  for (TensorId i = 0; i < n; ++i) {
    const Tensor& t = tensors_[i];
    for (int64_t d : t.shape)
      if (d < 1) fail("tensor '" + t.name + "' has non-positive dim in " + shape_str(t.shape));
    if (t.is_const) {
      if (static_cast<int64_t>(t.data.size()) != t.bytes()) fail("constant '" + t.name + "' data size mismatch");
      if (t.producer >= 0) fail("constant '" + t.name + "' has a producer");
      avail[i] = 1;
    }
  }
  for (size_t oi = 0; oi < ops_.size(); ++oi) {
    const Op& op = ops_[oi];
    const auto& info = op_kind_info(op.kind);
    const int nin = static_cast<int>(op.inputs.size());
    if (nin < info.min_inputs || nin > info.max_inputs)
      fail("op '" + op.name + "' (" + std::string(info.name) + ") has " + std::to_string(nin) + " inputs");
    if (info.outputs >= 0 && static_cast<int>(op.outputs.size()) != info.outputs)
      fail("op '" + op.name + "' has " + std::to_string(op.outputs.size()) + " outputs");
    for (int k = 0; k < nin; ++k) {
      TensorId t = op.inputs[k];
      if (t == kNoTensor) {
        if (k < info.min_inputs) fail("op '" + op.name + "' misses required input " + std::to_string(k));
        continue;
      }
      if (t < 0 || t >= n) fail("op '" + op.name + "' input id out of range");
      if (!avail[t]) fail("op '" + op.name + "' reads '" + tensors_[t].name + "' before it is produced");
    }
    for (TensorId t : op.outputs) {
      if (t < 0 || t >= n) fail("op '" + op.name + "' output id out of range");
      if (avail[t]) fail("tensor '" + tensors_[t].name + "' is written twice or is an input/constant");
      if (tensors_[t].producer != static_cast<int>(oi)) fail("tensor '" + tensors_[t].name + "' producer mismatch");
      avail[t] = 1;
    }
  }
  for (TensorId t : outputs_)
    if (t < 0 || t >= n || !avail[t]) fail("graph output is never produced");
}

// ---- text dump -------------------------------------------------------------------------------
std::string Graph::to_text() const {
  auto tdesc = [&](TensorId id) {
    const Tensor& t = tensors_[id];
    return "%" + t.name + ":" + std::string(dtype_name(t.dtype)) + shape_str(t.shape);
  };
  std::string r = "graph " + name + "\n";
  for (TensorId t : inputs_) r += "input " + tdesc(t) + "\n";
  for (TensorId i = 0; i < static_cast<TensorId>(tensors_.size()); ++i) {
    const Tensor& t = tensors_[i];
    if (!t.is_const) continue;
    r += "const " + tdesc(i) + " =";
    const int64_t n = t.elements();
    const int64_t show = std::min<int64_t>(n, 8);
    if (dtype_is_float(t.dtype)) {
      auto v = t.const_floats();
      for (int64_t k = 0; k < show; ++k) r += " " + fmt_float(v[k]);
    } else {
      auto v = t.const_ints();
      for (int64_t k = 0; k < show; ++k) r += " " + std::to_string(v[k]);
    }
    if (show < n) r += " ...";
    r += "\n";
  }
  for (const Op& op : ops_) {
    std::string outs;
    for (size_t k = 0; k < op.outputs.size(); ++k) outs += (k ? ", " : "") + tdesc(op.outputs[k]);
    std::string ins;
    for (size_t k = 0; k < op.inputs.size(); ++k)
      ins += (k ? ", " : "") + (op.inputs[k] == kNoTensor ? std::string("none") : "%" + tensors_[op.inputs[k]].name);
    r += outs + " = " + std::string(op_kind_name(op.kind)) + "(" + ins + ")";
    if (!op.attrs.empty()) {
      r += " {";
      bool first = true;
      for (const auto& [k, v] : op.attrs) {
        r += (first ? "" : ", ") + k + "=" + attr_str(v);
        first = false;
      }
      r += "}";
    }
    r += "  # " + op.name + "\n";
  }
  for (TensorId t : outputs_) r += "output " + tdesc(t) + "\n";
  return r;
}

}  // namespace lpu::ir
