// Lowering pass: IR ops -> dense layers (matmul + bias + relu) and VXM elementwise steps
// (reductions and normalizations decomposed into both), with clear errors for the rest.
#include "compiler/passes/lowering.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "compiler/ir/shape_infer.h"
#include "compiler/passes/fuse_residual.h"
#include "compiler/passes/graph_lowering.h"
#include "compiler/passes/lower_attention.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lower_forms.h"
#include "compiler/passes/lower_norm.h"
#include "compiler/passes/ones_in_projection.h"
#include "compiler/passes/pair_heads.h"
#include "compiler/reference/interpreter.h"
#include "isa/chip_config.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

constexpr const char* kSupported =
    "supported: MatMul/Gemm with a constant 2-D weight (bias Add and Relu fused), elementwise Add, Sub, Mul, "
    "Div, "
    "Relu, Sigmoid, Tanh, Erf, Exp, Log, Sqrt, Reciprocal, Neg, Abs, Max, Min, Pow (constant exponent 2 or 0.5), "
    "Where (constant "
    "condition), Cast (float to float), ReduceSum/Mean/Max/Min/SumSquare/L1/L2 over any axes, Softmax over "
    "any axis, LayerNormalization over the last axis, on activations broadcast numpy-style over rows (and "
    "from [..., 1] over the last axis) with constants broadcast numpy-style, "
    "Reshape, Transpose, Split, Slice (strided views), Concat along a row axis, MatMul of two activations "
    "(batched, B or B^T); Conv, MaxPool, AveragePool, GlobalAveragePool (passes/lower_conv.h); "
    "Gemm with any C or transA, BatchNormalization, Where on a bool input or an Equal of floats, Concat "
    "along the last "
    "axis, Gather with constant indices, Transpose of the last axis, graph outputs copied from inputs or "
    "constants "
    "(passes/lower_forms.h)";

}  // namespace

void unsupported(const ir::Graph& g, const ir::Op& op, const std::string& why) {
  throw InputError(fmt::format("model '{}': node '{}' ({}): {} ({})", g.name, op.name,
                               ir::op_kind_name(op.kind), why, kSupported));
}

bool eltwise_opcode(ir::OpKind k, Opcode* op) {
  switch (k) {
    case ir::OpKind::Add:
      *op = Opcode::Add;
      return true;
    case ir::OpKind::Sub:
      *op = Opcode::Sub;
      return true;
    case ir::OpKind::Mul:
      *op = Opcode::Mul;
      return true;
    case ir::OpKind::Div:
      *op = Opcode::Div;
      return true;
    case ir::OpKind::Relu:
      *op = Opcode::Relu;
      return true;
    case ir::OpKind::Sigmoid:
      *op = Opcode::Sigmoid;
      return true;
    case ir::OpKind::Tanh:
      *op = Opcode::Tanh;
      return true;
    case ir::OpKind::Erf:
      *op = Opcode::Erf;
      return true;
    case ir::OpKind::Exp:
      *op = Opcode::Exp;
      return true;
    case ir::OpKind::Log:
      *op = Opcode::Log;
      return true;
    case ir::OpKind::Sqrt:
      *op = Opcode::Sqrt;
      return true;
    case ir::OpKind::Reciprocal:
      *op = Opcode::Recip;
      return true;
    case ir::OpKind::Neg:
      *op = Opcode::Neg;
      return true;
    case ir::OpKind::Abs:
      *op = Opcode::Abs;
      return true;
    case ir::OpKind::Max:
      *op = Opcode::Max;
      return true;
    case ir::OpKind::Min:
      *op = Opcode::Min;
      return true;
    case ir::OpKind::Where:
      *op = Opcode::Select;
      return true;
    default:
      return false;
  }
}

void node_error(const ir::Graph& g, const ir::Op& op, const std::string& why) {
  throw InputError(
      fmt::format("model '{}': node '{}' ({}): {}", g.name, op.name, ir::op_kind_name(op.kind), why));
}

std::vector<int64_t> LoweredModel::stored_shape(const ir::Graph& g, ir::TensorId t) const {
  for (const LoweredInput& in : inputs)
    if (in.alias == t) return in.lookup_rows > 0 ? std::vector<int64_t>{} : in.shape;
  const ir::Shape& ir_shape = tensor(g, t).shape;
  for (const LoweredLayer& L : layers)
    if (L.y == t || L.y2 == t) return L.y_shape.empty() ? tensor(g, L.y).shape : L.y_shape;
  for (const LoweredEltwise& E : eltwise)
    if (E.y == t || E.y2 == t) return E.y_shape.empty() ? tensor(g, E.y).shape : E.y_shape;
  for (const LoweredLane& Ln : lanes)
    if (Ln.y == t) return Ln.y_shape;
  for (const LoweredGather& G : gathers) {
    if (G.y != t) continue;
    if (!G.table.empty()) return ir_shape;
    const std::vector<int64_t> xs = stored_shape(g, G.x);
    return {G.rows, xs.empty() ? 1 : xs.back()};
  }
  return ir_shape;
}

