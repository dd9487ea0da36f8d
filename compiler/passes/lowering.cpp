// Lowering pass: IR ops -> dense layers (matmul + bias + relu) and VXM elementwise steps
// (reductions and normalizations decomposed into both), with clear errors for the rest.
#include "compiler/passes/lowering.h"

#include <algorithm>
#include <fmt/format.h>

#include "compiler/passes/lower_attention.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/reference/interpreter.h"
#include "isa/chip_config.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

constexpr const char* kSupported =
    "supported: MatMul/Gemm with a constant 2-D weight (bias Add and Relu fused), elementwise Add, Sub, Mul, Div, "
    "Relu, Sigmoid, Tanh, Erf, Exp, Sqrt, Reciprocal, Neg, Pow (constant exponent 2 or 0.5), Where (constant "
    "condition), Cast (float to float), ReduceSum/ReduceMean, Softmax and LayerNormalization over the last axis, on activations of the output's shape (or [..., 1], broadcast over the last axis) with constants broadcast numpy-style, "
    "Reshape, Transpose, Split, Slice (strided views), Concat along a row axis, MatMul of two activations (batched, B or B^T); Conv, MaxPool, AveragePool, GlobalAveragePool (passes/lower_conv.h)";

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
    case ir::OpKind::Where: *op = Opcode::Select; return true;
    default: return false;
  }
}

}  // namespace

