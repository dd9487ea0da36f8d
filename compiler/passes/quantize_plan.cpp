// plan_int8 (quantize.h): which dense layers of a lowering run int8, which tensors are stored i8
// (and which get quantized copies or LayerNorm folds), their calibrated scales, and each int8
// layer's quantized weights and epilogue row constants. One Int8Planner per call runs the passes in
// order; each pass reads the state the ones before it left.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "compiler/passes/lower_conv.h"
#include "compiler/passes/quantize.h"
#include "isa/chip_config.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

float scale_of(double maxabs) { return maxabs > 0 ? static_cast<float>(maxabs / 127.0) : 1.0f; }

// Max |value| of each `want` tensor over the calibration sets (ref::run_all, fp32); with
// `centred_max`, also each `centred` tensor's max |x - mean of its row| (rows of the last axis: a
// LayerNorm fold's copy).
std::map<ir::TensorId, double> calibrate(const ir::Graph& g, const std::vector<std::vector<ref::Value>>& sets,
                                         const std::set<ir::TensorId>& want,
                                         const std::set<ir::TensorId>& centred = {},
                                         std::map<ir::TensorId, double>* centred_max = nullptr) {
  std::map<ir::TensorId, double> mx;
  for (ir::TensorId t : want) mx[t] = 0;
  for (ir::TensorId t : centred) (*centred_max)[t] = 0;
  for (const std::vector<ref::Value>& inputs : sets) {
    const std::vector<ref::Value> vals = ref::run_all(g, inputs);
    for (auto& [t, m] : mx) {
      const ref::Value& v = vals[static_cast<size_t>(t)];
      for (int64_t k = 0; k < v.elements(); ++k)
        m = std::max(m, std::fabs(static_cast<double>(v.as_float(k))));
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
        for (int64_t k = 0; k < K; ++k)
          m = std::max(m, std::fabs(static_cast<double>(v.as_float(r * K + k)) - mean));
      }
    }
  }
  return mx;
}

// An exact identity copy (attention's materialized views and row Concats, lower_attention.cpp), or
// an identity copy with a trailing ones column (weights 0, bias 1: attention's V|1,
// lower_attention.h defer_softmax). It runs int8 only if its X is i8 anyway (then it is exact:
// weight 127, scale 1/127); it never gets a quantized copy, which would add a quantization the model
// does not have.
bool is_identity(const LoweredLayer& L) {
  const bool ones = L.N == L.K + 1 && L.bias.size() == static_cast<size_t>(L.N) && L.bias.back() == 1.f &&
                    std::count(L.bias.begin(), L.bias.end(), 0.f) == L.K;
  if ((L.K != L.N && !ones) || L.relu || (!L.bias.empty() && !ones) ||
      L.w.size() != static_cast<size_t>(L.K * L.N))
    return false;
  for (int64_t k = 0; k < L.K; ++k)
    for (int64_t n = 0; n < L.N; ++n)
      if (L.w[static_cast<size_t>(k * L.N + n)] != (k == n ? 1.f : 0.f)) return false;
  return true;
}

// Per output column n of the K x N weights W: w_scale[n] = max_k |W[k][n]| / 127 and the quantized
// column.
void quantize_weights(const std::vector<float>& W, int64_t K, int64_t N, LayerQuant* q) {
  q->w_scale.resize(static_cast<size_t>(N));
  q->wq.resize(W.size());
  for (int64_t n = 0; n < N; ++n) {
    double m = 0;
    for (int64_t k = 0; k < K; ++k)
      m = std::max(m, std::fabs(static_cast<double>(W[static_cast<size_t>(k * N + n)])));
    const float s = scale_of(m);
    q->w_scale[static_cast<size_t>(n)] = s;
    for (int64_t k = 0; k < K; ++k)
      q->wq[static_cast<size_t>(k * N + n)] = quantize_i8(W[static_cast<size_t>(k * N + n)], s);
  }
}

class Int8Planner {
 public:
  Int8Planner(const ir::Graph& g, const LoweredModel& lm, const Int8Options& opt);
  QuantPlan plan(const std::vector<std::vector<ref::Value>>& calibration);

