// LLM front end: segment graphs (compiler/llm/segments.h) against the independent Eigen forward
// (reference_forward) on tiny models, end to end through every layer on the reference interpreter,
// with the fp32 error bound of ref::run_with_error_bound (docs/compiler.md) as the tolerance; plus
// the segment interface (names, shapes, shard checks) and cheap zero-weight graphs at 70B sizes.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>
#include <cmath>
#include <string>

#include "compiler/llm/model_graph.h"
#include "compiler/llm/segments.h"
#include "compiler/reference/error_bound.h"
#include "compiler/reference/interpreter.h"
#include "isa/chip_config.h"
#include "tests/support/uniform.h"
#include "tests/support/llm_workloads.h"

using namespace lpu::llm;
using lpu::ref::Value;

using lpu::test::workload_llm;

namespace {


using lpu::test::uniform;

struct Compare {
  double max_err = 0, max_ratio = 0, max_rel_bound = 0;
};

// |graph - reference| <= 2 * bound element-wise (two fp32 implementations, each within the bound
// of exact arithmetic on the same inputs); the bound must be finite.
void compare(const std::vector<float>& got, const std::vector<float>& bound, const std::vector<float>& want, Compare* c,
             const std::string& what) {
  REQUIRE(got.size() == want.size());
  REQUIRE(bound.size() == want.size());
  double scale = 0;
  for (float w : want) scale = std::max(scale, std::fabs(static_cast<double>(w)));
  for (size_t k = 0; k < want.size(); ++k) {
    const double err = std::fabs(static_cast<double>(got[k]) - want[k]), b = bound[k];
    INFO(what << " element " << k << ": graph " << got[k] << " reference " << want[k] << " bound " << b);
    REQUIRE(std::isfinite(b));
    REQUIRE(err <= 2 * b);
    c->max_err = std::max(c->max_err, err);
    if (b > 0) c->max_ratio = std::max(c->max_ratio, err / b);
    c->max_rel_bound = std::max(c->max_rel_bound, b / std::max(scale, 1e-30));
  }
}

constexpr double kU32 = 1.0 / 16777216.0;

// One segment over all shards on input x: the summed "partial" (or the concatenated logits) with
// its bound (shard bounds summed, plus u |sum| for each fp32 addition), and the new K/V rows with
// their bounds per global kv head.
struct SegmentResult {
  std::vector<float> value, bound;
  std::map<int64_t, std::pair<Value, Value>> k_new, v_new;  // g -> (value, bound)
};

SegmentResult run_segment(const LlmConfig& cfg, SegmentSpec spec, int64_t layer, int64_t shards,
                          const std::vector<float>& x, const KvCache& cache, const Routing* routing) {
  const StepShape& sh = spec.shape;
  const int64_t N = sh.batch * sh.tokens;
  SegmentResult r;
  std::vector<std::vector<float>> slices, slice_bounds;
  for (int64_t rank = 0; rank < shards; ++rank) {
    spec.shard = {rank, shards};
    const lpu::ir::Graph g = routing ? build_segment_with_routing(cfg, spec, layer, *routing) : build_segment(cfg, spec, layer);
    std::vector<Value> in;
    for (lpu::ir::TensorId t : g.inputs()) {
      const std::string& n = g.tensor(t).name;
      if (n == "x") {
        in.push_back(Value::floats({N, cfg.hidden}, x));
      } else {
        const int64_t kvh = std::stoll(n.substr(8));  // k_cache_<g> / v_cache_<g>
        const auto& src = n[0] == 'k' ? cache.k : cache.v;
        in.push_back(Value::floats({sh.batch * sh.context, cfg.head_dim}, src[layer][kvh]));
      }
    }
    std::vector<Value> bounds;
    const std::vector<Value> outs = lpu::ref::run_with_error_bound(g, in, &bounds);
    if (routing == nullptr && cfg.experts > 0 && spec.kind == SegmentKind::Ffn) FAIL("MoE segments need the routing");
    for (size_t o = 0; o < outs.size(); ++o) {
      const std::string& n = g.tensor(g.outputs()[o]).name;
      if (n == "partial" && r.value.empty()) {
        r.value = outs[o].f;
        r.bound = bounds[o].f;
      } else if (n == "partial") {
        for (size_t k = 0; k < r.value.size(); ++k) {
          r.value[k] += outs[o].f[k];
          r.bound[k] = static_cast<float>(r.bound[k] + bounds[o].f[k] + kU32 * std::fabs(r.value[k]));
        }
      } else if (n == "logits") {
        slices.push_back(outs[o].f);
        slice_bounds.push_back(bounds[o].f);
      } else {
        const int64_t kvh = std::stoll(n.substr(6));  // k_new_<g> / v_new_<g>
        (n[0] == 'k' ? r.k_new : r.v_new)[kvh] = {outs[o], bounds[o]};
      }
    }
  }
  if (!slices.empty()) {  // [N, vocab/shards] slices -> [N, vocab]
    const size_t w = slices[0].size() / static_cast<size_t>(N);
    for (int64_t row = 0; row < N; ++row)
      for (size_t s = 0; s < slices.size(); ++s)
        for (size_t c = 0; c < w; ++c) {
          r.value.push_back(slices[s][static_cast<size_t>(row) * w + c]);
          r.bound.push_back(slice_bounds[s][static_cast<size_t>(row) * w + c]);
        }
  }
  return r;
}

// Every segment of a step (all layers, the LM head; `shards` shards summed) is run on the
// reference's own input to that segment (reference_forward's segment_inputs) and compared with the
// reference's output of it (the next segment input, or the logits), plus the new K/V rows. Per
// segment because the first-order bound grows ~10x per layer (worst case over random signs), so
// an end-to-end bound over a whole model is too loose to test anything.
void check_model(const LlmConfig& cfg, const StepShape& shape, int64_t position, int64_t shards) {
  const uint64_t seed = 7;
  const int64_t N = shape.batch * shape.tokens;
  const std::vector<float> x = uniform(static_cast<size_t>(N * cfg.hidden), 11);
  const KvCache cache = random_kv_cache(cfg, shape, 13);
  KvCache new_kv;
  std::vector<Routing> routing;
  std::vector<std::vector<float>> seg_in;
  const std::vector<float> logits = reference_forward(cfg, shape, seed, x, shape.context > 0 ? &cache : nullptr,
                                                      position, &new_kv, &routing, &seg_in);
  REQUIRE(seg_in.size() == static_cast<size_t>(2 * cfg.layers + 1));
  SegmentSpec spec;
  spec.shape = shape;
  spec.fill = WeightFill::Random;
  spec.seed = seed;
  spec.position = position;
  Compare hidden, kv, head;
  for (int64_t l = 0; l < cfg.layers; ++l) {
    const std::string where = cfg.name + " layer " + std::to_string(l);
    spec.kind = SegmentKind::Attention;
    const SegmentResult a = run_segment(cfg, spec, l, shards, seg_in[static_cast<size_t>(2 * l)], cache, nullptr);
    compare(a.value, a.bound, seg_in[static_cast<size_t>(2 * l + 1)], &hidden, where + " attention");
    // Decoders output every kv head's new K/V rows (appended to the cache); encoders have no cache.
    REQUIRE(a.k_new.size() == static_cast<size_t>(cfg.causal ? cfg.kv_heads : 0));
    for (const auto& [g, vb] : a.k_new) compare(vb.first.f, vb.second.f, new_kv.k[l][g], &kv, where + " k_new");
    for (const auto& [g, vb] : a.v_new) compare(vb.first.f, vb.second.f, new_kv.v[l][g], &kv, where + " v_new");
    spec.kind = SegmentKind::Ffn;
    const std::vector<float>& fin = seg_in[static_cast<size_t>(2 * l + 1)];
    const Routing* rt = cfg.experts > 0 ? &routing[static_cast<size_t>(l)] : nullptr;
    const SegmentResult f = run_segment(cfg, spec, l, shards, fin, cache, rt);
    compare(f.value, f.bound, seg_in[static_cast<size_t>(2 * l + 2)], &hidden, where + " ffn");
    if (rt) {
      // The in-graph top-k (a step function: no finite error bound) must choose the reference's
      // experts: build_segment's outputs are bit-identical to those with the routing as constants.
      for (int64_t rank = 0; rank < shards; ++rank) {
        spec.shard = {rank, shards};
        const Value xin = Value::floats({N, cfg.hidden}, fin);
        REQUIRE(lpu::ref::run(build_segment(cfg, spec, l), {xin})[0].f ==
                lpu::ref::run(build_segment_with_routing(cfg, spec, l, *rt), {xin})[0].f);
      }
    }
  }
  spec.kind = SegmentKind::LmHead;
  const SegmentResult h = run_segment(cfg, spec, 0, shards, seg_in.back(), cache, nullptr);
  compare(h.value, h.bound, logits, &head, cfg.name + " lm_head");
  WARN(cfg.name << (shape.phase == Phase::Prefill ? " prefill" : " decode") << " B=" << shape.batch << " T="
                << shape.tokens << " C=" << shape.context << " shards=" << shards << ": max err/bound hidden "
                << hidden.max_ratio << " k/v " << kv.max_ratio << " logits " << head.max_ratio
                << "; max bound/max|ref| hidden " << hidden.max_rel_bound << " logits " << head.max_rel_bound);
  // A bound that is a sizeable fraction of the values would make the comparison meaningless (a
  // wrong weight or a wrong op changes outputs by the order of the values themselves).
  CHECK(hidden.max_rel_bound < 1e-2);
  CHECK(head.max_rel_bound < 1e-2);
  if (cfg.experts > 0) {  // the routing must be non-trivial: rows lead with different experts
    std::set<int64_t> leaders;
    for (const Routing& r : routing)
      for (size_t i = 0; i < r.size(); i += static_cast<size_t>(cfg.experts_per_token)) leaders.insert(r[i]);
    CHECK(leaders.size() >= 2);
  }

  // The stitched whole-step graph (build_model_graph) computes exactly what the segments chained
  // on the interpreter compute (same ops, partials added in rank order): bit-identical logits.
  ModelGraphSpec ms;
  ms.shape = shape;
  ms.shard_size = shards;
  ms.seed = seed;
  ms.position = position;
  std::vector<Value> in{Value::floats({N, cfg.hidden}, x)};
  if (shape.context > 0)
    for (int64_t l = 0; l < cfg.layers; ++l)
      for (int64_t g = 0; g < cfg.kv_heads; ++g)
        for (const auto* c : {&cache.k, &cache.v})
          in.push_back(Value::floats({shape.batch * shape.context, cfg.head_dim}, (*c)[l][g]));
  const std::vector<Value> whole = lpu::ref::run(build_model_graph(cfg, ms), in);
  REQUIRE(whole.size() == 1 + (cfg.causal ? 2 * static_cast<size_t>(cfg.layers * cfg.kv_heads) : 0));
  std::vector<float> chain = x;
  for (int64_t l = 0; l < cfg.layers; ++l)
    for (SegmentKind k : {SegmentKind::Attention, SegmentKind::Ffn}) {
      std::vector<float> sum;
      for (int64_t rank = 0; rank < shards; ++rank) {
        spec.kind = k;
        spec.shard = {rank, shards};
        const lpu::ir::Graph g = build_segment(cfg, spec, l);
        std::vector<Value> sin{Value::floats({N, cfg.hidden}, chain)};
        for (size_t i = 1; i < g.inputs().size(); ++i) {
          const std::string& n = g.tensor(g.inputs()[i]).name;
          sin.push_back(Value::floats({shape.batch * shape.context, cfg.head_dim},
                                      (n[0] == 'k' ? cache.k : cache.v)[l][std::stoll(n.substr(8))]));
        }
        const std::vector<float> p = lpu::ref::run(g, sin)[0].f;
        if (sum.empty()) sum = p;
        else for (size_t i = 0; i < sum.size(); ++i) sum[i] += p[i];
      }
      chain = sum;
    }
  std::vector<float> chained_logits;
  for (int64_t rank = 0; rank < shards; ++rank) {
    spec.kind = SegmentKind::LmHead;
    spec.shard = {rank, shards};
    const std::vector<float> sl = lpu::ref::run(build_segment(cfg, spec, 0), {Value::floats({N, cfg.hidden}, chain)})[0].f;
    chained_logits.resize(static_cast<size_t>(N * cfg.vocab));
    const int64_t w = cfg.vocab / shards;
    for (int64_t row = 0; row < N; ++row)
      for (int64_t c = 0; c < w; ++c)
        chained_logits[static_cast<size_t>(row * cfg.vocab + rank * w + c)] = sl[static_cast<size_t>(row * w + c)];
  }
  CHECK(whole[0].f == chained_logits);
}

}  // namespace

