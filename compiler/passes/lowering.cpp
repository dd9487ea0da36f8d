// Lowering pass: IR ops -> dense layers (matmul + bias + relu) and VXM elementwise steps
// (reductions and normalizations decomposed into both), with clear errors for the rest.
#include "compiler/passes/lowering.h"


#include <algorithm>
#include <cmath>
#include <map>
#include <fmt/format.h>

#include "compiler/ir/shape_infer.h"
#include "compiler/passes/fuse_residual.h"
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
    "supported: MatMul/Gemm with a constant 2-D weight (bias Add and Relu fused), elementwise Add, Sub, Mul, Div, "
    "Relu, Sigmoid, Tanh, Erf, Exp, Sqrt, Reciprocal, Neg, Abs, Max, Min, Pow (constant exponent 2 or 0.5), Where (constant "
    "condition), Cast (float to float), ReduceSum/Mean/Max/Min/SumSquare/L1/L2 over any axes, Softmax over any axis, LayerNormalization over the last axis, on activations broadcast numpy-style over rows (and from [..., 1] over the last axis) with constants broadcast numpy-style, "
    "Reshape, Transpose, Split, Slice (strided views), Concat along a row axis, MatMul of two activations (batched, B or B^T); Conv, MaxPool, AveragePool, GlobalAveragePool (passes/lower_conv.h); "
    "Gemm with any C or transA, BatchNormalization, Where on a bool input or an Equal of floats, Concat along the last "
    "axis, Gather with constant indices, Transpose of the last axis, graph outputs copied from inputs or constants "
    "(passes/lower_forms.h)";

[[noreturn]] void unsupported(const ir::Graph& g, const ir::Op& op, const std::string& why) {
  throw InputError(fmt::format("model '{}': node '{}' ({}): {} ({})", g.name, op.name, ir::op_kind_name(op.kind),
                               why, kSupported));
}

int64_t last_dim(const ir::Shape& s) { return s.empty() ? 1 : s.back(); }

// The table of elementwise IR ops with one VXM instruction each (f32 compute).
bool eltwise_opcode(ir::OpKind k, Opcode* op) {
  switch (k) {
    case ir::OpKind::Add: *op = Opcode::Add; return true;
    case ir::OpKind::Sub: *op = Opcode::Sub; return true;
    case ir::OpKind::Mul: *op = Opcode::Mul; return true;
    case ir::OpKind::Div: *op = Opcode::Div; return true;
    case ir::OpKind::Relu: *op = Opcode::Relu; return true;
    case ir::OpKind::Sigmoid: *op = Opcode::Sigmoid; return true;
    case ir::OpKind::Tanh: *op = Opcode::Tanh; return true;
    case ir::OpKind::Erf: *op = Opcode::Erf; return true;
    case ir::OpKind::Exp: *op = Opcode::Exp; return true;
    case ir::OpKind::Sqrt: *op = Opcode::Sqrt; return true;
    case ir::OpKind::Reciprocal: *op = Opcode::Recip; return true;
    case ir::OpKind::Neg: *op = Opcode::Neg; return true;
    case ir::OpKind::Abs: *op = Opcode::Abs; return true;
    case ir::OpKind::Max: *op = Opcode::Max; return true;
    case ir::OpKind::Min: *op = Opcode::Min; return true;
    case ir::OpKind::Where: *op = Opcode::Select; return true;
    default: return false;
  }
}

}  // namespace

