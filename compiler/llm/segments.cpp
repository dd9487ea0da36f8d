// IR graphs of LLM segments (see segments.h for the contract and docs/llm.md for the design).
#include "compiler/llm/segments.h"

#include <cmath>
#include <limits>
#include <regex>
#include <string>
#include <utility>

#include "compiler/ir/shape_infer.h"
#include "compiler/llm/weights.h"
#include "isa/chip_config.h"  // lpu::InputError

namespace lpu::llm {

using ir::OpKind;
using ir::Shape;
using ir::TensorId;

const char* segment_kind_name(SegmentKind k) {
  return k == SegmentKind::Attention ? "attention" : k == SegmentKind::Ffn ? "ffn" : "lm_head";
}

namespace {


// Graph builder: ops get generated unique names, outputs get shapes from ir::infer_output_types;
// constants are f32, zero-filled by one allocation for WeightFill::Zero.
class Builder {
 public:
  Builder(const LlmConfig& cfg, const SegmentSpec& spec, int64_t layer) : cfg_(cfg), spec_(spec), layer_(layer) {}
  ir::Graph g;

  TensorId input(const std::string& name, const Shape& s) { return g.add_input(name, ir::DType::F32, s); }
  TensorId op(OpKind k, std::vector<TensorId> in, std::map<std::string, ir::AttrValue> attrs = {},
              const std::string& out_name = "") {
    ir::Op o;
    o.kind = k;
    o.name = g.unique_name(std::string(ir::op_kind_name(k)) + "_" + std::to_string(g.ops().size()));
    o.inputs = std::move(in);
    o.attrs = std::move(attrs);
    const auto types = ir::infer_output_types(g, o);
    const std::string tn = out_name.empty() ? g.unique_name("t" + std::to_string(g.tensors().size())) : out_name;
    o.outputs = {g.add_tensor(tn, types[0].dtype, types[0].shape)};
    g.add_op(std::move(o));
    return g.ops().back().outputs[0];
  }
  // Constant with explicit values (always materialized; small tables, masks, selection matrices).
  TensorId values(const std::string& name, const Shape& s, const std::vector<float>& v) {
    return g.add_constant_floats(g.unique_name(name), s, v);
  }
  TensorId scalar(const std::string& name, float v) { return values(name, {1}, {v}); }
  // A weight block of a logical tensor (weights.h); zeros without per-element work for Zero fill.
  TensorId weight(const std::string& name, Wt t, int64_t expert, int64_t cols, int64_t r0, int64_t nr, int64_t c0,
                  int64_t nc, const Shape& shape = {}) {
    const Shape s = shape.empty() ? Shape{nr, nc} : shape;
    if (spec_.fill == WeightFill::Zero) {
      const float one = (t == Wt::Norm1G || t == Wt::Norm2G || t == Wt::FinalG || t == Wt::MlmNormG) ? 1.f : 0.f;
      if (one == 0.f)
        return g.add_constant(g.unique_name(name), ir::DType::F32, s, std::vector<uint8_t>(static_cast<size_t>(nr * nc * 4)));
      return values(name, s, std::vector<float>(static_cast<size_t>(nr * nc), one));
    }
    return values(name, s, weight_block(spec_.seed, layer_, t, expert, cols, r0, nr, c0, nc));
  }
  // Row vector [n] of a [1, cols] logical tensor (biases, norm parameters).
  TensorId vec(const std::string& name, Wt t, int64_t cols, int64_t c0, int64_t n, int64_t layer_override = -2) {
    const int64_t keep = layer_;
    if (layer_override != -2) layer_ = layer_override;
    const TensorId r = weight(name, t, 0, cols, 0, 1, c0, n, Shape{n});
    layer_ = keep;
    return r;
  }

  TensorId matmul(TensorId a, TensorId b) { return op(OpKind::MatMul, {a, b}); }
  TensorId add(TensorId a, TensorId b, const std::string& out = "") { return op(OpKind::Add, {a, b}, {}, out); }
  TensorId mul(TensorId a, TensorId b) { return op(OpKind::Mul, {a, b}); }
  TensorId sub(TensorId a, TensorId b) { return op(OpKind::Sub, {a, b}); }
  TensorId relu(TensorId a) { return op(OpKind::Relu, {a}); }
  TensorId slice_rows(TensorId a, int64_t r0, int64_t n) {
    const Shape& s = g.tensor(a).shape;
    if (r0 == 0 && n == s[0]) return a;
    return op(OpKind::Slice, {a}, {{"starts", std::vector<int64_t>{r0, 0}}, {"steps", std::vector<int64_t>{1, 1}},
                                   {"counts", std::vector<int64_t>{n, s[1]}}});
  }

  // Normalization of [N, hidden] rows: LayerNormalization (gain, bias) or RMSNorm
  // x * Reciprocal(Sqrt(ReduceMean(x*x) + eps)) * g. `layer` selects whose parameters.
  TensorId norm(TensorId x, Wt gain, Wt bias, int64_t layer) {
    const int64_t h = cfg_.hidden;
    const TensorId gv = vec("norm_gain", gain, h, 0, h, layer);
    if (!cfg_.rms_norm) {
      const TensorId bv = vec("norm_bias", bias, h, 0, h, layer);
      return op(OpKind::LayerNormalization, {x, gv, bv},
                {{"axis", int64_t{1}}, {"epsilon", static_cast<float>(cfg_.norm_eps)}});
    }
    const TensorId ms = op(OpKind::ReduceMean, {mul(x, x)}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}});
    const TensorId r = op(OpKind::Reciprocal, {op(OpKind::Sqrt, {add(ms, scalar("eps", static_cast<float>(cfg_.norm_eps)))})});
    return mul(mul(x, r), gv);
  }

