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

CompileResult compile(const ir::Graph& g, const ChipConfig& cfg, const CompileOptions& opt) {
  LoweredModel lm = lower_graph(g, cfg.vector_bytes(), opt.pack_conv_taps);
  std::shared_ptr<const QuantPlan> quant;
  if (opt.precision == Precision::INT8)
    quant = opt.quant ? opt.quant : std::make_shared<const QuantPlan>(plan_int8(g, lm, opt.calibration, opt.int8));
  if (quant && quant->layers.size() != lm.layers.size())
    throw std::logic_error("compile: the quantization plan is for another model");
  if (quant) apply_quant_copies(g, *quant, &lm);  // quantized copies of X for int8 layers (passes/quantize.h)
  // One scheduling per tuning candidate (CompileOptions::tune_part_rows); the shortest is kept.
  std::vector<int64_t> parts = opt.tune_part_rows;
  bool tall = false;
  for (const ir::Tensor& t : g.tensors()) {
    if (t.is_const) continue;  // weights have their own layout (PlacedWeights), not row blocks
    int64_t rows = 1;
    for (size_t d = 0; d + 1 < t.shape.size(); ++d) rows *= t.shape[d];
    tall = tall || (opt.tiling.port_split_min_rows > 0 && rows >= opt.tiling.port_split_min_rows);
  }
  if (parts.empty() || !tall) parts = {opt.tiling.port_split_min_part_rows};
  // The candidates are independent schedulings of the same const inputs: they run on up to
  // hardware_concurrency threads, and the choice below depends only on their results.
  struct Candidate {
    std::unique_ptr<ScheduleBuilder> b;
    std::unique_ptr<SramAllocator> alloc;
    ScheduledModel sm;
    std::exception_ptr error;
  };
  std::vector<Candidate> cand(parts.size());
  auto run = [&](size_t i) {
    try {
      TilingOptions tiling = opt.tiling;
      tiling.port_split_min_part_rows = parts[i];
      cand[i].b = std::make_unique<ScheduleBuilder>(cfg);
      cand[i].alloc = std::make_unique<SramAllocator>(cfg);
      cand[i].sm = schedule_model(g, lm, *cand[i].b, *cand[i].alloc, tiling, opt.keep_intermediates, quant.get());
    } catch (...) {
      cand[i].error = std::current_exception();
    }
  };
  const size_t width = std::max<size_t>(1, std::min<size_t>(parts.size(), std::thread::hardware_concurrency()));
  for (size_t w0 = 0; w0 < parts.size(); w0 += width) {
    std::vector<std::thread> threads;
    for (size_t i = w0 + 1; i < std::min(parts.size(), w0 + width); ++i) threads.emplace_back(run, i);
    run(w0);
    for (std::thread& t : threads) t.join();
  }
  size_t best = parts.size();
  for (size_t i = 0; i < parts.size(); ++i) {
    if (cand[i].error) {
      // The first candidate is the untuned compile: its errors are the user's. A later one that
      // does not fit (InputError) is passed over; any other error is a bug and is reported.
      try {
        std::rethrow_exception(cand[i].error);
      } catch (const InputError&) {
        if (i == 0) throw;
        continue;
      }
    }
    if (best == parts.size() || cand[i].b->end_cycle() < cand[best].b->end_cycle()) best = i;
  }
  std::unique_ptr<ScheduleBuilder> best_b = std::move(cand[best].b);
  std::unique_ptr<SramAllocator> best_alloc = std::move(cand[best].alloc);
  ScheduledModel sm = std::move(cand[best].sm);
  cand.clear();
  ScheduleBuilder& b = *best_b;
  SramAllocator& alloc = *best_alloc;
  CompileResult res;
  res.quant = quant;
  res.diagnostics = std::move(sm.diagnostics);
  res.macs = sm.macs;
  res.stats = sm.stats;
  res.spans = std::move(sm.spans);
  EmitOptions eo;
  eo.use_repeat = opt.use_repeat;
  res.program = emit_program(b, std::move(sm.blobs), std::move(sm.descs), eo);
  res.predicted_cycles = res.program.predicted_cycles;
  res.memory_map = alloc.format_map();
  // Work items = the first input's leading dim (1 for a model without inputs, e.g. a Constant).
  const ir::Shape& first = lm.inputs.empty() ? ir::Shape{} : g.tensor(lm.inputs.front().id).shape;
  res.program.work_items = static_cast<uint64_t>(first.empty() ? 1 : first[0]);
  res.program.work_unit = "items";
  return res;
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
  res.predicted_cycles = res.program.predicted_cycles;
  res.memory_map = alloc.format_map();
  res.program.work_items = static_cast<uint64_t>(gp.M);
  res.program.work_unit = "items";
  return res;
}

}  // namespace lpu::compiler
