// Per-step verification of an int8 model (see int8_step_check.h).
#include "compiler/reference/int8_step_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "compiler/passes/lower_conv.h"
#include "isa/chip_config.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

// The quantizing rule of a copy: chip value q * s against the chip's source value v.
ref::StepVerdict copy_verdict(const std::string& op, const std::string& kind, const std::string& tensor,
                              const std::vector<double>& src, const std::vector<double>& deq, double s) {
  ref::StepVerdict sv;
  sv.op = op;
  sv.kind = kind;
  sv.tensor = tensor;
  sv.elements = static_cast<int64_t>(deq.size());
  if (src.size() != deq.size()) {  // no element-wise correspondence: not checkable, fails
    sv.unbounded = std::max<int64_t>(sv.elements, 1);
    return sv;
  }
  for (size_t k = 0; k < src.size(); ++k) {
    const double v = src[k];
    const double bound = std::ldexp(std::fabs(v), -23) + s / 2 + std::max(0.0, std::fabs(v) - 127 * s);
    const double e = std::fabs(deq[k] - v);
    if (!(e <= sv.max_err) && !std::isnan(sv.max_err)) sv.max_err = e;
    if (!(e <= bound)) ++sv.outside;
    const double ratio = e / bound;
    if (!(ratio <= sv.worst_ratio)) {
      sv.worst_ratio = ratio;
      sv.err_at_worst = e;
      sv.bound_at_worst = bound;
    }
  }
  return sv;
}

// An elementwise lowering step whose result equals its one activation operand on every stored
// element: a float Cast (no VXM op) or the pad-lane clearing sel(c, x, c) with c = 1 on the lanes.
ir::TensorId value_copy_source(const LoweredEltwise& E) {
  auto plain = [](const EltOperand& o) {
    return o.act != ir::kNoTensor && o.row_map.empty() && !o.lane_bcast;
  };
  if (!E.has_op && E.operands.size() == 1 && plain(E.operands[0])) return E.operands[0].act;
  if (E.has_op && E.vxm_op == static_cast<int>(Opcode::Select) && E.operands.size() == 3 &&
      plain(E.operands[1])) {
    const EltOperand& c = E.operands[0];
    const bool ones = c.act == ir::kNoTensor && !c.values.empty() &&
                      std::all_of(c.values.begin(), c.values.end(), [](float f) { return f == 1.f; });
    if (ones) return E.operands[1].act;
  }
  return ir::kNoTensor;
}

}  // namespace

std::vector<double> layer_input_rows(const LoweredLayer& L, const ChipStored& x, int64_t* rows) {
  const int64_t M = L.x_rows.empty() ? x.rows : static_cast<int64_t>(L.x_rows.size());
  std::vector<double> a(static_cast<size_t>(M * L.K));
  auto at = [&](int64_t r, int64_t c) {
    if (r < 0 || r >= x.rows || c < 0 || c >= x.inner)
      throw InputError(fmt::format("int8 check: layer '{}' reads element ({}, {}) of an input stored {} x {}",
                                   L.name, r, c, x.rows, x.inner));
    return x.v[static_cast<size_t>(r * x.inner + c)];
  };
  if (!L.tap_rows.empty()) {  // conv taps read in place (passes/lower_conv.h): K = taps x C, -1 reads zeros
    const int64_t T = static_cast<int64_t>(L.tap_rows.size()), C = L.K / T;
    const int64_t Mt = static_cast<int64_t>(L.tap_rows[0].size());
    std::vector<double> t8(static_cast<size_t>(Mt * L.K), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t m = 0; m < Mt; ++m) {
        const int64_t r = L.tap_rows[static_cast<size_t>(t)][static_cast<size_t>(m)];
        if (r >= 0)
          for (int64_t c = 0; c < C; ++c) t8[static_cast<size_t>(m * L.K + t * C + c)] = at(r, c);
      }
    *rows = Mt;
    return t8;
  }
  for (int64_t m = 0; m < M; ++m) {
    const int64_t xr = L.x_rows.empty() ? m : L.x_rows[static_cast<size_t>(m)];
    if (L.xsegs.empty()) {
      for (int64_t k = 0; k < L.K; ++k) a[static_cast<size_t>(m * L.K + k)] = at(xr, k);
    } else {
      for (const LoweredLayer::XSegment& sg : L.xsegs)
        for (int64_t j = 0; j < sg.width; ++j)
          a[static_cast<size_t>(m * L.K + sg.k0 + j)] = at(sg.row_off + xr, sg.col0 + j);
    }
  }
  *rows = M;
  return a;
}

