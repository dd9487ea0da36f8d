// Scheduling pass: layer by layer placement of the lowered model (see schedule.h); the driver of
// ModelScheduler (schedule_run.h).
#include "compiler/passes/schedule.h"

#include <fmt/format.h>

#include <algorithm>

#include "compiler/io_binding.h"
#include "compiler/passes/schedule_detail.h"
#include "compiler/passes/schedule_run.h"

namespace lpu::compiler {

using namespace schedule_detail;

bool has_tall_product(const ir::Graph& g, const LoweredModel& lm, const TilingOptions& tiling) {
  for (const LoweredLayer& L : lm.layers)
    if (!L.copy && tall_rows(tiling, product_rows(g, lm, L))) return true;
  return false;
}

bool epilogue_rows_spreadable(const ir::Graph& g, const LoweredModel& lm, const ChipConfig& cfg,
                              const QuantPlan* quant, const TilingOptions& tiling) {
  if (!quant) return false;
  for (size_t li = 0; li < lm.layers.size() && li < quant->layers.size(); ++li)
    if (quant->layers[li].int8 && spread_applies(cfg, tiling, product_rows(g, lm, lm.layers[li])))
      return true;
  return false;
}

ScheduledModel schedule_model(const ir::Graph& g, const LoweredModel& lm, ScheduleBuilder& b,
                              SramAllocator& alloc, const TilingOptions& tiling, bool keep_intermediates,
                              const QuantPlan* quant, const std::vector<MatmulDecision>* matmul_replay) {
  return ModelScheduler(g, lm, b, alloc, tiling, keep_intermediates, quant, matmul_replay).run();
}

ModelScheduler::ModelScheduler(const ir::Graph& g_, const LoweredModel& lm_, ScheduleBuilder& b_,
                               SramAllocator& alloc_, const TilingOptions& tiling_, bool keep_intermediates_,
                               const QuantPlan* quant_, const std::vector<MatmulDecision>* matmul_replay)
    : g(g_),
      lm(lm_),
      b(b_),
      alloc(alloc_),
      tiling(tiling_),
      keep_intermediates(keep_intermediates_),
      quant(quant_),
      lanes(b_.cfg().vector_bytes()),
      mm(b_),
      ew(b_),
      gather(b_),
      lane(b_) {
  mm.set_decisions(&res.matmul_decisions, matmul_replay);
}

ScheduledModel ModelScheduler::run() {
  place_inputs();
  note_precision();
  // Constants (weights, biases, elementwise constants) are SRAM image data loaded before the
  // program runs, so all of them are placed before any activation is released: a constant must
  // never land in SRAM that a dead activation's writes reuse at run time.
  place_constants();
  layout_rules();
  uses = step_uses(lm);
  for (size_t si = 0; si < lm.steps.size(); ++si) {
    const LoweredStep& step = lm.steps[si];
    b.forget_undo();  // no transaction spans steps; keeps the undo logs from growing with the model
    const MatmulStats before = res.stats;  // for this step's StepSpan
    step_first = UINT64_MAX;
    step_end = 0;
    const ir::TensorId yid = step.gather && !lm.gathers[step.index].table.empty() ? lookup_step(si)
                             : step.gather                                        ? gather_step(si)
                             : step.lane                                          ? lane_step(si)
                             : step.dense                                         ? dense_step(si)
                                                                                  : eltwise_step(si);
    record_span(si, before);
    finish_step(si, yid);
  }
  return std::move(res);
}

bool ModelScheduler::as_copy(size_t li) const {
  const LoweredLayer& L = lm.layers[li];
  return L.copy &&
         !(quant && (quant->layers[li].int8 || quant->i8_tensors.count(L.x) || quant->i8_tensors.count(L.y)));
}

void ModelScheduler::place_inputs() {
  for (const LoweredInput& in : lm.inputs) {
    bool used = false;  // read by a scheduled step
    for (const LoweredStep& st : lm.steps)
      for (ir::TensorId t : step_reads(lm, st)) used = used || t == in.alias;
    if (!used) continue;
    DType in_t = quant && quant->i8_tensors.count(in.alias) ? DType::I8 : DType::F16;  // i8: host quantizes
    std::vector<int64_t> in_shape = in.shape;
    TilingOptions in_tiling = tiling;
    if (in.lookup_rows >
        0) {  // lookup indices: one vector of i16 row offsets per id and table part (lowering.h)
      in_t = DType::I16;
      const int64_t pr = lookup_part_rows(in.lookup_rows, in.lookup_cols, lanes, b.cfg().sram_addresses);
      const int64_t parts = (in.lookup_rows + pr - 1) / pr, T = in.shape.front();
      in_shape = {parts * T, static_cast<int64_t>(lanes)};  // part-major (io_binding.h: lookup_index_bytes)
      if (parts >
          1) {  // one row block per part (at most 256 rows), so the parts' index reads use different ports
        in_tiling.port_split_min_rows = 1;
        in_tiling.port_split_parts = parts;
        in_tiling.port_split_min_part_rows = 1;
        in_tiling.port_split_max_part_rows = std::min(T, tiling.port_split_max_part_rows);
      }
    }
    PlacedTensor t =
        place_tensor(alloc, g.tensor(in.id).name, in_t, in_shape, in_tiling, &alloc_ids[in.alias]);
    for (TensorDesc& d : tensor_descs(t, TensorRole::Input)) res.descs.push_back(std::move(d));
    if (in.lookup_rows > 0)
      res.diagnostics.push_back(fmt::format(
          "input '{}' (ids of a lookup into a [{}, {}] table{}) is written by the host "
          "as [{}, {}] i16 row offsets (io_binding.h: lookup_index_bytes)",
          g.tensor(in.id).name, in.lookup_rows, in.lookup_cols,
          in_shape[0] > in.shape.front() ? fmt::format(" split into {} parts", in_shape[0] / in.shape.front())
                                         : "",
          in_shape[0], in_shape[1]));
    else if (!in.host_map.empty())
      res.diagnostics.push_back(
          fmt::format("input '{}' is laid out by the host as {} (conv layout, "
                      "passes/lower_conv.h)",
                      g.tensor(in.id).name, ir::shape_str(in.shape)));
    else if (in.shape != g.tensor(in.id).shape)
      res.diagnostics.push_back(fmt::format("input '{}' is laid out as {} (Reshape folded)",
                                            g.tensor(in.id).name, ir::shape_str(in.shape)));
    placed.emplace(in.alias, std::move(t));
  }
}

void ModelScheduler::note_precision() {
  if (quant)
    res.diagnostics.push_back(
        fmt::format("precision int8: {} of {} dense layers int8 (i8 weights per output channel, "
                    "i8 activations per tensor, i32 accumulation, f32 epilogue), {} i8 inputs "
                    "(the host quantizes); all other steps fp16",
                    quant->int8_layers, lm.layers.size(), quant->i8_inputs.size()));
  if (quant && quant->quantize_steps > 0)
    res.diagnostics.push_back(fmt::format(
        "precision int8: {} elementwise steps quantize their output to i8 on chip "
        "(muli by 1/scale, cvt f32 -> i8){}",
        quant->quantize_steps, quant->timing_only ? "; timing only: activation scales not calibrated" : ""));
  if (quant && !quant->copies.empty())
    res.diagnostics.push_back(
        fmt::format("precision int8: {} quantized copies (an fp16 X with other readers, or whose "
                    "producer cannot quantize, copied to i8 on chip for its int8 layers: "
                    "muli by 1/scale, cvt f32 -> i8)",
                    quant->copies.size()));
  if (!quant)
    res.diagnostics.push_back(fmt::format(
        "precision fp16: inputs and weights f16, accumulation f32, hidden activations "
        "f16, outputs f32{}",
        lm.f16_outputs.empty() ? std::string()
                               : fmt::format(" ({} of {} stored f16 as asked: LowerOptions::f16_output)",
                                             lm.f16_outputs.size(), lm.outputs.size())));
}

void ModelScheduler::layout_rules() {
  // The plain X (no row map) of an install-bound layer (install_bound_rows) with several column
  // tiles, of >= port_split_min_rows rows: every MXM plane streams all of its rows (each plane holds
  // its own column tiles), so it is stored in at least one row block per plane, each block on its own
  // slices (one read per cycle each). With the default 64-row blocks a 128-row X had two slices for
  // four planes' reads: BERT-base's FFN up projection searched ~890 cycles per plane for a free X
  // read port (now ~260) and the piece took 7,610 cycles (7,321 with this). Its Y (no row map) too:
  // all planes drain their column tiles of every row at once, and the elementwise passes after it
  // read and write it vector by vector (FFN 7,321 -> 7,221, attention 9,960 -> 9,760).
  {
    const int64_t planes = mxm_plane_count(b.cfg());
    for (const LoweredLayer& L : lm.layers) {
      if (!L.tap_rows.empty() || !L.x_rows.empty() || L.x == ir::kNoTensor ||
          L.N <= static_cast<int64_t>(lanes))
        continue;
      const int64_t M = product_rows(g, lm, L);  // X's rows: no taps or row map here
      const bool i8 = quant && quant->i8_tensors.count(L.x);
      if (M < tiling.port_split_min_rows || !install_bound_rows(b.cfg(), M, i8 ? DType::I8 : DType::F16))
        continue;
      wide_x[L.x] = std::max<int64_t>(1, (M + planes - 1) / planes);
      if (L.y_shape.empty() && L.y_rows.empty())
        wide_x[L.y] = std::max<int64_t>(1, (M + planes - 1) / planes);
    }
  }
  // The input of a MaxPool on row pairs (passes/lower_conv.h "Row pairs", stored [N, J, W, 2C]) is
  // stored in blocks of at most one stored image row (W rows), so a window's kernel rows are read
  // from different slices: each output vector reads 9 inputs, and with 256-row blocks the pool was
  // bound by the read ports of 2-3 slices (ResNet-50: the pool ended 1,337 cycles after its conv,
  // 805 with this rule; blocks of at most 112 rows for EVERY tensor were measured slower overall,
  // 59,491 vs 58,667 cycles, so the rule is this tensor's alone).
  for (const LoweredLane& Ln : lm.lanes) {
    if (Ln.mode != LoweredLane::Mode::Move) continue;
    for (const LoweredEltwise& E : lm.eltwise)
      if (E.y == Ln.x && E.minmax_chain() && !E.operands.empty() && !E.operands[0].row_map.empty())
        for (const LoweredLayer& L : lm.layers)
          if (L.y == E.operands[0].act && L.y_shape.size() == 4) pool_rows[L.y] = L.y_shape[2];
  }
}

TilingOptions ModelScheduler::tiling_of(ir::TensorId t) const {
  TilingOptions o = tiling;
  const auto it = wide_x.find(t);
  if (it != wide_x.end()) o.port_split_min_part_rows = std::min(o.port_split_min_part_rows, it->second);
  const auto pr = pool_rows.find(t);
  if (pr != pool_rows.end()) {
    o.port_split_max_part_rows = std::min(o.port_split_max_part_rows, pr->second);
    o.port_split_min_part_rows = std::min(o.port_split_min_part_rows, pr->second);
  }
  return o;
}

float ModelScheduler::inv_scale(ir::TensorId t) const {
  return static_cast<float>(1.0 / static_cast<double>(quant->i8_tensors.at(t)));
}

ModelScheduler::Copy ModelScheduler::place_copy(const std::string& step, ir::TensorId id,
                                                const std::vector<int64_t>& shape, bool y_i8) {
  Copy c;
  c.id = id;
  if (id == ir::kNoTensor) return c;
  if (!quant || !quant->i8_tensors.count(id) || y_i8)
    throw std::logic_error(step + ": a second output without an i8 scale, or of an i8 y");
  c.t = place_tensor(alloc, lm.tensor(g, id).name, DType::I8, shape, tiling_of(id), &alloc_ids[id]);
  return c;
}

void ModelScheduler::keep_copy(Copy& c) {
  if (c.id == ir::kNoTensor) return;
  if (keep_intermediates)
    for (TensorDesc& d : tensor_descs(c.t, TensorRole::Output)) res.descs.push_back(std::move(d));
  placed.emplace(c.id, std::move(c.t));
}

void ModelScheduler::add_step(const MatmulStats& s) {
  add_stats(&res.stats, s);
  step_first = std::min(step_first, s.first_issue);
  step_end = std::max(step_end, s.last_end);
}

void ModelScheduler::record_span(size_t si, const MatmulStats& before) {
  const LoweredStep& step = lm.steps[si];
  StepSpan sp;
  sp.kind = step.gather ? 'g' : step.lane ? 'l' : step.dense ? (as_copy(step.index) ? 'g' : 'd') : 'e';
  sp.name = step.gather  ? lm.gathers[step.index].name
            : step.lane  ? lm.lanes[step.index].name
            : step.dense ? lm.layers[step.index].name
                         : lm.eltwise[step.index].name;
  sp.end_after = res.stats.last_end;
  sp.abc = res.stats.abc - before.abc;
  sp.lw = res.stats.lw - before.lw;
  sp.reads = res.stats.reads - before.reads;
  sp.writes = res.stats.writes - before.writes;
  sp.vxm = res.stats.vxm - before.vxm;
  sp.start = step_first == UINT64_MAX ? 0 : step_first;
  sp.own_end = step_end;
  res.spans.push_back(std::move(sp));
}

void ModelScheduler::finish_step(size_t si, ir::TensorId yid) {
  const LoweredStep& step = lm.steps[si];
  bool written_later = false;  // by another layer writing other rows of it
  for (size_t sj = si + 1; sj < lm.steps.size() && step.dense; ++sj)
    written_later = written_later ||
                    (lm.steps[sj].dense && !lm.steps[sj].gather && lm.layers[lm.steps[sj].index].y == yid);
  if ((lm.is_output(yid) || keep_intermediates) && !written_later)
    for (TensorDesc& d : tensor_descs(placed.at(yid), TensorRole::Output)) res.descs.push_back(std::move(d));
  if (keep_intermediates) return;  // nothing is released
  // Release activations no later step reads (graph inputs and outputs stay).
  for (ir::TensorId t : step_reads(lm, step)) {
    bool later = false;
    for (size_t sj = si + 1; sj < lm.steps.size(); ++sj) {
      const std::vector<ir::TensorId> r = step_reads(lm, lm.steps[sj]);
      later = later || std::find(r.begin(), r.end(), t) != r.end();
    }
    bool is_input = false;
    for (const LoweredInput& in : lm.inputs) is_input = is_input || in.alias == t;
    if (!later && !is_input && !lm.is_output(t)) {
      for (int id : alloc_ids[t]) alloc.release(id, placed.at(t).last_read);
      alloc_ids[t].clear();  // released once even if this step reads t twice
    }
  }
}

}  // namespace lpu::compiler
