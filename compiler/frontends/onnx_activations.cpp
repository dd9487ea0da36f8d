// ONNX activations as chains of IR ops (see onnx_activations.h). Each rewrite is exact in real
// arithmetic; where it differs from the ONNX formula in floating point it is noted.
#include "compiler/frontends/onnx_activations.h"

#include <set>
#include <stdexcept>

namespace lpu::frontend {

using ir::OpKind;
using ir::TensorId;

namespace {

float attr_or(const std::map<std::string, float>& attrs, const std::string& name, float def) {
  const auto it = attrs.find(name);
  return it == attrs.end() ? def : it->second;
}

// relu(x) + s * min(x, 0): x for x >= 0, s x below (s a scalar or a tensor broadcast to x). One of
// the two terms is always 0, so the sum is the branch's value exactly.
TensorId two_slopes(TensorId x, TensorId s, ChainBuilder& b) {
  const TensorId pos = b.op(OpKind::Relu, {x});
  const TensorId neg = b.op(OpKind::Mul, {b.op(OpKind::Min, {x, b.scalar(0.f, x)}), s});
  return b.op(OpKind::Add, {pos, neg}, true);
}

// c * (exp(k min(x, 0)) - 1) + g * relu(x): Elu (k = g = 1), Celu (k = 1 / alpha) and Selu's x <= 0
// and x > 0 branches, each exact where the other term is 0 (exp(0) - 1 = 0).
TensorId exp_below_zero(TensorId x, float c, float k, float g, ChainBuilder& b) {
  TensorId low = b.op(OpKind::Min, {x, b.scalar(0.f, x)});
  if (k != 1.f) low = b.op(OpKind::Mul, {low, b.scalar(k, x)});
  const TensorId em1 = b.op(OpKind::Sub, {b.op(OpKind::Exp, {low}), b.scalar(1.f, x)});
  const TensorId neg = b.op(OpKind::Mul, {em1, b.scalar(c, x)});
  TensorId pos = b.op(OpKind::Relu, {x});
  if (g != 1.f) pos = b.op(OpKind::Mul, {pos, b.scalar(g, x)});
  return b.op(OpKind::Add, {pos, neg}, true);
}

// min(max(alpha x + beta, 0), 1).
TensorId hard_sigmoid(TensorId x, float alpha, float beta, bool last, ChainBuilder& b) {
  const TensorId lin = b.op(OpKind::Add, {b.op(OpKind::Mul, {x, b.scalar(alpha, x)}), b.scalar(beta, x)});
  return b.op(OpKind::Min, {b.op(OpKind::Max, {lin, b.scalar(0.f, x)}), b.scalar(1.f, x)}, last);
}

}  // namespace

bool is_activation_chain(const std::string& t) {
  static const std::set<std::string> ops = {"Clip", "LeakyRelu", "PRelu",    "Elu",         "Celu",
                                            "Selu", "Softplus",  "Softsign", "HardSigmoid", "HardSwish"};
  return ops.count(t) > 0;
}

TensorId write_activation(const std::string& t, TensorId x, const std::map<std::string, float>& attrs,
                          const std::vector<TensorId>& extra, ChainBuilder& b) {
  auto in = [&](size_t i) { return i < extra.size() ? extra[i] : ir::kNoTensor; };
  if (t == "Clip") {
    // max, then min: with min > max every element is max, as ONNX defines.
    TensorId lo = in(0), hi = in(1);
    if (lo == ir::kNoTensor && attrs.count("min")) lo = b.scalar(attrs.at("min"), x);
    if (hi == ir::kNoTensor && attrs.count("max")) hi = b.scalar(attrs.at("max"), x);
    if (lo == ir::kNoTensor && hi == ir::kNoTensor) return x;  // no bound: the identity
    TensorId y = x;
    if (lo != ir::kNoTensor) y = b.op(OpKind::Max, {y, lo}, hi == ir::kNoTensor);
    if (hi != ir::kNoTensor) y = b.op(OpKind::Min, {y, hi}, true);
    return y;
  }
  if (t == "LeakyRelu") {
    const float alpha = attr_or(attrs, "alpha", 0.01f);
    // 0 <= alpha <= 1: max(x, alpha x) picks the right branch (alpha x <= x exactly when x >= 0).
    if (alpha >= 0.f && alpha <= 1.f)
      return b.op(OpKind::Max, {x, b.op(OpKind::Mul, {x, b.scalar(alpha, x)})}, true);
    return two_slopes(x, b.scalar(alpha, x), b);
  }
  if (t == "PRelu") {
    if (in(0) == ir::kNoTensor) throw std::logic_error("write_activation: PRelu without a slope");
    return two_slopes(x, in(0), b);
  }
  if (t == "Elu") return exp_below_zero(x, attr_or(attrs, "alpha", 1.f), 1.f, 1.f, b);
  if (t == "Celu") {  // max(0, x) + min(0, alpha (exp(x / alpha) - 1)), alpha > 0
    const float alpha = attr_or(attrs, "alpha", 1.f);
    return exp_below_zero(x, alpha, 1.f / alpha, 1.f, b);
  }
  if (t == "Selu") {
    // ONNX: gamma (alpha e^x - alpha) for x <= 0, gamma x above; alpha gamma is one f32 constant here.
    const float alpha = attr_or(attrs, "alpha", 1.67326319217681884765625f);
    const float gamma = attr_or(attrs, "gamma", 1.05070102214813232421875f);
    return exp_below_zero(x, alpha * gamma, 1.f, gamma, b);
  }
  if (t == "Softplus") {
    // log(1 + e^x) = relu(x) + log(1 + e^-|x|): e^x overflows f16 from x = 11.1, e^-|x| never does.
    const TensorId e = b.op(OpKind::Exp, {b.op(OpKind::Neg, {b.op(OpKind::Abs, {x})})});
    const TensorId l = b.op(OpKind::Log, {b.op(OpKind::Add, {e, b.scalar(1.f, x)})});
    return b.op(OpKind::Add, {b.op(OpKind::Relu, {x}), l}, true);
  }
  if (t == "Softsign")
    return b.op(OpKind::Div, {x, b.op(OpKind::Add, {b.op(OpKind::Abs, {x}), b.scalar(1.f, x)})}, true);
  if (t == "HardSigmoid")
    return hard_sigmoid(x, attr_or(attrs, "alpha", 0.2f), attr_or(attrs, "beta", 0.5f), true, b);
  if (t == "HardSwish") return b.op(OpKind::Mul, {x, hard_sigmoid(x, 1.f / 6.f, 0.5f, false, b)}, true);
  throw std::logic_error("write_activation: not an activation chain: " + t);
}

TensorId write_log_softmax(TensorId x, int64_t axis, ChainBuilder& b) {
  const std::map<std::string, ir::AttrValue> keep = {{"axes", std::vector<int64_t>{axis}},
                                                     {"keepdims", int64_t{1}}};
  const TensorId shifted = b.op(OpKind::Sub, {x, b.op(OpKind::ReduceMax, {x}, false, keep)});
  const TensorId lse =
      b.op(OpKind::Log, {b.op(OpKind::ReduceSum, {b.op(OpKind::Exp, {shifted})}, false, keep)});
  return b.op(OpKind::Sub, {shifted, lse}, true);
}

}  // namespace lpu::frontend
