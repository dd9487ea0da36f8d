// Reference interpreter: one straightforward implementation per IR op kind (see interpreter.h).
#include "compiler/reference/interpreter.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "compiler/ir/shape_infer.h"
#include "isa/chip_config.h"

namespace lpu::ref {

using ir::DType;
using ir::OpKind;
using ir::Shape;

// ---- Value -----------------------------------------------------------------------------------
Value Value::from_constant(const ir::Tensor& t) {
  Value v;
  v.dtype = t.dtype;
  v.shape = t.shape;
  if (ir::dtype_is_float(t.dtype)) v.f = t.const_floats();
  else v.i = t.const_ints();
  return v;
}
Value Value::floats(const Shape& s, std::vector<float> x, DType t) {
  Value v;
  v.dtype = t;
  v.shape = s;
  v.f = std::move(x);
  return v;
}
Value Value::ints(const Shape& s, std::vector<int64_t> x, DType t) {
  Value v;
  v.dtype = t;
  v.shape = s;
  v.i = std::move(x);
  return v;
}
std::vector<uint8_t> Value::to_bytes() const {
  const int b = ir::dtype_bytes(dtype);
  const int64_t n = elements();
  std::vector<uint8_t> d(static_cast<size_t>(n * b));
  for (int64_t k = 0; k < n; ++k) {
    uint8_t* p = d.data() + k * b;
    switch (dtype) {
      case DType::F32: std::memcpy(p, &f[k], 4); break;
      case DType::F16: { const uint16_t h = ir::f32_to_f16(f[k]); std::memcpy(p, &h, 2); break; }
      case DType::BOOL: *p = i[k] ? 1 : 0; break;
      case DType::I8: case DType::I32: case DType::I64: std::memcpy(p, &i[k], static_cast<size_t>(b)); break;
    }
  }
  return d;
}

namespace {

[[noreturn]] void fail(const ir::Op& op, const std::string& m) {
  throw InputError("op '" + op.name + "' (" + std::string(ir::op_kind_name(op.kind)) + "): " + m);
}

// Rounds/wraps every element to the value's dtype (f16 rounding, integer wrap, bool 0/1).
void normalize(Value& v) {
  switch (v.dtype) {
    case DType::F32: break;
    case DType::F16: for (auto& x : v.f) x = ir::round_f16(x); break;
    case DType::I8: for (auto& x : v.i) x = static_cast<int8_t>(static_cast<uint64_t>(x) & 0xFF); break;
    case DType::I32: for (auto& x : v.i) x = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(x))); break;
    case DType::I64: break;
    case DType::BOOL: for (auto& x : v.i) x = x != 0; break;
  }
}

Value make(const ir::TensorType& t) {
  Value v;
  v.dtype = t.dtype;
  v.shape = t.shape;
  if (ir::dtype_is_float(t.dtype)) v.f.assign(static_cast<size_t>(ir::num_elements(t.shape)), 0.f);
  else v.i.assign(static_cast<size_t>(ir::num_elements(t.shape)), 0);
  return v;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
  return st;
}

// For every element of `out` (row-major), the linear index of the broadcast source element of `in`.
std::vector<int64_t> bcast_map(const Shape& out, const Shape& in) {
  const size_t r = out.size();
  std::vector<int64_t> st(r, 0);
  const auto ist = strides_of(in);
  for (size_t k = 0; k < in.size(); ++k) st[r - in.size() + k] = in[k] == 1 ? 0 : ist[k];
  const int64_t n = ir::num_elements(out);
  std::vector<int64_t> m(static_cast<size_t>(n));
  std::vector<int64_t> idx(r, 0);
  int64_t src = 0;
  for (int64_t e = 0; e < n; ++e) {
    m[e] = src;
    for (size_t k = r; k-- > 0;) {
      ++idx[k];
      src += st[k];
      if (idx[k] < out[k]) break;
      src -= st[k] * idx[k];
      idx[k] = 0;
    }
  }
  return m;
}

int64_t wrap_add(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b)); }
int64_t wrap_sub(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b)); }
int64_t wrap_mul(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b)); }

