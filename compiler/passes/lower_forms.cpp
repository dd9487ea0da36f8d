// Conformance forms of supported ops (see lower_forms.h): output copies, Gemm with any C and
// transA, standalone BatchNormalization, Where on a bool graph input, Concat along the last axis,
// Gather with constant indices.
#include "compiler/passes/lower_forms.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "compiler/reference/interpreter.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

bool is_float(ir::DType t) { return t == ir::DType::F32 || t == ir::DType::F16; }

// Same stored layout [rows, last dim] (the elementwise kernel's operand rule).
bool same_rows_inner(const ir::Shape& a, const ir::Shape& b) {
  return last_dim(a) == last_dim(b) && ir::num_elements(a) == ir::num_elements(b);
}

}  // namespace

FormLowering::FormLowering(const ir::Graph& g, LoweredModel& lm, std::vector<int>& layer_of,
                           std::vector<char>& produced, std::vector<ir::TensorId>& alias,
                           std::vector<int>& input_index, AttentionLowering& attn)
    : g_(g), lm_(lm), layer_of_(layer_of), produced_(produced), alias_(alias), input_index_(input_index),
      attn_(attn) {}

bool FormLowering::lower(const ir::Op& op) {
  switch (op.kind) {
    case ir::OpKind::Reshape: return output_copy(op);
    case ir::OpKind::Gemm: return gemm(op);
    case ir::OpKind::BatchNormalization: batchnorm(op); return true;
    case ir::OpKind::Where: return where(op);
    case ir::OpKind::Equal: return equal(op);
    case ir::OpKind::Transpose: return transpose_lanes(op);
    case ir::OpKind::Concat: return concat_last(op);
    case ir::OpKind::Gather: return gather(op);
    default: return false;
  }
}

ir::TensorId FormLowering::fresh(const std::string& name, ir::DType dt, const ir::Shape& shape) {
  const ir::TensorId id = lm_.add_extra(g_, fmt::format("{}.f{}", name, lm_.extra.size()), dt, shape);
  produced_.resize(static_cast<size_t>(id) + 1, 0);
  return id;
}

bool FormLowering::is_graph_input(ir::TensorId t) const {
  return std::find(g_.inputs().begin(), g_.inputs().end(), t) != g_.inputs().end();
}

bool FormLowering::is_graph_output(ir::TensorId t) const {
  return std::find(g_.outputs().begin(), g_.outputs().end(), t) != g_.outputs().end();
}

bool FormLowering::conv_layout(ir::TensorId t) const {
  for (const LoweredInput& in : lm_.inputs)
    if (in.alias == t && !in.host_map.empty()) return true;
  const ir::Shape& gs = lm_.tensor(g_, t).shape;
  auto other = [&](const std::vector<int64_t>& ys) { return !ys.empty() && ys.size() == 4 && ys != gs; };
  for (const LoweredLayer& L : lm_.layers)
    if (L.y == t && other(L.y_shape)) return true;
  for (const LoweredEltwise& E : lm_.eltwise)
    if (E.y == t && other(E.y_shape)) return true;
  for (const LoweredGather& G : lm_.gathers)
    if (G.y == t && G.taps > 1) return true;  // im2col rows
  return false;
}

ir::TensorId FormLowering::activation(const ir::Op& op, ir::TensorId t) {
  const ir::TensorId a = alias_[static_cast<size_t>(t)];
  const ir::Tensor& at = g_.tensor(a);
  if (at.is_const) node_error(g_, op, "constant activation input '" + at.name + "'");
  if (!is_float(at.dtype))
    node_error(g_, op, fmt::format("activation '{}' has type {}; float models only", at.name, ir::dtype_name(at.dtype)));
  const ir::TensorId s = attn_.stored(op, t);
  if (conv_layout(s))
    node_error(g_, op, fmt::format("input '{}' is a conv activation (stored [N, H, W, C], passes/lower_conv.h); this op "
                             "is lowered on the plain [rows, last dim] layout only", at.name));
  return s;
}

void FormLowering::add_eltwise(LoweredEltwise E, bool maybe_nonfinite) {
  produced_[static_cast<size_t>(E.y)] = 1;
  attn_.note_written(E.y, maybe_nonfinite);
  lm_.steps.push_back({false, lm_.eltwise.size()});
  lm_.eltwise.push_back(std::move(E));
}

void FormLowering::add_layer(LoweredLayer L) {
  produced_[static_cast<size_t>(L.y)] = 1;
  attn_.note_written(L.y, false);
  lm_.steps.push_back({true, lm_.layers.size()});
  lm_.layers.push_back(std::move(L));
}

// ---- output copies ----------------------------------------------------------------------------

