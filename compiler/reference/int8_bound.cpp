// Layer-by-layer int8 bound check of a dense-layer chain (see int8_bound.h), evaluated in double.
#include "compiler/reference/int8_bound.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "compiler/reference/chip_stored.h"
#include "isa/chip_config.h"

namespace lpu::compiler {

std::map<ir::TensorId, std::vector<double>> int8_chip_layers(const ir::Graph& g, const LoweredModel& lm,
                                                             const QuantPlan& q, const Program& p,
                                                             const std::map<std::string, std::vector<uint8_t>>& out) {
  std::map<ir::TensorId, std::vector<double>> res;
  for (const LoweredLayer& L : lm.layers) {
    const std::string& name = lm.tensor(g, L.y).name;
    bool listed = false;
    for (const TensorDesc& d : p.tensors) listed = listed || d.name == name || d.name.rfind(name + ".rows_", 0) == 0;
    if (!listed) continue;
    const auto it = q.i8_tensors.find(L.y);
    const double s = it == q.i8_tensors.end() ? 1.0 : static_cast<double>(it->second);
    res[L.y] = chip_stored(p, name, out, s).v;
  }
  return res;
}

Int8LayerVerdict int8_layer_bound(const LoweredLayer& L, const LayerQuant& lq, const std::vector<double>& a,
                                  int64_t rows, const std::vector<double>& y, bool host_input, bool is_output,
                                  bool relu_after, const std::vector<double>* residual,
                                  const std::vector<double>* row_div) {
  if (!lq.int8 || static_cast<int64_t>(a.size()) != rows * L.K || static_cast<int64_t>(y.size()) != rows * L.N)
    throw InputError(fmt::format("int8 bound: layer '{}' is not int8 or its input/output sizes ({} / {}) are not "
                                 "{} rows x {} / {}", L.name, a.size(), y.size(), rows, L.K, L.N));
  if ((L.residual != ir::kNoTensor) != (residual != nullptr) ||
      (residual && (static_cast<int64_t>(residual->size()) != rows * L.N || is_output)))
    throw std::logic_error(fmt::format("int8 bound: layer '{}': residual values missing, unexpected, of the wrong "
                                       "size, or with an f32 output", L.name));
  if ((L.row_div != ir::kNoTensor) != (row_div != nullptr) || (row_div && static_cast<int64_t>(row_div->size()) != rows))
    throw std::logic_error(fmt::format("int8 bound: layer '{}': row divisors missing, unexpected or not one per row",
                                       L.name));
  const bool first = host_input;
  const double xs = lq.x_scale;
  const bool is_out = is_output;
  Int8LayerVerdict v;
  v.layer = L.name;
  v.elements = rows * L.N;
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t n = 0; n < L.N; ++n) {
      const double dw = static_cast<double>(lq.w_scale[static_cast<size_t>(n)]) / 2;
      const double b = L.bias.empty() ? 0.0 : L.bias[static_cast<size_t>(n)];
      double s = 0, err = 0, mag = 0;
      for (int64_t k = 0; k < L.K; ++k) {
        const double w = L.w[static_cast<size_t>(k * L.N + n)];
        const double dwk = w == 0.0 ? 0.0 : dw;  // a zero weight quantizes to 0 exactly (any scale)
        const double av = a[static_cast<size_t>(m * L.K + k)];
        const double da = first ? xs / 2 + std::max(0.0, std::fabs(av) - 127 * xs) : 0.0;
        s += av * w;
        err += std::fabs(av) * dwk + std::fabs(w) * da + da * dwk;
        mag += (std::fabs(av) + da) * (std::fabs(w) + dwk);
      }
      if (row_div) {  // acc / d: every term divided by d > 0, plus the f32 divide's rounding
        const double d = (*row_div)[static_cast<size_t>(m)];
        if (!(d > 0)) throw InputError(fmt::format("int8 bound: layer '{}': row {} divisor {} is not positive", L.name, m, d));
        s /= d;
        err /= d;
        mag /= d;
        err += std::ldexp(1.0, -23) * (mag + err);
      }
      s += b;
      err += std::ldexp(1.0, -21) * (mag + std::fabs(b));
      if (residual) {  // the product rounded to f16 (what it would store), then + r
        err += std::ldexp(1.0, -11) * (std::fabs(s) + err);
        s += (*residual)[static_cast<size_t>(m * L.N + n)];
      }
      const double r = L.relu || relu_after ? std::max(s, 0.0) : s;
      if (residual && lq.y_int8) err += std::ldexp(1.0, -11) * (std::fabs(s) + err);  // the f16 sum, then quantized
      if (lq.y_int8)
        err += lq.y_scale / 2.0 + std::max(0.0, (relu_after ? r : std::fabs(r)) - 127.0 * lq.y_scale);
      else if (!is_out)
        err += std::ldexp(1.0, -11) * (std::fabs(r) + err);
      const double y_chip = y[static_cast<size_t>(m * L.N + n)];
      const double got = relu_after ? std::max(y_chip, 0.0) : y_chip;
      const double e = std::fabs(got - r);
      if (!(e <= err)) ++v.outside;
      v.max_err = std::max(v.max_err, e);
      v.max_bound = std::max(v.max_bound, err);
      v.max_ref = std::max(v.max_ref, std::fabs(r));
      if (err > 0) v.worst_ratio = std::max(v.worst_ratio, e / err);
    }
  return v;
}

