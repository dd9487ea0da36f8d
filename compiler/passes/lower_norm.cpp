// Row reductions and normalizations over the last axis as lane steps + VXM steps (lower_norm.h).
#include "compiler/passes/lower_norm.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "compiler/reference/interpreter.h"
#include "isa/isa.h"

namespace lpu::compiler {

NormLowering::NormLowering(const ir::Graph& g, LoweredModel& lm, std::vector<char>& produced, AttentionLowering& attn,
                           std::function<ir::TensorId(const ir::Op&, ir::TensorId)> activation)
    : g_(g), lm_(lm), produced_(produced), attn_(attn), activation_(std::move(activation)) {}

void NormLowering::fail(const ir::Op& op, const std::string& why) const {
  node_error(g_, op, why);
}

ir::TensorId NormLowering::fresh(const ir::Op& op, const std::string& suffix, ir::DType dt, const ir::Shape& shape) {
  const ir::TensorId id = lm_.add_extra(g_, op.name + suffix, dt, shape);
  produced_.resize(static_cast<size_t>(id) + 1, 0);
  return id;
}

void NormLowering::lane(const ir::Op& op, const std::string& suffix, LoweredLane::Mode mode, ir::TensorId x,
                        ir::TensorId y, const ir::Shape& ys, bool y_f32, bool square,
                        std::vector<LoweredLane::Post> post) {
  LoweredLane Ln;
  Ln.name = op.name + suffix;
  Ln.mode = mode;
  Ln.x = x;
  Ln.y = y;
  Ln.y_shape = ys;
  Ln.y_f32 = y_f32;
  Ln.square = square;
  Ln.post = std::move(post);
  produced_[static_cast<size_t>(y)] = 1;
  all_lane_.insert(y);
  attn_.note_written(y, false);  // every lane holds the row's (finite if the row is) value
  lm_.add_lane(std::move(Ln));
}

void NormLowering::elt(const ir::Op& op, const std::string& suffix, int vxm_op, std::vector<EltOperand> ops,
                       ir::TensorId y, const ir::Shape& ys, bool y_f32) {
  LoweredEltwise E;
  E.name = op.name + suffix;
  E.kind = op.kind;
  E.vxm_op = vxm_op;
  E.operands = std::move(ops);
  E.y = y;
  E.y_shape = ys;
  E.y_f32 = y_f32;
  const int64_t inner = ys.empty() ? 1 : ys.back();
  for (EltOperand& eo : E.operands)
    if (eo.act == ir::kNoTensor && eo.values.size() == 1) eo.values.assign(static_cast<size_t>(inner), eo.values[0]);
  produced_[static_cast<size_t>(y)] = 1;
  lm_.steps.push_back({false, lm_.eltwise.size()});
  lm_.eltwise.push_back(std::move(E));
}

std::vector<std::vector<int64_t>> NormLowering::row_terms(const ir::Shape& xs, const std::vector<int64_t>& axes) {
  // Rows of xs = its dims but the last, row-major. Output row o (the row dims with `axes` set to 0)
  // gets one term per combination j of the reduced coordinates: terms[j][o] = the input row.
  const size_t nr = xs.empty() ? 0 : xs.size() - 1;
  int64_t rows = 1, nterms = 1;
  for (size_t d = 0; d < nr; ++d) rows *= xs[d];
  for (int64_t a : axes) nterms *= xs[static_cast<size_t>(a)];
  std::vector<char> red(nr, 0);
  for (int64_t a : axes) red[static_cast<size_t>(a)] = 1;
  std::vector<std::vector<int64_t>> terms(static_cast<size_t>(nterms),
                                          std::vector<int64_t>(static_cast<size_t>(rows / nterms), -1));
  std::vector<int64_t> idx(nr, 0);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t o = 0, j = 0;
    for (size_t d = 0; d < nr; ++d) {
      if (red[d]) j = j * xs[d] + idx[d];
      else o = o * xs[d] + idx[d];
    }
    terms[static_cast<size_t>(j)][static_cast<size_t>(o)] = r;
    for (size_t d = nr; d-- > 0;) {
      if (++idx[d] < xs[d]) break;
      idx[d] = 0;
    }
  }
  return terms;
}