bool FormLowering::output_copy(const ir::Op& op) {
  const ir::TensorId in = op.inputs[0], out = op.outputs[0];
  if (!is_graph_output(out)) return false;
  const ir::Tensor& it = g_.tensor(in);
  const ir::Tensor& ot = g_.tensor(out);
  const bool input = is_graph_input(in) && alias_[static_cast<size_t>(in)] == in;
  if (!it.is_const && !input) return false;  // a view of a chip tensor: lower_attention materializes it
  if (!is_float(ot.dtype))
    node_error(g_, op, fmt::format("graph output '{}' is a copy of {} '{}' of type {}; the chip stores float tensors "
                             "only (f16/f32; it has no {} type)",
                             ot.name, it.is_const ? "the constant" : "graph input", it.name,
                             ir::dtype_name(ot.dtype), ir::dtype_name(ot.dtype)));
  LoweredEltwise E;
  E.name = op.name;
  E.kind = op.kind;
  E.has_op = false;  // f32 output: a VXM `mov` (after `cvt f16 -> f32` for an f16 source)
  E.vxm_op = static_cast<int>(Opcode::Mov);
  E.y = out;
  if (it.is_const) {
    // SRAM image data (f32) holding the f16 value of each element: the output of an op is f16 in the
    // model's fp16 view (docs/compiler.md "Precision"), like a copy of an f16 graph input.
    std::vector<float> v = it.const_floats();
    for (float& f : v) f = ir::round_f16(f);
    E.operands = {EltOperand::constant(v, ot.shape)};
    add_eltwise(std::move(E), false);
    return true;
  }
  const int ii = input_index_[static_cast<size_t>(in)];
  if (ii < 0 || lm_.inputs[static_cast<size_t>(ii)].alias != in || conv_layout(in)) return false;
  ir::TensorId src = in;
  if (!same_rows_inner(it.shape, ot.shape)) {
    // Other rows/lanes: the host lays the input out in the output's shape (same row-major bytes,
    // as for a Reshape folded into an input) when this is its only use.
    const auto cons = g_.consumers();
    if (cons[static_cast<size_t>(in)].size() != 1 || is_graph_output(in)) return false;
    src = fresh(it.name + ".laid", ir::DType::F16, ot.shape);
    lm_.inputs[static_cast<size_t>(ii)].shape = ot.shape;
    lm_.inputs[static_cast<size_t>(ii)].alias = src;
  }
  E.operands = {EltOperand::of(src)};
  add_eltwise(std::move(E), false);
  return true;
}

// ---- Gemm -------------------------------------------------------------------------------------

bool FormLowering::gemm(const ir::Op& op) {
  const ir::Tensor& wt = g_.tensor(op.inputs[1]);
  if (!wt.is_const || wt.shape.size() != 2) return false;  // two activations: lower_attention
  const bool transA = op.attr_int("transA") != 0, transB = op.attr_int("transB") != 0;
  const float alpha = op.attr_float("alpha"), beta = op.attr_float("beta");
  const bool has_c = op.inputs.size() > 2 && op.inputs[2] != ir::kNoTensor;
  const int64_t K = transB ? wt.shape[1] : wt.shape[0], N = transB ? wt.shape[0] : wt.shape[1];
  const ir::Shape ys = g_.tensor(op.outputs[0]).shape;
  const int64_t M = ys.at(0);
  const ir::Tensor* ct = has_c ? &g_.tensor(op.inputs[2]) : nullptr;
  // The core lowering (lower_attention.cpp) handles transA = 0 with no C or a bias C of N elements.
  if (!transA && (!ct || (ct->is_const && ct->elements() == N && last_dim(ct->shape) == N))) return false;
  std::vector<float> bias, cfull;
  bool act_c = false;
  if (ct && ct->is_const) {
    const std::vector<float> cv = ct->const_floats();
    const std::vector<int64_t> map = ref::broadcast_index_map(ys, ct->shape);
    cfull.resize(map.size());
    for (size_t i = 0; i < map.size(); ++i) cfull[i] = beta * cv[static_cast<size_t>(map[i])];
    const EltOperand c = EltOperand::constant(cfull, ys);
    if (c.const_rows == 1) {  // the same row for every output row: the matmul's bias
      bias = c.values;
      cfull.clear();
    }
  } else if (ct) {
    if (beta != 1.f || ct->shape != ys)
      node_error(g_, op, fmt::format("an activation C is lowered with beta = 1 and C of the output's shape {} only (got "
                               "beta {}, C {})", ir::shape_str(ys), beta, ir::shape_str(ct->shape)));
    act_c = true;
  }
  const bool add_after = act_c || !cfull.empty();
  const ir::TensorId y = add_after ? fresh(op.name + ".ab", ir::DType::F32, ys) : op.outputs[0];
  const size_t first = lm_.layers.size();
  if (transA) {
    // X = A^T: the host writes A transposed (LoweredInput::host_map, as for conv inputs). An A
    // computed on the chip would need its last axis moved across lanes: refused.
    const ir::TensorId A = op.inputs[0];
    const int ii = input_index_[static_cast<size_t>(A)];
    const auto cons = g_.consumers();
    const bool ok = ii >= 0 && alias_[static_cast<size_t>(A)] == A && lm_.inputs[static_cast<size_t>(ii)].alias == A &&
                    lm_.inputs[static_cast<size_t>(ii)].host_map.empty() && cons[static_cast<size_t>(A)].size() == 1 &&
                    !is_graph_output(A) && is_float(g_.tensor(A).dtype);
    ir::TensorId xa = A;
    if (ok) {
      LoweredInput& in = lm_.inputs[static_cast<size_t>(ii)];
      in.shape = {M, K};
      in.host_map.resize(static_cast<size_t>(M * K));
      for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K; ++k) in.host_map[static_cast<size_t>(m * K + k)] = k * M + m;  // A is [K, M]
    } else {
      // Computed on the chip (or shared): A^T stored by the Transpose form (MXM, exact).
      xa = fresh(op.name + ".at", ir::DType::F16, {M, K});
      transposed(op, A, {1, 0}, xa, {M, K});
    }
    const std::vector<float> wv = wt.const_floats();
    LoweredLayer L;
    L.name = op.name;
    L.x = xa;
    L.y = y;
    L.K = K;
    L.N = N;
    L.w.resize(static_cast<size_t>(K * N));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n)
        L.w[static_cast<size_t>(k * N + n)] = alpha * wv[static_cast<size_t>(transB ? n * K + k : k * N + n)];
    L.bias = bias;
    if (!add_after) layer_of_[static_cast<size_t>(y)] = static_cast<int>(lm_.layers.size());
    add_layer(std::move(L));
  } else {
    ir::Op m = op;  // the product (alpha, transB, views) by the core lowering, C handled here
    m.inputs.resize(2);
    m.outputs = {y};
    attn_.lower(m);
    for (size_t i = first; i < lm_.layers.size(); ++i)
      if (lm_.layers[i].y == y) lm_.layers[i].bias = bias;
  }
  if (!add_after) return true;
  for (size_t i = first; i < lm_.layers.size(); ++i)
    if (lm_.layers[i].y == y) lm_.layers[i].y_f32 = true;
  LoweredEltwise E;
  E.name = op.name + ".c";
  E.kind = ir::OpKind::Add;
  E.vxm_op = static_cast<int>(Opcode::Add);
  EltOperand p;
  p.act = y;
  EltOperand c;
  if (act_c) c.act = activation(op, op.inputs[2]);
  else c = EltOperand::constant(cfull, ys);
  E.operands = {p, c};
  E.y = op.outputs[0];
  add_eltwise(std::move(E), act_c && attn_.nonfinite_pad(c.act));
  return true;
}

