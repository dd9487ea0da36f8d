// Row pairs of a stem conv and its MaxPool (see lower_conv.h "Row pairs"): the conv whose input
// the host lays out as im2col rows writes two image rows a stored row, the pool runs on those
// pairs, and one SXM lane move unpairs the pooled rows.
#include <algorithm>
#include <fmt/format.h>

#include "compiler/passes/conv_window.h"
#include "compiler/passes/lower_conv.h"
#include "isa/isa.h"

namespace lpu::compiler {

bool ConvLowering::pool_on_row_pairs(const ir::Op& op, ir::TensorId src, const ir::Shape& xs, const Window& w,
                                     bool relu) {
  // src: the conv layer's f16 output before its Relu (take_producer_relu), read by this pool alone.
  if (!relu || pack_lanes_ == 0) return false;
  const int64_t N = xs.at(0), H = xs.at(1), W = xs.at(2), C = xs.at(3);
  const ir::Shape& ys = g_.tensor(op.outputs[0]).shape;
  const int64_t OH = ys.at(2), OW = ys.at(3), lanes = pack_lanes_;
  if (H % 2 != 0 || OH % 2 != 0 || (OH / 2) * w.sh != H / 2) return false;
  const int64_t Hi = H / 2, Ho = OH / 2, J = (Ho - 1) * w.sh + (w.kh - 1) * w.dh + 1;
  const int li = layer_of_[static_cast<size_t>(src)];
  if (li < 0) return false;
  LoweredLayer& L = lm_.layers[static_cast<size_t>(li)];
  LoweredInput* host = nullptr;
  for (LoweredInput& in : lm_.inputs)
    if (in.alias == L.x && !in.host_map.empty()) host = &in;
  const int64_t K = L.K;
  if (!host || L.y != src || L.k_blocks != 0 || !L.tap_rows.empty() || !L.x_rows.empty() || !L.y_rows.empty() ||
      !L.xsegs.empty() || L.copy || L.residual != ir::kNoTensor || L.N != C || 2 * K > lanes || 2 * C > lanes ||
      host->shape != std::vector<int64_t>{N * H * W, K} || static_cast<size_t>(src) < g_.tensors().size())
    return false;
  // Stored row (n, k, x) holds image rows rowof(k, 0) and rowof(k, 1) of column x (a row outside
  // the image replaced by the nearest edge row: max-neutral, checked per window below).
  auto rowof = [&](int64_t k, int64_t b) { return std::clamp(k - w.pt + b * Hi, int64_t{0}, H - 1); };
  // Every tap of pooled pair (m, b) must read a pixel of its own window.
  for (int64_t m = 0; m < Ho; ++m)
    for (int64_t i = 0; i < w.kh; ++i)
      for (int64_t b = 0; b < 2; ++b) {
        const int64_t top = (m + b * Ho) * w.sh - w.pt, r = rowof(m * w.sh + i * w.dh, b);
        if (r < top || r > top + (w.kh - 1) * w.dh || (r - top) % w.dh != 0) return false;
      }

  // The conv: host rows of both image rows side by side, a block-diagonal weight, both blocks' bias.
  const std::vector<int64_t> old_map = std::move(host->host_map);
  host->shape = {N * J * W, 2 * K};
  host->host_map.clear();
  host->host_map.reserve(static_cast<size_t>(N * J * W * 2 * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < J; ++k)
      for (int64_t x = 0; x < W; ++x)
        for (int64_t b = 0; b < 2; ++b) {
          const auto at = old_map.begin() + ((n * H + rowof(k, b)) * W + x) * K;
          host->host_map.insert(host->host_map.end(), at, at + K);
        }
  if (L.model_macs == 0) L.model_macs = N * H * W * K * C;
  std::vector<float> wide(static_cast<size_t>(4 * K * C), 0.f);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t kk = 0; kk < K; ++kk)
      std::copy_n(L.w.begin() + kk * C, C, wide.begin() + ((b * K + kk) * 2 * C + b * C));
  L.w = std::move(wide);
  if (!L.bias.empty()) L.bias.insert(L.bias.end(), L.bias.begin(), L.bias.end());
  L.K = 2 * K;
  L.N = 2 * C;
  L.y_shape = {N, J, W, 2 * C};
  lm_.extra.at(static_cast<size_t>(src) - g_.tensors().size()).shape = L.y_shape;
  nhwc_[src] = L.y_shape;

  // The pool on pairs: pooled stored row (n, m, ox) holds output rows m and m + Ho; a column tap in
  // the padding reads the window's first column in the image again (padding never wins).
  const int64_t taps = w.kh * w.kw, prow = N * Ho * OW;
  std::vector<std::vector<int64_t>> maps(static_cast<size_t>(taps), std::vector<int64_t>(static_cast<size_t>(prow)));
  for (int64_t n = 0, r = 0; n < N; ++n)
    for (int64_t m = 0; m < Ho; ++m)
      for (int64_t ox = 0; ox < OW; ++ox, ++r) {
        int64_t first = -1;
        for (int64_t j = 0; j < w.kw && first < 0; ++j) {
          const int64_t iw = ox * w.sw - w.pl + j * w.dw;
          if (iw >= 0 && iw < W) first = iw;
        }
        if (first < 0) conv_fail(g_, op, fmt::format("output column {} has no input column in its window", ox));
        for (int64_t t = 0; t < taps; ++t) {
          const int64_t iw = ox * w.sw - w.pl + (t % w.kw) * w.dw;
          const int64_t k = m * w.sh + (t / w.kw) * w.dh;
          maps[static_cast<size_t>(t)][static_cast<size_t>(r)] = (n * J + k) * W + (iw >= 0 && iw < W ? iw : first);
        }
      }
  const ir::TensorId out = op.outputs[0];
  const ir::Shape pshape{N, Ho, OW, 2 * C};
  const ir::TensorId pairs = fresh(op.name + ".pairs", ir::DType::F16, pshape);
  LoweredEltwise E;
  E.name = op.name + ".max";
  E.kind = op.kind;
  E.vxm_op = static_cast<int>(Opcode::Max);
  for (int64_t t = 0; t < taps; ++t) {
    EltOperand o;
    o.act = src;
    o.row_map = std::move(maps[static_cast<size_t>(t)]);
    E.operands.push_back(std::move(o));
  }
  for (int64_t t = 2; t < taps; ++t) E.post.push_back({static_cast<int>(Opcode::Max), 0.f, static_cast<int>(t)});
  E.relu = true;
  // The move keeps the type: a graph output (stored f32) is pooled into f32 pairs.
  E.y_f32 = std::find(g_.outputs().begin(), g_.outputs().end(), out) != g_.outputs().end();
  E.y = pairs;
  E.y_shape = pshape;
  add_eltwise(std::move(E));
  lm_.rearranged[pairs] = out;

  // Unpairing: output row (n, oh, ox) = lanes [C * (oh / Ho), + C) of pooled row (n, oh % Ho, ox).
  LoweredLane mv;
  mv.name = op.name + ".unpair";
  mv.mode = LoweredLane::Mode::Move;
  mv.x = pairs;
  mv.y = out;
  mv.y_shape = {N, OH, OW, C};
  mv.move_width = C;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ox = 0; ox < OW; ++ox) {
        mv.x_rows.push_back((n * Ho + oh % Ho) * OW + ox);
        mv.x_cols.push_back(oh / Ho * C);
      }
  lm_.add_lane(std::move(mv));
  produced_[static_cast<size_t>(out)] = 1;
  return true;
}

}  // namespace lpu::compiler
