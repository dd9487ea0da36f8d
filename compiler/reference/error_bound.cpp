// Running first-order fp32 error bounds alongside the reference interpreter (see error_bound.h and
// docs/onnx-support.md, which states the per-op rules implemented here).
#include "compiler/reference/error_bound.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace lpu::ref {

using ir::DType;
using ir::OpKind;
using ir::Shape;

namespace {

constexpr double kU = kUnitF32;
constexpr double kU16 = kUnitF16;
constexpr double kElem = 8.0;  // elementary functions (exp, tanh, erf, pow): <= 8 u |r|
const float kInf = std::numeric_limits<float>::infinity();

double gamma(double n) { return n * kU / (1.0 - n * kU); }  // gamma_n of Higham: n roundings
double rnd(double r) { return std::isfinite(r) ? kU * std::fabs(r) : 0.0; }

Value zeros(const Shape& s) {
  return Value::floats(s, std::vector<float>(static_cast<size_t>(ir::num_elements(s)), 0.f));
}
Value absval(const Value& v) {
  Value r = zeros(v.shape);
  for (int64_t k = 0; k < v.elements(); ++k) r.f[k] = std::fabs(v.as_float(k));
  return r;
}
bool all_zero(const Value& e) {
  return std::all_of(e.f.begin(), e.f.end(), [](float x) { return x == 0.f; });
}
// Runs op on substituted (f32) values; `types` are the output shapes as f32.
std::vector<Value> on(const ir::Op& op, const std::vector<Value>& outs,
                      const std::vector<const Value*>& ins) {
  std::vector<ir::TensorType> t;
  for (const auto& o : outs) t.push_back({DType::F32, o.shape});
  return eval_op_typed(op, t, ins);
}
void axpy(Value& y, double a, const Value& x) {
  for (int64_t k = 0; k < y.elements(); ++k) y.f[k] = static_cast<float>(y.f[k] + a * x.f[k]);
}

// The per-op rules of bound_op (docs/onnx-support.md). Each takes the op, its input values v and
// bounds e (nullptr for omitted inputs) and its float outputs, and returns the bound of output 0
// before the f16 output rounding, which bound_op adds.
using Ins = std::vector<const Value*>;

// Add, Sub, Mul, Div, Pow (broadcasting).
Value bound_binary(const ir::Op& op, const Ins& v, const Ins& e, const Value& r) {
  Value o = zeros(r.shape);
  const auto ma = broadcast_index_map(r.shape, v[0]->shape), mb = broadcast_index_map(r.shape, v[1]->shape);
  for (int64_t k = 0; k < r.elements(); ++k) {
    const double a = v[0]->as_float(ma[k]), b = v[1]->as_float(mb[k]), ea = e[0]->f[ma[k]],
                 eb = e[1]->f[mb[k]];
    const double y = r.f[k];
    double d;
    switch (op.kind) {
      case OpKind::Add:
      case OpKind::Sub:
        d = ea + eb + rnd(y);
        break;
      case OpKind::Mul:
        d = std::fabs(a) * eb + std::fabs(b) * ea + ea * eb + rnd(y);
        break;
      case OpKind::Div:
        d = std::fabs(b) > eb ? (ea + std::fabs(y) * eb) / (std::fabs(b) - eb) + rnd(y) : kInf;
        break;
      default:  // Pow
        d = std::fabs(b * std::pow(a, b - 1)) * ea +
            (eb > 0 ? std::fabs(y * std::log(std::fabs(a))) * eb : 0.0) + kElem * rnd(y);
        if (ea == 0 && eb == 0) d = kElem * rnd(y);
    }
    o.f[k] = static_cast<float>(std::isnan(d) ? kInf : d);
  }
  return o;
}

// Where picks the chosen branch's bound; Max / Min (exact ops): |max(a + da, b + db) - max(a, b)|
// <= max(|da|, |db|).
Value bound_select(const ir::Op& op, const Ins& v, const Ins& e, const Value& r) {
  Value o = zeros(r.shape);
  if (op.kind == OpKind::Where) {
    const auto mc = broadcast_index_map(r.shape, v[0]->shape), mx = broadcast_index_map(r.shape, v[1]->shape),
               my = broadcast_index_map(r.shape, v[2]->shape);
    for (int64_t k = 0; k < r.elements(); ++k) o.f[k] = v[0]->i[mc[k]] ? e[1]->f[mx[k]] : e[2]->f[my[k]];
    return o;
  }
  const auto ma = broadcast_index_map(r.shape, v[0]->shape), mb = broadcast_index_map(r.shape, v[1]->shape);
  for (int64_t k = 0; k < r.elements(); ++k) o.f[k] = std::max(e[0]->f[ma[k]], e[1]->f[mb[k]]);
  return o;
}

// ReduceSumSquare, ReduceL1, ReduceL2. S = sum f(x) (f = x^2 or |x|): gamma(len + 1) sum f(|x|) for
// the f32 products and additions, plus the propagated sum(2|x| e + e^2) (squares) or sum(e) (|x|).
// L2 = sqrt(S): |sqrt(S + d) - sqrt(S)| <= min(sqrt(d), d / (2 sqrt(S))), plus one f32 rounding.
Value bound_reduce_norm(const ir::Op& op, const Ins& v, const Ins& e, const std::vector<Value>& outs) {
  const Value& r = outs[0];
  Value o = zeros(r.shape);
  ir::Op sum = op;
  sum.kind = OpKind::ReduceSum;
  int64_t len = 1;
  for (int64_t a : op.attr_ints("axes")) len *= v[0]->shape[a];
  const bool l1 = op.kind == OpKind::ReduceL1;
  Value fx = zeros(v[0]->shape), prop = zeros(v[0]->shape);
  for (int64_t k = 0; k < v[0]->elements(); ++k) {
    const double x = std::fabs(v[0]->f[k]), ex = e[0]->f[k];
    fx.f[k] = static_cast<float>(l1 ? x : x * x);
    prop.f[k] = static_cast<float>(l1 ? ex : 2 * x * ex + ex * ex);
  }
  const Value S = on(sum, outs, {&fx})[0], P = on(sum, outs, {&prop})[0];
  for (int64_t k = 0; k < r.elements(); ++k) {
    const double d = gamma(static_cast<double>(len + 1)) * S.f[k] + P.f[k];
    if (op.kind != OpKind::ReduceL2) {
      o.f[k] = static_cast<float>(d);
    } else {
      const double s = S.f[k];
      const double ds = s > 0 ? std::min(std::sqrt(d), d / (2 * std::sqrt(s))) : std::sqrt(d);
      o.f[k] = static_cast<float>(ds + 2 * rnd(r.f[k]));
    }
  }
  return o;
}

// Sigmoid, Tanh, Erf, Exp, Log, Sqrt, Reciprocal: the function's largest slope over [x - e, x + e]
// times e, plus its own rounding (kElem u, or 2 u for sqrt and reciprocal).
Value bound_unary(const ir::Op& op, const Ins& v, const Ins& e, const Value& r) {
  Value o = zeros(r.shape);
  for (int64_t k = 0; k < r.elements(); ++k) {
    const double x = v[0]->f[k], y = r.f[k], ex = e[0]->f[k];
    double slope = 0, elem = kElem;
    switch (op.kind) {
      case OpKind::Sigmoid:
        slope = 0.25;
        break;  // max of s(1-s)
      case OpKind::Tanh:
        slope = 1.0;
        break;
      case OpKind::Erf:
        slope = 2.0 / std::sqrt(M_PI) *
                std::exp(-std::max(0.0, std::fabs(x) - ex) * std::max(0.0, std::fabs(x) - ex));
        break;
      case OpKind::Exp:
        slope = std::exp(x + ex);
        break;
      case OpKind::Log:  // ln's slope 1/x is largest at the low end; unbounded if it may reach 0
        slope = ex > 0 ? (x - ex > 0 ? 1.0 / (x - ex) : kInf) : 0;
        break;
      case OpKind::Sqrt:
        slope = ex > 0 ? (x - ex > 0 ? 0.5 / std::sqrt(x - ex) : kInf) : 0;
        elem = 2;
        break;
      default:  // Reciprocal
        slope = ex > 0 ? (std::fabs(x) > ex ? 1.0 / ((std::fabs(x) - ex) * (std::fabs(x) - ex)) : kInf) : 0;
        elem = 2;
        break;
    }
    o.f[k] = static_cast<float>((ex > 0 ? slope * ex : 0.0) + elem * rnd(y));
  }
  return o;
}

// MatMul, Gemm, Conv. Bilinear: op(|A|,eB) + op(eA,|B|) + op(eA,eB) + gamma(len) op(|A|,|B|,|C|)
// [+ |beta| eC].
Value bound_bilinear(const ir::Op& op, const Ins& v, const Ins& e, const std::vector<Value>& outs) {
  const Value& r = outs[0];
  const int64_t n = r.elements();
  ir::Op lin = op;
  int64_t len = 0;
  if (op.kind == OpKind::MatMul) len = v[0]->shape.back();
  if (op.kind == OpKind::Gemm) {
    lin.attrs["alpha"] = std::fabs(op.attr_float("alpha"));
    lin.attrs["beta"] = std::fabs(op.attr_float("beta"));
    len = (op.attr_int("transA") ? v[0]->shape[0] : v[0]->shape[1]) + 2;  // + alpha scaling, + C
  }
  if (op.kind == OpKind::Conv) len = ir::num_elements(Shape(v[1]->shape.begin() + 1, v[1]->shape.end())) + 1;
  const Value aA = absval(*v[0]), aB = absval(*v[1]);
  Ins absin = {&aA, &aB};
  Value aC;
  const bool hasC = v.size() > 2 && v[2];
  if (hasC) {
    aC = absval(*v[2]);
    absin.push_back(&aC);
  }
  ir::Op bil = lin;  // without C / bias
  bil.inputs.resize(2);
  Value o = on(lin, outs, absin)[0];
  for (auto& x : o.f) x = static_cast<float>(gamma(static_cast<double>(len)) * x);
  if (!all_zero(*e[1])) axpy(o, 1.0, on(bil, outs, {&aA, e[1]})[0]);
  if (!all_zero(*e[0])) axpy(o, 1.0, on(bil, outs, {e[0], &aB})[0]);
  if (!all_zero(*e[0]) && !all_zero(*e[1])) axpy(o, 1.0, on(bil, outs, {e[0], e[1]})[0]);
  if (hasC && !all_zero(*e[2])) {
    if (op.kind == OpKind::Conv) {
      const int64_t M = r.shape[1], inner = n / (r.shape[0] * M);
      for (int64_t k = 0; k < n; ++k) o.f[k] += e[2]->f[(k / inner) % M];
    } else {
      const auto mc = broadcast_index_map(r.shape, v[2]->shape);
      for (int64_t k = 0; k < n; ++k)
        o.f[k] += static_cast<float>(std::fabs(op.attr_float("beta")) * e[2]->f[mc[k]]);
    }
  }
  return o;
}

// AveragePool, GlobalAveragePool, ReduceSum, ReduceMean: gamma(len) op(|x|) for the sums (len: the
// terms, + 1 for a mean's division) plus op(e) propagated.
Value bound_linear_reduce(const ir::Op& op, const Ins& v, const Ins& e, const std::vector<Value>& outs) {
  int64_t len = 0;
  if (op.kind == OpKind::AveragePool) len = ir::num_elements(op.attr_ints("kernel_shape")) + 1;
  if (op.kind == OpKind::GlobalAveragePool) len = v[0]->elements() / (v[0]->shape[0] * v[0]->shape[1]) + 1;
  if (op.kind == OpKind::ReduceSum || op.kind == OpKind::ReduceMean) {
    len = op.kind == OpKind::ReduceMean ? 1 : 0;
    int64_t p = 1;
    for (int64_t a : op.attr_ints("axes")) p *= v[0]->shape[a];
    len += p;
  }
  const Value ax = absval(*v[0]);
  Value o = on(op, outs, {&ax})[0];
  for (auto& x : o.f) x = static_cast<float>(gamma(static_cast<double>(len)) * x);
  axpy(o, 1.0, on(op, outs, {e[0]})[0]);
  return o;
}

// BatchNormalization with exact parameters (bound_op: else unbounded).
Value bound_batchnorm(const ir::Op& op, const Ins& v, const Ins& e, const Value& r) {
  Value o = zeros(r.shape);
  const float eps = op.attr_float("epsilon");
  const int64_t n = r.elements(), C = r.shape[1], inner = n / (r.shape[0] * C);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t c = (k / inner) % C;
    const double s = std::fabs(v[1]->f[c] / std::sqrt(static_cast<double>(v[4]->f[c]) + eps));
    const double d = std::fabs(static_cast<double>(v[0]->f[k]) - v[3]->f[c]);
    o.f[k] = static_cast<float>(s * e[0]->f[k] + 8 * kU * s * d + rnd(r.f[k]));
  }
  return o;
}