void NormLowering::combine_rows(const ir::Op& op, const std::string& tag, ir::TensorId a, const ir::Shape& xs,
                                const std::vector<int64_t>& axes, Opcode comb, ir::TensorId y, const ir::Shape& ys,
                                bool y_f32, ir::DType acc_dt) {
  // y = x[terms[0]] comb x[terms[1]] comb ...: VXM passes of G terms each (the op on the first two,
  // then one binary post op per further term, each read as the chain reaches it), in levels like
  // GlobalAveragePool's (reduction_chain_terms, lowering.h): up to 16 terms are one pass; more are
  // cut into chains of ceil(sqrt(n)) terms whose partials (acc_dt) the next level combines.
  // A chain's ops are serial, so short chains keep a long reduction's passes from running one
  // after the other (one pass per term until session 22). A group past the last term reads the
  // zero row (add) or repeats the group's first term (max / min: exact either way).
  std::vector<std::vector<int64_t>> terms = row_terms(xs, axes);
  const char* cname = comb == Opcode::Add ? "add" : comb == Opcode::Max ? "max" : "min";
  if (terms.size() == 1) {
    EltOperand o;
    o.act = a;
    o.row_map = terms[0];
    elt(op, tag + ".copy", static_cast<int>(Opcode::Mov), {o}, y, ys, y_f32);
    lm_.eltwise.back().has_op = false;
    return;
  }
  const int64_t R = static_cast<int64_t>(terms[0].size());  // output rows
  const int64_t inner = ys.empty() ? 1 : ys.back();
  ir::TensorId src = a;
  for (int level = 1;; ++level) {
    const int64_t n = static_cast<int64_t>(terms.size());
    const int64_t G = reduction_chain_terms(n);
    const int64_t h2 = (n + G - 1) / G;
    const bool last = h2 == 1;
    const ir::Shape ls = last ? ys : ir::Shape{h2 * R, inner};
    const ir::TensorId t = last ? y : fresh(op, fmt::format("{}.l{}", tag, level), acc_dt, ls);
    std::vector<EltOperand> ops(static_cast<size_t>(G));
    for (int64_t i = 0; i < G; ++i) {
      EltOperand& o = ops[static_cast<size_t>(i)];
      o.act = src;
      o.row_map.resize(static_cast<size_t>(h2 * R));
      for (int64_t k = 0; k < h2; ++k)
        for (int64_t r = 0; r < R; ++r) {
          const int64_t j = i * h2 + k;  // strided: a chain reads rows spread over the row blocks
          o.row_map[static_cast<size_t>(k * R + r)] =
              j < n ? terms[static_cast<size_t>(j)][static_cast<size_t>(r)]
                    : (comb == Opcode::Add ? -1 : terms[static_cast<size_t>(k)][static_cast<size_t>(r)]);
        }
    }
    elt(op, fmt::format("{}.{}{}", tag, cname, level), static_cast<int>(comb), std::move(ops), t, ls,
        last ? y_f32 : acc_dt == ir::DType::F32);
    for (int64_t i = 2; i < G; ++i)
      lm_.eltwise.back().post.push_back({static_cast<int>(comb), 0.f, static_cast<int>(i)});
    if (last) return;
    std::vector<std::vector<int64_t>> next(static_cast<size_t>(h2), std::vector<int64_t>(static_cast<size_t>(R)));
    for (int64_t k = 0; k < h2; ++k)
      for (int64_t r = 0; r < R; ++r) next[static_cast<size_t>(k)][static_cast<size_t>(r)] = k * R + r;
    terms = std::move(next);
    src = t;
  }
}

