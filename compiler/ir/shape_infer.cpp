// Shape and dtype inference for canonical IR ops (the rules stated in op_kinds.def).
#include "compiler/ir/shape_infer.h"

#include <algorithm>
#include <stdexcept>

#include "isa/chip_config.h"

namespace lpu::ir {

namespace {
[[noreturn]] void fail(const Op& op, const std::string& msg) {
  throw InputError("op '" + op.name + "' (" + std::string(op_kind_name(op.kind)) + "): " + msg);
}
const Tensor& in(const Graph& g, const Op& op, size_t k) {
  if (k >= op.inputs.size() || op.inputs[k] == kNoTensor) fail(op, "missing input " + std::to_string(k));
  return g.tensor(op.inputs[k]);
}
bool has_in(const Op& op, size_t k) { return k < op.inputs.size() && op.inputs[k] != kNoTensor; }
void require_float(const Op& op, const Tensor& t) {
  if (!dtype_is_float(t.dtype))
    fail(op, "input '" + t.name + "' has dtype " + std::string(dtype_name(t.dtype)) + "; allowed: f16, f32");
}
void require_same_dtype(const Op& op, const Tensor& a, const Tensor& b) {
  if (a.dtype != b.dtype)
    fail(op, "inputs '" + a.name + "' (" + std::string(dtype_name(a.dtype)) + ") and '" + b.name + "' (" +
                 std::string(dtype_name(b.dtype)) + ") must have the same dtype");
}
int64_t axis_in(const Op& op, const char* attr, int64_t rank) {
  const int64_t a = op.attr_int(attr);
  if (a < 0 || a >= rank)
    fail(op, std::string(attr) + "=" + std::to_string(a) + " out of range for rank " + std::to_string(rank));
  return a;
}
std::string ints_str(const std::vector<int64_t>& v) { return shape_str(v); }

TensorType window_op(const Graph& g, const Op& op, bool is_conv) {
  const Tensor& x = in(g, op, 0);
  require_float(op, x);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  if (r != 3 && r != 4) fail(op, "input '" + x.name + "' has shape " + shape_str(x.shape) + "; allowed: rank 3 or 4 (N,C,spatial...)");
  const size_t ns = static_cast<size_t>(r - 2);
  const auto& k = op.attr_ints("kernel_shape");
  const auto& s = op.attr_ints("strides");
  const auto& p = op.attr_ints("pads");
  const std::vector<int64_t> ones(ns, 1);
  const auto& d = op.has("dilations") ? op.attr_ints("dilations") : ones;
  if (k.size() != ns || s.size() != ns || d.size() != ns || p.size() != 2 * ns)
    fail(op, "kernel_shape " + ints_str(k) + ", strides " + ints_str(s) + ", dilations " + ints_str(d) + ", pads " +
                 ints_str(p) + " do not match " + std::to_string(ns) + " spatial dims");
  for (size_t i = 0; i < ns; ++i) {
    if (k[i] < 1 || s[i] < 1 || d[i] < 1) fail(op, "kernel/stride/dilation values must be >= 1");
    if (p[i] < 0 || p[i + ns] < 0) fail(op, "pads " + ints_str(p) + " must be >= 0");
  }
  Shape out = x.shape;
  if (is_conv) {
    const Tensor& w = in(g, op, 1);
    require_same_dtype(op, x, w);
    const int64_t group = op.attr_int("group");
    if (w.shape.size() != x.shape.size()) fail(op, "weight '" + w.name + "' shape " + shape_str(w.shape) + " rank differs from input " + shape_str(x.shape));
    if (group < 1 || x.shape[1] % group || w.shape[0] % group)
      fail(op, "group=" + std::to_string(group) + " must divide input channels " + std::to_string(x.shape[1]) +
                   " and output channels " + std::to_string(w.shape[0]));
    if (w.shape[1] != x.shape[1] / group)
      fail(op, "weight '" + w.name + "' shape " + shape_str(w.shape) + " needs dim 1 = C/group = " + std::to_string(x.shape[1] / group));
    for (size_t i = 0; i < ns; ++i)
      if (w.shape[2 + i] != k[i]) fail(op, "kernel_shape " + ints_str(k) + " differs from weight shape " + shape_str(w.shape));
    if (has_in(op, 2)) {
      const Tensor& b = in(g, op, 2);
      if (b.shape != Shape{w.shape[0]}) fail(op, "bias '" + b.name + "' shape " + shape_str(b.shape) + "; needs [" + std::to_string(w.shape[0]) + "]");
    }
    out[1] = w.shape[0];
  }
  const bool ceil_mode = op.has("ceil_mode") && op.attr_int("ceil_mode") != 0;
  for (size_t i = 0; i < ns; ++i) {
    out[2 + i] = window_out_dim(x.shape[2 + i], k[i], s[i], d[i], p[i], p[i + ns], ceil_mode);
    if (out[2 + i] < 1)
      fail(op, "window (kernel " + ints_str(k) + ", dilations " + ints_str(d) + ") does not fit input " + shape_str(x.shape) + " with pads " + ints_str(p));
  }
  return {x.dtype, out};
}
}  // namespace

int64_t window_out_dim(int64_t in, int64_t k, int64_t stride, int64_t dil, int64_t pb, int64_t pe, bool ceil_mode) {
  const int64_t span = in + pb + pe - dil * (k - 1) - 1;
  if (span < 0) return 0;
  int64_t o = ceil_mode ? (span + stride - 1) / stride + 1 : span / stride + 1;
  // ONNX/PyTorch rule: with ceil_mode the last window must start inside the input or left padding.
  if (ceil_mode && (o - 1) * stride >= in + pb) --o;
  return o;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape o(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      throw InputError("shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
    o[i] = std::max(da, db);
  }
  return o;
}

namespace {
// broadcast_shapes, its error naming the op.
Shape bcast(const Op& op, const Shape& a, const Shape& b) {
  try {
    return broadcast_shapes(a, b);
  } catch (const InputError& e) {
    fail(op, e.what());
  }
}

// One rule per op family (op_kinds.def states them); the op's input count is already checked.
TensorType arith_type(const Graph& g, const Op& op) {
  const Tensor& a = in(g, op, 0); const Tensor& b = in(g, op, 1);
  require_same_dtype(op, a, b);
  if (a.dtype == DType::BOOL) fail(op, "bool inputs are not allowed; allowed: i8, i32, i64, f16, f32");
  return {a.dtype, bcast(op, a.shape, b.shape)};
}

TensorType pow_type(const Graph& g, const Op& op) {
  const Tensor& a = in(g, op, 0); const Tensor& b = in(g, op, 1);
  require_float(op, a);
  if (b.dtype == DType::BOOL) fail(op, "exponent '" + b.name + "' is bool");
  return {a.dtype, bcast(op, a.shape, b.shape)};
}

TensorType equal_type(const Graph& g, const Op& op) {
  const Tensor& a = in(g, op, 0); const Tensor& b = in(g, op, 1);
  require_same_dtype(op, a, b);
  return {DType::BOOL, bcast(op, a.shape, b.shape)};
}

TensorType where_type(const Graph& g, const Op& op) {
  const Tensor& c = in(g, op, 0); const Tensor& x = in(g, op, 1); const Tensor& y = in(g, op, 2);
  if (c.dtype != DType::BOOL) fail(op, "condition '" + c.name + "' has dtype " + std::string(dtype_name(c.dtype)) + "; allowed: bool");
  require_same_dtype(op, x, y);
  return {x.dtype, bcast(op, c.shape, bcast(op, x.shape, y.shape))};
}

TensorType signed_unary_type(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0);
  if (x.dtype == DType::BOOL) fail(op, "bool input is not allowed");
  return {x.dtype, x.shape};
}

TensorType float_unary_type(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0);
  require_float(op, x);
  return {x.dtype, x.shape};
}

TensorType cast_type(const Graph& g, const Op& op) {
  const int64_t to = op.attr_int("to");
  if (to < 0 || to >= kNumIrDTypes) fail(op, "to=" + std::to_string(to) + " is not an IR dtype");
  return {static_cast<DType>(to), in(g, op, 0).shape};
}

TensorType matmul_type(const Graph& g, const Op& op) {
  const Tensor& a = in(g, op, 0); const Tensor& b = in(g, op, 1);
  require_same_dtype(op, a, b);
  if (a.dtype == DType::BOOL) fail(op, "bool inputs are not allowed");
  Shape sa = a.shape, sb = b.shape;
  if (sa.empty() || sb.empty()) fail(op, "scalar inputs are not allowed (shapes " + shape_str(sa) + ", " + shape_str(sb) + ")");
  const bool va = sa.size() == 1, vb = sb.size() == 1;
  if (va) sa.insert(sa.begin(), 1);
  if (vb) sb.push_back(1);
  if (sa.back() != sb[sb.size() - 2])
    fail(op, "inner dims differ: '" + a.name + "' " + shape_str(a.shape) + " x '" + b.name + "' " + shape_str(b.shape));
  Shape batch = bcast(op, Shape(sa.begin(), sa.end() - 2), Shape(sb.begin(), sb.end() - 2));
  if (!va) batch.push_back(sa[sa.size() - 2]);
  if (!vb) batch.push_back(sb.back());
  return {a.dtype, batch};
}

TensorType gemm_type(const Graph& g, const Op& op) {
  const Tensor& a = in(g, op, 0); const Tensor& b = in(g, op, 1);
  require_same_dtype(op, a, b);
  require_float(op, a);
  if (a.shape.size() != 2 || b.shape.size() != 2)
    fail(op, "A " + shape_str(a.shape) + " and B " + shape_str(b.shape) + " must be rank 2");
  const bool ta = op.attr_int("transA") != 0, tb = op.attr_int("transB") != 0;
  const int64_t m = ta ? a.shape[1] : a.shape[0], ka = ta ? a.shape[0] : a.shape[1];
  const int64_t kb = tb ? b.shape[1] : b.shape[0], n = tb ? b.shape[0] : b.shape[1];
  if (ka != kb) fail(op, "inner dims differ: A " + shape_str(a.shape) + " transA=" + std::to_string(ta) + ", B " + shape_str(b.shape) + " transB=" + std::to_string(tb));
  if (has_in(op, 2)) {
    const Tensor& c = in(g, op, 2);
    require_same_dtype(op, a, c);
    if (bcast(op, c.shape, {m, n}) != Shape{m, n}) fail(op, "C " + shape_str(c.shape) + " does not broadcast to [" + std::to_string(m) + "," + std::to_string(n) + "]");
  }
  return {a.dtype, {m, n}};
}

TensorType global_pool_type(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0);
  require_float(op, x);
  if (x.shape.size() < 3) fail(op, "input " + shape_str(x.shape) + " needs rank >= 3");
  Shape o = x.shape;
  for (size_t i = 2; i < o.size(); ++i) o[i] = 1;
  return {x.dtype, o};
}