Value bound_layernorm(const ir::Op& op, const Ins& v, const Ins& e, const Value& r) {
  Value o = zeros(r.shape);
  const size_t axis = static_cast<size_t>(op.attr_int("axis"));
  const Shape norm(v[0]->shape.begin() + static_cast<int64_t>(axis), v[0]->shape.end());
  const int64_t len = ir::num_elements(norm), rows = r.elements() / len;
  const auto mg = broadcast_index_map(norm, v[1]->shape);
  const bool hasB = v.size() > 2 && v[2];
  const auto mb = hasB ? broadcast_index_map(norm, v[2]->shape) : std::vector<int64_t>();
  const double eps = op.attr_float("epsilon");
  for (int64_t row = 0; row < rows; ++row) {
    const float* x = v[0]->f.data() + row * len;
    const float* ex = e[0]->f.data() + row * len;
    double mu = 0, amu = 0, mex = 0;
    for (int64_t k = 0; k < len; ++k) {
      mu += x[k];
      amu += std::fabs(x[k]);
      mex += ex[k];
    }
    mu /= len;
    amu /= len;
    mex /= len;
    double var = 0;
    for (int64_t k = 0; k < len; ++k) var += (x[k] - mu) * (x[k] - mu);
    var /= len;
    const double sigma = std::sqrt(var + eps);
    const double emu = gamma(static_cast<double>(len + 1)) * amu;
    double dd = 0, yex = 0;
    for (int64_t k = 0; k < len; ++k) {
      const double d = std::fabs(x[k] - mu);
      dd += d * (emu + kU * d);
      yex += d / sigma * ex[k];
    }
    dd /= len;
    yex /= len;
    const double evar = gamma(static_cast<double>(len + 2)) * var + 2 * dd;
    const double rel_sigma = evar / (2 * (var + eps)) + 3 * kU;
    for (int64_t k = 0; k < len; ++k) {
      const double d = std::fabs(x[k] - mu), yh = d / sigma;
      const double g = std::fabs(v[1]->f[mg[k]]), eg = e[1]->f[mg[k]], eb = hasB ? e[2]->f[mb[k]] : 0.0;
      const double prop = (ex[k] + mex + yh * yex) / sigma;
      const double eyh = (emu + kU * d) / sigma + yh * rel_sigma + kU * yh;
      const double y = r.f[row * len + k];
      o.f[row * len + k] = static_cast<float>(g * (prop + eyh) + yh * eg + eb + kU * yh * g + 2 * rnd(y));
    }
  }
  return o;
}