void NormLowering::reduce(const ir::Op& op, ir::TensorId a) {
  // Any set of axes: (1) |x| or x * x first when the kind needs it and the last axis is not
  // reduced (a lane step squares by itself); (2) the last axis, if reduced, by one lane step
  // (sum / max; min = -max(-x), negation is exact); (3) the row axes by VXM passes of row-mapped
  // operands (add / max / min); (4) 1/count (Mean) or sqrt (L2). Sums stay f32 until the output;
  // max/min partials keep the input's type (exact): no f16 rounding inside the op
  // (ref::internal_f16_roundings).
  using K = ir::OpKind;
  const ir::Shape xs = op_shape(op, a);
  const int64_t last = static_cast<int64_t>(xs.size()) - 1;
  std::vector<int64_t> axes = op.attr_ints("axes");
  const bool lane_axis = !axes.empty() && axes.back() == last;
  if (lane_axis) axes.pop_back();
  const K k = op.kind;
  const bool extreme = k == K::ReduceMax || k == K::ReduceMin;
  const bool squares = k == K::ReduceSumSquare || k == K::ReduceL2;
  const ir::DType xdt = lm_.tensor(g_, a).dtype;
  const ir::DType acc_dt = extreme ? xdt : ir::DType::F32;
  int64_t count = 1;
  for (int64_t ax : op.attr_ints("axes")) count *= xs[static_cast<size_t>(ax)];
  const ir::TensorId out = op.outputs[0];
  ir::Shape keep = xs;  // keepdims form: the reduced dims are 1
  for (int64_t ax : op.attr_ints("axes")) keep[static_cast<size_t>(ax)] = 1;
  // Stored shape of y: [.., 1] when the last axis is reduced (a lane step's one vector per row),
  // else the graph shape (same last dim, same rows).
  const ir::Shape ys = lane_axis ? keep : g_.tensor(out).shape;
  const bool post_scale = k == K::ReduceMean, post_sqrt = k == K::ReduceL2;
  ir::TensorId cur = a;
  ir::Shape cur_shape = xs;
  // (1) elementwise pre-transform for the row axes only (ReduceMin over rows uses VXM min directly).
  if (!lane_axis && (squares || k == K::ReduceL1)) {
    const ir::TensorId t = fresh(op, ".pre", squares ? ir::DType::F32 : xdt, xs);
    if (squares) elt(op, ".square", static_cast<int>(Opcode::Mul), {EltOperand::of(a), EltOperand::of(a)}, t, xs, true);
    else elt(op, ".abs", static_cast<int>(Opcode::Abs), {EltOperand::of(a)}, t, xs, xdt == ir::DType::F32);
    cur = t;
  }
  const bool more_after = !axes.empty() || post_scale || post_sqrt;
  // (2) the last axis.
  if (lane_axis) {
    ir::Shape ls = xs;
    ls.back() = 1;
    const ir::TensorId t = more_after ? fresh(op, ".lane", acc_dt, ls) : out;
    const bool t_f32 = more_after && acc_dt == ir::DType::F32;
    if (k == K::ReduceMax) {
      lane(op, ".max", LoweredLane::Mode::Max, a, t, ls, t_f32, false, {});
    } else if (k == K::ReduceMin) {
      const ir::TensorId na = fresh(op, ".neg", xdt, xs), m = fresh(op, ".negmax", xdt, ls);
      elt(op, ".neg", static_cast<int>(Opcode::Neg), {EltOperand::of(a)}, na, xs, xdt == ir::DType::F32);
      lane(op, ".max", LoweredLane::Mode::Max, na, m, ls, xdt == ir::DType::F32, false, {});
      elt(op, ".negback", static_cast<int>(Opcode::Neg), {EltOperand::of(m)}, t, ls, t_f32);
    } else {
      ir::TensorId src = a;
      if (k == K::ReduceL1) {
        src = fresh(op, ".abs", xdt, xs);
        elt(op, ".abs", static_cast<int>(Opcode::Abs), {EltOperand::of(a)}, src, xs, xdt == ir::DType::F32);
      }
      std::vector<LoweredLane::Post> p;
      if (!more_after || axes.empty()) {  // the post ops fold into the lane step when it is the last
        if (post_scale) p.push_back({static_cast<int>(Opcode::MulImm), 1.f / static_cast<float>(count)});
        if (post_sqrt) p.push_back({static_cast<int>(Opcode::Sqrt), 0.f});
      }
      const bool folded = !p.empty();
      const ir::TensorId tt = axes.empty() && folded ? out : t;
      lane(op, k == K::ReduceMean ? ".mean" : ".sum", LoweredLane::Mode::Sum, src, tt, ls,
           tt == out ? false : acc_dt == ir::DType::F32, squares, std::move(p));
      if (tt == out) {
        attn_.note_written(out, false);
        return;
      }
    }
    cur = t;
    cur_shape = ls;
    if (!more_after) return;
  }
  // (3) the row axes.
  const bool need_post = post_scale || post_sqrt;
  if (!axes.empty()) {
    const Opcode comb = k == K::ReduceMax ? Opcode::Max : k == K::ReduceMin ? Opcode::Min : Opcode::Add;
    const ir::TensorId t = need_post ? fresh(op, ".rows", acc_dt, ys) : out;
    combine_rows(op, ".rows", cur, cur_shape, axes, comb, t, ys, need_post && acc_dt == ir::DType::F32, acc_dt);
    cur = t;
  }
  // (4) post ops.
  if (post_scale) {
    EltOperand s;
    s.const_rows = 1;
    s.values = {1.f / static_cast<float>(count)};
    elt(op, ".scale", static_cast<int>(Opcode::Mul), {EltOperand::of(cur), s}, out, ys, false);
  } else if (post_sqrt) {
    elt(op, ".sqrt", static_cast<int>(Opcode::Sqrt), {EltOperand::of(cur)}, out, ys, false);
  }
  attn_.note_written(out, attn_.nonfinite_pad(a));
}

