// Conv / pooling lowering onto gathers, dense layers and row-mapped VXM steps (see lower_conv.h).
#include "compiler/passes/lower_conv.h"

#include <algorithm>
#include <fmt/format.h>
#include <stdexcept>

#include "compiler/ir/dtype.h"
#include "compiler/passes/conv_window.h"
#include "compiler/reference/interpreter.h"
#include "isa/chip_config.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

bool is_eltwise_kind(ir::OpKind k) {
  switch (k) {
    case ir::OpKind::Add: case ir::OpKind::Sub: case ir::OpKind::Mul: case ir::OpKind::Div: case ir::OpKind::Pow:
    case ir::OpKind::Where: case ir::OpKind::Relu: case ir::OpKind::Sigmoid: case ir::OpKind::Tanh:
    case ir::OpKind::Erf: case ir::OpKind::Exp: case ir::OpKind::Log: case ir::OpKind::Sqrt:
    case ir::OpKind::Reciprocal: case ir::OpKind::Neg: case ir::OpKind::Abs: case ir::OpKind::Max:
    case ir::OpKind::Min: case ir::OpKind::Cast:
      return true;
    default:
      return false;
  }
}

EltOperand act_op(ir::TensorId t, std::vector<int64_t> map = {}) {
  EltOperand o;
  o.act = t;
  o.row_map = std::move(map);
  return o;
}

}  // namespace

ConvLowering::ConvLowering(const ir::Graph& g, LoweredModel& lm, std::vector<int>& layer_of,
                           std::vector<char>& produced, std::vector<ir::TensorId>& alias, uint32_t pack_lanes,
                           bool disjoint_rows, bool vxm_depthwise)
    : g_(g), pack_lanes_(pack_lanes), lm_(lm), layer_of_(layer_of), produced_(produced), alias_(alias),
      disjoint_(disjoint_rows), vxm_depthwise_(vxm_depthwise) {}

ir::TensorId ConvLowering::fresh(const std::string& name, ir::DType dt, const ir::Shape& shape) {
  const ir::TensorId id = lm_.add_extra(g_, name, dt, shape);
  produced_.resize(static_cast<size_t>(id) + 1, 0);
  return id;
}

void ConvLowering::add_eltwise(LoweredEltwise E) {
  laid_out_[lm_.eltwise.size()] = E.operands.size();  // built in the conv layout (a pool's rows)
  produced_.resize(std::max(produced_.size(), static_cast<size_t>(E.y) + 1), 0);
  produced_[static_cast<size_t>(E.y)] = 1;
  lm_.steps.push_back({false, lm_.eltwise.size()});
  lm_.eltwise.push_back(std::move(E));
}

ir::TensorId ConvLowering::conv_input(const ir::Op& op, ir::TensorId t, ir::Shape* nhwc) {
  const ir::TensorId a = alias_[static_cast<size_t>(t)];
  const ir::Tensor& at = g_.tensor(a);
  if (at.dtype != ir::DType::F32 && at.dtype != ir::DType::F16)
    conv_fail(g_, op, fmt::format("input '{}' has type {}; float models only", at.name, ir::dtype_name(at.dtype)));
  auto it = nhwc_.find(a);
  if (it != nhwc_.end()) {
    *nhwc = it->second;
    return nonfinite_.count(a) ? cleared(a) : a;
  }
  if (at.is_const) conv_fail(g_, op, fmt::format("input '{}' is a constant; expected an activation", at.name));
  for (LoweredInput& in : lm_.inputs) {
    if (in.alias != a) continue;
    if (at.shape.size() != 4)
      conv_fail(g_, op, fmt::format("input '{}' has shape {}; expected [N, C, H, W]", at.name, ir::shape_str(at.shape)));
    in.shape = {at.shape[0], at.shape[2], at.shape[3], at.shape[1]};
    const int64_t C = at.shape[1], HW = at.shape[2] * at.shape[3];
    in.host_map.clear();
    if (C > 1 && HW > 1)  // NCHW -> NHWC by the host
      for (int64_t n = 0; n < at.shape[0]; ++n)
        for (int64_t p = 0; p < HW; ++p)
          for (int64_t c = 0; c < C; ++c) in.host_map.push_back((n * C + c) * HW + p);
    nhwc_[a] = in.shape;
    *nhwc = in.shape;
    return a;
  }
  conv_fail(g_, op, fmt::format("input '{}' is not produced by a Conv, pool or elementwise op on them, nor a graph input",
                           at.name));
}

