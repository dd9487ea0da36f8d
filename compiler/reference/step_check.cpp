// Per-step verification (see step_check.h): the chip's stored tensors in graph layout, and every IR
// op recomputed from the chip's values of its inputs with a local (non-compounding) bound.
#include "compiler/reference/step_check.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <fmt/format.h>

#include "compiler/reference/chip_stored.h"
#include "compiler/reference/error_bound.h"
#include "isa/chip_config.h"

namespace lpu::ref {

namespace {

constexpr double kU16 = kUnitF16;

bool is_view(ir::OpKind k) {
  return k == ir::OpKind::Reshape || k == ir::OpKind::Transpose || k == ir::OpKind::Split ||
         k == ir::OpKind::Slice || k == ir::OpKind::Concat || k == ir::OpKind::Gather;
}

}  // namespace

std::map<ir::TensorId, std::vector<double>> chip_graph_tensors(
    const ir::Graph& g, const compiler::LoweredModel& lm, const Program& p,
    const std::map<std::string, std::vector<uint8_t>>& sim_outputs, const std::map<ir::TensorId, float>& i8_scales) {
  const size_t nt = g.tensors().size();
  std::map<ir::TensorId, ir::Shape> stored;  // graph tensor -> shape the chip stores it in
  auto note = [&](ir::TensorId t, const std::vector<int64_t>& ys) {
    if (t == ir::kNoTensor || static_cast<size_t>(t) >= nt || stored.count(t)) return;
    stored[t] = ys.empty() ? g.tensor(t).shape : ys;
  };
  for (const compiler::LoweredLayer& L : lm.layers) note(L.y, L.y_shape);
  for (const compiler::LoweredEltwise& E : lm.eltwise) note(E.y, E.y_shape);
  for (const compiler::LoweredGather& G : lm.gathers) note(G.y, {});
  for (const compiler::LoweredLane& Ln : lm.lanes) note(Ln.y, Ln.y_shape);
  for (ir::TensorId t : g.inputs()) stored.erase(t);
  std::map<ir::TensorId, std::vector<double>> out;
  for (const auto& [t, ys] : stored) {
    const ir::Tensor& gt = g.tensor(t);
    if (!ir::dtype_is_float(gt.dtype)) continue;
    const auto sc = i8_scales.find(t);
    compiler::ChipStored cs;
    try {
      cs = compiler::chip_stored(p, gt.name, sim_outputs, sc == i8_scales.end() ? 1.0 : sc->second);
    } catch (const InputError&) {
      continue;  // not listed by the program (compiled without keep_intermediates), or not a float / i8 type
    }
    if (cs.dtype == DType::I8 && sc == i8_scales.end()) continue;  // i8 without a scale: left out
    std::vector<double> v = std::move(cs.v);
    const ir::Shape& s = gt.shape;
    const auto px = lm.pixel_packed.find(t);
    if (px != lm.pixel_packed.end()) {
      // Several pixels a stored row [N, H, J, blocks * C] (LoweredModel::PixelLayout): pixel (h, w)
      // read from the first (row k, block b) holding it.
      const compiler::LoweredModel::PixelLayout& pl = px->second;
      const int64_t C = s.at(1), H = s.at(2), W = s.at(3), B = pl.blocks;
      if (ys.size() != 4 || ys[0] != s[0] || ys[1] != H || ys[3] != B * C ||
          static_cast<int64_t>(v.size()) != ys[0] * H * ys[2] * B * C)
        continue;
      const int64_t J = ys[2];
      std::vector<int64_t> at(static_cast<size_t>(W), -1);  // column w -> k * B + b
      for (int64_t w = 0; w < W; ++w)
        for (int64_t b = 0; b < B && at[static_cast<size_t>(w)] < 0; ++b) {
          const int64_t num = w + pl.pad - b * pl.step;
          if (num >= 0 && num % pl.stride == 0 && num / pl.stride < J) at[static_cast<size_t>(w)] = num / pl.stride * B + b;
        }
      if (std::find(at.begin(), at.end(), -1) != at.end()) continue;
      std::vector<double> g2(static_cast<size_t>(ir::num_elements(s)));
      for (int64_t k = 0; k < static_cast<int64_t>(g2.size()); ++k) {
        const int64_t n = k / (C * H * W), c = k / (H * W) % C, h = k / W % H, w = k % W;
        g2[static_cast<size_t>(k)] = v[static_cast<size_t>(((n * H + h) * J * B + at[static_cast<size_t>(w)]) * C + c)];
      }
      out.emplace(t, std::move(g2));
      continue;
    }
    const auto lay = lm.layouts.find(t);
    if (lay != lm.layouts.end()) {
      // Stored in another layout (LoweredModel::layouts: paired heads): graph element i is chip element map[i].
      const std::vector<int64_t>& map = lay->second;
      if (static_cast<int64_t>(map.size()) != ir::num_elements(s))
        throw std::logic_error(fmt::format("layout of '{}': {} entries for {} elements", gt.name, map.size(),
                                           ir::num_elements(s)));
      std::vector<double> g2(map.size());
      for (size_t i = 0; i < map.size(); ++i) {
        if (map[i] < 0 || static_cast<size_t>(map[i]) >= v.size())
          throw std::logic_error(fmt::format("layout of '{}': element {} at {} of {}", gt.name, i, map[i], v.size()));
        g2[i] = v[static_cast<size_t>(map[i])];
      }
      out.emplace(t, std::move(g2));
      continue;
    }
    if (static_cast<int64_t>(v.size()) != ir::num_elements(s)) continue;
    // Conv activations: graph [N, C, H, W] stored [N, H, W, C]; a 1-D conv's [N, C, W] stored
    // [N, 1, W, C] (passes/lower_conv.h).
    // (C == H == W makes both shapes equal: the layout is then known from nhwc_tensors.)
    const bool listed = lm.nhwc_tensors.count(t) > 0;
    const bool nhwc4 = s.size() == 4 && (ys != s || listed) && ys == ir::Shape{s[0], s[2], s[3], s[1]};
    const bool nhwc3 = s.size() == 3 && (ys == ir::Shape{s[0], 1, s[2], s[1]} || ys == ir::Shape{s[0], s[2], 1, s[1]});
    if (nhwc4 || nhwc3) {
      const int64_t C = s[1], HW = nhwc4 ? s[2] * s[3] : s[2];
      std::vector<double> g2(v.size());
      for (int64_t k = 0; k < static_cast<int64_t>(v.size()); ++k) {
        const int64_t n = k / (C * HW), c = k / HW % C, q = k % HW;
        g2[static_cast<size_t>(k)] = v[static_cast<size_t>((n * HW + q) * C + c)];
      }
      v = std::move(g2);
    }
    out.emplace(t, std::move(v));
  }
  return out;
}

bool StepCheck::ok() const {
  return std::all_of(steps.begin(), steps.end(), [](const StepVerdict& s) { return s.ok(); });
}

const StepVerdict* StepCheck::worst() const {
  const StepVerdict* w = nullptr;
  for (const StepVerdict& s : steps) {
    if (!w) { w = &s; continue; }
    const bool sf = !s.ok(), wf = !w->ok();
    if (sf != wf ? sf : s.worst_ratio > w->worst_ratio) w = &s;
  }
  return w;
}

StepCheck verify_steps(const ir::Graph& g, const std::vector<Value>& inputs,
                       const std::map<ir::TensorId, std::vector<double>>& chip,
                       const std::map<ir::TensorId, float>& quantized,
                       const std::map<std::string, double>& chained_extra) {
  check_run_inputs(g, inputs);
  const size_t nt = g.tensors().size();
  auto f16_type = [](ir::DType t) { return t == ir::DType::F32 ? ir::DType::F16 : t; };
  std::vector<Value> vals(nt), errs(nt), chipv(nt);
  std::vector<char> on_chip(nt, 0);
  auto zeros = [](const ir::Shape& s) {
    return Value::floats(s, std::vector<float>(static_cast<size_t>(ir::num_elements(s)), 0.f));
  };
  // Weights the chip stores f16 (MatMul/Gemm B, Conv W); every other constant stays f32 on the chip.
  std::vector<char> weight(nt, 0);
  for (const ir::Op& op : g.ops())
    if ((op.kind == ir::OpKind::MatMul || op.kind == ir::OpKind::Gemm || op.kind == ir::OpKind::Conv) &&
        op.inputs.size() > 1 && op.inputs[1] != ir::kNoTensor)
      weight[static_cast<size_t>(op.inputs[1])] = 1;
  for (size_t k = 0; k < nt; ++k) {
    const ir::Tensor& t = g.tensors()[k];
    if (!t.is_const) continue;
    vals[k] = Value::from_constant(t);
    if (weight[k] && t.dtype == ir::DType::F32)
      for (float& f : vals[k].f) f = ir::round_f16(f);
    errs[k] = zeros(t.shape);
  }
  for (size_t k = 0; k < g.inputs().size(); ++k) {
    const ir::TensorId t = g.inputs()[k];
    vals[t] = inputs[k];
    if (vals[t].dtype == ir::DType::F32) {
      vals[t].dtype = ir::DType::F16;
      for (float& f : vals[t].f) f = ir::round_f16(f);
    }
    errs[t] = zeros(vals[t].shape);
  }
  for (const auto& [t, v] : chip) {
    const ir::Tensor& gt = g.tensor(t);
    std::vector<float> f(v.begin(), v.end());
    chipv[t] = Value::floats(gt.shape, std::move(f), f16_type(gt.dtype));
    on_chip[t] = 1;
  }
  StepCheck res;
  res.ops = static_cast<int64_t>(g.ops().size());
  std::vector<const Value*> vin, ein;
  std::vector<Value> zero_errs(nt);
  std::vector<Value> widened;  // chained inputs' bounds plus chained_extra (reserved per op: stable pointers)
  for (const ir::Op& op : g.ops()) {
    vin.clear();
    ein.clear();
    widened.clear();
    widened.reserve(op.inputs.size());
    const auto extra = chained_extra.find(op.name);
    bool all_stored = true;  // every float activation input comes from the chip (or is a constant)
    for (ir::TensorId t : op.inputs) {
      if (t == ir::kNoTensor) {
        vin.push_back(nullptr);
        ein.push_back(nullptr);
      } else if (on_chip[t]) {
        if (zero_errs[t].shape != chipv[t].shape || zero_errs[t].f.empty()) zero_errs[t] = zeros(chipv[t].shape);
        vin.push_back(&chipv[t]);
        ein.push_back(&zero_errs[t]);
      } else {
        const ir::Tensor& it = g.tensor(t);
        const bool is_in = std::find(g.inputs().begin(), g.inputs().end(), t) != g.inputs().end();
        const bool chained = !it.is_const && !is_in && ir::dtype_is_float(it.dtype);
        if (chained) all_stored = false;
        vin.push_back(&vals[t]);
        if (chained && extra != chained_extra.end()) {
          widened.push_back(errs[t]);
          for (float& f : widened.back().f)  // rounded up: the float sum never understates the bound
            f = std::nextafter(static_cast<float>(f + extra->second), std::numeric_limits<float>::infinity());
          ein.push_back(&widened.back());
        } else {
          ein.push_back(&errs[t]);
        }
      }
    }
    std::vector<ir::TensorType> types;
    for (ir::TensorId t : op.outputs)  // an output quantized on chip: its f32 value before the rounding to i8
      types.push_back({quantized.count(t) ? ir::DType::F32 : f16_type(g.tensor(t).dtype), g.tensor(t).shape});
    std::vector<Value> outs = eval_op_typed(op, types, vin);
    std::vector<Value> E = op_error_bound(op, vin, ein, outs);
    for (size_t k = 0; k < op.outputs.size(); ++k) {
      const ir::TensorId t = op.outputs[k];
      if (on_chip[t]) {
        StepVerdict sv;
        sv.op = op.name;
        sv.kind = std::string(ir::op_kind_name(op.kind));
        sv.tensor = g.tensor(t).name;
        sv.exact = is_view(op.kind) && all_stored;
        sv.elements = outs[k].elements();
        const int kint = internal_f16_roundings(op.kind);
        const auto qs = quantized.find(t);
        const double s = qs == quantized.end() ? 0.0 : static_cast<double>(qs->second);
        if (s > 0) sv.kind += ", quantized to i8";
        for (int64_t j = 0; j < sv.elements; ++j) {
          const double y = outs[k].f[static_cast<size_t>(j)], c = chipv[t].f[static_cast<size_t>(j)];
          // NaN where the reference also gives NaN (sqrt of a negative input, 0/0) is the same value.
          const double err = c == y || (std::isnan(c) && std::isnan(y)) ? 0.0 : std::fabs(c - y);
          const double e2 = 2.0 * E[k].f[static_cast<size_t>(j)];
          const double b = sv.exact ? 0.0
                           : s > 0  ? e2 + s / 2 + std::max(0.0, std::fabs(y) + e2 - 127 * s)
                                    : e2 + kint * kU16 * std::fabs(y);
          if (!(err <= sv.max_err) && !std::isnan(sv.max_err)) sv.max_err = err;
          if (err == 0) continue;
          if (!std::isfinite(b)) {
            ++sv.unbounded;
            continue;
          }
          if (!(err <= b)) ++sv.outside;
          const double ratio = b > 0 ? err / b : std::numeric_limits<double>::infinity();
          if (!(ratio <= sv.worst_ratio)) {
            sv.worst_ratio = ratio;
            sv.err_at_worst = err;
            sv.bound_at_worst = b;
          }
        }
        res.steps.push_back(std::move(sv));
      }
      vals[t] = std::move(outs[k]);
      errs[t] = std::move(E[k]);
    }
  }
  return res;
}

}  // namespace lpu::ref