ir::Shape NormLowering::op_shape(const ir::Op& op, ir::TensorId a) const {
  const ir::Shape& gs = g_.tensor(op.inputs[0]).shape;
  const ir::Shape& ss = lm_.tensor(g_, a).shape;
  if (gs == ss || (!gs.empty() && !ss.empty() && gs.back() == ss.back() && ir::num_elements(gs) == ir::num_elements(ss)))
    return gs;
  fail(op, fmt::format("input '{}' {} is read from a stored tensor of shape {} whose rows differ", g_.tensor(op.inputs[0]).name,
                       ir::shape_str(gs), ir::shape_str(ss)));
}

void NormLowering::softmax_rows(const ir::Op& op, ir::TensorId a, int64_t axis) {
  // Softmax along a row axis (not the last): every step is a VXM pass of row-mapped operands.
  // xc = max(x, -65504) (f16, exact; see the last-axis form); m = max over the axis (f16, exact);
  // e = exp(xc - m[row with the axis at 0]) (f32, one pass); S = sum of e over the axis (f32);
  // y = e / S[row]. No f16 rounding before y.
  const ir::Shape xs = op_shape(op, a);
  ir::Shape ms = xs;
  ms[static_cast<size_t>(axis)] = 1;
  // Output row r (of xs) -> its row of the [.., 1 at axis, ..] reductions.
  std::vector<int64_t> bmap;
  {
    const size_t nr = xs.size() - 1;
    int64_t rows = 1;
    for (size_t d = 0; d < nr; ++d) rows *= xs[d];
    std::vector<int64_t> idx(nr, 0);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t o = 0;
      for (size_t d = 0; d < nr; ++d) o = o * ms[d] + (d == static_cast<size_t>(axis) ? 0 : idx[d]);
      bmap.push_back(o);
      for (size_t d = nr; d-- > 0;) {
        if (++idx[d] < xs[d]) break;
        idx[d] = 0;
      }
    }
  }
  auto bc = [&](ir::TensorId t) {
    EltOperand o;
    o.act = t;
    o.row_map = bmap;
    return o;
  };
  EltOperand lo;
  lo.const_rows = 1;
  lo.values = {-65504.f};
  const ir::TensorId xc = fresh(op, ".clamp", ir::DType::F16, xs);
  elt(op, ".clamp", static_cast<int>(Opcode::Max), {EltOperand::of(a), lo}, xc, xs, false);
  const ir::TensorId m = fresh(op, ".max", ir::DType::F16, ms);
  combine_rows(op, ".max", xc, xs, {axis}, Opcode::Max, m, ms, false, ir::DType::F16);
  const ir::TensorId e = fresh(op, ".e", ir::DType::F32, xs), S = fresh(op, ".sum", ir::DType::F32, ms);
  // e = exp(xc - m) in one pass: the f32 difference is never stored (it was an f32 tensor of its
  // own, written and read back: same values).
  elt(op, ".exp", static_cast<int>(Opcode::Sub), {EltOperand::of(xc), bc(m)}, e, xs, true);
  lm_.eltwise.back().post = {{static_cast<int>(Opcode::Exp), 0.f}};
  combine_rows(op, ".sum", e, xs, {axis}, Opcode::Add, S, ms, true, ir::DType::F32);
  elt(op, ".div", static_cast<int>(Opcode::Div), {EltOperand::of(e), bc(S)}, op.outputs[0], xs, false);
  attn_.note_written(op.outputs[0], true);  // pad lanes: exp of junk / sum
}

