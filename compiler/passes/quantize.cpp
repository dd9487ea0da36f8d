// int8 quantization (see quantize.h) outside the planner (quantize_plan.cpp): quantizing values
// and folded LayerNorm weights, and applying a plan's quantized copies to the lowered model.
#include "compiler/passes/quantize.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "isa/isa.h"

namespace lpu::compiler {

void fold_norm_weights(const LoweredLayer& L, const LoweredModel::Norm& n, std::vector<float>* w,
                       std::vector<float>* bias) {
  if (static_cast<int64_t>(n.scale.size()) != L.K || n.bias.size() != n.scale.size() ||
      L.w.size() != static_cast<size_t>(L.K * L.N))
    throw std::logic_error("fold_norm_weights: layer '" + L.name +
                           "' does not read this LayerNorm's K values");
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

namespace {

// Redirects the int8 layers reading c.src as X to c.copy; returns the index of the first of their
// steps (the copy must be written before it).
size_t redirect_int8_readers(const QuantPlan& plan, const QuantCopy& c, LoweredModel* lm) {
  size_t first = lm->steps.size();
  for (size_t si = 0; si < lm->steps.size(); ++si) {
    const LoweredStep& st = lm->steps[si];
    if (!is_layer(st)) continue;
    LoweredLayer& L = lm->layers[st.index];
    if (L.x != c.src || !plan.layers[st.index].int8) continue;
    L.x = c.copy;
    for (LoweredLayer::XSegment& xs : L.xsegs) xs.x = c.copy;
    first = std::min(first, si);
  }
  if (first == lm->steps.size())
    throw std::logic_error("apply_quant_copies: copy '" + c.name + "' has no reader");
  return first;
}

// With plan.fuse_copies, makes c the second output of src's sole writer when that is an elementwise
// step, or a product that is not a row copy (its rows move MEM -> MEM), with no second output yet.
// Returns whether it did.
bool fuse_copy(const QuantPlan& plan, const QuantCopy& c, LoweredModel* lm) {
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
  if (!plan.fuse_copies || writers != 1) return false;
  if (producer && producer->y2 == ir::kNoTensor) {
    producer->y2 = c.copy;
    return true;
  }
  if (layer && !layer->copy && layer->y2 == ir::kNoTensor) {
    layer->y2 = c.copy;
    return true;
  }
  return false;
}

// Inserts elementwise step E at step index `at`.
void insert_eltwise_step(LoweredEltwise E, size_t at, LoweredModel* lm) {
  LoweredStep st;
  st.dense = false;
  st.index = lm->eltwise.size();
  lm->eltwise.push_back(std::move(E));
  lm->steps.insert(lm->steps.begin() + static_cast<std::ptrdiff_t>(at), st);
}

// A LayerNorm fold's centred copy c: x - mean, i8, one VXM step right after the `.mean` step (which
// must come before `first`, its first reader); its readers divide their rows by the LayerNorm's sd.
void add_centred_copy(const QuantPlan& plan, const QuantCopy& c, size_t first, LoweredModel* lm) {
  const LoweredModel::Norm& nm = lm->norms.at(static_cast<size_t>(c.norm));
  size_t at = lm->steps.size();
  for (size_t si = 0; si < lm->steps.size() && at == lm->steps.size(); ++si)
    if (lm->steps[si].lane && lm->lanes[lm->steps[si].index].y == nm.mean) at = si + 1;
  if (at > first)
    throw std::logic_error("apply_quant_copies: centred copy '" + c.name +
                           "' has no `.mean` before its readers");
  for (const LoweredStep& st : lm->steps) {
    if (!is_layer(st) || lm->layers[st.index].x != c.copy) continue;
    if (plan.layers[st.index].norm_fold != c.norm)
      throw std::logic_error("apply_quant_copies: layer '" + lm->layers[st.index].name +
                             "' reads centred copy '" + c.name + "' without its fold");
    lm->layers[st.index].row_div = nm.sd;
  }
  LoweredEltwise E;
  E.name = c.name;
  E.kind = ir::OpKind::Sub;
  E.has_op = true;
  E.vxm_op = static_cast<int>(Opcode::Sub);
  EltOperand xo, mo;
  xo.act = nm.x;
  mo.act = nm.mean;
  mo.lane_bcast = true;
  E.operands = {xo, mo};
  E.y = c.copy;
  E.y_shape = c.shape;
  insert_eltwise_step(std::move(E), at, lm);
}

// A folded LayerNorm's `.norm` step now feeds only later steps (a post-LN residual): it moves to
// just before the first of them, so the list scheduler no longer places it ahead of the folded
// products and their drains (it took their SRAM ports and stream slots; quantize.h "LayerNorm
// folds"). Values do not change: its operands are all written before it either way.
void move_folded_norm_steps(const QuantPlan& plan, LoweredModel* lm) {
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

}  // namespace

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
    const size_t first = redirect_int8_readers(plan, c, lm);
    if (c.norm >= 0) {
      add_centred_copy(plan, c, first, lm);
    } else if (!fuse_copy(plan, c, lm)) {  // a step of its own, right before the first reader
      LoweredEltwise E;
      E.name = c.name;
      E.kind = ir::OpKind::Cast;
      E.has_op = false;  // widen, muli by 1 / scale, cvt f32 -> i8 (elementwise_kernel.h)
      EltOperand o;
      o.act = c.src;
      E.operands.push_back(std::move(o));
      E.y = c.copy;
      E.y_shape = c.shape;
      insert_eltwise_step(std::move(E), first, lm);
    }
  }
  move_folded_norm_steps(plan, lm);
}

}  // namespace lpu::compiler
