// KV-head replication (issue 5: tensor parallel wider than the kv heads, compiler/llm/segments.h):
// with a shard size s = rep x kv_heads, shard r holds a copy of kv head r / rep and group / rep of
// its query heads. Checked here: (a) on the reference interpreter, the replicated shards' summed
// "partial" equals the one-shard graph's output within their fp32 error bounds, and replicas write
// bit-identical k_new / v_new; (b) the functional multi-chip run (values through the simulated
// chips, system/llm_functional.h) at tp 4 and 8 > kv_heads 2 passes its boundary check against the
// Eigen reference; (c) the planner's divisibility rule (valid_tp) and its SRAM mirror of a
// replicated Llama-2 70B attention piece (piece_sram_need) against the compiled piece.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <map>
#include <set>
#include <string>

#include "compiler/compile.h"
#include "compiler/llm/model_graph.h"
#include "compiler/llm/partition.h"
#include "compiler/llm/segments.h"
#include "compiler/reference/error_bound.h"
#include "compiler/reference/interpreter.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_functional.h"
#include "system/llm_functional_check.h"
#include "system/llm_system.h"
#include "tests/support/cli.h"
#include "tests/support/llm_piece_sram.h"
#include "tests/support/process.h"
#include "tests/support/uniform.h"
#include "tests/support/llm_workloads.h"

using namespace lpu;
using lpu::test::workload_llm;
using lpu::ref::Value;

namespace {


std::shared_ptr<const ChipConfig> tsp() {
  return load_chip_config(std::string(LPU_SOURCE_DIR) + "/workloads/chips/tsp-v1.yaml");
}

constexpr double kU32 = 1.0 / 16777216.0;

// One attention segment over `shards` shards on the interpreter: summed partial with its bound
// (shard bounds + u |sum| per fp32 add), and every shard's k_new / v_new by name.
struct Sharded {
  std::vector<float> partial, bound;
  std::map<std::string, std::vector<std::pair<Value, Value>>> kv;  // "k_new_<g>" -> (value, bound) per replica
  std::map<int64_t, std::vector<int64_t>> q_heads;                  // rank -> query heads (its wo_<h> weights)
};

Sharded run_attention(const llm::LlmConfig& m, llm::SegmentSpec spec, int64_t layer, int64_t shards,
                      const std::vector<float>& x, const llm::KvCache& cache) {
  const int64_t N = spec.shape.batch * spec.shape.tokens;
  Sharded r;
  for (int64_t rank = 0; rank < shards; ++rank) {
    spec.shard = {rank, shards};
    const ir::Graph g = llm::build_segment(m, spec, layer);
    std::vector<Value> in;
    for (ir::TensorId t : g.inputs()) {
      const std::string& n = g.tensor(t).name;
      if (n == "x") {
        in.push_back(Value::floats({N, m.hidden}, x));
      } else {
        const auto& src = n[0] == 'k' ? cache.k : cache.v;
        in.push_back(Value::floats(g.tensor(t).shape, src.at(layer).at(static_cast<size_t>(std::stoll(n.substr(8))))));
      }
    }
    for (const ir::Tensor& t : g.tensors())
      if (t.is_const && t.name.rfind("wo_", 0) == 0) r.q_heads[rank].push_back(std::stoll(t.name.substr(3)));
    std::vector<Value> bounds;
    const std::vector<Value> outs = ref::run_with_error_bound(g, in, &bounds);
    for (size_t o = 0; o < outs.size(); ++o) {
      const std::string& n = g.tensor(g.outputs()[o]).name;
      if (n != "partial") {
        r.kv[n].push_back({outs[o], bounds[o]});
      } else if (r.partial.empty()) {
        r.partial = outs[o].f;
        r.bound = bounds[o].f;
      } else {
        for (size_t k = 0; k < r.partial.size(); ++k) {
          r.partial[k] += outs[o].f[k];
          r.bound[k] = static_cast<float>(r.bound[k] + bounds[o].f[k] + kU32 * std::fabs(r.partial[k]));
        }
      }
    }
  }
  return r;
}

// |a - b| <= bound_a + bound_b element-wise (both within their bounds of exact arithmetic), bounds
// finite and small against the values; returns the largest |a - b|.
double require_close(const std::vector<float>& a, const std::vector<float>& ba, const std::vector<float>& b,
                     const std::vector<float>& bb, const std::string& what) {
  REQUIRE(a.size() == b.size());
  double max_err = 0, max_b = 0, scale = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    const double err = std::fabs(static_cast<double>(a[k]) - b[k]), bound = static_cast<double>(ba[k]) + bb[k];
    INFO(what << " element " << k << ": " << a[k] << " vs " << b[k] << " bound " << bound);
    REQUIRE(std::isfinite(bound));
    REQUIRE(err <= bound);
    max_err = std::max(max_err, err);
    max_b = std::max(max_b, bound);
    scale = std::max(scale, std::fabs(static_cast<double>(b[k])));
  }
  CHECK(max_b < 1e-3 * scale);  // a bound that says something (a lost head changes values by O(scale))
  return max_err;
}