bool NormLowering::may_hold_neg_inf(ir::TensorId t) const {
  using K = ir::OpKind;
  std::vector<ir::TensorId> todo{t};
  std::set<ir::TensorId> seen;
  while (!todo.empty()) {
    const ir::TensorId u = todo.back();
    todo.pop_back();
    if (u == ir::kNoTensor || !seen.insert(u).second) continue;
    if (static_cast<size_t>(u) >= g_.tensors().size()) return true;  // a lowering tensor: unknown
    const ir::Tensor& tt = g_.tensor(u);
    if (tt.is_const) {
      if (!ir::dtype_is_float(tt.dtype)) continue;
      for (float v : tt.const_floats())
        if (!std::isfinite(v)) return true;
      continue;
    }
    if (tt.producer < 0) return true;  // a graph input (e.g. a runtime additive mask)
    const ir::Op& p = g_.ops()[static_cast<size_t>(tt.producer)];
    switch (p.kind) {
      // Finite for finite inputs (an infinity there is no masking pattern: the reference's result
      // is NaN or infinite too): the walk stops.
      case K::MatMul: case K::Gemm: case K::Conv: case K::LayerNormalization: case K::Softmax:
      case K::BatchNormalization: case K::ReduceMean: case K::ReduceSum: case K::ReduceMax: case K::ReduceMin:
      case K::ReduceSumSquare: case K::ReduceL1: case K::ReduceL2: case K::MaxPool: case K::AveragePool:
      case K::GlobalAveragePool: case K::Equal:
        continue;
      // Elementwise ops and views that pass a -inf through (or make one only by overflow).
      case K::Add: case K::Sub: case K::Mul: case K::Max: case K::Min: case K::Neg: case K::Abs: case K::Relu:
      case K::Cast: case K::Sigmoid: case K::Tanh: case K::Erf: case K::Reshape: case K::Transpose:
      case K::Concat: case K::Split: case K::Slice:
        for (ir::TensorId in : p.inputs) todo.push_back(in);
        continue;
      case K::Where:  // the condition selects; the values come from inputs 1 and 2
        for (size_t i = 1; i < p.inputs.size(); ++i) todo.push_back(p.inputs[i]);
        continue;
      case K::Gather:
        todo.push_back(p.inputs[0]);
        continue;
      default:
        return true;  // Div, Exp, Pow, ...: may make infinities
    }
  }
  return false;
}

bool NormLowering::defer_scale(ir::TensorId y, ir::TensorId x, float c, const ir::Op& softmax) {
  const ir::Shape& ys = g_.tensor(y).shape;
  if (!(c > 0.f) || !std::isfinite(c) || softmax.kind != ir::OpKind::Softmax || softmax.inputs.size() != 1 ||
      softmax.inputs[0] != y || ys.empty() || softmax.attr_int("axis") != static_cast<int64_t>(ys.size()) - 1 ||
      g_.tensor(x).shape != ys || may_hold_neg_inf(x))
    return false;
  scaled_[y] = {x, c};
  return true;
}

bool NormLowering::pv_only_reader(const ir::Op& op) const {
  // P = Softmax(x) read by exactly one node, a MatMul P.V with P as A only and V an activation;
  // P not a graph output.
  const ir::TensorId p = op.outputs[0];
  if (std::find(g_.outputs().begin(), g_.outputs().end(), p) != g_.outputs().end()) return false;
  const std::vector<std::vector<int>> cons = g_.consumers();
  const std::vector<int>& c = cons[static_cast<size_t>(p)];
  if (c.size() != 1) return false;
  const ir::Op& mm = g_.ops()[static_cast<size_t>(c[0])];
  return mm.kind == ir::OpKind::MatMul && mm.inputs.size() == 2 && mm.inputs[0] == p && mm.inputs[1] != p &&
         mm.inputs[1] != ir::kNoTensor && !g_.tensor(mm.inputs[1]).is_const;
}

ir::TensorId NormLowering::row_scalar(const ir::Op& op, ir::TensorId t) {
  if (all_lane_.count(t)) return t;
  const ir::Tensor& tt = lm_.tensor(g_, t);
  const ir::TensorId y = fresh(op, ".bcast", tt.dtype, tt.shape);
  lane(op, ".bcast", LoweredLane::Mode::Broadcast, t, y, tt.shape, false, false, {});
  return y;
}