void binary(const ir::Op& op, const Value& a, const Value& b, Value& o) {
  const auto ma = bcast_map(o.shape, a.shape), mb = bcast_map(o.shape, b.shape);
  const int64_t n = o.elements();
  const bool fl = ir::dtype_is_float(a.dtype);
  for (int64_t e = 0; e < n; ++e) {
    if (fl) {
      const float x = a.f[ma[e]], y = b.as_float(mb[e]);
      float r = 0;
      switch (op.kind) {
        case OpKind::Add: r = x + y; break;
        case OpKind::Sub: r = x - y; break;
        case OpKind::Mul: r = x * y; break;
        case OpKind::Div: r = x / y; break;
        case OpKind::Pow: r = std::pow(x, y); break;
        case OpKind::Max: r = std::isnan(x) || std::isnan(y) ? std::numeric_limits<float>::quiet_NaN() : std::max(x, y); break;
        case OpKind::Min: r = std::isnan(x) || std::isnan(y) ? std::numeric_limits<float>::quiet_NaN() : std::min(x, y); break;
        case OpKind::Equal: o.i[e] = x == y; continue;
        default: fail(op, "not a binary op");
      }
      o.f[e] = r;
    } else {
      const int64_t x = a.i[ma[e]], y = b.i[mb[e]];
      int64_t r = 0;
      switch (op.kind) {
        case OpKind::Add: r = wrap_add(x, y); break;
        case OpKind::Sub: r = wrap_sub(x, y); break;
        case OpKind::Mul: r = wrap_mul(x, y); break;
        case OpKind::Div:
          if (y == 0) fail(op, "integer division by zero");
          r = (x == std::numeric_limits<int64_t>::min() && y == -1) ? x : x / y;
          break;
        case OpKind::Equal: r = x == y; break;
        case OpKind::Max: r = std::max(x, y); break;
        case OpKind::Min: r = std::min(x, y); break;
        default: fail(op, "integer inputs are not supported");
      }
      o.i[e] = r;
    }
  }
}

float unary_f(OpKind k, float x) {
  switch (k) {
    case OpKind::Relu: return x > 0 ? x : 0.f;
    case OpKind::Sigmoid: return 1.f / (1.f + std::exp(-x));
    case OpKind::Tanh: return std::tanh(x);
    case OpKind::Erf: return std::erf(x);
    case OpKind::Exp: return std::exp(x);
    case OpKind::Log: return std::log(x);
    case OpKind::Sqrt: return std::sqrt(x);
    case OpKind::Reciprocal: return 1.f / x;
    case OpKind::Neg: return -x;
    case OpKind::Abs: return std::fabs(x);
    default: throw std::logic_error("unary_f: not a unary op");
  }
}

int64_t float_to_int(float x) {
  if (std::isnan(x)) return 0;
  if (x >= 9.2233720368547758e18f) return std::numeric_limits<int64_t>::max();
  if (x <= -9.2233720368547758e18f) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(x);  // truncation toward zero
}

// C[b] = A[b] x B[b] for row-major [m,k] x [k,n] blocks, fp32 accumulation via Eigen.
void gemm_block(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n) {
  using RM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RM> A(a, m, k), B(b, k, n);
  Eigen::Map<RM> C(c, m, n);
  C.noalias() = A * B;
}

void matmul(const ir::Op& op, const Value& a, const Value& b, Value& o) {
  Shape sa = a.shape, sb = b.shape;
  if (sa.size() == 1) sa.insert(sa.begin(), 1);
  if (sb.size() == 1) sb.push_back(1);
  const int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
  const Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  const Shape batch = ir::broadcast_shapes(ba, bb);
  const auto ma = bcast_map(batch, ba), mb = bcast_map(batch, bb);
  const int64_t nb = ir::num_elements(batch);
  if (ir::dtype_is_float(a.dtype)) {
    for (int64_t t = 0; t < nb; ++t)
      gemm_block(a.f.data() + ma[t] * m * k, b.f.data() + mb[t] * k * n, o.f.data() + t * m * n, m, k, n);
  } else {
    for (int64_t t = 0; t < nb; ++t)
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c < n; ++c) {
          int64_t s = 0;
          for (int64_t q = 0; q < k; ++q)
            s = wrap_add(s, wrap_mul(a.i[ma[t] * m * k + r * k + q], b.i[mb[t] * k * n + q * n + c]));
          o.i[t * m * n + r * n + c] = s;
        }
  }
}