// y = sel(c, a, c) with c = 1 on the C lanes and, past them, the constant's zero pad (as
// AttentionLowering::clean does before the MXM): NaN * 0 in a conv's zero weight rows, or a NaN in
// a pool's max or sum, would otherwise spread into real lanes.
ir::TensorId ConvLowering::cleared(ir::TensorId a) {
  const auto it = cleared_.find(a);
  if (it != cleared_.end()) return it->second;
  const ir::Shape nh = nhwc_.at(a);
  const ir::TensorId y = fresh(g_.tensor(a).name + ".padclear", ir::DType::F16, nh);
  layer_of_.resize(std::max(layer_of_.size(), static_cast<size_t>(y) + 1), -1);
  add_eltwise(LoweredEltwise::pad_clear(lm_.tensor(g_, y).name, a, y, nh, nh[3]));
  nhwc_[y] = nh;
  cleared_[a] = y;
  return y;
}

void ConvLowering::set_layout(ir::TensorId t, const ir::Shape& nh) {
  nhwc_[t] = nh;
  lm_.nhwc_tensors.insert(t);
  const bool out = std::find(g_.outputs().begin(), g_.outputs().end(), t) != g_.outputs().end();
  if (out && nh[1] * nh[2] > 1 && nh[3] > 1 &&
      std::find(lm_.nhwc_outputs.begin(), lm_.nhwc_outputs.end(), t) == lm_.nhwc_outputs.end())
    lm_.nhwc_outputs.push_back(t);
}

bool ConvLowering::lower(const ir::Op& op) {
  switch (op.kind) {
    case ir::OpKind::Conv: lower_conv(op); return true;
    case ir::OpKind::MaxPool:
    case ir::OpKind::AveragePool: lower_pool(op); return true;
    case ir::OpKind::GlobalAveragePool: lower_global_pool(op); return true;
    default: break;
  }
  const ir::TensorId in0 = op.inputs.empty() ? ir::kNoTensor : alias_[static_cast<size_t>(op.inputs[0])];
  if (op.kind == ir::OpKind::Reshape && nhwc_.count(in0)) {
    // [N, C, 1, 1] -> [N, C]: the same bytes; the step producing the pooled tensor writes the
    // Reshape's output instead.
    const ir::Shape nh = nhwc_[in0];
    const ir::TensorId out = op.outputs[0];
    const ir::Shape& os = g_.tensor(out).shape;
    const bool single = read_once(in0);
    // [N, C, 1, W] <-> [N, C, W] (a 1-D conv or pool run as 2-D, frontends/onnx_import.cpp) and
    // [N, C, H, 1] -> [N, C, H] (an exporter's Unsqueeze/Squeeze around a pool): the same NHWC bytes
    // ([N, 1, W, C] / [N, H, 1, C]); the tensor keeps that layout under its new shape.
    const bool one_d = single && ((nh[1] == 1 && ((os.size() == 3 && os[0] == nh[0] && os[1] == nh[3] && os[2] == nh[2]) ||
                        (os.size() == 4 && os[0] == nh[0] && os[1] == nh[3] && os[2] == 1 && os[3] == nh[2]))) ||
                       (nh[2] == 1 && os.size() == 3 && os[0] == nh[0] && os[1] == nh[3] && os[2] == nh[1]));
    if (!one_d && (nh[1] * nh[2] != 1 || os.size() != 2 || os[0] != nh[0] || os[1] != nh[3] || !single))
      conv_fail(g_, op, fmt::format("a Reshape of a conv activation (stored [N, H, W, C] = {}) is lowered only from "
                               "[N, C, 1, 1] to [N, C] or between [N, C, 1, W] and [N, C, W], when it is the "
                               "tensor's only use; got output {}",
                               ir::shape_str(nh), ir::shape_str(os)));
    const ir::Shape ys = one_d ? nh : os;
    bool done = false;
    for (size_t i = lm_.eltwise.size(); i-- > 0 && !done;)
      if (lm_.eltwise[i].y == in0) {
        lm_.eltwise[i].y = out;
        lm_.eltwise[i].y_shape = ys;
        done = true;
      }
    for (size_t i = lm_.layers.size(); i-- > 0 && !done;)
      if (lm_.layers[i].y == in0) {
        lm_.layers[i].y = out;
        lm_.layers[i].y_shape = ys;
        layer_of_[static_cast<size_t>(in0)] = -1;
        layer_of_[static_cast<size_t>(out)] = static_cast<int>(i);
        done = true;
      }
    if (!done) conv_fail(g_, op, "the pooled tensor is not produced by a lowered step");
    produced_[static_cast<size_t>(in0)] = 0;
    produced_[static_cast<size_t>(out)] = 1;
    alias_[static_cast<size_t>(out)] = out;
    if (one_d) set_layout(out, nh);
    return true;
  }
  for (ir::TensorId t : op.inputs) {
    if (t == ir::kNoTensor) continue;
    const ir::TensorId a = alias_[static_cast<size_t>(t)];
    if (!nhwc_.count(a)) continue;
    if (!is_eltwise_kind(op.kind))
      conv_fail(g_, op, fmt::format("reads conv activation '{}', which the chip stores as [N, H, W, C] {}; only "
                               "elementwise ops, pools and a Reshape to [N, C] of a [N, C, 1, 1] tensor may",
                               g_.tensor(a).name, ir::shape_str(nhwc_[a])));
  }
  if (op.kind == ir::OpKind::Add && op.inputs.size() == 2) {
    // Add of a per-channel constant to a conv layer's output used once: folded into its bias.
    // Any other constant must not be taken for a bias by the generic lowering (its NCHW broadcast
    // differs from the dense layer's last-axis one): the Add is then an elementwise step.
    for (int k = 0; k < 2; ++k) {
      const ir::TensorId a = alias_[static_cast<size_t>(op.inputs[static_cast<size_t>(k)])];
      const ir::Tensor& c = g_.tensor(op.inputs[static_cast<size_t>(1 - k)]);
      const int li = layer_of_[static_cast<size_t>(a)];
      if (!nhwc_.count(a) || li < 0 || !c.is_const) continue;
      LoweredLayer& L = lm_.layers[static_cast<size_t>(li)];
      const ir::Shape& os = g_.tensor(op.outputs[0]).shape;
      const bool single = read_once(a);
      bool per_channel = os == g_.tensor(a).shape && c.shape.size() <= 4;
      std::vector<float> bias(static_cast<size_t>(L.N), 0.f);
      if (per_channel) {
        const std::vector<int64_t> map = ref::broadcast_index_map(os, c.shape);
        const std::vector<float> v = c.const_floats();
        const int64_t C = os[1], HW = os[2] * os[3];
        for (size_t i = 0; i < map.size() && per_channel; ++i) {
          const int64_t ch = static_cast<int64_t>(i) / HW % C;
          const float val = v[static_cast<size_t>(map[i])];
          if (static_cast<int64_t>(i) < C * HW && static_cast<int64_t>(i) % HW == 0)
            bias[static_cast<size_t>(ch)] = val;
          else
            per_channel = val == bias[static_cast<size_t>(ch)];
        }
      }
      if (!per_channel || L.relu || !single) {
        layer_of_[static_cast<size_t>(a)] = -1;  // an elementwise step, never a bias
        return false;
      }
      if (L.bias.empty()) L.bias.assign(static_cast<size_t>(L.N), 0.f);
      for (int64_t n = 0; n < L.N; ++n) L.bias[static_cast<size_t>(n)] += bias[static_cast<size_t>(n)];
      layer_of_[static_cast<size_t>(a)] = -1;
      L.y = op.outputs[0];
      layer_of_[static_cast<size_t>(L.y)] = li;
      produced_[static_cast<size_t>(L.y)] = 1;
      set_layout(L.y, L.y_shape);
      return true;
    }
  }
  return false;
}