TensorType batchnorm_type(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0);
  require_float(op, x);
  if (x.shape.size() < 2) fail(op, "input " + shape_str(x.shape) + " needs rank >= 2");
  for (int k = 1; k < 5; ++k) {
    const Tensor& p = in(g, op, static_cast<size_t>(k));
    if (p.shape != Shape{x.shape[1]}) fail(op, "parameter '" + p.name + "' shape " + shape_str(p.shape) + "; needs [" + std::to_string(x.shape[1]) + "]");
    require_float(op, p);
  }
  return {x.dtype, x.shape};
}

TensorType layernorm_type(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0);
  require_float(op, x);
  const int64_t ax = axis_in(op, "axis", static_cast<int64_t>(x.shape.size()));
  const Shape norm(x.shape.begin() + ax, x.shape.end());
  for (size_t k = 1; k < op.inputs.size(); ++k) {
    if (!has_in(op, k)) continue;
    const Tensor& p = in(g, op, k);
    if (p.shape.size() > norm.size() || bcast(op, p.shape, norm) != norm)
      fail(op, "parameter '" + p.name + "' shape " + shape_str(p.shape) + " does not broadcast to normalized shape " + shape_str(norm));
  }
  return {x.dtype, x.shape};
}

TensorType softmax_type(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0);
  require_float(op, x);
  axis_in(op, "axis", static_cast<int64_t>(x.shape.size()));
  return {x.dtype, x.shape};
}