bool Int8StepCheck::ok() const {
  return steps.ok() && !layers.empty() &&
         std::all_of(layers.begin(), layers.end(), [](const Int8LayerVerdict& v) { return v.ok(); });
}

namespace {

// The LayerNorm folded into an int8 layer (passes/quantize.h "LayerNorm folds"), if any: the layer
// with W' and b' (fold_norm_weights) and the chip's sd of each product row (the row divisors).
struct FoldedNorm {
  const LoweredModel::Norm* norm = nullptr;  // null: no fold
  LoweredLayer layer;
  std::vector<double> divs;
};

// verify_int8_steps' state: the model, the plan, the program and its simulated values, and what the
// int8 layers' pass leaves for the per-step check of the graph ops.
class Int8Checker {
 public:
  Int8Checker(const ir::Graph& g, const LoweredModel& lm, const QuantPlan& q,
              const std::vector<ref::Value>& inputs, const Program& p,
              const std::map<std::string, std::vector<uint8_t>>& sim)
      : g_(g), lm_(lm), q_(q), inputs_(inputs), p_(p), sim_(sim), nt_(g.tensors().size()) {
    for (const ir::Op& op : g.ops()) op_names_.insert(op.name);
  }
  Int8StepCheck run();

 private:
  std::vector<double> float_value(ir::TensorId t) const;
  std::vector<double> centred(const LoweredModel::Norm& nm) const;
  ChipStored stored(ir::TensorId t, double scale) const {
    return chip_stored(p_, lm_.tensor(g_, t).name, sim_, scale);
  }
  int host_input(const LoweredLayer& L) const;
  ChipStored layer_x(const LoweredLayer& L, int host) const;
  FoldedNorm folded_norm(size_t i, int64_t rows) const;
  std::vector<double> in_product_rows(const LoweredLayer& L, const std::vector<double>& v,
                                      int64_t rows) const;
  bool relu_readers_only(const LoweredLayer& L) const;
  double reference_rounding(const LoweredLayer& L, const FoldedNorm& f, const std::vector<double>& src,
                            const std::vector<double>& ln, int64_t rows) const;
  void widen(std::string op, double delta);
  void check_layer(size_t i, Int8StepCheck* res);
  std::map<ir::TensorId, float> check_quantizing_steps(Int8StepCheck* res) const;

