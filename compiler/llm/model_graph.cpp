// Whole-model step graph stitched from segment graphs (see model_graph.h).
#include "compiler/llm/model_graph.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "compiler/ir/shape_infer.h"

namespace lpu::llm {

using ir::TensorId;

namespace {

// Copies `src` into `dst`: src's inputs are bound to dst tensors by name (`bind`), every other
// tensor is copied under "<prefix>/<name>" (constants' data moved out of src). Returns src's
// outputs, by name, as dst tensors.
std::map<std::string, TensorId> inline_graph(ir::Graph& dst, ir::Graph& src, const std::string& prefix,
                                             const std::map<std::string, TensorId>& bind) {
  std::vector<TensorId> map(src.tensors().size(), ir::kNoTensor);
  for (TensorId t : src.inputs()) map[static_cast<size_t>(t)] = bind.at(src.tensor(t).name);
  for (TensorId id = 0; id < static_cast<TensorId>(src.tensors().size()); ++id) {
    if (map[static_cast<size_t>(id)] != ir::kNoTensor) continue;
    ir::Tensor& t = src.mutable_tensor(id);
    const std::string n = prefix + "/" + t.name;
    map[static_cast<size_t>(id)] = t.is_const ? dst.add_constant(n, t.dtype, t.shape, std::move(t.data))
                                              : dst.add_tensor(n, t.dtype, t.shape);
  }
  for (const ir::Op& o : src.ops()) {
    ir::Op c = o;
    c.name = prefix + "/" + o.name;
    for (auto& t : c.inputs) t = t == ir::kNoTensor ? t : map[static_cast<size_t>(t)];
    for (auto& t : c.outputs) t = map[static_cast<size_t>(t)];
    dst.add_op(std::move(c));
  }
  std::map<std::string, TensorId> out;
  for (TensorId t : src.outputs()) out[src.tensor(t).name] = map[static_cast<size_t>(t)];
  return out;
}

TensorId add_op(ir::Graph& g, ir::OpKind k, std::vector<TensorId> in, const std::string& name,
                std::map<std::string, ir::AttrValue> attrs = {}) {
  ir::Op o;
  o.kind = k;
  o.name = name;
  o.inputs = std::move(in);
  o.attrs = std::move(attrs);
  const auto types = ir::infer_output_types(g, o);
  o.outputs = {g.add_tensor(name, types[0].dtype, types[0].shape)};
  g.add_op(std::move(o));
  return g.ops().back().outputs[0];
}

}  // namespace

ir::Graph build_model_graph(const LlmConfig& cfg, const ModelGraphSpec& spec) {
  const StepShape& s = spec.shape;
  const int64_t N = s.batch * s.tokens;
  ir::Graph g;
  g.name = model_label(cfg) + "_model";
  TensorId x = g.add_input("x", ir::DType::F32, {N, cfg.hidden});
  std::map<std::string, TensorId> caches;  // "k_cache_l<l>_<g>"
  if (s.context > 0)
    for (int64_t l = 0; l < cfg.layers; ++l)
      for (int64_t h = 0; h < cfg.kv_heads; ++h)
        for (const char* kv : {"k", "v"}) {
          const std::string n = std::string(kv) + "_cache_l" + std::to_string(l) + "_" + std::to_string(h);
          caches[n] = g.add_input(n, ir::DType::F32, {s.batch * s.context, cfg.head_dim});
        }
  std::vector<TensorId> kv_out;
  std::set<std::string> kv_seen;  // "l<l>k_new_<g>": KV-head replication gives several shards the same kv head
  SegmentSpec seg;
  seg.shape = s;
  seg.fill = spec.fill;
  seg.seed = spec.seed;
  seg.position = spec.position;
  for (int64_t l = 0; l < cfg.layers; ++l) {
    const std::string ls = "l" + std::to_string(l);
    for (SegmentKind kind : {SegmentKind::Attention, SegmentKind::Ffn}) {
      seg.kind = kind;
      TensorId sum = ir::kNoTensor;
      for (int64_t r = 0; r < spec.shard_size; ++r) {
        seg.shard = {r, spec.shard_size};
        ir::Graph part = kind == SegmentKind::Ffn && !spec.routing.empty()
                             ? build_segment_with_routing(cfg, seg, l, spec.routing.at(static_cast<size_t>(l)))
                             : build_segment(cfg, seg, l);
        std::map<std::string, TensorId> bind{{"x", x}};
        for (TensorId t : part.inputs()) {
          const std::string& n = part.tensor(t).name;
          if (n != "x") bind[n] = caches.at(n.substr(0, 8) + ls + "_" + n.substr(8));  // k_cache_<g>
        }
        const std::string prefix = ls + (kind == SegmentKind::Ffn ? "_ffn" : "_attn") + "_r" + std::to_string(r);
        auto outs = inline_graph(g, part, prefix, bind);
        for (const auto& [n, t] : outs)  // k_new_<g> / v_new_<g>; once per kv head (replicas: the first)
          if (n != "partial" && kv_seen.insert(ls + n).second) kv_out.push_back(t);
        const TensorId p = outs.at("partial");
        sum = sum == ir::kNoTensor ? p : add_op(g, ir::OpKind::Add, {sum, p}, prefix + "/sum");
      }
      x = sum;
    }
  }
  seg.kind = SegmentKind::LmHead;
  std::vector<TensorId> slices;
  for (int64_t r = 0; r < spec.shard_size; ++r) {
    seg.shard = {r, spec.shard_size};
    ir::Graph part = build_segment(cfg, seg, 0);
    slices.push_back(inline_graph(g, part, "head_r" + std::to_string(r), {{"x", x}}).at("logits"));
  }
  const TensorId logits = slices.size() == 1 ? slices[0]
                                             : add_op(g, ir::OpKind::Concat, slices, "logits", {{"axis", int64_t{1}}});
  g.mark_output(logits);
  std::sort(kv_out.begin(), kv_out.end());  // creation order: layer, then kv head, k before v
  for (TensorId t : kv_out) g.mark_output(t);
  g.validate();
  return g;
}

ir::Graph build_layer_graph(const LlmConfig& cfg, SegmentSpec seg, int64_t layer) {
  if (seg.shape.context != 0)
    throw std::logic_error("build_layer_graph: a joint layer takes no KV cache (context " +
                           std::to_string(seg.shape.context) + ", needs 0)");
  ir::Graph g;
  g.name = model_label(cfg) + "_layer" + std::to_string(layer);
  TensorId x = g.add_input("x", ir::DType::F32, {seg.shape.batch * seg.shape.tokens, cfg.hidden});
  for (SegmentKind kind : {SegmentKind::Attention, SegmentKind::Ffn}) {
    seg.kind = kind;
    ir::Graph part = build_segment(cfg, seg, layer);
    x = inline_graph(g, part, kind == SegmentKind::Ffn ? "ffn" : "attn", {{"x", x}}).at("partial");
  }
  g.mark_output(x);
  g.validate();
  return g;
}

}  // namespace lpu::llm
