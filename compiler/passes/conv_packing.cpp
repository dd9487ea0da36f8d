// Packed taps and pixel packing of the conv lowering (see lower_conv.h "Packed taps", "Pixel
// packing"): the 1x1 conv before a conv writes its input column-packed, and with S > 1 pixels a row
// the 1x1 conv after it is one layer per pixel position.
#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <stdexcept>

#include "compiler/passes/conv_window.h"
#include "compiler/passes/lower_conv.h"

namespace lpu::compiler {

void ConvLowering::lower_unpacking_conv(const ir::Op& op, ir::TensorId x) {
  const ir::Shape& xs = g_.tensor(x).shape;  // graph [N, C, H, W]
  const int64_t S = lm_.pixel_packed.at(x).stride, N = xs.at(0), C = xs.at(1), H = xs.at(2), W = xs.at(3),
                J = (W + S - 1) / S;
  const ir::Tensor& wt = g_.tensor(op.inputs[1]);
  const int64_t M = wt.shape.at(0);
  // pixel_pack_ok chose this form for the conv reading x alone.
  if (!plain_1x1_conv(g_, op) || wt.shape[1] != C)
    throw std::logic_error(op.name + ": reads a pixel-packed tensor but is not the 1x1 conv it was packed for");
  const std::vector<float> wv = wt.const_floats();
  const std::vector<float> bias = conv_bias(g_, op, M);
  // Layer s: the pixels w = s (mod S), one tap of S*C channels (x's whole stored row), weight rows
  // zero outside block s; it writes those pixels' rows of y.
  for (int64_t s = 0; s < S && s < W; ++s) {
    LoweredLayer L;
    L.name = conv_part_name(op.name, ConvPart::Px, static_cast<size_t>(s));
    L.x = x;
    L.K = S * C;
    L.N = M;
    L.w.assign(static_cast<size_t>(L.K * L.N), 0.f);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t m = 0; m < M; ++m) L.w[static_cast<size_t>((s * C + c) * M + m)] = wv[static_cast<size_t>(m * C + c)];
    L.bias = bias;
    L.k_blocks = 1;
    L.tap_rows.assign(1, {});
    for (int64_t nh = 0; nh < N * H; ++nh)
      for (int64_t w = s; w < W; w += S) {
        L.tap_rows[0].push_back(nh * J + w / S);
        L.y_rows.push_back(nh * W + w);
      }
    L.model_macs = static_cast<int64_t>(L.y_rows.size()) * C * M;
    L.y = op.outputs[0];
    L.y_shape = {N, H, W, M};
    lm_.steps.push_back({true, lm_.layers.size()});
    lm_.layers.push_back(std::move(L));
  }
  // Several layers write y: none of them takes a following Relu or bias Add (elementwise steps).
  layer_of_[static_cast<size_t>(op.outputs[0])] = -1;
  produced_[static_cast<size_t>(op.outputs[0])] = 1;
  set_layout(op.outputs[0], {N, H, W, M});
}

void ConvLowering::add_packed_conv(const ir::Op& op, LoweredLayer L, const PackChoice& pc, const Window& w,
                                   int64_t N, int64_t C, int64_t M, int64_t OH, int64_t OW) {
  const int64_t kh = w.kh, kw = w.kw, sw = w.sw;
  // K row ((i * D + d) * B + b) * C + c, column s * M + m = tap (i, t) of output pixel s with
  // t = d * stride + b - s * sw (x's block b of the tap's d-th stored row is column t of pixel s's
  // window; group 1, dilation 1); the bias repeated per output pixel.
  const int64_t S = pc.S, B = pc.B, D = pc.D, J = (OW + S - 1) / S;
  L.K = kh * D * B * C;
  L.N = S * M;
  const std::vector<float> wv = g_.tensor(op.inputs[1]).const_floats();
  L.w.assign(static_cast<size_t>(L.K * L.N), 0.f);
  for (int64_t s = 0; s < S; ++s)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t d = 0; d < D; ++d)
        for (int64_t b = 0; b < B; ++b) {
          const int64_t t = d * pc.stride + b - s * sw;
          if (t < 0 || t >= kw) continue;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t m = 0; m < M; ++m)
              L.w[static_cast<size_t>((((i * D + d) * B + b) * C + c) * L.N + s * M + m)] =
                  wv[static_cast<size_t>(((m * C + c) * kh + i) * kw + t)];
        }
  const std::vector<float> bv = conv_bias(g_, op, M);
  for (int64_t s = 0; s < S && !bv.empty(); ++s) L.bias.insert(L.bias.end(), bv.begin(), bv.end());
  L.model_macs = N * OH * OW * kh * kw * C * M;
  L.y = op.outputs[0];
  if (S == 1) {
    L.y_shape = {N, OH, OW, M};
  } else {
    L.y_shape = {N, OH, J, S * M};
    packed_outputs_.insert(L.y);
    lm_.pixel_packed[L.y] = {S, S, 0, 1};
  }
  add_conv_layer(std::move(L));
}