namespace {
// One constant row holding f (elt() widens it to the row).
EltOperand scalar(float f) {
  EltOperand o;
  o.const_rows = 1;
  o.values = {f};
  return o;
}
LoweredLane::Post post(Opcode o, float imm = 0.f) { return LoweredLane::Post{static_cast<int>(o), imm}; }
}  // namespace

bool NormLowering::lower(const ir::Op& op) {
  using OK = ir::OpKind;
  const bool is_reduce = op.kind == OK::ReduceSum || op.kind == OK::ReduceMean || op.kind == OK::ReduceMax ||
                      op.kind == OK::ReduceMin || op.kind == OK::ReduceSumSquare || op.kind == OK::ReduceL1 ||
                      op.kind == OK::ReduceL2;
  if (op.kind != OK::Softmax && op.kind != OK::LayerNormalization && !is_reduce) return false;
  // A Softmax reading a deferred x * c (defer_scale) reads x; c goes into its exp pass.
  const auto scaled = op.kind == OK::Softmax ? scaled_.find(op.inputs[0]) : scaled_.end();
  const float in_scale = scaled != scaled_.end() ? scaled->second.second : 1.f;
  const ir::TensorId a = activation_(op, scaled != scaled_.end() ? scaled->second.first : op.inputs[0]);
  const ir::Shape xs = op_shape(op, a);
  const int64_t last = static_cast<int64_t>(xs.size()) - 1;
  if (xs.empty()) fail(op, "a scalar input has nothing to reduce or normalize over");
  if (is_reduce) {
    const std::vector<int64_t>& axes = op.attr_ints("axes");
    // Over the last axis the result is stored one value per row ([.., 1], a lane step): another op
    // reading a keepdims=0 result ([3, 4] for [3, 4, 5] over axis 2) would take it as rows of lanes.
    const ir::Shape& os = g_.tensor(op.outputs[0]).shape;
    if (axes.back() == last && op.attr_int("keepdims") == 0 && !os.empty() && os.back() != 1) {
      const std::vector<std::vector<int>> cons = g_.consumers();
      for (int c : cons[static_cast<size_t>(op.outputs[0])])
        fail(op, fmt::format("keepdims=0 over the last axis of {}: the result is stored one value per row ({} with a "
                             "last dim of 1) and node '{}' reads it as {}; only a graph output can be (keepdims=1 "
                             "is supported)",
                             ir::shape_str(xs), ir::shape_str(os), g_.ops()[static_cast<size_t>(c)].name,
                             ir::shape_str(os)));
    }
    // ReduceSum/ReduceMean over the last axis alone: the original one-lane-step form.
    if (axes == std::vector<int64_t>{last} && (op.kind == OK::ReduceSum || op.kind == OK::ReduceMean)) {
      sum_last(op, a, xs);
    } else {
      reduce(op, a);
    }
    return true;
  }
  if (op.kind == OK::Softmax) {
    if (op.attr_int("axis") < last) {
      softmax_rows(op, a, op.attr_int("axis"));
    } else {
      softmax_last(op, a, xs, in_scale);
    }
    return true;
  }
  if (op.attr_int("axis") != last)
    fail(op, fmt::format("axis {} of an input of shape {}: LayerNormalization is lowered over the last axis only "
                         "(supported: any axes for the reductions, any single axis for Softmax)",
                         op.attr_int("axis"), ir::shape_str(xs)));
  layer_norm(op, a, xs);
  return true;
}

void NormLowering::sum_last(const ir::Op& op, ir::TensorId a, const ir::Shape& xs) {
  // One lane step: f32 row sum (x1/K for the mean), stored [.., 1] (keepdims or not: same bytes).
  ir::Shape ys = xs;
  ys.back() = 1;
  std::vector<LoweredLane::Post> p;
  if (op.kind == ir::OpKind::ReduceMean) p.push_back(post(Opcode::MulImm, 1.f / static_cast<float>(xs.back())));
  lane(op, "", LoweredLane::Mode::Sum, a, op.outputs[0], ys, false, false, std::move(p));
}

