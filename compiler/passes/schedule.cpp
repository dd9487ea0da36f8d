// Scheduling pass: layer by layer placement of the lowered model (see schedule.h).
#include "compiler/passes/schedule.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <functional>
#include <map>

#include "compiler/backend/elementwise_kernel.h"
#include "compiler/backend/gather_kernel.h"
#include "compiler/backend/lane_kernel.h"
#include "compiler/io_binding.h"
#include "compiler/passes/column_need.h"
#include "compiler/passes/lower_attention.h"
#include "compiler/passes/lower_conv.h"

namespace lpu::compiler {

namespace {

// The lane kernel's mode of a lowered lane step (the two enums are separate so that passes/ does
// not depend on backend/; this mapping is the one place that joins them).
LaneMode lane_mode(LoweredLane::Mode m) {
  switch (m) {
    case LoweredLane::Mode::Max: return LaneMode::Max;
    case LoweredLane::Mode::Sum: return LaneMode::Sum;
    case LoweredLane::Mode::Broadcast: return LaneMode::Broadcast;
    case LoweredLane::Mode::Move: return LaneMode::Move;
  }
  throw std::logic_error("lane_mode: unknown lowered lane mode");
}

void add_stats(MatmulStats* a, const MatmulStats& b) {
  a->abc += b.abc;
  a->lw += b.lw;
  a->iw += b.iw;
  a->acc += b.acc;
  a->reads += b.reads;
  a->writes += b.writes;
  a->vxm += b.vxm;
  a->first_issue = std::min(a->first_issue, b.first_issue);
  a->last_end = std::max(a->last_end, b.last_end);
}

std::vector<uint8_t> to_f16_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = ir::f32_to_f16(v[i]);
    out[2 * i] = static_cast<uint8_t>(h & 0xFF);
    out[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
  return out;
}

std::vector<uint8_t> to_f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());  // little-endian host (x86/arm64 Linux)
  return out;
}

// Rows of a dense step's output (its M): the tap rows' or row map's count, else X's rows.
int64_t product_rows(const ir::Graph& g, const LoweredModel& lm, const LoweredLayer& L) {
  if (!L.tap_rows.empty()) return static_cast<int64_t>(L.tap_rows[0].size());
  if (!L.x_rows.empty()) return static_cast<int64_t>(L.x_rows.size());
  int64_t M = 1;
  const ir::Shape& xs = lm.tensor(g, L.x).shape;
  for (size_t i = 0; i + 1 < xs.size(); ++i) M *= xs[i];
  return M;
}

// Whether a product of M rows is tall: at least tiling.port_split_min_rows rows (0: none is).
bool tall_rows(const TilingOptions& tiling, int64_t M) {
  return tiling.port_split_min_rows > 0 && M >= tiling.port_split_min_rows;
}

// Whether TilingOptions::spread_epilogue_rows applies to a product of M rows: it spreads the rows
// of an install-bound product (which keeps [1, N] otherwise) of at least port_split_min_rows rows.
bool spread_applies(const ChipConfig& cfg, const TilingOptions& tiling, int64_t M) {
  return tall_rows(tiling, M) && install_bound_rows(cfg, M, DType::I8);
}

// Whether TilingOptions::whole_tile_cut applies to a product of M rows (MatmulSpec::whole_tiles).
bool whole_tiles_apply(const TilingOptions& tiling, int64_t M) { return tiling.whole_tile_cut && tall_rows(tiling, M); }

}  // namespace

bool has_tall_product(const ir::Graph& g, const LoweredModel& lm, const TilingOptions& tiling) {
  for (const LoweredLayer& L : lm.layers)
    if (!L.copy && tall_rows(tiling, product_rows(g, lm, L))) return true;
  return false;
}

bool epilogue_rows_spreadable(const ir::Graph& g, const LoweredModel& lm, const ChipConfig& cfg, const QuantPlan* quant,
                              const TilingOptions& tiling) {
  if (!quant) return false;
  for (size_t li = 0; li < lm.layers.size() && li < quant->layers.size(); ++li)
    if (quant->layers[li].int8 && spread_applies(cfg, tiling, product_rows(g, lm, lm.layers[li]))) return true;
  return false;
}