TEST_CASE("llm segments: tiny models, all layers and shards, match reference_forward within the fp32 bound", "[llm]") {
  for (const char* name : {"tiny-llama", "tiny-gpt2", "tiny-mixtral"}) {
    const LlmConfig cfg = workload_llm(name);
    for (int64_t shards : {1, 2}) {
      check_model(cfg, {Phase::Prefill, 2, 5, 0}, 0, shards);
      check_model(cfg, {Phase::Decode, 2, 1, 6}, 6, shards);
    }
  }
  check_model(workload_llm("tiny-llama"), {Phase::Decode, 1, 3, 4}, 9, 2);  // several new tokens on a cache
  const LlmConfig bert = workload_llm("tiny-bert");
  check_model(bert, {Phase::Prefill, 2, 6, 0}, 0, 1);
  check_model(bert, {Phase::Prefill, 1, 6, 0}, 0, 2);
}

TEST_CASE("llm segments: interface names, shapes and shard checks", "[llm]") {
  const LlmConfig cfg = workload_llm("tiny-llama");  // 4 heads, 2 kv heads, head_dim 32
  SegmentSpec s;
  s.shape = {Phase::Decode, 3, 1, 10};
  s.shard = {1, 2};
  s.position = 10;
  const lpu::ir::Graph a = build_segment(cfg, s, 1);
  REQUIRE(a.inputs().size() == 3);
  CHECK(a.tensor(a.inputs()[0]).name == "x");
  CHECK(a.tensor(a.inputs()[0]).shape == lpu::ir::Shape{3, 128});
  CHECK(a.tensor(a.inputs()[1]).name == "k_cache_1");
  CHECK(a.tensor(a.inputs()[2]).name == "v_cache_1");
  CHECK(a.tensor(a.inputs()[2]).shape == lpu::ir::Shape{30, 32});
  REQUIRE(a.outputs().size() == 3);
  CHECK(a.tensor(a.outputs()[0]).name == "partial");
  CHECK(a.tensor(a.outputs()[0]).shape == lpu::ir::Shape{3, 128});
  CHECK(a.tensor(a.outputs()[1]).name == "k_new_1");
  CHECK(a.tensor(a.outputs()[2]).shape == lpu::ir::Shape{3, 32});
  // One fused MatMul for the shard's q and k (and its rotated twin), one for its v; per sequence
  // one score and one p.v product batched over the shard's kv heads (the group's 2 query heads
  // stacked: Q [1 kv head, 2, 32]); per head o_proj (3 sequences): shard 1 has 2 q heads and 1 kv head.
  int matmuls = 0;
  for (const auto& op : a.ops()) matmuls += op.kind == lpu::ir::OpKind::MatMul;
  CHECK(matmuls == 2 + 1 + 2 * 3 + 2);
  // Each cached K / V row block enters one Concat per sequence (not one per query head), and the
  // score products multiply the stacked group: [1, 2 heads * 1 token, 32] x [1, 32, 11].
  int cache_reads = 0, stacked_scores = 0;
  for (const auto& op : a.ops()) {
    if (op.kind == lpu::ir::OpKind::Slice)
      cache_reads += op.inputs[0] == a.inputs()[1] || op.inputs[0] == a.inputs()[2];
    if (op.kind == lpu::ir::OpKind::MatMul && !a.tensor(op.inputs[1]).is_const &&
        a.tensor(op.outputs[0]).shape == lpu::ir::Shape{1, 2, 11})
      ++stacked_scores;
  }
  CHECK(cache_reads == 2 * 3);
  CHECK(stacked_scores == 3);
  // MHA (tiny-gpt2: 4 heads, 4 kv heads): one score and one p.v product per sequence, batched
  // over the 4 heads ([4, 1, 11] scores), so one Softmax covers every head.
  SegmentSpec m = s;
  m.shard = {0, 1};
  const lpu::ir::Graph mha = build_segment(workload_llm("tiny-gpt2"), m, 0);
  int act_matmuls = 0, batched = 0;
  for (const auto& op : mha.ops()) {
    const bool act = op.kind == lpu::ir::OpKind::MatMul && !mha.tensor(op.inputs[1]).is_const;
    act_matmuls += act;
    batched += act && mha.tensor(op.outputs[0]).shape == lpu::ir::Shape{4, 1, 11};
  }
  CHECK(act_matmuls == 3 * 2);
  CHECK(batched == 3);

  s.kind = SegmentKind::LmHead;
  const lpu::ir::Graph h = build_segment(cfg, s, 0);
  CHECK(h.tensor(h.outputs()[0]).name == "logits");
  CHECK(h.tensor(h.outputs()[0]).shape == lpu::ir::Shape{3, 256});

  s.shard = {0, 3};
  CHECK_THROWS_WITH(build_segment(cfg, s, 0), Catch::Contains("shard size 3 does not divide vocab_size = 512"));
  s.kind = SegmentKind::Attention;
  CHECK_THROWS_WITH(build_segment(cfg, s, 0), Catch::Contains("does not divide num_key_value_heads = 2"));
  s.kind = SegmentKind::Ffn;
  CHECK_THROWS_WITH(build_segment(cfg, s, 0), Catch::Contains("does not divide intermediate_size = 256"));
  CHECK_THROWS_WITH(build_segment(workload_llm("tiny-mixtral"), s, 0), Catch::Contains("does not divide num_local_experts = 4"));
  s.shard = {0, 1};
  CHECK_THROWS_WITH(build_segment(cfg, s, 2), Catch::Contains("layer must be in [0, 1]; got 2"));
  s.position = 512;
  CHECK_THROWS_WITH(build_segment(cfg, s, 0), Catch::Contains("exceeds max_positions = 512"));
  s.position = 0;
  CHECK_THROWS_WITH(build_segment(workload_llm("tiny-bert"), s, 0), Catch::Contains("encoder (non-causal); only Prefill"));
  s.shape = {Phase::Prefill, 1, 4, 2};
  CHECK_THROWS_WITH(build_segment(cfg, s, 0), Catch::Contains("shape.context must be 0 for a prefill step; got 2"));
}