  TensorId activation(TensorId x) {
    const std::string& a = cfg_.activation;
    if (a == "relu") return relu(x);
    if (a == "gelu") {  // 0.5 x (1 + erf(x / sqrt 2))
      const TensorId e = op(OpKind::Erf, {mul(x, scalar("inv_sqrt2", static_cast<float>(1.0 / std::sqrt(2.0))))});
      const TensorId hx = mul(x, scalar("half", 0.5f));  // sequenced: graph order must not depend on the C++ compiler
      const TensorId e1 = add(e, scalar("one", 1.f));
      return mul(hx, e1);
    }
    if (a == "gelu_new") {  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const TensorId x3 = mul(mul(x, x), x);
      const TensorId inner = add(x, mul(x3, scalar("c044715", 0.044715f)));
      const TensorId in = mul(inner, scalar("sqrt_2_over_pi", static_cast<float>(std::sqrt(2.0 / M_PI))));
      const TensorId hx = mul(x, scalar("half", 0.5f));
      const TensorId t1 = add(op(OpKind::Tanh, {in}), scalar("one", 1.f));
      return mul(hx, t1);
    }
    throw InputError(cfg_.name + ": activation '" + a + "' has no graph form; allowed: gelu, gelu_new, relu, silu");
  }

  // Marks `t` as the next graph output under `name` (applied by finish()).
  void output(TensorId t, const std::string& name) { outs_.push_back({t, name}); }
  // The graph with the outputs renamed and marked. Rebuilt tensor by tensor (ids kept, constant
  // data moved, not copied) because ir::Graph has no rename.
  ir::Graph finish() {
    std::map<TensorId, std::string> names;
    for (const auto& [t, n] : outs_) names[t] = n;
    ir::Graph d;
    d.name = g.name;
    std::vector<bool> is_input(g.tensors().size(), false);
    for (TensorId t : g.inputs()) is_input[static_cast<size_t>(t)] = true;
    for (TensorId id = 0; id < static_cast<TensorId>(g.tensors().size()); ++id) {
      ir::Tensor& t = g.mutable_tensor(id);
      const std::string n = names.count(id) ? names.at(id) : t.name;
      if (is_input[static_cast<size_t>(id)]) d.add_input(n, t.dtype, t.shape);
      else if (t.is_const) d.add_constant(n, t.dtype, t.shape, std::move(t.data));
      else d.add_tensor(n, t.dtype, t.shape);
    }
    for (const ir::Op& o : g.ops()) d.add_op(o);
    for (const auto& [t, n] : outs_) d.mark_output(t);
    return d;
  }

  const LlmConfig& cfg_;
  const SegmentSpec& spec_;
  int64_t layer_;
  std::vector<std::pair<TensorId, std::string>> outs_;
};

[[noreturn]] void bad(const LlmConfig& cfg, const SegmentSpec& spec, const std::string& what) {
  throw InputError(model_label(cfg) + ": " + std::string(segment_kind_name(spec.kind)) + " segment: " + what);
}

void check_divides(const LlmConfig& cfg, const SegmentSpec& spec, int64_t n, const std::string& field) {
  if (n % spec.shard.size != 0)
    bad(cfg, spec, "shard size " + std::to_string(spec.shard.size) + " does not divide " + field + " = " +
                       std::to_string(n) + "; allowed: a divisor of " + std::to_string(n));
}

std::string heads_field(const LlmConfig& c) {
  return c.family == "gpt2" ? "n_head" : c.rope ? "num_key_value_heads" : "num_attention_heads";
}
// The config field of the query heads (gpt2 spells it n_head).
std::string query_heads_field(const LlmConfig& c) { return c.family == "gpt2" ? "n_head" : "num_attention_heads"; }
std::string ffn_field(const LlmConfig& c) { return c.family == "gpt2" ? "n_inner" : "intermediate_size"; }

void validate(const LlmConfig& cfg, const SegmentSpec& spec, int64_t layer) {
  const StepShape& s = spec.shape;
  if (s.batch < 1) bad(cfg, spec, "shape.batch must be >= 1; got " + std::to_string(s.batch));
  if (s.tokens < 1) bad(cfg, spec, "shape.tokens must be >= 1; got " + std::to_string(s.tokens));
  if (s.context < 0) bad(cfg, spec, "shape.context must be >= 0; got " + std::to_string(s.context));
  if (s.phase == Phase::Prefill && s.context != 0)
    bad(cfg, spec, "shape.context must be 0 for a prefill step; got " + std::to_string(s.context));
  if (!cfg.causal && s.phase == Phase::Decode)
    bad(cfg, spec, "shape.phase: " + cfg.family + " is an encoder (non-causal); only Prefill is allowed");
  if (spec.shard.size < 1 || spec.shard.rank < 0 || spec.shard.rank >= spec.shard.size)
    bad(cfg, spec, "shard must have size >= 1 and 0 <= rank < size; got rank " + std::to_string(spec.shard.rank) +
                       " of " + std::to_string(spec.shard.size));
  if (spec.position < 0 || spec.position + s.tokens > cfg.max_positions)
    bad(cfg, spec, "position " + std::to_string(spec.position) + " + tokens " + std::to_string(s.tokens) +
                       " exceeds max_positions = " + std::to_string(cfg.max_positions));
  if (spec.norm_only && (spec.kind != SegmentKind::LmHead || cfg.causal))
    bad(cfg, spec, "norm_only is the LmHead segment of an encoder (bert) only");
  if (spec.kind != SegmentKind::LmHead && (layer < 0 || layer >= cfg.layers))
    bad(cfg, spec, "layer must be in [0, " + std::to_string(cfg.layers - 1) + "]; got " + std::to_string(layer));
}

