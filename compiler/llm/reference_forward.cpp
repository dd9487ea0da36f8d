// Plain Eigen fp32 forward of a whole LLM step (see segments.h). Deliberately written in the
// textbook form, not the segment form: concatenated heads and one o_proj, rotate_half applied to q/k,
// post-LN BERT as LN(x + f(x)), MoE evaluating only the selected experts (softmax over all router
// logits, top-k, renormalize, as HF Mixtral does). Shares only the weight generator (weights.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <Eigen/Dense>

#include "compiler/llm/segments.h"
#include "compiler/llm/weights.h"
#include "isa/chip_config.h"  // lpu::InputError

namespace lpu::llm {

namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Row = Eigen::Matrix<float, 1, Eigen::Dynamic>;

struct Ctx {
  const LlmConfig& c;
  uint64_t seed;
};

Mat weight(const Ctx& x, int64_t layer, Wt t, int64_t expert, int64_t rows, int64_t cols) {
  const std::vector<float> v = weight_block(x.seed, layer, t, expert, cols, 0, rows, 0, cols);
  return Eigen::Map<const Mat>(v.data(), rows, cols);
}
Row vec(const Ctx& x, int64_t layer, Wt t, int64_t n) { return weight(x, layer, t, 0, 1, n); }

Mat norm(const Ctx& x, const Mat& in, int64_t layer, Wt gain, Wt bias) {
  const Row g = vec(x, layer, gain, x.c.hidden);
  Mat out(in.rows(), in.cols());
  for (Eigen::Index r = 0; r < in.rows(); ++r) {
    if (x.c.rms_norm) {
      const float ms = in.row(r).squaredNorm() / static_cast<float>(in.cols());
      out.row(r) = (in.row(r) / std::sqrt(ms + static_cast<float>(x.c.norm_eps))).cwiseProduct(g);
    } else {
      const float mu = in.row(r).mean();
      const Row d = in.row(r).array() - mu;
      const float var = d.squaredNorm() / static_cast<float>(in.cols());
      out.row(r) = (d / std::sqrt(var + static_cast<float>(x.c.norm_eps))).cwiseProduct(g) + vec(x, layer, bias, x.c.hidden);
    }
  }
  return out;
}

float act(const std::string& a, float v) {
  if (a == "relu") return std::max(v, 0.f);
  if (a == "gelu") return 0.5f * v * (1.f + std::erf(v / std::sqrt(2.f)));
  if (a == "gelu_new")
    return 0.5f * v * (1.f + std::tanh(std::sqrt(2.f / static_cast<float>(M_PI)) * (v + 0.044715f * v * v * v)));
  return v / (1.f + std::exp(-v));  // silu
}

Mat rotary(const Mat& q, const std::vector<float>& cos_t, const std::vector<float>& sin_t, int64_t T) {
  const Eigen::Index hd = q.cols(), half = hd / 2;
  Mat out(q.rows(), hd);
  for (Eigen::Index r = 0; r < q.rows(); ++r) {
    const int64_t t = r % T;
    for (Eigen::Index c = 0; c < hd; ++c) {
      const float rot = c < half ? -q(r, c + half) : q(r, c - half);
      out(r, c) = q(r, c) * cos_t[static_cast<size_t>(t * hd + c)] + rot * sin_t[static_cast<size_t>(t * hd + c)];
    }
  }
  return out;
}

Mat attention(const Ctx& x, const Mat& a, int64_t l, const StepShape& s, const KvCache* cache, int64_t position,
              KvCache* new_kv) {
  const LlmConfig& c = x.c;
  const int64_t B = s.batch, T = s.tokens, C = s.context, hd = c.head_dim, group = c.heads / c.kv_heads;
  const bool bias = !c.rope;
  Mat Q = a * weight(x, l, Wt::Q, 0, c.hidden, c.heads * hd);
  Mat K = a * weight(x, l, Wt::K, 0, c.hidden, c.kv_heads * hd);
  Mat V = a * weight(x, l, Wt::V, 0, c.hidden, c.kv_heads * hd);
  if (bias) {
    Q.rowwise() += vec(x, l, Wt::QBias, c.heads * hd);
    K.rowwise() += vec(x, l, Wt::KBias, c.kv_heads * hd);
    V.rowwise() += vec(x, l, Wt::VBias, c.kv_heads * hd);
  }
  std::vector<float> cos_t, sin_t;
  if (c.rope) rope_tables(hd, c.rope_theta, position, T, &cos_t, &sin_t);
  Mat O(B * T, c.heads * hd);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  for (int64_t g = 0; g < c.kv_heads; ++g) {
    Mat Kg = K.middleCols(g * hd, hd), Vg = V.middleCols(g * hd, hd);
    if (c.rope) Kg = rotary(Kg, cos_t, sin_t, T);
    if (new_kv) {
      new_kv->k[static_cast<size_t>(l)][static_cast<size_t>(g)].assign(Kg.data(), Kg.data() + Kg.size());
      new_kv->v[static_cast<size_t>(l)][static_cast<size_t>(g)].assign(Vg.data(), Vg.data() + Vg.size());
    }
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      Mat Qh = Q.middleCols(h * hd, hd);
      if (c.rope) Qh = rotary(Qh, cos_t, sin_t, T);
      for (int64_t b = 0; b < B; ++b) {
        Mat keys(C + T, hd), vals(C + T, hd);
        if (C > 0) {
          keys.topRows(C) = Eigen::Map<const Mat>(cache->k[static_cast<size_t>(l)][static_cast<size_t>(g)].data() + b * C * hd, C, hd);
          vals.topRows(C) = Eigen::Map<const Mat>(cache->v[static_cast<size_t>(l)][static_cast<size_t>(g)].data() + b * C * hd, C, hd);
        }
        keys.bottomRows(T) = Kg.middleRows(b * T, T);
        vals.bottomRows(T) = Vg.middleRows(b * T, T);
        for (int64_t t = 0; t < T; ++t) {
          const int64_t visible = c.causal ? C + t + 1 : C + T;
          Row sc = (Qh.row(b * T + t) * keys.topRows(visible).transpose()) * scale;
          const float m = sc.maxCoeff();
          Row p = (sc.array() - m).exp();
          p /= p.sum();
          O.block(b * T + t, h * hd, 1, hd) = p * vals.topRows(visible);
        }
      }
    }
  }
  Mat out = O * weight(x, l, Wt::O, 0, c.heads * hd, c.hidden);
  if (bias) out.rowwise() += vec(x, l, Wt::OBias, c.hidden);
  return out;
}