using lpu::test::uniform;

}  // namespace

TEST_CASE("kv replication: shards wider than the kv heads sum to the one-shard attention, replicas' k/v agree",
          "[llm][kvrep]") {
  const llm::LlmConfig m = workload_llm("tiny-gqa");
  REQUIRE(m.heads == 8);
  REQUIRE(m.kv_heads == 2);
  double worst = 0;
  for (const llm::StepShape shape : {llm::StepShape{llm::Phase::Decode, 2, 1, 5}, llm::StepShape{llm::Phase::Prefill, 1, 4, 0},
                                     llm::StepShape{llm::Phase::Decode, 1, 3, 4}}) {
    llm::SegmentSpec spec;
    spec.kind = llm::SegmentKind::Attention;
    spec.shape = shape;
    spec.fill = llm::WeightFill::Random;
    spec.seed = 7;
    spec.position = shape.context;
    const std::vector<float> x = uniform(static_cast<size_t>(shape.batch * shape.tokens * m.hidden), 11);
    const llm::KvCache cache = llm::random_kv_cache(m, shape, 13);
    for (int64_t layer = 0; layer < m.layers; ++layer) {
      const Sharded one = run_attention(m, spec, layer, 1, x, cache);
      for (int64_t shards : {4, 8}) {
        const std::string what = fmt::format("layer {} B{} T{} C{} over {} shards", layer, shape.batch, shape.tokens,
                                             shape.context, shards);
        INFO(what);
        const Sharded s = run_attention(m, spec, layer, shards, x, cache);
        // Every query head exactly once; shard r's heads are of kv head r / rep.
        const int64_t rep = shards / m.kv_heads, qg = m.heads / shards, group = m.heads / m.kv_heads;
        std::set<int64_t> all;
        for (const auto& [rank, hs] : s.q_heads) {
          REQUIRE(static_cast<int64_t>(hs.size()) == qg);
          for (int64_t h : hs) {
            CHECK(h / group == rank / rep);
            CHECK(all.insert(h).second);
          }
        }
        CHECK(static_cast<int64_t>(all.size()) == m.heads);
        const double err = require_close(s.partial, s.bound, one.partial, one.bound, what + " partial");
        // k_new / v_new: rep identical copies of each kv head, each equal to the one-shard graph's
        // within the bounds (bit-equal here: the same dot products, RoPE's rotate-half exact).
        REQUIRE(s.kv.size() == 2 * static_cast<size_t>(m.kv_heads));
        for (const auto& [name, copies] : s.kv) {
          REQUIRE(static_cast<int64_t>(copies.size()) == rep);
          for (const auto& c : copies) CHECK(c.first.f == copies[0].first.f);
          const auto& o = one.kv.at(name).at(0);
          require_close(copies[0].first.f, copies[0].second.f, o.first.f, o.second.f, what + " " + name);
        }
        worst = std::max(worst, err);
      }
    }
  }
  WARN("tiny-gqa attention over 4 and 8 replicated shards: max |sum of partials - one shard| " << worst);
}