// The segment's normalized input and its residual: pre-LN families normalize with the layer's own
// norm and keep x as the residual; bert (post-LN) applies the previous sub-block's LayerNorm here
// and its output is the residual (see docs/llm.md).
std::pair<TensorId, TensorId> segment_input(Builder& b, TensorId x, int64_t layer, SegmentKind kind) {
  const LlmConfig& c = b.cfg_;
  if (c.family != "bert") {
    if (kind == SegmentKind::Attention) return {b.norm(x, Wt::Norm1G, Wt::Norm1B, layer), x};
    if (kind == SegmentKind::Ffn) return {b.norm(x, Wt::Norm2G, Wt::Norm2B, layer), x};
    return {b.norm(x, Wt::FinalG, Wt::FinalB, c.layers), x};
  }
  TensorId xn = x;
  if (kind == SegmentKind::Attention && layer > 0) xn = b.norm(x, Wt::Norm2G, Wt::Norm2B, layer - 1);
  if (kind == SegmentKind::Ffn) xn = b.norm(x, Wt::Norm1G, Wt::Norm1B, layer);
  if (kind == SegmentKind::LmHead) xn = b.norm(x, Wt::Norm2G, Wt::Norm2B, c.layers - 1);
  return {xn, xn};
}

// Columns [c0, c0+n) of a logical [hidden, cols] projection weight and of its bias, both times
// `scale` (a constant factor of the product folded into its weights: linear, and with per-column
// int8 weight scales it leaves the quantized weights as they were).
struct ColBlock {
  Wt w, bias;
  int64_t cols, c0, n;
  float scale = 1.f;
};

// x . [W_1 | W_2 | ...] (+ the blocks' biases, biased families) as ONE matmul over this shard's
// column blocks, so the MXM's 320-wide weight tiles are filled by several heads (one head's 128
// columns alone leave 192 of 320 lanes empty, and every tile row costs one `lw` cycle whatever its
// fill) and one pass over the hidden dim serves them all. With `rope`: y*cos + (y.R)*sin with
// y = x.W (or x.(W R) for y.R, see below), where R is the rotate-half of every head_dim block;
// cos/sin are [rows, hd] tables repeated for every head block.
TensorId fused_projection(Builder& b, TensorId xn, const std::vector<ColBlock>& blocks, bool rope, TensorId cos_t,
                          TensorId sin_t, const std::string& name) {
  const LlmConfig& c = b.cfg_;
  const int64_t H = c.hidden, hd = c.head_dim;
  int64_t n = 0;
  for (const ColBlock& k : blocks) n += k.n;
  const bool zero = b.spec_.fill == WeightFill::Zero;
  auto zeros = [&](const std::string& nm) {
    return b.g.add_constant(b.g.unique_name(nm), ir::DType::F32, Shape{H, n}, std::vector<uint8_t>(static_cast<size_t>(H * n * 4)));
  };
  std::vector<float> wv;
  TensorId W;
  if (zero) {
    W = zeros(name);
  } else {
    wv.assign(static_cast<size_t>(H * n), 0.f);
    int64_t at = 0;
    for (const ColBlock& k : blocks) {
      const std::vector<float> blk = weight_block(b.spec_.seed, b.layer_, k.w, 0, k.cols, 0, H, k.c0, k.n);
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < k.n; ++j)
          wv[static_cast<size_t>(i * n + at + j)] = blk[static_cast<size_t>(i * k.n + j)] * k.scale;
      at += k.n;
    }
    W = b.values(name, {H, n}, wv);
  }
  TensorId y = b.matmul(xn, W);
  if (!c.rope) {
    std::vector<float> bv;
    for (const ColBlock& k : blocks) {
      const std::vector<float> blk = zero ? std::vector<float>(static_cast<size_t>(k.n), 0.f)
                                          : weight_block(b.spec_.seed, b.layer_, k.bias, 0, k.cols, 0, 1, k.c0, k.n);
      for (float v : blk) bv.push_back(v * k.scale);
    }
    y = b.add(y, b.values(name + "_bias", {n}, bv));
  }
  if (!rope) return y;
  // rotate-half of every head block (column c < hd/2 of a head takes -column c+hd/2, column
  // c >= hd/2 takes column c-hd/2): a signed permutation, so exact in any precision. Applied to y
  // as an [n, n] matmul y.R when n < hidden (n weight rows per column tile to install instead of
  // hidden: Llama-2 7B tp 8 1,024 instead of 4,096), else folded into a second projection x.(W R).
  const int64_t half = hd / 2;
  TensorId rot_w, rot_x;  // rot = rot_x . rot_w, built after y*cos (graph order = schedule order)
  if (n < H) {
    std::vector<float> rv(static_cast<size_t>(n * n), 0.f);
    for (int64_t j = 0; j < n; ++j) {
      if (j % hd < half) rv[static_cast<size_t>((j + half) * n + j)] = -1.f;
      else rv[static_cast<size_t>((j - half) * n + j)] = 1.f;
    }
    rot_w = b.values("rope_rotate_half_" + name, {n, n}, rv);
    rot_x = y;
  } else {
    TensorId WR;
    if (zero) {
      WR = zeros(name + "_rot");
    } else {
      std::vector<float> r(wv.size());
      for (int64_t i = 0; i < H; ++i)
        for (int64_t k = 0; k < n; ++k)
          r[static_cast<size_t>(i * n + k)] = k % hd < half ? -wv[static_cast<size_t>(i * n + k + half)]
                                                            : wv[static_cast<size_t>(i * n + k - half)];
      WR = b.values(name + "_rot", {H, n}, r);
    }
    rot_w = WR;
    rot_x = xn;
  }
  // cos/sin tables per head block: [rows, hd] -> [rows, n].
  auto tile = [&](TensorId t, const std::string& nm) {
    const std::vector<float> v = b.g.tensor(t).const_floats();
    const int64_t rows = static_cast<int64_t>(v.size()) / hd;
    std::vector<float> o(static_cast<size_t>(rows * n));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < n; ++k) o[static_cast<size_t>(r * n + k)] = v[static_cast<size_t>(r * hd + k % hd)];
    return b.values(nm, {rows, n}, o);
  };
  const TensorId yc = b.mul(y, tile(cos_t, "rope_cos_" + name));  // sequenced: graph order must not depend on the C++ compiler
  const TensorId rs = b.mul(b.matmul(rot_x, rot_w), tile(sin_t, "rope_sin_" + name));
  return b.add(yc, rs);
}