  const ir::Graph& g_;
  const LoweredModel& lm_;
  const QuantPlan& q_;
  const std::vector<ref::Value>& inputs_;
  const Program& p_;
  const std::map<std::string, std::vector<uint8_t>>& sim_;
  const size_t nt_;
  std::set<std::string> op_names_;
  std::set<std::string> int8_outputs_;  // graph tensors written by int8 layers (checked by check_layer)
  std::map<std::string, double> layer_delta_;  // graph op name -> chained_extra (check_layer)
};

// A float value the chip holds: stored by the program, else a graph input as the host gave it
// (rounded to f16 as the chip stores a float input).
std::vector<double> Int8Checker::float_value(ir::TensorId t) const {
  try {
    return stored(t, 1.0).v;
  } catch (const InputError&) {
    for (size_t i = 0; i < g_.inputs().size(); ++i) {
      const bool is_in = g_.inputs()[i] == t || (i < lm_.inputs.size() && lm_.inputs[i].alias == t &&
                                                 lm_.inputs[i].host_map.empty());
      if (!is_in) continue;
      std::vector<double> v(inputs_[i].f.size());
      for (size_t k = 0; k < v.size(); ++k) v[k] = ir::round_f16(inputs_[i].f[k]);
      return v;
    }
    throw;
  }
}

// A LayerNorm fold's centred copy's float source: the chip's x minus its row's mean (the chip's
// `sub` is f32), in x's stored layout.
std::vector<double> Int8Checker::centred(const LoweredModel::Norm& nm) const {
  std::vector<double> v = float_value(nm.x);
  const ChipStored mean = stored(nm.mean, 1.0);
  const size_t inner = mean.rows ? v.size() / static_cast<size_t>(mean.rows) : 0;
  if (inner == 0 || v.size() != inner * static_cast<size_t>(mean.rows))
    throw InputError(fmt::format("int8 check: LayerNorm input '{}': {} values for {} means",
                                 lm_.tensor(g_, nm.x).name, v.size(), mean.rows));
  for (size_t k = 0; k < v.size(); ++k) v[k] -= mean.v[(k / inner) * static_cast<size_t>(mean.inner)];
  return v;
}

// The graph input the host quantized that layer L reads as X (its index), or -1.
int Int8Checker::host_input(const LoweredLayer& L) const {
  int host = -1;
  for (size_t k = 0; k < g_.inputs().size(); ++k) {
    const std::string& in = g_.tensor(g_.inputs()[k]).name;
    const bool reads = g_.inputs()[k] == L.x || (k < lm_.inputs.size() && lm_.inputs[k].alias == L.x);
    if (reads && q_.i8_inputs.count(in)) host = static_cast<int>(k);
  }
  return host;
}

// Layer L's X as the chip holds it: the chip's dequantized i8 tensor, or for a host-quantized input
// (host >= 0) the float values the host quantized (d_a = x_scale / 2 + clipping).
ChipStored Int8Checker::layer_x(const LoweredLayer& L, int host) const {
  if (host < 0) {
    const auto xs = q_.i8_tensors.find(L.x);
    if (xs == q_.i8_tensors.end())
      throw std::logic_error("int8 check: int8 layer '" + L.name + "' reads a tensor that is not i8");
    return stored(L.x, xs->second);
  }
  ChipStored x;
  const size_t h = static_cast<size_t>(host);
  const ref::Value& in = inputs_[h];
  const LoweredInput* li = h < lm_.inputs.size() ? &lm_.inputs[h] : nullptr;
  const ir::Shape& shape = li && !li->shape.empty() ? li->shape : g_.tensor(g_.inputs()[h]).shape;
  // A conv input the host lays out (NHWC or im2col rows, passes/lower_conv.h): the values in the
  // chip's layout, which the host quantized element by element (padding 0, exact).
  if (li && !li->host_map.empty()) {
    const std::vector<float> chip = to_chip_input(*li, in.f);
    x.v.assign(chip.begin(), chip.end());
  } else {
    x.v.assign(in.f.begin(), in.f.end());
  }
  x.inner = shape.empty() ? 1 : shape.back();
  x.rows = x.inner ? static_cast<int64_t>(x.v.size()) / x.inner : 0;
  return x;
}

// Layer i's folded LayerNorm (none: norm null). `rows`: its product rows, one sd each.
FoldedNorm Int8Checker::folded_norm(size_t i, int64_t rows) const {
  FoldedNorm f;
  const int nf = q_.layers[i].norm_fold;
  if (nf < 0) return f;
  const LoweredLayer& L = lm_.layers[i];
  f.norm = &lm_.norms.at(static_cast<size_t>(nf));
  f.layer = L;
  fold_norm_weights(L, *f.norm, &f.layer.w, &f.layer.bias);
  const ChipStored sd = stored(f.norm->sd, 1.0);
  if (sd.rows != rows || !L.x_rows.empty())
    throw InputError(fmt::format("int8 check: layer '{}' folds a LayerNorm of {} rows into {} product rows",
                                 L.name, sd.rows, rows));
  for (int64_t m = 0; m < rows; ++m) f.divs.push_back(sd.v[static_cast<size_t>(m * sd.inner)]);
  return f;
}

// Values v stored like L's output (rows of L.N), picked in product row order (through y_rows).
std::vector<double> Int8Checker::in_product_rows(const LoweredLayer& L, const std::vector<double>& v,
                                                 int64_t rows) const {
  std::vector<double> out(static_cast<size_t>(rows * L.N));
  for (int64_t m = 0; m < rows; ++m) {
    const int64_t yr = L.y_rows.empty() ? m : L.y_rows[static_cast<size_t>(m)];
    for (int64_t n = 0; n < L.N; ++n)
      out[static_cast<size_t>(m * L.N + n)] = v[static_cast<size_t>(yr * L.N + n)];
  }
  return out;
}

// L.y a lowering tensor that some step reads and whose every reader is an elementwise step applying
// a fused Relu first (a conv's values before the Relu that moved into the MaxPool after it,
// lower_conv.cpp take_producer_relu): the chained input of those steps' graph ops is relu(y).
bool Int8Checker::relu_readers_only(const LoweredLayer& L) const {
  bool relu_readers = static_cast<size_t>(L.y) >= nt_ && !L.relu;
  bool any_reader = false;
  for (const LoweredStep& st : lm_.steps) {
    const std::vector<ir::TensorId> r = step_reads(lm_, st);
    if (std::find(r.begin(), r.end(), L.y) == r.end()) continue;
    any_reader = true;
    relu_readers =
        relu_readers && is_eltwise(st) && lm_.eltwise[st.index].relu && lm_.eltwise[st.index].minmax_chain();
  }
  return relu_readers && any_reader;
}

// The largest difference, over L's outputs, between the float layer on `src` and the fp16
// reference's (the source and the weights each rounded to f16 once). Folded (f.norm): the bound
// covers y against (x - mean) . W' / sd + b' (f32 W', b'); that is the unrounded LayerNorm output
// t = (x - mean) scale / sd + bias times the graph's W, plus b, up to W' and b' rounding to f32; the
// reference multiplies the chip's stored f16 output `ln` instead. So: sum_k |t W - ln w16| (the
// chip's values, not y) + the f32 roundings.
double Int8Checker::reference_rounding(const LoweredLayer& L, const FoldedNorm& f,
                                       const std::vector<double>& src, const std::vector<double>& ln,
                                       int64_t rows) const {
  std::vector<float> src16(src.size()), w16(L.w.size());
  for (size_t k = 0; k < src.size(); ++k) src16[k] = ir::round_f16(static_cast<float>(src[k]));
  for (size_t k = 0; k < L.w.size(); ++k) w16[k] = ir::round_f16(L.w[k]);
  double wround = 0;
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t n = 0; n < L.N; ++n) {
      double d = 0;
      if (f.norm) {
        const LoweredModel::Norm& nm = *f.norm;
        const double dm = f.divs[static_cast<size_t>(m)];
        double mag = std::fabs(static_cast<double>(f.layer.bias[static_cast<size_t>(n)]));
        for (int64_t k = 0; k < L.K; ++k) {
          const size_t ak = static_cast<size_t>(m * L.K + k), wk = static_cast<size_t>(k * L.N + n);
          const double t = src[ak] * nm.scale[static_cast<size_t>(k)] / dm + nm.bias[static_cast<size_t>(k)];
          d += std::fabs(t * L.w[wk] - ln[ak] * static_cast<double>(w16[wk]));
          mag +=
              std::fabs(src[ak] * f.layer.w[wk]) / dm + std::fabs(nm.bias[static_cast<size_t>(k)] * L.w[wk]);
        }
        d += std::ldexp(1.0, -22) * mag;
      } else {
        for (int64_t k = 0; k < L.K; ++k) {
          const size_t ak = static_cast<size_t>(m * L.K + k), wk = static_cast<size_t>(k * L.N + n);
          d += std::fabs(src[ak] * L.w[wk] - static_cast<double>(src16[ak]) * w16[wk]);
        }
      }
      wround = std::max(wround, d);
    }
  return wround;
}