void ConvLowering::after(const ir::Op& op) {
  if (op.outputs.empty() || op.outputs[0] == ir::kNoTensor) return;
  bool reads = false;
  for (ir::TensorId t : op.inputs)
    if (t != ir::kNoTensor && nhwc_.count(alias_[static_cast<size_t>(t)])) reads = true;
  if (!reads) return;
  const ir::TensorId out = op.outputs[0];
  const int li = layer_of_[static_cast<size_t>(out)];
  if (li >= 0 && lm_.layers[static_cast<size_t>(li)].y == out) {  // a Relu fused into a conv layer
    set_layout(out, lm_.layers[static_cast<size_t>(li)].y_shape);
    for (ir::TensorId t : op.inputs)
      if (t != ir::kNoTensor && packed_outputs_.count(alias_[static_cast<size_t>(t)])) {
        packed_outputs_.insert(out);
        lm_.pixel_packed[out] = lm_.pixel_packed.at(alias_[static_cast<size_t>(t)]);
      }
    return;
  }
  for (ir::TensorId t : op.inputs)
    if (t != ir::kNoTensor && packed_outputs_.count(alias_[static_cast<size_t>(t)]))
      throw std::logic_error(op.name + ": reads a pixel-packed conv output (pixel_pack_ok allows only a fused Relu)");
  LoweredEltwise* E = nullptr;
  size_t ei = 0;
  for (size_t i = lm_.eltwise.size(); i-- > 0 && !E;)
    if (lm_.eltwise[i].y == out) {
      E = &lm_.eltwise[i];
      ei = i;
    }
  const ir::Shape& os = g_.tensor(out).shape;
  if (!E || os.size() != 4) conv_fail(g_, op, "an op on conv activations must be one elementwise step of 4-D tensors");
  const ir::Shape nh{os[0], os[2], os[3], os[1]};
  const int64_t C = os[1], HW = os[2] * os[3], rows = os[0] * HW;
  const bool relu_post = !E->post.empty() && E->post.back().op == static_cast<int>(Opcode::Relu);
  if (op.kind == ir::OpKind::Relu && (E->relu || relu_post) && E->name != op.name) {
    // A Relu fused into the step that wrote its input (lower_graph: the step's relu flag, or its
    // last post op after fused post ops, e.g. a MaxPool's max chain): operands already laid out.
    if (nonfinite_.count(alias_[static_cast<size_t>(op.inputs[0])])) nonfinite_.insert(out);
    set_layout(out, E->y_shape);
    return;
  }
  E->y_shape = nh;
  // Pad lanes (past C) hold what the producers left there: finite, except after an op that can make
  // NaN or inf of them (0 / 0, log 0, exp overflow), which a later conv's zero weight rows would
  // not cancel (NaN * 0).
  bool nonfinite = E->may_make_nonfinite();
  for (const EltOperand& o : E->operands) nonfinite = nonfinite || nonfinite_.count(o.act);
  if (nonfinite) nonfinite_.insert(out);
  // The step's first op laid out its operands (operand i = op input i); an op fused into it later
  // (a unary or immediate post op, or a product's other activation) only appends.
  size_t& done = laid_out_[ei];
  for (size_t i = done; i < E->operands.size(); ++i) {
    EltOperand& o = E->operands[i];
    if (o.act != ir::kNoTensor) {
      auto it = nhwc_.find(o.act);
      if (it != nhwc_.end() && o.row_map.empty() && !o.lane_bcast && it->second == ir::Shape{nh[0], 1, 1, nh[3]} &&
          HW > 1) {
        // A vector per image ([N, C, 1, 1], e.g. a squeeze-and-excitation scale) broadcast over the
        // image's H*W pixels: output row r reads the image's one row, r / (H*W).
        o.row_map.resize(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) o.row_map[static_cast<size_t>(r)] = r / HW;
        continue;
      }
      if (it == nhwc_.end() || it->second != nh)
        conv_fail(g_, op, fmt::format("operand {} is not a conv activation of the output's shape {} (activations are not "
                                 "broadcast on conv layouts)", i, ir::shape_str(os)));
      continue;
    }
    if (E->name != op.name)
      throw std::logic_error(op.name + ": a constant operand appended by a fused op has no layout rule here");
    // Constant: numpy broadcast in NCHW, then laid out as [N*H*W, C] rows (one row if all equal).
    const ir::Tensor& c = g_.tensor(alias_[static_cast<size_t>(op.inputs.at(i))]);
    const std::vector<int64_t> map = ref::broadcast_index_map(os, c.shape);
    const std::vector<float> v = c.const_floats();
    std::vector<float> full(static_cast<size_t>(rows * C));
    for (int64_t n = 0; n < os[0]; ++n)
      for (int64_t ch = 0; ch < C; ++ch)
        for (int64_t p = 0; p < HW; ++p)
          full[static_cast<size_t>((n * HW + p) * C + ch)] =
              v[static_cast<size_t>(map[static_cast<size_t>((n * C + ch) * HW + p)])];
    bool same = true;
    for (int64_t k = C; k < rows * C && same; ++k) same = full[static_cast<size_t>(k)] == full[static_cast<size_t>(k % C)];
    o.const_rows = same ? 1 : rows;
    full.resize(static_cast<size_t>(o.const_rows * C));
    o.values = std::move(full);
  }
  done = E->operands.size();
  set_layout(out, nh);
}