void gemm(const ir::Op& op, const Value& a, const Value& b, const Value* c, Value& o) {
  const bool ta = op.attr_int("transA") != 0, tb = op.attr_int("transB") != 0;
  const float alpha = op.attr_float("alpha"), beta = op.attr_float("beta");
  const int64_t m = o.shape[0], n = o.shape[1];
  using RM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RM> A(a.f.data(), a.shape[0], a.shape[1]), B(b.f.data(), b.shape[0], b.shape[1]);
  RM opA = ta ? RM(A.transpose()) : RM(A);
  RM opB = tb ? RM(B.transpose()) : RM(B);
  Eigen::Map<RM> Y(o.f.data(), m, n);
  Y.noalias() = opA * opB;
  if (alpha != 1.f) Y *= alpha;
  if (c) {
    const auto mc = bcast_map(o.shape, c->shape);
    for (int64_t e = 0; e < m * n; ++e) o.f[e] += beta * c->f[mc[e]];
  }
}

// Conv / pooling over 1 or 2 spatial dims; rank-3 inputs are treated as H = 1.
struct Win {
  int64_t N, C, H, W, OH, OW, kh, kw, sh, sw, dh, dw, ph, pw, phe, pwe;  // ph/pw begin, phe/pwe end pads
};
Win window(const ir::Op& op, const Shape& x, const Shape& y) {
  const bool one = x.size() == 3;
  const auto& k = op.attr_ints("kernel_shape");
  const auto& s = op.attr_ints("strides");
  const auto& p = op.attr_ints("pads");
  const std::vector<int64_t> ones(k.size(), 1);
  const auto& d = op.has("dilations") ? op.attr_ints("dilations") : ones;
  Win w{};
  w.N = x[0];
  w.C = x[1];
  if (one) {
    w.H = 1; w.W = x[2]; w.OH = 1; w.OW = y[2];
    w.kh = 1; w.kw = k[0]; w.sh = 1; w.sw = s[0]; w.dh = 1; w.dw = d[0]; w.ph = 0; w.pw = p[0]; w.phe = 0; w.pwe = p[1];
  } else {
    w.H = x[2]; w.W = x[3]; w.OH = y[2]; w.OW = y[3];
    w.kh = k[0]; w.kw = k[1]; w.sh = s[0]; w.sw = s[1]; w.dh = d[0]; w.dw = d[1]; w.ph = p[0]; w.pw = p[1]; w.phe = p[2]; w.pwe = p[3];
  }
  return w;
}

// The first and one past the last output index o in [0, out) whose input index o * stride + off
// lies in [0, in) (stride >= 1).
std::pair<int64_t, int64_t> valid_outputs(int64_t off, int64_t stride, int64_t in, int64_t out) {
  auto ceil_div = [](int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); };
  auto floor_div = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
  const int64_t lo = std::max<int64_t>(0, ceil_div(-off, stride));
  const int64_t hi = std::min<int64_t>(out, floor_div(in - 1 - off, stride) + 1);
  return {lo, std::max(lo, hi)};
}

// Every output sums bias + x * w over (c, i, j) in ascending order, skipping taps in the padding;
// the loops run tap-major over a plane of accumulators (contiguous rows of x), which keeps each
// output's order of additions, so the values are those of the plain per-output loop.
void conv(const ir::Op& op, const Value& x, const Value& wt, const Value* bias, Value& o) {
  const Win w = window(op, x.shape, o.shape);
  const int64_t group = op.attr_int("group");
  const int64_t M = wt.shape[0], Cg = w.C / group, Mg = M / group;
  std::vector<float> acc(static_cast<size_t>(w.OH * w.OW));
  for (int64_t n = 0; n < w.N; ++n)
    for (int64_t m = 0; m < M; ++m) {
      const int64_t g = m / Mg;
      std::fill(acc.begin(), acc.end(), bias ? bias->f[m] : 0.f);
      for (int64_t c = 0; c < Cg; ++c) {
        const float* xc = &x.f[static_cast<size_t>((n * w.C + g * Cg + c) * w.H * w.W)];
        for (int64_t i = 0; i < w.kh; ++i) {
          const auto [oh0, oh1] = valid_outputs(i * w.dh - w.ph, w.sh, w.H, w.OH);
          for (int64_t j = 0; j < w.kw; ++j) {
            const float wv = wt.f[static_cast<size_t>(((m * Cg + c) * w.kh + i) * w.kw + j)];
            const auto [ow0, ow1] = valid_outputs(j * w.dw - w.pw, w.sw, w.W, w.OW);
            for (int64_t oh = oh0; oh < oh1; ++oh) {
              // x's index of output ow's tap: base + ow * sw (>= 0 for ow in [ow0, ow1)).
              const int64_t base = (oh * w.sh - w.ph + i * w.dh) * w.W + (j * w.dw - w.pw);
              float* ar = &acc[static_cast<size_t>(oh * w.OW)];
              for (int64_t ow = ow0; ow < ow1; ++ow) ar[ow] += xc[base + ow * w.sw] * wv;
            }
          }
        }
      }
      std::copy(acc.begin(), acc.end(), o.f.begin() + (n * M + m) * w.OH * w.OW);
    }
}

