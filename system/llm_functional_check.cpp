// Boundary-by-boundary precision check of a functional LLM run (see llm_functional_check.h).
#include "system/llm_functional_check.h"

#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <map>
#include <stdexcept>

#include "compiler/ir/dtype.h"
#include "compiler/reference/error_bound.h"
#include "compiler/reference/interpreter.h"

namespace lpu::system {

namespace {

constexpr double kU16 = ref::kUnitF16;
constexpr double kF16Sub = ref::kF16Subnormal;


ref::Value zeros_like(const ir::Shape& s) {
  return ref::Value::floats(s, std::vector<float>(static_cast<size_t>(ir::num_elements(s)), 0.f));
}

// Outputs of `g` by name, with their bounds.
struct Bounded {
  std::map<std::string, ref::Value> value, bound;
};

// The running bound of `g` evaluated as the chip stores it (see the header): inputs with the given
// values (f16) and errors; weights (MatMul/Gemm B constants) rounded to f16 with their rounding as
// error; other constants f32 and exact; hidden float results f16; graph outputs f32.
Bounded chip_side_bound(const ir::Graph& g, const std::vector<ref::Value>& in_vals,
                        const std::vector<ref::Value>& in_errs) {
  const size_t nt = g.tensors().size();
  std::vector<ref::Value> vals(nt), errs(nt);
  std::vector<char> weight(nt, 0), is_out(nt, 0);
  for (const ir::Op& op : g.ops())
    if ((op.kind == ir::OpKind::MatMul || op.kind == ir::OpKind::Gemm) && op.inputs.size() > 1 &&
        op.inputs[1] != ir::kNoTensor)
      weight[static_cast<size_t>(op.inputs[1])] = 1;
  for (ir::TensorId t : g.outputs()) is_out[static_cast<size_t>(t)] = 1;
  for (size_t k = 0; k < nt; ++k) {
    const ir::Tensor& t = g.tensors()[k];
    if (!t.is_const) continue;
    vals[k] = ref::Value::from_constant(t);
    errs[k] = zeros_like(t.shape);
    if (weight[k] && t.dtype == ir::DType::F32)
      for (size_t j = 0; j < vals[k].f.size(); ++j) {
        const float w = vals[k].f[j], r = ir::round_f16(w);
        vals[k].f[j] = r;
        errs[k].f[j] = std::fabs(w - r);
      }
  }
  for (size_t k = 0; k < g.inputs().size(); ++k) {
    vals[static_cast<size_t>(g.inputs()[k])] = in_vals[k];
    errs[static_cast<size_t>(g.inputs()[k])] = in_errs[k];
  }
  std::vector<const ref::Value*> vin, ein;
  for (const ir::Op& op : g.ops()) {
    vin.clear();
    ein.clear();
    for (ir::TensorId t : op.inputs) {
      vin.push_back(t == ir::kNoTensor ? nullptr : &vals[static_cast<size_t>(t)]);
      ein.push_back(t == ir::kNoTensor ? nullptr : &errs[static_cast<size_t>(t)]);
    }
    std::vector<ir::TensorType> types;
    for (ir::TensorId t : op.outputs) {
      const ir::Tensor& tt = g.tensor(t);
      const bool f16 = tt.dtype == ir::DType::F32 && !is_out[static_cast<size_t>(t)];
      types.push_back({f16 ? ir::DType::F16 : tt.dtype, tt.shape});
    }
    std::vector<ref::Value> outs = ref::eval_op_typed(op, types, vin);
    std::vector<ref::Value> E = ref::op_error_bound(op, vin, ein, outs);  // + 2^-11 |y| + 2^-25 for f16 results
    for (size_t k = 0; k < outs.size(); ++k) {
      if (outs[k].dtype == ir::DType::F16)
        for (size_t j = 0; j < E[k].f.size(); ++j)
          E[k].f[j] = static_cast<float>(E[k].f[j] + ref::internal_f16_roundings(op.kind) * kU16 * std::fabs(outs[k].f[j]));
      vals[static_cast<size_t>(op.outputs[k])] = std::move(outs[k]);
      errs[static_cast<size_t>(op.outputs[k])] = std::move(E[k]);
    }
  }
  Bounded b;
  for (ir::TensorId t : g.outputs()) {
    b.value[g.tensor(t).name] = vals[static_cast<size_t>(t)];
    b.bound[g.tensor(t).name] = errs[static_cast<size_t>(t)];
  }
  return b;
}

// Graph inputs of a segment: x, then the cache rows of its kv heads (by name).
std::vector<ref::Value> segment_inputs(const ir::Graph& g, const std::vector<float>& x, const llm::KvCache* cache,
                                       int64_t layer, ir::DType x_type) {
  std::vector<ref::Value> in;
  for (ir::TensorId t : g.inputs()) {
    const ir::Tensor& tt = g.tensor(t);
    if (tt.name == "x") {
      in.push_back(ref::Value::floats(tt.shape, x, x_type));
      continue;
    }
    const bool is_k = tt.name.rfind("k_cache_", 0) == 0;
    const size_t kvh = static_cast<size_t>(std::stoll(tt.name.substr(8)));
    const auto& src = is_k ? cache->k : cache->v;
    in.push_back(ref::Value::floats(tt.shape, src.at(static_cast<size_t>(layer)).at(kvh), x_type));
  }
  return in;
}

BoundaryCheck compare(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                      const std::vector<double>& bound) {
  if (got.size() != want.size() || got.size() != bound.size())
    throw std::logic_error(fmt::format("functional check '{}': {} values against {} reference values, {} bounds", what,
                                       got.size(), want.size(), bound.size()));
  BoundaryCheck c;
  c.what = what;
  c.elements = static_cast<int64_t>(got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]), b = bound[i];
    c.max_ref = std::max(c.max_ref, std::fabs(static_cast<double>(want[i])));
    if (!(err <= c.max_err)) c.max_err = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
    if (!std::isfinite(b)) {
      ++c.unbounded;
      continue;
    }
    c.max_bound = std::max(c.max_bound, b);
    if (!(err <= b)) ++c.outside;
    if (err > 0) c.worst_ratio = std::max(c.worst_ratio, b > 0 ? err / b : std::numeric_limits<double>::infinity());
  }
  return c;
}