void ConvLowering::lower_conv(const ir::Op& op) {
  ir::Shape xs;
  const ir::TensorId x = conv_input(op, op.inputs[0], &xs);
  if (packed_outputs_.count(x)) return lower_unpacking_conv(op, x);
  const int64_t N = xs[0], H = xs[1], W = xs[2], C = xs[3];
  const ir::Tensor& wt = g_.tensor(op.inputs[1]);
  if (!wt.is_const || wt.shape.size() != 4)
    conv_fail(g_, op, fmt::format("the weight '{}' must be a constant [M, C/group, kh, kw]", wt.name));
  const int64_t M = wt.shape[0], Cg = wt.shape[1];
  const int64_t group = op.attrs.count("group") ? op.attr_int("group") : 1;
  if (group < 1 || Cg * group != C || M % group != 0)
    conv_fail(g_, op, fmt::format("group {} does not fit {} input channels, weight {}", group, C, ir::shape_str(wt.shape)));
  if (vxm_depthwise_ && group == C && M == C && C > 1) return lower_depthwise(op, x, xs);
  const Window w = window_of(g_, op, {wt.shape[2], wt.shape[3]});
  const ir::Shape& ys = g_.tensor(op.outputs[0]).shape;
  const int64_t OH = ys.at(2), OW = ys.at(3), taps = w.kh * w.kw, rows = N * OH * OW, Mg = M / group;
  const bool gather = !(taps == 1 && w.sh == 1 && w.sw == 1 && w.pt + w.pl + w.pb + w.pr == 0);
  LoweredLayer L;
  L.name = op.name;
  L.x = x;
  PackChoice pack;  // the layout pack_taps chose (S 0: none)
  // A conv whose input is a graph input used only by it: the host lays the input out as im2col
  // rows ([N*OH*OW, kh*kw*C], tap-major, zeros for padding), so the chip needs no gather and K is
  // not padded per tap (the stem conv of ResNet-50: 147 instead of 49 x 320).
  LoweredInput* host = nullptr;
  for (LoweredInput& in : lm_.inputs)
    if (in.alias == x && in.alias == in.id && g_.consumers()[static_cast<size_t>(x)].size() == 1) host = &in;
  if (gather && host) {
    host->shape = {rows, taps * C};
    host->host_map.clear();
    host->host_map.reserve(static_cast<size_t>(rows * taps * C));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow)
          for (int64_t t = 0; t < taps; ++t)
            for (int64_t c = 0; c < C; ++c) {
              int64_t ih = 0, iw = 0;
              tap_coords(w, oh, ow, t, &ih, &iw);
              host->host_map.push_back(ih >= 0 && ih < H && iw >= 0 && iw < W ? ((n * C + c) * H + ih) * W + iw : -1);
            }
  } else if (gather) {
    // Taps read in place: tap t of output pixel (n, oh, ow) is x's row (n, ih, iw), -1 where it
    // falls in the padding; the matmul reads each tap's chunks as k-tiles (no im2col tensor).
    L.k_blocks = taps;
    L.tap_rows = tap_rows(w, N, H, W, OH, OW);
    pack = pack_taps(op, x, N, H, W, C, w, OH, OW, &L);
  }
  if (pack.S > 1 || pack.stride > 1) return add_packed_conv(op, std::move(L), pack, w, N, C, M, OH, OW);
  // K row (t * C + c), t = i * kw + j; block-diagonal over groups.
  L.K = taps * C;
  L.N = M;
  const std::vector<float> wv = wt.const_floats();
  L.w.assign(static_cast<size_t>(L.K * L.N), 0.f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t cg = 0; cg < Cg; ++cg)
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t c = (m / Mg) * Cg + cg;
        L.w[static_cast<size_t>((t * C + c) * M + m)] = wv[static_cast<size_t>((m * Cg + cg) * taps + t)];
      }
  L.bias = conv_bias(g_, op, M);
  L.y = op.outputs[0];
  L.y_shape = {N, OH, OW, M};
  add_conv_layer(std::move(L));
}