std::vector<ir::TensorId> step_reads(const LoweredModel& lm, const LoweredStep& st) {
  std::vector<ir::TensorId> r;
  if (st.gather) {
    r.push_back(lm.gathers[st.index].x);
  } else if (st.lane) {
    r.push_back(lm.lanes[st.index].x);
    if (lm.lanes[st.index].center != ir::kNoTensor) r.push_back(lm.lanes[st.index].center);
  } else if (st.dense) {
    const LoweredLayer& L = lm.layers[st.index];
    r.push_back(L.x);
    if (L.b != ir::kNoTensor) r.push_back(L.b);
    for (const LoweredLayer::XSegment& xs : L.xsegs) r.push_back(xs.x);
    if (L.residual != ir::kNoTensor) r.push_back(L.residual);
    if (L.row_div != ir::kNoTensor) r.push_back(L.row_div);
  } else {
    for (const EltOperand& o : lm.eltwise[st.index].operands)
      if (o.act != ir::kNoTensor) r.push_back(o.act);
  }
  return r;
}

StepUses step_uses(const LoweredModel& lm) {
  StepUses u;
  for (size_t si = 0; si < lm.steps.size(); ++si) {
    for (ir::TensorId t : step_writes(lm, lm.steps[si])) u.writers[t].push_back(si);
    for (ir::TensorId t : step_reads(lm, lm.steps[si])) {
      std::vector<size_t>& r = u.readers[t];
      if (r.empty() || r.back() != si) r.push_back(si);
    }
  }
  return u;
}

EltOperand EltOperand::constant(const std::vector<float>& full, const ir::Shape& shape) {
  const int64_t inner = last_dim(shape), rows = ir::num_elements(shape) / inner;
  bool same = true;
  for (int64_t i = inner; i < rows * inner && same; ++i)
    same = full[static_cast<size_t>(i)] == full[static_cast<size_t>(i % inner)];
  EltOperand o;
  o.const_rows = same ? 1 : rows;
  o.values.assign(full.begin(), full.begin() + o.const_rows * inner);
  return o;
}

bool LoweredEltwise::minmax_chain() const {
  const int mx = static_cast<int>(Opcode::Max), mn = static_cast<int>(Opcode::Min);
  bool ok = has_op && (vxm_op == mx || vxm_op == mn) && (!relu || vxm_op == mx);
  for (const Post& po : post) ok = ok && po.op == vxm_op && po.operand >= 0;
  return ok;
}

bool vxm_may_make_nonfinite(int vxm_op) {
  switch (static_cast<Opcode>(vxm_op)) {
    case Opcode::Div: case Opcode::Recip: case Opcode::Sqrt: case Opcode::Rsqrt: case Opcode::Exp:
    case Opcode::Log:
      return true;
    default:
      return false;
  }
}

bool LoweredEltwise::may_make_nonfinite() const {
  bool r = has_op && vxm_may_make_nonfinite(vxm_op);
  for (const Post& po : post) r = r || vxm_may_make_nonfinite(po.op);
  return r;
}

LoweredEltwise LoweredEltwise::pad_clear(const std::string& name, ir::TensorId x, ir::TensorId y,
                                         const ir::Shape& shape, int64_t inner) {
  LoweredEltwise E;
  E.name = name;
  E.kind = ir::OpKind::Where;
  E.vxm_op = static_cast<int>(Opcode::Select);
  EltOperand c;
  c.const_rows = 1;
  c.values.assign(static_cast<size_t>(inner), 1.f);
  E.operands = {c, EltOperand::of(x), c};  // lanes past `inner` read c's zero pad
  E.y = y;
  E.y_shape = shape;
  return E;
}

std::vector<ir::TensorId> step_writes(const LoweredModel& lm, const LoweredStep& st) {
  if (st.gather) return {lm.gathers[st.index].y};
  if (st.lane) return {lm.lanes[st.index].y};
  if (st.dense) {
    const LoweredLayer& L = lm.layers[st.index];
    if (L.y2 != ir::kNoTensor) return {L.y, L.y2};
    return {L.y};
  }
  const LoweredEltwise& E = lm.eltwise[st.index];
  if (E.y2 != ir::kNoTensor) return {E.y, E.y2};
  return {E.y};
}

LoweredModel lower_graph(const ir::Graph& g) { return lower_graph(g, default_chip_config()->vector_bytes()); }