std::vector<double> as_double(const ref::Value& v) { return std::vector<double>(v.f.begin(), v.f.end()); }

}  // namespace

bool FunctionalCheck::ok() const {
  for (const BoundaryCheck& c : checks)
    if (!c.ok()) return false;
  return !checks.empty();
}

const BoundaryCheck* FunctionalCheck::first_failure() const {
  for (const BoundaryCheck& c : checks)
    if (!c.ok()) return &c;
  return nullptr;
}

std::vector<float> f16_rounded(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = ir::round_f16(v[i]);
  return r;
}

llm::KvCache f16_rounded(const llm::KvCache& c) {
  llm::KvCache r = c;
  for (auto* side : {&r.k, &r.v})
    for (auto& layer : *side)
      for (auto& head : layer) head = f16_rounded(head);
  return r;
}

FunctionalCheck check_functional(const llm::LlmConfig& m, const FunctionalRequest& req, const FunctionalRun& run,
                                 const std::vector<float>& x, const llm::KvCache* cache, const llm::KvCache* ref_cache) {
  FunctionalCheck res;
  const std::vector<float> x16 = f16_rounded(x);
  llm::KvCache cache16;
  if (cache) cache16 = f16_rounded(*cache);
  const llm::KvCache* chip_cache = cache ? &cache16 : nullptr;           // what the chips read
  const llm::KvCache* cp = cache && ref_cache ? ref_cache : chip_cache;  // what the reference reads
  llm::KvCache new_kv;
  std::vector<std::vector<float>> seg_in;
  std::vector<llm::Routing> routing;
  res.reference_logits =
      llm::reference_forward(m, req.shape, req.seed, x16, cp, req.position, &new_kv, &routing, &seg_in);
  // The graph whose bound is taken. MoE Ffn: the expert selection is a step function (infinite
  // bound by construction), so the bound is that of the same graph with the REFERENCE's selection
  // as constant masks (llm::build_segment_with_routing; bit-identical outputs for the same
  // selection, docs/llm.md). If the chip selected other experts for a row, that row's output misses
  // or adds a whole expert's contribution and falls outside the bound.
  auto bound_graph = [&](const llm::SegmentSpec& spec, int64_t layer) {
    if (m.experts > 0 && spec.kind == llm::SegmentKind::Ffn)
      return llm::build_segment_with_routing(m, spec, layer, routing.at(static_cast<size_t>(layer)));
    return llm::build_segment(m, spec, layer);
  };
  const int64_t rows = req.shape.batch * req.shape.tokens, hidden = m.hidden;
  const int64_t vocab = static_cast<int64_t>(res.reference_logits.size()) / rows;
  std::vector<double> in_bound(static_cast<size_t>(rows * hidden), 0.0);  // |x_chip - x_ref| bound, stage 0: exact
  std::vector<double> logits_chip(static_cast<size_t>(rows * vocab), std::numeric_limits<double>::infinity());
  std::vector<double> logits_ref_bound;
  for (const PieceRecord& rec : run.pieces) {
    const llm::PlanPiece& pp = rec.piece;
    const bool head = pp.kind == llm::SegmentKind::LmHead;
    const int64_t layer = head ? 0 : pp.layer;
    const size_t si = head ? static_cast<size_t>(2 * m.layers)
                           : static_cast<size_t>(2 * pp.layer + (pp.kind == llm::SegmentKind::Ffn ? 1 : 0));
    const std::vector<float>& x_ref = seg_in.at(si);
    const std::string piece_name = head ? std::string("lm_head") : fmt::format("{} layer {}", llm::segment_kind_name(pp.kind), pp.layer);
    for (const ShardRun& sr : rec.shards)
      res.checks.push_back(compare(fmt::format("input of {} on chip {}", piece_name, sr.chip), sr.x, x_ref, in_bound));
    // Reference side: the unsharded segment's fp32 bound on the reference's input (once per piece).
    Bounded refb;
    if (!head || logits_ref_bound.empty()) {
      llm::SegmentSpec full = functional_spec(req, pp, 0);
      full.shard = llm::Shard{0, 1};
      const ir::Graph gf = bound_graph(full, layer);
      std::vector<ref::Value> bounds;
      ref::run_with_error_bound(gf, segment_inputs(gf, x_ref, cp, layer, ir::DType::F32), &bounds);
      for (size_t o = 0; o < gf.outputs().size(); ++o) refb.bound[gf.tensor(gf.outputs()[o]).name] = bounds[o];
      if (head) logits_ref_bound = as_double(refb.bound.at("logits"));
    }
    // Chip side, per shard, from the chip's own input with the measured input difference as error.
    std::vector<double> next(static_cast<size_t>(rows * hidden), 0.0), sum_abs(next.size(), 0.0);
    if (!head) next = as_double(refb.bound.at("partial"));
    for (const ShardRun& sr : rec.shards) {
      const ir::Graph g = bound_graph(functional_spec(req, pp, sr.rank), layer);
      std::vector<ref::Value> vals = segment_inputs(g, sr.x, chip_cache, layer, ir::DType::F16), errs;
      const std::vector<ref::Value> refv = segment_inputs(g, x_ref, cp, layer, ir::DType::F32);
      for (size_t k = 0; k < vals.size(); ++k) {  // the measured input differences (x; cache if not shared)
        errs.push_back(zeros_like(vals[k].shape));
        for (size_t j = 0; j < vals[k].f.size(); ++j) errs[k].f[j] = std::fabs(vals[k].f[j] - refv[k].f[j]);
      }
      const Bounded cb = chip_side_bound(g, vals, errs);
      for (size_t o = 0; o < g.outputs().size(); ++o) {
        const std::string& name = g.tensor(g.outputs()[o]).name;
        const std::vector<float>& got = sr.outputs.at(o);
        const std::vector<float>& b = cb.bound.at(name).f;
        if (name == "partial") {
          for (size_t j = 0; j < next.size(); ++j) {
            const double p16 = std::fabs(ir::round_f16(got[j]));
            next[j] += b[j] + kU16 * p16 + kF16Sub;  // the piece's bound + its f16 narrowing
            sum_abs[j] += p16;
          }
        } else if (name == "logits") {
          const int64_t w = vocab / pp.shard_size;
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t c = 0; c < w; ++c)
              logits_chip[static_cast<size_t>(i * vocab + sr.rank * w + c)] = b[static_cast<size_t>(i * w + c)];
        } else {  // k_new_<g> / v_new_<g>: the rows appended to the cache
          const bool is_k = name.rfind("k_new_", 0) == 0;
          const size_t kvh = static_cast<size_t>(std::stoll(name.substr(6)));
          const auto& want = (is_k ? new_kv.k : new_kv.v).at(static_cast<size_t>(pp.layer)).at(kvh);
          std::vector<double> bound(b.begin(), b.end());
          const std::vector<float>& rb = refb.bound.at(name).f;
          for (size_t j = 0; j < bound.size(); ++j) bound[j] += rb[j];
          res.checks.push_back(compare(fmt::format("{} of {} (shard {})", name, piece_name, sr.rank), got, want, bound));
        }
      }
    }
    if (!head) {
      if (pp.tp > 1)  // the all-reduce's tp - 1 f16 adds, each rounding a sum no larger than sum_r |p_r|
        for (size_t j = 0; j < next.size(); ++j)
          next[j] += static_cast<double>(pp.tp - 1) * (kU16 * sum_abs[j] + kF16Sub);
      in_bound = next;
    }
  }
  res.logits_bound = logits_chip;
  for (size_t j = 0; j < res.logits_bound.size() && j < logits_ref_bound.size(); ++j)
    res.logits_bound[j] += logits_ref_bound[j];
  res.checks.push_back(compare("logits", run.logits, res.reference_logits, res.logits_bound));
  return res;
}

}  // namespace lpu::system