TEST_CASE("kv replication: shard sizes that neither divide the kv heads nor replicate them are refused",
          "[llm][kvrep]") {
  const llm::LlmConfig m = workload_llm("tiny-gqa");  // 8 heads, 2 kv heads
  llm::SegmentSpec s;
  s.kind = llm::SegmentKind::Attention;
  s.shape = {llm::Phase::Decode, 1, 1, 4};
  s.position = 4;
  for (int64_t size : {3, 6, 16}) {
    s.shard = {0, size};
    CHECK_THROWS_WITH(llm::build_segment(m, s, 0),
                      Catch::Contains("tiny-gqa: attention segment: shard size " + std::to_string(size) +
                                      " does not divide num_key_value_heads = 2") &&
                          Catch::Contains("allowed: a divisor of 2, or (kv-head replication) a multiple of 2 dividing 8"));
  }
  // The stitched whole-step graph keeps one k_new / v_new per layer and kv head (the first replica's).
  llm::ModelGraphSpec ms;
  ms.shape = s.shape;
  ms.shard_size = 8;
  ms.position = 4;
  CHECK(llm::build_model_graph(m, ms).outputs().size() == 1 + 2 * static_cast<size_t>(m.layers * m.kv_heads));
  // Replicated shards read and write their kv head under its GLOBAL name.
  s.shard = {5, 8};
  const ir::Graph g = llm::build_segment(m, s, 1);
  REQUIRE(g.inputs().size() == 3);
  CHECK(g.tensor(g.inputs()[1]).name == "k_cache_1");
  CHECK(g.tensor(g.inputs()[2]).name == "v_cache_1");
  REQUIRE(g.outputs().size() == 3);
  CHECK(g.tensor(g.outputs()[1]).name == "k_new_1");
  CHECK(g.tensor(g.outputs()[2]).name == "v_new_1");
}

TEST_CASE("kv replication: functional run on 4 and 8 chips (tp > kv_heads) matches the Eigen reference",
          "[llm][kvrep][functional]") {
  const llm::LlmConfig m = workload_llm("tiny-gqa");
  auto chip = default_chip_config();
  for (int64_t tp : {4, 8}) {
    // Prefill on tp chips, then decode on the K/V the chips wrote (every replica's copy agreed:
    // prefill_cache throws otherwise).
    system::FunctionalRequest pre;
    pre.shape = {llm::Phase::Prefill, 1, 4, 0};
    pre.seed = 3;
    pre.chips = tp;
    pre.tp = tp;
    const std::vector<float> prompt = system::seeded_embedded_input(m, 4, 21);
    const system::FunctionalRun p = system::run_functional(*chip, m, pre, prompt, nullptr);
    REQUIRE(p.plan.tp == tp);
    const system::FunctionalCheck pc = system::check_functional(m, pre, p, prompt, nullptr);
    const llm::KvCache chip_cache = system::prefill_cache(m, p);
    llm::KvCache ref_cache;
    llm::reference_forward(m, pre.shape, pre.seed, prompt, nullptr, 0, &ref_cache);
    system::FunctionalRequest dec = pre;
    dec.shape = {llm::Phase::Decode, 1, 1, 4};
    dec.position = 4;
    const std::vector<float> x = system::seeded_embedded_input(m, 1, 22);
    const system::FunctionalRun d = system::run_functional(*chip, m, dec, x, &chip_cache);
    const system::FunctionalCheck dc = system::check_functional(m, dec, d, x, &chip_cache, &ref_cache);
    int kv_checks = 0;
    for (const system::FunctionalCheck* c : {&pc, &dc}) {
      for (const system::BoundaryCheck& b : c->checks) {
        INFO("tp " << tp << ": " << b.what << ": max err " << b.max_err << ", max bound " << b.max_bound << ", outside "
                   << b.outside << ", unbounded " << b.unbounded);
        CHECK(b.ok());
        kv_checks += b.what.rfind("k_new_", 0) == 0;
      }
      CHECK(c->logits().max_bound < 0.1 * c->logits().max_ref);
    }
    // Every replica's k_new was checked: per step, layers x tp shards (one kv head each).
    CHECK(kv_checks == 2 * m.layers * tp);
    // The programs whose values were checked take the cycles the timing mode composes.
    system::LlmSystem sys(*chip, m, d.plan);
    CHECK(d.step_cycles == sys.step(dec.shape).cycles);
    WARN("tiny-gqa tp " << tp << " (kv heads 2, replicated x" << tp / 2 << "): decode logits max |chip - reference| "
                        << dc.logits().max_err << ", bound " << dc.logits().max_bound << "; " << d.step_cycles
                        << " cycles");
  }
}