// Which kv and query heads a shard of an Attention segment holds (see attention()).
struct KvSplit {
  int64_t kv_per = 1, qg = 1, g0 = 0, q0 = 0;
};
KvSplit kv_split(const LlmConfig& c, const SegmentSpec& spec) {
  const int64_t size = spec.shard.size, rank = spec.shard.rank, group = c.heads / c.kv_heads;
  KvSplit k;
  if (c.kv_heads % size == 0) {
    k.kv_per = c.kv_heads / size;
    k.qg = group;
    k.g0 = rank * k.kv_per;
    k.q0 = k.g0 * group;
    return k;
  }
  if (size % c.kv_heads != 0 || c.heads % size != 0)
    bad(c, spec, "shard size " + std::to_string(size) + " does not divide " + heads_field(c) + " = " +
                     std::to_string(c.kv_heads) + " and is not a multiple of it that divides " + query_heads_field(c) + " = " +
                     std::to_string(c.heads) + "; allowed: a divisor of " + std::to_string(c.kv_heads) +
                     ", or (kv-head replication) a multiple of " + std::to_string(c.kv_heads) + " dividing " +
                     std::to_string(c.heads));
  const int64_t rep = size / c.kv_heads;
  k.kv_per = 1;
  k.qg = group / rep;
  k.g0 = rank / rep;
  k.q0 = k.g0 * group + (rank % rep) * k.qg;
  return k;
}

// Head-dim lane slice [r0, r0 + nr) x [c0, c0 + hd) of t, and a Reshape (attention()'s views).
TensorId head_lanes(Builder& b, TensorId t, int64_t r0, int64_t nr, int64_t c0, int64_t hd) {
  return b.op(OpKind::Slice, {t}, {{"starts", std::vector<int64_t>{r0, c0}}, {"steps", std::vector<int64_t>{1, 1}},
                                   {"counts", std::vector<int64_t>{nr, hd}}});
}
TensorId reshaped(Builder& b, TensorId t, const std::vector<int64_t>& shape) {
  return b.op(OpKind::Reshape, {t}, {{"shape", shape}});
}

// RoPE's cos and sin rows [B T, head_dim] for the segment's positions (kNoTensor without RoPE).
std::pair<TensorId, TensorId> rope_constants(Builder& b) {
  const LlmConfig& c = b.cfg_;
  const StepShape& s = b.spec_.shape;
  if (!c.rope) return {ir::kNoTensor, ir::kNoTensor};
  const int64_t hd = c.head_dim, N = s.batch * s.tokens;
  std::vector<float> cs, sn, cosN, sinN;
  rope_tables(hd, c.rope_theta, b.spec_.position, s.tokens, &cs, &sn);
  for (int64_t bb = 0; bb < s.batch; ++bb) {
    cosN.insert(cosN.end(), cs.begin(), cs.end());
    sinN.insert(sinN.end(), sn.begin(), sn.end());
  }
  const TensorId cos_t = b.values("rope_cos", {N, hd}, cosN);
  return {cos_t, b.values("rope_sin", {N, hd}, sinN)};
}

// Causal mask over [T, C+T]: new token t sees cache rows and new rows <= t; repeated for each of
// the `qg` query heads stacked in one score matrix (row i*T + t is head i's token t); the kv heads
// of the shard broadcast over it. kNoTensor when nothing is masked.
TensorId causal_mask(Builder& b, int64_t qg) {
  const int64_t T = b.spec_.shape.tokens, C = b.spec_.shape.context;
  if (!b.cfg_.causal || T <= 1) return ir::kNoTensor;
  std::vector<float> m(static_cast<size_t>(qg * T * (C + T)), 0.f);
  for (int64_t i = 0; i < qg; ++i)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = C + t + 1; j < C + T; ++j)
        m[static_cast<size_t>((i * T + t) * (C + T) + j)] = -std::numeric_limits<float>::infinity();
  return b.values("causal_mask", {qg * T, C + T}, m);
}