Mat expert_ffn(const Ctx& x, const Mat& f, int64_t l, int64_t e) {
  const LlmConfig& c = x.c;
  Mat up = f * weight(x, l, Wt::Up, e, c.hidden, c.ffn);
  Mat h(up.rows(), up.cols());
  if (c.gated_ffn) {
    const Mat gt = f * weight(x, l, Wt::Gate, e, c.hidden, c.ffn);
    for (Eigen::Index k = 0; k < h.size(); ++k) h.data()[k] = act("silu", gt.data()[k]) * up.data()[k];
  } else {
    up.rowwise() += weight(x, l, Wt::UpBias, e, 1, c.ffn).row(0);
    for (Eigen::Index k = 0; k < h.size(); ++k) h.data()[k] = act(c.activation, up.data()[k]);
  }
  return h * weight(x, l, Wt::Down, e, c.ffn, c.hidden);
}

Mat ffn(const Ctx& x, const Mat& f, int64_t l, Routing* routing) {
  const LlmConfig& c = x.c;
  Mat out;
  if (c.experts == 0) {
    out = expert_ffn(x, f, l, 0);
  } else {
    const Mat logits = f * weight(x, l, Wt::Router, 0, c.hidden, c.experts);
    out = Mat::Zero(f.rows(), c.hidden);
    std::vector<Mat> ys(static_cast<size_t>(c.experts));
    for (Eigen::Index r = 0; r < f.rows(); ++r) {
      const Row lr = logits.row(r);
      const Row p = (lr.array() - lr.maxCoeff()).exp() / (lr.array() - lr.maxCoeff()).exp().sum();
      std::vector<int64_t> idx(static_cast<size_t>(c.experts));
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return lr(a) > lr(b); });
      float z = 0;
      for (int64_t i = 0; i < c.experts_per_token; ++i) z += p(idx[static_cast<size_t>(i)]);
      for (int64_t i = 0; i < c.experts_per_token; ++i) {
        const int64_t e = idx[static_cast<size_t>(i)];
        if (routing) routing->push_back(e);
        out.row(r) += (p(e) / z) * expert_ffn(x, f.row(r), l, e);
      }
    }
  }
  if (!c.gated_ffn) out.rowwise() += vec(x, l, Wt::DownBias, c.hidden);
  return out;
}

}  // namespace