LoweredModel lower_graph(const ir::Graph& g, uint32_t lanes, const LowerOptions& opt) {
  // The IR contract (compiler/ir/op_kinds.def: canonical, non-negative axes; output shapes as
  // shape inference gives them) is what the passes below index by. Front ends build through
  // shape inference; a graph built otherwise is checked here, so a broken one is refused with an
  // InputError naming the node instead of lowered out of range.
  for (const ir::Op& op : g.ops()) {
    const std::vector<ir::TensorType> types = ir::infer_output_types(g, op);
    for (size_t k = 0; k < op.outputs.size() && k < types.size(); ++k) {
      const ir::Tensor& y = g.tensor(op.outputs[k]);
      if (y.shape != types[k].shape)
        throw InputError(fmt::format("node '{}' ({}): output '{}' is declared {} but its inputs give {}",
                                     op.name, ir::op_kind_name(op.kind), y.name, ir::shape_str(y.shape),
                                     ir::shape_str(types[k].shape)));
    }
  }
  return GraphLowering(g, lanes, opt).run();
}

GraphLowering::GraphLowering(const ir::Graph& g_in, uint32_t lanes_in, const LowerOptions& opt_in)
    : g(g_in),
      lanes(lanes_in),
      opt(opt_in),
      consumers(g_in.consumers()),
      alias(g_in.tensors().size()),
      input_index(g_in.tensors().size(), -1),
      layer_of(g_in.tensors().size(), -1),
      produced(g_in.tensors().size(), 0),
      attn(g_in, lm, layer_of, produced, alias),
      norm(g_in, lm, produced, attn, [this](const ir::Op& op, ir::TensorId t) { return activation(op, t); }),
      conv(g_in, lm, layer_of, produced, alias, opt_in.pack_conv_taps ? lanes_in : 0,
           opt_in.pack_disjoint_rows, opt_in.vxm_depthwise),
      forms(g_in, lm, layer_of, produced, alias, input_index, attn) {
  for (size_t i = 0; i < alias.size(); ++i) alias[i] = static_cast<ir::TensorId>(i);
  for (ir::TensorId t : g.inputs()) {
    input_index[static_cast<size_t>(t)] = static_cast<int>(lm.inputs.size());
    lm.inputs.push_back({t, g.tensor(t).shape, t, {}});
  }
  attn.set_lanes(lanes);  // lane-slice Concats as SXM lane moves (0: identity matmuls)
  norm.set_sole_writer([this](ir::TensorId in) {
    return sole_writer(in);
  });  // Softmax's clamp as a post op of its input's writer
}

bool GraphLowering::is_graph_output(ir::TensorId t) const {
  return std::find(g.outputs().begin(), g.outputs().end(), t) != g.outputs().end();
}

bool GraphLowering::single_use(ir::TensorId t) const {
  return consumers[static_cast<size_t>(t)].size() == 1 && !is_graph_output(t);
}

ir::TensorId GraphLowering::activation(const ir::Op& op, ir::TensorId t) {
  const ir::Tensor& gt = g.tensor(alias[static_cast<size_t>(t)]);
  if (gt.is_const) unsupported(g, op, "constant activation input '" + gt.name + "'");
  if (gt.dtype != ir::DType::F32 && gt.dtype != ir::DType::F16)
    unsupported(
        g, op,
        fmt::format("activation '{}' has type {}; float models only", gt.name, ir::dtype_name(gt.dtype)));
  return attn.stored(op, t);  // a view is materialized
}

LoweredModel GraphLowering::run() {
  for (size_t oi = 0; oi < g.ops().size(); ++oi) {
    const ir::Op& op = g.ops()[oi];
    if (conv.lower(op)) continue;
    if (forms.lower(op)) continue;
    if (attn.lower(op)) continue;
    switch (op.kind) {
      case ir::OpKind::Reshape:
        lower_reshape(op);
        break;
      // MatMul and Gemm: AttentionLowering::lower (lower_attention.cpp).
      case ir::OpKind::Add:
        lower_add(op);
        break;
      case ir::OpKind::Relu:
        lower_relu(op);
        break;
      case ir::OpKind::Softmax:
      case ir::OpKind::LayerNormalization:
      case ir::OpKind::ReduceSum:
      case ir::OpKind::ReduceMean:
      case ir::OpKind::ReduceMax:
      case ir::OpKind::ReduceMin:
      case ir::OpKind::ReduceSumSquare:
      case ir::OpKind::ReduceL1:
      case ir::OpKind::ReduceL2:
        norm.lower(op);
        break;  // lower_norm.cpp
      default:
        fused_eltwise(op);
    }
    conv.after(op);
  }
  attn.finish();
  if (opt.pair_heads && lanes > 0)
    lm.paired_attentions = pair_heads(g, &lm, lanes);                          // after the packed heads
  if (opt.ones_in_projection && lanes > 0) ones_in_projection(g, &lm, lanes);  // after both
  for (ir::TensorId t : g.outputs()) {
    if (!produced[static_cast<size_t>(t)])
      throw InputError(fmt::format("model '{}': graph output '{}' is not produced by a lowered op ({})",
                                   g.name, g.tensor(t).name, kSupported));
    lm.outputs.push_back(t);
    if (opt.f16_output && opt.f16_output(g.tensor(t).name)) lm.f16_outputs.insert(t);
  }
  if (opt.fuse_residual_adds) fuse_residual_adds(g, &lm);  // residual Adds into product epilogues
  if (lm.steps.empty())
    throw InputError(fmt::format("model '{}': no op to compile ({})", g.name, kSupported));
  return std::move(lm);
}