// ---- BatchNormalization -----------------------------------------------------------------------

void FormLowering::batchnorm(const ir::Op& op) {
  const ir::Tensor& yt = g_.tensor(op.outputs[0]);
  const ir::Shape ys = yt.shape;
  if (ys.size() < 2) node_error(g_, op, "X must have rank >= 2 ([N, C, ...])");
  if (!is_float(yt.dtype)) node_error(g_, op, fmt::format("output type {}; float results only", ir::dtype_name(yt.dtype)));
  std::vector<std::vector<float>> p(5);
  static const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
  for (size_t k = 1; k < 5; ++k) {
    const ir::Tensor& t = g_.tensor(op.inputs[k]);
    if (!t.is_const)
      node_error(g_, op, fmt::format("{} '{}' must be a constant (inference form; per-channel values are resolved at "
                               "compile time)", names[k], t.name));
    p[k] = t.const_floats();
  }
  const ir::TensorId x = activation(op, op.inputs[0]);
  const int64_t C = ys[1];
  int64_t sp = 1;
  for (size_t d = 2; d < ys.size(); ++d) sp *= ys[d];
  const int64_t n = ir::num_elements(ys);
  const double eps = op.attr_float("epsilon");
  std::vector<float> mean(static_cast<size_t>(n)), s(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    const size_t c = static_cast<size_t>((e / sp) % C);
    mean[static_cast<size_t>(e)] = p[3][c];
    s[static_cast<size_t>(e)] = static_cast<float>(p[1][c] / std::sqrt(static_cast<double>(p[4][c]) + eps));
    b[static_cast<size_t>(e)] = p[2][c];
  }
  // d = x - mean; q = d * s; y = q + B (f32 intermediates; the reference computes (x - mean) * s + B).
  const ir::TensorId d = fresh(op.name + ".centered", ir::DType::F32, ys);
  const ir::TensorId q = fresh(op.name + ".scaled", ir::DType::F32, ys);
  const bool nf = attn_.nonfinite_pad(x);
  auto step = [&](const std::string& suffix, Opcode o, ir::TensorId a, const std::vector<float>& c, ir::TensorId y,
                  bool f32) {
    LoweredEltwise E;
    E.name = op.name + suffix;
    E.kind = op.kind;
    E.vxm_op = static_cast<int>(o);
    EltOperand ao;
    ao.act = a;
    E.operands = {ao, EltOperand::constant(c, ys)};
    E.y = y;
    E.y_shape = ys;
    E.y_f32 = f32;
    add_eltwise(std::move(E), nf);
  };
  step(".sub", Opcode::Sub, x, mean, d, true);
  step(".mul", Opcode::Mul, d, s, q, true);
  step(".add", Opcode::Add, q, b, op.outputs[0], false);
}

