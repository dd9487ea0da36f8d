// Functional run of an LLM step through simulated chips (see llm_functional.h).
#include "system/llm_functional.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <fmt/format.h>
#include <map>
#include <stdexcept>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "compiler/llm/collective.h"
#include "compiler/llm/weights.h"
#include "compiler/reference/chip_stored.h"
#include "sim/simulator.h"
#include "system/llm_functional_check.h"
#include "system/llm_system.h"
#include "system/prediction_check.h"
#include "system/start_rule.h"

namespace lpu::system {

namespace {

std::vector<uint8_t> to_f16_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = ir::f32_to_f16(v[i]);
    std::memcpy(&b[2 * i], &h, 2);
  }
  return b;
}
std::vector<float> from_f16_bytes(const std::vector<uint8_t>& b) {
  std::vector<float> v(b.size() / 2);
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, &b[2 * i], 2);
    v[i] = ir::f16_to_f32(h);
  }
  return v;
}

// Simulates `p` functionally; the measured cycles and stream envelopes must equal the prediction.
sim::SimResult simulate_checked(const Program& p, const std::vector<StreamEnvelope>& streams, const ChipConfig& chip,
                                sim::SimOptions opt, const std::string& what) {
  opt.mode = sim::Mode::Functional;
  sim::SimResult r = sim::simulate(p, chip, opt);
  check_prediction(r, p.predicted_cycles, &streams, "functional " + what);
  return r;
}

}  // namespace

void check_functional_size(const llm::LlmConfig& m) {
  if (m.params() > kFunctionalMaxParams)
    throw InputError(fmt::format(
        "{}: --mode functional is for small models: {} parameters exceed the functional limit of {} "
        "(kFunctionalMaxParams, system/llm_functional.h: every weight becomes a host-side graph constant and every "
        "rank's program is compiled and simulated with values); use a tiny config (workloads/llm/tiny-*.json) or "
        "--mode timing",
        m.name, m.params(), kFunctionalMaxParams));
}

llm::KvCache prefill_cache(const llm::LlmConfig& m, const FunctionalRun& prefill) {
  llm::KvCache kv;
  kv.k.assign(static_cast<size_t>(m.layers), std::vector<std::vector<float>>(static_cast<size_t>(m.kv_heads)));
  kv.v = kv.k;
  for (const PieceRecord& rec : prefill.pieces) {
    if (rec.piece.kind != llm::SegmentKind::Attention) continue;
    for (const ShardRun& sr : rec.shards)
      for (size_t o = 0; o < sr.output_names.size(); ++o) {
        const std::string& n = sr.output_names[o];
        const bool is_k = n.rfind("k_new_", 0) == 0;
        if (!is_k && n.rfind("v_new_", 0) != 0) continue;
        std::vector<float>& dst =
            (is_k ? kv.k : kv.v)[static_cast<size_t>(rec.piece.layer)][static_cast<size_t>(std::stoll(n.substr(6)))];
        // KV-head replication (tp > kv_heads, segments.h): every replica of kv head g appends the
        // same rows to its own copy of the cache; the copies must agree, bit for bit.
        if (!dst.empty() && dst != sr.outputs[o])
          throw std::logic_error(fmt::format("functional run: replicas of {} of attention layer {} differ (chip {})", n,
                                             rec.piece.layer, sr.chip));
        dst = sr.outputs[o];
      }
  }
  return kv;
}

std::vector<float> seeded_embedded_input(const llm::LlmConfig& m, int64_t rows, uint64_t seed) {
  const int64_t n = rows * m.hidden;
  // A stream of the weight generator no model tensor uses (expert index 2000 of a bias), rescaled
  // from std 0.02 to U(-1, 1) as llm::random_kv_cache does.
  std::vector<float> x = llm::weight_block(seed, 0, llm::Wt::QBias, 2000, n, 0, 1, 0, n);
  for (float& v : x) v = static_cast<float>(v / (0.02 * std::sqrt(3.0)));
  return f16_rounded(x);
}