TEST_CASE("llm segments: deterministic seeded weights, layers differ, shards are slices", "[llm]") {
  const LlmConfig cfg = workload_llm("tiny-gpt2");
  SegmentSpec s;
  s.kind = SegmentKind::Ffn;
  s.fill = WeightFill::Random;
  s.shape = {Phase::Prefill, 1, 2, 0};
  const auto w_up = [&](const lpu::ir::Graph& g) {
    for (const auto& t : g.tensors())
      if (t.name == "w_up") return t.const_floats();
    FAIL("no w_up");
    return std::vector<float>();
  };
  const std::vector<float> l0 = w_up(build_segment(cfg, s, 0));
  CHECK(l0 == w_up(build_segment(cfg, s, 0)));
  CHECK(l0 != w_up(build_segment(cfg, s, 1)));
  s.shard = {1, 2};
  const std::vector<float> half = w_up(build_segment(cfg, s, 0));  // columns 256..511 of [128, 512]
  REQUIRE(half.size() == 128 * 256);
  for (size_t r = 0; r < 128; r += 17) CHECK(half[r * 256 + 3] == l0[r * 512 + 256 + 3]);
}

TEST_CASE("llm segments: zero-weight graphs of 70B shapes build without per-element work", "[llm]") {
  const LlmConfig cfg = load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/llama-2-70b.json");
  SegmentSpec s;
  s.shape = {Phase::Decode, 1, 1, 512};
  s.shard = {3, 8};
  s.position = 512;
  const auto t0 = std::chrono::steady_clock::now();
  // 8 q heads, 1 kv head: q/k/v/o weights 8192 x (1024 + 2 x 128) + 1024 x 8192 f32 = 75.5 MB,
  // plus the [1152, 1152] RoPE rotate-half permutation (5.3 MB).
  const lpu::ir::Graph a = build_segment(cfg, s, 79);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t bytes = 0;
  for (const auto& t : a.tensors()) bytes += t.is_const ? t.bytes() : 0;
  WARN("llama-2-70b attention shard 3/8 decode C=512: " << bytes / 1e6 << " MB of constants in " << secs << " s");
  // Every weight above is there (the RoPE permutation included), and nothing is doubled: the rest
  // are rows (norm weights, cos/sin), tens of KB.
  const int64_t weights = (8192 * (1024 + 2 * 128) + 1024 * 8192 + 1152 * 1152) * int64_t{4};
  CHECK(bytes >= weights);
  CHECK(bytes < weights + 1000000);
  CHECK(secs < 2.0);
  CHECK(a.tensor(a.inputs()[1]).name == "k_cache_3");
}