// ---- Where ------------------------------------------------------------------------------------

bool FormLowering::where(const ir::Op& op) {
  const ir::TensorId c0 = op.inputs[0];
  const ir::Tensor& ct = g_.tensor(c0);
  if (ct.is_const || ct.dtype != ir::DType::BOOL) return false;  // constant conditions: core lowering
  const bool from_equal = bool01_.count(c0) != 0;
  if (!from_equal && (!is_graph_input(c0) || alias_[static_cast<size_t>(c0)] != c0))
    node_error(g_, op, fmt::format("condition '{}' is computed on the chip by an op other than Equal of floats; lowered: "
                             "a constant condition, a bool graph input (the host writes it as f16 0/1) or an Equal "
                             "of float tensors (stored as f16 0/1)",
                             ct.name));
  const ir::Tensor& yt = g_.tensor(op.outputs[0]);
  if (!is_float(yt.dtype)) node_error(g_, op, fmt::format("output type {}; float results only", ir::dtype_name(yt.dtype)));
  const ir::Shape ys = yt.shape;
  LoweredEltwise E;
  E.name = op.name;
  E.kind = op.kind;
  E.vxm_op = static_cast<int>(Opcode::Select);
  EltOperand c;
  c.act = c0;  // placed f16 like every graph input (passes/schedule.cpp); sel takes c != 0
  c.row_map = row_broadcast(op, c0, ct.shape, ys);
  E.operands.push_back(c);
  bool nf = false;
  for (size_t k = 1; k < 3; ++k) {
    const ir::Tensor& t = g_.tensor(alias_[static_cast<size_t>(op.inputs[k])]);
    if (t.is_const) {
      const std::vector<float> v = t.const_floats();
      const std::vector<int64_t> map = ref::broadcast_index_map(ys, t.shape);
      std::vector<float> full(map.size());
      for (size_t i = 0; i < map.size(); ++i) full[i] = v[static_cast<size_t>(map[i])];
      E.operands.push_back(EltOperand::constant(full, ys));
    } else {
      EltOperand a;
      a.act = activation(op, op.inputs[k]);
      a.row_map = row_broadcast(op, a.act, g_.tensor(op.inputs[k]).shape, ys);
      nf = nf || attn_.nonfinite_pad(a.act);
      E.operands.push_back(a);
    }
  }
  E.y = op.outputs[0];
  add_eltwise(std::move(E), nf);
  return true;
}

std::vector<int64_t> FormLowering::row_broadcast(const ir::Op& op, ir::TensorId t, const ir::Shape& ts,
                                                 const ir::Shape& ys) {
  if (same_rows_inner(lm_.tensor(g_, t).shape, ys) && same_rows_inner(ts, ys)) return {};
  // Broadcast over rows only (e.g. an attention mask [B, 1, 1, S] against scores [B, H, S, S]):
  // output row r reads the operand's row map[r]; lanes are never broadcast.
  if (last_dim(ts) != last_dim(ys) || ts.size() > ys.size() || !same_rows_inner(lm_.tensor(g_, t).shape, ts))
    node_error(g_, op, fmt::format("activation '{}' of shape {} would be broadcast to {}; activations are broadcast over "
                             "rows only (the last dim must match)",
                             lm_.tensor(g_, t).name, ir::shape_str(ts), ir::shape_str(ys)));
  const ir::Shape yr(ys.begin(), ys.end() - 1);
  ir::Shape tr(ts.begin(), ts.end() - 1);
  std::vector<int64_t> map;
  try {
    map = ref::broadcast_index_map(yr.empty() ? ir::Shape{1} : yr, tr.empty() ? ir::Shape{1} : tr);
  } catch (const InputError&) {
    node_error(g_, op, fmt::format("activation '{}' of shape {} does not broadcast to {}", lm_.tensor(g_, t).name,
                             ir::shape_str(ts), ir::shape_str(ys)));
  }
  return map;
}

