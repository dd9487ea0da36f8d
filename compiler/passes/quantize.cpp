// int8 quantization plan (see quantize.h): which dense layers run int8, their quantized weights and
// epilogue row constants, and the activation scales calibrated with the reference interpreter.
#include "compiler/passes/quantize.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <set>
#include <stdexcept>

#include "compiler/passes/lower_conv.h"
#include "isa/chip_config.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

float scale_of(double maxabs) { return maxabs > 0 ? static_cast<float>(maxabs / 127.0) : 1.0f; }

// Max |value| of the tensors in `want` over all calibration sets (reference interpreter, fp32).
// Max |value| of each `want` tensor over the calibration sets; with `centred_max`, also each
// `centred` tensor's max |x - mean of its row| (rows of the last axis: a LayerNorm fold's copy).
std::map<ir::TensorId, double> calibrate(const ir::Graph& g, const std::vector<std::vector<ref::Value>>& sets,
                                         const std::set<ir::TensorId>& want, const std::set<ir::TensorId>& centred = {},
                                         std::map<ir::TensorId, double>* centred_max = nullptr) {
  std::map<ir::TensorId, double> mx;
  for (ir::TensorId t : want) mx[t] = 0;
  for (ir::TensorId t : centred) (*centred_max)[t] = 0;
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
    for (ir::TensorId t : centred) {
      const ref::Value& v = vals[static_cast<size_t>(t)];
      const ir::Shape& sh = g.tensor(t).shape;
      const int64_t K = sh.empty() ? 1 : sh.back();
      double& m = (*centred_max)[t];
      for (int64_t r = 0; r * K < v.elements(); ++r) {
        double mean = 0;
        for (int64_t k = 0; k < K; ++k) mean += static_cast<double>(v.as_float(r * K + k));
        mean /= static_cast<double>(K);
        for (int64_t k = 0; k < K; ++k) m = std::max(m, std::fabs(static_cast<double>(v.as_float(r * K + k)) - mean));
      }
    }
  }
  return mx;
}

}  // namespace

