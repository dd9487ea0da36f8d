// Row reductions and normalizations over the last axis as lane steps + VXM steps (lower_norm.h).
#include "compiler/passes/lower_norm.h"

#include <fmt/format.h>

#include "compiler/reference/interpreter.h"
#include "isa/isa.h"

namespace lpu::compiler {

NormLowering::NormLowering(const ir::Graph& g, LoweredModel& lm, std::vector<char>& produced, AttentionLowering& attn,
                           std::function<ir::TensorId(const ir::Op&, ir::TensorId)> activation)
    : g_(g), lm_(lm), produced_(produced), attn_(attn), activation_(std::move(activation)) {}

void NormLowering::fail(const ir::Op& op, const std::string& why) const {
  throw InputError(fmt::format("model '{}': node '{}' ({}): {}", g_.name, op.name, ir::op_kind_name(op.kind), why));
}

ir::TensorId NormLowering::fresh(const ir::Op& op, const std::string& suffix, ir::DType dt, const ir::Shape& shape) {
  ir::Tensor t;
  t.name = g_.unique_name(op.name + suffix);
  t.dtype = dt;
  t.shape = shape;
  lm_.extra.push_back(std::move(t));
  produced_.resize(g_.tensors().size() + lm_.extra.size(), 0);
  return static_cast<ir::TensorId>(g_.tensors().size() + lm_.extra.size() - 1);
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
  LoweredStep st;
  st.dense = false;
  st.lane = true;
  st.index = lm_.lanes.size();
  lm_.steps.push_back(st);
  lm_.lanes.push_back(std::move(Ln));
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

void NormLowering::reduce_rows(const ir::Op& op, ir::TensorId a, int64_t axis) {
  // Over a row axis: y = x[map_0] + x[map_1] + ... (f32 partial sums; VXM adds of row-mapped
  // operands, one pass per term), times 1/n for ReduceMean. Output row o = (p, q) (p: the dims
  // before the axis, q: the row dims after it) reads x row (p * n + j) * mid + q for term j.
  const ir::Shape xs = lm_.tensor(g_, a).shape;
  const int64_t n = xs[static_cast<size_t>(axis)];
  int64_t outer = 1, mid = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= xs[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d + 1 < xs.size(); ++d) mid *= xs[d];
  const ir::TensorId out = op.outputs[0];
  const ir::Shape ys = g_.tensor(out).shape;
  auto term = [&](int64_t j) {
    EltOperand o;
    o.act = a;
    for (int64_t p = 0; p < outer; ++p)
      for (int64_t q = 0; q < mid; ++q) o.row_map.push_back((p * n + j) * mid + q);
    return o;
  };
  const bool mean = op.kind == ir::OpKind::ReduceMean;
  if (n == 1) {
    elt(op, ".copy", static_cast<int>(Opcode::Mov), {term(0)}, out, ys, false);
    lm_.eltwise.back().has_op = false;
    return;
  }
  EltOperand acc = term(0);
  for (int64_t j = 1; j < n; ++j) {
    const bool last = j + 1 == n && !mean;
    const ir::TensorId t = last ? out : fresh(op, fmt::format(".acc{}", j), ir::DType::F32, ys);
    elt(op, fmt::format(".add{}", j), static_cast<int>(Opcode::Add), {acc, term(j)}, t, ys, !last);
    acc = EltOperand{};
    acc.act = t;
  }
  if (mean) {
    EltOperand s;
    s.const_rows = 1;
    s.values = {1.f / static_cast<float>(n)};
    elt(op, ".scale", static_cast<int>(Opcode::Mul), {acc, s}, out, ys, false);
  }
}

ir::TensorId NormLowering::row_scalar(const ir::Op& op, ir::TensorId t) {
  if (all_lane_.count(t)) return t;
  const ir::Tensor& tt = lm_.tensor(g_, t);
  const ir::TensorId y = fresh(op, ".bcast", tt.dtype, tt.shape);
  lane(op, ".bcast", LoweredLane::Mode::Broadcast, t, y, tt.shape, false, false, {});
  return y;
}

bool NormLowering::lower(const ir::Op& op) {
  using Mode = LoweredLane::Mode;
  if (op.kind != ir::OpKind::Softmax && op.kind != ir::OpKind::LayerNormalization &&
      op.kind != ir::OpKind::ReduceSum && op.kind != ir::OpKind::ReduceMean)
    return false;
  const ir::TensorId a = activation_(op, op.inputs[0]);
  const ir::Shape xs = lm_.tensor(g_, a).shape;
  const int64_t last = static_cast<int64_t>(xs.size()) - 1;
  const bool reduce = op.kind == ir::OpKind::ReduceSum || op.kind == ir::OpKind::ReduceMean;
  if (reduce && op.attr_ints("axes").size() == 1 && op.attr_ints("axes")[0] < last) {
    reduce_rows(op, a, op.attr_ints("axes")[0]);
    return true;
  }
  const bool over_last = !xs.empty() && (op.kind == ir::OpKind::ReduceSum || op.kind == ir::OpKind::ReduceMean
                                             ? op.attr_ints("axes") == std::vector<int64_t>{last}
                                             : op.attr_int("axis") == last);
  if (!over_last && reduce)
    fail(op, fmt::format("axes {} of an input of shape {}: ReduceSum/ReduceMean are lowered over a single axis only",
                         ir::shape_str(op.attr_ints("axes")), ir::shape_str(xs)));
  if (!over_last)
    fail(op, std::string(ir::op_kind_name(op.kind)) + " is lowered over the last axis only (supported: "
                                                       "ReduceSum/ReduceMean over one axis, Softmax and "
                                                       "LayerNormalization over the last axis)");
  const int64_t K = xs.back();
  ir::Shape ys = xs;
  ys.back() = 1;
  auto act = [](ir::TensorId t, bool bc = false) {
    EltOperand o;
    o.act = t;
    o.lane_bcast = bc;
    return o;
  };
  auto scalar = [](float f) {
    EltOperand o;
    o.const_rows = 1;
    o.values = {f};
    return o;
  };
  auto post = [](Opcode o, float imm = 0.f) { return LoweredLane::Post{static_cast<int>(o), imm}; };
  const float invK = 1.f / static_cast<float>(K);
  const ir::TensorId out = op.outputs[0];
  switch (op.kind) {
    case ir::OpKind::ReduceSum:
    case ir::OpKind::ReduceMean: {
      // One lane step: f32 row sum (x1/K for the mean), stored [.., 1] (keepdims or not: same bytes).
      std::vector<LoweredLane::Post> p;
      if (op.kind == ir::OpKind::ReduceMean) p.push_back(post(Opcode::MulImm, invK));
      lane(op, "", Mode::Sum, a, out, ys, false, false, std::move(p));
      return true;
    }
    case ir::OpKind::Softmax: {
      // m = row max (f16, exact); e = exp(x - m) in f32; y = e / row sum of e (f32).
      // Masked logits (-inf, e.g. a causal mask by Where) are first clamped to the lowest f16,
      // -65504: exp(-65504 - m) is 0 in f32 like exp(-inf), and a wholly masked row gives a
      // uniform row instead of NaN (-inf - -inf).
      const ir::TensorId xc = fresh(op, ".clamp", ir::DType::F16, xs);
      elt(op, ".clamp", static_cast<int>(Opcode::Max), {act(a), scalar(-65504.f)}, xc, xs, false);  // exact in f16
      const ir::TensorId m = fresh(op, ".max", ir::DType::F16, ys);
      lane(op, ".max", Mode::Max, xc, m, ys, false, false, {});
      const ir::TensorId d = fresh(op, ".d", ir::DType::F32, xs), e = fresh(op, ".e", ir::DType::F32, xs),
                         S = fresh(op, ".sum", ir::DType::F32, ys);
      elt(op, ".sub", static_cast<int>(Opcode::Sub), {act(xc), act(m, true)}, d, xs, true);
      elt(op, ".exp", static_cast<int>(Opcode::Exp), {act(d)}, e, xs, true);
      lane(op, ".sum", Mode::Sum, e, S, ys, true, false, {});
      elt(op, ".div", static_cast<int>(Opcode::Div), {act(e), act(S, true)}, out, xs, false);
      attn_.note_written(out, true);  // pad lanes: exp of junk / sum
      return true;
    }
    default: break;
  }
  // LayerNormalization: mean = sum(x) / K; d = x - mean; sd = sqrt(sum(d * d) / K + eps) (one lane
  // step: square, sum, muli, addi, sqrt); y = d / sd * scale (+ B). All f32 until y.
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
  const ir::TensorId mean = fresh(op, ".mean", ir::DType::F32, ys), d = fresh(op, ".d", ir::DType::F32, xs),
                     sd = fresh(op, ".sd", ir::DType::F32, ys), nrm = fresh(op, ".norm", ir::DType::F32, xs);
  const ir::TensorId sc = has_b ? fresh(op, ".scaled", ir::DType::F32, xs) : out;
  lane(op, ".mean", Mode::Sum, a, mean, ys, true, false, {post(Opcode::MulImm, invK)});
  elt(op, ".center", static_cast<int>(Opcode::Sub), {act(a), act(mean, true)}, d, xs, true);
  lane(op, ".sd", Mode::Sum, d, sd, ys, true, true,
       {post(Opcode::MulImm, invK), post(Opcode::AddImm, eps), post(Opcode::Sqrt)});
  elt(op, ".div", static_cast<int>(Opcode::Div), {act(d), act(sd, true)}, nrm, xs, true);
  elt(op, ".scale", static_cast<int>(Opcode::Mul), {act(nrm), scale}, sc, xs, has_b);
  if (has_b) elt(op, ".bias", static_cast<int>(Opcode::Add), {act(sc), bias}, out, xs, false);
  attn_.note_written(out, attn_.nonfinite_pad(a));  // pad lanes: (x - mean) / sd * 0 (+ 0)
  return true;
}

}  // namespace lpu::compiler
