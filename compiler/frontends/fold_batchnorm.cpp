// Folds inference BatchNormalization into the preceding Conv (see fold_batchnorm.h).
#include "compiler/frontends/fold_batchnorm.h"

#include <cmath>

#include "compiler/reference/interpreter.h"

namespace lpu::frontend {

int fold_batchnorm_into_conv(ir::Graph& g) {
  int folded = 0;
  const auto cons = g.consumers();
  std::vector<std::pair<int, int>> pairs;  // (conv op, bn op)
  for (size_t i = 0; i < g.ops().size(); ++i) {
    const ir::Op& bn = g.ops()[i];
    if (bn.kind != ir::OpKind::BatchNormalization) continue;
    const ir::Tensor& x = g.tensor(bn.inputs[0]);
    if (x.producer < 0) continue;
    const ir::Op& conv = g.ops()[static_cast<size_t>(x.producer)];
    if (conv.kind != ir::OpKind::Conv || cons[bn.inputs[0]].size() != 1) continue;
    bool is_graph_output = false;
    for (ir::TensorId t : g.outputs()) is_graph_output |= t == bn.inputs[0];
    if (is_graph_output) continue;
    bool consts = g.tensor(conv.inputs[1]).is_const;
    if (conv.inputs.size() > 2 && conv.inputs[2] != ir::kNoTensor) consts &= g.tensor(conv.inputs[2]).is_const;
    for (int k = 1; k < 5; ++k) consts &= g.tensor(bn.inputs[k]).is_const;
    if (consts) pairs.emplace_back(x.producer, static_cast<int>(i));
  }
  for (auto [ci, bi] : pairs) {
    const ir::Op bn = g.ops()[static_cast<size_t>(bi)];
    const ir::Op conv = g.ops()[static_cast<size_t>(ci)];
    const ir::Tensor wt = g.tensor(conv.inputs[1]);  // a copy: adding constants grows the table
    auto w = ref::Value::from_constant(wt);
    const int64_t M = wt.shape[0], per = wt.elements() / M;
    std::vector<float> bias(static_cast<size_t>(M), 0.f);
    if (conv.inputs.size() > 2 && conv.inputs[2] != ir::kNoTensor) bias = g.tensor(conv.inputs[2]).const_floats();
    const auto scale = g.tensor(bn.inputs[1]).const_floats(), beta = g.tensor(bn.inputs[2]).const_floats();
    const auto mean = g.tensor(bn.inputs[3]).const_floats(), var = g.tensor(bn.inputs[4]).const_floats();
    const float eps = bn.attr_float("epsilon");
    std::vector<float> nb(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m) {
      const float s = scale[m] / std::sqrt(var[m] + eps);
      for (int64_t e = 0; e < per; ++e) w.f[m * per + e] *= s;
      nb[m] = (bias[m] - mean[m]) * s + beta[m];
    }
    const ir::DType bdt = wt.dtype;
    const auto wid = g.add_constant(g.unique_name(wt.name + "_bnfolded"), wt.dtype, wt.shape, w.to_bytes());
    const auto bid = g.add_constant(g.unique_name(conv.name + "_bias_bnfolded"), bdt, {M},
                                    ref::Value::floats({M}, nb, bdt).to_bytes());
    ir::Op& c = g.mutable_op(ci);
    c.inputs.resize(3);
    c.inputs[1] = wid;
    c.inputs[2] = bid;
    g.replace_uses(bn.outputs[0], conv.outputs[0]);
    ++folded;
  }
  if (folded) g.remove_dead();
  return folded;
}

}  // namespace lpu::frontend