TensorType reduce_type(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0);
  if (x.dtype == DType::BOOL) fail(op, "bool input is not allowed");
  const auto& axes = op.attr_ints("axes");
  const bool keep = op.attr_int("keepdims") != 0;
  if (axes.empty()) fail(op, "axes is empty");
  Shape o;
  for (size_t i = 0; i < x.shape.size(); ++i) {
    const bool red = std::find(axes.begin(), axes.end(), static_cast<int64_t>(i)) != axes.end();
    if (!red) o.push_back(x.shape[i]);
    else if (keep) o.push_back(1);
  }
  for (size_t i = 0; i < axes.size(); ++i)
    if (axes[i] < 0 || axes[i] >= static_cast<int64_t>(x.shape.size()) || (i && axes[i] <= axes[i - 1]))
      fail(op, "axes " + ints_str(axes) + " must be sorted, unique and in [0, " + std::to_string(x.shape.size()) + ")");
  return {x.dtype, o};
}

TensorType reshape_type(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0);
  const auto& s = op.attr_ints("shape");
  for (int64_t d : s) if (d < 1) fail(op, "shape " + ints_str(s) + " has a dim < 1");
  if (num_elements(s) != x.elements())
    fail(op, "shape " + ints_str(s) + " has " + std::to_string(num_elements(s)) + " elements; input '" + x.name + "' " + shape_str(x.shape) + " has " + std::to_string(x.elements()));
  return {x.dtype, s};
}