// Raises the chained delta of the graph op a lowering step is named after (the longest graph op
// name that is `op` or a prefix of it ending at a '.'; none: nothing).
void Int8Checker::widen(std::string op, double delta) {
  while (!op_names_.count(op) && op.rfind('.') != std::string::npos) op.resize(op.rfind('.'));
  if (!op_names_.count(op)) return;
  double& dl = layer_delta_[op];
  dl = std::max(dl, delta);
}

// Int8 layer i on its own input as the chip multiplies it, and the chained delta of its graph op.
void Int8Checker::check_layer(size_t i, Int8StepCheck* res) {
  const LoweredLayer& L = lm_.layers[i];
  int8_outputs_.insert(lm_.tensor(g_, L.y).name);
  const int host = host_input(L);
  const ChipStored x = layer_x(L, host);
  int64_t rows = 0;
  const std::vector<double> a = layer_input_rows(L, x, &rows);
  // A folded LayerNorm: the bound is the folded layer's (W', b', the chip's sd as row divisors); L
  // itself keeps the graph's W and b.
  const FoldedNorm f = folded_norm(i, rows);
  const LoweredLayer& LB = f.norm ? f.layer : L;
  const std::vector<double>* div_in = f.norm ? &f.divs : nullptr;
  const auto ys = q_.i8_tensors.find(L.y);
  const ChipStored y = stored(L.y, ys == q_.i8_tensors.end() ? 1.0 : ys->second);
  if (y.inner != L.N)
    throw InputError(
        fmt::format("int8 check: layer '{}' writes {} columns, its output '{}' is stored with {}", L.name,
                    L.N, lm_.tensor(g_, L.y).name, y.inner));
  const std::vector<double> ym = in_product_rows(L, y.v, rows);
  // A fused residual Add's other operand as the chip stored it, in product row order.
  std::vector<double> rm;
  if (L.residual != ir::kNoTensor) {
    const auto r8 = q_.i8_tensors.find(L.residual);  // an i8 residual (Int8Options::i8_residuals)
    const std::vector<double> rv =
        r8 != q_.i8_tensors.end() ? stored(L.residual, r8->second).v : float_value(L.residual);
    if (rv.size() != y.v.size())
      throw InputError(
          fmt::format("int8 check: layer '{}' adds residual '{}' of {} values to an output of {}", L.name,
                      lm_.tensor(g_, L.residual).name, rv.size(), y.v.size()));
    rm = in_product_rows(L, rv, rows);
  }
  const std::vector<double>* res_in = L.residual != ir::kNoTensor ? &rm : nullptr;
  // An f32 result has no output rounding (int8_layer_bound's is_output).
  const bool f32 = y.dtype == DType::F32;
  res->layers.push_back(
      int8_layer_bound(LB, q_.layers[i], a, rows, ym, host >= 0, f32, false, res_in, div_in));
  // For the graph op the layer is named after (L.name = OP or OP.suffix, the lowering folds a
  // projection into its consumer): how far the chip's y may be from the fp16 reference chain of
  // that op's inputs, beyond the chain's own bound. The int8 bound against the float source the
  // layer's i8 input was quantized from (a copy's source, the host input; host_input = true so d_a
  // covers that quantization), plus the difference between the float layer on that source and the
  // reference's (f16-rounded source and weights).
  const auto cp =
      std::find_if(q_.copies.begin(), q_.copies.end(), [&](const QuantCopy& c) { return c.copy == L.x; });
  std::vector<double> src;
  bool src_host = host >= 0;
  std::vector<double> ln;  // a fold's LayerNorm output as the chip stored it (the graph op's input)
  int64_t same_rows = 0;
  if (cp != q_.copies.end()) {
    ChipStored sx = x;
    sx.v = f.norm ? centred(*f.norm) : float_value(cp->src);
    if (sx.v.size() == x.v.size()) {
      src = layer_input_rows(L, sx, &same_rows);
      src_host = true;
      if (f.norm) {
        ChipStored sy = x;
        sy.v = float_value(f.norm->y);
        if (sy.v.size() != x.v.size())
          throw InputError(
              fmt::format("int8 check: LayerNorm output '{}' is stored with {} values, its centred copy "
                          "with {}",
                          lm_.tensor(g_, f.norm->y).name, sy.v.size(), x.v.size()));
        ln = layer_input_rows(L, sy, &same_rows);
      }
    }
  }
  if (f.norm && ln.empty())
    throw InputError("int8 check: layer '" + L.name +
                     "' folds a LayerNorm whose values the chip does not hold");
  if (src.empty()) src = a;
  const Int8LayerVerdict vs =
      int8_layer_bound(LB, q_.layers[i], src, rows, ym, src_host, f32, relu_readers_only(L), res_in, div_in);
  const double delta = vs.max_bound + reference_rounding(L, f, src, ln, rows);
  widen(L.name, delta);
  // A layer writing a lowering tensor read by elementwise steps (a conv's values before the Relu
  // that moved into the MaxPool after it, lower_conv.cpp take_producer_relu): the graph op of each
  // such step reads the chain through this layer (Relu and max are 1-Lipschitz), so its chained
  // input may be off by the same delta.
  if (static_cast<size_t>(L.y) >= nt_)
    for (const LoweredEltwise& E : lm_.eltwise)
      if (std::any_of(E.operands.begin(), E.operands.end(),
                      [&](const EltOperand& o) { return o.act == L.y; }))
        widen(E.name, delta);
}