Value bound_softmax(const ir::Op& op, const Ins& v, const Ins& e, const Value& r) {
  Value o = zeros(r.shape);
  const size_t axis = static_cast<size_t>(op.attr_int("axis"));
  int64_t outer = 1, len = r.shape[axis], inner = 1;
  for (size_t k = 0; k < axis; ++k) outer *= r.shape[k];
  for (size_t k = axis + 1; k < r.shape.size(); ++k) inner *= r.shape[k];
  const double tiny = 4.0 * std::numeric_limits<float>::denorm_min();
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t b = 0; b < inner; ++b) {
      auto at = [&](int64_t k) { return (a * len + k) * inner + b; };
      double m = -std::numeric_limits<double>::infinity(), emax = 0, srel = gamma(static_cast<double>(len));
      for (int64_t k = 0; k < len; ++k) m = std::max(m, static_cast<double>(v[0]->f[at(k)]));
      auto delta = [&](int64_t k) {  // relative error of exp(x_k - m) as computed
        const double x = v[0]->f[at(k)];
        return std::isfinite(x) ? kU * std::fabs(x - m) + kElem * kU : 0.0;
      };
      for (int64_t k = 0; k < len; ++k) {
        const double p = r.f[at(k)];
        srel += p * delta(k);
        if (std::isfinite(v[0]->f[at(k)])) emax = std::max(emax, static_cast<double>(e[0]->f[at(k)]));
      }
      for (int64_t k = 0; k < len; ++k) {
        const double p = r.f[at(k)];
        const double x = v[0]->f[at(k)];
        o.f[at(k)] = !std::isfinite(x) && p == 0
                         ? 0.f
                         : static_cast<float>(p * (e[0]->f[at(k)] + emax + delta(k) + srel + kU) + tiny);
      }
    }
  return o;
}