TensorType transpose_type(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0);
  const auto& p = op.attr_ints("perm");
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i)
    if (sorted[i] != static_cast<int64_t>(i) || sorted.size() != x.shape.size())
      fail(op, "perm " + ints_str(p) + " is not a permutation of rank " + std::to_string(x.shape.size()));
  Shape o(p.size());
  for (size_t i = 0; i < p.size(); ++i) o[i] = x.shape[p[i]];
  return {x.dtype, o};
}

TensorType concat_type(const Graph& g, const Op& op) {
  const Tensor& x0 = in(g, op, 0);
  const int64_t ax = axis_in(op, "axis", static_cast<int64_t>(x0.shape.size()));
  Shape o = x0.shape;
  for (size_t k = 1; k < op.inputs.size(); ++k) {
    const Tensor& x = in(g, op, k);
    require_same_dtype(op, x0, x);
    bool ok = x.shape.size() == o.size();
    for (size_t i = 0; ok && i < o.size(); ++i) ok = static_cast<int64_t>(i) == ax || x.shape[i] == o[i];
    if (!ok) fail(op, "input '" + x.name + "' " + shape_str(x.shape) + " does not match " + shape_str(x0.shape) + " outside axis " + std::to_string(ax));
    o[ax] += x.shape[ax];
  }
  return {x0.dtype, o};
}

std::vector<TensorType> split_types(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0);
  const int64_t ax = axis_in(op, "axis", static_cast<int64_t>(x.shape.size()));
  const auto& sp = op.attr_ints("split");
  if (sp.size() != op.outputs.size()) fail(op, "split " + ints_str(sp) + " has " + std::to_string(sp.size()) + " sizes for " + std::to_string(op.outputs.size()) + " outputs");
  int64_t sum = 0;
  for (int64_t v : sp) {
    if (v < 1) fail(op, "split " + ints_str(sp) + " has a size < 1");
    sum += v;
  }
  if (sum != x.shape[ax]) fail(op, "split " + ints_str(sp) + " sums to " + std::to_string(sum) + ", axis " + std::to_string(ax) + " of " + shape_str(x.shape) + " has " + std::to_string(x.shape[ax]));
  std::vector<TensorType> r;
  for (int64_t v : sp) {
    Shape o = x.shape;
    o[ax] = v;
    r.push_back({x.dtype, o});
  }
  return r;
}

