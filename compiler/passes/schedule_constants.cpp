// ModelScheduler (schedule_run.h), part 2: every constant, placed before any activation.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "compiler/io_binding.h"
#include "compiler/passes/lower_attention.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/schedule_detail.h"
#include "compiler/passes/schedule_run.h"

namespace lpu::compiler {

using namespace schedule_detail;

void ModelScheduler::place_constants() {
  weights.assign(lm.steps.size(), PlacedWeights{});
  biases.assign(lm.steps.size(), PlacedTensor{});
  scales.assign(lm.steps.size(), PlacedTensor{});   // int8 layers: epilogue scale rows
  rscales.assign(lm.steps.size(), PlacedTensor{});  // int8 layers with an i8 residual: its scale row
  consts.assign(lm.steps.size(), {});
  zeros.assign(lm.steps.size(), PlacedTensor{});  // an all-zero row for padding reads (conv/pool steps)
  for (size_t si = 0; si < lm.steps.size(); ++si) {
    const LoweredStep& step = lm.steps[si];
    if (step.gather && !lm.gathers[step.index].table.empty()) {
      lookup_table_constants(si);
    } else if (step.gather) {
      const LoweredGather& G = lm.gathers[step.index];
      if (std::find(G.map.begin(), G.map.end(), -1) != G.map.end()) place_zero(si, DType::F16, lanes);
    } else if (step.lane) {
      lane_constants(si);
    } else if (step.dense) {
      dense_constants(si);
    } else {
      eltwise_constants(si);
    }
  }
}

void ModelScheduler::place_zero(size_t si, DType dt, int64_t inner) {
  std::vector<int> ids;
  zeros[si] = place_tensor(alloc, fmt::format("zero.s{}", si), dt, {1, inner}, tiling, &ids);
  tensor_blobs(zeros[si], std::vector<uint8_t>(static_cast<size_t>(inner) * dtype_bytes(dt), 0), lanes,
               &res.blobs);
}

// An epilogue row of a dense step (f32 [1, N]: int8 scale or bias). A layer that is not
// install-bound (its planes drain rows at once) stores it as [copies x column tiles, lanes] in up
// to one row block per MXM plane (each its own slices): one SRAM slice serves one read per cycle, so with the
// [1, N] row the epilogue of a multi-tile layer drained one output row per cycle for the whole
// chip, and a one-tile layer's fetches took its slices' read port on every drain cycle
// (matmul_kernel.h; MatmulSpec::scale). Install-bound layers (batch-1
// and BERT-size int8 rows: install_bound_rows, the kernel's install-bound rule) keep [1, N]
// unless tiling.spread_epilogue_rows: their drains are mostly not the bound, and the spread rows
// can cost them more in read-port conflicts (layout tuning tries both).
void ModelScheduler::place_epilogue_row(const LoweredLayer& L, bool i8, const std::string& name,
                                        const std::vector<float>& vals, PlacedTensor* out) {
  std::vector<int> ids;
  const int64_t M = product_rows(g, lm, L);
  const int64_t nt = (L.N + lanes - 1) / lanes;
  const bool spread = tiling.spread_epilogue_rows && spread_applies(b.cfg(), tiling, M);
  if (!spread && install_bound_rows(b.cfg(), M, i8 ? DType::I8 : DType::F16)) {
    *out = place_tensor(alloc, name, DType::F32, {1, L.N}, tiling, &ids);
    tensor_blobs(*out, ir::f32_bytes(vals), lanes, &res.blobs);
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
  tensor_blobs(*out, ir::f32_bytes(rows), lanes, &res.blobs);
}

// A dense step's weight blob ([K, N] in whole tiles; `packed`: only these rows of each k-tile) and,
// for an int8 layer (`q`), its per-column epilogue scale row.
// rows: the rows each k-tile loads (conv taps, view segments; nullptr: every valid row), stored
// packed when the tiling packs them, and the rows a narrow tile's transposition is measured by.
void ModelScheduler::place_layer_weights(size_t si, const LoweredLayer& L, int64_t K, DType dt,
                                         const std::vector<uint8_t>& bytes, const LayerQuant* q,
                                         const RowRanges* rows) {
  const RowRanges* packed = rows && tiling.pack_view_weights ? rows : nullptr;
  weights[si] =
      place_weights(alloc, L.name + ".W", dt, K, L.N, bytes, tiling, lanes, &res.blobs, packed, rows);
  if (q) place_epilogue_row(L, true, L.name + ".scale", q->epi_scale, &scales[si]);
  if (q && q->r_int8) place_epilogue_row(L, true, L.name + ".rscale", q->epi_rscale, &rscales[si]);
}

void ModelScheduler::lookup_table_constants(size_t si) {
  const LoweredStep& step = lm.steps[si];
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
    consts[si].push_back(
        place_tensor(alloc, split ? fmt::format("{}.table.p{}", G.name, r0 / pr) : G.name + ".table", tt,
                     {n + (split ? 1 : 0), G.table_cols}, one, &ids));
    std::vector<float> t16(static_cast<size_t>((n + (split ? 1 : 0)) * G.table_cols), 0.f);
    for (size_t k = 0; k < static_cast<size_t>(n * G.table_cols); ++k)
      t16[k] = ir::round_f16(G.table[static_cast<size_t>(r0 * G.table_cols) + k]);
    tensor_blobs(consts[si].back(), tt == DType::F16 ? ir::f16_bytes(t16) : ir::f32_bytes(t16), lanes,
                 &res.blobs);
  }
}

void ModelScheduler::lane_constants(size_t si) {
  const LoweredStep& step = lm.steps[si];
  // Mask row of a reduction whose rows end inside a vector, in both float types (the type x is
  // stored in is known when x is placed): consts[si] = {f16, f32}; f32 alone with a center (the
  // mask then acts on x - center, lane_kernel.h).
  const LoweredLane& Ln = lm.lanes[step.index];
  // x's stored row width (a paired score row holds two heads' T lanes, pair_heads.h).
  const std::vector<int64_t> xs = lm.stored_shape(g, Ln.x);
  const std::vector<float> m = lane_mask_row(lane_mode(Ln.mode), xs.empty() ? 1 : xs.back(), lanes);
  if (!m.empty()) {
    for (DType dt : {DType::F16, DType::F32}) {
      if (Ln.center != ir::kNoTensor && dt != DType::F32) continue;
      std::vector<int> ids;
      consts[si].push_back(place_tensor(alloc, fmt::format("{}.mask{}", Ln.name, dtype_bytes(dt) * 8), dt,
                                        {1, static_cast<int64_t>(lanes)}, tiling, &ids));
      tensor_blobs(consts[si].back(), dt == DType::F16 ? ir::f16_bytes(m) : ir::f32_bytes(m), lanes,
                   &res.blobs);
    }
  }
}

void ModelScheduler::dense_constants(size_t si) {
  const LoweredStep& step = lm.steps[si];
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
        if (std::find(m.begin(), m.end(), -1) != m.end() && zeros[si].parts.empty())
          place_zero(si, xt, lanes);
    }
    const RowRanges* tap_rows = rows.empty() ? nullptr : &rows;
    if (q8) {
      const LayerQuant& q = quant->layers[step.index];
      place_layer_weights(si, L, K, DType::I8, expand_conv_weight_i8(L, q.wq, lanes), &q, tap_rows);
    } else {
      place_layer_weights(si, L, K, DType::F16, ir::f16_bytes(w), nullptr, tap_rows);
    }
  } else if (L.b != ir::kNoTensor) {
    // weights from an activation (lower_attention.h): nothing to place
  } else if (!L.xsegs.empty()) {  // X through a view: one weight tile per segment piece
    std::vector<float> w;
    std::vector<MatmulKTile> kt;
    view_ktiles(
        L, lanes, [](ir::TensorId) { return nullptr; }, &w, &kt);
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
      place_layer_weights(si, L, K, DType::F16, ir::f16_bytes(w), nullptr, &rows);
    }
  } else if (quant && quant->layers[step.index].int8) {
    const LayerQuant& q = quant->layers[step.index];
    place_layer_weights(si, L, L.K, DType::I8, std::vector<uint8_t>(q.wq.begin(), q.wq.end()), &q, nullptr);
  } else {
    place_layer_weights(si, L, L.K, DType::F16, ir::f16_bytes(L.w), nullptr, nullptr);
  }
  if (!L.bias.empty()) {
    const bool q8 = quant && quant->layers[step.index].int8;
    place_epilogue_row(L, q8, L.name + ".bias", q8 ? quant->layers[step.index].epi_bias : L.bias,
                       &biases[si]);
  }
}

void ModelScheduler::eltwise_constants(size_t si) {
  const LoweredStep& step = lm.steps[si];
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
    consts[si][i] = place_tensor(alloc, fmt::format("{}.c{}", E.name, i),
                                 o.const_f16 ? DType::F16 : DType::F32, {o.const_rows, inner}, ct, &ids);
    tensor_blobs(consts[si][i], o.const_f16 ? ir::f16_bytes(o.values) : ir::f32_bytes(o.values), lanes,
                 &res.blobs);
  }
}

}  // namespace lpu::compiler