// The shard's attention inputs: the fused projections' q|k (and v) columns, the kv caches and the
// new rows' k and v of each kv head.
struct ShardQkv {
  TensorId QK = ir::kNoTensor;
  std::vector<TensorId> kc, vc;                        // per kv head (decode: C > 0)
  std::vector<std::pair<TensorId, TensorId>> new_kv;  // per kv head: this step's k and v rows
};

// Attention of one sequence for ALL kv heads of the shard at once, batched over the kv heads:
// grouped-query attention stacks the shard's `qg` query heads of a kv head row-wise into one Q
// [qg*T, hd], so a kv head's K^T and V (cache + new rows) are installed as MXM weights once, not
// once per query head; the kv heads are the batch dim of one score product, one Softmax (its rows,
// i.e. all heads, overlap on the VXM/SXM instead of running head after head) and one P.V product.
// Returns P.V per sequence, [kv_per, qg*T, hd]: PV[gi, i*T + t] is query head q0 + gi*qg + i's
// token t.
std::vector<TensorId> attend(Builder& b, const ShardQkv& in, const KvSplit& ks, TensorId mask) {
  const StepShape& s = b.spec_.shape;
  const int64_t B = s.batch, T = s.tokens, C = s.context, hd = b.cfg_.head_dim;
  const int64_t kv_per = ks.kv_per, qg = ks.qg, gT = qg * T;
  std::vector<TensorId> per_seq;
  for (int64_t bb = 0; bb < B; ++bb) {
    std::vector<TensorId> qparts, kparts, vparts;
    for (int64_t gi = 0; gi < kv_per; ++gi) {
      for (int64_t i = 0; i < qg; ++i) qparts.push_back(head_lanes(b, in.QK, bb * T, T, (gi * qg + i) * hd, hd));
      if (C > 0) {
        kparts.push_back(b.slice_rows(in.kc[static_cast<size_t>(gi)], bb * C, C));
        vparts.push_back(b.slice_rows(in.vc[static_cast<size_t>(gi)], bb * C, C));
      }
      kparts.push_back(b.slice_rows(in.new_kv[static_cast<size_t>(gi)].first, bb * T, T));
      vparts.push_back(b.slice_rows(in.new_kv[static_cast<size_t>(gi)].second, bb * T, T));
    }
    auto stack = [&](const std::vector<TensorId>& parts, int64_t rows) {
      const TensorId t = parts.size() == 1 ? parts[0] : b.op(OpKind::Concat, parts, {{"axis", int64_t{0}}});
      return reshaped(b, t, {kv_per, rows, hd});
    };
    const TensorId qb = stack(qparts, gT), kb = stack(kparts, C + T), vb = stack(vparts, C + T);
    const TensorId kt = b.op(OpKind::Transpose, {kb}, {{"perm", std::vector<int64_t>{0, 2, 1}}});
    TensorId sc = b.matmul(qb, kt);
    if (mask != ir::kNoTensor) sc = b.add(sc, mask);
    const TensorId p = b.op(OpKind::Softmax, {sc}, {{"axis", int64_t{2}}});
    per_seq.push_back(b.matmul(p, vb));
  }
  return per_seq;
}

// o_proj per head (its rows of P.V, a view) and an Add chain. (One o_proj over the head merge, read
// by the MXM per head segment, measured slower on Llama-2 7B tp 8 (37,348 vs 36,236 cycles) and its
// one [heads x 320, hidden] weight blob of half-slice groups did not fit the Llama-2 70B fp16 tp 4
// piece; per-head blobs do.)
TensorId output_projection(Builder& b, const std::vector<TensorId>& per_seq, const KvSplit& ks) {
  const LlmConfig& c = b.cfg_;
  const int64_t T = b.spec_.shape.tokens, hd = c.head_dim;
  TensorId out = ir::kNoTensor;
  for (int64_t gi = 0; gi < ks.kv_per; ++gi)
    for (int64_t i = 0; i < ks.qg; ++i) {
      const int64_t h = ks.q0 + gi * ks.qg + i;
      const std::string hs = std::to_string(h);
      std::vector<TensorId> rows;  // head h's rows of every sequence, in sequence order
      for (TensorId pv : per_seq) {
        const TensorId r = b.op(OpKind::Slice, {pv}, {{"starts", std::vector<int64_t>{gi, i * T, 0}},
                                                      {"steps", std::vector<int64_t>{1, 1, 1}},
                                                      {"counts", std::vector<int64_t>{1, T, hd}}});
        rows.push_back(reshaped(b, r, {T, hd}));
      }
      TensorId o = rows.size() == 1 ? rows[0] : b.op(OpKind::Concat, rows, {{"axis", int64_t{0}}});
      const TensorId Wo = b.weight("wo_" + hs, Wt::O, 0, c.hidden, h * hd, hd, 0, c.hidden);
      if (b.spec_.o_proj_cast) o = b.op(OpKind::Cast, {o}, {{"to", static_cast<int64_t>(ir::DType::F32)}});
      const TensorId y = b.matmul(o, Wo);
      out = out == ir::kNoTensor ? y : b.add(out, y);
    }
  return out;
}