void ConvLowering::lower_depthwise(const ir::Op& op, ir::TensorId x, const ir::Shape& xs) {
  const int64_t N = xs[0], H = xs[1], W = xs[2], C = xs[3];
  const ir::Tensor& wt = g_.tensor(op.inputs[1]);
  const Window w = window_of(g_, op, {wt.shape[2], wt.shape[3]});
  const ir::Shape& ys = g_.tensor(op.outputs[0]).shape;
  const int64_t OH = ys.at(2), OW = ys.at(3), taps = w.kh * w.kw;
  const std::vector<float> wv = wt.const_floats();  // [C, 1, kh, kw]
  std::vector<std::vector<int64_t>> maps = tap_rows(w, N, H, W, OH, OW);
  LoweredEltwise E;
  E.name = op.name;
  E.kind = op.kind;
  E.vxm_op = static_cast<int>(Opcode::Mul);
  for (int64_t t = 0; t < taps; ++t) {
    EltOperand wr;
    wr.const_rows = 1;
    wr.values.resize(static_cast<size_t>(C));
    // f16 values, as every conv weight is on the chip (the per-step check's reference rounds W so).
    for (int64_t c = 0; c < C; ++c)
      wr.values[static_cast<size_t>(c)] = ir::round_f16(wv[static_cast<size_t>(c * taps + t)]);
    E.operands.push_back(act_op(x, std::move(maps[static_cast<size_t>(t)])));
    E.operands.push_back(std::move(wr));
    if (t > 0) E.post.push_back({static_cast<int>(Opcode::Fma), 0.f, static_cast<int>(2 * t), static_cast<int>(2 * t + 1)});
  }
  const std::vector<float> bias = conv_bias(g_, op, C);
  if (!bias.empty()) {
    EltOperand b;
    b.const_rows = 1;
    b.values = bias;
    E.operands.push_back(std::move(b));
    E.post.push_back({static_cast<int>(Opcode::Add), 0.f, static_cast<int>(2 * taps)});
  }
  E.y = op.outputs[0];
  E.y_shape = {N, OH, OW, C};
  add_eltwise(std::move(E));
  set_layout(op.outputs[0], {N, OH, OW, C});
  ++lm_.vxm_depthwise_convs;
}

void ConvLowering::add_conv_layer(LoweredLayer L) {
  layer_of_[static_cast<size_t>(L.y)] = static_cast<int>(lm_.layers.size());
  produced_[static_cast<size_t>(L.y)] = 1;
  set_layout(L.y, L.y_shape);
  lm_.steps.push_back({true, lm_.layers.size()});
  lm_.layers.push_back(std::move(L));
}