void pool(const ir::Op& op, const Value& x, Value& o) {
  const Win w = window(op, x.shape, o.shape);
  const bool is_max = op.kind == OpKind::MaxPool;
  const bool include_pad = !is_max && op.attr_int("count_include_pad") != 0;
  for (int64_t nc = 0; nc < w.N * w.C; ++nc)
    for (int64_t oh = 0; oh < w.OH; ++oh)
      for (int64_t ow = 0; ow < w.OW; ++ow) {
        float acc = is_max ? -std::numeric_limits<float>::infinity() : 0.f;
        int64_t cnt = 0;
        for (int64_t i = 0; i < w.kh; ++i) {
          const int64_t ih = oh * w.sh - w.ph + i * w.dh;
          for (int64_t j = 0; j < w.kw; ++j) {
            const int64_t iw = ow * w.sw - w.pw + j * w.dw;
            const bool inside = ih >= 0 && ih < w.H && iw >= 0 && iw < w.W;
            if (!inside) {
              // count_include_pad counts the explicit padding, not the ceil_mode overhang.
              const bool in_pad = ih >= -w.ph && ih < w.H + w.phe && iw >= -w.pw && iw < w.W + w.pwe;
              if (include_pad && in_pad) ++cnt;
              continue;
            }
            const float v = x.f[(nc * w.H + ih) * w.W + iw];
            if (is_max) acc = std::max(acc, v);
            else { acc += v; ++cnt; }
          }
        }
        o.f[(nc * w.OH + oh) * w.OW + ow] = is_max ? acc : (cnt ? acc / static_cast<float>(cnt) : 0.f);
      }
}

// Visits the input as [outer, len, inner] around `axis` (or around a trailing block for LayerNorm).
struct Split3 { int64_t outer, len, inner; };
Split3 split3(const Shape& s, size_t a0, size_t a1) {  // dims [a0, a1) form `len`
  Split3 r{1, 1, 1};
  for (size_t k = 0; k < s.size(); ++k) (k < a0 ? r.outer : k < a1 ? r.len : r.inner) *= s[k];
  return r;
}

// The unary ops: floats by unary_f, integers Neg / Abs wrapping, Relu.
void unary(const ir::Op& op, const Value& xv, Value& o) {
  if (ir::dtype_is_float(o.dtype)) {
    for (int64_t e = 0; e < o.elements(); ++e) o.f[e] = unary_f(op.kind, xv.f[e]);
  } else {
    for (int64_t e = 0; e < o.elements(); ++e) {
      const int64_t x = xv.i[e];
      o.i[e] = op.kind == OpKind::Neg ? wrap_sub(0, x) : op.kind == OpKind::Abs ? (x < 0 ? wrap_sub(0, x) : x)
                                                                              : std::max<int64_t>(x, 0);
    }
  }
}

// Where(cond, x, y), broadcast to o.
void where(const Value& cond, const Value& x, const Value& y, Value& o) {
  const auto mc = bcast_map(o.shape, cond.shape), mx = bcast_map(o.shape, x.shape), my = bcast_map(o.shape, y.shape);
  for (int64_t e = 0; e < o.elements(); ++e) {
    const bool c = cond.i[mc[e]] != 0;
    if (ir::dtype_is_float(o.dtype)) o.f[e] = c ? x.f[mx[e]] : y.f[my[e]];
    else o.i[e] = c ? x.i[mx[e]] : y.i[my[e]];
  }
}

// Cast: float to int rounds (float_to_int), anything to bool tests != 0.
void cast(const Value& x, Value& o) {
  for (int64_t e = 0; e < o.elements(); ++e) {
    if (ir::dtype_is_float(o.dtype)) o.f[e] = x.as_float(e);
    else if (o.dtype == DType::BOOL) o.i[e] = ir::dtype_is_float(x.dtype) ? x.f[e] != 0.f : x.i[e] != 0;
    else o.i[e] = ir::dtype_is_float(x.dtype) ? float_to_int(x.f[e]) : x.i[e];
  }
}

