// columns_repackable / repack_columns (column_repack.h).
#include "compiler/passes/column_repack.h"

#include <numeric>

namespace lpu::compiler {

bool columns_repackable(const ir::Graph& g, const LoweredModel& lm, const LoweredLayer& P) {
  const int64_t N = P.N;
  return P.b == ir::kNoTensor && P.w.size() == static_cast<size_t>(P.K * N) && P.y_rows.empty() && !P.copy &&
         P.residual == ir::kNoTensor && P.y2 == ir::kNoTensor && (P.y_shape.empty() || P.y_shape.back() == N) &&
         !lm.tensor(g, P.y).shape.empty() && lm.tensor(g, P.y).shape.back() == N;
}

void repack_columns(const ir::Graph& g, LoweredModel& lm, LoweredLayer& P, const std::vector<int64_t>& newcol,
                    int64_t N2, const std::vector<size_t>& moves) {
  const int64_t N = P.N;
  const ir::TensorId Y = P.y;
  std::vector<float> w2(static_cast<size_t>(P.K * N2), 0.f);
  for (int64_t k = 0; k < P.K; ++k)
    for (int64_t c = 0; c < N; ++c)
      w2[static_cast<size_t>(k * N2 + newcol[static_cast<size_t>(c)])] = P.w[static_cast<size_t>(k * N + c)];
  P.w = std::move(w2);
  if (!P.bias.empty()) {
    std::vector<float> b2(static_cast<size_t>(N2), 0.f);
    for (int64_t c = 0; c < N; ++c) b2[static_cast<size_t>(newcol[static_cast<size_t>(c)])] = P.bias[static_cast<size_t>(c)];
    P.bias = std::move(b2);
  }
  const int64_t rows = ir::num_elements(lm.tensor(g, Y).shape) / N;
  if (N2 != N) {
    P.N = N2;
    P.y_shape = {rows, N2};
    if (static_cast<size_t>(Y) >= g.tensors().size()) lm.extra.at(static_cast<size_t>(Y) - g.tensors().size()).shape = P.y_shape;
  }
  if (static_cast<size_t>(Y) < g.tensors().size()) {
    std::vector<int64_t>& map = lm.layouts[Y];  // graph element i -> chip element map[i]
    if (map.empty()) {
      map.resize(static_cast<size_t>(rows * N));
      std::iota(map.begin(), map.end(), int64_t{0});
    }
    for (int64_t& e : map) e = (e / N) * N2 + newcol[static_cast<size_t>(e % N)];
  }
  for (size_t li : moves)
    for (int64_t& c : lm.lanes[li].x_cols) c = newcol[static_cast<size_t>(c)];
}

}  // namespace lpu::compiler