TensorType slice_type(const Graph& g, const Op& op) {
  // Output shape is recorded by the builder (counts cannot be recovered from starts/steps
  // alone); check consistency of the attributes with the input and existing output.
  const Tensor& x = in(g, op, 0);
  const auto& st = op.attr_ints("starts");
  const auto& sp = op.attr_ints("steps");
  if (st.size() != x.shape.size() || sp.size() != x.shape.size())
    fail(op, "starts " + ints_str(st) + " / steps " + ints_str(sp) + " need one entry per dim of " + shape_str(x.shape));
  const auto& cnt = op.attr_ints("counts");
  if (cnt.size() != x.shape.size()) fail(op, "counts " + ints_str(cnt) + " need one entry per dim");
  for (size_t i = 0; i < st.size(); ++i) {
    const int64_t last = st[i] + (cnt[i] - 1) * sp[i];
    if (sp[i] == 0 || cnt[i] < 1 || st[i] < 0 || st[i] >= x.shape[i] || last < 0 || last >= x.shape[i])
      fail(op, "dim " + std::to_string(i) + ": start " + std::to_string(st[i]) + ", step " + std::to_string(sp[i]) + ", count " + std::to_string(cnt[i]) + " leaves [0," + std::to_string(x.shape[i]) + ")");
  }
  return {x.dtype, cnt};
}

TensorType gather_type(const Graph& g, const Op& op) {
  const Tensor& x = in(g, op, 0); const Tensor& idx = in(g, op, 1);
  if (idx.dtype != DType::I32 && idx.dtype != DType::I64) fail(op, "indices '" + idx.name + "' dtype " + std::string(dtype_name(idx.dtype)) + "; allowed: i32, i64");
  const int64_t ax = axis_in(op, "axis", static_cast<int64_t>(x.shape.size()));
  Shape o(x.shape.begin(), x.shape.begin() + ax);
  o.insert(o.end(), idx.shape.begin(), idx.shape.end());
  o.insert(o.end(), x.shape.begin() + ax + 1, x.shape.end());
  return {x.dtype, o};
}
}  // namespace

std::vector<TensorType> infer_output_types(const Graph& g, const Op& op) {
  const auto& info = op_kind_info(op.kind);
  const int nin = static_cast<int>(op.inputs.size());
  if (nin < info.min_inputs || nin > info.max_inputs)
    fail(op, "has " + std::to_string(nin) + " inputs; allowed " + std::to_string(info.min_inputs) + ".." + std::to_string(info.max_inputs));
  switch (op.kind) {
    case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div: case OpKind::Max: case OpKind::Min:
      return {arith_type(g, op)};
    case OpKind::Pow:
      return {pow_type(g, op)};
    case OpKind::Equal:
      return {equal_type(g, op)};
    case OpKind::Where:
      return {where_type(g, op)};
    case OpKind::Relu: case OpKind::Neg: case OpKind::Abs:
      return {signed_unary_type(g, op)};
    case OpKind::Sigmoid: case OpKind::Tanh: case OpKind::Erf: case OpKind::Exp: case OpKind::Sqrt:
    case OpKind::Reciprocal: case OpKind::Log:
      return {float_unary_type(g, op)};
    case OpKind::Cast:
      return {cast_type(g, op)};
    case OpKind::MatMul:
      return {matmul_type(g, op)};
    case OpKind::Gemm:
      return {gemm_type(g, op)};
    case OpKind::Conv: return {window_op(g, op, true)};
    case OpKind::MaxPool: case OpKind::AveragePool: return {window_op(g, op, false)};
    case OpKind::GlobalAveragePool:
      return {global_pool_type(g, op)};
    case OpKind::BatchNormalization:
      return {batchnorm_type(g, op)};
    case OpKind::LayerNormalization:
      return {layernorm_type(g, op)};
    case OpKind::Softmax:
      return {softmax_type(g, op)};
    case OpKind::ReduceMean: case OpKind::ReduceSum: case OpKind::ReduceMax: case OpKind::ReduceMin:
    case OpKind::ReduceSumSquare: case OpKind::ReduceL1: case OpKind::ReduceL2:
      return {reduce_type(g, op)};
    case OpKind::Reshape:
      return {reshape_type(g, op)};
    case OpKind::Transpose:
      return {transpose_type(g, op)};
    case OpKind::Concat:
      return {concat_type(g, op)};
    case OpKind::Split:
      return split_types(g, op);
    case OpKind::Slice:
      return {slice_type(g, op)};
    case OpKind::Gather:
      return {gather_type(g, op)};
  }
  fail(op, "unknown op kind " + std::to_string(static_cast<int>(op.kind)));
}

}  // namespace lpu::ir