ir::Graph attention(Builder& b, int64_t layer) {
  const LlmConfig& c = b.cfg_;
  const SegmentSpec& spec = b.spec_;
  const StepShape& s = spec.shape;
  const int64_t B = s.batch, T = s.tokens, C = s.context, N = B * T, hd = c.head_dim;
  // The shard's kv heads [g0, g0 + kv_per) and query heads [q0, q0 + kv_per * qg): qg query heads
  // per kv head. Shard size dividing kv_heads: kv_per whole kv heads with all their group query
  // heads. Shard size a multiple rep of kv_heads (KV-head replication, tp wider than the kv heads):
  // one kv head g0 = rank / rep on rep shards (its cache and k/v columns duplicated), each with
  // group / rep of its query heads.
  const KvSplit ks = kv_split(c, spec);
  const int64_t kv_per = ks.kv_per, qg = ks.qg, g0 = ks.g0, q0 = ks.q0;

  const TensorId x = b.input("x", {N, c.hidden});
  ShardQkv in;
  if (C > 0)
    for (int64_t g = g0; g < g0 + kv_per; ++g) {
      in.kc.push_back(b.input("k_cache_" + std::to_string(g), {B * C, hd}));
      in.vc.push_back(b.input("v_cache_" + std::to_string(g), {B * C, hd}));
    }
  const auto [xn, residual] = segment_input(b, x, layer, SegmentKind::Attention);
  const auto [cos_t, sin_t] = rope_constants(b);
  const TensorId mask = causal_mask(b, qg);
  // The scores' 1/sqrt(head_dim) is folded into q's projection columns (ColBlock::scale): the
  // score product then needs no multiply of its own, one VXM op less per score vector.
  const float inv_sqrt_hd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));

  // Projections of the whole shard, fused (fused_projection): q of the shard's query heads and k of
  // its kv heads in one [hidden, nq + nk] matmul (RoPE applied to both at once), v in another (in
  // the same one for families without RoPE). Head h's q, kv head g's k and v are lane slices.
  const int64_t nq = kv_per * qg * hd, nk = kv_per * hd;
  const ColBlock qblk{Wt::Q, Wt::QBias, c.heads * hd, q0 * hd, nq, inv_sqrt_hd};
  const ColBlock kblk{Wt::K, Wt::KBias, c.kv_heads * hd, g0 * hd, nk};
  const ColBlock vblk{Wt::V, Wt::VBias, c.kv_heads * hd, g0 * hd, nk};
  const std::string ss = std::to_string(g0);
  TensorId V;
  int64_t v0 = 0;  // lane of v's first column in V
  if (c.rope) {
    in.QK = fused_projection(b, xn, {qblk, kblk}, true, cos_t, sin_t, "wqk_" + ss);
    V = fused_projection(b, xn, {vblk}, false, cos_t, sin_t, "wv_" + ss);
  } else {
    in.QK = V = fused_projection(b, xn, {qblk, kblk, vblk}, false, cos_t, sin_t, "wqkv_" + ss);
    v0 = nq + nk;
  }
  for (int64_t gi = 0; gi < kv_per; ++gi) {
    const TensorId k_new = head_lanes(b, in.QK, 0, N, nq + gi * hd, hd);
    in.new_kv.push_back({k_new, head_lanes(b, V, 0, N, v0 + gi * hd, hd)});
  }
  TensorId out = output_projection(b, attend(b, in, ks, mask), ks);
  if (spec.shard.rank == 0) {
    if (!c.rope) out = b.add(out, b.vec("bo", Wt::OBias, c.hidden, 0, c.hidden));
    out = b.add(residual, out);
  }
  b.output(out, "partial");
  // k_new / v_new are appended to the cache by the next decode step; an encoder never decodes, so
  // it does not pay for their copies out of the fused projections (~3.5k cycles per BERT-base piece).
  for (int64_t gi = 0; c.causal && gi < kv_per; ++gi) {
    const std::string gs = std::to_string(g0 + gi);
    b.output(in.new_kv[static_cast<size_t>(gi)].first, "k_new_" + gs);
    b.output(in.new_kv[static_cast<size_t>(gi)].second, "v_new_" + gs);
  }
  return b.finish();
}

// Expert selection masks from router logits L [N, E] with only MatMul/Relu/Sub/Mul/Add (ops the
// chip lowers): beats(e, j) = 1 if expert j ranks above e (l_j > l_e, or equal and j < e); count
// c_e = sum_j beats(e, j); selected = (c_e < k); is_max = (c_e == 0). Differences come from one
// matmul with a +-1 matrix (exactly fl(l_j - l_e)); step(d) = 1 - Relu(1 - Relu(d) * 2^100) is
// exactly 1 for d >= 2^-100 and 0 for d <= 0; the counts are small integers (exact).
std::pair<TensorId, TensorId> select_experts(Builder& b, TensorId L) {
  const int64_t E = b.cfg_.experts, k = b.cfg_.experts_per_token;
  std::vector<float> P(static_cast<size_t>(E * E * E), 0.f), Q(static_cast<size_t>(E * E * E), 0.f), off(E), kk(E);
  for (int64_t e = 0; e < E; ++e) {
    off[static_cast<size_t>(e)] = static_cast<float>(e);  // j < e: beats = 1 - step(l_e - l_j)
    kk[static_cast<size_t>(e)] = static_cast<float>(k);
    for (int64_t j = 0; j < E; ++j) {
      if (j == e) continue;
      const int64_t col = e * E + j;
      const float sgn = j < e ? -1.f : 1.f;  // column = sgn * (l_j - l_e)
      P[static_cast<size_t>(j * E * E + col)] = sgn;
      P[static_cast<size_t>(e * E * E + col)] = -sgn;
      Q[static_cast<size_t>(col * E + e)] = sgn;
    }
  }
  const TensorId D = b.matmul(L, b.values("pairwise_diff", {E, E * E}, P));
  const TensorId one = b.scalar("one", 1.f);
  // Each statement creates at most one new tensor per argument list level, so the graph's order
  // does not depend on the C++ compiler's (unspecified) order of evaluating function arguments.
  const TensorId rD = b.relu(D);
  const TensorId big = b.scalar("two_pow_100", std::ldexp(1.f, 100));
  const TensorId step = b.sub(one, b.relu(b.sub(one, b.mul(rD, big))));
  const TensorId pair_sum = b.matmul(step, b.values("pairwise_sum", {E * E, E}, Q));
  const TensorId cnt = b.add(pair_sum, b.values("rank_offset", {E}, off));
  const TensorId sel = b.sub(one, b.relu(b.sub(one, b.relu(b.sub(b.values("top_k", {E}, kk), cnt)))));
  const TensorId is_max = b.relu(b.sub(one, cnt));
  return {sel, is_max};
}