llm::SegmentSpec functional_spec(const FunctionalRequest& req, const llm::PlanPiece& p, int64_t rank) {
  llm::SegmentSpec spec;
  spec.kind = p.kind;
  spec.shape = req.shape;
  spec.shard = llm::Shard{rank, p.shard_size};
  spec.fill = llm::WeightFill::Random;
  spec.seed = req.seed;
  spec.position = req.position;
  return spec;
}

FunctionalRun run_functional(const ChipConfig& chip, const llm::LlmConfig& m, const FunctionalRequest& req,
                             const std::vector<float>& x, const llm::KvCache* cache) {
  check_functional_size(m);
  const llm::StepShape& sh = req.shape;
  const int64_t rows = sh.batch * sh.tokens;
  if (static_cast<int64_t>(x.size()) != rows * m.hidden)
    throw InputError(fmt::format("functional run: x has {} values, the step needs B*T x hidden = {} x {}", x.size(),
                                 rows, m.hidden));
  if (sh.context > 0 && !cache)
    throw InputError("functional run: a decode step (context > 0) needs the KV cache");
  llm::PlanRequest pr;
  pr.batch = sh.batch;
  pr.prompt = std::max<int64_t>(1, sh.phase == llm::Phase::Prefill ? sh.tokens : sh.context);
  pr.context = sh.context;
  pr.chips = req.chips;
  pr.tp = req.tp;
  FunctionalRun run;
  run.plan = llm::plan_partition(m, pr, chip);
  const int64_t tp = run.plan.tp;
  // Encoders (bert) serve no LM head: the plan's last piece is their output LayerNorm alone
  // (PlanPiece::norm_only). The functional check runs the MLM head there instead (vocab columns
  // over the largest divisor of the vocab <= tp), whose graph starts with that same LayerNorm, so
  // the step ends in logits.
  for (llm::PlanPiece& p : run.plan.pieces)
    if (p.kind == llm::SegmentKind::LmHead && p.norm_only) {
      p.norm_only = false;
      p.tp = p.shard_size = llm::head_tp(m, tp);
    }
  const int64_t chips = run.plan.chips;
  // The activation each chip holds (f16 values): every chip of stage 0 gets the embedded input.
  std::vector<std::vector<float>> held(static_cast<size_t>(chips));
  for (int64_t c = 0; c < tp; ++c) held[static_cast<size_t>(c)] = f16_rounded(x);
  std::vector<std::vector<float>> logit_slices;
  std::map<std::string, llm::CollectiveProgram> collectives;  // compiled once per shape
  auto collective = [&](const std::string& key, const std::function<llm::CollectiveProgram()>& make)
      -> const llm::CollectiveProgram& {
    auto it = collectives.find(key);
    if (it == collectives.end()) it = collectives.emplace(key, make()).first;
    return it->second;
  };
  // The timing system's options (fp16 here), so the composed cycles are the timing run's.
  const compiler::CompileOptions co = piece_compile_options(llm::WeightPrecision::FP16);
  bool fault_applied = false;
  // The step composed as LlmSystem::step composes it (ChipClock): `runs` start together once the
  // previous program has ended (ready) and their streams are clear; the step ends with the last.
  ChipClock clock(chip);
  uint64_t ready = 0;
  auto compose = [&](const std::vector<ChipRun>& runs, uint64_t cycles) {
    const uint64_t o = clock.earliest(runs, ready);
    clock.place(runs, o);
    ready = o + cycles;
    run.step_cycles = ready;
  };

  for (size_t s = 0; s < run.plan.stages.size(); ++s) {
    const int64_t base = static_cast<int64_t>(s) * tp;
    const std::vector<size_t>& stage_pieces = run.plan.stages[s].pieces;
    for (size_t k = 0; k < stage_pieces.size(); ++k) {
      const size_t pi = stage_pieces[k];
      PieceRecord rec;
      rec.piece = run.plan.pieces[pi];
      const llm::PlanPiece& pp = rec.piece;
      const int64_t layer = pp.kind == llm::SegmentKind::LmHead ? 0 : pp.layer;
      uint64_t slowest = 0;
      std::vector<StreamEnvelope> envs;  // per rank (ChipRun::streams points into it)
      for (int64_t r = 0; r < pp.tp; ++r) {
        ShardRun sr;
        sr.rank = pp.part * pp.tp + r;
        sr.chip = base + r;
        sr.x = held[static_cast<size_t>(sr.chip)];
        const llm::SegmentSpec spec = functional_spec(req, pp, sr.rank);
        const ir::Graph g = llm::build_segment(m, spec, layer);
        const compiler::CompileResult cr = compiler::compile(g, chip, co);
        sim::SimOptions so;
        for (ir::TensorId in : g.inputs()) {
          const std::string& name = g.tensor(in).name;
          std::vector<uint8_t> bytes;
          if (name == "x") {
            bytes = to_f16_bytes(sr.x);
          } else {  // k_cache_<g> / v_cache_<g>: global kv head g of this layer
            const bool is_k = name.rfind("k_cache_", 0) == 0;
            if (!is_k && name.rfind("v_cache_", 0) != 0)
              throw std::logic_error("functional run: unexpected piece input '" + name + "'");
            const size_t kvh = static_cast<size_t>(std::stoll(name.substr(8)));
            const auto& src = is_k ? cache->k : cache->v;
            bytes = to_f16_bytes(src.at(static_cast<size_t>(pp.layer)).at(kvh));
          }
          compiler::bind_input(cr.program, name, bytes, &so.inputs);
        }
        const std::string what = fmt::format("{} layer {} shard {}/{}", llm::segment_kind_name(pp.kind), pp.layer, sr.rank,
                                             pp.shard_size);
        const sim::SimResult res = simulate_checked(cr.program, cr.predicted_streams, chip, so, what);
        ++run.programs;
        for (ir::TensorId out : g.outputs()) {
          sr.output_names.push_back(g.tensor(out).name);
          // In the dtype the program stores it: f16 hidden states and partials, f32 logits
          // (piece_compile_options); every value exact as a float.
          const std::vector<double> v = compiler::chip_stored(cr.program, g.tensor(out).name, res.outputs, 1.0).v;
          sr.outputs.emplace_back(v.begin(), v.end());
        }
        sr.cycles = res.cycles;
        slowest = std::max(slowest, res.cycles);
        rec.shards.push_back(std::move(sr));
        envs.push_back(res.chips.at(0).streams);
      }
      run.piece_cycles += slowest;
      std::vector<ChipRun> runs;
      for (size_t r = 0; r < rec.shards.size(); ++r)
        runs.push_back({static_cast<uint32_t>(rec.shards[r].chip), rec.shards[r].cycles, &envs[r]});
      compose(runs, slowest);
      if (pp.kind == llm::SegmentKind::LmHead) {
        for (const ShardRun& sr : rec.shards) logit_slices.push_back(sr.outputs[0]);
      } else if (tp == 1) {
        held[static_cast<size_t>(base)] = f16_rounded(rec.shards[0].outputs[0]);  // the chip's f16 store
      } else {
        // The partials, narrowed to f16 as the chip stores them, summed by the simulated all-reduce.
        const llm::CollectiveProgram& ar = collective(fmt::format("ar {} {} {}", rows, m.hidden, tp), [&] {
          return llm::compile_allreduce(rows, m.hidden, tp, chip);
        });
        sim::SimOptions so;
        for (int64_t r = 0; r < tp; ++r) {
          std::vector<float> p16 = f16_rounded(rec.shards[static_cast<size_t>(r)].outputs[0]);
          if (req.fault.piece == static_cast<int64_t>(pi) && req.fault.rank == r) {
            std::fill(p16.begin(), p16.end(), 0.f);
            fault_applied = true;
          }
          compiler::bind_input(ar.program, "partial_c" + std::to_string(r), to_f16_bytes(p16), &so.inputs);
        }
        const sim::SimResult res =
            simulate_checked(ar.program, ar.predicted_streams, chip, so, fmt::format("all-reduce after {} layer {}", llm::segment_kind_name(pp.kind), pp.layer));
        ++run.programs;
        rec.allreduce_cycles = res.cycles;
        run.collective_cycles += res.cycles;
        std::vector<ChipRun> ar_runs;
        for (int64_t r = 0; r < tp; ++r)
          ar_runs.push_back({static_cast<uint32_t>(base + r), res.cycles, &res.chips.at(static_cast<size_t>(r)).streams});
        compose(ar_runs, res.cycles);
        for (int64_t r = 0; r < tp; ++r)
          held[static_cast<size_t>(base + r)] =
              from_f16_bytes(compiler::gather_output(ar.program, "sum_c" + std::to_string(r), res.outputs));
      }
      // Stage boundary: every chip of the stage hands its activation to its counterpart.
      const bool ends_stage = k + 1 == stage_pieces.size() && s + 1 < run.plan.stages.size();
      if (ends_stage) {
        const llm::CollectiveProgram& ho = collective(fmt::format("ho {} {} {}", rows, m.hidden, tp), [&] {
          return llm::compile_handoff(rows, m.hidden, tp, chip);
        });
        std::vector<StreamEnvelope> henvs;  // sender, receiver of each pair
        for (int64_t r = 0; r < tp; ++r) {
          sim::SimOptions so;
          compiler::bind_input(ho.program, "x", to_f16_bytes(held[static_cast<size_t>(base + r)]), &so.inputs);
          const sim::SimResult res = simulate_checked(ho.program, ho.predicted_streams, chip, so, fmt::format("handoff stage {} -> {}", s, s + 1));
          ++run.programs;
          rec.handoff_cycles = res.cycles;
          held[static_cast<size_t>(base + tp + r)] = from_f16_bytes(compiler::gather_output(ho.program, "y", res.outputs));
          henvs.push_back(res.chips.at(0).streams);
          henvs.push_back(res.chips.at(1).streams);
        }
        run.collective_cycles += rec.handoff_cycles;  // the tp pairs run at once
        std::vector<ChipRun> ho_runs;
        for (int64_t r = 0; r < tp; ++r) {
          ho_runs.push_back({static_cast<uint32_t>(base + r), rec.handoff_cycles, &henvs[static_cast<size_t>(2 * r)]});
          ho_runs.push_back({static_cast<uint32_t>(base + tp + r), rec.handoff_cycles, &henvs[static_cast<size_t>(2 * r + 1)]});
        }
        compose(ho_runs, rec.handoff_cycles);
      }
      run.pieces.push_back(std::move(rec));
    }
  }
  if (req.fault.piece >= 0 && !fault_applied)
    throw InputError(fmt::format("functional run: fault piece {} rank {}: no all-reduce takes that partial (tp {}, {} "
                                 "pieces; LM heads have none)",
                                 req.fault.piece, req.fault.rank, tp, run.plan.pieces.size()));
  // Logits: the LM head slices side by side (slice j holds vocab columns j*V/n .. (j+1)*V/n - 1).
  if (!logit_slices.empty()) {
    const int64_t n = static_cast<int64_t>(logit_slices.size());
    const int64_t w = static_cast<int64_t>(logit_slices[0].size()) / rows;
    run.logits.assign(static_cast<size_t>(rows * w * n), 0.f);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t c = 0; c < w; ++c)
          run.logits[static_cast<size_t>(i * w * n + j * w + c)] = logit_slices[static_cast<size_t>(j)][static_cast<size_t>(i * w + c)];
  }
  return run;
}

}  // namespace lpu::system
