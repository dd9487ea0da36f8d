// GraphLowering's elementwise steps (graph_lowering.h): one VXM step per op, and the fusions that
// put chains of them into fewer passes.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "compiler/passes/graph_lowering.h"
#include "compiler/reference/interpreter.h"

namespace lpu::compiler {

void GraphLowering::eltwise(const ir::Op& op) {
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
      if (conv.in_conv_layout(o.act)) {  // laid out by ConvLowering::after, a broadcast too
        any_act = true;
        E.operands.push_back(std::move(o));
        continue;
      }
      const ir::Shape& as = lm.tensor(g, o.act).shape;
      ir::Shape col = yt.shape;
      if (!col.empty()) col.back() = 1;
      // Same stored layout ([rows, inner]) counts as the output's shape (a view stored as is).
      const bool same2d =
          as == yt.shape || (!as.empty() && !yt.shape.empty() && as.back() == yt.shape.back() &&
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
        unsupported(g, op,
                    fmt::format("activation '{}' of shape {} would be broadcast to {}; only constants "
                                "are broadcast",
                                lm.tensor(g, o.act).name, ir::shape_str(lm.tensor(g, o.act).shape),
                                ir::shape_str(yt.shape)));
      any_act = true;
    }
    E.operands.push_back(std::move(o));
  }
  if (!any_act) unsupported(g, op, "all operands are constants (expected the front end to fold it)");
  produced[static_cast<size_t>(E.y)] = 1;
  // Pad lanes (past the last dim) may become NaN/inf: 0/0, 1/0, sqrt/exp/log of junk (lower_attention.h).
  bool nonfinite = E.may_make_nonfinite();
  for (const EltOperand& eo : E.operands)
    nonfinite = nonfinite || (eo.act != ir::kNoTensor && attn.nonfinite_pad(eo.act));
  attn.note_written(E.y, nonfinite);
  lm.steps.push_back({false, lm.eltwise.size()});
  lm.eltwise.push_back(std::move(E));
}

// Elementwise chains in fewer VXM passes (docs/compiler.md "Fused elementwise chains", e.g.
// GELU 0.5 x (1 + erf(x / sqrt 2)): 5 passes -> 2). Every fused value stays f32 between the ops.
// (a) A follower: a unary op (Erf, Tanh, Sigmoid, Exp, Log, Sqrt, Reciprocal, Neg, Abs) or an Add /
//     Sub / Mul by a one-element constant (addi / muli immediates; x - c as addi -c) whose one
//     activation input only it reads and only one elementwise step writes becomes a post op of
//     that step (LoweredEltwise::post), which then writes the follower's output.
// (b) A Mul by a one-element constant c whose output only a Mul of two same-shaped activations
//     reads is deferred: that Mul reads the unscaled input and applies c as its last post op
//     ((x * c) * e == (x * e) * c up to one f32 rounding; exact for a power of two such as 0.5).
// (c) A Mul by a one-element constant c > 0 whose output only a last-axis Softmax reads goes
//     into that Softmax's exp pass (NormLowering::defer_scale).
bool GraphLowering::one_const(ir::TensorId t, float* v) const {
  const ir::Tensor& c = g.tensor(alias[static_cast<size_t>(t)]);
  if (!c.is_const || c.elements() != 1) return false;
  *v = c.const_floats()[0];
  return std::isfinite(*v);
}

int GraphLowering::sole_writer(ir::TensorId in) const {
  if (alias[static_cast<size_t>(in)] != in || !single_use(in) || layer_of[static_cast<size_t>(in)] >= 0)
    return -1;
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
}