// The mean of each (n, c) plane, summed in f32.
void global_avg_pool(const Value& x, Value& o) {
  const int64_t nc = x.shape[0] * x.shape[1], hw = x.elements() / nc;
  for (int64_t k = 0; k < nc; ++k) {
    float acc = 0;
    for (int64_t e = 0; e < hw; ++e) acc += x.f[k * hw + e];
    o.f[k] = acc / static_cast<float>(hw);
  }
}

// Inference BatchNormalization over channel axis 1.
void batch_norm(const ir::Op& op, const Value& x, const Value& scale, const Value& bias, const Value& mean,
                const Value& var, Value& o) {
  const float eps = op.attr_float("epsilon");
  const Split3 s = split3(x.shape, 1, 2);
  for (int64_t a = 0; a < s.outer; ++a)
    for (int64_t c = 0; c < s.len; ++c) {
      const float sc = scale.f[c] / std::sqrt(var.f[c] + eps);
      for (int64_t b = 0; b < s.inner; ++b) {
        const int64_t e = (a * s.len + c) * s.inner + b;
        o.f[e] = (x.f[e] - mean.f[c]) * sc + bias.f[c];
      }
    }
}

// LayerNormalization over axes [axis, rank): mean and variance in f32, B optional.
void layer_norm(const ir::Op& op, const Value& xv, const Value& scale, const Value* B, Value& o) {
  const float eps = op.attr_float("epsilon");
  const size_t ax = static_cast<size_t>(op.attr_int("axis"));
  const Split3 s = split3(xv.shape, ax, xv.shape.size());
  const Shape norm(xv.shape.begin() + static_cast<int64_t>(ax), xv.shape.end());
  const auto msc = bcast_map(norm, scale.shape);
  const auto mb = B ? bcast_map(norm, B->shape) : std::vector<int64_t>();
  for (int64_t a = 0; a < s.outer; ++a) {
    const float* x = xv.f.data() + a * s.len;
    float mean = 0, var = 0;
    for (int64_t k = 0; k < s.len; ++k) mean += x[k];
    mean /= static_cast<float>(s.len);
    for (int64_t k = 0; k < s.len; ++k) var += (x[k] - mean) * (x[k] - mean);
    var /= static_cast<float>(s.len);
    const float inv = 1.f / std::sqrt(var + eps);
    for (int64_t k = 0; k < s.len; ++k)
      o.f[a * s.len + k] = (x[k] - mean) * inv * scale.f[msc[k]] + (B ? B->f[mb[k]] : 0.f);
  }
}

// Softmax along `axis`, the max subtracted first.
void softmax(const ir::Op& op, const Value& x, Value& o) {
  const size_t ax = static_cast<size_t>(op.attr_int("axis"));
  const Split3 s = split3(x.shape, ax, ax + 1);
  for (int64_t a = 0; a < s.outer; ++a)
    for (int64_t b = 0; b < s.inner; ++b) {
      auto at = [&](int64_t k) { return (a * s.len + k) * s.inner + b; };
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < s.len; ++k) mx = std::max(mx, x.f[at(k)]);
      float sum = 0;
      for (int64_t k = 0; k < s.len; ++k) sum += (o.f[at(k)] = std::exp(x.f[at(k)] - mx));
      for (int64_t k = 0; k < s.len; ++k) o.f[at(k)] /= sum;
    }
}

// ReduceSum and ReduceMean (f32 sums; integers: wrapping int64, the mean truncated).
void reduce_sum(const ir::Op& op, const Value& x, Value& o) {
  const auto& axes = op.attr_ints("axes");
  Shape kept = x.shape;  // keepdims form of the output
  int64_t cnt = 1;
  for (int64_t a : axes) { cnt *= kept[a]; kept[a] = 1; }
  const auto m = bcast_map(x.shape, kept);  // each input element -> its output slot
  const bool fl = ir::dtype_is_float(x.dtype);
  for (int64_t e = 0; e < x.elements(); ++e) {
    if (fl) o.f[m[e]] += x.f[e];
    else o.i[m[e]] = wrap_add(o.i[m[e]], x.i[e]);
  }
  if (op.kind == OpKind::ReduceMean) {
    if (fl) for (auto& v : o.f) v /= static_cast<float>(cnt);
    else for (auto& v : o.i) v /= cnt;
  }
}