namespace {

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Stored rows per image row of the packed input x and of the conv's output, for layout c.
int64_t packed_x_cols(const PackChoice& c, const PackGeom& pg) {
  return c.S == 1 && c.stride == 1 ? pg.W : c.B == c.stride ? cdiv(pg.W + pg.win.pl, c.stride) : cdiv(pg.OW, c.S);
}
int64_t packed_y_cols(const PackChoice& c, const PackGeom& pg) { return c.S == 1 ? pg.OW : cdiv(pg.OW, c.S); }

}  // namespace

int ConvLowering::packable_producer(const ir::Op& op, ir::TensorId x, const PackGeom& pg) const {
  const int li = layer_of_[static_cast<size_t>(x)];
  if (li < 0 || alias_[static_cast<size_t>(op.inputs[0])] != op.inputs[0]) return -1;
  const LoweredLayer& P = lm_.layers[static_cast<size_t>(li)];
  if (P.y != x || P.k_blocks != 0 || !P.tap_rows.empty() || !P.x_rows.empty() || !P.y_rows.empty() ||
      !P.xsegs.empty() || P.b != ir::kNoTensor || P.copy || P.N != pg.C || P.w.size() != static_cast<size_t>(P.K * P.N) ||
      P.y_shape != ir::Shape{pg.N, pg.H, pg.W, pg.C})
    return -1;
  if (!read_once(x)) return -1;
  int writers = 0;
  for (const LoweredLayer& o : lm_.layers) writers += o.y == x ? 1 : 0;
  for (const LoweredEltwise& e : lm_.eltwise) writers += e.y == x ? 1 : 0;
  return writers == 1 ? li : -1;
}

PackChoice ConvLowering::choose_pack(const ir::Op& op, const LoweredLayer& P, const PackGeom& pg) const {
  const int64_t N = pg.N, H = pg.H, W = pg.W, C = pg.C, OH = pg.OH, OW = pg.OW;
  const int64_t kh = pg.win.kh, kw = pg.win.kw, sw = pg.win.sw, dw = pg.win.dw;
  const int64_t lanes = pack_lanes_, Cu = P.K, M = g_.tensor(op.inputs[1]).shape[0], rows_y = N * OH * OW;
  const int64_t group = op.attrs.count("group") ? op.attr_int("group") : 1;
  const bool packable_out = pixel_pack_ok(op);
  std::vector<PackChoice> cands = {{1, 1, kw, 1}};  // packed taps
  if (group == 1 && dw == 1) {
    for (int64_t s = 2; s <= lanes / C - kw + 1 && sw == 1 && packable_out; ++s) cands.push_back({s, s, kw + s - 1, 1});
    if (disjoint_)
      for (int64_t sp = 2; sp <= lanes / C; ++sp)
        for (int64_t s = 1; s * M <= lanes * 2 && s <= lanes; ++s) {
          if ((s * sw) % sp != 0 || (s > 1 && !packable_out)) continue;
          cands.push_back({s, sp, sp, cdiv((s - 1) * sw + kw, sp)});
        }
  }
  const auto cost = [&](const PackChoice& c) {
    const int64_t rows_p = N * H * packed_x_cols(c, pg), rows_c = N * OH * packed_y_cols(c, pg);
    return rows_c * kh * c.D * cdiv(c.B * C, lanes) * cdiv(c.S * M, lanes) +
           rows_p * c.B * cdiv(Cu, lanes) * cdiv(c.B * C, lanes);
  };
  PackChoice pick{};
  int64_t best = rows_y * kh * kw * cdiv(C, lanes) * cdiv(M, lanes) + N * H * W * cdiv(Cu, lanes) * cdiv(C, lanes);
  for (const PackChoice& c : cands)
    if (cost(c) < best) {
      best = cost(c);
      pick = c;
    }
  return pick;
}