// (d) Mul(a, b) of two same-shaped activations where a's only writer is an elementwise step E that
// only this Mul reads, and E already reads b (so b is stored before E and the fused pass waits
// for nothing new): E gets b as one more operand (read again when the chain reaches it) and a
// binary post op `mul` (its f32 result times b, in the same pass), and writes the Mul's output:
// one pass and one stored tensor fewer (GELU's x * (1 + erf(x / sqrt 2)), x * x * x; the same f32
// product, no f16 rounding of a). Not when E does not read b (SwiGLU's silu(g) * up: the silu
// pass would then wait for up's matmul; measured slower on Llama decode). Returns E's index, or -1.
int GraphLowering::fuse_product(const ir::Op& op) {
  const ir::TensorId out = op.outputs[0];
  if (op.kind != ir::OpKind::Mul || op.inputs.size() != 2 || op.inputs[0] == op.inputs[1]) return -1;
  for (ir::TensorId t : op.inputs)
    if (g.tensor(t).is_const || alias[static_cast<size_t>(t)] != t ||
        g.tensor(t).shape != g.tensor(out).shape || g.tensor(t).dtype != g.tensor(out).dtype)
      return -1;
  for (int k = 0; k < 2; ++k) {
    const ir::TensorId a = op.inputs[static_cast<size_t>(k)], b = op.inputs[static_cast<size_t>(1 - k)];
    const int ei = sole_writer(a);
    if (ei < 0) continue;
    LoweredEltwise& E = lm.eltwise[static_cast<size_t>(ei)];
    bool reads_b = false;
    for (const EltOperand& o : E.operands)
      reads_b = reads_b || (o.act == b && o.row_map.empty() && !o.lane_bcast);
    if (!reads_b || E.y2 != ir::kNoTensor || (!E.y_shape.empty() && E.y_shape != g.tensor(out).shape))
      continue;
    E.operands.push_back(EltOperand::of(b));
    E.post.push_back({static_cast<int>(Opcode::Mul), 0.f, static_cast<int>(E.operands.size()) - 1});
    E.y = out;
    E.y_f32 = false;  // the Mul's output, stored like any elementwise result
    produced[static_cast<size_t>(a)] = 0;
    produced[static_cast<size_t>(out)] = 1;
    attn.note_written(out, attn.nonfinite_pad(a) || attn.nonfinite_pad(b));
    return ei;
  }
  return -1;
}

void GraphLowering::fused_eltwise(const ir::Op& op) {
  const ir::TensorId out = op.outputs.empty() ? ir::kNoTensor : op.outputs[0];
  Opcode unary = Opcode::Mov;
  float c = 0.f;
  bool has_post = false;
  ir::TensorId in = ir::kNoTensor;
  switch (op.kind) {
    case ir::OpKind::Erf:
    case ir::OpKind::Tanh:
    case ir::OpKind::Sigmoid:
    case ir::OpKind::Exp:
    case ir::OpKind::Log:
    case ir::OpKind::Sqrt:
    case ir::OpKind::Reciprocal:
    case ir::OpKind::Neg:
    case ir::OpKind::Abs:
      if (op.inputs.size() == 1 && eltwise_opcode(op.kind, &unary)) {
        in = op.inputs[0];
        has_post = true;
      }
      break;
    case ir::OpKind::Add:
    case ir::OpKind::Sub:
    case ir::OpKind::Mul:
      if (op.inputs.size() == 2) {
        for (int k = 0; k < 2 && !has_post; ++k) {
          if (op.kind == ir::OpKind::Sub && k == 0) continue;  // c - x: not an immediate form
          if (one_const(op.inputs[static_cast<size_t>(k)], &c) &&
              !g.tensor(op.inputs[static_cast<size_t>(1 - k)]).is_const) {
            in = op.inputs[static_cast<size_t>(1 - k)];
            unary = op.kind == ir::OpKind::Mul ? Opcode::MulImm : Opcode::AddImm;
            if (op.kind == ir::OpKind::Sub) c = -c;
            has_post = true;
          }
        }
      }
      break;
    default:
      break;
  }
  const bool same_type =
      has_post && g.tensor(out).shape == g.tensor(in).shape && g.tensor(out).dtype == g.tensor(in).dtype;
  // x * c, x stored as is, read by one op `rd`: (c) or (b) may leave the Mul out.
  const bool lone_scale =
      same_type && op.kind == ir::OpKind::Mul && single_use(out) && alias[static_cast<size_t>(in)] == in;
  const ir::Op* rd_op =
      lone_scale ? &g.ops()[static_cast<size_t>(consumers[static_cast<size_t>(out)][0])] : nullptr;
  // (c) read only by a Softmax over the last axis: c goes into the Softmax's exp pass
  // (NormLowering::defer_scale), no step for the Mul.
  if (lone_scale && norm.defer_scale(out, in, c, *rd_op)) return;
  // (b) defer x * c into its one Mul reader.
  if (lone_scale && !deferred_scale.count(in)) {
    const ir::Op& rd = *rd_op;
    bool ok = rd.kind == ir::OpKind::Mul && rd.inputs.size() == 2 && rd.inputs[0] != rd.inputs[1];
    for (ir::TensorId t : ok ? rd.inputs : std::vector<ir::TensorId>{})
      ok = ok && !g.tensor(t).is_const && g.tensor(t).shape == g.tensor(rd.outputs[0]).shape &&
           !deferred_scale.count(t);
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
    attn.note_written(out, attn.nonfinite_pad(in) || vxm_may_make_nonfinite(static_cast<int>(unary)));
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
  for (float s : scales)
    lm.eltwise[static_cast<size_t>(fi)].post.push_back({static_cast<int>(Opcode::MulImm), s});
}

}  // namespace lpu::compiler
