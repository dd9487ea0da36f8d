// ModelScheduler (schedule_run.h), part 3: one step of each kind on its kernel.
#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "compiler/passes/column_need.h"
#include "compiler/passes/lower_attention.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/schedule_detail.h"
#include "compiler/passes/schedule_run.h"

namespace lpu::compiler {

using namespace schedule_detail;

ir::TensorId ModelScheduler::lookup_step(size_t si) {
  const LoweredStep& step = lm.steps[si];
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
      partial[p] = place_tensor(alloc, fmt::format("{}.part{}", G.name, p), table.dtype,
                                lm.tensor(g, G.y).shape, tiling, &part_ids);
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
  placed.emplace(G.y, std::move(y));
  return G.y;
}

ir::TensorId ModelScheduler::gather_step(size_t si) {
  const LoweredStep& step = lm.steps[si];
  // im2col rows: taps blocks of the source's whole vectors (taps == 1: the source row as is).
  const LoweredGather& G = lm.gathers[step.index];
  PlacedTensor& x = placed.at(G.x);
  const int64_t inner = G.taps > 1 ? G.taps * static_cast<int64_t>(x.vpr) * lanes : x.inner;
  PlacedTensor y =
      place_tensor(alloc, lm.tensor(g, G.y).name, x.dtype, {G.rows, inner}, tiling, &alloc_ids[G.y]);
  GatherSpec spec;
  spec.name = G.name;
  spec.src = &x;
  spec.zero = zeros[si].parts.empty() ? nullptr : &zeros[si];
  spec.dst = &y;
  spec.taps = G.taps;
  spec.map = &G.map;
  add_step(gather.schedule(spec));
  placed.emplace(G.y, std::move(y));
  return G.y;
}

ir::TensorId ModelScheduler::lane_step(size_t si) {
  const LoweredStep& step = lm.steps[si];
  const LoweredLane& Ln = lm.lanes[step.index];
  PlacedTensor& x = placed.at(Ln.x);
  const LaneMode mode = lane_mode(Ln.mode);
  const DType yt = mode == LaneMode::Broadcast || mode == LaneMode::Move ? x.dtype
                   : lm.f32_output(Ln.y) || Ln.y_f32                     ? DType::F32
                                                                         : DType::F16;
  PlacedTensor y =
      place_tensor(alloc, lm.tensor(g, Ln.y).name, yt, Ln.y_shape, tiling_of(Ln.y), &alloc_ids[Ln.y]);
  // lane_constants built the mask row for x's stored width (LoweredModel::stored_shape) before x
  // was placed: it must be the mask x's placed rows need.
  const std::vector<int64_t> xs = lm.stored_shape(g, Ln.x);
  if (lane_mask_row(mode, x.inner, lanes) != lane_mask_row(mode, xs.empty() ? 1 : xs.back(), lanes))
    throw std::logic_error(fmt::format("{}: its mask row is for rows of {} lanes, x is stored with {}", Ln.name,
                                       xs.empty() ? 1 : xs.back(), x.inner));
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
  if (!consts[si].empty())
    spec.mask = &consts[si][x.dtype == DType::F16 && !spec.center ? 0 : consts[si].size() - 1];
  add_step(lane.schedule(spec));
  placed.emplace(Ln.y, std::move(y));
  return Ln.y;
}

ir::TensorId ModelScheduler::dense_step(size_t si) {
  const LoweredStep& step = lm.steps[si];
  const LoweredLayer& L = lm.layers[step.index];
  const ir::Tensor& yt = lm.tensor(g, L.y);
  // Several layers may write disjoint rows of one y (lower_attention.h): placed by the first.
  if (!placed.count(L.y))
    placed.emplace(L.y,
                   place_tensor(alloc, yt.name,
                                quant && quant->i8_tensors.count(L.y) ? DType::I8
                                : lm.f32_output(L.y) || L.y_f32       ? DType::F32
                                                                      : DType::F16,
                                L.y_shape.empty() ? yt.shape : L.y_shape, tiling_of(L.y), &alloc_ids[L.y]));
  PlacedTensor& y = placed.at(L.y);
  PlacedTensor& x = placed.at(L.x);
  if (as_copy(step.index)) {  // whole rows of x into rows of y (LoweredLayer::copy)
    copy_rows(si, x, y);
  } else {
    product(si, x, y);
  }
  return L.y;
}

void ModelScheduler::copy_rows(size_t si, PlacedTensor& x, PlacedTensor& y) {
  const LoweredLayer& L = lm.layers[lm.steps[si].index];
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
}

void ModelScheduler::product(size_t si, PlacedTensor& x, PlacedTensor& y) {
  const LoweredStep& step = lm.steps[si];
  const LoweredLayer& L = lm.layers[step.index];
  PlacedWeights& w = weights[si];
  PlacedTensor& bias = biases[si];
  const ir::Tensor& yt = lm.tensor(g, L.y);
  // The rows the layout decisions assume (product_rows) must be the rows the product runs.
  const int64_t M = product_rows(g, lm, L);
  if (L.tap_rows.empty() && L.x_rows.empty() && M != x.rows)
    throw std::logic_error(fmt::format("schedule: layer '{}' was planned for {} rows of X, X is stored with {}", L.name,
                                       M, x.rows));
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
  spec.whole_tiles = whole_tiles_apply(tiling, M);
  if (!L.xsegs.empty())  // the weights were placed above: the k-tiles only
    view_ktiles(
        L, lanes, [&](ir::TensorId t) { return &placed.at(t); }, nullptr, &spec.ktiles);
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
  res.macs += L.model_macs > 0
                  ? static_cast<uint64_t>(L.model_macs)
                  : static_cast<uint64_t>(M) * static_cast<uint64_t>(L.K) * static_cast<uint64_t>(L.N);
}

ir::TensorId ModelScheduler::eltwise_step(size_t si) {
  const LoweredStep& step = lm.steps[si];
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
  PlacedTensor y =
      place_tensor(alloc, yt.name,
                   q8                              ? DType::I8
                   : lm.f32_output(E.y) || E.y_f32 ? DType::F32
                                                   : DType::F16,
                   E.y_shape.empty() ? yt.shape : E.y_shape, tiling_of(E.y), &alloc_ids[E.y], &part_hint);
  EltwiseSpec spec;
  if (q8) spec.y_inv_scale = inv_scale(E.y);
  spec.name = E.name;
  spec.has_op = E.has_op;
  spec.op = static_cast<Opcode>(E.vxm_op);
  spec.relu = E.relu;
  spec.disjoint_sum = E.disjoint_sum;
  for (const LoweredEltwise::Post& po : E.post)
    spec.post.push_back({static_cast<Opcode>(po.op), po.imm, po.operand, po.operand2});
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
  placed.emplace(E.y, std::move(y));
  keep_copy(y2);
  return E.y;
}

}  // namespace lpu::compiler