 private:
  // Facts about the lowering, read under the current int8 set (in_s_).
  ir::TensorId calib_src(ir::TensorId t) const;
  bool int8_layers_write(ir::TensorId t) const;
  bool layer_written(ir::TensorId t) const;
  ir::TensorId move_source(ir::TensorId t) const;
  bool int8_readers_only(ir::TensorId t, bool residual_ok) const;
  bool i8_ok(ir::TensorId t) const;
  std::vector<int64_t> stored_shape(ir::TensorId t) const;
  bool copy_stays_fp16(size_t i) const;
  bool x_unusable(size_t i) const;

  // The passes, in the order plan() runs them.
  void find_candidates();
  void apply_layer_filter();
  void shrink_to_fixed_point();
  void find_norm_folds();
  void choose_i8_and_copies(QuantPlan* plan);
  void find_moves_and_pools();
  void set_scales(const std::vector<std::vector<ref::Value>>& calibration, QuantPlan* plan) const;
  void quantize_layer(size_t i, QuantPlan* plan) const;

  const ir::Graph& g_;
  const LoweredModel& lm_;
  const Int8Options& opt_;
  const ir::TensorId ntensors_;
  const size_t nl_;
  std::vector<char> in_s_;                           // per layer: may run int8 (shrinks pass by pass)
  std::vector<char> ident_;                          // per layer: is_identity
  std::map<ir::TensorId, int> writers_;              // tensor -> layers writing it
  std::map<ir::TensorId, int> elt_writers_;          // tensor -> elementwise steps that may quantize it
  std::set<ir::TensorId> host_inputs_;               // graph inputs the host could quantize
  std::map<ir::TensorId, int> fold_of_;              // LayerNorm output -> its lm.norms index (folds)
  std::set<ir::TensorId> i8_;                        // tensors stored i8 (scales set later)
  std::map<ir::TensorId, size_t> copy_of_;           // src -> index in QuantPlan::copies
  std::map<ir::TensorId, ir::TensorId> moved_from_;  // a lane move's i8 source -> the move's output
  std::map<ir::TensorId, ir::TensorId> pool_src_;    // an i8 pool's operand -> the pool's output
};

Int8Planner::Int8Planner(const ir::Graph& g, const LoweredModel& lm, const Int8Options& opt)
    : g_(g),
      lm_(lm),
      opt_(opt),
      ntensors_(static_cast<ir::TensorId>(g.tensors().size())),
      nl_(lm.layers.size()),
      in_s_(nl_, 0),
      ident_(nl_, 0) {
  for (const LoweredLayer& L : lm.layers) writers_[L.y]++;
  for (size_t i = 0; i < nl_; ++i) ident_[i] = is_identity(lm.layers[i]);
  // Elementwise steps that may quantize their output on chip (one writer per tensor).
  if (opt.onchip_quantize)
    for (const LoweredEltwise& E : lm.eltwise) elt_writers_[E.y]++;
  // Graph inputs the host could quantize, also those it lays out for a conv (host_map: NHWC or a
  // stem conv's im2col rows; quantizing each value commutes with the layout, padding stays 0).
  for (const LoweredInput& in : lm.inputs)
    if (in.alias < ntensors_ && in.lookup_rows == 0) host_inputs_.insert(in.alias);
}