// ReduceMax, ReduceMin, ReduceSumSquare, ReduceL1, ReduceL2. Max/Min: the first element seeds
// each slot (NaN propagates); the sums accumulate in f32 (integers: wrapping int64); L2 = sqrt of
// the sum of squares.
void reduce_other(const ir::Op& op, const Value& x, Value& o) {
  const auto& axes = op.attr_ints("axes");
  Shape kept = x.shape;
  for (int64_t a : axes) kept[a] = 1;
  const auto m = bcast_map(x.shape, kept);
  const bool fl = ir::dtype_is_float(x.dtype);
  const bool ext = op.kind == OpKind::ReduceMax || op.kind == OpKind::ReduceMin;
  std::vector<char> seen(static_cast<size_t>(o.elements()), 0);
  for (int64_t e = 0; e < x.elements(); ++e) {
    const int64_t s = m[e];
    if (fl) {
      const float v = x.f[e];
      float& acc = o.f[s];
      if (ext) {
        if (!seen[s] || std::isnan(v)) acc = v;
        else if (!std::isnan(acc)) acc = op.kind == OpKind::ReduceMax ? std::max(acc, v) : std::min(acc, v);
      } else {
        acc += op.kind == OpKind::ReduceL1 ? std::fabs(v) : v * v;
      }
    } else {
      const int64_t v = x.i[e];
      int64_t& acc = o.i[s];
      if (ext) acc = !seen[s] ? v : op.kind == OpKind::ReduceMax ? std::max(acc, v) : std::min(acc, v);
      else acc = wrap_add(acc, op.kind == OpKind::ReduceL1 ? (v < 0 ? wrap_sub(0, v) : v) : wrap_mul(v, v));
    }
    seen[s] = 1;
  }
  if (op.kind == OpKind::ReduceL2) {
    if (fl) for (auto& v : o.f) v = std::sqrt(v);
    else for (auto& v : o.i) v = static_cast<int64_t>(std::sqrt(static_cast<double>(v)));
  }
}

// Transpose by `perm`.
void transpose(const ir::Op& op, const Value& x, Value& o) {
  const auto& p = op.attr_ints("perm");
  const auto ist = strides_of(x.shape);
  std::vector<int64_t> st(p.size());
  for (size_t k = 0; k < p.size(); ++k) st[k] = ist[p[k]];
  std::vector<int64_t> idx(p.size(), 0);
  int64_t src = 0;
  const bool fl = ir::dtype_is_float(o.dtype);
  for (int64_t e = 0; e < o.elements(); ++e) {
    if (fl) o.f[e] = x.f[src]; else o.i[e] = x.i[src];
    for (size_t k = p.size(); k-- > 0;) {
      ++idx[k]; src += st[k];
      if (idx[k] < o.shape[k]) break;
      src -= st[k] * idx[k]; idx[k] = 0;
    }
  }
}

// Calls f(whole index, piece index) for every element of a piece `s` (split3 over the axis) that
// sits at axis offset `off` of a whole tensor `w` (Concat's inputs in its output, Split's outputs
// in its input).
template <class F>
void for_piece(const Split3& s, const Split3& w, int64_t off, F f) {
  for (int64_t a = 0; a < s.outer; ++a)
    for (int64_t r = 0; r < s.len * s.inner; ++r) f((a * w.len + off) * w.inner + r, a * s.len * s.inner + r);
}

// Concat along `axis` of every input in order.
void concat(const ir::Op& op, const std::vector<const Value*>& ins, Value& o) {
  const size_t ax = static_cast<size_t>(op.attr_int("axis"));
  const Split3 so = split3(o.shape, ax, ax + 1);
  int64_t off = 0;
  const bool fl = ir::dtype_is_float(o.dtype);
  for (size_t k = 0; k < ins.size(); ++k) {
    const Value& x = *ins.at(k);
    const Split3 s = split3(x.shape, ax, ax + 1);
    for_piece(s, so, off, [&](int64_t wi, int64_t pi) {
      if (fl) o.f[wi] = x.f[pi]; else o.i[wi] = x.i[pi];
    });
    off += s.len;
  }
}

// Split along `axis` into outs (their shapes give the sizes).
void split(const ir::Op& op, const Value& x, std::vector<Value>& outs) {
  const size_t ax = static_cast<size_t>(op.attr_int("axis"));
  const Split3 si = split3(x.shape, ax, ax + 1);
  int64_t off = 0;
  const bool fl = ir::dtype_is_float(x.dtype);
  for (auto& out : outs) {
    const Split3 s = split3(out.shape, ax, ax + 1);
    for_piece(s, si, off, [&](int64_t wi, int64_t pi) {
      if (fl) out.f[pi] = x.f[wi]; else out.i[pi] = x.i[wi];
    });
    off += s.len;
  }
}