KvCache random_kv_cache(const LlmConfig& cfg, const StepShape& shape, uint64_t seed) {
  KvCache kv;
  const int64_t n = shape.batch * shape.context * cfg.head_dim;
  kv.k.assign(static_cast<size_t>(cfg.layers), std::vector<std::vector<float>>(static_cast<size_t>(cfg.kv_heads)));
  kv.v = kv.k;
  for (int64_t l = 0; l < cfg.layers; ++l)
    for (int64_t g = 0; g < cfg.kv_heads; ++g) {
      // Bias tensors have std 0.02 * sqrt(3) * U: rescale to U(-1, 1); streams keyed by (layer, head).
      auto& k = kv.k[static_cast<size_t>(l)][static_cast<size_t>(g)];
      auto& v = kv.v[static_cast<size_t>(l)][static_cast<size_t>(g)];
      k = weight_block(seed, l, Wt::KBias, 1000 + g, n, 0, 1, 0, n);
      v = weight_block(seed, l, Wt::VBias, 1000 + g, n, 0, 1, 0, n);
      for (auto& e : k) e = static_cast<float>(e / (0.02 * std::sqrt(3.0)));
      for (auto& e : v) e = static_cast<float>(e / (0.02 * std::sqrt(3.0)));
    }
  return kv;
}

std::vector<float> reference_forward(const LlmConfig& cfg, const StepShape& shape, uint64_t seed,
                                     const std::vector<float>& x_embedded, const KvCache* cache, int64_t position,
                                     KvCache* new_kv, std::vector<Routing>* routing,
                                     std::vector<std::vector<float>>* segment_inputs) {
  const int64_t N = shape.batch * shape.tokens;
  if (static_cast<int64_t>(x_embedded.size()) != N * cfg.hidden)
    throw InputError("reference_forward: x_embedded must hold batch*tokens*hidden = " + std::to_string(N * cfg.hidden) +
                     " floats; got " + std::to_string(x_embedded.size()));
  if (shape.context > 0) {
    const size_t want = static_cast<size_t>(shape.batch * shape.context * cfg.head_dim);
    bool ok = cache && cache->k.size() == static_cast<size_t>(cfg.layers) && cache->v.size() == cache->k.size();
    for (size_t l = 0; ok && l < cache->k.size(); ++l) {
      ok = cache->k[l].size() == static_cast<size_t>(cfg.kv_heads) && cache->v[l].size() == cache->k[l].size();
      for (size_t g = 0; ok && g < cache->k[l].size(); ++g) ok = cache->k[l][g].size() == want && cache->v[l][g].size() == want;
    }
    if (!ok) throw InputError("reference_forward: context > 0 needs a KV cache of layers x kv_heads x [batch*context, head_dim]");
  }
  if (new_kv) {
    new_kv->k.assign(static_cast<size_t>(cfg.layers), std::vector<std::vector<float>>(static_cast<size_t>(cfg.kv_heads)));
    new_kv->v = new_kv->k;
  }
  if (routing) routing->assign(static_cast<size_t>(cfg.layers), Routing());
  const Ctx x{cfg, seed};
  Mat X = Eigen::Map<const Mat>(x_embedded.data(), N, cfg.hidden);
  if (segment_inputs) segment_inputs->assign(1, x_embedded);
  const auto record = [&](const Mat& m) {
    if (segment_inputs) segment_inputs->emplace_back(m.data(), m.data() + m.size());
  };
  for (int64_t l = 0; l < cfg.layers; ++l) {
    Routing* rl = routing ? &(*routing)[static_cast<size_t>(l)] : nullptr;
    if (cfg.family == "bert") {  // post-LN
      const Mat s1 = X + attention(x, X, l, shape, cache, position, new_kv);
      record(s1);
      X = norm(x, s1, l, Wt::Norm1G, Wt::Norm1B);
      const Mat s2 = X + ffn(x, X, l, rl);
      record(s2);
      X = norm(x, s2, l, Wt::Norm2G, Wt::Norm2B);
    } else {  // pre-LN
      X += attention(x, norm(x, X, l, Wt::Norm1G, Wt::Norm1B), l, shape, cache, position, new_kv);
      record(X);
      X += ffn(x, norm(x, X, l, Wt::Norm2G, Wt::Norm2B), l, rl);
      record(X);
    }
  }
  const int64_t L = cfg.layers;
  Mat H;
  if (cfg.family == "bert") {
    H = X * weight(x, L, Wt::MlmDense, 0, cfg.hidden, cfg.hidden);
    H.rowwise() += vec(x, L, Wt::MlmDenseBias, cfg.hidden);
    for (Eigen::Index k = 0; k < H.size(); ++k) H.data()[k] = act(cfg.activation, H.data()[k]);
    H = norm(x, H, L, Wt::MlmNormG, Wt::MlmNormB);
  } else {
    H = norm(x, X, L, Wt::FinalG, Wt::FinalB);
  }
  Mat logits = H * weight(x, L, Wt::LmHead, 0, cfg.hidden, cfg.vocab);
  if (cfg.family == "bert") logits.rowwise() += vec(x, L, Wt::MlmBias, cfg.vocab);
  return std::vector<float>(logits.data(), logits.data() + logits.size());
}

}  // namespace lpu::llm
