// Lowering pass: IR ops -> dense layers (matmul + bias + relu), with clear errors for the rest.
#include "compiler/passes/lowering.h"

#include <algorithm>
#include <fmt/format.h>

#include "isa/chip_config.h"

namespace lpu::compiler {

namespace {

constexpr const char* kSupported =
    "supported: MatMul/Gemm with a constant 2-D weight, Add of a constant bias right after one, Relu right "
    "after one, Reshape of a graph input";

[[noreturn]] void unsupported(const ir::Graph& g, const ir::Op& op, const std::string& why) {
  throw InputError(fmt::format("model '{}': node '{}' ({}): {} ({})", g.name, op.name, ir::op_kind_name(op.kind),
                               why, kSupported));
}

int64_t last_dim(const ir::Shape& s) { return s.empty() ? 1 : s.back(); }

}  // namespace

LoweredModel lower_graph(const ir::Graph& g) {
  LoweredModel lm;
  const auto consumers = g.consumers();
  std::vector<ir::TensorId> alias(g.tensors().size());
  for (size_t i = 0; i < alias.size(); ++i) alias[i] = static_cast<ir::TensorId>(i);
  std::vector<int> input_index(g.tensors().size(), -1);
  for (ir::TensorId t : g.inputs()) {
    input_index[static_cast<size_t>(t)] = static_cast<int>(lm.inputs.size());
    lm.inputs.push_back({t, g.tensor(t).shape, t});
  }
  // Layer producing each tensor (its y), -1 if none.
  std::vector<int> layer_of(g.tensors().size(), -1);
  auto is_graph_output = [&](ir::TensorId t) {
    return std::find(g.outputs().begin(), g.outputs().end(), t) != g.outputs().end();
  };
  auto single_use = [&](ir::TensorId t) {
    return consumers[static_cast<size_t>(t)].size() == 1 && !is_graph_output(t);
  };
  auto activation = [&](const ir::Op& op, ir::TensorId t) {
    const ir::TensorId a = alias[static_cast<size_t>(t)];
    if (g.tensor(a).is_const) unsupported(g, op, "constant activation input '" + g.tensor(a).name + "'");
    if (g.tensor(a).dtype != ir::DType::F32 && g.tensor(a).dtype != ir::DType::F16)
      unsupported(g, op, fmt::format("activation '{}' has type {}; float models only", g.tensor(a).name,
                                     ir::dtype_name(g.tensor(a).dtype)));
    return a;
  };
  for (size_t oi = 0; oi < g.ops().size(); ++oi) {
    const ir::Op& op = g.ops()[oi];
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
      case ir::OpKind::MatMul:
      case ir::OpKind::Gemm: {
        const ir::TensorId a = activation(op, op.inputs[0]);
        const ir::Tensor& wt = g.tensor(op.inputs[1]);
        if (!wt.is_const || wt.shape.size() != 2) unsupported(g, op, "the weight must be a constant 2-D tensor");
        LoweredLayer L;
        L.name = op.name;
        L.x = a;
        L.y = op.outputs[0];
        bool transB = false;
        float alpha = 1.f, beta = 1.f;
        if (op.kind == ir::OpKind::Gemm) {
          if (op.attr_int("transA") != 0) unsupported(g, op, "transA=1 is not supported");
          transB = op.attr_int("transB") != 0;
          alpha = op.attr_float("alpha");
          beta = op.attr_float("beta");
        }
        L.K = transB ? wt.shape[1] : wt.shape[0];
        L.N = transB ? wt.shape[0] : wt.shape[1];
        if (last_dim(g.tensor(a).shape) != L.K)
          unsupported(g, op, fmt::format("activation inner dimension {} != weight rows {}",
                                         last_dim(g.tensor(a).shape), L.K));
        const std::vector<float> wv = wt.const_floats();
        L.w.resize(static_cast<size_t>(L.K * L.N));
        for (int64_t k = 0; k < L.K; ++k)
          for (int64_t n = 0; n < L.N; ++n)
            L.w[static_cast<size_t>(k * L.N + n)] =
                alpha * wv[static_cast<size_t>(transB ? n * L.K + k : k * L.N + n)];
        if (op.kind == ir::OpKind::Gemm && op.inputs.size() > 2 && op.inputs[2] != ir::kNoTensor) {
          const ir::Tensor& c = g.tensor(op.inputs[2]);
          if (!c.is_const || c.elements() != L.N || last_dim(c.shape) != L.N)
            unsupported(g, op, "C must be a constant of N elements (a bias)");
          const std::vector<float> cv = c.const_floats();
          L.bias.resize(static_cast<size_t>(L.N));
          for (int64_t n = 0; n < L.N; ++n) L.bias[static_cast<size_t>(n)] = beta * cv[static_cast<size_t>(n)];
        }
        layer_of[static_cast<size_t>(L.y)] = static_cast<int>(lm.layers.size());
        lm.layers.push_back(std::move(L));
        break;
      }
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
        if (li < 0) unsupported(g, op, "Add must add a constant bias to a matmul output");
        LoweredLayer& L = lm.layers[static_cast<size_t>(li)];
        const ir::Tensor& c = g.tensor(op.inputs[static_cast<size_t>(ci)]);
        if (L.relu || !single_use(L.y)) unsupported(g, op, "the matmul output is used elsewhere or already activated");
        if (c.elements() != L.N || last_dim(c.shape) != L.N)
          unsupported(g, op, fmt::format("bias '{}' must hold N={} elements along the last axis", c.name, L.N));
        const std::vector<float> cv = c.const_floats();
        if (L.bias.empty()) L.bias.assign(static_cast<size_t>(L.N), 0.f);
        for (int64_t n = 0; n < L.N; ++n) L.bias[static_cast<size_t>(n)] += cv[static_cast<size_t>(n)];
        if (g.tensor(op.outputs[0]).shape != g.tensor(L.y).shape)
          unsupported(g, op, "the bias add changes the shape");
        layer_of[static_cast<size_t>(L.y)] = -1;
        L.y = op.outputs[0];
        layer_of[static_cast<size_t>(L.y)] = li;
        break;
      }
      case ir::OpKind::Relu: {
        const int li = layer_of[static_cast<size_t>(op.inputs[0])];
        if (li < 0) unsupported(g, op, "Relu must follow a matmul (or its bias add)");
        LoweredLayer& L = lm.layers[static_cast<size_t>(li)];
        if (L.relu || !single_use(L.y)) unsupported(g, op, "the matmul output is used elsewhere or already activated");
        layer_of[static_cast<size_t>(L.y)] = -1;
        L.relu = true;
        L.y = op.outputs[0];
        layer_of[static_cast<size_t>(L.y)] = li;
        break;
      }
      default:
        unsupported(g, op, "op kind not supported by the lpusim back end yet");
    }
  }
  for (ir::TensorId t : g.outputs()) {
    if (layer_of[static_cast<size_t>(t)] < 0)
      throw InputError(fmt::format("model '{}': graph output '{}' is not produced by a lowered layer ({})", g.name,
                                   g.tensor(t).name, kSupported));
    lm.outputs.push_back(t);
  }
  if (lm.layers.empty()) throw InputError(fmt::format("model '{}': no MatMul/Gemm to compile ({})", g.name, kSupported));
  return lm;
}

}  // namespace lpu::compiler