// Slice by `starts` and `steps` (o's shape gives the counts).
void slice(const ir::Op& op, const Value& x, Value& o) {
  const auto& st = op.attr_ints("starts");
  const auto& sp = op.attr_ints("steps");
  const auto ist = strides_of(x.shape);
  const size_t r = st.size();
  std::vector<int64_t> idx(r, 0);
  int64_t src = 0;
  for (size_t k = 0; k < r; ++k) src += st[k] * ist[k];
  const bool fl = ir::dtype_is_float(o.dtype);
  for (int64_t e = 0; e < o.elements(); ++e) {
    if (fl) o.f[e] = x.f[src]; else o.i[e] = x.i[src];
    for (size_t k = r; k-- > 0;) {
      ++idx[k]; src += sp[k] * ist[k];
      if (idx[k] < o.shape[k]) break;
      src -= sp[k] * ist[k] * idx[k]; idx[k] = 0;
    }
  }
}

// Gather along `axis`; an index outside [-len, len) is an InputError naming the op.
void gather(const ir::Op& op, const Value& x, const Value& idx, Value& o) {
  const size_t ax = static_cast<size_t>(op.attr_int("axis"));
  const Split3 s = split3(x.shape, ax, ax + 1);
  const bool fl = ir::dtype_is_float(o.dtype);
  const int64_t ni = idx.elements();
  for (int64_t q = 0; q < ni; ++q) {
    int64_t j = idx.i[q];
    if (j < -s.len || j >= s.len)
      fail(op, "index " + std::to_string(j) + " out of range [" + std::to_string(-s.len) + ", " + std::to_string(s.len) + ")");
    if (j < 0) j += s.len;
    for (int64_t a = 0; a < s.outer; ++a)
      for (int64_t b = 0; b < s.inner; ++b) {
        const int64_t dst = (a * ni + q) * s.inner + b, srci = (a * s.len + j) * s.inner + b;
        if (fl) o.f[dst] = x.f[srci]; else o.i[dst] = x.i[srci];
      }
  }
}

}  // namespace

std::vector<int64_t> broadcast_index_map(const Shape& out, const Shape& in) { return bcast_map(out, in); }

std::vector<Value> eval_op(const ir::Graph& g, const ir::Op& op, const std::vector<const Value*>& ins) {
  const auto types = ir::infer_output_types(g, op);
  if (ins.size() != op.inputs.size()) fail(op, "got " + std::to_string(ins.size()) + " input values for " + std::to_string(op.inputs.size()) + " inputs");
  for (size_t k = 0; k < ins.size(); ++k) {
    if (op.inputs[k] == ir::kNoTensor) continue;
    const ir::Tensor& t = g.tensor(op.inputs[k]);
    if (!ins[k] || ins[k]->shape != t.shape || ins[k]->dtype != t.dtype)
      fail(op, "input " + std::to_string(k) + " value does not match tensor '" + t.name + "' " + ir::shape_str(t.shape));
  }
  return eval_op_typed(op, types, ins);
}