// The graph tensor whose calibrated values a tensor has: itself, or for a lowering tensor written
// by a step that copies values (a `sel` whose condition constant is all non-zero, e.g. attention's
// pad-lane clearing; a float Cast), its source's (kNoTensor: none).
ir::TensorId Int8Planner::calib_src(ir::TensorId t) const {
  for (int depth = 0; depth < 16 && t != ir::kNoTensor; ++depth) {
    if (t < ntensors_) return t;
    const auto re = lm_.rearranged.find(t);  // a packed head merge: X's values rearranged, and zeros
    if (re != lm_.rearranged.end()) {
      t = re->second;
      continue;
    }
    const LoweredEltwise* P = nullptr;
    for (const LoweredEltwise& E : lm_.eltwise)
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
}

// Some layer writes t, and every one is int8 (a fused residual written so may be read i8).
bool Int8Planner::int8_layers_write(ir::TensorId t) const {
  if (!writers_.count(t)) return false;
  bool all = true;
  for (size_t i = 0; i < nl_; ++i) all = all && (lm_.layers[i].y != t || in_s_[i]);
  return all;
}

// int8_layers_write, and no elementwise step writes t.
bool Int8Planner::layer_written(ir::TensorId t) const {
  bool all = int8_layers_write(t);
  for (const LoweredEltwise& E : lm_.eltwise) all = all && E.y != t;
  return all;
}

// An SXM lane move that is t's only writer, from a tensor x that only one elementwise step writes
// and only that move reads (a MaxPool on row pairs, passes/lower_conv.h "Row pairs"): the move
// carries bytes, so t may be i8 when x is stored i8 with t's scale (x then quantizes on chip).
ir::TensorId Int8Planner::move_source(ir::TensorId t) const {
  const LoweredLane* mv = nullptr;
  int n = 0;
  for (const LoweredStep& st : lm_.steps)
    for (ir::TensorId w : step_writes(lm_, st))
      if (w == t) {
        ++n;
        if (st.lane && lm_.lanes[st.index].mode == LoweredLane::Mode::Move) mv = &lm_.lanes[st.index];
      }
  if (n != 1 || !mv || lm_.is_output(mv->x) || !elt_writers_.count(mv->x) || elt_writers_.at(mv->x) != 1)
    return ir::kNoTensor;
  for (const LoweredStep& st : lm_.steps) {
    const bool self = st.lane && &lm_.lanes[st.index] == mv;
    for (ir::TensorId r : step_reads(lm_, st))
      if (r == mv->x && !self) return ir::kNoTensor;
    for (ir::TensorId w : step_writes(lm_, st))
      if (w == mv->x && !is_eltwise(st)) return ir::kNoTensor;
  }
  return mv->x;
}

// Every scheduled step reading t is an int8 layer reading it as its X, or (residual_ok) as its
// fused residual when only int8 layers write t (Int8Options::i8_residuals); elementwise, gather and
// lane steps, activation weights and other residuals need the float values.
bool Int8Planner::int8_readers_only(ir::TensorId t, bool residual_ok) const {
  for (const LoweredStep& st : lm_.steps) {
    const std::vector<ir::TensorId> r = step_reads(lm_, st);
    if (std::find(r.begin(), r.end(), t) == r.end()) continue;
    if (!is_layer(st)) return false;
    const LoweredLayer& L = lm_.layers[st.index];
    if (!in_s_[st.index] || L.b == t) return false;
    if (L.residual == t) {
      if (!residual_ok || !opt_.i8_residuals || L.x == t || !layer_written(t)) return false;
    } else if (L.x != t) {
      return false;
    }
  }
  return true;
}

// A tensor may be i8 iff it is a graph tensor (it can be calibrated) that is not a graph output,
// every reader is an int8 layer reading it as X, and its producer is a host-quantized input, an
// elementwise step that quantizes on chip, int8 layers only (every writer), or a lane move from
// such a tensor (move_source).
bool Int8Planner::i8_ok(ir::TensorId t) const {
  // A packed head merge keeps its f16 values and gets a quantized copy (fused into its pass): the
  // int8 check bounds on-chip quantization of value copies only (int8_step_check.h).
  if (lm_.is_output(t) || calib_src(t) == ir::kNoTensor || lm_.rearranged.count(t)) return false;
  bool produced =
      host_inputs_.count(t) > 0 || (elt_writers_.count(t) && elt_writers_.at(t) == 1 && !writers_.count(t));
  produced = produced || int8_layers_write(t);
  for (const LoweredGather& G : lm_.gathers) produced = produced && G.y != t;
  const bool moved = move_source(t) != ir::kNoTensor;
  produced = produced || moved;
  for (const LoweredLane& Ln : lm_.lanes) produced = produced && (Ln.y != t || moved);
  return produced && int8_readers_only(t, true);
}

// With onchip_quantize, an X that cannot be i8 itself gets a quantized copy if the shape it is
// stored in is known here (empty: not copyable, the layer stays fp16).
std::vector<int64_t> Int8Planner::stored_shape(ir::TensorId t) const {
  if (!opt_.onchip_quantize) return {};
  for (const LoweredGather& G : lm_.gathers)  // im2col rows: not copyable (an embedding lookup is)
    if (G.y == t && G.table.empty()) return {};
  return lm_.stored_shape(g_, t);
}

// An identity copy runs int8 only while its X is i8 anyway, read as X by a product that is not a
// copy, and every step reading its output is an int8 product reading it as X (a graph output with
// no reader is fine: the int8 check bounds it as the layer it is). Else X would be quantized for
// the copy alone: a quantization the model does not have, which no check bounds (a graph input or
// an elementwise result read through a materialized view by a LayerNorm, Softmax or reduction, or
// returned as a graph output; found by tests/compiler/test_random_graphs.cpp at int8).
bool Int8Planner::copy_stays_fp16(size_t i) const {
  if (!ident_[i]) return false;
  bool read_by_product = false;
  for (size_t j = 0; j < nl_ && !read_by_product; ++j)
    read_by_product = in_s_[j] && !ident_[j] && lm_.layers[j].x == lm_.layers[i].x;
  return !read_by_product || !int8_readers_only(lm_.layers[i].y, false);
}

// X neither i8 nor copyable (an identity copy never gets a quantized copy of its X).
bool Int8Planner::x_unusable(size_t i) const {
  return !i8_ok(lm_.layers[i].x) && (ident_[i] || stored_shape(lm_.layers[i].x).empty());
}

// Layers that could run int8 at all: scheduled (a projection folded into per-head layers is not),
// X read as stored, through a row map or as column segments of one tensor, constant weights, X a
// float tensor with calibratable values.
void Int8Planner::find_candidates() {
  std::vector<char> live(nl_, 0);
  for (const LoweredStep& st : lm_.steps)
    if (is_layer(st)) live[st.index] = 1;
  for (size_t i = 0; i < nl_; ++i) {
    const LoweredLayer& L = lm_.layers[i];
    if (!live[i]) continue;
    bool one_x = true;  // a view's column segments all of X (attention's head merge before o_proj)
    for (const LoweredLayer::XSegment& xs : L.xsegs) one_x = one_x && xs.x == L.x;
    const ir::DType xd = lm_.tensor(g_, L.x).dtype;
    in_s_[i] = L.b == ir::kNoTensor && one_x && (L.k_blocks == 0 || !L.tap_rows.empty()) && !L.w.empty() &&
               calib_src(L.x) != ir::kNoTensor && (xd == ir::DType::F16 || xd == ir::DType::F32);
  }
}

// Int8Options::layer_filter, given each layer's op name and constant weight's name.
void Int8Planner::apply_layer_filter() {
  if (!opt_.layer_filter) return;
  std::map<std::string, const ir::Op*> by_name;
  for (const ir::Op& op : g_.ops()) by_name[op.name] = &op;
  for (size_t i = 0; i < nl_; ++i) {
    if (!in_s_[i]) continue;
    // A layer named after no IR op with a constant weight (e.g. attention's per-head projections,
    // named after the view op they fold into, lower_attention.cpp) does not pass the filter.
    // A conv producer's edge parts (OP.packN, lower_conv.h "Packed taps") and a pixel-unpacking
    // conv's parts (OP.pxN, "Pixel packing") are OP's.
    const auto it = by_name.find(conv_part_op(lm_.layers[i].name));
    const ir::Op* op = it == by_name.end() ? nullptr : it->second;
    const bool has_w =
        op && op->inputs.size() > 1 && op->inputs[1] != ir::kNoTensor && g_.tensor(op->inputs[1]).is_const;
    in_s_[i] = has_w && opt_.layer_filter(op->name, g_.tensor(op->inputs[1]).name);
  }
}

// Shrink the int8 set to a fixed point: a layer whose X can be neither i8 nor copied stays fp16
// (and then reads X as an fp16 reader, which may stop other tensors from being i8).
void Int8Planner::shrink_to_fixed_point() {
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < nl_; ++i)
      if (in_s_[i] && (x_unusable(i) || copy_stays_fp16(i))) {
        in_s_[i] = 0;
        changed = true;
      }
  }
}