// FFN of one expert (or the dense FFN) over the columns [f0, f0+n) of its intermediate dimension.
TensorId ffn_columns(Builder& b, TensorId xn, int64_t expert, int64_t f0, int64_t n) {
  const LlmConfig& c = b.cfg_;
  const std::string es = expert >= 0 ? "e" + std::to_string(expert) + "_" : "";
  const int64_t ex = expert >= 0 ? expert : 0;
  const TensorId up = b.matmul(xn, b.weight(es + "w_up", Wt::Up, ex, c.ffn, 0, c.hidden, f0, n));
  TensorId h;
  if (c.gated_ffn) {  // SwiGLU: (g * Sigmoid(g)) * u
    const TensorId gt = b.matmul(xn, b.weight(es + "w_gate", Wt::Gate, ex, c.ffn, 0, c.hidden, f0, n));
    h = b.mul(b.mul(gt, b.op(OpKind::Sigmoid, {gt})), up);
  } else {
    h = b.activation(b.add(up, b.weight(es + "b_up", Wt::UpBias, ex, c.ffn, 0, 1, f0, n, Shape{n})));
  }
  return b.matmul(h, b.weight(es + "w_down", Wt::Down, ex, c.hidden, f0, n, 0, c.hidden));
}

ir::Graph ffn(Builder& b, int64_t layer, const Routing* routing) {
  const LlmConfig& c = b.cfg_;
  const SegmentSpec& spec = b.spec_;
  const int64_t N = spec.shape.batch * spec.shape.tokens;
  const TensorId x = b.input("x", {N, c.hidden});
  const auto [xn, residual] = segment_input(b, x, layer, SegmentKind::Ffn);
  TensorId out = ir::kNoTensor;
  if (c.experts == 0) {
    check_divides(c, spec, c.ffn, ffn_field(c));
    const int64_t n = c.ffn / spec.shard.size;
    out = ffn_columns(b, xn, -1, spec.shard.rank * n, n);
  } else {
    // Shards of one expert: a shard size that is a multiple of the experts splits each expert's
    // columns over size / experts shards (expert column split: an expert larger than a chip);
    // otherwise each shard holds experts / size whole experts.
    const int64_t E = c.experts;
    const int64_t split = spec.shard.size > E && spec.shard.size % E == 0 ? spec.shard.size / E : 1;
    if (split == 1) check_divides(c, spec, c.experts, "num_local_experts");
    if (c.ffn % split != 0)
      bad(c, spec, "shard size " + std::to_string(spec.shard.size) + " splits each of the " + std::to_string(E) +
                       " experts over " + std::to_string(split) + " shards, which does not divide " + ffn_field(c) +
                       " = " + std::to_string(c.ffn));
    const int64_t per = split > 1 ? 1 : E / spec.shard.size;
    const int64_t e0 = split > 1 ? spec.shard.rank / split : spec.shard.rank * per;
    const int64_t cols = c.ffn / split, f0 = split > 1 ? (spec.shard.rank % split) * cols : 0;
    // Router (replicated on every shard, it is tiny), top-k selection, gate = renormalized softmax
    // over the selected logits: w = sel * exp(L - max L); gate = w / sum(w).
    const TensorId L = b.matmul(xn, b.weight("w_router", Wt::Router, 0, E, 0, c.hidden, 0, E));
    TensorId sel, is_max;
    if (routing) {
      std::vector<float> sv(static_cast<size_t>(N * E), 0.f), mv(static_cast<size_t>(N * E), 0.f);
      for (int64_t r = 0; r < N; ++r)
        for (int64_t i = 0; i < c.experts_per_token; ++i) {
          const int64_t e = (*routing)[static_cast<size_t>(r * c.experts_per_token + i)];
          sv[static_cast<size_t>(r * E + e)] = 1.f;
          if (i == 0) mv[static_cast<size_t>(r * E + e)] = 1.f;
        }
      sel = b.values("routing_selected", {N, E}, sv);
      is_max = b.values("routing_argmax", {N, E}, mv);
    } else {
      std::tie(sel, is_max) = select_experts(b, L);
    }
    const TensorId m = b.op(OpKind::ReduceSum, {b.mul(is_max, L)}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}});
    const TensorId w = b.mul(sel, b.op(OpKind::Exp, {b.sub(L, m)}));
    const TensorId gate = b.op(OpKind::Div, {w, b.op(OpKind::ReduceSum, {w}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}})});
    // Every expert of the shard runs on every row (a static schedule cannot branch on routing);
    // unselected experts get gate 0.
    for (int64_t e = e0; e < e0 + per; ++e) {
      std::vector<float> onehot(static_cast<size_t>(E), 0.f);
      onehot[static_cast<size_t>(e)] = 1.f;
      const TensorId ge = b.matmul(gate, b.values("onehot_" + std::to_string(e), {E, 1}, onehot));
      const TensorId y = b.mul(ffn_columns(b, xn, e, f0, cols), ge);
      out = out == ir::kNoTensor ? y : b.add(out, y);
    }
  }
  if (spec.shard.rank == 0) {
    if (!c.gated_ffn) out = b.add(out, b.vec("b_down", Wt::DownBias, c.hidden, 0, c.hidden));
    out = b.add(residual, out);
  }
  b.output(out, "partial");
  return b.finish();
}