void GraphLowering::lower_reshape(const ir::Op& op) {
  const ir::TensorId in = op.inputs[0];
  const int ii = input_index[static_cast<size_t>(in)];
  if (ii < 0 || lm.inputs[static_cast<size_t>(ii)].alias != in)
    unsupported(g, op, "Reshape is only folded when applied once to a graph input");
  lm.inputs[static_cast<size_t>(ii)].shape = g.tensor(op.outputs[0]).shape;
  lm.inputs[static_cast<size_t>(ii)].alias = op.outputs[0];
  alias[static_cast<size_t>(op.outputs[0])] = op.outputs[0];
  input_index[static_cast<size_t>(op.outputs[0])] = ii;
}

// A constant N-vector added to an unactivated matmul output used once is the layer's bias; any
// other Add is an elementwise step.
void GraphLowering::lower_add(const ir::Op& op) {
  int li = -1;
  int ci = -1;
  for (int k = 0; k < 2; ++k) {
    const int l = layer_of[static_cast<size_t>(op.inputs[static_cast<size_t>(k)])];
    if (l >= 0 && g.tensor(op.inputs[static_cast<size_t>(1 - k)]).is_const) {
      li = l;
      ci = 1 - k;
    }
  }
  if (li >= 0) {
    const LoweredLayer& L = lm.layers[static_cast<size_t>(li)];
    const ir::Tensor& c = g.tensor(op.inputs[static_cast<size_t>(ci)]);
    if (L.relu || !single_use(L.y) || c.elements() != L.N || last_dim(c.shape) != L.N ||
        g.tensor(op.outputs[0]).shape != g.tensor(L.y).shape)
      li = -1;
  }
  if (li < 0) {
    fused_eltwise(op);
    return;
  }
  LoweredLayer& L = lm.layers[static_cast<size_t>(li)];
  const ir::Tensor& c = g.tensor(op.inputs[static_cast<size_t>(ci)]);
  const std::vector<float> cv = c.const_floats();
  if (L.bias.empty()) L.bias.assign(static_cast<size_t>(L.N), 0.f);
  for (int64_t n = 0; n < L.N; ++n) L.bias[static_cast<size_t>(n)] += cv[static_cast<size_t>(n)];
  layer_of[static_cast<size_t>(L.y)] = -1;
  L.y = op.outputs[0];
  layer_of[static_cast<size_t>(L.y)] = li;
  produced[static_cast<size_t>(L.y)] = 1;
}

void GraphLowering::lower_relu(const ir::Op& op) {
  const int li = layer_of[static_cast<size_t>(op.inputs[0])];
  if (li < 0 || lm.layers[static_cast<size_t>(li)].relu ||
      !single_use(lm.layers[static_cast<size_t>(li)].y)) {
    // Not fusable into a matmul epilogue: fused into the elementwise step that is the only
    // writer of its input when the Relu is that input's only reader (one VXM pass), else a step.
    const ir::TensorId in = op.inputs[0];
    const int ei = sole_writer(in);
    const ir::TensorId out = op.outputs[0];
    if (ei >= 0 && !lm.eltwise[static_cast<size_t>(ei)].relu && g.tensor(out).shape == g.tensor(in).shape &&
        g.tensor(out).dtype == g.tensor(in).dtype) {
      LoweredEltwise& E = lm.eltwise[static_cast<size_t>(ei)];
      if (E.post.empty())
        E.relu = true;
      else  // after fused post ops (the relu flag runs before them): the Relu is the last post op
        E.post.push_back({static_cast<int>(Opcode::Relu), 0.f});
      E.y = out;
      produced[static_cast<size_t>(in)] = 0;
      produced[static_cast<size_t>(out)] = 1;
      attn.note_written(out, attn.nonfinite_pad(in));
      return;
    }
    eltwise(op);
    return;
  }
  LoweredLayer& L = lm.layers[static_cast<size_t>(li)];
  layer_of[static_cast<size_t>(L.y)] = -1;
  L.relu = true;
  L.y = op.outputs[0];
  layer_of[static_cast<size_t>(L.y)] = li;
  produced[static_cast<size_t>(L.y)] = 1;
}

}  // namespace lpu::compiler