bool FormLowering::equal(const ir::Op& op) {
  // Equal of float tensors, stored as f16 0/1 for a Where condition (the causal/padding-mask form
  // `masked_fill(mask == 0, -inf)` of exporters): g = (a > b) + (b > a) on the VXM (`cmpgt`, f32),
  // eq = sel(g, 0, 1). Exact for finite values (NaN == NaN would give 1).
  const ir::TensorId y = op.outputs[0];
  const ir::Shape ys = g_.tensor(y).shape;
  if (is_graph_output(y))
    node_error(g_, op, fmt::format("output '{}' is a bool graph output; the chip stores float outputs only (an Equal is "
                             "lowered as a Where condition)", g_.tensor(y).name));
  std::vector<EltOperand> ab;
  bool any_act = false;
  for (size_t k = 0; k < 2; ++k) {
    const ir::Tensor& t = g_.tensor(alias_[static_cast<size_t>(op.inputs[k])]);
    if (!is_float(t.dtype)) return false;  // integer compares: refused by the core lowering
    if (t.is_const) {
      const std::vector<float> v = t.const_floats();
      const std::vector<int64_t> map = ref::broadcast_index_map(ys, t.shape);
      std::vector<float> full(map.size());
      for (size_t i = 0; i < map.size(); ++i) full[i] = v[static_cast<size_t>(map[i])];
      ab.push_back(EltOperand::constant(full, ys));
    } else {
      EltOperand a;
      a.act = activation(op, op.inputs[k]);
      a.row_map = row_broadcast(op, a.act, g_.tensor(op.inputs[k]).shape, ys);
      ab.push_back(a);
      any_act = true;
    }
  }
  if (!any_act) return false;
  const ir::TensorId g1 = fresh(op.name + ".gt", ir::DType::F32, ys), g2 = fresh(op.name + ".lt", ir::DType::F32, ys),
                     ne = fresh(op.name + ".ne", ir::DType::F32, ys);
  auto step = [&](const std::string& suffix, Opcode o, std::vector<EltOperand> ops, ir::TensorId out, bool f32) {
    LoweredEltwise E;
    E.name = op.name + suffix;
    E.kind = op.kind;
    E.vxm_op = static_cast<int>(o);
    E.operands = std::move(ops);
    E.y = out;
    E.y_shape = ys;
    E.y_f32 = f32;
    add_eltwise(std::move(E), false);
  };
  auto scalar = [&](float f) {
    return EltOperand::constant(std::vector<float>(static_cast<size_t>(last_dim(ys)), f), {1, last_dim(ys)});
  };
  step(".gt", Opcode::CmpGt, {ab[0], ab[1]}, g1, true);
  step(".lt", Opcode::CmpGt, {ab[1], ab[0]}, g2, true);
  step(".ne", Opcode::Add, {EltOperand::of(g1), EltOperand::of(g2)}, ne, true);
  step(".eq", Opcode::Select, {EltOperand::of(ne), scalar(0.f), scalar(1.f)}, y, false);  // f16 0/1
  bool01_.insert(y);
  return true;
}

// ---- Transpose that moves the last axis -------------------------------------------------------

bool FormLowering::transpose_lanes(const ir::Op& op) {
  const size_t r = g_.tensor(op.inputs[0]).shape.size();
  std::vector<int64_t> perm(r);  // ONNX default: reversed dims (the importer always writes perm)
  for (size_t i = 0; i < r; ++i) perm[i] = static_cast<int64_t>(r - 1 - i);
  if (op.has("perm")) perm = op.attr_ints("perm");
  if (perm.size() != r) node_error(g_, op, "perm rank differs from the input rank");
  if (r < 2 || perm[r - 1] == static_cast<int64_t>(r) - 1) return false;  // lanes stay: a view (lower_attention)
  const ir::TensorId out = op.outputs[0];
  // Q . K^T keeps its free form: a transpose read only as a MatMul's second operand is loaded
  // as MXM weights by the transposed install (lower_attention.cpp).
  bool only_b = !is_graph_output(out);
  for (const ir::Op& c : g_.ops())
    for (size_t k = 0; k < c.inputs.size(); ++k)
      if (c.inputs[k] == out)
        only_b = only_b && k == 1 && (c.kind == ir::OpKind::MatMul || c.kind == ir::OpKind::Gemm) && c.inputs[0] != out;
  if (only_b) return false;
  if (!is_float(g_.tensor(out).dtype))
    node_error(g_, op, fmt::format("output type {}; float results only", ir::dtype_name(g_.tensor(out).dtype)));
  transposed(op, op.inputs[0], perm, out, g_.tensor(out).shape);
  return true;
}