// Quantized copies and lowering steps that quantize a value copy, each against its source; returns
// the graph tensors quantized on chip (checked by verify_steps' quantized rule).
std::map<ir::TensorId, float> Int8Checker::check_quantizing_steps(Int8StepCheck* res) const {
  std::set<ir::TensorId> copies;
  for (const QuantCopy& c : q_.copies) {
    copies.insert(c.copy);
    const double s = q_.i8_tensors.at(c.copy);
    const std::vector<double> src =
        c.norm >= 0 ? centred(lm_.norms.at(static_cast<size_t>(c.norm))) : float_value(c.src);
    res->steps.steps.push_back(copy_verdict(c.name,
                                            c.norm >= 0 ? "centred copy (LayerNorm fold)" : "quantized copy",
                                            c.name, src, chip_stored(p_, c.name, sim_, s).v, s));
  }
  std::map<ir::TensorId, float> quantized;
  for (const LoweredEltwise& E : lm_.eltwise) {
    const auto qs = q_.i8_tensors.find(E.y);
    if (qs == q_.i8_tensors.end() || copies.count(E.y)) continue;
    if (static_cast<size_t>(E.y) < nt_) {
      quantized[E.y] = qs->second;
      continue;
    }
    // A lowering tensor that a lane move copies byte for byte into a graph tensor stored i8 with
    // the same scale (a MaxPool on row pairs, passes/lower_conv.h "Row pairs"): its values are that
    // tensor's, checked as the graph op's quantized output.
    const auto re = lm_.rearranged.find(E.y);
    if (re != lm_.rearranged.end() && q_.i8_tensors.count(re->second) &&
        q_.i8_tensors.at(re->second) == qs->second &&
        std::any_of(lm_.lanes.begin(), lm_.lanes.end(), [&](const LoweredLane& Ln) {
          return Ln.mode == LoweredLane::Mode::Move && Ln.x == E.y && Ln.y == re->second;
        })) {
      quantized[re->second] = qs->second;
      continue;
    }
    const std::string& yname = lm_.tensor(g_, E.y).name;
    const ir::TensorId src = value_copy_source(E);
    const std::vector<double> deq = chip_stored(p_, yname, sim_, qs->second).v;
    if (src == ir::kNoTensor) {  // no bound for this form: fails
      ref::StepVerdict sv;
      sv.op = E.name;
      sv.kind = "quantizing lowering step (no int8 bound for this form)";
      sv.tensor = yname;
      sv.elements = static_cast<int64_t>(deq.size());
      sv.unbounded = std::max<int64_t>(sv.elements, 1);
      res->steps.steps.push_back(sv);
      continue;
    }
    res->steps.steps.push_back(
        copy_verdict(E.name, "quantizing value copy", yname, float_value(src), deq, qs->second));
  }
  return quantized;
}