ScheduledModel schedule_model(const ir::Graph& g, const LoweredModel& lm, ScheduleBuilder& b, SramAllocator& alloc,
                              const TilingOptions& tiling, bool keep_intermediates, const QuantPlan* quant,
                              const std::vector<MatmulDecision>* matmul_replay) {
  const uint32_t lanes = b.cfg().vector_bytes();
  MatmulScheduler mm(b);
  ScheduledModel res;
  mm.set_decisions(&res.matmul_decisions, matmul_replay);
  std::map<ir::TensorId, PlacedTensor> placed;  // ordered by id: deterministic
  std::map<ir::TensorId, std::vector<int>> alloc_ids;
  // A row copy layer (LoweredLayer::copy) that stays one: both ends f16 (not an int8 layer or tensor).
  auto as_copy = [&](size_t li) {
    const LoweredLayer& L = lm.layers[li];
    return L.copy && !(quant && (quant->layers[li].int8 || quant->i8_tensors.count(L.x) || quant->i8_tensors.count(L.y)));
  };
  for (const LoweredInput& in : lm.inputs) {
    bool used = false;  // read by a scheduled step
    for (const LoweredStep& st : lm.steps)
      for (ir::TensorId t : step_reads(lm, st)) used = used || t == in.alias;
    if (!used) continue;
    DType in_t = quant && quant->i8_tensors.count(in.alias) ? DType::I8 : DType::F16;  // i8: host quantizes
    std::vector<int64_t> in_shape = in.shape;
    TilingOptions in_tiling = tiling;
    if (in.lookup_rows > 0) {  // lookup indices: one vector of i16 row offsets per id and table part (lowering.h)
      in_t = DType::I16;
      const int64_t pr = lookup_part_rows(in.lookup_rows, in.lookup_cols, lanes, b.cfg().sram_addresses);
      const int64_t parts = (in.lookup_rows + pr - 1) / pr, T = in.shape.front();
      in_shape = {parts * T, static_cast<int64_t>(lanes)};  // part-major (io_binding.h: lookup_index_bytes)
      if (parts > 1) {  // one row block per part (at most 256 rows), so the parts' index reads use different ports
        in_tiling.port_split_min_rows = 1;
        in_tiling.port_split_parts = parts;
        in_tiling.port_split_min_part_rows = 1;
        in_tiling.port_split_max_part_rows = std::min(T, tiling.port_split_max_part_rows);
      }
    }
    PlacedTensor t = place_tensor(alloc, g.tensor(in.id).name, in_t, in_shape, in_tiling, &alloc_ids[in.alias]);
    for (TensorDesc& d : tensor_descs(t, TensorRole::Input)) res.descs.push_back(std::move(d));
    if (in.lookup_rows > 0)
      res.diagnostics.push_back(fmt::format("input '{}' (ids of a lookup into a [{}, {}] table{}) is written by the host "
                                            "as [{}, {}] i16 row offsets (io_binding.h: lookup_index_bytes)",
                                            g.tensor(in.id).name, in.lookup_rows, in.lookup_cols,
                                            in_shape[0] > in.shape.front()
                                                ? fmt::format(" split into {} parts", in_shape[0] / in.shape.front())
                                                : "",
                                            in_shape[0], in_shape[1]));
    else if (!in.host_map.empty())
      res.diagnostics.push_back(fmt::format("input '{}' is laid out by the host as {} (conv layout, "
                                            "passes/lower_conv.h)", g.tensor(in.id).name, ir::shape_str(in.shape)));
    else if (in.shape != g.tensor(in.id).shape)
      res.diagnostics.push_back(fmt::format("input '{}' is laid out as {} (Reshape folded)", g.tensor(in.id).name,
                                            ir::shape_str(in.shape)));
    placed.emplace(in.alias, std::move(t));
  }
  if (quant)
    res.diagnostics.push_back(fmt::format("precision int8: {} of {} dense layers int8 (i8 weights per output channel, "
                                          "i8 activations per tensor, i32 accumulation, f32 epilogue), {} i8 inputs "
                                          "(the host quantizes); all other steps fp16",
                                          quant->int8_layers, lm.layers.size(), quant->i8_inputs.size()));
  if (quant && quant->quantize_steps > 0)
    res.diagnostics.push_back(fmt::format("precision int8: {} elementwise steps quantize their output to i8 on chip "
                                          "(muli by 1/scale, cvt f32 -> i8){}", quant->quantize_steps,
                                          quant->timing_only ? "; timing only: activation scales not calibrated" : ""));
  if (quant && !quant->copies.empty())
    res.diagnostics.push_back(fmt::format("precision int8: {} quantized copies (an fp16 X with other readers, or whose "
                                          "producer cannot quantize, copied to i8 on chip for its int8 layers: "
                                          "muli by 1/scale, cvt f32 -> i8)", quant->copies.size()));
  if (!quant)
    res.diagnostics.push_back(fmt::format("precision fp16: inputs and weights f16, accumulation f32, hidden activations "
                                          "f16, outputs f32{}",
                                          lm.f16_outputs.empty()
                                              ? std::string()
                                              : fmt::format(" ({} of {} stored f16 as asked: LowerOptions::f16_output)",
                                                            lm.f16_outputs.size(), lm.outputs.size())));
  EltwiseScheduler ew(b);
  GatherScheduler gather(b);
  LaneScheduler lane(b);
  // Constants (weights, biases, elementwise constants) are SRAM image data loaded before the
  // program runs, so all of them are placed before any activation is released: a constant must
  // never land in SRAM that a dead activation's writes reuse at run time.
  std::vector<PlacedWeights> weights(lm.steps.size());
  std::vector<PlacedTensor> biases(lm.steps.size());
  std::vector<PlacedTensor> scales(lm.steps.size());  // int8 layers: epilogue scale rows
  std::vector<PlacedTensor> rscales(lm.steps.size());  // int8 layers with an i8 residual: its scale row
  std::vector<std::vector<PlacedTensor>> consts(lm.steps.size());
  std::vector<PlacedTensor> zeros(lm.steps.size());  // an all-zero row for padding reads (conv/pool steps)
  auto place_zero = [&](size_t si, DType dt, int64_t inner) {
    std::vector<int> ids;
    zeros[si] = place_tensor(alloc, fmt::format("zero.s{}", si), dt, {1, inner}, tiling, &ids);
    tensor_blobs(zeros[si], std::vector<uint8_t>(static_cast<size_t>(inner) * dtype_bytes(dt), 0), lanes, &res.blobs);
  };
  // A dense step's weight blob ([K, N] in whole tiles; `packed`: only these rows of each k-tile) and,
  // for an int8 layer (`q`), its per-column epilogue scale row.
  using RowRanges = std::vector<std::pair<uint32_t, uint32_t>>;
  // An epilogue row of a dense step (f32 [1, N]: int8 scale or bias). A layer that is not
  // install-bound (its planes drain rows at once) stores it as [copies x column tiles, lanes] in up
  // to one row block per MXM plane (each its own slices): one SRAM slice serves one read per cycle, so with the
  // [1, N] row the epilogue of a multi-tile layer drained one output row per cycle for the whole
  // chip, and a one-tile layer's fetches took its slices' read port on every drain cycle
  // (matmul_kernel.h; MatmulSpec::scale). Install-bound layers (batch-1
  // and BERT-size int8 rows: install_bound_rows, the kernel's install-bound rule) keep [1, N]
  // unless tiling.spread_epilogue_rows: their drains are mostly not the bound, and the spread rows
  // can cost them more in read-port conflicts (layout tuning tries both).
  auto place_epilogue_row = [&](const LoweredLayer& L, bool i8, const std::string& name, const std::vector<float>& vals,
                                PlacedTensor* out) {
    std::vector<int> ids;
    const int64_t M = product_rows(g, lm, L);
    const int64_t nt = (L.N + lanes - 1) / lanes;
    const bool spread = tiling.spread_epilogue_rows && spread_applies(b.cfg(), tiling, M);
    if (!spread && install_bound_rows(b.cfg(), M, i8 ? DType::I8 : DType::F16)) {
      *out = place_tensor(alloc, name, DType::F32, {1, L.N}, tiling, &ids);
      tensor_blobs(*out, to_f32_bytes(vals), lanes, &res.blobs);
      return;
    }
    // Fewer column tiles than planes: ceil(planes / nt) copies of the [nt, lanes] rows (row c * nt + t),
    // one block each, which the kernel's fetches take in turn: a single row group was read on
    // every drain cycle of a one-tile layer and starved the X reads of an activation row block
    // sharing its slices (ResNet-50 stage 1's 3x3 convs: one plane's k-tile waited ~1,370 cycles).
    const int64_t planes = mxm_plane_count(b.cfg());
    const int64_t copies = (planes + nt - 1) / nt;
    const int64_t total = copies * nt;
    const int64_t parts = std::min<int64_t>(total, planes);
    TilingOptions blocks = tiling;
    blocks.port_split_min_rows = 1;
    blocks.port_split_parts = parts;
    blocks.port_split_min_part_rows = 1;
    blocks.port_split_max_part_rows = (total + parts - 1) / parts;
    *out = place_tensor(alloc, name, DType::F32, {total, static_cast<int64_t>(lanes)}, blocks, &ids);
    std::vector<float> rows(static_cast<size_t>(total) * lanes, 0.f);
    for (int64_t c = 0; c < copies; ++c)
      std::copy(vals.begin(), vals.end(), rows.begin() + static_cast<std::ptrdiff_t>(c * nt * lanes));
    tensor_blobs(*out, to_f32_bytes(rows), lanes, &res.blobs);
  };
  // rows: the rows each k-tile loads (conv taps, view segments; nullptr: every valid row), stored
  // packed when the tiling packs them, and the rows a narrow tile's transposition is measured by.
  auto place_layer_weights = [&](size_t si, const LoweredLayer& L, int64_t K, DType dt, const std::vector<uint8_t>& bytes,
                                 const LayerQuant* q, const RowRanges* rows) {
    const RowRanges* packed = rows && tiling.pack_view_weights ? rows : nullptr;
    weights[si] = place_weights(alloc, L.name + ".W", dt, K, L.N, bytes, tiling, lanes, &res.blobs, packed, rows);
    if (q) place_epilogue_row(L, true, L.name + ".scale", q->epi_scale, &scales[si]);
    if (q && q->r_int8) place_epilogue_row(L, true, L.name + ".rscale", q->epi_rscale, &rscales[si]);
  };
  for (size_t si = 0; si < lm.steps.size(); ++si) {
    const LoweredStep& step = lm.steps[si];
    if (step.gather && !lm.gathers[step.index].table.empty()) {
      // Lookup table (lower_forms.h): values rounded to f16 like every weight of the fp16 model, held
      // in the output's type (f32 for a graph output, so no widening pass), all rows of a part in one
      // tensor part so one address + offset reaches any of its rows (consts[si] = the parts). A table
      // bigger than one slice is cut by row ranges, each part followed by an all-zero row
      // (io_binding.h: lookup_part_rows).
      const LoweredGather& G = lm.gathers[step.index];
      const DType tt = lm.f32_output(G.y) ? DType::F32 : DType::F16;
      TilingOptions one = tiling;
      one.port_split_min_rows = 0;
      const int64_t pr = lookup_part_rows(G.table_rows, G.table_cols, lanes, b.cfg().sram_addresses);
      const bool split = pr < G.table_rows;
      for (int64_t r0 = 0; r0 < G.table_rows; r0 += pr) {
        const int64_t n = std::min(pr, G.table_rows - r0);
        std::vector<int> ids;
        consts[si].push_back(place_tensor(alloc, split ? fmt::format("{}.table.p{}", G.name, r0 / pr) : G.name + ".table",
                                          tt, {n + (split ? 1 : 0), G.table_cols}, one, &ids));
        std::vector<float> t16(static_cast<size_t>((n + (split ? 1 : 0)) * G.table_cols), 0.f);
        for (size_t k = 0; k < static_cast<size_t>(n * G.table_cols); ++k)
          t16[k] = ir::round_f16(G.table[static_cast<size_t>(r0 * G.table_cols) + k]);
        tensor_blobs(consts[si].back(), tt == DType::F16 ? to_f16_bytes(t16) : to_f32_bytes(t16), lanes, &res.blobs);
      }
    } else if (step.gather) {
      const LoweredGather& G = lm.gathers[step.index];
      if (std::find(G.map.begin(), G.map.end(), -1) != G.map.end()) place_zero(si, DType::F16, lanes);
    } else if (step.lane) {
      // Mask row of a reduction whose rows end inside a vector, in both float types (the type x is
      // stored in is known when x is placed): consts[si] = {f16, f32}; f32 alone with a center (the
      // mask then acts on x - center, lane_kernel.h).
      const LoweredLane& Ln = lm.lanes[step.index];
      const ir::Shape& xs = lm.tensor(g, Ln.x).shape;
      const std::vector<float> m = lane_mask_row(lane_mode(Ln.mode), xs.empty() ? 1 : xs.back(), lanes);
      if (!m.empty()) {
        for (DType dt : {DType::F16, DType::F32}) {
          if (Ln.center != ir::kNoTensor && dt != DType::F32) continue;
          std::vector<int> ids;
          consts[si].push_back(place_tensor(alloc, fmt::format("{}.mask{}", Ln.name, dtype_bytes(dt) * 8), dt,
                                            {1, static_cast<int64_t>(lanes)}, tiling, &ids));
          tensor_blobs(consts[si].back(), dt == DType::F16 ? to_f16_bytes(m) : to_f32_bytes(m), lanes, &res.blobs);
        }
      }
    } else if (step.dense) {
      const LoweredLayer& L = lm.layers[step.index];
      if (as_copy(step.index)) {
        // a row copy (LoweredLayer::copy): moved MEM -> MEM by the gather kernel, no weights
      } else if (L.k_blocks > 0) {  // conv taps, each padded to whole vectors like the im2col rows
        std::vector<float> w;
        const int64_t K = expand_conv_weight(L, lanes, &w);
        // Taps read in place: only each tap tile's channel rows are stored; padding reads a zero row
        // of x's type. An int8 conv (quantize.h) stores its i8 weights in the same layout.
        const bool q8 = quant && quant->layers[step.index].int8;
        std::vector<std::pair<uint32_t, uint32_t>> rows;
        if (!L.tap_rows.empty()) {
          const DType xt = quant && quant->i8_tensors.count(L.x) ? DType::I8 : DType::F16;
          for (const MatmulKTile& t : conv_tap_ktiles(L, lanes)) rows.emplace_back(t.w_lo, t.w_hi);
          for (const std::vector<int64_t>& m : L.tap_rows)
            if (std::find(m.begin(), m.end(), -1) != m.end() && zeros[si].parts.empty()) place_zero(si, xt, lanes);
        }
        const RowRanges* tap_rows = rows.empty() ? nullptr : &rows;
        if (q8) {
          const LayerQuant& q = quant->layers[step.index];
          place_layer_weights(si, L, K, DType::I8, expand_conv_weight_i8(L, q.wq, lanes), &q, tap_rows);
        } else {
          place_layer_weights(si, L, K, DType::F16, to_f16_bytes(w), nullptr, tap_rows);
        }
      } else if (L.b != ir::kNoTensor) {
        // weights from an activation (lower_attention.h): nothing to place
      } else if (!L.xsegs.empty()) {  // X through a view: one weight tile per segment piece
        std::vector<float> w;
        std::vector<MatmulKTile> kt;
        view_ktiles(L, lanes, [](ir::TensorId) { return nullptr; }, &w, &kt);
        const int64_t K = static_cast<int64_t>(kt.size()) * lanes;
        std::vector<std::pair<uint32_t, uint32_t>> rows;  // only the segment's rows are stored
        for (const MatmulKTile& t : kt) rows.emplace_back(t.w_lo, t.w_hi);
        if (quant && quant->layers[step.index].int8) {  // the int8 weights, per column, in the same layout
          const LayerQuant& q = quant->layers[step.index];
          std::vector<uint8_t> wq(w.size());
          for (size_t k = 0; k < w.size(); ++k)
            wq[k] = static_cast<uint8_t>(quantize_i8(w[k], q.w_scale[k % static_cast<size_t>(L.N)]));
          place_layer_weights(si, L, K, DType::I8, wq, &q, &rows);
        } else {
          place_layer_weights(si, L, K, DType::F16, to_f16_bytes(w), nullptr, &rows);
        }
      } else if (quant && quant->layers[step.index].int8) {
        const LayerQuant& q = quant->layers[step.index];
        place_layer_weights(si, L, L.K, DType::I8, std::vector<uint8_t>(q.wq.begin(), q.wq.end()), &q, nullptr);
      } else {
        place_layer_weights(si, L, L.K, DType::F16, to_f16_bytes(L.w), nullptr, nullptr);
      }
      if (!L.bias.empty()) {
        const bool q8 = quant && quant->layers[step.index].int8;
        place_epilogue_row(L, q8, L.name + ".bias", q8 ? quant->layers[step.index].epi_bias : L.bias, &biases[si]);
      }
    } else {
      const LoweredEltwise& E = lm.eltwise[step.index];
      const ir::Shape& ys = E.y_shape.empty() ? lm.tensor(g, E.y).shape : E.y_shape;
      const int64_t inner = ys.empty() ? 1 : ys.back();
      consts[si].resize(E.operands.size());
      for (const EltOperand& o : E.operands)
        if (std::find(o.row_map.begin(), o.row_map.end(), -1) != o.row_map.end() && zeros[si].parts.empty())
          place_zero(si, DType::F32, inner);
      for (size_t i = 0; i < E.operands.size(); ++i) {
        const EltOperand& o = E.operands[i];
        if (o.act != ir::kNoTensor) continue;
        std::vector<int> ids;
        if (o.const_f16)
          for (float v : o.values)
            if (!(ir::round_f16(v) == v || std::isnan(v)))
              throw std::logic_error(E.name + ": a constant marked f16 holds a value that is not an f16");
        // A constant of several rows read through a row map (the packed heads' ones rows, one per
        // slot): one row a block, so vectors reading different rows on one cycle use different
        // slices (in one block the ones pass read one row a cycle: ~700 cycles longer).
        TilingOptions ct = tiling;
        if (!o.row_map.empty() && o.const_rows > 1) {
          ct.port_split_min_rows = 1;
          ct.port_split_parts = o.const_rows;
          ct.port_split_min_part_rows = 1;
          ct.port_split_max_part_rows = 1;
        }
        consts[si][i] = place_tensor(alloc, fmt::format("{}.c{}", E.name, i), o.const_f16 ? DType::F16 : DType::F32,
                                     {o.const_rows, inner}, ct, &ids);
        tensor_blobs(consts[si][i], o.const_f16 ? to_f16_bytes(o.values) : to_f32_bytes(o.values), lanes, &res.blobs);
      }
    }
  }
  // The plain X (no row map) of an install-bound layer (install_bound_rows) with several column
  // tiles, of >= port_split_min_rows rows: every MXM plane streams all of its rows (each plane holds
  // its own column tiles), so it is stored in at least one row block per plane, each block on its own
  // slices (one read per cycle each). With the default 64-row blocks a 128-row X had two slices for
  // four planes' reads: BERT-base's FFN up projection searched ~890 cycles per plane for a free X
  // read port (now ~260) and the piece took 7,610 cycles (7,321 with this). Its Y (no row map) too:
  // all planes drain their column tiles of every row at once, and the elementwise passes after it
  // read and write it vector by vector (FFN 7,321 -> 7,221, attention 9,960 -> 9,760).
  std::map<ir::TensorId, int64_t> wide_x;  // tensor (X or Y) -> rows per block
  {
    const int64_t planes = mxm_plane_count(b.cfg());
    for (const LoweredLayer& L : lm.layers) {
      if (!L.tap_rows.empty() || !L.x_rows.empty() || L.x == ir::kNoTensor || L.N <= static_cast<int64_t>(lanes)) continue;
      const ir::Shape& xs = lm.tensor(g, L.x).shape;
      int64_t M = 1;
      for (size_t i = 0; i + 1 < xs.size(); ++i) M *= xs[i];
      const bool i8 = quant && quant->i8_tensors.count(L.x);
      if (M < tiling.port_split_min_rows || !install_bound_rows(b.cfg(), M, i8 ? DType::I8 : DType::F16)) continue;
      wide_x[L.x] = std::max<int64_t>(1, (M + planes - 1) / planes);
      if (L.y_shape.empty() && L.y_rows.empty()) wide_x[L.y] = std::max<int64_t>(1, (M + planes - 1) / planes);
    }
  }
  // The input of a MaxPool on row pairs (passes/lower_conv.h "Row pairs", stored [N, J, W, 2C]) is
  // stored in blocks of at most one stored image row (W rows), so a window's kernel rows are read
  // from different slices: each output vector reads 9 inputs, and with 256-row blocks the pool was
  // bound by the read ports of 2-3 slices (ResNet-50: the pool ended 1,337 cycles after its conv,
  // 805 with this rule; blocks of at most 112 rows for EVERY tensor were measured slower overall,
  // 59,491 vs 58,667 cycles, so the rule is this tensor's alone).
  std::map<ir::TensorId, int64_t> pool_rows;  // tensor -> max rows per block
  for (const LoweredLane& Ln : lm.lanes) {
    if (Ln.mode != LoweredLane::Mode::Move) continue;
    for (const LoweredEltwise& E : lm.eltwise)
      if (E.y == Ln.x && E.minmax_chain() && !E.operands.empty() && !E.operands[0].row_map.empty())
        for (const LoweredLayer& L : lm.layers)
          if (L.y == E.operands[0].act && L.y_shape.size() == 4) pool_rows[L.y] = L.y_shape[2];
  }
  auto tiling_of = [&](ir::TensorId t) {
    TilingOptions o = tiling;
    const auto it = wide_x.find(t);
    if (it != wide_x.end()) o.port_split_min_part_rows = std::min(o.port_split_min_part_rows, it->second);
    const auto pr = pool_rows.find(t);
    if (pr != pool_rows.end()) {
      o.port_split_max_part_rows = std::min(o.port_split_max_part_rows, pr->second);
      o.port_split_min_part_rows = std::min(o.port_split_min_part_rows, pr->second);
    }
    return o;
  };
  // 1 / the i8 scale of t (the `muli` factor of an on-chip quantization).
  auto inv_scale = [&](ir::TensorId t) {
    return static_cast<float>(1.0 / static_cast<double>(quant->i8_tensors.at(t)));
  };
  // A step's fused quantized copy of its y (LoweredLayer::y2, LoweredEltwise::y2): an i8 tensor
  // of y's stored shape, placed before the step; keep_copy lists and records it after the step.
  struct Copy {
    PlacedTensor t;
    ir::TensorId id = ir::kNoTensor;
  };
  auto place_copy = [&](const std::string& step, ir::TensorId id, const std::vector<int64_t>& shape, bool y_i8) {
    Copy c;
    c.id = id;
    if (id == ir::kNoTensor) return c;
    if (!quant || !quant->i8_tensors.count(id) || y_i8)
      throw std::logic_error(step + ": a second output without an i8 scale, or of an i8 y");
    c.t = place_tensor(alloc, lm.tensor(g, id).name, DType::I8, shape, tiling_of(id), &alloc_ids[id]);
    return c;
  };
  auto keep_copy = [&](Copy& c) {
    if (c.id == ir::kNoTensor) return;
    if (keep_intermediates)
      for (TensorDesc& d : tensor_descs(c.t, TensorRole::Output)) res.descs.push_back(std::move(d));
    placed.emplace(c.id, std::move(c.t));
  };

  const StepUses uses = step_uses(lm);  // for the products' column need order (column_need.h)
  for (size_t si = 0; si < lm.steps.size(); ++si) {
    const LoweredStep& step = lm.steps[si];
    ir::TensorId yid = ir::kNoTensor;
    b.forget_undo();  // no transaction spans steps; keeps the undo logs from growing with the model
    const MatmulStats before = res.stats;  // for this step's StepSpan
    uint64_t step_first = UINT64_MAX;      // this step's first issue (StepSpan::start)
    uint64_t step_end = 0;                 // this step's own last landing (StepSpan::own_end)
    auto add_step = [&](const MatmulStats& s) {
      add_stats(&res.stats, s);
      step_first = std::min(step_first, s.first_issue);
      step_end = std::max(step_end, s.last_end);
    };
    if (step.gather && !lm.gathers[step.index].table.empty()) {
      const LoweredGather& G = lm.gathers[step.index];
      PlacedTensor& table = consts[si].front();
      PlacedTensor y = place_tensor(alloc, lm.tensor(g, G.y).name, table.dtype, lm.tensor(g, G.y).shape, tiling,
                                    &alloc_ids[G.y]);
      if (consts[si].size() == 1) {
        LookupSpec spec;
        spec.name = G.name;
        spec.idx = &placed.at(G.x);
        spec.table = &table;
        spec.dst = &y;
        add_step(gather.lookup(spec));
      } else {
        // Split table: one lookup per part into a partial [T, D] (zero rows for ids outside the
        // part), then their bit-preserving sum into y (gather_kernel.h); partials freed after.
        std::vector<PlacedTensor> partial(consts[si].size());
        std::vector<int> part_ids;
        CombineSpec cs;
        cs.name = G.name + ".combine";
        cs.dst = &y;
        for (size_t p = 0; p < partial.size(); ++p) {
          partial[p] = place_tensor(alloc, fmt::format("{}.part{}", G.name, p), table.dtype, lm.tensor(g, G.y).shape,
                                    tiling, &part_ids);
          LookupSpec spec;
          spec.name = fmt::format("{}.p{}", G.name, p);
          spec.idx = &placed.at(G.x);
          spec.idx_row0 = static_cast<int64_t>(p) * y.rows;
          spec.table = &consts[si][p];
          spec.dst = &partial[p];
          add_step(gather.lookup(spec));
          cs.parts.push_back(&partial[p]);
        }
        add_step(gather.combine(cs));
        uint64_t last = 0;
        for (const PlacedTensor& t : partial) last = std::max(last, t.last_read);
        if (!keep_intermediates)
          for (int id : part_ids) alloc.release(id, last);
      }
      yid = G.y;
      placed.emplace(G.y, std::move(y));
    } else if (step.gather) {
      // im2col rows: taps blocks of the source's whole vectors (taps == 1: the source row as is).
      const LoweredGather& G = lm.gathers[step.index];
      PlacedTensor& x = placed.at(G.x);
      const int64_t inner = G.taps > 1 ? G.taps * static_cast<int64_t>(x.vpr) * lanes : x.inner;
      PlacedTensor y = place_tensor(alloc, lm.tensor(g, G.y).name, x.dtype, {G.rows, inner}, tiling, &alloc_ids[G.y]);
      GatherSpec spec;
      spec.name = G.name;
      spec.src = &x;
      spec.zero = zeros[si].parts.empty() ? nullptr : &zeros[si];
      spec.dst = &y;
      spec.taps = G.taps;
      spec.map = &G.map;
      add_step(gather.schedule(spec));
      yid = G.y;
      placed.emplace(G.y, std::move(y));
    } else if (step.lane) {
      const LoweredLane& Ln = lm.lanes[step.index];
      PlacedTensor& x = placed.at(Ln.x);
      const LaneMode mode = lane_mode(Ln.mode);
      const DType yt = mode == LaneMode::Broadcast || mode == LaneMode::Move ? x.dtype
                       : lm.f32_output(Ln.y) || Ln.y_f32                        ? DType::F32
                                                                              : DType::F16;
      PlacedTensor y = place_tensor(alloc, lm.tensor(g, Ln.y).name, yt, Ln.y_shape, tiling_of(Ln.y), &alloc_ids[Ln.y]);
      if (lane_mask_row(mode, x.inner, lanes).size() != (consts[si].empty() ? 0 : lanes))
        throw std::logic_error(Ln.name + ": x's stored row length differs from its graph shape's");
      LaneSpec spec;
      spec.name = Ln.name;
      spec.mode = mode;
      spec.x = &x;
      spec.y = &y;
      spec.square = Ln.square;
      spec.src_lane = static_cast<uint32_t>(Ln.src_lane);
      spec.segment = Ln.segment;
      if (mode == LaneMode::Broadcast && !Ln.lane_map.empty()) spec.lane_map = &Ln.lane_map;
      if (mode == LaneMode::Move) {
        spec.x_rows = &Ln.x_rows;
        spec.x_cols = &Ln.x_cols;
        spec.move_width = static_cast<uint32_t>(Ln.move_width);
        spec.y_cols = Ln.y_cols.empty() ? nullptr : &Ln.y_cols;
        if (!Ln.one_cols.empty()) {
          spec.one_cols = &Ln.one_cols;
          spec.one_lanes = &Ln.one_lanes;
        }
      }
      for (const LoweredLane::Post& p : Ln.post) spec.post.push_back({static_cast<Opcode>(p.op), p.imm});
      if (Ln.center != ir::kNoTensor) spec.center = &placed.at(Ln.center);
      // The mask acts on x - center (f32) when there is a center, else on x.
      if (!consts[si].empty()) spec.mask = &consts[si][x.dtype == DType::F16 && !spec.center ? 0 : consts[si].size() - 1];
      add_step(lane.schedule(spec));
      yid = Ln.y;
      placed.emplace(Ln.y, std::move(y));
    } else if (step.dense) {
      const LoweredLayer& L = lm.layers[step.index];
      PlacedWeights& w = weights[si];
      PlacedTensor& bias = biases[si];
      const ir::Tensor& yt = lm.tensor(g, L.y);
      // Several layers may write disjoint rows of one y (lower_attention.h): placed by the first.
      if (!placed.count(L.y))
        placed.emplace(L.y, place_tensor(alloc, yt.name,
                                         quant && quant->i8_tensors.count(L.y) ? DType::I8
                                         : lm.f32_output(L.y) || L.y_f32        ? DType::F32
                                                                              : DType::F16,
                                         L.y_shape.empty() ? yt.shape : L.y_shape, tiling_of(L.y), &alloc_ids[L.y]));
      PlacedTensor& y = placed.at(L.y);
      PlacedTensor& x = placed.at(L.x);
      if (as_copy(step.index)) {  // whole rows of x into rows of y (LoweredLayer::copy)
        if (x.dtype != y.dtype || x.inner != y.inner || L.xsegs.size() != 1)
          throw std::logic_error(L.name + ": a row copy between tensors of different types or widths");
        std::vector<int64_t> src(L.x_rows.size());
        for (size_t i = 0; i < src.size(); ++i) src[i] = L.xsegs[0].row_off + L.x_rows[i];
        GatherSpec gs;
        gs.name = L.name;
        gs.src = &x;
        gs.dst = &y;
        gs.map = &src;
        gs.dst_rows = &L.y_rows;
        add_step(gather.schedule(gs));
        yid = L.y;
      } else {
      MatmulSpec spec;
      spec.name = L.name;
      spec.x = &x;
      spec.w = L.b != ir::kNoTensor ? nullptr : &w;
      spec.y = &y;
      spec.bias = L.bias.empty() ? nullptr : &bias;
      spec.relu = L.relu;
      if (quant && quant->layers[step.index].int8) spec.scale = &scales[si];
      spec.x_rows = L.x_rows;
      spec.y_rows = L.y_rows;
      spec.col_rank = column_need(lm, uses, si, lanes);
      spec.whole_tiles = whole_tiles_apply(tiling, product_rows(g, lm, L));
      if (!L.xsegs.empty())  // the weights were placed above: the k-tiles only
        view_ktiles(L, lanes, [&](ir::TensorId t) { return &placed.at(t); }, nullptr, &spec.ktiles);
      if (!L.tap_rows.empty()) {  // conv taps read in place (passes/lower_conv.h)
        spec.ktiles = conv_tap_ktiles(L, lanes);
        spec.x_zero = zeros[si].parts.empty() ? nullptr : &zeros[si];
      }
      if (L.b != ir::kNoTensor) {
        spec.b = &placed.at(L.b);
        spec.b_row0 = L.b_row0;
        spec.b_K = L.K;
        spec.b_N = L.N;
        spec.b_trans = L.b_trans;
      }
      if (L.residual != ir::kNoTensor) {  // passes/fuse_residual.h; an i8 y quantizes the f16 sum
        spec.residual = &placed.at(L.residual);
        if (quant && quant->layers[step.index].r_int8)  // i8 residual: its scale row (1 / y_scale folded)
          spec.res_scale = &rscales[si];
        else if (y.dtype == DType::I8)
          spec.y_inv_scale = inv_scale(L.y);
      }
      if (L.row_div != ir::kNoTensor) spec.row_div = &placed.at(L.row_div);  // a folded LayerNorm's sd
      Copy y2 = place_copy(L.name, L.y2, L.y_shape.empty() ? yt.shape : L.y_shape, y.dtype == DType::I8);
      if (y2.id != ir::kNoTensor) {
        spec.y2 = &y2.t;
        spec.y2_inv_scale = inv_scale(L.y2);
      }
      add_step(mm.schedule(spec));
      keep_copy(y2);
      const int64_t M = !L.tap_rows.empty() ? static_cast<int64_t>(L.tap_rows[0].size())
                        : L.x_rows.empty()    ? x.rows
                                              : static_cast<int64_t>(L.x_rows.size());
      res.macs += L.model_macs > 0 ? static_cast<uint64_t>(L.model_macs)
                                   : static_cast<uint64_t>(M) * static_cast<uint64_t>(L.K) * static_cast<uint64_t>(L.N);
      yid = L.y;
      }
    } else {
      const LoweredEltwise& E = lm.eltwise[step.index];
      const ir::Tensor& yt = lm.tensor(g, E.y);
      // i8: the step quantizes the input of int8 layers on chip (passes/quantize.h).
      const bool q8 = quant && quant->i8_tensors.count(E.y);
      // Each part of y is placed in SRAM free by the time its first row could be written (its
      // operands' rows readable, chunk 0) if there is such space (SramAllocator::set_write_hint):
      // a pass whose output reused space read until late waited for it (BERT-base's head packing).
      auto row_ready = [&](int64_t r) {
        uint64_t t = 0;
        for (const EltOperand& o : E.operands) {
          if (o.act == ir::kNoTensor || o.lane_bcast) continue;
          const PlacedTensor& a = placed.at(o.act);
          const int64_t sr = o.row_map.empty() ? (a.rows == 1 ? 0 : r) : o.row_map[static_cast<size_t>(r)];
          if (sr < 0 || sr >= a.rows) continue;
          t = std::max(t, a.ready[static_cast<size_t>(sr * a.vpr)]);
        }
        return t;
      };
      std::function<uint64_t(int64_t, int64_t)> part_hint = [&](int64_t r0, int64_t r1) {
        uint64_t t = UINT64_MAX;
        for (int64_t r = r0; r < r1; ++r) t = std::min(t, row_ready(r));
        return t;
      };
      PlacedTensor y = place_tensor(alloc, yt.name, q8 ? DType::I8 : lm.f32_output(E.y) || E.y_f32 ? DType::F32 : DType::F16,
                                    E.y_shape.empty() ? yt.shape : E.y_shape, tiling_of(E.y), &alloc_ids[E.y], &part_hint);
      EltwiseSpec spec;
      if (q8) spec.y_inv_scale = inv_scale(E.y);
      spec.name = E.name;
      spec.has_op = E.has_op;
      spec.op = static_cast<Opcode>(E.vxm_op);
      spec.relu = E.relu;
      spec.disjoint_sum = E.disjoint_sum;
      for (const LoweredEltwise::Post& po : E.post) spec.post.push_back({static_cast<Opcode>(po.op), po.imm, po.operand});
      spec.y = &y;
      for (size_t i = 0; i < E.operands.size(); ++i) {
        const EltOperand& o = E.operands[i];
        spec.row_maps.push_back(o.row_map.empty() ? nullptr : &o.row_map);
        spec.lane_bcast.push_back(o.lane_bcast ? 1 : 0);
        if (o.act != ir::kNoTensor) {
          spec.operands.push_back(&placed.at(o.act));
        } else {
          spec.operands.push_back(&consts[si][i]);
        }
      }
      spec.zero = zeros[si].parts.empty() ? nullptr : &zeros[si];
      // An i8 pool (passes/quantize.cpp): every operand an i8 tensor of y's own scale.
      if (q8) {
        bool same = !E.operands.empty();
        for (const EltOperand& o : E.operands)
          same = same && o.act != ir::kNoTensor && quant->i8_tensors.count(o.act) &&
                 quant->i8_tensors.at(o.act) == quant->i8_tensors.at(E.y);
        spec.same_i8_scale = same;
      }
      Copy y2 = place_copy(E.name, E.y2, E.y_shape.empty() ? yt.shape : E.y_shape, q8);
      if (y2.id != ir::kNoTensor) {
        spec.y2 = &y2.t;
        spec.y2_inv_scale = inv_scale(E.y2);
      }
      add_step(ew.schedule(spec));
      yid = E.y;
      placed.emplace(E.y, std::move(y));
      keep_copy(y2);
    }
    {
      StepSpan sp;
      sp.kind = step.gather ? 'g' : step.lane ? 'l' : step.dense ? (as_copy(step.index) ? 'g' : 'd') : 'e';
      sp.name = step.gather ? lm.gathers[step.index].name
                : step.lane ? lm.lanes[step.index].name
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
    bool written_later = false;  // by another layer writing other rows of it
    for (size_t sj = si + 1; sj < lm.steps.size() && step.dense; ++sj)
      written_later = written_later || (lm.steps[sj].dense && !lm.steps[sj].gather && lm.layers[lm.steps[sj].index].y == yid);
    if ((lm.is_output(yid) || keep_intermediates) && !written_later)
      for (TensorDesc& d : tensor_descs(placed.at(yid), TensorRole::Output)) res.descs.push_back(std::move(d));
    if (keep_intermediates) continue;  // nothing is released
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
  return res;
}

}  // namespace lpu::compiler