// The bounds of a float op's outputs before their f16 rounding.
std::vector<Value> bound_float_op(const ir::Op& op, const Ins& v, const Ins& e,
                                  const std::vector<Value>& outs) {
  const Value& r = outs[0];
  switch (op.kind) {
    case OpKind::Add:
    case OpKind::Sub:
    case OpKind::Mul:
    case OpKind::Div:
    case OpKind::Pow:
      return {bound_binary(op, v, e, r)};
    case OpKind::Where:
    case OpKind::Max:
    case OpKind::Min:
      return {bound_select(op, v, e, r)};
    case OpKind::Relu:
    case OpKind::Neg:
    case OpKind::Abs: {  // exact
      Value o = zeros(r.shape);
      o.f = e[0]->f;
      return {o};
    }
    case OpKind::Cast: {  // float->float; f16 rounding added by bound_op
      Value o = zeros(r.shape);
      for (int64_t k = 0; k < r.elements(); ++k) o.f[k] = e[0]->f[k];
      return {o};
    }
    case OpKind::ReduceMax:
    case OpKind::ReduceMin: {  // exact op; the extreme moves by at most max |e|
      ir::Op mx = op;
      mx.kind = OpKind::ReduceMax;
      return {on(mx, outs, {e[0]})[0]};
    }
    case OpKind::ReduceSumSquare:
    case OpKind::ReduceL1:
    case OpKind::ReduceL2:
      return {bound_reduce_norm(op, v, e, outs)};
    case OpKind::Sigmoid:
    case OpKind::Tanh:
    case OpKind::Erf:
    case OpKind::Exp:
    case OpKind::Log:
    case OpKind::Sqrt:
    case OpKind::Reciprocal:
      return {bound_unary(op, v, e, r)};
    case OpKind::MatMul:
    case OpKind::Gemm:
    case OpKind::Conv:
      return {bound_bilinear(op, v, e, outs)};
    case OpKind::MaxPool:
      return {on(op, outs, {e[0]})[0]};
    case OpKind::AveragePool:
    case OpKind::GlobalAveragePool:
    case OpKind::ReduceSum:
    case OpKind::ReduceMean:
      return {bound_linear_reduce(op, v, e, outs)};
    case OpKind::BatchNormalization:
      return {bound_batchnorm(op, v, e, r)};
    case OpKind::LayerNormalization:
      return {bound_layernorm(op, v, e, r)};
    case OpKind::Softmax:
      return {bound_softmax(op, v, e, r)};
    case OpKind::Reshape:
    case OpKind::Transpose:
    case OpKind::Concat:
    case OpKind::Split:
    case OpKind::Slice:
      return on(op, outs, e);
    case OpKind::Gather:
      return on(op, outs, {e[0], v[1]});
    case OpKind::Equal:
      break;  // bool output: bound_op's integer rule
  }
  std::vector<Value> E;
  for (const auto& o : outs) E.push_back(zeros(o.shape));
  return E;
}