void fold_norm_weights(const LoweredLayer& L, const LoweredModel::Norm& n, std::vector<float>* w,
                       std::vector<float>* bias) {
  if (static_cast<int64_t>(n.scale.size()) != L.K || n.bias.size() != n.scale.size() ||
      L.w.size() != static_cast<size_t>(L.K * L.N))
    throw std::logic_error("fold_norm_weights: layer '" + L.name + "' does not read this LayerNorm's K values");
  w->resize(L.w.size());
  bias->assign(static_cast<size_t>(L.N), 0.f);
  for (int64_t nn = 0; nn < L.N; ++nn) {
    double b = L.bias.empty() ? 0.0 : static_cast<double>(L.bias[static_cast<size_t>(nn)]);
    for (int64_t k = 0; k < L.K; ++k) {
      const size_t i = static_cast<size_t>(k * L.N + nn);
      (*w)[i] = n.scale[static_cast<size_t>(k)] * L.w[i];
      b += static_cast<double>(n.bias[static_cast<size_t>(k)]) * L.w[i];
    }
    (*bias)[static_cast<size_t>(nn)] = static_cast<float>(b);
  }
}

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
  auto is_float = [&](ir::TensorId t) {
    const ir::DType d = lm.tensor(g, t).dtype;
    return d == ir::DType::F16 || d == ir::DType::F32;
  };
  // The graph tensor whose calibrated values a tensor has: itself, or for a lowering tensor written
  // by a step that copies values (a `sel` whose condition constant is all non-zero, e.g. attention's
  // pad-lane clearing; a float Cast), its source's (kNoTensor: none).
  auto calib_src = [&](ir::TensorId t) {
    for (int depth = 0; depth < 16 && t != ir::kNoTensor; ++depth) {
      if (t < ntensors) return t;
      const auto re = lm.rearranged.find(t);  // a packed head merge: X's values rearranged, and zeros
      if (re != lm.rearranged.end()) {
        t = re->second;
        continue;
      }
      const LoweredEltwise* P = nullptr;
      for (const LoweredEltwise& E : lm.eltwise)
        if (E.y == t) P = &E;
      if (!P) return ir::kNoTensor;
      const std::vector<EltOperand>& o = P->operands;
      const bool cast = !P->has_op && o.size() == 1;
      bool sel = P->has_op && P->vxm_op == static_cast<int>(Opcode::Select) && o.size() == 3 &&
                 o[0].act == ir::kNoTensor && !o[0].values.empty();
      for (size_t k = 0; sel && k < o[0].values.size(); ++k) sel = o[0].values[k] != 0.f;
      const EltOperand* a = cast ? &o[0] : sel ? &o[1] : nullptr;
      if (!a || a->act == ir::kNoTensor || !a->row_map.empty() || a->lane_bcast) return ir::kNoTensor;
      t = a->act;
    }
    return ir::kNoTensor;
  };
  // An exact identity copy (attention's materialized views and row Concats, lower_attention.cpp)
  // runs int8 only if its X is i8 anyway (then it is exact: weight 127, scale 1/127); it never gets
  // a quantized copy, which would add a quantization the model does not have.
  // Also an identity copy with a trailing ones column (weights 0, bias 1: attention's V|1,
  // lower_attention.h defer_softmax).
  auto is_identity = [](const LoweredLayer& L) {
    const bool ones = L.N == L.K + 1 && L.bias.size() == static_cast<size_t>(L.N) && L.bias.back() == 1.f &&
                      std::count(L.bias.begin(), L.bias.end(), 0.f) == L.K;
    if ((L.K != L.N && !ones) || L.relu || (!L.bias.empty() && !ones) ||
        L.w.size() != static_cast<size_t>(L.K * L.N))
      return false;
    for (int64_t k = 0; k < L.K; ++k)
      for (int64_t n = 0; n < L.N; ++n)
        if (L.w[static_cast<size_t>(k * L.N + n)] != (k == n ? 1.f : 0.f)) return false;
    return true;
  };
  // Layers that could run int8 at all (X read as stored, through a row map or as column segments of
  // one tensor, constant weights, X calibratable).
  std::vector<char> in_s(nl, 0), ident(nl, 0);
  std::map<ir::TensorId, int> writers;
  for (const LoweredLayer& L : lm.layers) writers[L.y]++;
  for (size_t i = 0; i < nl; ++i) ident[i] = is_identity(lm.layers[i]);
  std::vector<char> live(nl, 0);  // scheduled (a projection folded into per-head layers is not)
  for (const LoweredStep& st : lm.steps)
    if (is_layer(st)) live[st.index] = 1;
  for (size_t i = 0; i < nl; ++i) {
    const LoweredLayer& L = lm.layers[i];
    if (!live[i]) continue;
    bool one_x = true;  // a view's column segments all of X (attention's head merge before o_proj)
    for (const LoweredLayer::XSegment& xs : L.xsegs) one_x = one_x && xs.x == L.x;
    in_s[i] = L.b == ir::kNoTensor && one_x && (L.k_blocks == 0 || !L.tap_rows.empty()) && !L.w.empty() && calib_src(L.x) != ir::kNoTensor &&
              is_float(L.x);
  }
  if (opt.layer_filter) {
    std::map<std::string, const ir::Op*> by_name;
    for (const ir::Op& op : g.ops()) by_name[op.name] = &op;
    for (size_t i = 0; i < nl; ++i) {
      if (!in_s[i]) continue;
      // A layer named after no IR op with a constant weight (e.g. attention's per-head projections,
      // named after the view op they fold into, lower_attention.cpp) does not pass the filter.
      // A conv producer's edge parts (OP.packN, lower_conv.h "Packed taps") and a pixel-unpacking
      // conv's parts (OP.pxN, "Pixel packing") are OP's.
      const std::string nm = conv_part_op(lm.layers[i].name);
      auto it = by_name.find(nm);
      const ir::Op* op = it == by_name.end() ? nullptr : it->second;
      const bool has_w = op && op->inputs.size() > 1 && op->inputs[1] != ir::kNoTensor && g.tensor(op->inputs[1]).is_const;
      in_s[i] = has_w && opt.layer_filter(op->name, g.tensor(op->inputs[1]).name);
    }
  }
  // Elementwise steps that may quantize their output on chip (one writer per tensor).
  std::map<ir::TensorId, int> elt_writers;
  if (opt.onchip_quantize)
    for (const LoweredEltwise& E : lm.eltwise) elt_writers[E.y]++;
  // Graph inputs the host could quantize, also those it lays out for a conv (host_map: NHWC or a
  // stem conv's im2col rows; quantizing each value commutes with the layout, padding stays 0).
  std::set<ir::TensorId> host_inputs;
  for (const LoweredInput& in : lm.inputs)
    if (in.alias < ntensors && in.lookup_rows == 0) host_inputs.insert(in.alias);
  // A tensor may be i8 iff it is a graph tensor (it can be calibrated) that is not a graph output,
  // every reader is an int8 layer reading it as X, and its producer is a host-quantized input, an
  // elementwise step that quantizes on chip, or int8 layers only (every writer).
  // Every writer of t an int8 layer (a fused residual written so may be read i8).
  auto int8_layers_write = [&](ir::TensorId t) {  // some layer writes t, and every one is int8
    if (!writers.count(t)) return false;
    bool all = true;
    for (size_t i = 0; i < nl; ++i) all = all && (lm.layers[i].y != t || in_s[i]);
    return all;
  };
  auto layer_written = [&](ir::TensorId t) {
    bool all = int8_layers_write(t);
    for (const LoweredEltwise& E : lm.eltwise) all = all && E.y != t;
    return all;
  };
  // An SXM lane move that is t's only writer, from a tensor x that only one elementwise step writes
  // and only that move reads (a MaxPool on row pairs, passes/lower_conv.h "Row pairs"): the move
  // carries bytes, so t may be i8 when x is stored i8 with t's scale (x then quantizes on chip).
  auto move_source = [&](ir::TensorId t) -> ir::TensorId {
    const LoweredLane* mv = nullptr;
    int n = 0;
    for (const LoweredStep& st : lm.steps)
      for (ir::TensorId w : step_writes(lm, st))
        if (w == t) {
          ++n;
          if (st.lane && lm.lanes[st.index].mode == LoweredLane::Mode::Move) mv = &lm.lanes[st.index];
        }
    if (n != 1 || !mv || lm.is_output(mv->x) || !elt_writers.count(mv->x) || elt_writers.at(mv->x) != 1) return ir::kNoTensor;
    for (const LoweredStep& st : lm.steps) {
      const bool self = st.lane && &lm.lanes[st.index] == mv;
      for (ir::TensorId r : step_reads(lm, st))
        if (r == mv->x && !self) return ir::kNoTensor;
      for (ir::TensorId w : step_writes(lm, st))
        if (w == mv->x && !is_eltwise(st)) return ir::kNoTensor;
    }
    return mv->x;
  };
  // Every scheduled step reading t is an int8 layer reading it as its X, or (residual_ok) as its
  // fused residual when only int8 layers write t (Int8Options::i8_residuals); elementwise, gather
  // and lane steps, activation weights and other residuals need the float values.
  auto int8_readers_only = [&](ir::TensorId t, bool residual_ok) {
    for (const LoweredStep& st : lm.steps) {
      const std::vector<ir::TensorId> r = step_reads(lm, st);
      if (std::find(r.begin(), r.end(), t) == r.end()) continue;
      if (!st.dense || st.gather || st.lane) return false;
      const LoweredLayer& L = lm.layers[st.index];
      if (!in_s[st.index] || L.b == t) return false;
      if (L.residual == t) {
        if (!residual_ok || !opt.i8_residuals || L.x == t || !layer_written(t)) return false;
      } else if (L.x != t) {
        return false;
      }
    }
    return true;
  };
  auto i8_ok = [&](ir::TensorId t) {
    // A packed head merge keeps its f16 values and gets a quantized copy (fused into its pass): the
    // int8 check bounds on-chip quantization of value copies only (int8_step_check.h).
    if (lm.is_output(t) || calib_src(t) == ir::kNoTensor || lm.rearranged.count(t)) return false;
    bool produced = host_inputs.count(t) > 0 || (elt_writers.count(t) && elt_writers.at(t) == 1 && !writers.count(t));
    produced = produced || int8_layers_write(t);
    for (const LoweredGather& G : lm.gathers) produced = produced && G.y != t;
    const bool moved = move_source(t) != ir::kNoTensor;
    produced = produced || moved;
    for (const LoweredLane& Ln : lm.lanes) produced = produced && (Ln.y != t || moved);
    return produced && int8_readers_only(t, true);
  };
  // With onchip_quantize, an X that cannot be i8 itself gets a quantized copy if the shape it is
  // stored in is known here (empty: not copyable, the layer stays fp16).
  auto stored_shape = [&](ir::TensorId t) -> std::vector<int64_t> {
    if (!opt.onchip_quantize) return {};
    for (const LoweredInput& in : lm.inputs)
      if (in.alias == t) return in.lookup_rows > 0 ? std::vector<int64_t>{} : in.shape;
    for (const LoweredLayer& L : lm.layers)
      if (L.y == t) return L.y_shape.empty() ? lm.tensor(g, t).shape : L.y_shape;
    for (const LoweredEltwise& E : lm.eltwise)
      if (E.y == t) return E.y_shape.empty() ? lm.tensor(g, t).shape : E.y_shape;
    for (const LoweredLane& Ln : lm.lanes)
      if (Ln.y == t) return Ln.y_shape;
    for (const LoweredGather& G : lm.gathers)  // an embedding lookup: [rows, table_cols]
      if (G.y == t) return G.table.empty() ? std::vector<int64_t>{} : lm.tensor(g, t).shape;
    return {};
  };
  // An identity copy runs int8 only while its X is i8 anyway, read as X by a product that is not a
  // copy, and every step reading its output is an int8 product reading it as X (a graph output
  // with no reader is fine: the int8 check bounds it as the layer it is). Else X would be
  // quantized for the copy alone: a quantization the model does not have, which no check bounds
  // (a graph input or an elementwise result read through a materialized view by a LayerNorm,
  // Softmax or reduction, or returned as a graph output; found by
  // tests/compiler/test_random_graphs.cpp at int8).
  auto read_by_int8_product = [&](ir::TensorId t) {
    for (size_t j = 0; j < nl; ++j)
      if (in_s[j] && !ident[j] && lm.layers[j].x == t) return true;
    return false;
  };
  auto copy_stays_fp16 = [&](size_t i) {
    return ident[i] && (!read_by_int8_product(lm.layers[i].x) || !int8_readers_only(lm.layers[i].y, false));
  };
  // X neither i8 nor copyable (an identity copy never gets a quantized copy of its X).
  auto x_unusable = [&](size_t i) {
    return !i8_ok(lm.layers[i].x) && (ident[i] || stored_shape(lm.layers[i].x).empty());
  };
  // Shrink the int8 set to a fixed point: a layer whose X can be neither i8 nor copied stays fp16
  // (and then reads X as an fp16 reader, which may stop other tensors from being i8).
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < nl; ++i)
      if (in_s[i] && (x_unusable(i) || copy_stays_fp16(i))) {
        in_s[i] = 0;
        changed = true;
      }
  }
  // LayerNorm folds (quantize.h): LayerNorm output y -> its index in lm.norms, where every int8
  // layer reading y as X qualifies and something else reads y too (the `.norm` step stays).
  std::map<ir::TensorId, int> fold_of;
  for (size_t ni = 0; opt.fold_norms && opt.onchip_quantize && ni < lm.norms.size(); ++ni) {
    const LoweredModel::Norm& nm = lm.norms[ni];
    if (!opt.timing_only && calib_src(nm.x) == ir::kNoTensor) continue;
    bool any = false, ok = true, other = lm.is_output(nm.y);
    for (const LoweredStep& st : lm.steps) {
      const std::vector<ir::TensorId> r = step_reads(lm, st);
      const auto n_reads = std::count(r.begin(), r.end(), nm.y);
      if (n_reads == 0) continue;
      const bool dense = is_layer(st);
      if (!dense || lm.layers[st.index].x != nm.y || !in_s[st.index] || n_reads > 1) {
        other = true;
        if (dense && lm.layers[st.index].x == nm.y) ok = false;  // an fp16 reader of y as X, or y twice
        continue;
      }
      const LoweredLayer& L = lm.layers[st.index];
      any = true;
      ok = ok && L.x_rows.empty() && L.y_rows.empty() && L.xsegs.empty() && L.k_blocks == 0 && L.tap_rows.empty() &&
           L.b == ir::kNoTensor && !L.copy && L.K == static_cast<int64_t>(nm.scale.size()) &&
           L.w.size() == static_cast<size_t>(L.K * L.N);
    }
    if (any && ok && other && !i8_ok(nm.y)) fold_of[nm.y] = static_cast<int>(ni);
  }
  QuantPlan plan;
  plan.layers.resize(nl);
  std::set<ir::TensorId> i8, want, want_centred;
  std::map<ir::TensorId, size_t> copy_of;  // src -> index in plan.copies
  std::set<std::string> names;
  for (const ir::Tensor& t : g.tensors()) names.insert(t.name);
  for (const ir::Tensor& t : lm.extra) names.insert(t.name);
  for (size_t i = 0; i < nl; ++i) {
    if (!in_s[i]) continue;
    const LoweredLayer& L = lm.layers[i];
    if (i8_ok(L.x)) {
      i8.insert(L.x);
    } else if (!copy_of.count(L.x)) {
      QuantCopy c;
      c.src = L.x;
      c.copy = ntensors + static_cast<ir::TensorId>(lm.extra.size() + plan.copies.size());
      const auto fo = fold_of.find(L.x);
      c.norm = fo == fold_of.end() ? -1 : fo->second;
      c.name = lm.tensor(g, L.x).name + (c.norm >= 0 ? ".centred.i8" : ".i8");
      while (names.count(c.name)) c.name += "_";
      names.insert(c.name);
      c.shape = stored_shape(L.x);
      copy_of[L.x] = plan.copies.size();
      plan.copies.push_back(std::move(c));
    }
    if (i8_ok(L.y)) i8.insert(L.y);
  }
  // i8 pools: a Max/Min chain step (a MaxPool, passes/lower_conv.cpp) whose output is i8 and whose
  // operands are all one tensor t (row maps allowed) that only int8 layers write, that nothing
  // else reads and that is not a graph output: t is stored i8 with the step's OUTPUT scale, so the
  // step runs on the i8 values (backend/elementwise_kernel.h same_i8_scale; quantizing with one
  // scale is monotonic and maps 0 to 0: the max of quantized values is the quantized max, and a
  // fused Relu commutes). t's values below -127 s saturate; only a fused Relu may follow them, which
  // sends both to 0. t needs no calibration of its own (its scale is the step's).
  // A lane move's i8 source (move_source) takes the moved tensor's scale.
  std::map<ir::TensorId, ir::TensorId> moved_from;  // x -> the move's output
  for (ir::TensorId t : std::set<ir::TensorId>(i8)) {
    const ir::TensorId x = move_source(t);
    if (x == ir::kNoTensor) continue;
    i8.insert(x);
    moved_from[x] = t;
  }
  std::map<ir::TensorId, ir::TensorId> pool_src;  // t -> the step's output
  for (const LoweredStep& ps : lm.steps) {
    if (ps.dense || ps.gather || ps.lane) continue;
    const LoweredEltwise& E = lm.eltwise[ps.index];
    if (!E.minmax_chain() || E.y2 != ir::kNoTensor || E.operands.empty() || !i8.count(E.y) ||
        E.operands[0].act == ir::kNoTensor)
      continue;
    const ir::TensorId t = E.operands[0].act;
    bool ok = !lm.is_output(t) && !host_inputs.count(t) && !i8.count(t) && !pool_src.count(t);
    for (const EltOperand& o : E.operands) ok = ok && o.act == t && !o.lane_bcast;
    int int8_writers = 0;  // scheduled steps only (a layer folded away reads and writes nothing)
    for (const LoweredStep& st : lm.steps) {
      if (&st != &ps)
        for (ir::TensorId r : step_reads(lm, st)) ok = ok && r != t;
      for (ir::TensorId w : step_writes(lm, st))
        if (w == t) {
          const bool int8_layer = is_layer(st) && in_s[st.index] &&
                                  lm.layers[st.index].residual == ir::kNoTensor;
          ok = ok && int8_layer;
          int8_writers += int8_layer ? 1 : 0;
        }
    }
    if (ok && int8_writers > 0) pool_src[t] = E.y;
  }
  for (ir::TensorId t : i8) want.insert(calib_src(t));
  for (const QuantCopy& c : plan.copies)
    (c.norm >= 0 ? want_centred : want).insert(calib_src(c.norm >= 0 ? lm.norms[static_cast<size_t>(c.norm)].x : c.src));
  if (want.empty() && want_centred.empty() && opt.allow_no_int8) {
    plan.timing_only = opt.timing_only;
    return plan;
  }
  if (want.empty() && want_centred.empty())
    throw InputError(fmt::format("model '{}': --precision int8 found no dense layer that can run int8 (a MatMul/Gemm "
                                 "with a constant weight reading a graph input or another int8 layer's output "
                                 "directly{}); compile it with fp16", g.name,
                                 opt.onchip_quantize ? ", or any float tensor not through a view" : ""));
  if (opt.timing_only) {
    for (ir::TensorId t : i8) plan.i8_tensors[t] = 1.0f;
    for (const QuantCopy& c : plan.copies) plan.i8_tensors[c.copy] = 1.0f;
  } else {
    std::map<ir::TensorId, double> cmx;
    const std::map<ir::TensorId, double> mx = calibrate(g, calibration, want, want_centred, &cmx);
    for (ir::TensorId t : i8) plan.i8_tensors[t] = scale_of(mx.at(calib_src(t)));
    for (const QuantCopy& c : plan.copies)
      plan.i8_tensors[c.copy] = c.norm >= 0 ? scale_of(cmx.at(calib_src(lm.norms[static_cast<size_t>(c.norm)].x)))
                                            : scale_of(mx.at(calib_src(c.src)));
  }
  for (const auto& [x, t] : moved_from) plan.i8_tensors[x] = plan.i8_tensors.at(t);
  for (const auto& [t, y] : pool_src) plan.i8_tensors[t] = plan.i8_tensors.at(y);
  plan.timing_only = opt.timing_only;
  plan.fuse_copies = opt.fuse_copies;
  for (const LoweredEltwise& E : lm.eltwise) plan.quantize_steps += plan.i8_tensors.count(E.y) ? 1 : 0;
  for (const LoweredInput& in : lm.inputs)
    if (plan.i8_tensors.count(in.alias)) plan.i8_inputs[g.tensor(in.id).name] = plan.i8_tensors.at(in.alias);
  for (size_t i = 0; i < nl; ++i) {
    if (!in_s[i]) continue;
    const LoweredLayer& L = lm.layers[i];
    LayerQuant& q = plan.layers[i];
    q.int8 = true;
    q.x_scale = copy_of.count(L.x) ? plan.i8_tensors.at(plan.copies[copy_of.at(L.x)].copy) : plan.i8_tensors.at(L.x);
    q.norm_fold = copy_of.count(L.x) ? plan.copies[copy_of.at(L.x)].norm : -1;
    std::vector<float> folded_w, folded_b;
    if (q.norm_fold >= 0) fold_norm_weights(L, lm.norms[static_cast<size_t>(q.norm_fold)], &folded_w, &folded_b);
    const std::vector<float>& W = q.norm_fold >= 0 ? folded_w : L.w;
    const std::vector<float>& bias = q.norm_fold >= 0 ? folded_b : L.bias;
    q.w_scale.resize(static_cast<size_t>(L.N));
    q.wq.resize(W.size());
    for (int64_t n = 0; n < L.N; ++n) {
      double m = 0;
      for (int64_t k = 0; k < L.K; ++k) m = std::max(m, std::fabs(static_cast<double>(W[static_cast<size_t>(k * L.N + n)])));
      const float s = scale_of(m);
      q.w_scale[static_cast<size_t>(n)] = s;
      for (int64_t k = 0; k < L.K; ++k)
        q.wq[static_cast<size_t>(k * L.N + n)] = quantize_i8(W[static_cast<size_t>(k * L.N + n)], s);
    }
    q.y_int8 = plan.i8_tensors.count(L.y) > 0;
    q.y_scale = q.y_int8 ? plan.i8_tensors.at(L.y) : 1.0f;
    // 1 / y_scale folded into the row constants, except after a fused f16 residual Add (the kernel
    // quantizes the f16 sum: backend/matmul_kernel.h MatmulSpec::residual); an i8 residual's
    // r_scale / y_scale is a third row.
    q.r_int8 = L.residual != ir::kNoTensor && plan.i8_tensors.count(L.residual) > 0;
    const double fold = L.residual == ir::kNoTensor || q.r_int8 ? q.y_scale : 1.0;
    if (q.r_int8)
      q.epi_rscale.assign(static_cast<size_t>(L.N),
                          static_cast<float>(static_cast<double>(plan.i8_tensors.at(L.residual)) / fold));
    q.epi_scale.resize(static_cast<size_t>(L.N));
    for (size_t n = 0; n < q.epi_scale.size(); ++n)
      q.epi_scale[n] = static_cast<float>(static_cast<double>(q.x_scale) * q.w_scale[n] / fold);
    if (!bias.empty()) {
      q.epi_bias.resize(static_cast<size_t>(L.N));
      for (size_t n = 0; n < q.epi_bias.size(); ++n)
        q.epi_bias[n] = static_cast<float>(static_cast<double>(bias[n]) / fold);
    }
    plan.int8_layers++;
  }
  return plan;
}