// LayerNorm folds (quantize.h): LayerNorm output y -> its index in lm.norms, where every int8 layer
// reading y as X qualifies and something else reads y too (the `.norm` step stays).
void Int8Planner::find_norm_folds() {
  for (size_t ni = 0; opt_.fold_norms && opt_.onchip_quantize && ni < lm_.norms.size(); ++ni) {
    const LoweredModel::Norm& nm = lm_.norms[ni];
    if (!opt_.timing_only && calib_src(nm.x) == ir::kNoTensor) continue;
    bool any = false, ok = true, other = lm_.is_output(nm.y);
    for (const LoweredStep& st : lm_.steps) {
      const std::vector<ir::TensorId> r = step_reads(lm_, st);
      const auto n_reads = std::count(r.begin(), r.end(), nm.y);
      if (n_reads == 0) continue;
      const bool dense = is_layer(st);
      if (!dense || lm_.layers[st.index].x != nm.y || !in_s_[st.index] || n_reads > 1) {
        other = true;
        if (dense && lm_.layers[st.index].x == nm.y) ok = false;  // an fp16 reader of y as X, or y twice
        continue;
      }
      const LoweredLayer& L = lm_.layers[st.index];
      any = true;
      ok = ok && L.x_rows.empty() && L.y_rows.empty() && L.xsegs.empty() && L.k_blocks == 0 &&
           L.tap_rows.empty() && L.b == ir::kNoTensor && !L.copy &&
           L.K == static_cast<int64_t>(nm.scale.size()) && L.w.size() == static_cast<size_t>(L.K * L.N);
    }
    if (any && ok && other && !i8_ok(nm.y)) fold_of_[nm.y] = static_cast<int>(ni);
  }
}