std::vector<LoweredLayer> ConvLowering::producer_parts(const LoweredLayer& P, ir::TensorId x, const PackChoice& pick,
                                                       const PackGeom& pg) const {
  const int64_t N = pg.N, H = pg.H, W = pg.W, C = pg.C, pl = pg.win.pl, dw = pg.win.dw;
  const int64_t Cu = P.K, S = pick.S, B = pick.B, CW = B * C, Jx = packed_x_cols(pick, pg), step = pick.stride;
  const bool taps1 = S == 1 && step == 1;  // packed taps: one pixel's kw column taps a row
  // x's stored row (n, h, j), block b: x's column j * step - pl + b * dw (dw is 1 unless taps1).
  const auto col = [&](int64_t j, int64_t b) { return j * step - pl + b * dw; };
  // P's packed weight: block b reads input rows into output block b.
  std::vector<float> pw(static_cast<size_t>(B * Cu * CW), 0.f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t cu = 0; cu < Cu; ++cu)
      std::copy(P.w.begin() + cu * C, P.w.begin() + (cu + 1) * C, pw.begin() + (b * Cu + cu) * CW + b * C);
  // One layer per set of blocks inside the image; its bias is zero elsewhere, so those blocks are
  // relu?(0 + 0) = 0, the conv's zero padding.
  std::map<std::vector<char>, std::vector<int64_t>> cls;  // valid blocks -> stored rows of x
  for (int64_t n = 0, r = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t j = 0; j < Jx; ++j, ++r) {
        std::vector<char> valid(static_cast<size_t>(B));
        for (int64_t b = 0; b < B; ++b) valid[static_cast<size_t>(b)] = P.bias.empty() || (col(j, b) >= 0 && col(j, b) < W);
        cls[valid].push_back(r);
      }
  auto main_it = cls.begin();
  for (auto it = cls.begin(); it != cls.end(); ++it)
    if (it->second.size() > main_it->second.size()) main_it = it;
  std::vector<LoweredLayer> out;
  for (auto it = main_it;;) {
    const std::vector<char>& valid = it->first;
    const std::vector<int64_t>& rws = it->second;
    LoweredLayer Q;
    Q.name = conv_part_name(P.name, ConvPart::Pack, out.size());
    Q.x = P.x;
    Q.y = x;
    // Only the blocks inside the image are taps (a block outside reads the zero row for every row
    // of this part: no weight rows to install, no MXM rows).
    std::vector<int64_t> taps;
    for (int64_t b = 0; b < B; ++b)
      if (valid[static_cast<size_t>(b)]) taps.push_back(b);
    const auto nt = static_cast<int64_t>(taps.size());
    Q.K = nt * Cu;
    Q.N = CW;
    for (int64_t b : taps) Q.w.insert(Q.w.end(), pw.begin() + b * Cu * CW, pw.begin() + (b + 1) * Cu * CW);
    if (!P.bias.empty()) {
      Q.bias.assign(static_cast<size_t>(CW), 0.f);
      for (int64_t b : taps) std::copy(P.bias.begin(), P.bias.end(), Q.bias.begin() + b * C);
    }
    Q.relu = P.relu;
    Q.y_f32 = P.y_f32;
    Q.y_shape = {N, H, Jx, CW};
    Q.k_blocks = nt;
    Q.tap_rows.assign(static_cast<size_t>(nt), std::vector<int64_t>(rws.size()));
    int64_t owned = 0;  // pixels whose own row this is (one, or S a row): P's MACs counted once each
    for (size_t m = 0; m < rws.size(); ++m) {
      const int64_t r = rws[m], j = r % Jx, nh = r / Jx;
      for (int64_t k = 0; k < nt; ++k) {
        const int64_t c = col(j, taps[static_cast<size_t>(k)]);
        Q.tap_rows[static_cast<size_t>(k)][m] = c >= 0 && c < W ? nh * W + c : -1;
      }
      if (taps1) {
        owned += 1;
      } else if (B == step) {  // disjoint rows: each pixel in one block
        for (int64_t bb = 0; bb < B; ++bb) owned += col(j, bb) >= 0 && col(j, bb) < W ? 1 : 0;
      } else {  // overlapping rows: the S pixels from block pl on are this row's own
        owned += std::min(S, W - j * S);
      }
    }
    Q.model_macs = owned * Cu * C;
    if (cls.size() > 1) Q.y_rows = rws;
    out.push_back(std::move(Q));
    if (++it == cls.end()) it = cls.begin();
    if (it == main_it) break;
  }
  return out;
}

void ConvLowering::replace_producer(int li, std::vector<LoweredLayer> parts) {
  // P's step writes the main part; the edge parts follow it.
  size_t at = 0;
  while (!(is_layer(lm_.steps[at]) && lm_.steps[at].index == static_cast<size_t>(li))) ++at;
  lm_.layers[static_cast<size_t>(li)] = std::move(parts[0]);
  for (size_t k = 1; k < parts.size(); ++k) {
    lm_.steps.insert(lm_.steps.begin() + static_cast<std::ptrdiff_t>(at + k), LoweredStep{true, lm_.layers.size()});
    lm_.layers.push_back(std::move(parts[k]));
  }
}