TEST_CASE("llm segments: one layer stitched (build_layer_graph) computes the two segments chained", "[llm]") {
  // tiny-bert prefill, layer 1 (its attention starts with layer 0's closing LayerNorm): the joint
  // graph is the attention segment followed by the FFN segment on its partial, bit for bit.
  const LlmConfig cfg = workload_llm("tiny-bert");
  SegmentSpec spec;
  spec.shape = {Phase::Prefill, 1, 6, 0};
  spec.fill = WeightFill::Random;
  spec.seed = 5;
  const int64_t N = spec.shape.batch * spec.shape.tokens;
  const std::vector<float> x = uniform(static_cast<size_t>(N * cfg.hidden), 13);
  const lpu::ir::Graph joint = build_layer_graph(cfg, spec, 1);
  REQUIRE(joint.inputs().size() == 1);
  REQUIRE(joint.outputs().size() == 1);
  CHECK(joint.tensor(joint.outputs()[0]).shape == lpu::ir::Shape{N, cfg.hidden});
  const std::vector<float> whole = lpu::ref::run(joint, {Value::floats({N, cfg.hidden}, x)})[0].f;
  std::vector<float> chain = x;
  for (SegmentKind k : {SegmentKind::Attention, SegmentKind::Ffn}) {
    spec.kind = k;
    chain = lpu::ref::run(build_segment(cfg, spec, 1), {Value::floats({N, cfg.hidden}, chain)})[0].f;
  }
  REQUIRE(whole.size() == chain.size());
  CHECK(whole == chain);
  bool moved = false;  // the layer did something: its output is not its input
  for (size_t i = 0; i < x.size(); ++i) moved = moved || whole[i] != x[i];
  CHECK(moved);
  // A decode step has KV cache inputs, which a joint layer does not take.
  spec.shape = {Phase::Decode, 1, 1, 4};
  CHECK_THROWS_WITH(build_layer_graph(cfg, spec, 1), Catch::Contains("takes no KV cache"));
}