TEST_CASE("kv replication: lpusim llm --mode functional on 8 chips of a 2-kv-head model", "[llm][kvrep][functional]") {
  const std::string out = (std::filesystem::temp_directory_path() /
                           ("lpusim_kvrep_" + std::to_string(::getpid()) + ".txt")).string();
  const ProcessResult r = run_process(lpusim_exe(), {"llm", "tiny-gqa", "--mode", "functional", "--chips", "8", "--prompt", "4"},
                                      out, std::chrono::seconds(120), Stderr::ToOutput);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("on 8 chip(s) = tp 8 x 1 stage(s)") != std::string::npos);
  CHECK(r.output.find("FAILED") == std::string::npos);
  std::filesystem::remove(out);
}

TEST_CASE("kv replication: valid_tp accepts multiples of the kv heads that divide the heads", "[llm][kvrep]") {
  const auto chip = tsp();
  const llm::LlmConfig l70 = workload_llm("llama-2-70b");  // 64 heads, 8 kv heads
  ChipConfig node = *chip;  // reach of one node (8 chips): what valid_tp allowed before the multi-node all-reduce
  node.nodes_per_rack = 1;
  CHECK(llm::valid_tp(l70, node) == std::vector<int64_t>{1, 2, 4, 8});
  // Over the nodes of a rack (72 chips): 16, 32 and 64 replicate each kv head 2, 4 and 8 times.
  CHECK(llm::valid_tp(l70, *chip) == std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64});
  CHECK(llm::valid_tp(workload_llm("tiny-gqa"), *chip) == std::vector<int64_t>{1, 2, 4, 8});  // 8 heads, 2 kv heads
  CHECK(llm::valid_tp(workload_llm("tiny-llama"), *chip) == std::vector<int64_t>{1, 2, 4});   // 4 heads, 2 kv heads
  // MoE: 8 experts, ffn 14336: 16 and 32 split each expert's columns over 2 and 4 shards.
  CHECK(llm::valid_tp(workload_llm("mixtral-8x7b"), *chip) == std::vector<int64_t>{1, 2, 4, 8, 16, 32});
  // MHA: every kv head has one query head, nothing to replicate.
  CHECK(llm::valid_tp(workload_llm("tiny-gpt2"), *chip) == std::vector<int64_t>{1, 2, 4});
}

namespace {

llm::SegmentSpec decode_attention(int64_t context, int64_t rank, int64_t size) {
  llm::SegmentSpec s;
  s.kind = llm::SegmentKind::Attention;
  s.shape = {llm::Phase::Decode, 1, 1, context};
  s.shard = {rank, size};
  s.position = context;
  s.o_proj_cast = true;  // int8, as LlmSystem builds it
  return s;
}

}  // namespace