bool ConvLowering::read_once(ir::TensorId t) const {
  return g_.consumers()[static_cast<size_t>(t)].size() == 1 &&
         std::find(g_.outputs().begin(), g_.outputs().end(), t) == g_.outputs().end();
}

// The producer's Relu after the max: relu commutes with max and with the f16 rounding, and a Relu
// anywhere in a max chain gives relu of the whole max, so the pooled values are bit-identical and
// the Relu runs once per pooled vector instead of once per conv output (ResNet-50's stem: 3,136
// instead of 12,544). (Moving the bias and the int8 scale too, with f32 accumulators stored, was
// measured slower: the pool's reads of f32 rows doubled its SRAM traffic,
// docs/compiler/convolution.md.)
ir::TensorId ConvLowering::take_producer_relu(ir::TensorId x, const ir::Shape& xs, bool* relu) {
  *relu = false;
  const int li = layer_of_[static_cast<size_t>(x)];
  if (li < 0 || !read_once(x)) return x;
  LoweredLayer& L = lm_.layers[static_cast<size_t>(li)];
  if (L.y != x || !L.relu || L.y_f32 || L.b != ir::kNoTensor || L.copy || !L.y_rows.empty() ||
      lm_.pixel_packed.count(x))
    return x;
  const ir::Shape ls = L.y_shape.empty() ? xs : L.y_shape;
  const ir::TensorId src = fresh(L.name + ".prerelu", ir::DType::F16, ls);
  *relu = true;
  L.relu = false;
  L.y = src;
  L.y_shape = ls;
  layer_of_[static_cast<size_t>(x)] = -1;
  layer_of_.resize(std::max(layer_of_.size(), static_cast<size_t>(src) + 1), -1);
  layer_of_[static_cast<size_t>(src)] = li;
  produced_[static_cast<size_t>(x)] = 0;
  produced_[static_cast<size_t>(src)] = 1;
  nhwc_[src] = nhwc_[x];
  return src;
}

void ConvLowering::lower_pool(const ir::Op& op) {
  ir::Shape xs;
  const ir::TensorId x = conv_input(op, op.inputs[0], &xs);
  const int64_t N = xs[0], H = xs[1], W = xs[2], C = xs[3];
  const bool is_max = op.kind == ir::OpKind::MaxPool;
  const Window w = window_of(g_, op, op.attr_ints("kernel_shape"));
  const ir::Shape& ys = g_.tensor(op.outputs[0]).shape;
  const int64_t OH = ys.at(2), OW = ys.at(3), taps = w.kh * w.kw, rows = N * OH * OW;
  const bool include_pad = !is_max && op.attrs.count("count_include_pad") && op.attr_int("count_include_pad") != 0;
  std::vector<std::vector<int64_t>> maps(static_cast<size_t>(taps), std::vector<int64_t>(static_cast<size_t>(rows)));
  std::vector<float> scale(static_cast<size_t>(rows));
  for (int64_t n = 0, r = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow, ++r) {
        int64_t first = -1, valid = 0, in_pad = 0;
        for (int64_t t = 0; t < taps; ++t) {
          int64_t ih = 0, iw = 0;
          tap_coords(w, oh, ow, t, &ih, &iw);
          const bool ok = ih >= 0 && ih < H && iw >= 0 && iw < W;
          in_pad += ih < H + w.pb && iw < W + w.pr ? 1 : 0;
          maps[static_cast<size_t>(t)][static_cast<size_t>(r)] = ok ? (n * H + ih) * W + iw : -1;
          if (ok && first < 0) first = (n * H + ih) * W + iw;
          valid += ok ? 1 : 0;
        }
        if (first < 0) conv_fail(g_, op, fmt::format("output pixel ({}, {}) has no input pixel in its window", oh, ow));
        // Max: padding never wins, so a padding tap reads the window's first valid pixel again.
        if (is_max)
          for (auto& m : maps)
            if (m[static_cast<size_t>(r)] < 0) m[static_cast<size_t>(r)] = first;
        scale[static_cast<size_t>(r)] = 1.f / static_cast<float>(include_pad ? in_pad : valid);
      }
  const ir::Shape nh{N, OH, OW, C};
  const ir::TensorId out = op.outputs[0];
  auto step = [&](const std::string& suffix, Opcode o, bool has_op, std::vector<EltOperand> ops, ir::TensorId y,
                  bool f32) {
    LoweredEltwise E;
    E.name = op.name + suffix;
    E.kind = op.kind;
    E.has_op = has_op;
    E.vxm_op = static_cast<int>(o);
    E.operands = std::move(ops);
    E.y = y;
    E.y_shape = nh;
    E.y_f32 = f32;
    add_eltwise(std::move(E));
  };
  if (is_max) {
    if (taps == 1) {
      step(".copy", Opcode::Mov, false, {act_op(x, maps[0])}, out, false);
    } else {
      bool relu = false;
      const ir::TensorId src = take_producer_relu(x, xs, &relu);
      if (pool_on_row_pairs(op, src, xs, w, relu)) return set_layout(out, nh);
      // One VXM pass: max of taps 0 and 1, then one binary post op `max` per further tap (its
      // row-mapped operand read as the chain reaches it): no intermediate tensors, f16 throughout
      // (backend/elementwise_kernel.h); the moved Relu is the step's fused Relu.
      std::vector<EltOperand> ops;
      for (int64_t t = 0; t < taps; ++t) ops.push_back(act_op(src, maps[static_cast<size_t>(t)]));
      step(".max", Opcode::Max, true, std::move(ops), out, false);
      for (int64_t t = 2; t < taps; ++t)
        lm_.eltwise.back().post.push_back({static_cast<int>(Opcode::Max), 0.f, static_cast<int>(t)});
      lm_.eltwise.back().relu = relu;
    }
  } else {
    EltOperand cur = act_op(x, maps[0]);
    for (int64_t t = 1; t < taps; ++t) {
      const ir::TensorId y = fresh(fmt::format("{}.sum{}", op.name, t), ir::DType::F32, nh);
      step(fmt::format(".sum{}", t), Opcode::Add, true, {cur, act_op(x, maps[static_cast<size_t>(t)])}, y, true);
      cur = act_op(y);
    }
    bool same = true;
    for (float s : scale) same = same && s == scale[0];
    EltOperand sc;
    sc.const_rows = same ? 1 : rows;
    for (int64_t r = 0; r < sc.const_rows; ++r) sc.values.insert(sc.values.end(), static_cast<size_t>(C), scale[static_cast<size_t>(r)]);
    step(".scale", Opcode::Mul, true, {cur, sc}, out, false);
  }
  set_layout(out, nh);
}