// Per int8 layer: its X is stored i8, or read through a quantized copy (one per X; a centred copy
// where its LayerNorm folds); its Y is stored i8 where every reader allows.
void Int8Planner::choose_i8_and_copies(QuantPlan* plan) {
  std::set<std::string> names;
  for (const ir::Tensor& t : g_.tensors()) names.insert(t.name);
  for (const ir::Tensor& t : lm_.extra) names.insert(t.name);
  for (size_t i = 0; i < nl_; ++i) {
    if (!in_s_[i]) continue;
    const LoweredLayer& L = lm_.layers[i];
    if (i8_ok(L.x)) {
      i8_.insert(L.x);
    } else if (!copy_of_.count(L.x)) {
      QuantCopy c;
      c.src = L.x;
      c.copy = ntensors_ + static_cast<ir::TensorId>(lm_.extra.size() + plan->copies.size());
      const auto fo = fold_of_.find(L.x);
      c.norm = fo == fold_of_.end() ? -1 : fo->second;
      c.name = lm_.tensor(g_, L.x).name + (c.norm >= 0 ? ".centred.i8" : ".i8");
      while (names.count(c.name)) c.name += "_";
      names.insert(c.name);
      c.shape = stored_shape(L.x);
      copy_of_[L.x] = plan->copies.size();
      plan->copies.push_back(std::move(c));
    }
    if (i8_ok(L.y)) i8_.insert(L.y);
  }
}