ir::TensorId NormLowering::softmax_clamp(const ir::Op& op, ir::TensorId a, const ir::Shape& xs) {
  if (!may_hold_neg_inf(op.inputs[0])) return a;
  const int64_t K = xs.back();
  const ir::TensorId xc = fresh(op, ".clamp", ir::DType::F16, xs);
  // When one elementwise step writes x (f16) and only the Softmax reads it (e.g. a mask Add
  // or Where), the clamp is that step's last post op (`max` with a constant row, f32,
  // before the narrowing), and the step writes xc instead of x: one pass fewer. Bit for bit
  // the separate pass's value: narrowing to f16 is monotone and -65504 is an f16 value, so
  // max(narrow(v), -65504) == narrow(max(v, -65504)) for every v (NaN: maxNum gives -65504
  // in both; pad lanes: max with the row's 0 pad in both).
  const int wi = sole_writer_ && a == op.inputs[0] ? sole_writer_(a) : -1;
  LoweredEltwise* W = wi >= 0 ? &lm_.eltwise[static_cast<size_t>(wi)] : nullptr;
  if (W && W->y == a && W->has_op && !W->y_f32 && W->y2 == ir::kNoTensor && lm_.tensor(g_, a).shape == xs &&
      (W->y_shape.empty() || W->y_shape == xs)) {
    EltOperand lo = scalar(-65504.f);
    lo.values.assign(static_cast<size_t>(K), -65504.f);
    W->operands.push_back(std::move(lo));
    W->post.push_back({static_cast<int>(Opcode::Max), 0.f, static_cast<int>(W->operands.size()) - 1});
    W->y = xc;
    produced_[static_cast<size_t>(a)] = 0;
    produced_[static_cast<size_t>(xc)] = 1;
  } else {
    elt(op, ".clamp", static_cast<int>(Opcode::Max), {EltOperand::of(a), scalar(-65504.f)}, xc, xs, false);  // exact in f16
  }
  return xc;
}

void NormLowering::softmax_last(const ir::Op& op, ir::TensorId a, const ir::Shape& xs, float in_scale) {
  // m = row max (f16, exact); e = exp(x - m) in f32; y = e / row sum of e (f32).
  // Masked logits (-inf, e.g. a causal mask by Where) are first clamped to the lowest f16,
  // -65504: exp(-65504 - m) is 0 in f32 like exp(-inf), and a wholly masked row gives a
  // uniform row instead of NaN (-inf - -inf). The clamp is the identity on finite f16 values,
  // so it is left out when x can hold -inf only by f16 overflow (may_hold_neg_inf: no -inf
  // constant or graph input reaches x through elementwise ops and views; e.g. attention
  // scores q.K^T x 1/sqrt(d) without a mask): the same values for every finite x. (An
  // overflowed x is outside the reference bound with or without the clamp.)
  const ir::TensorId xc = softmax_clamp(op, a, xs), out = op.outputs[0];
  ir::Shape ys = xs;
  ys.back() = 1;
  const ir::TensorId m = fresh(op, ".max", ir::DType::F16, ys);
  lane(op, ".max", LoweredLane::Mode::Max, xc, m, ys, false, false, {});
  // e = exp(-relu(m - xc)) in ONE VXM pass (sub, then relu, neg, exp fused): on the row's lanes
  // m - xc >= 0 (m is their max; the f32 difference of f16 values rounds symmetrically), so
  // relu changes nothing and e = exp(xc - m) exactly; on pad lanes (xc = max(x, 0) there with
  // the clamp, the constant's pad being 0; x without it) e is in [0, 1] whenever m is a number
  // and the pad lane finite: when x's pad lanes are finite, e's and P's are too (no pad
  // clearing before the MXM). m is NaN only if a lane of
  // the row is, and then the row's results are NaN anyway.
  const ir::TensorId e = fresh(op, ".e", ir::DType::F32, xs), S = fresh(op, ".sum", ir::DType::F32, ys);
  // With a deferred scale c (defer_scale) m and xc are of the unscaled x and `muli c` comes
  // first: c (m - xc) >= 0 on the row's lanes, e = exp(c xc - c m) in f32.
  elt(op, ".exp", static_cast<int>(Opcode::Sub), {EltOperand::of(m, true), EltOperand::of(xc)}, e, xs, true);
  lm_.eltwise.back().post = {{static_cast<int>(Opcode::Relu), 0.f}, {static_cast<int>(Opcode::Neg), 0.f},
                             {static_cast<int>(Opcode::Exp), 0.f}};
  if (in_scale != 1.f)
    lm_.eltwise.back().post.insert(lm_.eltwise.back().post.begin(), {static_cast<int>(Opcode::MulImm), in_scale});
  const bool pad_nonfinite = attn_.nonfinite_pad(a);
  if (pv_only_reader(op)) {  // the sum and divide go to P.V (AttentionLowering::defer_softmax)
    attn_.note_written(e, pad_nonfinite);
    attn_.defer_softmax(out, e, op.name);
    return;
  }
  lane(op, ".sum", LoweredLane::Mode::Sum, e, S, ys, true, false, {});
  elt(op, ".div", static_cast<int>(Opcode::Div), {EltOperand::of(e), EltOperand::of(S, true)}, out, xs, false);
  attn_.note_written(out, pad_nonfinite);  // pad lanes: e / S with S >= 1
}

