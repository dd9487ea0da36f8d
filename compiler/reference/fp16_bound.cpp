// fp16 error bound of a dense-layer chain (see fp16_bound.h), evaluated in double.
#include "compiler/reference/fp16_bound.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "isa/chip_config.h"

namespace lpu::compiler {

Fp16Bound fp16_dense_bound(const LoweredModel& lm, const std::vector<float>& input, int64_t rows) {
  if (!lm.eltwise.empty() || !lm.lanes.empty() || lm.layers.empty() || lm.inputs.size() != 1 || lm.outputs.size() != 1)
    throw InputError(fmt::format("fp16 bound: only models lowered to a chain of dense layers with one input and one "
                                 "output have a documented bound (this one has {} dense layers, {} elementwise "
                                 "steps, {} inputs, {} outputs)", lm.layers.size(), lm.eltwise.size(),
                                 lm.inputs.size(), lm.outputs.size()));
  // A conv lowered as one plain matmul (kernel = the whole input) still reads the host's NHWC copy
  // of the input and stores NHWC: its rows are not the graph's rows.
  if (!lm.inputs[0].host_map.empty() || !lm.nhwc_outputs.empty())
    throw InputError("fp16 bound: the input or output is in the conv layout [N, H, W, C], not a chain of dense "
                     "layers over graph rows");
  if (rows <= 0 || static_cast<int64_t>(input.size()) != rows * lm.layers.front().K)
    throw InputError(fmt::format("fp16 bound: input has {} values, expected {} rows x {}", input.size(), rows,
                                 lm.layers.front().K));
  std::vector<double> a(input.begin(), input.end()), d(a.size(), 0.0), f(a.size(), 0.0);
  ir::TensorId prev = lm.inputs[0].alias;
  for (const LoweredLayer& L : lm.layers) {
    if (L.x != prev || L.residual != ir::kNoTensor)
      throw InputError(fmt::format("fp16 bound: layer '{}' {}", L.name,
                                   L.x != prev ? "does not read the previous layer's output (not a chain)"
                                               : "adds a residual (a graph with a skip connection, not a chain)"));
    // Row maps, column segments, activation weights (views lowered as matmuls) and conv taps change
    // which rows and columns a product reads: such a layer is not a plain dense layer of `rows` rows.
    if (!L.x_rows.empty() || !L.y_rows.empty() || !L.xsegs.empty() || L.b != ir::kNoTensor || L.k_blocks > 0)
      throw InputError(fmt::format("fp16 bound: layer '{}' is a view or conv lowered as a matmul, not a plain dense "
                                   "layer", L.name));
    std::vector<double> na(static_cast<size_t>(rows * L.N)), nd(na.size()), nf(na.size());
    const bool last = &L == &lm.layers.back();
    for (int64_t m = 0; m < rows; ++m)
      for (int64_t j = 0; j < L.N; ++j) {
        double s = L.bias.empty() ? 0.0 : L.bias[static_cast<size_t>(j)], mag = std::fabs(s), prop = 0, fprop = 0;
        for (int64_t k = 0; k < L.K; ++k) {
          const double w = L.w[static_cast<size_t>(k * L.N + j)];
          const double t = a[static_cast<size_t>(m * L.K + k)] * w;
          s += t;
          mag += std::fabs(t);
          prop += d[static_cast<size_t>(m * L.K + k)] * std::fabs(w);
          fprop += f[static_cast<size_t>(m * L.K + k)] * std::fabs(w);
        }
        const double y = L.relu ? std::max(s, 0.0) : s;
        const size_t o = static_cast<size_t>(m * L.N + j);
        na[o] = y;
        nd[o] = static_cast<double>(L.K) * std::ldexp(1.0, -11) * mag + prop;
        nf[o] = std::ldexp(2.0, -11) * mag + static_cast<double>(L.K) * std::ldexp(1.0, -24) * mag +
                (last ? 0.0 : std::ldexp(1.0, -11) * std::fabs(y)) + fprop;
      }
    a.swap(na);
    d.swap(nd);
    f.swap(nf);
    prev = L.y;
  }
  if (prev != lm.outputs[0])
    throw InputError("fp16 bound: the last dense layer's output is not the graph output (not a chain)");
  Fp16Bound res;
  res.exact.swap(a);
  res.documented.swap(d);
  res.first_order.swap(f);
  return res;
}

}  // namespace lpu::compiler