// A lane move's i8 source (move_source) takes the moved tensor's scale. i8 pools: a Max/Min chain
// step (a MaxPool, passes/lower_conv.cpp) whose output is i8 and whose operands are all one tensor
// t (row maps allowed) that only int8 layers write, that nothing else reads and that is not a graph
// output: t is stored i8 with the step's OUTPUT scale, so the step runs on the i8 values
// (backend/elementwise_kernel.h same_i8_scale; quantizing with one scale is monotonic and maps 0 to
// 0: the max of quantized values is the quantized max, and a fused Relu commutes). t's values below
// -127 s saturate; only a fused Relu may follow them, which sends both to 0. t needs no calibration
// of its own (its scale is the step's).
void Int8Planner::find_moves_and_pools() {
  for (ir::TensorId t : std::set<ir::TensorId>(i8_)) {
    const ir::TensorId x = move_source(t);
    if (x == ir::kNoTensor) continue;
    i8_.insert(x);
    moved_from_[x] = t;
  }
  for (const LoweredStep& ps : lm_.steps) {
    if (!is_eltwise(ps)) continue;
    const LoweredEltwise& E = lm_.eltwise[ps.index];
    if (!E.minmax_chain() || E.y2 != ir::kNoTensor || E.operands.empty() || !i8_.count(E.y) ||
        E.operands[0].act == ir::kNoTensor)
      continue;
    const ir::TensorId t = E.operands[0].act;
    bool ok = !lm_.is_output(t) && !host_inputs_.count(t) && !i8_.count(t) && !pool_src_.count(t);
    for (const EltOperand& o : E.operands) ok = ok && o.act == t && !o.lane_bcast;
    int int8_writers = 0;  // scheduled steps only (a layer folded away reads and writes nothing)
    for (const LoweredStep& st : lm_.steps) {
      if (&st != &ps)
        for (ir::TensorId r : step_reads(lm_, st)) ok = ok && r != t;
      for (ir::TensorId w : step_writes(lm_, st))
        if (w == t) {
          const bool int8_layer =
              is_layer(st) && in_s_[st.index] && lm_.layers[st.index].residual == ir::kNoTensor;
          ok = ok && int8_layer;
          int8_writers += int8_layer ? 1 : 0;
        }
    }
    if (ok && int8_writers > 0) pool_src_[t] = E.y;
  }
}

// Every i8 tensor's and copy's scale: calibrated max |value| / 127 (a centred copy's from its
// LayerNorm input's centred rows), 1 when timing only; moved sources and pool operands take the
// scale of the tensor they feed.
void Int8Planner::set_scales(const std::vector<std::vector<ref::Value>>& calibration, QuantPlan* plan) const {
  if (opt_.timing_only) {
    for (ir::TensorId t : i8_) plan->i8_tensors[t] = 1.0f;
    for (const QuantCopy& c : plan->copies) plan->i8_tensors[c.copy] = 1.0f;
  } else {
    std::set<ir::TensorId> want, want_centred;
    for (ir::TensorId t : i8_) want.insert(calib_src(t));
    auto centred_src = [&](const QuantCopy& c) {
      return calib_src(lm_.norms[static_cast<size_t>(c.norm)].x);
    };
    for (const QuantCopy& c : plan->copies)
      (c.norm >= 0 ? want_centred : want).insert(c.norm >= 0 ? centred_src(c) : calib_src(c.src));
    std::map<ir::TensorId, double> cmx;
    const std::map<ir::TensorId, double> mx = calibrate(g_, calibration, want, want_centred, &cmx);
    for (ir::TensorId t : i8_) plan->i8_tensors[t] = scale_of(mx.at(calib_src(t)));
    for (const QuantCopy& c : plan->copies)
      plan->i8_tensors[c.copy] =
          c.norm >= 0 ? scale_of(cmx.at(centred_src(c))) : scale_of(mx.at(calib_src(c.src)));
  }
  for (const auto& [x, t] : moved_from_) plan->i8_tensors[x] = plan->i8_tensors.at(t);
  for (const auto& [t, y] : pool_src_) plan->i8_tensors[t] = plan->i8_tensors.at(y);
}