LoweredModel lower_graph(const ir::Graph& g) {
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
  auto activation = [&](const ir::Op& op, ir::TensorId t) {
    const ir::Tensor& gt = g.tensor(alias[static_cast<size_t>(t)]);
    if (gt.is_const) unsupported(g, op, "constant activation input '" + gt.name + "'");
    if (gt.dtype != ir::DType::F32 && gt.dtype != ir::DType::F16)
      unsupported(g, op, fmt::format("activation '{}' has type {}; float models only", gt.name, ir::dtype_name(gt.dtype)));
    return attn.stored(op, t);  // a view is materialized
  };
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
        if (!same2d && as == col && inner > 1) {
          // A per-row scalar (last dim 1) broadcast over the last axis: a matmul by a ones row
          // [1, inner] on the MXM copies it to every lane (exact; kept f32).
          const ir::TensorId bx = attn.mxm_input(op, o.act);
          ir::Tensor bt;
          bt.name = g.unique_name(op.name + ".bcast" + std::to_string(E.operands.size()));
          bt.dtype = ir::DType::F32;
          bt.shape = yt.shape;
          lm.extra.push_back(std::move(bt));
          produced.resize(g.tensors().size() + lm.extra.size(), 0);
          LoweredLayer L;
          L.name = lm.extra.back().name;
          L.x = bx;
          L.y = static_cast<ir::TensorId>(g.tensors().size() + lm.extra.size() - 1);
          L.K = 1;
          L.N = inner;
          L.w.assign(static_cast<size_t>(inner), 1.f);
          L.y_f32 = true;
          produced[static_cast<size_t>(L.y)] = 1;
          o.act = L.y;
          lm.steps.push_back({true, lm.layers.size()});
          lm.layers.push_back(std::move(L));
        } else if (!same2d)
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
  ConvLowering conv(g, lm, layer_of, produced, alias);  // Conv, pools and their layout (lower_conv.h)
  for (size_t oi = 0; oi < g.ops().size(); ++oi) {
    const ir::Op& op = g.ops()[oi];
    if (conv.lower(op)) continue;
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
          eltwise(op);
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
          eltwise(op);  // not fusable into a matmul epilogue
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
      case ir::OpKind::LayerNormalization: {
        // Over the last axis, from existing kernels (docs/compiler.md): row sums broadcast to every
        // lane by a matmul with a K x K ones matrix (MXM, f32 accumulation, kept f32), row maxima by
        // a max tree whose lane rotations are matmuls by permutation matrices (exact), the rest on
        // the VXM in f32.
        const ir::TensorId a = attn.mxm_input(op, activation(op, op.inputs[0]));
        const ir::Shape& xs = lm.tensor(g, a).shape;
        if (xs.empty() || op.attr_int("axis") != static_cast<int64_t>(xs.size()) - 1)
          unsupported(g, op, std::string(ir::op_kind_name(op.kind)) + " is lowered over the last axis only");
        const int64_t K = xs.back();
        auto const_row = [&](ir::TensorId t, const char* what) {
          const ir::Tensor& c = g.tensor(t);
          if (!c.is_const) unsupported(g, op, std::string(what) + " must be a constant");
          const std::vector<float> v = c.const_floats();
          const std::vector<int64_t> map = ref::broadcast_index_map({K}, c.shape);
          EltOperand o;
          o.const_rows = 1;
          for (int64_t i = 0; i < K; ++i) o.values.push_back(v[static_cast<size_t>(map[static_cast<size_t>(i)])]);
          return o;
        };
        auto fresh = [&](const std::string& suffix, ir::DType dt) {
          ir::Tensor t;
          t.name = g.unique_name(op.name + suffix);
          t.dtype = dt;
          t.shape = xs;
          lm.extra.push_back(std::move(t));
          produced.resize(g.tensors().size() + lm.extra.size(), 0);
          return static_cast<ir::TensorId>(g.tensors().size() + lm.extra.size() - 1);
        };
        auto act_op = [](ir::TensorId t) { EltOperand o; o.act = t; return o; };
        auto scalar = [](float f) { EltOperand o; o.const_rows = 1; o.values = {f}; return o; };
        // y = x . W for a K x K constant W (f32 result unless f16 is asked for).
        auto lane_matmul = [&](ir::TensorId x, ir::TensorId y, const std::string& suffix, std::vector<float> w,
                               bool f32) {
          LoweredLayer L;
          L.name = op.name + suffix;
          L.x = x;
          L.y = y;
          L.K = K;
          L.N = K;
          L.w = std::move(w);
          L.y_f32 = f32;
          produced[static_cast<size_t>(y)] = 1;
          lm.steps.push_back({true, lm.layers.size()});
          lm.layers.push_back(std::move(L));
        };
        auto ones_sum = [&](ir::TensorId x, ir::TensorId y, const std::string& suffix) {
          lane_matmul(x, y, suffix, std::vector<float>(static_cast<size_t>(K * K), 1.f), true);
        };
        auto elt = [&](const std::string& suffix, Opcode o, std::vector<EltOperand> ops, ir::TensorId y) {
          LoweredEltwise E;
          E.name = op.name + suffix;
          E.kind = op.kind;
          E.vxm_op = static_cast<int>(o);
          E.operands = std::move(ops);
          E.y = y;
          E.y_shape = xs;
          E.y_f32 = true;
          for (EltOperand& eo : E.operands)
            if (eo.act == ir::kNoTensor && eo.values.size() == 1) eo.values.assign(static_cast<size_t>(K), eo.values[0]);
          produced[static_cast<size_t>(y)] = 1;
          lm.steps.push_back({false, lm.eltwise.size()});
          lm.eltwise.push_back(std::move(E));
        };
        if (op.kind == ir::OpKind::Softmax) {
          // m = row max (tree: m <- max(m, m rotated by s lanes), s = 1, 2, 4, ... < K; windows
          // overlap, which max does not mind); e = exp(x - m) in f32; y = e / (f16(e) . ones).
          // Masked logits (-inf, e.g. a causal mask by Where) are first clamped to the lowest f16,
          // -65504, so that no rotation matmul multiplies inf by 0 (NaN); exp(-65504 - m) is 0 in
          // f32 like exp(-inf), so the result is the same unless a whole row is masked.
          const ir::TensorId xc = fresh(".clamp", ir::DType::F16);
          elt(".clamp", Opcode::Max, {act_op(a), scalar(-65504.f)}, xc);
          lm.eltwise.back().y_f32 = false;  // exact in f16
          ir::TensorId cur = xc;
          for (int64_t sh = 1; sh < K; sh *= 2) {
            std::vector<float> perm(static_cast<size_t>(K * K), 0.f);
            for (int64_t n = 0; n < K; ++n) perm[static_cast<size_t>(((n + sh) % K) * K + n)] = 1.f;
            const ir::TensorId r = fresh(".rot" + std::to_string(sh), ir::DType::F16);
            lane_matmul(cur, r, ".rot" + std::to_string(sh), std::move(perm), false);  // exact: one f16 term
            const ir::TensorId mx = fresh(".max" + std::to_string(sh), ir::DType::F16);
            elt(".max" + std::to_string(sh), Opcode::Max, {act_op(cur), act_op(r)}, mx);
            lm.eltwise.back().y_f32 = false;  // a max of f16 values is exact in f16
            cur = mx;
          }
          const ir::TensorId d = fresh(".d", ir::DType::F32), e = fresh(".e", ir::DType::F32),
                             e16 = fresh(".e16", ir::DType::F16), S = fresh(".sum", ir::DType::F32);
          elt(".sub", Opcode::Sub, {act_op(xc), act_op(cur)}, d);
          elt(".exp", Opcode::Exp, {act_op(d)}, e);
          elt(".narrow", Opcode::Mov, {act_op(e)}, e16);
          lm.eltwise.back().has_op = false;  // f32 -> f16 only, for the MXM row sum
          lm.eltwise.back().y_f32 = false;
          ones_sum(e16, S, ".rowsum");
          elt(".div", Opcode::Div, {act_op(e), act_op(S)}, op.outputs[0]);
          lm.eltwise.back().y_f32 = false;  // a hidden result is f16 like every activation
          attn.note_written(op.outputs[0], true);  // pad lanes e / 0
          break;
        }
        const EltOperand scale = const_row(op.inputs[1], "Scale");
        const bool has_b = op.inputs.size() > 2 && op.inputs[2] != ir::kNoTensor;
        const EltOperand bias = has_b ? const_row(op.inputs[2], "B") : EltOperand{};
        const float eps = op.attr_float("epsilon");
        const ir::TensorId S = fresh(".sum", ir::DType::F32), m = fresh(".mean", ir::DType::F32),
                           d = fresh(".d", ir::DType::F32), d2 = fresh(".d2", ir::DType::F16),
                           V = fresh(".vsum", ir::DType::F32), v = fresh(".var", ir::DType::F32),
                           ve = fresh(".veps", ir::DType::F32), sd = fresh(".sd", ir::DType::F32),
                           nrm = fresh(".norm", ir::DType::F32);
        const ir::TensorId sc = has_b ? fresh(".scaled", ir::DType::F32) : op.outputs[0];
        ones_sum(a, S, ".rowsum");
        elt(".mean", Opcode::Mul, {act_op(S), scalar(1.f / static_cast<float>(K))}, m);
        elt(".center", Opcode::Sub, {act_op(a), act_op(m)}, d);
        elt(".square", Opcode::Mul, {act_op(d), act_op(d)}, d2);
        lm.eltwise.back().y_f32 = false;  // the MXM takes f16
        ones_sum(d2, V, ".varsum");
        elt(".var", Opcode::Mul, {act_op(V), scalar(1.f / static_cast<float>(K))}, v);
        elt(".eps", Opcode::Add, {act_op(v), scalar(eps)}, ve);
        elt(".sqrt", Opcode::Sqrt, {act_op(ve)}, sd);
        elt(".div", Opcode::Div, {act_op(d), act_op(sd)}, nrm);
        elt(".scale", Opcode::Mul, {act_op(nrm), scale}, sc);
        if (has_b) elt(".bias", Opcode::Add, {act_op(sc), bias}, op.outputs[0]);
        lm.eltwise.back().y_f32 = false;  // a hidden result is f16 like every activation
        break;
      }
      case ir::OpKind::ReduceSum:
      case ir::OpKind::ReduceMean: {
        // Sum over the last axis = a matmul by a ones column on the MXM (f32 accumulation);
        // ReduceMean then scales the f16 sum by 1/K (f32 constant) on the VXM.
        const ir::TensorId a = attn.mxm_input(op, activation(op, op.inputs[0]));
        const ir::Shape& xs = lm.tensor(g, a).shape;
        if (xs.empty() || op.attr_ints("axes") != std::vector<int64_t>{static_cast<int64_t>(xs.size()) - 1})
          unsupported(g, op, "reductions are lowered over the last axis only");
        ir::Shape ys = xs;
        ys.back() = 1;
        LoweredLayer L;
        L.name = op.name;
        L.x = a;
        L.K = xs.back();
        L.N = 1;
        L.w.assign(static_cast<size_t>(L.K), 1.f);
        L.y_shape = ys;
        if (op.kind == ir::OpKind::ReduceSum) {
          L.y = op.outputs[0];
        } else {
          ir::Tensor sum;
          sum.name = g.unique_name(op.name + ".sum");
          sum.dtype = ir::DType::F16;
          sum.shape = ys;
          L.y = static_cast<ir::TensorId>(g.tensors().size() + lm.extra.size());
          lm.extra.push_back(std::move(sum));
        }
        produced.resize(g.tensors().size() + lm.extra.size(), 0);
        produced[static_cast<size_t>(L.y)] = 1;
        lm.steps.push_back({true, lm.layers.size()});
        lm.layers.push_back(std::move(L));
        if (op.kind == ir::OpKind::ReduceMean) {
          LoweredEltwise E;
          E.name = op.name + ".scale";
          E.kind = op.kind;
          E.vxm_op = static_cast<int>(Opcode::Mul);
          E.y = op.outputs[0];
          E.y_shape = ys;
          EltOperand s0;
          s0.act = lm.layers.back().y;
          EltOperand s1;
          s1.const_rows = 1;
          s1.values = {1.f / static_cast<float>(xs.back())};
          E.operands = {s0, s1};
          produced[static_cast<size_t>(E.y)] = 1;
          lm.steps.push_back({false, lm.eltwise.size()});
          lm.eltwise.push_back(std::move(E));
        }
        break;
      }
      default:
        eltwise(op);
    }
    conv.after(op);
  }
  attn.finish();
  for (ir::TensorId t : g.outputs()) {
    if (!produced[static_cast<size_t>(t)])
      throw InputError(fmt::format("model '{}': graph output '{}' is not produced by a lowered op ({})", g.name,
                                   g.tensor(t).name, kSupported));
    lm.outputs.push_back(t);
  }
  if (lm.steps.empty()) throw InputError(fmt::format("model '{}': no op to compile ({})", g.name, kSupported));
  return lm;
}

}  // namespace lpu::compiler