void ConvLowering::lower_global_pool(const ir::Op& op) {
  ir::Shape xs;
  const ir::TensorId x = conv_input(op, op.inputs[0], &xs);
  const int64_t N = xs[0], HW = xs[1] * xs[2], C = xs[3];
  // Sums of G rows per VXM pass (f32): a level's output row j of image n is the sum of rows
  // [j*G, (j+1)*G) of the image's h rows (an `add` of the first two, then one binary post `add`
  // per further row, each read as the chain reaches it; missing tail rows read the zero row).
  // Levels repeat until one row per image is left; the last level multiplies by 1 / (H*W) (a post
  // `mul` by a constant row, as the former separate scale step did: with a `muli` instead, one
  // constant fewer shifted every later SRAM allocation and ResNet-50 fp16 lost ~3k cycles in its
  // stem conv, docs/compiler.md session 8) and writes the output.
  // G (reduction_chain_terms): up to 16 rows are one pass, more are cut into chains of
  // ceil(sqrt(h)) rows. ResNet-50's 7x7 pool: 7 sums of 7, then one of 7 (one chain of 48 adds took
  // 496 cycles after its conv, the two levels 253; docs/compiler/convolution.md). A chain takes
  // CONSECUTIVE rows (reductions over row axes take strided ones, lower_norm.cpp): the conv writes
  // its rows in order, so a chain runs as soon as its rows land.
  const float inv = 1.f / static_cast<float>(HW);
  EltOperand cur = act_op(x);
  int64_t h = HW;
  for (int level = 1; h > 1; ++level) {
    const int64_t G = reduction_chain_terms(h);
    const int64_t h2 = (h + G - 1) / G;
    std::vector<std::vector<int64_t>> maps(static_cast<size_t>(G));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < h2; ++j)
        for (int64_t i = 0; i < G; ++i)
          maps[static_cast<size_t>(i)].push_back(j * G + i < h ? n * h + j * G + i : -1);
    const bool last = h2 == 1;
    const ir::TensorId y = last ? op.outputs[0] : fresh(fmt::format("{}.sum{}", op.name, level), ir::DType::F32, {N * h2, C});
    LoweredEltwise E;
    E.name = fmt::format("{}.sum{}", op.name, level);
    E.kind = op.kind;
    E.vxm_op = static_cast<int>(Opcode::Add);
    for (int64_t i = 0; i < G; ++i) E.operands.push_back(act_op(cur.act, maps[static_cast<size_t>(i)]));
    for (int64_t i = 2; i < G; ++i) E.post.push_back({static_cast<int>(Opcode::Add), 0.f, static_cast<int>(i)});
    if (last) {  // times 1 / (H*W): a constant row (a `muli` instead moved the SRAM allocation, below)
      EltOperand sc;
      sc.const_rows = 1;
      sc.values.assign(static_cast<size_t>(C), inv);
      E.operands.push_back(std::move(sc));
      E.post.push_back({static_cast<int>(Opcode::Mul), 0.f, static_cast<int>(G)});
    }
    E.y = y;
    E.y_shape = {N * h2, C};
    E.y_f32 = !last;
    add_eltwise(std::move(E));
    cur = act_op(y);
    h = h2;
  }
  if (HW == 1) {  // nothing to sum: the scale by 1 / 1 as a step of its own (a copy)
    LoweredEltwise E;
    E.name = op.name + ".scale";
    E.kind = op.kind;
    E.vxm_op = static_cast<int>(Opcode::Mul);
    EltOperand sc;
    sc.const_rows = 1;
    sc.values.assign(static_cast<size_t>(C), inv);
    E.operands = {cur, sc};
    E.y = op.outputs[0];
    E.y_shape = {N, C};
    add_eltwise(std::move(E));
  }
  nhwc_[op.outputs[0]] = {N, 1, 1, C};
}