// Bounds for the outputs of `op`, given input values/bounds (nullptr for omitted inputs).
std::vector<Value> bound_op(const ir::Op& op, const Ins& v, const Ins& e, const std::vector<Value>& outs) {
  auto unbounded = [&] {
    std::vector<Value> E;
    for (const auto& o : outs)
      E.push_back(Value::floats(o.shape, std::vector<float>(static_cast<size_t>(o.elements()), kInf)));
    return E;
  };
  // Integer/bool results are exact when every input is exact; otherwise unbounded.
  if (!ir::dtype_is_float(outs[0].dtype)) {
    bool exact = true;
    for (size_t k = 0; k < e.size(); ++k) exact &= !e[k] || all_zero(*e[k]);
    if (exact) {
      std::vector<Value> E;
      for (const auto& o : outs) E.push_back(zeros(o.shape));
      return E;
    }
    return unbounded();
  }
  for (size_t k = 0; k < v.size(); ++k)  // inexact integer inputs (indices, conditions): unbounded
    if (v[k] && !ir::dtype_is_float(v[k]->dtype) && !all_zero(*e[k])) return unbounded();
  if (op.kind == OpKind::BatchNormalization)  // inexact scale, bias, mean or variance: unbounded
    for (size_t k = 1; k < 5; ++k)
      if (!all_zero(*e[k])) return unbounded();
  std::vector<Value> E = bound_float_op(op, v, e, outs);
  // Rounding to f16: 2^-11 |r| in the normal range; below it (subnormals, and a result that
  // underflows to 0) the absolute half step 2^-25, which the relative term does not cover.
  for (size_t k = 0; k < E.size(); ++k)
    if (outs[k].dtype == DType::F16)
      for (int64_t j = 0; j < E[k].elements(); ++j)
        E[k].f[j] += static_cast<float>(kU16 * std::fabs(outs[k].f[j]) + kF16Subnormal / 2);
  return E;
}

}  // namespace