ir::Graph lm_head(Builder& b) {
  const LlmConfig& c = b.cfg_;
  const SegmentSpec& spec = b.spec_;
  const int64_t N = spec.shape.batch * spec.shape.tokens;
  if (spec.norm_only) {  // an encoder's output: the LayerNorm ending its last layer
    const TensorId x = b.input("x", {N, c.hidden});
    b.output(segment_input(b, x, c.layers, SegmentKind::LmHead).first, "partial");
    return b.finish();
  }
  check_divides(c, spec, c.vocab, "vocab_size");
  const int64_t n = c.vocab / spec.shard.size, v0 = spec.shard.rank * n;
  const TensorId x = b.input("x", {N, c.hidden});
  TensorId xn = segment_input(b, x, c.layers, SegmentKind::LmHead).first;
  b.layer_ = c.layers;  // head tensors are keyed by layer index `layers`
  if (c.family == "bert") {  // MLM transform: dense + activation + LayerNorm
    const TensorId dense = b.matmul(xn, b.weight("mlm_dense", Wt::MlmDense, 0, c.hidden, 0, c.hidden, 0, c.hidden));
    xn = b.add(dense, b.vec("mlm_dense_bias", Wt::MlmDenseBias, c.hidden, 0, c.hidden));
    xn = b.activation(xn);
    xn = b.op(OpKind::LayerNormalization,
              {xn, b.vec("mlm_norm_gain", Wt::MlmNormG, c.hidden, 0, c.hidden), b.vec("mlm_norm_bias", Wt::MlmNormB, c.hidden, 0, c.hidden)},
              {{"axis", int64_t{1}}, {"epsilon", static_cast<float>(c.norm_eps)}});
  }
  TensorId logits = b.matmul(xn, b.weight("lm_head", Wt::LmHead, 0, c.vocab, 0, c.hidden, v0, n));
  if (c.family == "bert") logits = b.add(logits, b.vec("mlm_bias", Wt::MlmBias, c.vocab, v0, n));
  b.output(logits, "logits");
  return b.finish();
}

ir::Graph build(const LlmConfig& cfg, const SegmentSpec& spec, int64_t layer, const Routing* routing) {
  validate(cfg, spec, layer);
  Builder b(cfg, spec, layer);
  b.g.name = model_label(cfg) + "_" + std::string(segment_kind_name(spec.kind)) +
             (spec.kind == SegmentKind::LmHead ? (spec.norm_only ? "_norm" : "") : "_l" + std::to_string(layer)) + "_r" +
             std::to_string(spec.shard.rank) + "of" + std::to_string(spec.shard.size);
  ir::Graph g = spec.kind == SegmentKind::Attention ? attention(b, layer)
                : spec.kind == SegmentKind::Ffn     ? ffn(b, layer, routing)
                                                    : lm_head(b);
  g.validate();
  return g;
}

}  // namespace

int64_t representative_layer(const LlmConfig& cfg, SegmentKind kind, int64_t layer) {
  // Mirrors segment_input: only bert's Attention segments differ by layer (layer 0: no norm).
  return cfg.family == "bert" && kind == SegmentKind::Attention && layer > 0 ? 1 : 0;
}

bool is_projection_weight(const std::string& n) {
  // The names Builder::weight gives the matrices above (g.unique_name may append "_<k>"), after
  // the "<segment>/" prefixes a stitched graph adds (model_graph.h).
  static const std::regex re("^((e[0-9]+_)?w(q|k|v|o|qk|qkv)_[0-9]+(_rot)?|(e[0-9]+_)?w_(up|gate|down)|w_router|lm_head|mlm_dense)"
                             "(_[0-9]+)?$");
  const size_t slash = n.rfind('/');
  return std::regex_match(slash == std::string::npos ? n : n.substr(slash + 1), re);
}

ir::Graph build_segment(const LlmConfig& cfg, const SegmentSpec& spec, int64_t layer) {
  return build(cfg, spec, layer, nullptr);
}

ir::Graph build_segment_with_routing(const LlmConfig& cfg, const SegmentSpec& spec, int64_t layer,
                                     const Routing& routing) {
  if (spec.kind != SegmentKind::Ffn || cfg.experts == 0)
    throw InputError(cfg.name + ": build_segment_with_routing is for the Ffn segment of an MoE model only");
  const int64_t N = spec.shape.batch * spec.shape.tokens;
  if (static_cast<int64_t>(routing.size()) != N * cfg.experts_per_token)
    throw InputError(cfg.name + ": routing must hold rows * experts_per_token = " +
                     std::to_string(N * cfg.experts_per_token) + " expert indices; got " + std::to_string(routing.size()));
  for (int64_t e : routing)
    if (e < 0 || e >= cfg.experts)
      throw InputError(cfg.name + ": routing expert index must be in [0, " + std::to_string(cfg.experts - 1) +
                       "]; got " + std::to_string(e));
  return build(cfg, spec, layer, &routing);
}

}  // namespace lpu::llm