// Layer i's LayerQuant (quantize.h: weights per column, the epilogue's scale, bias and residual
// rows with 1 / y_scale folded where the kernel allows).
void Int8Planner::quantize_layer(size_t i, QuantPlan* plan) const {
  const LoweredLayer& L = lm_.layers[i];
  LayerQuant& q = plan->layers[i];
  q.int8 = true;
  const auto copy = copy_of_.find(L.x);
  const QuantCopy* c = copy == copy_of_.end() ? nullptr : &plan->copies[copy->second];
  q.x_scale = plan->i8_tensors.at(c ? c->copy : L.x);
  q.norm_fold = c ? c->norm : -1;
  std::vector<float> folded_w, folded_b;
  if (q.norm_fold >= 0)
    fold_norm_weights(L, lm_.norms[static_cast<size_t>(q.norm_fold)], &folded_w, &folded_b);
  const std::vector<float>& bias = q.norm_fold >= 0 ? folded_b : L.bias;
  quantize_weights(q.norm_fold >= 0 ? folded_w : L.w, L.K, L.N, &q);
  q.y_int8 = plan->i8_tensors.count(L.y) > 0;
  q.y_scale = q.y_int8 ? plan->i8_tensors.at(L.y) : 1.0f;
  // 1 / y_scale folded into the row constants, except after a fused f16 residual Add (the kernel
  // quantizes the f16 sum: backend/matmul_kernel.h MatmulSpec::residual); an i8 residual's
  // r_scale / y_scale is a third row.
  q.r_int8 = L.residual != ir::kNoTensor && plan->i8_tensors.count(L.residual) > 0;
  const double fold = L.residual == ir::kNoTensor || q.r_int8 ? q.y_scale : 1.0;
  if (q.r_int8)
    q.epi_rscale.assign(static_cast<size_t>(L.N),
                        static_cast<float>(static_cast<double>(plan->i8_tensors.at(L.residual)) / fold));
  q.epi_scale.resize(static_cast<size_t>(L.N));
  for (size_t n = 0; n < q.epi_scale.size(); ++n)
    q.epi_scale[n] = static_cast<float>(static_cast<double>(q.x_scale) * q.w_scale[n] / fold);
  if (!bias.empty()) {
    q.epi_bias.resize(static_cast<size_t>(L.N));
    for (size_t n = 0; n < q.epi_bias.size(); ++n)
      q.epi_bias[n] = static_cast<float>(static_cast<double>(bias[n]) / fold);
  }
  plan->int8_layers++;
}

QuantPlan Int8Planner::plan(const std::vector<std::vector<ref::Value>>& calibration) {
  find_candidates();
  apply_layer_filter();
  shrink_to_fixed_point();
  find_norm_folds();
  QuantPlan plan;
  plan.layers.resize(nl_);
  choose_i8_and_copies(&plan);
  find_moves_and_pools();
  plan.timing_only = opt_.timing_only;
  if (i8_.empty() && plan.copies.empty()) {
    if (opt_.allow_no_int8) return plan;
    throw InputError(
        fmt::format("model '{}': --precision int8 found no dense layer that can run int8 (a MatMul/Gemm "
                    "with a constant weight reading a graph input or another int8 layer's output "
                    "directly{}); compile it with fp16",
                    g_.name, opt_.onchip_quantize ? ", or any float tensor not through a view" : ""));
  }
  set_scales(calibration, &plan);
  plan.fuse_copies = opt_.fuse_copies;
  for (const LoweredEltwise& E : lm_.eltwise) plan.quantize_steps += plan.i8_tensors.count(E.y) ? 1 : 0;
  for (const LoweredInput& in : lm_.inputs)
    if (plan.i8_tensors.count(in.alias)) plan.i8_inputs[g_.tensor(in.id).name] = plan.i8_tensors.at(in.alias);
  for (size_t i = 0; i < nl_; ++i)
    if (in_s_[i]) quantize_layer(i, &plan);
  return plan;
}

}  // namespace

QuantPlan plan_int8(const ir::Graph& g, const LoweredModel& lm,
                    const std::vector<std::vector<ref::Value>>& calibration, const Int8Options& opt) {
  if (calibration.empty() && !opt.timing_only)
    throw InputError(
        fmt::format("model '{}': --precision int8 needs calibration data (--calibrate DATASET_DIR..., "
                    "ONNX test-data directories with input_N.pb) to choose activation scales",
                    g.name));
  return Int8Planner(g, lm, opt).plan(calibration);
}

}  // namespace lpu::compiler
