// int8 quantization plan (see quantize.h): which dense layers run int8, their quantized weights and
// epilogue row constants, and the activation scales calibrated with the reference interpreter.
#include "compiler/passes/quantize.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <set>

#include "isa/chip_config.h"

namespace lpu::compiler {

namespace {

float scale_of(double maxabs) { return maxabs > 0 ? static_cast<float>(maxabs / 127.0) : 1.0f; }

// Max |value| of the tensors in `want` over all calibration sets (reference interpreter, fp32).
std::map<ir::TensorId, double> calibrate(const ir::Graph& g, const std::vector<std::vector<ref::Value>>& sets,
                                         const std::set<ir::TensorId>& want) {
  std::map<ir::TensorId, double> mx;
  for (ir::TensorId t : want) mx[t] = 0;
  for (size_t s = 0; s < sets.size(); ++s) {
    const std::vector<ref::Value>& inputs = sets[s];
    ref::check_run_inputs(g, inputs);
    std::vector<ref::Value> vals(g.tensors().size());
    for (size_t k = 0; k < g.inputs().size(); ++k) vals[static_cast<size_t>(g.inputs()[k])] = inputs[k];
    for (size_t k = 0; k < g.tensors().size(); ++k)
      if (g.tensors()[k].is_const) vals[k] = ref::Value::from_constant(g.tensors()[k]);
    std::vector<const ref::Value*> ins;
    for (const ir::Op& op : g.ops()) {
      ins.clear();
      for (ir::TensorId t : op.inputs) ins.push_back(t == ir::kNoTensor ? nullptr : &vals[static_cast<size_t>(t)]);
      std::vector<ref::Value> outs = ref::eval_op(g, op, ins);
      for (size_t k = 0; k < outs.size(); ++k) vals[static_cast<size_t>(op.outputs[k])] = std::move(outs[k]);
    }
    for (auto& [t, m] : mx) {
      const ref::Value& v = vals[static_cast<size_t>(t)];
      for (int64_t k = 0; k < v.elements(); ++k) m = std::max(m, std::fabs(static_cast<double>(v.as_float(k))));
    }
  }
  return mx;
}

}  // namespace

int8_t quantize_i8(double v, float scale) {
  const double r = std::nearbyint(v / static_cast<double>(scale));  // default rounding: nearest even
  return static_cast<int8_t>(std::clamp(r, -127.0, 127.0));
}

ref::Value quantize_host_input(const ref::Value& v, float scale) {
  std::vector<int64_t> q(static_cast<size_t>(v.elements()));
  for (size_t k = 0; k < q.size(); ++k) q[k] = quantize_i8(v.as_float(static_cast<int64_t>(k)), scale);
  return ref::Value::ints(v.shape, std::move(q), ir::DType::I8);
}

QuantPlan plan_int8(const ir::Graph& g, const LoweredModel& lm, const std::vector<std::vector<ref::Value>>& calibration,
                    const Int8Options& opt) {
  if (calibration.empty() && !opt.timing_only)
    throw InputError(fmt::format("model '{}': --precision int8 needs calibration data (--calibrate DATASET_DIR..., "
                                 "ONNX test-data directories with input_N.pb) to choose activation scales",
                                 g.name));
  const auto ntensors = static_cast<ir::TensorId>(g.tensors().size());
  const size_t nl = lm.layers.size();
  auto is_output = [&](ir::TensorId t) { return std::find(lm.outputs.begin(), lm.outputs.end(), t) != lm.outputs.end(); };
  // Layers that could run int8 at all.
  std::vector<char> in_s(nl, 0);
  std::map<ir::TensorId, int> writers;
  for (const LoweredLayer& L : lm.layers) writers[L.y]++;
  for (size_t i = 0; i < nl; ++i) {
    const LoweredLayer& L = lm.layers[i];
    in_s[i] = L.b == ir::kNoTensor && L.xsegs.empty() && L.x_rows.empty() && L.y_rows.empty() && L.k_blocks == 0 &&
              !L.w.empty() && L.x < ntensors && L.y < ntensors && writers[L.y] == 1;
  }
  if (opt.layer_filter) {
    std::map<std::string, const ir::Op*> by_name;
    for (const ir::Op& op : g.ops()) by_name[op.name] = &op;
    for (size_t i = 0; i < nl; ++i) {
      if (!in_s[i]) continue;
      auto it = by_name.find(lm.layers[i].name);
      const ir::Op* op = it == by_name.end() ? nullptr : it->second;
      const bool has_w = op && op->inputs.size() > 1 && op->inputs[1] != ir::kNoTensor && g.tensor(op->inputs[1]).is_const;
      in_s[i] = has_w && opt.layer_filter(op->name, g.tensor(op->inputs[1]).name);
    }
  }
  // Elementwise steps that may quantize their output on chip (one writer per tensor).
  std::map<ir::TensorId, int> elt_writers;
  if (opt.onchip_quantize)
    for (const LoweredEltwise& E : lm.eltwise) elt_writers[E.y]++;
  std::set<ir::TensorId> host_inputs;  // graph inputs the host could quantize
  for (const LoweredInput& in : lm.inputs)
    if (in.host_map.empty() && in.alias < ntensors) host_inputs.insert(in.alias);
  // A tensor may be i8 iff every reader is an int8 layer reading it as X, it is not a graph output,
  // and its producer is a host-quantized input or an int8 layer. Shrink the int8 set to a fixed point.
  auto i8_ok = [&](ir::TensorId t) {
    if (is_output(t)) return false;
    bool produced = host_inputs.count(t) > 0 || (t < ntensors && elt_writers.count(t) && elt_writers.at(t) == 1 &&
                                                 !writers.count(t));
    for (const LoweredGather& G : lm.gathers) produced = produced && G.y != t;
    for (const LoweredLane& Ln : lm.lanes) produced = produced && Ln.y != t;
    for (size_t i = 0; i < nl; ++i) {
      const LoweredLayer& L = lm.layers[i];
      if (L.y == t) produced = produced || in_s[i];
      bool reads = L.x == t || L.b == t;
      for (const LoweredLayer::XSegment& xs : L.xsegs) reads = reads || xs.x == t;
      if (reads && !(in_s[i] && L.x == t)) return false;
    }
    for (const LoweredEltwise& E : lm.eltwise)
      for (const EltOperand& o : E.operands)
        if (o.act == t) return false;
    for (const LoweredGather& G : lm.gathers)
      if (G.x == t) return false;
    for (const LoweredLane& Ln : lm.lanes)
      if (Ln.x == t) return false;
    return produced;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < nl; ++i)
      if (in_s[i] && !i8_ok(lm.layers[i].x)) {
        in_s[i] = 0;
        changed = true;
      }
  }
  QuantPlan plan;
  plan.layers.resize(nl);
  std::set<ir::TensorId> i8;
  for (size_t i = 0; i < nl; ++i)
    if (in_s[i]) {
      i8.insert(lm.layers[i].x);
      if (i8_ok(lm.layers[i].y)) i8.insert(lm.layers[i].y);
    }
  if (i8.empty() && opt.allow_no_int8) {
    plan.timing_only = opt.timing_only;
    return plan;
  }
  if (i8.empty())
    throw InputError(fmt::format("model '{}': --precision int8 found no dense layer that can run int8 (a MatMul/Gemm "
                                 "with a constant weight reading a graph input or another int8 layer's output "
                                 "directly); compile it with fp16", g.name));
  if (opt.timing_only) {
    for (ir::TensorId t : i8) plan.i8_tensors[t] = 1.0f;
  } else {
    const std::map<ir::TensorId, double> mx = calibrate(g, calibration, i8);
    for (ir::TensorId t : i8) plan.i8_tensors[t] = scale_of(mx.at(t));
  }
  plan.timing_only = opt.timing_only;
  for (const LoweredEltwise& E : lm.eltwise) plan.quantize_steps += plan.i8_tensors.count(E.y) ? 1 : 0;
  for (const LoweredInput& in : lm.inputs)
    if (plan.i8_tensors.count(in.alias)) plan.i8_inputs[g.tensor(in.id).name] = plan.i8_tensors.at(in.alias);
  for (size_t i = 0; i < nl; ++i) {
    if (!in_s[i]) continue;
    const LoweredLayer& L = lm.layers[i];
    LayerQuant& q = plan.layers[i];
    q.int8 = true;
    q.x_scale = plan.i8_tensors.at(L.x);
    q.w_scale.resize(static_cast<size_t>(L.N));
    q.wq.resize(L.w.size());
    for (int64_t n = 0; n < L.N; ++n) {
      double m = 0;
      for (int64_t k = 0; k < L.K; ++k) m = std::max(m, std::fabs(static_cast<double>(L.w[static_cast<size_t>(k * L.N + n)])));
      const float s = scale_of(m);
      q.w_scale[static_cast<size_t>(n)] = s;
      for (int64_t k = 0; k < L.K; ++k)
        q.wq[static_cast<size_t>(k * L.N + n)] = quantize_i8(L.w[static_cast<size_t>(k * L.N + n)], s);
    }
    q.y_int8 = plan.i8_tensors.count(L.y) > 0;
    q.y_scale = q.y_int8 ? plan.i8_tensors.at(L.y) : 1.0f;
    q.epi_scale.resize(static_cast<size_t>(L.N));
    for (size_t n = 0; n < q.epi_scale.size(); ++n)
      q.epi_scale[n] = static_cast<float>(static_cast<double>(q.x_scale) * q.w_scale[n] / q.y_scale);
    if (!L.bias.empty()) {
      q.epi_bias.resize(static_cast<size_t>(L.N));
      for (size_t n = 0; n < q.epi_bias.size(); ++n)
        q.epi_bias[n] = static_cast<float>(static_cast<double>(L.bias[n]) / q.y_scale);
    }
    plan.int8_layers++;
  }
  return plan;
}

}  // namespace lpu::compiler