std::vector<Value> op_error_bound(const ir::Op& op, const std::vector<const Value*>& v,
                                  const std::vector<const Value*>& e, const std::vector<Value>& outs) {
  return bound_op(op, v, e, outs);
}

std::vector<Value> run_with_error_bound(const ir::Graph& g, const std::vector<Value>& inputs,
                                        std::vector<Value>* bounds) {
  check_run_inputs(g, inputs);
  const auto& gin = g.inputs();
  const size_t nt = g.tensors().size();
  std::vector<Value> vals(nt), errs(nt);
  for (size_t k = 0; k < gin.size(); ++k) {
    const ir::Tensor& t = g.tensor(gin[k]);
    vals[gin[k]] = inputs[k];
    errs[gin[k]] = zeros(t.shape);
  }
  for (size_t k = 0; k < nt; ++k)
    if (g.tensors()[k].is_const) {
      vals[k] = Value::from_constant(g.tensors()[k]);
      errs[k] = zeros(g.tensors()[k].shape);
    }
  std::vector<const Value*> vin, ein;
  for (const ir::Op& op : g.ops()) {
    vin.clear();
    ein.clear();
    for (ir::TensorId t : op.inputs) {
      vin.push_back(t == ir::kNoTensor ? nullptr : &vals[t]);
      ein.push_back(t == ir::kNoTensor ? nullptr : &errs[t]);
    }
    auto outs = eval_op(g, op, vin);
    auto eb = bound_op(op, vin, ein, outs);
    for (size_t k = 0; k < outs.size(); ++k) {
      vals[op.outputs[k]] = std::move(outs[k]);
      errs[op.outputs[k]] = std::move(eb[k]);
    }
  }
  std::vector<Value> r;
  bounds->clear();
  for (ir::TensorId t : g.outputs()) {
    r.push_back(vals[t]);
    bounds->push_back(errs[t]);
  }
  return r;
}

}  // namespace lpu::ref