void FormLowering::transposed(const ir::Op& op, ir::TensorId in, const std::vector<int64_t>& perm, ir::TensorId out,
                              const ir::Shape& ys) {
  const size_t r = perm.size();
  const ir::Shape xs = g_.tensor(in).shape;
  // Per slice of the other axes: Y's lanes = X's axis a (rows), Y's axis q = X's lanes. On the MXM,
  // I . W with W = the slice's rows installed transposed (`iwt`) and I the C x C identity as X:
  // y[c][t] = X[t][c], exact (one f16 term per output). The slice's rows are first made contiguous
  // by a row gather when they are strided.
  const size_t a = static_cast<size_t>(perm[r - 1]), L = r - 1;
  const int64_t C = xs[L], R = xs[a];
  std::vector<size_t> others;
  for (size_t d = 0; d + 1 < r; ++d)
    if (d != a) others.push_back(d);
  int64_t S = 1;
  for (size_t d : others) S *= xs[d];
  activation(op, in);  // type and layout checks
  const ir::TensorId x = attn_.mxm_input(op, in);
  // Row strides of X's row dims (row-major over xs[0..r-2]) and of Y's row dims.
  auto strides = [](const ir::Shape& s) {
    std::vector<int64_t> st(s.size(), 1);
    for (size_t d = s.size() - 1; d-- > 0;) st[d] = d + 2 < s.size() ? st[d + 1] * s[d + 1] : 1;
    return st;
  };
  const std::vector<int64_t> xst = strides(xs), yst = strides(ys);
  std::vector<int64_t> inv(r);
  for (size_t d = 0; d < r; ++d) inv[static_cast<size_t>(perm[d])] = static_cast<int64_t>(d);
  std::vector<int64_t> map;  // X' row (slice s, t) = X row
  std::vector<std::vector<int64_t>> idx(static_cast<size_t>(S), std::vector<int64_t>(r, 0));
  for (int64_t sidx = 0; sidx < S; ++sidx) {
    int64_t rem = sidx;
    for (size_t k = others.size(); k-- > 0;) {
      idx[static_cast<size_t>(sidx)][others[k]] = rem % xs[others[k]];
      rem /= xs[others[k]];
    }
    for (int64_t t = 0; t < R; ++t) {
      int64_t row = t * xst[a];
      for (size_t d : others) row += idx[static_cast<size_t>(sidx)][d] * xst[d];
      map.push_back(row);
    }
  }
  bool ident = true;
  for (size_t i = 0; i < map.size() && ident; ++i) ident = map[i] == static_cast<int64_t>(i);
  ir::TensorId b = x;
  if (!ident) {
    b = fresh(op.name + ".rows", ir::DType::F16, {S * R, C});
    LoweredGather G;
    G.name = op.name + ".rows";
    G.x = x;
    G.y = b;
    G.rows = S * R;
    G.taps = 1;
    G.map = map;
    produced_[static_cast<size_t>(b)] = 1;
    attn_.note_written(b, false);
    lm_.steps.push_back({false, lm_.gathers.size(), true});
    lm_.gathers.push_back(std::move(G));
  }
  // The identity X (f16, from an SRAM constant by one VXM pass).
  const ir::TensorId eye = fresh(op.name + ".eye", ir::DType::F16, {C, C});
  {
    std::vector<float> e(static_cast<size_t>(C * C), 0.f);
    for (int64_t i = 0; i < C; ++i) e[static_cast<size_t>(i * C + i)] = 1.f;
    LoweredEltwise E;
    E.name = op.name + ".eye";
    E.kind = op.kind;
    E.has_op = false;
    E.vxm_op = static_cast<int>(Opcode::Mov);
    E.operands = {EltOperand::constant(e, {C, C})};
    E.y = eye;
    add_eltwise(std::move(E), false);
  }
  for (int64_t sidx = 0; sidx < S; ++sidx) {
    LoweredLayer Ly;
    Ly.name = S > 1 ? fmt::format("{}.s{}", op.name, sidx) : op.name;
    Ly.x = eye;
    Ly.y = out;
    Ly.K = C;
    Ly.N = R;
    Ly.b = b;
    Ly.b_row0 = sidx * R;
    Ly.b_trans = true;
    Ly.y_shape = ys;
    for (int64_t c = 0; c < C; ++c) {
      std::vector<int64_t> xi = idx[static_cast<size_t>(sidx)];
      xi[L] = c;
      int64_t row = 0;
      for (size_t d = 0; d + 1 < r; ++d) row += xi[static_cast<size_t>(perm[d])] * yst[d];
      Ly.x_rows.push_back(c);
      Ly.y_rows.push_back(row);
    }
    add_layer(std::move(Ly));
  }
}

// ---- Concat along the last axis ---------------------------------------------------------------