void ConvLowering::set_packed_taps(const PackChoice& pick, const PackGeom& pg, LoweredLayer* L) const {
  // kh x D taps of B*C channels; tap (i, d) of stored output row (n, oh, j) is x's stored row (n,
  // oh*sh - pt + i*dh, base + d), base = ow*sw for packed taps (j = ow), j*S*sw / stride else (-1
  // outside the image or past x's rows). Packed taps keep the weight rows (i*kw + j)*C + c of the
  // unpacked conv; the other layouts' weight is built by add_packed_conv.
  const int64_t kh = pg.win.kh, sh = pg.win.sh, sw = pg.win.sw, dh = pg.win.dh, pt = pg.win.pt;
  const int64_t H = pg.H, Jx = packed_x_cols(pick, pg), Jy = packed_y_cols(pick, pg);
  const bool taps1 = pick.S == 1 && pick.stride == 1;
  L->k_blocks = kh * pick.D;
  L->tap_rows.assign(static_cast<size_t>(kh * pick.D), std::vector<int64_t>(static_cast<size_t>(pg.N * pg.OH * Jy)));
  for (int64_t n = 0, r = 0; n < pg.N; ++n)
    for (int64_t oh = 0; oh < pg.OH; ++oh)
      for (int64_t j = 0; j < Jy; ++j, ++r)
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t d = 0; d < pick.D; ++d) {
            const int64_t ih = oh * sh - pt + i * dh, k = (taps1 ? j * sw : j * pick.S * sw / pick.stride) + d;
            L->tap_rows[static_cast<size_t>(i * pick.D + d)][static_cast<size_t>(r)] =
                ih >= 0 && ih < H && k < Jx ? (n * H + ih) * Jx + k : -1;
          }
}

PackChoice ConvLowering::pack_taps(const ir::Op& op, ir::TensorId x, int64_t N, int64_t H, int64_t W, int64_t C,
                                   const Window& win, int64_t OH, int64_t OW, LoweredLayer* L) {
  const PackGeom pg{N, H, W, C, OH, OW, win};
  if (pack_lanes_ == 0 || win.kw < 1 || (OW - 1) * win.sw >= W) return {};
  // The producer P: a plain dense layer (1x1 stride-1 conv: its rows are x's pixels) that alone
  // writes x, which only this conv reads (x is no graph output).
  const int li = packable_producer(op, x, pg);
  if (li < 0) return {};
  // The candidate layouts (lower_conv.h PackChoice), costed in MXM vectors (rows x k-tiles x column
  // tiles) of P and the conv; the fewest wins, unpacked included. S > 1 output pixels a row need
  // the output's only reader to be a 1x1 conv (pixel_pack_ok).
  const PackChoice pick = choose_pack(op, lm_.layers[static_cast<size_t>(li)], pg);
  if (pick.S == 0) return pick;
  replace_producer(li, producer_parts(lm_.layers[static_cast<size_t>(li)], x, pick, pg));
  const bool taps1 = pick.S == 1 && pick.stride == 1;
  nhwc_[x] = {N, H, packed_x_cols(pick, pg), pick.B * C};
  lm_.pixel_packed[x] = {pick.stride, pick.B, win.pl, taps1 ? win.dw : 1};
  set_packed_taps(pick, pg, L);
  return pick;
}

bool ConvLowering::pixel_pack_ok(const ir::Op& op) const {
  const std::vector<std::vector<int>> readers = g_.consumers();
  const auto only_reader = [&](ir::TensorId t) -> const ir::Op* {
    const std::vector<int>& cs = readers[static_cast<size_t>(t)];
    if (cs.size() != 1 || std::find(g_.outputs().begin(), g_.outputs().end(), t) != g_.outputs().end()) return nullptr;
    return &g_.ops()[static_cast<size_t>(cs[0])];
  };
  const ir::Op* q = only_reader(op.outputs[0]);
  if (q && q->kind == ir::OpKind::Relu) q = only_reader(q->outputs[0]);
  return q && plain_1x1_conv(g_, *q);
}

std::string conv_part_name(const std::string& op, ConvPart kind, size_t n) {
  return n == 0 ? op : fmt::format("{}.{}{}", op, kind == ConvPart::Pack ? "pack" : "px", n);
}

std::string conv_part_op(const std::string& layer_name) {
  for (const char* suffix : {".pack", ".px"}) {
    const std::string sfx = suffix;
    const size_t dot = layer_name.rfind(sfx);
    if (dot != std::string::npos && dot + sfx.size() < layer_name.size() &&
        layer_name.find_first_not_of("0123456789", dot + sfx.size()) == std::string::npos)
      return layer_name.substr(0, dot);
  }
  return layer_name;
}

}  // namespace lpu::compiler