std::vector<float> to_chip_input(const LoweredInput& in, const std::vector<float>& graph_values) {
  if (in.host_map.empty()) return graph_values;
  std::vector<float> out(in.host_map.size(), 0.f);
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t k = in.host_map[i];
    if (k >= static_cast<int64_t>(graph_values.size()))
      throw InputError(fmt::format("input '{}': {} values given, the host layout reads element {}", in.id,
                                   graph_values.size(), k));
    if (k >= 0) out[i] = graph_values[static_cast<size_t>(k)];
  }
  return out;
}

std::vector<double> from_chip_output(const LoweredModel& lm, const ir::Graph& g, ir::TensorId t,
                                     const std::vector<double>& chip) {
  if (std::find(lm.nhwc_outputs.begin(), lm.nhwc_outputs.end(), t) == lm.nhwc_outputs.end()) return chip;
  const ir::Shape& s = g.tensor(t).shape;  // [N, C, H, W] or [N, C, W] (a 1-D conv's output)
  const int64_t C = s[1];
  int64_t HW = 1;
  for (size_t i = 2; i < s.size(); ++i) HW *= s[i];
  std::vector<double> out(chip.size());
  for (int64_t k = 0; k < static_cast<int64_t>(out.size()); ++k) {
    const int64_t n = k / (C * HW), c = k / HW % C, p = k % HW;
    out[static_cast<size_t>(k)] = chip.at(static_cast<size_t>((n * HW + p) * C + c));
  }
  return out;
}

int64_t expand_conv_weight(const LoweredLayer& L, uint32_t lanes, std::vector<float>* w) {
  if (L.k_blocks <= 0) {
    *w = L.w;
    return L.K;
  }
  const int64_t blk = L.K / L.k_blocks;
  const int64_t padded = (blk + lanes - 1) / lanes * lanes;
  w->assign(static_cast<size_t>(L.k_blocks * padded * L.N), 0.f);
  for (int64_t b = 0; b < L.k_blocks; ++b)
    std::copy(L.w.begin() + b * blk * L.N, L.w.begin() + (b + 1) * blk * L.N, w->begin() + b * padded * L.N);
  return L.k_blocks * padded;
}

std::vector<uint8_t> expand_conv_weight_i8(const LoweredLayer& L, const std::vector<int8_t>& wq, uint32_t lanes) {
  if (wq.size() != static_cast<size_t>(L.K * L.N))
    throw std::logic_error("expand_conv_weight_i8: " + L.name + ": int8 weights of the wrong size");
  LoweredLayer c;  // the same shape with the i8 values as floats (exact), expanded like the fp16 weight
  c.K = L.K;
  c.N = L.N;
  c.k_blocks = L.k_blocks;
  c.w.assign(wq.begin(), wq.end());
  std::vector<float> w;
  expand_conv_weight(c, lanes, &w);
  std::vector<uint8_t> out(w.size());
  for (size_t i = 0; i < w.size(); ++i) out[i] = static_cast<uint8_t>(static_cast<int8_t>(w[i]));
  return out;
}

std::vector<MatmulKTile> conv_tap_ktiles(const LoweredLayer& L, uint32_t lanes) {
  if (L.tap_rows.empty() || L.k_blocks != static_cast<int64_t>(L.tap_rows.size()) || L.K % L.k_blocks != 0)
    throw std::logic_error("conv_tap_ktiles: " + L.name + " is not a conv layer read in place");
  const int64_t C = L.K / L.k_blocks, vpr = (C + lanes - 1) / lanes;
  std::vector<MatmulKTile> kt;
  for (const std::vector<int64_t>& m : L.tap_rows)
    for (int64_t c = 0; c < vpr; ++c) {
      MatmulKTile t;
      t.x_chunk = static_cast<uint32_t>(c);
      t.w_lo = 0;
      t.w_hi = static_cast<uint32_t>(std::min<int64_t>(lanes, C - c * lanes));
      t.rows = &m;
      kt.push_back(t);
    }
  return kt;
}

}  // namespace lpu::compiler