bool FormLowering::concat_last(const ir::Op& op) {
  const ir::Shape ys = g_.tensor(op.outputs[0]).shape;
  if (ys.empty() || static_cast<size_t>(op.attr_int("axis")) + 1 != ys.size()) return false;  // rows: attention
  if (!is_float(g_.tensor(op.outputs[0]).dtype))
    node_error(g_, op, fmt::format("output type {}; float results only", ir::dtype_name(g_.tensor(op.outputs[0]).dtype)));
  const int64_t W = ys.back(), M = ir::num_elements(ys) / W;
  // Activation pieces: column segments of one dense step with an identity weight (each piece's
  // lanes land at its offset); constant pieces: added after by a VXM step (exact: x + 0, 0 + c).
  std::vector<LoweredLayer::XSegment> segs;
  std::vector<float> cfull;
  int64_t off = 0;
  for (ir::TensorId t : op.inputs) {
    const ir::Tensor& it = g_.tensor(alias_[static_cast<size_t>(t)]);
    const int64_t w = last_dim(g_.tensor(t).shape);
    if (it.is_const) {
      if (cfull.empty()) cfull.assign(static_cast<size_t>(M * W), 0.f);
      const std::vector<float> v = it.const_floats();
      for (int64_t m = 0; m < M; ++m)
        for (int64_t j = 0; j < w; ++j)
          cfull[static_cast<size_t>(m * W + off + j)] = v[static_cast<size_t>(m * w + j)];
    } else {
      activation(op, t);  // type and layout checks
      const ir::TensorId s = attn_.mxm_input(op, t);
      const ir::Shape ss = lm_.tensor(g_, s).shape;
      if (last_dim(ss) != w || ir::num_elements(ss) != M * w)
        node_error(g_, op, fmt::format("input '{}' is stored as {}; expected {} rows of {}", it.name, ir::shape_str(ss), M, w));
      segs.push_back({s, 0, 0, off, w});
    }
    off += w;
  }
  const bool add_c = !cfull.empty();
  const ir::TensorId y = add_c ? fresh(op.name + ".acts", ir::DType::F32, ys) : op.outputs[0];
  LoweredLayer L;
  L.name = op.name;
  L.x = segs.at(0).x;
  L.y = y;
  L.K = W;
  L.N = W;
  L.w.assign(static_cast<size_t>(W * W), 0.f);
  for (int64_t i = 0; i < W; ++i) L.w[static_cast<size_t>(i * W + i)] = 1.f;
  L.y_shape = ys;
  L.y_f32 = add_c;
  for (int64_t m = 0; m < M; ++m) {
    L.x_rows.push_back(m);
    L.y_rows.push_back(m);
  }
  L.xsegs = segs;
  add_layer(std::move(L));
  if (!add_c) return true;
  LoweredEltwise E;
  E.name = op.name + ".consts";
  E.kind = ir::OpKind::Add;
  E.vxm_op = static_cast<int>(Opcode::Add);
  EltOperand a;
  a.act = y;
  E.operands = {a, EltOperand::constant(cfull, ys)};
  E.y = op.outputs[0];
  add_eltwise(std::move(E), false);
  return true;
}

// ---- Gather -----------------------------------------------------------------------------------

bool FormLowering::gather(const ir::Op& op) {
  const ir::Tensor& dt = g_.tensor(alias_[static_cast<size_t>(op.inputs[0])]);
  const ir::Tensor& it = g_.tensor(op.inputs[1]);
  const ir::Tensor& yt = g_.tensor(op.outputs[0]);
  if (!it.is_const) return lookup(op);
  if (dt.is_const) node_error(g_, op, "constant data with constant indices (expected the front end to fold it)");
  if (!is_float(yt.dtype)) node_error(g_, op, fmt::format("output type {}; float results only", ir::dtype_name(yt.dtype)));
  const ir::Shape ds = g_.tensor(op.inputs[0]).shape, is = it.shape, ys = yt.shape;
  const size_t axis = static_cast<size_t>(op.attr_int("axis")), r = ds.size();
  std::vector<int64_t> idx = it.const_ints();
  for (int64_t& i : idx) {
    const int64_t orig = i;
    if (i < 0) i += ds[axis];
    if (i < 0 || i >= ds[axis])
      node_error(g_, op, fmt::format("index {} is out of range for axis {} of size {}", orig, axis, ds[axis]));
  }
  activation(op, op.inputs[0]);  // type and layout checks
  // f16 as every op result of the model's fp16 view (an f32 tensor gets a narrowing copy; the
  // row gather copies bits), pad lanes finite (the selection matmul multiplies them by 0).
  const ir::TensorId x = attn_.mxm_input(op, op.inputs[0]);
  const int64_t nidx = static_cast<int64_t>(idx.size());
  if (axis + 1 < r) {
    // A row axis: output row (outer o, index j, inner row q) is data row (o * ds[axis] + idx[j]) * Q + q.
    int64_t O = 1, Q = 1;
    for (size_t d = 0; d < axis; ++d) O *= ds[d];
    for (size_t d = axis + 1; d + 1 < r; ++d) Q *= ds[d];
    // The gather copies whole vectors in x's type; a graph output (f32 like every output) gets one
    // more VXM pass that widens the gathered rows.
    const bool out = is_graph_output(op.outputs[0]);
    LoweredGather G;
    G.name = op.name;
    G.x = x;
    G.y = out ? fresh(op.name + ".rows", lm_.tensor(g_, x).dtype, ys) : op.outputs[0];
    G.rows = O * nidx * Q;
    G.taps = 1;
    for (int64_t o = 0; o < O; ++o)
      for (int64_t j = 0; j < nidx; ++j)
        for (int64_t q = 0; q < Q; ++q) G.map.push_back((o * ds[axis] + idx[static_cast<size_t>(j)]) * Q + q);
    produced_[static_cast<size_t>(G.y)] = 1;
    attn_.note_written(G.y, attn_.nonfinite_pad(x));
    const ir::TensorId gy = G.y;
    lm_.steps.push_back({false, lm_.gathers.size(), true});
    lm_.gathers.push_back(std::move(G));
    if (out) {
      LoweredEltwise E;
      E.name = op.name + ".widen";
      E.kind = op.kind;
      E.has_op = false;
      E.vxm_op = static_cast<int>(Opcode::Mov);
      E.operands = {EltOperand::of(gy)};
      E.y = op.outputs[0];
      add_eltwise(std::move(E), attn_.nonfinite_pad(x));
    }
    return true;
  }
  // The last axis (lanes): per row of the indices, a selection matmul y = x . S with S[k][n] = 1 if
  // k == idx[n] (exact: one f16 term per output), writing its rows of y.
  if (is.empty()) node_error(g_, op, "a scalar index on the last axis (the output's lanes would become rows) is not lowered");
  const int64_t D = ds.back(), Nl = is.back(), J = nidx / Nl, R = ir::num_elements(ds) / D;
  const ir::TensorId xm = x;
  for (int64_t j = 0; j < J; ++j) {
    LoweredLayer L;
    L.name = J > 1 ? fmt::format("{}.i{}", op.name, j) : op.name;
    L.x = xm;
    L.y = op.outputs[0];
    L.K = D;
    L.N = Nl;
    L.w.assign(static_cast<size_t>(D * Nl), 0.f);
    for (int64_t n = 0; n < Nl; ++n) L.w[static_cast<size_t>(idx[static_cast<size_t>(j * Nl + n)] * Nl + n)] = 1.f;
    L.y_shape = ys;
    if (J > 1) {
      for (int64_t m = 0; m < R; ++m) {
        L.x_rows.push_back(m);
        L.y_rows.push_back(m * J + j);
      }
    }
    add_layer(std::move(L));
  }
  return true;
}