std::vector<Value> eval_op_typed(const ir::Op& op, const std::vector<ir::TensorType>& types, const std::vector<const Value*>& ins) {
  const auto& info = ir::op_kind_info(op.kind);
  if (static_cast<int>(ins.size()) < info.min_inputs) fail(op, "too few input values");
  for (int k = 0; k < info.min_inputs; ++k)
    if (!ins[k]) fail(op, "required input " + std::to_string(k) + " has no value");
  if (types.empty()) fail(op, "no output types");
  std::vector<Value> outs;
  for (const auto& t : types) outs.push_back(make(t));
  Value& o = outs[0];
  auto X = [&](size_t k) -> const Value& { return *ins.at(k); };
  auto opt = [&](size_t k) -> const Value* { return k < ins.size() ? ins[k] : nullptr; };
  switch (op.kind) {
    case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div: case OpKind::Pow: case OpKind::Equal:
    case OpKind::Max: case OpKind::Min:
      binary(op, X(0), X(1), o);
      break;
    case OpKind::Where:
      where(X(0), X(1), X(2), o);
      break;
    case OpKind::Relu: case OpKind::Neg: case OpKind::Sigmoid: case OpKind::Tanh: case OpKind::Erf:
    case OpKind::Exp: case OpKind::Sqrt: case OpKind::Reciprocal: case OpKind::Abs: case OpKind::Log:
      unary(op, X(0), o);
      break;
    case OpKind::Cast:
      cast(X(0), o);
      break;
    case OpKind::MatMul: matmul(op, X(0), X(1), o); break;
    case OpKind::Gemm: gemm(op, X(0), X(1), opt(2), o); break;
    case OpKind::Conv: conv(op, X(0), X(1), opt(2), o); break;
    case OpKind::MaxPool: case OpKind::AveragePool: pool(op, X(0), o); break;
    case OpKind::GlobalAveragePool:
      global_avg_pool(X(0), o);
      break;
    case OpKind::BatchNormalization:
      batch_norm(op, X(0), X(1), X(2), X(3), X(4), o);
      break;
    case OpKind::LayerNormalization:
      layer_norm(op, X(0), X(1), opt(2), o);
      break;
    case OpKind::Softmax:
      softmax(op, X(0), o);
      break;
    case OpKind::ReduceMean: case OpKind::ReduceSum:
      reduce_sum(op, X(0), o);
      break;
    case OpKind::ReduceMax: case OpKind::ReduceMin: case OpKind::ReduceSumSquare: case OpKind::ReduceL1:
    case OpKind::ReduceL2:
      reduce_other(op, X(0), o);
      break;
    case OpKind::Reshape: o.f = X(0).f; o.i = X(0).i; break;
    case OpKind::Transpose:
      transpose(op, X(0), o);
      break;
    case OpKind::Concat:
      concat(op, ins, o);
      break;
    case OpKind::Split:
      split(op, X(0), outs);
      break;
    case OpKind::Slice:
      slice(op, X(0), o);
      break;
    case OpKind::Gather:
      gather(op, X(0), X(1), o);
      break;
  }
  for (auto& v : outs) normalize(v);
  return outs;
}

void check_run_inputs(const ir::Graph& g, const std::vector<Value>& inputs) {
  const auto& gin = g.inputs();
  if (inputs.size() != gin.size())
    throw InputError("reference run of graph '" + g.name + "': got " + std::to_string(inputs.size()) + " inputs, the graph has " + std::to_string(gin.size()));
  for (size_t k = 0; k < gin.size(); ++k) {
    const ir::Tensor& t = g.tensor(gin[k]);
    if (inputs[k].shape != t.shape || inputs[k].dtype != t.dtype)
      throw InputError("reference run of graph '" + g.name + "': input '" + t.name + "' needs " + std::string(ir::dtype_name(t.dtype)) +
                       ir::shape_str(t.shape) + ", got " + std::string(ir::dtype_name(inputs[k].dtype)) + ir::shape_str(inputs[k].shape));
    const size_t have = ir::dtype_is_float(t.dtype) ? inputs[k].f.size() : inputs[k].i.size();
    if (static_cast<int64_t>(have) != t.elements())
      throw InputError("reference run of graph '" + g.name + "': input '" + t.name + "' holds " + std::to_string(have) +
                       " values, its shape needs " + std::to_string(t.elements()));
  }
}

std::vector<Value> run_all(const ir::Graph& g, const std::vector<Value>& inputs) {
  check_run_inputs(g, inputs);
  const auto& gin = g.inputs();
  std::vector<Value> vals(g.tensors().size());
  std::vector<char> have(g.tensors().size(), 0);
  for (size_t k = 0; k < gin.size(); ++k) {
    vals[gin[k]] = inputs[k];
    normalize(vals[gin[k]]);
    have[gin[k]] = 1;
  }
  for (size_t k = 0; k < g.tensors().size(); ++k)
    if (g.tensors()[k].is_const) { vals[k] = Value::from_constant(g.tensors()[k]); have[k] = 1; }
  std::vector<const Value*> ins;
  for (const ir::Op& op : g.ops()) {
    ins.clear();
    for (ir::TensorId t : op.inputs) {
      if (t != ir::kNoTensor && !have[t]) throw std::logic_error("reference: '" + g.tensor(t).name + "' used before it is produced");
      ins.push_back(t == ir::kNoTensor ? nullptr : &vals[t]);
    }
    auto outs = eval_op(g, op, ins);
    for (size_t k = 0; k < outs.size(); ++k) {
      vals[op.outputs[k]] = std::move(outs[k]);
      have[op.outputs[k]] = 1;
    }
  }
  return vals;
}

std::vector<Value> run(const ir::Graph& g, const std::vector<Value>& inputs) {
  const std::vector<Value> vals = run_all(g, inputs);
  std::vector<Value> r;
  for (ir::TensorId t : g.outputs()) r.push_back(vals[t]);  // a tensor may be listed twice
  return r;
}

}  // namespace lpu::ref