Int8StepCheck Int8Checker::run() {
  if (inputs_.size() != g_.inputs().size())
    throw InputError(fmt::format("int8 check: {} input values for a graph with {} inputs", inputs_.size(),
                                 g_.inputs().size()));
  Int8StepCheck res;
  // 1. The int8 layers, each on its own input as the chip multiplies it.
  for (size_t i = 0; i < lm_.layers.size(); ++i)
    if (i < q_.layers.size() && q_.layers[i].int8) check_layer(i, &res);
  // 2. Quantized copies and lowering steps that quantize a value copy.
  const std::map<ir::TensorId, float> quantized = check_quantizing_steps(&res);
  // 3. Every graph op whose output the chip stores (int8 layers' outputs were checked above).
  std::map<ir::TensorId, float> graph_i8;
  for (const auto& [t, s] : q_.i8_tensors)
    if (static_cast<size_t>(t) < nt_) graph_i8[t] = s;
  const ref::StepCheck sc = ref::verify_steps(
      g_, inputs_, ref::chip_graph_tensors(g_, lm_, p_, sim_, graph_i8), quantized, layer_delta_);
  res.steps.ops = sc.ops;
  std::set<std::string> seen;
  for (const ref::StepVerdict& v : sc.steps) {
    if (int8_outputs_.count(v.tensor)) continue;
    seen.insert(v.tensor);
    res.steps.steps.push_back(v);
  }
  for (const auto& [t, s] : quantized)  // a quantizing graph op the per-step check could not see fails
    if (!seen.count(g_.tensor(t).name)) {
      ref::StepVerdict sv;
      sv.op = sv.tensor = g_.tensor(t).name;
      sv.kind = "quantizing step not readable in graph layout (unchecked)";
      sv.unbounded = 1;
      res.steps.steps.push_back(sv);
    }
  return res;
}

}  // namespace

Int8StepCheck verify_int8_steps(const ir::Graph& g, const LoweredModel& lm, const QuantPlan& q,
                                const std::vector<ref::Value>& inputs, const Program& p,
                                const std::map<std::string, std::vector<uint8_t>>& sim_outputs) {
  return Int8Checker(g, lm, q, inputs, p, sim_outputs).run();
}

}  // namespace lpu::compiler