// Runtime indices (embedding lookup): y[.., :] = table[ids[..], :] by MEM `gather` instructions
// whose lane offsets the host writes into the index input (LoweredInput::lookup_*).
bool FormLowering::lookup(const ir::Op& op) {
  const ir::TensorId ii = op.inputs[1];
  const ir::Tensor& dt = g_.tensor(op.inputs[0]);
  const ir::Tensor& it = g_.tensor(ii);
  const ir::Tensor& yt = g_.tensor(op.outputs[0]);
  const std::string why = "; docs/compiler.md \"Other forms\" lists the runtime-index forms lowered";
  if (!dt.is_const)
    node_error(g_, op, fmt::format("indices '{}' are a runtime input and data '{}' is not a constant: a runtime-index "
                             "Gather is lowered as a lookup into a constant table only{}", it.name, dt.name, why));
  if (dt.shape.size() != 2 || op.attr_int("axis") != 0)
    node_error(g_, op, fmt::format("runtime indices '{}' into data {} along axis {}: only a [V, D] table along axis 0 "
                             "(embedding lookup) is lowered{}", it.name, ir::shape_str(dt.shape),
                             op.attr_int("axis"), why));
  if (it.dtype != ir::DType::I64 && it.dtype != ir::DType::I32)
    node_error(g_, op, fmt::format("indices '{}' have type {}; int64 or int32 only", it.name, ir::dtype_name(it.dtype)));
  const int ix = input_index_[static_cast<size_t>(ii)];
  if (ix < 0 || alias_[static_cast<size_t>(ii)] != ii || g_.consumers()[static_cast<size_t>(ii)].size() != 1)
    node_error(g_, op, fmt::format("indices '{}' must be a graph input read by this Gather only (the host writes them as "
                             "row offsets for the table)", it.name));
  if (!is_float(yt.dtype)) node_error(g_, op, fmt::format("output type {}; float results only", ir::dtype_name(yt.dtype)));
  const int64_t V = dt.shape[0], D = dt.shape[1], T = std::max<int64_t>(1, ir::num_elements(it.shape));
  if (V < 1 || D < 1 || ir::num_elements(it.shape) < 1)
    node_error(g_, op, fmt::format("empty table {} or indices {}", ir::shape_str(dt.shape), ir::shape_str(it.shape)));
  LoweredInput& in = lm_.inputs[static_cast<size_t>(ix)];
  in.lookup_rows = V;
  in.lookup_cols = D;
  in.shape = {T, 1};  // the scheduler widens the row to a whole vector of i16 offsets
  LoweredGather G;
  G.name = op.name;
  G.x = ii;
  G.y = op.outputs[0];
  G.rows = T;
  G.table = dt.const_floats();
  G.table_rows = V;
  G.table_cols = D;
  produced_[static_cast<size_t>(G.y)] = 1;
  attn_.note_written(G.y, false);  // pad lanes copy the table's zero padding
  lm_.steps.push_back({false, lm_.gathers.size(), true});
  lm_.gathers.push_back(std::move(G));
  return true;
}

}  // namespace lpu::compiler