void NormLowering::layer_norm(const ir::Op& op, ir::TensorId a, const ir::Shape& xs) {
  const int64_t K = xs.back();
  const float invK = 1.f / static_cast<float>(K);
  const ir::TensorId out = op.outputs[0];
  ir::Shape ys = xs;
  ys.back() = 1;
  // LayerNormalization: mean = sum(x) / K (one lane step); sd = sqrt(sum((x - mean)^2) / K + eps)
  // (one lane step reading x and the mean: per chunk cvt, sub, mask, square, then the sum, muli,
  // addi, sqrt); y = (x - mean) / sd * scale (+ B) in one pass. All f32 until y; no centred copy
  // of x is stored (the values are those of a separate f32 d = x - mean: the same ops, in order).
  auto const_row = [&](ir::TensorId t, const char* what) {
    const ir::Tensor& c = g_.tensor(t);
    if (!c.is_const) fail(op, std::string(what) + " must be a constant");
    const std::vector<float> v = c.const_floats();
    const std::vector<int64_t> map = ref::broadcast_index_map({K}, c.shape);
    EltOperand o;
    o.const_rows = 1;
    for (int64_t i = 0; i < K; ++i) o.values.push_back(v[static_cast<size_t>(map[static_cast<size_t>(i)])]);
    return o;
  };
  const EltOperand scale = const_row(op.inputs[1], "Scale");
  const bool has_b = op.inputs.size() > 2 && op.inputs[2] != ir::kNoTensor;
  const EltOperand bias = has_b ? const_row(op.inputs[2], "B") : EltOperand{};
  const float eps = op.attr_float("epsilon");
  const ir::TensorId mean = fresh(op, ".mean", ir::DType::F32, ys), sd = fresh(op, ".sd", ir::DType::F32, ys);
  lane(op, ".mean", LoweredLane::Mode::Sum, a, mean, ys, true, false, {post(Opcode::MulImm, invK)});
  lane(op, ".sd", LoweredLane::Mode::Sum, a, sd, ys, true, true,
       {post(Opcode::MulImm, invK), post(Opcode::AddImm, eps), post(Opcode::Sqrt)});
  lm_.lanes.back().center = mean;
  // Centre, normalize, scale and shift in ONE pass: x - mean, then `div` by sd, `mul` by the Scale
  // row and `add` of the B row as binary post ops (their vectors read on those ops' cycles,
  // backend/elementwise_kernel.h); f32 between the ops, the same values as passes with f32
  // intermediates.
  std::vector<EltOperand> nops{EltOperand::of(a), EltOperand::of(mean, true), EltOperand::of(sd, true), scale};
  if (has_b) nops.push_back(bias);
  elt(op, ".norm", static_cast<int>(Opcode::Sub), std::move(nops), out, xs, false);
  lm_.eltwise.back().post.push_back({static_cast<int>(Opcode::Div), 0.f, 2});
  lm_.eltwise.back().post.push_back({static_cast<int>(Opcode::Mul), 0.f, 3});
  if (has_b) lm_.eltwise.back().post.push_back({static_cast<int>(Opcode::Add), 0.f, 4});
  attn_.note_written(out, attn_.nonfinite_pad(a));  // pad lanes: (x - mean) / sd * 0 (+ 0)
  LoweredModel::Norm nm;
  nm.x = a;
  nm.mean = mean;
  nm.sd = sd;
  nm.y = out;
  nm.scale = scale.values;
  nm.bias = has_b ? bias.values : std::vector<float>(static_cast<size_t>(K), 0.f);
  lm_.norms.push_back(std::move(nm));
}

}  // namespace lpu::compiler