TEST_CASE("kv replication: piece_sram_need mirrors the compiled llama-2-70b attention piece at shard 8, 16 and 64",
          "[llm][kvrep][fit][heavy]") {
  // Byte for byte: the planner's need (without the working set) is the allocator's weight tiles
  // ('.W.g': projections, RoPE permutation, the identity copies of views), the int8 per-column
  // scale rows ('.scale'), the KV cache inputs and the K / V Concats of cache + new row.
  const llm::LlmConfig m = workload_llm("llama-2-70b");
  const auto chip = tsp();
  for (const auto& [size, precision] : std::vector<std::pair<int64_t, llm::WeightPrecision>>{
           {8, llm::WeightPrecision::INT8}, {16, llm::WeightPrecision::INT8}, {64, llm::WeightPrecision::INT8},
           {16, llm::WeightPrecision::FP16}}) {
    const bool q8 = precision == llm::WeightPrecision::INT8;
    INFO("shard size " << size << " " << llm::precision_name(precision));
    llm::PlanRequest req;
    req.precision = precision;
    req.context = 4095;
    llm::SegmentSpec spec = decode_attention(req.context, 1, size);
    spec.o_proj_cast = q8;
    const ir::Graph g = llm::build_segment(m, spec, 0);
    compiler::CompileResult cr;
    REQUIRE_NOTHROW(cr = compiler::compile(g, *chip, system::piece_compile_options(precision)));
    llm::PlanPiece a;
    a.kind = llm::SegmentKind::Attention;
    a.tp = a.shard_size = size;
    const uint64_t need = llm::piece_sram_need(m, req, a, *chip);
    if (std::getenv("LPU_KVREP_MAP"))
      std::ofstream(fmt::format("{}.{}.{}", std::getenv("LPU_KVREP_MAP"), size, llm::precision_name(precision))) << cr.memory_map;
    const test::MirroredSram got = test::mirrored_sram(g, cr.memory_map);
    CHECK(got.concat_ops == 2);                      // K and V of the one kv head
    CHECK(got.concats == 2 * 4096 * 320 * 2);        // [4096, 128] f16, one 320-lane vector per row
    CHECK(got.caches == 2 * 4095 * 320 * 2);         // its cache inputs, 4,095 rows
    CHECK((got.scales > 0) == q8);
    CHECK(need == got.total());
    WARN("llama-2-70b " << llm::precision_name(precision) << " attention shard 1/" << size
                        << " C4095: piece_sram_need " << need << " B = allocator: weight tiles " << got.weights
                        << " + cache inputs " << got.caches << " + scales " << got.scales << " + K/V concats "
                        << got.concats << " B; " << cr.program.predicted_cycles
                        << " cycles");
  }
}

// Measurement (hidden): compiled cycles of Llama-2 70B int8 decode pieces (rank 0, context
// LPU_KVREP_CONTEXT, default 4095) for attention at shard sizes 8 and 16 and the FFN at 16 and
// 64; LPU_KVREP_MAP=<file> writes the attention memory maps there (suffixed by the shard size).
TEST_CASE("kv replication: llama-2-70b int8 piece cycles at wide shard sizes (measurement)", "[.][llm][kvrep]") {
  const llm::LlmConfig m = workload_llm("llama-2-70b");
  const auto chip = tsp();
  const int64_t ctx = std::getenv("LPU_KVREP_CONTEXT") ? std::atoll(std::getenv("LPU_KVREP_CONTEXT")) : 4095;
  const auto opt = system::piece_compile_options(llm::WeightPrecision::INT8);
  for (const auto& [kind, size] : std::vector<std::pair<llm::SegmentKind, int64_t>>{
           {llm::SegmentKind::Attention, 8}, {llm::SegmentKind::Attention, 16}, {llm::SegmentKind::Ffn, 16},
           {llm::SegmentKind::Ffn, 64}}) {
    llm::SegmentSpec s = decode_attention(ctx, 0, size);
    s.kind = kind;
    const compiler::CompileResult cr = compiler::compile(llm::build_segment(m, s, 0), *chip, opt);
    sim::SimOptions so;
    so.mode = sim::Mode::Timing;
    const uint64_t measured = sim::simulate(cr.program, *chip, so).cycles;
    CHECK(measured == cr.program.predicted_cycles);
    if (kind == llm::SegmentKind::Attention && std::getenv("LPU_KVREP_MAP"))
      std::ofstream(std::string(std::getenv("LPU_KVREP_MAP")) + "." + std::to_string(size)) << cr.memory_map;
    fmt::print("llama-2-70b int8 {} decode C{} shard 0/{}: predicted {} simulated {} cycles\n",
               llm::segment_kind_name(kind), ctx, size, cr.program.predicted_cycles, measured);
  }
}
