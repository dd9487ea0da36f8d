// The compiler driver: lowering -> tiling/SRAM allocation -> matmul scheduling -> emission.
#include "compiler/compile.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <thread>
#include <stdexcept>
#include <fmt/format.h>

#include "compiler/backend/schedule_builder.h"
#include "compiler/passes/emission.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/schedule.h"
#include "compiler/passes/sram_alloc.h"

namespace lpu::compiler {

namespace {

// One scheduling of a lowered model: its builder (the placed instructions), SRAM map and result.
struct Scheduled {
  std::unique_ptr<ScheduleBuilder> b;
  std::unique_ptr<SramAllocator> alloc;
  ScheduledModel sm;
  std::exception_ptr error;
};

// Schedules the model once with `tiling` on a fresh builder and allocator; an error is kept in
// Scheduled::error (rethrown by the caller that owns the layout).
Scheduled schedule_layout(const ir::Graph& g, const LoweredModel& lm, const ChipConfig& cfg, const CompileOptions& opt,
                          const QuantPlan* quant, const TilingOptions& tiling) {
  Scheduled s;
  try {
    s.b = std::make_unique<ScheduleBuilder>(cfg);
    s.alloc = std::make_unique<SramAllocator>(cfg);
    s.sm = schedule_model(g, lm, *s.b, *s.alloc, tiling, opt.keep_intermediates, quant, opt.matmul_replay.get());
  } catch (...) {
    s.error = std::current_exception();
  }
  return s;
}

// True if a further layout's scheduling `s` is to be passed over: it does not fit (InputError).
// Any other error is a bug and is rethrown.
bool passed_over(const Scheduled& s) {
  if (!s.error) return false;
  try {
    std::rethrow_exception(s.error);
  } catch (const InputError&) {
    return true;
  }
}

// Layout tuning (CompileOptions::tune_part_rows, tune_epilogue_rows, tune_whole_tiles,
// tune_weight_groups): schedules the model once per layout, the tiling's own first, on up to
// hardware_concurrency threads (independent builders and allocators over the same const inputs),
// and keeps the scheduling with the fewest predicted cycles (the earlier layout on a tie: the
// choice depends only on the results). Layouts: each part size with the tiling's epilogue rows,
// then (if they can differ) each with the spread ones; then refinements of the best of those
// (whole-tile cuts, weight group counts), each kept if shorter.
Scheduled schedule_tuned(const ir::Graph& g, const LoweredModel& lm, const ChipConfig& cfg, const CompileOptions& opt,
                         const QuantPlan* quant) {
  std::vector<int64_t> sizes = {opt.tiling.port_split_min_part_rows};
  bool split = false;
  // Weights have their own layout (PlacedWeights); every other tensor as the chip stores it.
  for (size_t i = 0; i < g.tensors().size() + lm.extra.size(); ++i) {
    const auto t = static_cast<ir::TensorId>(i);
    split = split || (!lm.tensor(g, t).is_const && port_split_applies(opt.tiling, stored_rows(lm.stored_shape(g, t))));
  }
  if (split) sizes.insert(sizes.end(), opt.tune_part_rows.begin(), opt.tune_part_rows.end());
  std::vector<TilingOptions> layouts;
  for (int64_t n : sizes) {
    layouts.push_back(opt.tiling);
    layouts.back().port_split_min_part_rows = n;
  }
  if (opt.tune_epilogue_rows && !opt.tiling.spread_epilogue_rows && epilogue_rows_spreadable(g, lm, cfg, quant, opt.tiling))
    for (size_t i = 0, n = layouts.size(); i < n; ++i) {
      layouts.push_back(layouts[i]);
      layouts.back().spread_epilogue_rows = true;
    }
  std::vector<Scheduled> cand(layouts.size());
  auto run = [&](size_t i) { cand[i] = schedule_layout(g, lm, cfg, opt, quant, layouts[i]); };
  const size_t width = std::max<size_t>(1, std::min<size_t>(layouts.size(), std::thread::hardware_concurrency()));
  for (size_t w0 = 0; w0 < layouts.size(); w0 += width) {
    std::vector<std::thread> threads;
    for (size_t i = w0 + 1; i < std::min(layouts.size(), w0 + width); ++i) threads.emplace_back(run, i);
    run(w0);
    for (std::thread& t : threads) t.join();
  }
  // The tiling's own layout is the untuned compile: its errors are the user's. A further layout
  // that does not fit (InputError) is passed over; any other error is a bug and is reported.
  if (cand[0].error) std::rethrow_exception(cand[0].error);
  size_t best = 0;
  for (size_t i = 1; i < layouts.size(); ++i)
    if (!passed_over(cand[i]) && cand[i].b->end_cycle() < cand[best].b->end_cycle()) best = i;
  // Refinements of a program with a tall product (has_tall_product), each scheduled on the layout
  // kept so far and kept if shorter (ties: the layout before): whole-tile cuts
  // (TilingOptions::whole_tile_cut), then each further weight group count in order. Tried on the
  // best layout only: on BERT-base's pieces whole tiles find there what trying them on every
  // layout finds (the pass 132,202 cycles either way, `build/bench/bench_prefill --no-sim`) at
  // about 40 % of the extra compile time.
  if (has_tall_product(g, lm, opt.tiling)) {
    auto refine = [&](const TilingOptions& t) {
      Scheduled w = schedule_layout(g, lm, cfg, opt, quant, t);
      if (passed_over(w) || w.b->end_cycle() >= cand[best].b->end_cycle()) return;
      cand[best] = std::move(w);
      layouts[best] = t;
    };
    if (opt.tune_whole_tiles && !layouts[best].whole_tile_cut) {
      TilingOptions t = layouts[best];
      t.whole_tile_cut = true;
      refine(t);
    }
    for (uint32_t n : opt.tune_weight_groups) {
      if (n == layouts[best].weight_groups) continue;
      TilingOptions t = layouts[best];
      t.weight_groups = n;
      refine(t);
    }
  }
  return std::move(cand[best]);
}

// What a lowering did that compile() may try without.
struct LoweringUse {
  bool paired = false;         // paired attention heads (LowerOptions::pair_heads)
  bool vxm_depthwise = false;  // a depthwise conv on the VXM (LowerOptions::vxm_depthwise)
};

// One lowering (opt.lower) compiled; *use: what it did.
CompileResult compile_lowering(const ir::Graph& g, const ChipConfig& cfg, const CompileOptions& opt, LoweringUse* use) {
  LoweredModel lm = lower_graph(g, cfg.vector_bytes(), opt.lower);
  use->paired = lm.paired_attentions > 0;
  use->vxm_depthwise = lm.vxm_depthwise_convs > 0;
  std::shared_ptr<const QuantPlan> quant;
  if (opt.precision == Precision::INT8)
    quant = opt.quant ? opt.quant : std::make_shared<const QuantPlan>(plan_int8(g, lm, opt.calibration, opt.int8));
  if (quant && quant->layers.size() != lm.layers.size())
    throw std::logic_error("compile: the quantization plan is for another model");
  // LayerNorm folds (passes/quantize.h) take the `.sd` and `.norm` passes off the path to the
  // products that read a LayerNorm, but those products' drains then wait for the `.sd` rows: a
  // piece whose product was install-bound from the start gains, one whose product's outputs feed a
  // chain at once can lose (BERT-base: the FFN piece 5,838 -> 5,442 cycles, the attention piece
  // 8,000 -> 8,688). So a planned fold is scheduled both ways and the faster program is kept
  // (unless the caller gave the plan or replays matmul decisions).
  const bool fold_trial = quant && !opt.quant && !opt.matmul_replay &&
                          std::any_of(quant->layers.begin(), quant->layers.end(),
                                      [](const LayerQuant& lq) { return lq.norm_fold >= 0; });
  LoweredModel unfolded = fold_trial ? lm : LoweredModel{};
  if (quant) apply_quant_copies(g, *quant, &lm);  // quantized copies of X for int8 layers (passes/quantize.h)
  Scheduled best = schedule_tuned(g, lm, cfg, opt, quant.get());
  if (fold_trial) {
    Int8Options no_fold = opt.int8;
    no_fold.fold_norms = false;
    auto q2 = std::make_shared<const QuantPlan>(plan_int8(g, unfolded, opt.calibration, no_fold));
    apply_quant_copies(g, *q2, &unfolded);
    Scheduled alt = schedule_tuned(g, unfolded, cfg, opt, q2.get());
    if (alt.b->end_cycle() < best.b->end_cycle()) {
      best = std::move(alt);
      quant = q2;
    }
  }
  ScheduleBuilder& b = *best.b;
  SramAllocator& alloc = *best.alloc;
  ScheduledModel& sm = best.sm;
  CompileResult res;
  res.lower = opt.lower;
  res.quant = quant;
  res.diagnostics = std::move(sm.diagnostics);
  res.macs = sm.macs;
  res.stats = sm.stats;
  res.spans = std::move(sm.spans);
  res.matmul_decisions = std::make_shared<const std::vector<MatmulDecision>>(std::move(sm.matmul_decisions));
  EmitOptions eo;
  eo.use_repeat = opt.use_repeat;
  res.program = emit_program(b, std::move(sm.blobs), std::move(sm.descs), eo);
  res.predicted_streams = {b.slots().envelope(res.program.predicted_cycles)};
  res.memory_map = alloc.format_map();
  // Work items = the first input's leading dim (1 for a model without inputs, e.g. a Constant).
  const ir::Shape& first = lm.inputs.empty() ? ir::Shape{} : g.tensor(lm.inputs.front().id).shape;
  res.program.work_items = static_cast<uint64_t>(first.empty() ? 1 : first[0]);
  res.program.work_unit = "items";
  return res;
}

}  // namespace

CompileResult compile(const ir::Graph& g, const ChipConfig& cfg, const CompileOptions& opt_in) {
  CompileOptions opt = opt_in;
  opt.lower.vxm_depthwise = opt.lower.vxm_depthwise && cfg.vxm_fma;  // its taps are `fma`s
  LoweringUse use;
  CompileResult best = compile_lowering(g, cfg, opt, &use);
  const bool fixed = opt.quant || opt.matmul_replay;  // a plan that belongs to opt.lower's lowering
  if (use.vxm_depthwise && opt.depthwise_trial && !fixed) {
    CompileOptions dense = opt;
    dense.lower.vxm_depthwise = false;
    LoweringUse dense_use;
    CompileResult alt = compile_lowering(g, cfg, dense, &dense_use);
    if (alt.program.predicted_cycles < best.program.predicted_cycles) {
      best = std::move(alt);
      opt = dense;
      use = dense_use;
    }
  }
  if (!use.paired || !opt.pair_trial || fixed) return best;
  CompileOptions unpaired = opt;
  unpaired.lower.pair_heads = false;
  LoweringUse unpaired_use;  // never paired: pair_heads is off
  CompileResult alt = compile_lowering(g, cfg, unpaired, &unpaired_use);
  return alt.program.predicted_cycles < best.program.predicted_cycles ? alt : best;
}

CompileResult compile_gemm(const GemmProblem& gp, const ChipConfig& cfg, const CompileOptions& opt) {
  if (gp.M < 1 || gp.K < 1 || gp.N < 1)
    throw InputError(fmt::format("gemm: M, K, N must be >= 1 (got {}x{}x{})", gp.M, gp.K, gp.N));
  const DType in_t = opt.precision == Precision::INT8 ? DType::I8 : DType::F16;
  const DType out_t = opt.precision == Precision::INT8 ? DType::I32 : DType::F32;
  const uint32_t lanes = cfg.vector_bytes();
  ScheduleBuilder b(cfg);
  SramAllocator alloc(cfg);
  MatmulScheduler mm(b);
  CompileResult res;
  std::vector<DataBlob> blobs;
  std::vector<TensorDesc> descs;
  PlacedTensor x = place_tensor(alloc, "X", in_t, {gp.M, gp.K}, opt.tiling, nullptr);
  PlacedWeights w = place_weights(alloc, "W", in_t, gp.K, gp.N, gp.w, opt.tiling, lanes, &blobs);
  PlacedTensor y = place_tensor(alloc, "Y", out_t, {gp.M, gp.N}, opt.tiling, nullptr);
  for (TensorDesc& d : tensor_descs(x, TensorRole::Input)) descs.push_back(std::move(d));
  for (TensorDesc& d : tensor_descs(y, TensorRole::Output)) descs.push_back(std::move(d));
  if (x.parts.size() > 1 || y.parts.size() > 1)
    res.diagnostics.push_back(fmt::format("X and Y are stored as {} and {} row blocks named like '{}'",
                                          x.parts.size(), y.parts.size(), descs.front().name));
  MatmulSpec spec;
  spec.name = "gemm";
  spec.x = &x;
  spec.w = &w;
  spec.y = &y;
  res.stats = mm.schedule(spec);
  res.macs = static_cast<uint64_t>(gp.M) * static_cast<uint64_t>(gp.K) * static_cast<uint64_t>(gp.N);
  EmitOptions eo;
  eo.use_repeat = opt.use_repeat;
  res.program = emit_program(b, std::move(blobs), std::move(descs), eo);
  res.predicted_streams = {b.slots().envelope(res.program.predicted_cycles)};
  res.memory_map = alloc.format_map();
  res.program.work_items = static_cast<uint64_t>(gp.M);
  res.program.work_unit = "items";
  return res;
}

}  // namespace lpu::compiler