void node_error(const ir::Graph& g, const ir::Op& op, const std::string& why) {
  throw InputError(fmt::format("model '{}': node '{}' ({}): {}", g.name, op.name, ir::op_kind_name(op.kind), why));
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
        throw InputError(fmt::format("node '{}' ({}): output '{}' is declared {} but its inputs give {}", op.name,
                                     ir::op_kind_name(op.kind), y.name, ir::shape_str(y.shape),
                                     ir::shape_str(types[k].shape)));
    }
  }
  LoweredModel lm;
  const auto consumers = g.consumers();
  std::vector<ir::TensorId> alias(g.tensors().size());
  for (size_t i = 0; i < alias.size(); ++i) alias[i] = static_cast<ir::TensorId>(i);
  std::vector<int> input_index(g.tensors().size(), -1);
  for (ir::TensorId t : g.inputs()) {
    input_index[static_cast<size_t>(t)] = static_cast<int>(lm.inputs.size());
    lm.inputs.push_back({t, g.tensor(t).shape, t, {}});
  }
  // Layer producing each tensor (its y), -1 if none.
  std::vector<int> layer_of(g.tensors().size(), -1);
  auto is_graph_output = [&](ir::TensorId t) {
    return std::find(g.outputs().begin(), g.outputs().end(), t) != g.outputs().end();
  };
  auto single_use = [&](ir::TensorId t) {
    return consumers[static_cast<size_t>(t)].size() == 1 && !is_graph_output(t);
  };
  std::vector<char> produced(g.tensors().size(), 0);
  AttentionLowering attn(g, lm, layer_of, produced, alias);  // views, activation matmuls (lower_attention.h)
  attn.set_lanes(lanes);  // lane-slice Concats as SXM lane moves (0: identity matmuls)
  auto activation = [&](const ir::Op& op, ir::TensorId t) {
    const ir::Tensor& gt = g.tensor(alias[static_cast<size_t>(t)]);
    if (gt.is_const) unsupported(g, op, "constant activation input '" + gt.name + "'");
    if (gt.dtype != ir::DType::F32 && gt.dtype != ir::DType::F16)
      unsupported(g, op, fmt::format("activation '{}' has type {}; float models only", gt.name, ir::dtype_name(gt.dtype)));
    return attn.stored(op, t);  // a view is materialized
  };
  NormLowering norm(g, lm, produced, attn, activation);  // Softmax, LayerNorm, ReduceSum/Mean (lower_norm.h)
  // One elementwise step for `op` (InputError if its operands or types are not supported).
  auto eltwise = [&](const ir::Op& op) {
    LoweredEltwise E;
    E.name = op.name;
    E.kind = op.kind;
    E.y = op.outputs[0];
    const ir::Tensor& yt = g.tensor(E.y);
    if (yt.dtype != ir::DType::F32 && yt.dtype != ir::DType::F16)
      unsupported(g, op, fmt::format("output type {}; float results only", ir::dtype_name(yt.dtype)));
    const int64_t inner = last_dim(yt.shape);
    const int64_t rows = yt.elements() / inner;
    std::vector<ir::TensorId> ins = op.inputs;
    Opcode vop = Opcode::Add;
    if (op.kind == ir::OpKind::Cast) {
      E.has_op = false;
    } else if (op.kind == ir::OpKind::Pow) {
      const ir::Tensor& e = g.tensor(op.inputs[1]);
      const std::vector<float> ev = e.is_const ? e.const_floats() : std::vector<float>{};
      const bool scalar = ev.size() == 1;
      if (scalar && ev[0] == 2.f) {
        vop = Opcode::Mul;
        ins = {op.inputs[0], op.inputs[0]};
      } else if (scalar && ev[0] == 0.5f) {
        vop = Opcode::Sqrt;
        ins = {op.inputs[0]};
      } else {
        unsupported(g, op, "Pow needs a constant scalar exponent of 2 or 0.5");
      }
    } else if (!eltwise_opcode(op.kind, &vop)) {
      unsupported(g, op, "op kind not supported by the lpusim back end yet");
    }
    E.vxm_op = static_cast<int>(vop);
    bool any_act = false;
    for (ir::TensorId t : ins) {
      const ir::Tensor& tt = g.tensor(alias[static_cast<size_t>(t)]);
      EltOperand o;
      if (tt.is_const) {
        const std::vector<float> v = tt.const_floats();
        const std::vector<int64_t> map = ref::broadcast_index_map(yt.shape, tt.shape);
        bool same_rows = true;
        for (int64_t i = inner; i < static_cast<int64_t>(map.size()) && same_rows; ++i)
          same_rows = map[static_cast<size_t>(i)] == map[static_cast<size_t>(i % inner)];
        o.const_rows = same_rows ? 1 : rows;
        o.values.resize(static_cast<size_t>(o.const_rows * inner));
        for (size_t i = 0; i < o.values.size(); ++i) o.values[i] = v[static_cast<size_t>(map[i])];
      } else {
        o.act = activation(op, t);
        const ir::Shape& as = lm.tensor(g, o.act).shape;
        ir::Shape col = yt.shape;
        if (!col.empty()) col.back() = 1;
        // Same stored layout ([rows, inner]) counts as the output's shape (a view stored as is).
        const bool same2d = as == yt.shape || (!as.empty() && !yt.shape.empty() && as.back() == yt.shape.back() &&
                                               ir::num_elements(as) == yt.elements());
        // Broadcast over ROWS (numpy, the last dim equal or 1): each output row reads its source row
        // by a row map (ONNX conformance: expanded Softmax / MeanVarianceNormalization forms).
        bool row_bcast = false;
        if (!same2d && as != col && !as.empty() && !yt.shape.empty() && as.size() <= yt.shape.size() &&
            (as.back() == yt.shape.back() || as.back() == 1)) {
          const ir::Shape yr(yt.shape.begin(), yt.shape.end() - 1), ar(as.begin(), as.end() - 1);
          bool ok = true;
          for (size_t i = 0; i < ar.size() && ok; ++i) {
            const int64_t d = ar[ar.size() - 1 - i];
            ok = d == 1 || d == yr[yr.size() - 1 - i];
          }
          if (ok) {
            o.row_map = ref::broadcast_index_map(yr, ar);
            if (as.back() == 1 && inner > 1) {
              o.act = norm.row_scalar(op, o.act);
              o.lane_bcast = true;
            }
            row_bcast = true;
          }
        }
        if (!row_bcast && !same2d && as == col && inner > 1) {
          // A per-row scalar (last dim 1) broadcast over the last axis: SXM distribute (lower_norm.h).
          o.act = norm.row_scalar(op, o.act);
          o.lane_bcast = true;
        } else if (!row_bcast && !same2d)
          unsupported(g, op, fmt::format("activation '{}' of shape {} would be broadcast to {}; only constants "
                                         "are broadcast",
                                         lm.tensor(g, o.act).name, ir::shape_str(lm.tensor(g, o.act).shape),
                                         ir::shape_str(yt.shape)));
        any_act = true;
      }
      E.operands.push_back(std::move(o));
    }
    if (!any_act) unsupported(g, op, "all operands are constants (expected the front end to fold it)");
    produced[static_cast<size_t>(E.y)] = 1;
    // Pad lanes (past the last dim) may become NaN/inf: 0/0, 1/0, sqrt/exp of junk (lower_attention.h).
    bool nonfinite = E.has_op && (vop == Opcode::Div || vop == Opcode::Recip || vop == Opcode::Sqrt || vop == Opcode::Exp);
    for (const EltOperand& eo : E.operands) nonfinite = nonfinite || (eo.act != ir::kNoTensor && attn.nonfinite_pad(eo.act));
    attn.note_written(E.y, nonfinite);
    lm.steps.push_back({false, lm.eltwise.size()});
    lm.eltwise.push_back(std::move(E));
  };
  // Elementwise chains in fewer VXM passes (docs/compiler.md "Fused elementwise chains", e.g.
  // GELU 0.5 x (1 + erf(x / sqrt 2)): 5 passes -> 2). Every fused value stays f32 between the ops.
  // (a) A follower: a unary op (Erf, Tanh, Sigmoid, Exp, Sqrt, Reciprocal, Neg, Abs) or an Add /
  //     Sub / Mul by a one-element constant (addi / muli immediates; x - c as addi -c) whose one
  //     activation input only it reads and only one elementwise step writes becomes a post op of
  //     that step (LoweredEltwise::post), which then writes the follower's output.
  // (b) A Mul by a one-element constant c whose output only a Mul of two same-shaped activations
  //     reads is deferred: that Mul reads the unscaled input and applies c as its last post op
  //     ((x * c) * e == (x * e) * c up to one f32 rounding; exact for a power of two such as 0.5).
  // (c) A Mul by a one-element constant c > 0 whose output only a last-axis Softmax reads goes
  //     into that Softmax's exp pass (NormLowering::defer_scale).
  std::map<ir::TensorId, std::pair<ir::TensorId, float>> deferred_scale;  // Mul output -> (input, c)
  auto one_const = [&](ir::TensorId t, float* v) {
    const ir::Tensor& c = g.tensor(alias[static_cast<size_t>(t)]);
    if (!c.is_const || c.elements() != 1) return false;
    *v = c.const_floats()[0];
    return std::isfinite(*v);
  };
  // The one elementwise step writing `in` (a plain stored activation read only by its reader), or -1.
  auto sole_writer = [&](ir::TensorId in) {
    if (alias[static_cast<size_t>(in)] != in || !single_use(in) || layer_of[static_cast<size_t>(in)] >= 0) return -1;
    int ei = -1, writers = 0;
    for (size_t i = 0; i < lm.eltwise.size(); ++i)
      if (lm.eltwise[i].y == in) {
        ei = static_cast<int>(i);
        ++writers;
      }
    for (const LoweredLayer& L : lm.layers) writers += L.y == in ? 1 : 0;
    for (const LoweredLane& Ln : lm.lanes) writers += Ln.y == in ? 1 : 0;
    for (const LoweredGather& G : lm.gathers) writers += G.y == in ? 1 : 0;
    return writers == 1 && ei >= 0 && lm.eltwise[static_cast<size_t>(ei)].has_op ? ei : -1;
  };
  norm.set_sole_writer(sole_writer);  // Softmax's clamp as a post op of its input's writer
  // (d) Mul(a, b) of two same-shaped activations where a's only writer is an elementwise step E that
  // only this Mul reads, and E already reads b (so b is stored before E and the fused pass waits
  // for nothing new): E gets b as one more operand (read again when the chain reaches it) and a
  // binary post op `mul` (its f32 result times b, in the same pass), and writes the Mul's output:
  // one pass and one stored tensor fewer (GELU's x * (1 + erf(x / sqrt 2)), x * x * x; the same f32
  // product, no f16 rounding of a). Not when E does not read b (SwiGLU's silu(g) * up: the silu
  // pass would then wait for up's matmul; measured slower on Llama decode). Returns E's index, or -1.
  auto fuse_product = [&](const ir::Op& op) -> int {
    const ir::TensorId out = op.outputs[0];
    if (op.kind != ir::OpKind::Mul || op.inputs.size() != 2 || op.inputs[0] == op.inputs[1]) return -1;
    for (ir::TensorId t : op.inputs)
      if (g.tensor(t).is_const || alias[static_cast<size_t>(t)] != t || g.tensor(t).shape != g.tensor(out).shape ||
          g.tensor(t).dtype != g.tensor(out).dtype)
        return -1;
    for (int k = 0; k < 2; ++k) {
      const ir::TensorId a = op.inputs[static_cast<size_t>(k)], b = op.inputs[static_cast<size_t>(1 - k)];
      const int ei = sole_writer(a);
      if (ei < 0) continue;
      LoweredEltwise& E = lm.eltwise[static_cast<size_t>(ei)];
      bool reads_b = false;
      for (const EltOperand& o : E.operands) reads_b = reads_b || (o.act == b && o.row_map.empty() && !o.lane_bcast);
      if (!reads_b || E.y2 != ir::kNoTensor || (!E.y_shape.empty() && E.y_shape != g.tensor(out).shape)) continue;
      EltOperand o;
      o.act = b;
      E.operands.push_back(std::move(o));
      E.post.push_back({static_cast<int>(Opcode::Mul), 0.f, static_cast<int>(E.operands.size()) - 1});
      E.y = out;
      E.y_f32 = false;  // the Mul's output, stored like any elementwise result
      produced[static_cast<size_t>(a)] = 0;
      produced[static_cast<size_t>(out)] = 1;
      attn.note_written(out, attn.nonfinite_pad(a) || attn.nonfinite_pad(b));
      return ei;
    }
    return -1;
  };
  auto fused_eltwise = [&](const ir::Op& op) {
    const ir::TensorId out = op.outputs.empty() ? ir::kNoTensor : op.outputs[0];
    Opcode unary = Opcode::Mov;
    float c = 0.f;
    bool has_post = false;
    ir::TensorId in = ir::kNoTensor;
    switch (op.kind) {
      case ir::OpKind::Erf: case ir::OpKind::Tanh: case ir::OpKind::Sigmoid: case ir::OpKind::Exp:
      case ir::OpKind::Sqrt: case ir::OpKind::Reciprocal: case ir::OpKind::Neg: case ir::OpKind::Abs:
        if (op.inputs.size() == 1 && eltwise_opcode(op.kind, &unary)) {
          in = op.inputs[0];
          has_post = true;
        }
        break;
      case ir::OpKind::Add: case ir::OpKind::Sub: case ir::OpKind::Mul:
        if (op.inputs.size() == 2) {
          for (int k = 0; k < 2 && !has_post; ++k) {
            if (op.kind == ir::OpKind::Sub && k == 0) continue;  // c - x: not an immediate form
            if (one_const(op.inputs[static_cast<size_t>(k)], &c) && !g.tensor(op.inputs[static_cast<size_t>(1 - k)]).is_const) {
              in = op.inputs[static_cast<size_t>(1 - k)];
              unary = op.kind == ir::OpKind::Mul ? Opcode::MulImm : Opcode::AddImm;
              if (op.kind == ir::OpKind::Sub) c = -c;
              has_post = true;
            }
          }
        }
        break;
      default: break;
    }
    const bool same_type = has_post && g.tensor(out).shape == g.tensor(in).shape &&
                           g.tensor(out).dtype == g.tensor(in).dtype;
    // x * c, x stored as is, read by one op `rd`: (c) or (b) may leave the Mul out.
    const bool lone_scale =
        same_type && op.kind == ir::OpKind::Mul && single_use(out) && alias[static_cast<size_t>(in)] == in;
    const ir::Op* rd_op = lone_scale ? &g.ops()[static_cast<size_t>(consumers[static_cast<size_t>(out)][0])] : nullptr;
    // (c) read only by a Softmax over the last axis: c goes into the Softmax's exp pass
    // (NormLowering::defer_scale), no step for the Mul.
    if (lone_scale && norm.defer_scale(out, in, c, *rd_op)) return;
    // (b) defer x * c into its one Mul reader.
    if (lone_scale && !deferred_scale.count(in)) {
      const ir::Op& rd = *rd_op;
      bool ok = rd.kind == ir::OpKind::Mul && rd.inputs.size() == 2 && rd.inputs[0] != rd.inputs[1];
      for (ir::TensorId t : ok ? rd.inputs : std::vector<ir::TensorId>{})
        ok = ok && !g.tensor(t).is_const && g.tensor(t).shape == g.tensor(rd.outputs[0]).shape && !deferred_scale.count(t);
      if (ok) {
        deferred_scale[out] = {in, c};
        return;
      }
    }
    // (a) a follower of a step.
    const int ei = same_type ? sole_writer(in) : -1;
    if (ei >= 0) {
      LoweredEltwise& E = lm.eltwise[static_cast<size_t>(ei)];
      E.post.push_back({static_cast<int>(unary), c});
      E.y = out;
      produced[static_cast<size_t>(in)] = 0;
      produced[static_cast<size_t>(out)] = 1;
      attn.note_written(out, attn.nonfinite_pad(in) || unary == Opcode::Recip || unary == Opcode::Sqrt ||
                                 unary == Opcode::Exp);
      return;
    }
    // A Mul reading a deferred x * c: reads x, then muli c.
    std::vector<float> scales;
    ir::Op sub = op;
    for (ir::TensorId& t : sub.inputs) {
      const auto it = deferred_scale.find(t);
      if (it == deferred_scale.end()) continue;
      t = it->second.first;
      scales.push_back(it->second.second);
    }
    // (d) a Mul of two activations, one of them written by an elementwise step that only this Mul
    // reads: a binary post op `mul` of that step, the other activation its extra operand.
    int fi = fuse_product(sub);
    if (fi < 0) {
      eltwise(sub);
      fi = static_cast<int>(lm.eltwise.size()) - 1;
    }
    for (float s : scales) lm.eltwise[static_cast<size_t>(fi)].post.push_back({static_cast<int>(Opcode::MulImm), s});
  };
  ConvLowering conv(g, lm, layer_of, produced, alias, opt.pack_conv_taps ? lanes : 0, opt.pack_disjoint_rows);  // Conv, pools and their layout (lower_conv.h)
  FormLowering forms(g, lm, layer_of, produced, alias, input_index, attn);  // conformance forms (lower_forms.h)
  for (size_t oi = 0; oi < g.ops().size(); ++oi) {
    const ir::Op& op = g.ops()[oi];
    if (conv.lower(op)) continue;
    if (forms.lower(op)) continue;
    if (attn.lower(op)) continue;
    switch (op.kind) {
      case ir::OpKind::Reshape: {
        const ir::TensorId in = op.inputs[0];
        const int ii = input_index[static_cast<size_t>(in)];
        if (ii < 0 || lm.inputs[static_cast<size_t>(ii)].alias != in)
          unsupported(g, op, "Reshape is only folded when applied once to a graph input");
        lm.inputs[static_cast<size_t>(ii)].shape = g.tensor(op.outputs[0]).shape;
        lm.inputs[static_cast<size_t>(ii)].alias = op.outputs[0];
        alias[static_cast<size_t>(op.outputs[0])] = op.outputs[0];
        input_index[static_cast<size_t>(op.outputs[0])] = ii;
        break;
      }
      // MatMul and Gemm: AttentionLowering::lower (lower_attention.cpp).
      case ir::OpKind::Add: {
        int li = -1;
        int ci = -1;
        for (int k = 0; k < 2; ++k) {
          const int l = layer_of[static_cast<size_t>(op.inputs[static_cast<size_t>(k)])];
          if (l >= 0 && g.tensor(op.inputs[static_cast<size_t>(1 - k)]).is_const) {
            li = l;
            ci = 1 - k;
          }
        }
        // A constant N-vector added to an unactivated matmul output used once is the layer's bias;
        // any other Add is an elementwise step.
        if (li >= 0) {
          const LoweredLayer& L = lm.layers[static_cast<size_t>(li)];
          const ir::Tensor& c = g.tensor(op.inputs[static_cast<size_t>(ci)]);
          if (L.relu || !single_use(L.y) || c.elements() != L.N || last_dim(c.shape) != L.N ||
              g.tensor(op.outputs[0]).shape != g.tensor(L.y).shape)
            li = -1;
        }
        if (li < 0) {
          fused_eltwise(op);
          break;
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
        break;
      }
      case ir::OpKind::Relu: {
        const int li = layer_of[static_cast<size_t>(op.inputs[0])];
        if (li < 0 || lm.layers[static_cast<size_t>(li)].relu || !single_use(lm.layers[static_cast<size_t>(li)].y)) {
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
            break;
          }
          eltwise(op);
          break;
        }
        LoweredLayer& L = lm.layers[static_cast<size_t>(li)];
        layer_of[static_cast<size_t>(L.y)] = -1;
        L.relu = true;
        L.y = op.outputs[0];
        layer_of[static_cast<size_t>(L.y)] = li;
        produced[static_cast<size_t>(L.y)] = 1;
        break;
      }
      case ir::OpKind::Softmax:
      case ir::OpKind::LayerNormalization:
      case ir::OpKind::ReduceSum:
      case ir::OpKind::ReduceMean:
      case ir::OpKind::ReduceMax:
      case ir::OpKind::ReduceMin:
      case ir::OpKind::ReduceSumSquare:
      case ir::OpKind::ReduceL1:
      case ir::OpKind::ReduceL2: norm.lower(op); break;  // lower_norm.cpp
      default:
        fused_eltwise(op);
    }
    conv.after(op);
  }
  attn.finish();
  if (opt.pair_heads && lanes > 0) lm.paired_attentions = pair_heads(g, &lm, lanes);  // after the packed heads
  if (opt.ones_in_projection && lanes > 0) ones_in_projection(g, &lm, lanes);         // after both
  for (ir::TensorId t : g.outputs()) {
    if (!produced[static_cast<size_t>(t)])
      throw InputError(fmt::format("model '{}': graph output '{}' is not produced by a lowered op ({})", g.name,
                                   g.tensor(t).name, kSupported));
    lm.outputs.push_back(t);
    if (opt.f16_output && opt.f16_output(g.tensor(t).name)) lm.f16_outputs.insert(t);
  }
  if (opt.fuse_residual_adds) fuse_residual_adds(g, &lm);  // residual Adds into product epilogues
  if (lm.steps.empty()) throw InputError(fmt::format("model '{}': no op to compile ({})", g.name, kSupported));
  return lm;
}

}  // namespace lpu::compiler