std::vector<Int8LayerVerdict> int8_layer_check(const LoweredModel& lm, const QuantPlan& q,
                                               const std::vector<float>& input, int64_t rows,
                                               const std::map<ir::TensorId, std::vector<double>>& chip) {
  if (!lm.eltwise.empty() || !lm.gathers.empty() || !lm.lanes.empty() || lm.layers.empty() || lm.inputs.size() != 1 ||
      lm.outputs.size() != 1 || q.layers.size() != lm.layers.size())
    throw InputError(fmt::format("int8 bound: only models lowered to a chain of int8 dense layers with one input and "
                                 "one output have a documented bound (this one has {} dense layers, {} elementwise "
                                 "steps, {} inputs, {} outputs)", lm.layers.size(), lm.eltwise.size(),
                                 lm.inputs.size(), lm.outputs.size()));
  if (rows <= 0 || static_cast<int64_t>(input.size()) != rows * lm.layers.front().K)
    throw InputError(fmt::format("int8 bound: input has {} values, expected {} rows x {}", input.size(), rows,
                                 lm.layers.front().K));
  std::vector<Int8LayerVerdict> res;
  std::vector<double> a(input.begin(), input.end());  // the layer's input as the chip sees it (float domain)
  ir::TensorId prev = lm.inputs[0].alias;
  for (size_t li = 0; li < lm.layers.size(); ++li) {
    const LoweredLayer& L = lm.layers[li];
    const LayerQuant& lq = q.layers[li];
    if (L.x != prev || !lq.int8 || L.residual != ir::kNoTensor)
      throw InputError(fmt::format("int8 bound: layer '{}' {}", L.name,
                                   L.x != prev  ? "does not read the previous layer's output (not a chain)"
                                   : !lq.int8   ? "does not run int8 (mixed-precision chains have no bound here)"
                                                : "adds a residual (a graph with a skip connection, not a chain)"));
    const auto ci = chip.find(L.y);
    if (ci == chip.end() || static_cast<int64_t>(ci->second.size()) != rows * L.N)
      throw InputError(fmt::format("int8 bound: the chip's output of layer '{}' is missing or has the wrong size "
                                   "(compile with keep_intermediates)", L.name));
    const std::vector<double>& y = ci->second;
    // int8_layer_bound's is_output: an f32 output, with no f16 rounding (LowerOptions::f16_output).
    const Int8LayerVerdict v = int8_layer_bound(L, lq, a, rows, y, li == 0, lm.f32_output(L.y));
    res.push_back(v);
    a = y;  // the next layer multiplies exactly the chip's (dequantized) values
    prev = L.y;
  }
  if (prev != lm.outputs[0])
    throw InputError("int8 bound: the last dense layer's output is not the graph output (not a chain)");
  return res;
}

}  // namespace lpu::compiler