void apply_quant_copies(const ir::Graph& g, const QuantPlan& plan, LoweredModel* lm) {
  const auto ntensors = static_cast<ir::TensorId>(g.tensors().size());
  if (plan.layers.size() != lm->layers.size())
    throw std::logic_error("apply_quant_copies: the quantization plan is for another model");
  for (const QuantCopy& c : plan.copies) {
    if (c.copy != ntensors + static_cast<ir::TensorId>(lm->extra.size()) || c.src < 0 || c.src >= c.copy)
      throw std::logic_error("apply_quant_copies: copy '" + c.name + "' does not fit this lowering");
    ir::Tensor t = lm->tensor(g, c.src);
    t.name = c.name;
    t.is_const = false;
    lm->extra.push_back(std::move(t));
    // The sole writer of src, if it is an elementwise step or a product (and has no second output yet).
    int writers = 0;
    LoweredEltwise* producer = nullptr;
    LoweredLayer* layer = nullptr;
    for (LoweredLayer& L : lm->layers)
      if (L.y == c.src) {
        ++writers;
        layer = &L;
      }
    for (const LoweredLane& Ln : lm->lanes) writers += Ln.y == c.src ? 1 : 0;
    for (const LoweredGather& G : lm->gathers) writers += G.y == c.src ? 1 : 0;
    for (LoweredEltwise& P : lm->eltwise)
      if (P.y == c.src) {
        ++writers;
        producer = &P;
      }
    const bool fuse = plan.fuse_copies && writers == 1 && producer && producer->y2 == ir::kNoTensor;
    // A product's epilogue writes the copy too (not a row copy, whose rows move MEM -> MEM).
    const bool fuse_layer = plan.fuse_copies && writers == 1 && layer && !layer->copy && layer->y2 == ir::kNoTensor;
    LoweredEltwise E;
    E.name = c.name;
    E.kind = ir::OpKind::Cast;
    E.has_op = false;  // widen, muli by 1 / scale, cvt f32 -> i8 (elementwise_kernel.h)
    EltOperand o;
    o.act = c.src;
    E.operands.push_back(std::move(o));
    E.y = c.copy;
    E.y_shape = c.shape;
    // Redirect the int8 readers; the copy step goes right before the first of them.
    size_t first = lm->steps.size();
    for (size_t si = 0; si < lm->steps.size(); ++si) {
      const LoweredStep& st = lm->steps[si];
      if (!st.dense || st.gather || st.lane) continue;
      LoweredLayer& L = lm->layers[st.index];
      if (L.x != c.src || !plan.layers[st.index].int8) continue;
      L.x = c.copy;
      for (LoweredLayer::XSegment& xs : L.xsegs) xs.x = c.copy;
      first = std::min(first, si);
    }
    if (first == lm->steps.size()) throw std::logic_error("apply_quant_copies: copy '" + c.name + "' has no reader");
    if (c.norm >= 0) {  // a LayerNorm fold's centred copy: x - mean, i8, right after the `.mean` step
      const LoweredModel::Norm& nm = lm->norms.at(static_cast<size_t>(c.norm));
      size_t at = lm->steps.size();
      for (size_t si = 0; si < lm->steps.size() && at == lm->steps.size(); ++si)
        if (lm->steps[si].lane && lm->lanes[lm->steps[si].index].y == nm.mean) at = si + 1;
      if (at > first) throw std::logic_error("apply_quant_copies: centred copy '" + c.name + "' has no `.mean` before its readers");
      E.name = c.name;
      E.kind = ir::OpKind::Sub;
      E.has_op = true;
      E.vxm_op = static_cast<int>(Opcode::Sub);
      E.operands.clear();
      EltOperand xo, mo;
      xo.act = nm.x;
      mo.act = nm.mean;
      mo.lane_bcast = true;
      E.operands = {xo, mo};
      for (size_t si = 0; si < lm->steps.size(); ++si) {
        const LoweredStep& st = lm->steps[si];
        if (!st.dense || st.gather || st.lane || lm->layers[st.index].x != c.copy) continue;
        if (plan.layers[st.index].norm_fold != c.norm)
          throw std::logic_error("apply_quant_copies: layer '" + lm->layers[st.index].name + "' reads centred copy '" +
                                 c.name + "' without its fold");
        lm->layers[st.index].row_div = nm.sd;
      }
      LoweredStep cst;
      cst.dense = false;
      cst.index = lm->eltwise.size();
      lm->eltwise.push_back(std::move(E));
      lm->steps.insert(lm->steps.begin() + static_cast<std::ptrdiff_t>(at), cst);
      continue;
    }
    if (fuse) {  // src's producer writes the copy too (it runs before every reader of src)
      producer->y2 = c.copy;
      continue;
    }
    if (fuse_layer) {
      layer->y2 = c.copy;
      continue;
    }
    LoweredStep st;
    st.dense = false;
    st.index = lm->eltwise.size();
    lm->eltwise.push_back(std::move(E));
    lm->steps.insert(lm->steps.begin() + static_cast<std::ptrdiff_t>(first), st);
  }
  // A folded LayerNorm's `.norm` step now feeds only later steps (a post-LN residual): it moves to
  // just before the first of them, so the list scheduler no longer places it ahead of the folded
  // products and their drains (it took their SRAM ports and stream slots; quantize.h "LayerNorm
  // folds"). Values do not change: its operands are all written before it either way.
  for (const QuantCopy& c : plan.copies) {
    if (c.norm < 0) continue;
    const ir::TensorId y = lm->norms.at(static_cast<size_t>(c.norm)).y;
    const StepUses u = step_uses(*lm);
    const auto w = u.writers.find(y);
    if (w == u.writers.end() || w->second.size() != 1 || !is_eltwise(lm->steps[w->second[0]])) continue;
    const size_t at = w->second[0];
    size_t reader = lm->steps.size();  // the first step reading any of its outputs
    for (ir::TensorId t : step_writes(*lm, lm->steps[at])) {
      const auto r = u.readers.find(t);
      if (r != u.readers.end() && !r->second.empty()) reader = std::min(reader, r->second.front());
    }
    const LoweredStep norm_step = lm->steps[at];
    lm->steps.erase(lm->steps.begin() + static_cast<std::ptrdiff_t>(at));
    lm->steps.insert(lm->steps.begin() + static_cast<std::ptrdiff_t>(reader - 1), norm_step);
  }
}

}  // namespace lpu::compiler
