// Attention plumbing of the lowering, part 1 (see lower_attention.h): strided views, identity-matmul
// materialization, Concat, pad-lane cleanup and the node dispatch (lower()). MatMul / Gemm nodes
// are in attention_matmul.cpp, the passes finish() runs in attention_finish.cpp.
#include "compiler/passes/lower_attention.h"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <limits>
#include <numeric>

#include "compiler/ir/dtype.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

using View = AttentionLowering::View;

// Logical shape of a view.
ir::Shape logical_shape(const View& v) {
  const size_t n = v.size.size(), k = static_cast<size_t>(v.inner_dims);
  ir::Shape s(v.size.begin(), v.size.begin() + static_cast<std::ptrdiff_t>(n - k));
  s.push_back(ir::num_elements(v.size, n - k, n));
  return s;
}

// Reshape of a view (inner_dims == 1) to `ns`; false if the elements are not a strided view of the
// stored tensor in that shape. A new last dim merging old dims that are not contiguous in lanes (a
// head merge [.., H, D] -> [.., H*D] of a stored [.., D] tensor) keeps them as inner dims.
bool reshape(const View& v, const ir::Shape& ns_in, View* out) {
  if (v.inner_dims != 1) return false;
  const ir::Shape ns = ns_in.empty() ? ir::Shape{1} : ns_in;
  std::vector<size_t> od, nd;
  for (size_t i = 0; i < v.size.size(); ++i)
    if (v.size[i] != 1) od.push_back(i);
  for (size_t j = 0; j < ns.size(); ++j)
    if (ns[j] != 1) nd.push_back(j);
  View r;
  r.phys = v.phys;
  r.r0 = v.r0;
  r.c0 = v.c0;
  r.size = ns;
  r.rs.assign(ns.size(), 0);
  r.cs.assign(ns.size(), 0);
  r.cs.back() = 1;  // a size-1 last dim: lane stride is irrelevant, kept lane-contiguous
  std::vector<int64_t> xs, xr, xc;  // inner dims of a non-contiguous last group
  size_t a = 0, b = 0;
  while (a < od.size() || b < nd.size()) {
    if (a == od.size() || b == nd.size()) return false;
    const size_t a1 = a, b1 = b;
    int64_t po = v.size[od[a++]], pn = ns[nd[b++]];
    while (po != pn) {
      if (po < pn) {
        if (a == od.size()) return false;
        po *= v.size[od[a++]];
      } else {
        if (b == nd.size()) return false;
        pn *= ns[nd[b++]];
      }
    }
    bool contiguous = true;
    for (size_t k = a1; k + 1 < a; ++k) {
      const size_t i = od[k], i2 = od[k + 1];
      contiguous = contiguous && v.rs[i] == v.rs[i2] * v.size[i2] && v.cs[i] == v.cs[i2] * v.size[i2];
    }
    if (!contiguous) {
      if (!(a == od.size() && b == nd.size() && b - b1 == 1 && nd[b1] == ns.size() - 1)) return false;
      for (size_t k = a1; k < a; ++k) {
        xs.push_back(v.size[od[k]]);
        xr.push_back(v.rs[od[k]]);
        xc.push_back(v.cs[od[k]]);
      }
      continue;
    }
    int64_t crs = v.rs[od[a - 1]], ccs = v.cs[od[a - 1]];
    for (size_t k = b; k-- > b1;) {
      r.rs[nd[k]] = crs;
      r.cs[nd[k]] = ccs;
      crs *= ns[nd[k]];
      ccs *= ns[nd[k]];
    }
  }
  if (!xs.empty()) {
    r.size.pop_back();
    r.rs.pop_back();
    r.cs.pop_back();
    r.size.insert(r.size.end(), xs.begin(), xs.end());
    r.rs.insert(r.rs.end(), xr.begin(), xr.end());
    r.cs.insert(r.cs.end(), xc.begin(), xc.end());
    r.inner_dims = static_cast<int>(xs.size());
  }
  *out = r;
  return true;
}

// Stored (row, lane) of every logical row of a view (row-major over the outer dims).
void rows_of(const View& v, std::vector<int64_t>* prow, std::vector<int64_t>* pcol) {
  const size_t nout = v.size.size() - static_cast<size_t>(v.inner_dims);
  const int64_t M = ir::num_elements(v.size, 0, nout);
  prow->assign(static_cast<size_t>(M), v.r0);
  pcol->assign(static_cast<size_t>(M), v.c0);
  for (int64_t m = 0; m < M; ++m) {
    int64_t rem = m;
    for (size_t d = nout; d-- > 0;) {
      const int64_t i = rem % v.size[d];
      rem /= v.size[d];
      (*prow)[static_cast<size_t>(m)] += i * v.rs[d];
      (*pcol)[static_cast<size_t>(m)] += i * v.cs[d];
    }
  }
}

// The output row of row m of a Concat input of shape si (rows: every dim but the last) placed at
// offset off along `axis` of the output shape so: the same multi-index, shifted on the axis.
int64_t concat_row(const ir::Shape& si, const ir::Shape& so, size_t axis, int64_t off, int64_t m) {
  int64_t rem = m, out = 0, stride = 1;
  for (size_t d = si.size() - 1; d-- > 0;) {
    int64_t i = rem % si[d];
    rem /= si[d];
    if (d == axis) i += off;
    out += i * stride;
    stride *= so[d];
  }
  return out;
}

}  // namespace

AttentionLowering::AttentionLowering(const ir::Graph& g, LoweredModel& lm, std::vector<int>& layer_of,
                                     std::vector<char>& produced, const std::vector<ir::TensorId>& alias)
    : g_(g), lm_(lm), layer_of_(layer_of), produced_(produced), alias_(alias) {}

View AttentionLowering::identity(ir::TensorId t) const {
  View v;
  v.phys = t;
  ir::Shape s = lm_.tensor(g_, t).shape;
  for (const LoweredInput& in : lm_.inputs)
    if (in.alias == t) s = in.shape;
  if (s.empty()) s = {1};
  v.size = s;
  v.rs.assign(s.size(), 0);
  v.cs.assign(s.size(), 0);
  v.cs.back() = 1;
  int64_t r = 1;
  for (size_t i = s.size() - 1; i-- > 0;) {
    v.rs[i] = r;
    r *= s[i];
  }
  return v;
}

View AttentionLowering::view_of(ir::TensorId t) const {
  const ir::TensorId a = static_cast<size_t>(t) < alias_.size() ? alias_[static_cast<size_t>(t)] : t;
  auto it = views_.find(a);
  return it != views_.end() ? it->second : identity(a);
}

View AttentionLowering::flat_view(const ir::Op& op, ir::TensorId t) {
  const View v = view_of(t);
  return v.inner_dims == 1 ? v : identity(stored(op, t));
}

void AttentionLowering::define_view(ir::TensorId out, const View& v) {
  views_[out] = v;
  produced_[static_cast<size_t>(out)] = 1;
}

bool AttentionLowering::is_stored_as_is(const View& v) const {
  if (v.inner_dims != 1) return false;
  const View id = identity(v.phys);
  std::vector<int64_t> pr, pc, ir_, ic;
  rows_of(v, &pr, &pc);
  rows_of(id, &ir_, &ic);
  return pr == ir_ && pc == ic && v.size.back() == id.size.back() && (v.size.back() == 1 || v.cs.back() == 1);
}

ir::TensorId AttentionLowering::fresh(const std::string& name, const ir::Shape& shape, ir::DType dt) {
  const ir::TensorId id = lm_.add_extra(g_, fmt::format("{}.v{}", name, lm_.extra.size()), dt, shape);
  produced_.resize(static_cast<size_t>(id) + 1, 0);
  return id;
}

void AttentionLowering::note_written(ir::TensorId y, bool maybe_nonfinite) { nonfinite_[y] = maybe_nonfinite; }

bool AttentionLowering::nonfinite_pad(ir::TensorId t) const {
  auto it = nonfinite_.find(t);
  return it != nonfinite_.end() && it->second;
}

bool AttentionLowering::dense_from_view(const std::string& name, const View& v, int64_t K, int64_t N,
                                        std::vector<float> w, const std::vector<float>& bias, ir::TensorId y,
                                        const ir::Shape& ys, bool set_layer_of, const std::vector<int64_t>* y_map) {
  const size_t n = v.size.size(), nin = static_cast<size_t>(v.inner_dims);
  if (v.size[n - 1] != 1 && !(v.rs[n - 1] == 0 && v.cs[n - 1] == 1)) return false;
  std::vector<int64_t> prow, pcol;
  rows_of(v, &prow, &pcol);
  // Segments of the logical last dim: every index of the inner dims but the innermost.
  struct Seg { int64_t row_off, col_off, k0; };
  std::vector<Seg> segs;
  const int64_t width = v.size[n - 1];
  const int64_t nseg = ir::num_elements(v.size, n - nin, n - 1);
  for (int64_t s = 0; s < nseg; ++s) {
    Seg sg{0, 0, s * width};
    int64_t rem = s;
    for (size_t d = n - 1; d-- > n - nin;) {
      const int64_t i = rem % v.size[d];
      rem /= v.size[d];
      sg.row_off += i * v.rs[d];
      sg.col_off += i * v.cs[d];
    }
    segs.push_back(sg);
  }
  std::map<int64_t, std::vector<int64_t>> groups;  // by lane offset: one weight set each
  for (size_t m = 0; m < pcol.size(); ++m) groups[pcol[m]].push_back(static_cast<int64_t>(m));
  const ir::Shape pshape = identity(v.phys).size;
  const int64_t pinner = pshape.back(), prows = ir::num_elements(pshape, 0, pshape.size() - 1);
  int gi = 0;
  for (const auto& [col, ms] : groups) {
    LoweredLayer L;
    L.name = groups.size() > 1 ? fmt::format("{}.g{}", name, gi) : name;
    L.x = v.phys;
    L.y = y;
    L.K = K;
    L.N = N;
    if (static_cast<size_t>(gi) + 1 == groups.size()) L.w = std::move(w);
    else L.w = w;
    L.bias = bias;
    L.y_shape = ys;
    bool ident = y_map == nullptr && groups.size() == 1 && static_cast<int64_t>(ms.size()) == prows && segs.size() == 1 &&
                 segs[0].row_off == 0 && col + segs[0].col_off == 0 && width == pinner && width == K;
    for (size_t i = 0; i < ms.size() && ident; ++i) ident = prow[static_cast<size_t>(ms[i])] == static_cast<int64_t>(i);
    if (!ident) {
      for (int64_t m : ms) {
        L.x_rows.push_back(prow[static_cast<size_t>(m)]);
        L.y_rows.push_back(y_map ? (*y_map)[static_cast<size_t>(m)] : m);
      }
      for (const Seg& s : segs) L.xsegs.push_back({v.phys, s.row_off, col + s.col_off, s.k0, width});
    }
    produced_[static_cast<size_t>(y)] = 1;
    if (set_layer_of && groups.size() == 1 && static_cast<size_t>(y) < layer_of_.size())
      layer_of_[static_cast<size_t>(y)] = static_cast<int>(lm_.layers.size());
    lm_.steps.push_back({true, lm_.layers.size()});
    lm_.layers.push_back(std::move(L));
    ++gi;
  }
  zero_pad_[y] = 1;
  nonfinite_[y] = false;
  return true;
}

ir::TensorId AttentionLowering::materialize(const ir::Op& op, const View& v, ir::TensorId target,
                                            const ir::Shape& shape) {
  const int64_t K = shape.empty() ? 1 : shape.back();
  std::vector<float> eye(static_cast<size_t>(K * K), 0.f);
  for (int64_t i = 0; i < K; ++i) eye[static_cast<size_t>(i * K + i)] = 1.f;
  View src = v;
  const ir::TensorId y = target != ir::kNoTensor ? target : fresh(op.name + ".stored", shape, ir::DType::F16);
  if (!no_fold_ && fold_into_producer(op, v, y, shape, K)) return y;
  src.phys = mxm_phys(src.phys);
  if (!dense_from_view(op.name + ".move", src, K, K, eye, {}, y, shape, false))
    node_error(g_, op, fmt::format("{}its result is a view whose last axis is not contiguous in lanes (a transpose "
                             "that moves the last axis); such a tensor is lowered only as the second operand of a "
                             "MatMul (supported: Transpose/Reshape/Split/Slice that keep the last axis in lanes, any "
                             "of them feeding a MatMul)",
                             op.kind == ir::OpKind::Transpose && op.has("perm")
                                 ? fmt::format("perm [{}]: ", fmt::join(op.attr_ints("perm"), ","))
                                 : std::string()));
  return y;
}

bool AttentionLowering::concat_as_moves(const ir::Op& op, ir::TensorId y, const ir::Shape& ys) {
  // Not a graph output (stored f32 for the host; a move keeps x's type).
  if (lanes_ == 0 || std::find(g_.outputs().begin(), g_.outputs().end(), op.outputs[0]) != g_.outputs().end())
    return false;
  const ir::Shape so = g_.tensor(op.outputs[0]).shape;
  const size_t axis = static_cast<size_t>(op.attr_int("axis"));
  const int64_t W = so.back(), L = lanes_;
  if (W > L || W < 1 || ys.back() > L || ys.back() < W) return false;
  LoweredLane Ln;
  Ln.name = op.name + ".move";
  Ln.mode = LoweredLane::Mode::Move;
  Ln.y = y;
  Ln.y_shape = ys;
  Ln.move_width = W;
  const int64_t yrows = ir::num_elements(so, 0, so.size() - 1);
  Ln.x_rows.assign(static_cast<size_t>(yrows), -1);
  Ln.x_cols.assign(static_cast<size_t>(yrows), -1);
  int64_t off = 0;
  for (ir::TensorId in : op.inputs) {
    const ir::Tensor& it = g_.tensor(in);
    if (it.is_const) return false;
    const View v = view_of(in);
    const size_t n = v.size.size();
    // Lane-contiguous last dim, a lane slice (not a whole stored row: those move MEM -> MEM), one
    // stored f16 tensor with finite pad lanes for all inputs.
    if (v.inner_dims != 1 || v.size.back() != W || !(W == 1 || (v.rs[n - 1] == 0 && v.cs[n - 1] == 1))) return false;
    if (Ln.x == ir::kNoTensor) Ln.x = v.phys;
    if (v.phys != Ln.x || stored_f32(v.phys) || nonfinite_pad(v.phys) || lm_.tensor(g_, v.phys).dtype == ir::DType::I8)
      return false;
    if (v.c0 == 0 && identity(v.phys).size.back() == W) return false;
    std::vector<int64_t> prow, pcol;
    rows_of(v, &prow, &pcol);
    const ir::Shape si = it.shape;
    for (size_t m = 0; m < prow.size(); ++m) {
      if (pcol[m] < 0 || pcol[m] % L + W > L) return false;  // crosses a vector boundary
      const int64_t out = concat_row(si, so, axis, off, static_cast<int64_t>(m));
      Ln.x_rows[static_cast<size_t>(out)] = prow[m];
      Ln.x_cols[static_cast<size_t>(out)] = pcol[m];
    }
    off += si[axis];
  }
  for (int64_t r : Ln.x_rows)
    if (r < 0) return false;
  if (y == ir::kNoTensor) return true;  // a check only
  produced_[static_cast<size_t>(y)] = 1;
  lm_.add_lane(std::move(Ln));
  zero_pad_[y] = 1;  // the permute fills lanes past W with zeros
  nonfinite_[y] = false;
  return true;
}

bool AttentionLowering::concat_feeds_pv(const ir::Op& op) const {
  // Concat -> Reshape* -> MatMul(P, .) as its second operand, P = Softmax over the last axis read
  // only by that MatMul (the conditions of NormLowering::pv_only_reader), nothing else reading the
  // Concat or the Reshapes, none a graph output.
  const std::vector<std::vector<int>> cons = g_.consumers();
  auto is_out = [&](ir::TensorId t) {
    return std::find(g_.outputs().begin(), g_.outputs().end(), t) != g_.outputs().end();
  };
  ir::TensorId t = op.outputs[0];
  for (int depth = 0; depth < 8; ++depth) {
    if (is_out(t) || cons[static_cast<size_t>(t)].size() != 1) return false;
    const ir::Op& c = g_.ops()[static_cast<size_t>(cons[static_cast<size_t>(t)][0])];
    if (c.kind == ir::OpKind::Reshape) {
      t = c.outputs[0];
      continue;
    }
    if (c.kind != ir::OpKind::MatMul || c.inputs.size() != 2 || c.inputs[1] != t || c.inputs[0] == t) return false;
    const ir::TensorId p = c.inputs[0];
    const int pi = g_.tensor(p).producer;
    if (pi < 0 || is_out(p) || cons[static_cast<size_t>(p)].size() != 1) return false;
    const ir::Op& sm = g_.ops()[static_cast<size_t>(pi)];
    const ir::Shape ps = g_.tensor(p).shape;
    return sm.kind == ir::OpKind::Softmax && !ps.empty() &&
           (sm.attr_int("axis") == static_cast<int64_t>(ps.size()) - 1 || sm.attr_int("axis") == -1);
  }
  return false;
}

ir::TensorId AttentionLowering::materialize_ones(const ir::Op& op, const View& v, const ir::Shape& shape) {
  const int64_t N = shape.back();
  ir::Shape ys = shape;
  ys.back() = N + 1;
  std::vector<float> w(static_cast<size_t>(N * (N + 1)), 0.f), bias(static_cast<size_t>(N + 1), 0.f);
  for (int64_t i = 0; i < N; ++i) w[static_cast<size_t>(i * (N + 1) + i)] = 1.f;
  bias.back() = 1.f;
  const ir::TensorId y = fresh(op.name + ".stored1", ys, ir::DType::F16);
  if (!no_fold_ && fold_into_producer(op, v, y, ys, N, true)) return y;
  View src = v;
  src.phys = mxm_phys(src.phys);
  if (!dense_from_view(op.name + ".move1", src, N, N + 1, w, bias, y, ys, false))
    node_error(g_, op, "the second operand's last axis is not contiguous in lanes");
  return y;
}

void AttentionLowering::defer_softmax(ir::TensorId p, ir::TensorId e, const std::string& name) {
  deferred_[p] = {e, name};
  produced_[static_cast<size_t>(p)] = 1;
}

void AttentionLowering::finish_softmax(ir::TensorId p) {
  const DeferredSoftmax d = deferred_.at(p);
  deferred_.erase(p);
  const ir::Shape xs = lm_.tensor(g_, d.e).shape;
  ir::Shape ys = xs;
  ys.back() = 1;
  const ir::TensorId S = lm_.add_extra(g_, d.name + ".sum", ir::DType::F32, ys);
  produced_.resize(static_cast<size_t>(S) + 1, 0);
  produced_[static_cast<size_t>(S)] = 1;
  LoweredLane Ln;
  Ln.name = d.name + ".sum";
  Ln.mode = LoweredLane::Mode::Sum;
  Ln.x = d.e;
  Ln.y = S;
  Ln.y_shape = ys;
  Ln.y_f32 = true;
  lm_.add_lane(std::move(Ln));
  note_written(S, false);
  LoweredEltwise E;
  E.name = d.name + ".div";
  E.kind = ir::OpKind::Softmax;
  E.vxm_op = static_cast<int>(Opcode::Div);
  EltOperand a, b;
  a.act = d.e;
  b.act = S;
  b.lane_bcast = true;
  E.operands = {a, b};
  E.y = p;
  E.y_shape = xs;
  lm_.steps.push_back({false, lm_.eltwise.size()});
  lm_.eltwise.push_back(std::move(E));
  note_written(p, nonfinite_pad(d.e));  // pad lanes: e / S with S >= 1
}

bool AttentionLowering::fold_into_producer(const ir::Op& op, const View& v, ir::TensorId y, const ir::Shape& ys,
                                           int64_t width, bool ones_col) {
  // The view's stored tensor must be written, all rows as is, by exactly one dense layer with
  // constant weights; the view must take whole lane ranges of its rows (one segment).
  const size_t n = v.size.size();
  if (v.inner_dims != 1 || !(v.size[n - 1] == 1 || (v.rs[n - 1] == 0 && v.cs[n - 1] == 1))) return false;
  int li = -1;
  for (size_t i = 0; i < lm_.layers.size(); ++i)
    if (lm_.layers[i].y == v.phys) {
      if (li >= 0) return false;
      li = static_cast<int>(i);
    }
  if (li < 0) return false;
  const LoweredLayer& P = lm_.layers[static_cast<size_t>(li)];  // no layer is added while P is read
  if (P.b != ir::kNoTensor || !P.xsegs.empty() || !P.x_rows.empty() || !P.y_rows.empty() || P.k_blocks != 0 ||
      P.y_f32 || P.w.size() != static_cast<size_t>(P.K * P.N))
    return false;
  // The fold loads the producer's K weight rows again for this view; an identity copy loads only
  // `width` rows (and the fused producer runs once for all its views). Fold while that is at most
  // kMaxFoldRatio x: small ONNX heads (encoder_layer, gpt_block: d 64, heads of 16: 4x) gain by
  // dropping the fused layer; an LLM shard's fused q/k/v projection (hidden 4096, heads of 128:
  // 32x) would be split back into per-head projections that fill a third of each weight tile.
  constexpr int64_t kMaxFoldRatio = 4;
  if (P.K > kMaxFoldRatio * width) return false;
  std::vector<int64_t> prow, pcol;
  rows_of(v, &prow, &pcol);
  std::map<int64_t, std::vector<int64_t>> groups;
  for (size_t m = 0; m < pcol.size(); ++m) groups[pcol[m]].push_back(static_cast<int64_t>(m));
  for (const auto& kv : groups)
    if (kv.first < 0 || kv.first + width > P.N) return false;
  int gi = 0;
  std::vector<LoweredLayer> folds;  // appended after the loop: P refers into lm_.layers
  for (const auto& [col, ms] : groups) {
    LoweredLayer L;
    L.name = groups.size() > 1 ? fmt::format("{}.fold{}", op.name, gi) : op.name + ".fold";
    L.x = P.x;
    L.y = y;
    L.K = P.K;
    const int64_t wn = width + (ones_col ? 1 : 0);
    L.N = wn;
    L.relu = P.relu;
    L.y_shape = ys;
    L.w.assign(static_cast<size_t>(P.K * wn), 0.f);
    for (int64_t k = 0; k < P.K; ++k)
      for (int64_t c = 0; c < width; ++c)
        L.w[static_cast<size_t>(k * wn + c)] = P.w[static_cast<size_t>(k * P.N + col + c)];
    if (!P.bias.empty())
      for (int64_t c = 0; c < width; ++c) L.bias.push_back(P.bias[static_cast<size_t>(col + c)]);
    if (ones_col) {  // relu(0 x + 1) = 1 too
      L.bias.resize(static_cast<size_t>(width), 0.f);
      L.bias.push_back(1.f);
    }
    for (int64_t m : ms) {
      L.x_rows.push_back(prow[static_cast<size_t>(m)]);
      L.y_rows.push_back(m);
    }
    folds.push_back(std::move(L));
    ++gi;
  }
  for (LoweredLayer& L : folds) {
    lm_.steps.push_back({true, lm_.layers.size()});
    lm_.layers.push_back(std::move(L));
  }
  folded_.insert(static_cast<size_t>(li));
  produced_[static_cast<size_t>(y)] = 1;
  zero_pad_[y] = 1;
  nonfinite_[y] = false;
  return true;
}

ir::TensorId AttentionLowering::stored(const ir::Op& op, ir::TensorId t) {
  const ir::TensorId a = static_cast<size_t>(t) < alias_.size() ? alias_[static_cast<size_t>(t)] : t;
  auto it = views_.find(a);
  if (it == views_.end()) return a;
  const View v = it->second;
  if (is_stored_as_is(v)) return v.phys;
  const ir::Shape shape = logical_shape(v);
  const ir::TensorId y = materialize(op, v, ir::kNoTensor, shape);
  views_[a] = identity(y);
  return y;
}

bool AttentionLowering::stored_f32(ir::TensorId t) const {
  if (std::find(g_.outputs().begin(), g_.outputs().end(), t) != g_.outputs().end()) return true;
  for (const LoweredLayer& L : lm_.layers)
    if (L.y == t && L.y_f32) return true;
  for (const LoweredEltwise& E : lm_.eltwise)
    if (E.y == t && E.y_f32) return true;
  return false;
}

ir::TensorId AttentionLowering::mxm_phys(ir::TensorId s) {
  if (stored_f32(s)) {  // the MXM takes f16: a narrowing copy (VXM cvt), cached
    auto it = narrowed_.find(s);
    if (it != narrowed_.end()) {
      s = it->second;
    } else {
      EltOperand x;
      x.act = s;
      const ir::TensorId y = copy_step(lm_.tensor(g_, s).name + ".f16", x, lm_.tensor(g_, s).shape);
      nonfinite_[y] = nonfinite_pad(s);
      if (zero_pad_.count(s)) zero_pad_[y] = 1;
      narrowed_[s] = y;
      s = y;
    }
  }
  return clean(s);
}

ir::TensorId AttentionLowering::copy_step(const std::string& name, EltOperand src, ir::Shape shape) {
  const ir::TensorId y = fresh(name, shape, ir::DType::F16);
  LoweredEltwise E;
  E.name = lm_.tensor(g_, y).name;
  E.kind = ir::OpKind::Cast;
  E.has_op = false;
  E.vxm_op = static_cast<int>(Opcode::Mov);
  E.operands = {std::move(src)};
  E.y = y;
  E.y_shape = shape;
  produced_[static_cast<size_t>(y)] = 1;
  lm_.steps.push_back({false, lm_.eltwise.size()});
  lm_.eltwise.push_back(std::move(E));
  return y;
}

ir::TensorId AttentionLowering::stored_constant(ir::TensorId t) {
  auto it = const_copies_.find(t);
  if (it != const_copies_.end()) return it->second;
  const ir::Tensor& ct = g_.tensor(t);
  std::vector<float> v = ct.const_floats();
  for (float& f : v) f = ir::round_f16(f);  // the model's fp16 view of a constant
  const ir::TensorId y = copy_step(ct.name + ".stored", EltOperand::constant(v, ct.shape), ct.shape);
  note_written(y, false);  // the constant's pad lanes are zero
  const_copies_[t] = y;
  return y;
}

ir::TensorId AttentionLowering::mxm_input(const ir::Op& op, ir::TensorId t) { return mxm_phys(stored(op, t)); }

ir::TensorId AttentionLowering::clean(ir::TensorId s) {
  if (!nonfinite_pad(s)) return s;
  auto it = cleaned_.find(s);
  if (it != cleaned_.end()) return it->second;
  const ir::Shape shape = lm_.tensor(g_, s).shape;
  const ir::TensorId y = fresh(lm_.tensor(g_, s).name + ".padclear", shape, ir::DType::F16);
  produced_[static_cast<size_t>(y)] = 1;
  lm_.steps.push_back({false, lm_.eltwise.size()});
  lm_.eltwise.push_back(LoweredEltwise::pad_clear(lm_.tensor(g_, y).name, s, y, shape, shape.empty() ? 1 : shape.back()));
  nonfinite_[y] = false;
  cleaned_[s] = y;
  return y;
}

bool AttentionLowering::lower(const ir::Op& op) {
  switch (op.kind) {
    case ir::OpKind::Reshape:
      return lower_reshape(op);
    case ir::OpKind::Transpose:
      return lower_transpose(op);
    case ir::OpKind::Split:
    case ir::OpKind::Slice:
      return lower_slices(op);
    case ir::OpKind::Concat:
      return lower_concat(op);
    case ir::OpKind::Cast:
      return lower_cast(op);
    case ir::OpKind::MatMul:
    case ir::OpKind::Gemm:
      if (g_.tensor(op.inputs[1]).is_const) {
        matmul_const(op);
      } else {
        matmul_act(op);
      }
      return true;
    default:
      return false;
  }
}

bool AttentionLowering::lower_reshape(const ir::Op& op) {
  const ir::TensorId in = op.inputs[0];
  const bool graph_input = std::find(g_.inputs().begin(), g_.inputs().end(), in) != g_.inputs().end();
  // A Reshape that is a graph input's only reader is folded into the input's layout (the host
  // writes it so); with other readers the input stays as it is and the Reshape is a view of it.
  const bool one_reader = graph_input && g_.consumers()[static_cast<size_t>(in)].size() == 1 &&
                          std::find(g_.outputs().begin(), g_.outputs().end(), in) == g_.outputs().end();
  if (one_reader && alias_[static_cast<size_t>(in)] == in && !views_.count(in)) return false;
  View out;
  if (!reshape(view_of(in), g_.tensor(op.outputs[0]).shape, &out)) {
    const ir::TensorId s = stored(op, in);
    if (!reshape(identity(s), g_.tensor(op.outputs[0]).shape, &out))
      node_error(g_, op, "this Reshape is not a strided view of the stored tensor");
  }
  define_view(op.outputs[0], out);
  return true;
}

bool AttentionLowering::lower_transpose(const ir::Op& op) {
  View v = flat_view(op, op.inputs[0]);
  std::vector<int64_t> perm(v.size.size());  // ONNX default: reversed dims
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(perm.size() - 1 - i);
  if (op.has("perm")) perm = op.attr_ints("perm");
  if (perm.size() != v.size.size()) node_error(g_, op, "perm rank differs from the input rank");
  View o = v;
  for (size_t i = 0; i < perm.size(); ++i) {
    o.size[i] = v.size[static_cast<size_t>(perm[i])];
    o.rs[i] = v.rs[static_cast<size_t>(perm[i])];
    o.cs[i] = v.cs[static_cast<size_t>(perm[i])];
  }
  define_view(op.outputs[0], o);
  return true;
}

bool AttentionLowering::lower_slices(const ir::Op& op) {
  View v = flat_view(op, op.inputs[0]);
  const size_t rank = v.size.size();
  if (g_.tensor(op.inputs[0]).shape.size() != rank) node_error(g_, op, "rank-0 input");
  std::vector<std::vector<int64_t>> starts, steps, counts;
  if (op.kind == ir::OpKind::Slice) {
    starts.push_back(op.attr_ints("starts"));
    steps.push_back(op.attr_ints("steps"));
    counts.push_back(op.attr_ints("counts"));
  } else {
    const size_t axis = static_cast<size_t>(op.attr_int("axis"));
    int64_t at = 0;
    for (int64_t sz : op.attr_ints("split")) {
      std::vector<int64_t> st(rank, 0), sp(rank, 1), ct = v.size;
      st[axis] = at;
      ct[axis] = sz;
      at += sz;
      starts.push_back(st);
      steps.push_back(sp);
      counts.push_back(ct);
    }
  }
  for (size_t o = 0; o < starts.size(); ++o) {
    View r = v;
    for (size_t d = 0; d < rank; ++d) {
      if (steps[o][d] < 1 || (d + 1 == rank && steps[o][d] != 1 && counts[o][d] > 1))
        node_error(g_, op, fmt::format("step {} on axis {}: only steps of 1 on the last axis and positive steps "
                                 "elsewhere are lowered", steps[o][d], d));
      r.r0 += starts[o][d] * v.rs[d];
      r.c0 += starts[o][d] * v.cs[d];
      r.rs[d] *= steps[o][d];
      r.cs[d] *= steps[o][d];
      r.size[d] = counts[o][d];
    }
    define_view(op.outputs[o], r);
  }
  return true;
}

bool AttentionLowering::lower_concat(const ir::Op& op) {
  // Along a row axis: each input copied by an exact identity matmul into its rows of the output
  // (a KV cache and the new tokens' rows). The last axis would need lane moves: InputError.
  const ir::Shape so = g_.tensor(op.outputs[0]).shape;
  const size_t axis = static_cast<size_t>(op.attr_int("axis"));
  if (so.empty() || axis + 1 >= so.size())
    node_error(g_, op, "Concat is lowered along a row axis only (not the last axis, whose lanes would have to move)");
  const int64_t W = so.back();
  // The V of a deferred Softmax's P.V (defer_softmax) is stored with a ones column (V|1: bias
  // 1 in column W of every copy); the Concat's output is then a view of its first W lanes.
  // Not when an input is a whole stored row (a KV cache: moved MEM -> MEM, no matmul).
  bool ones = concat_feeds_pv(op);
  for (size_t ii = 0; ii < op.inputs.size() && ones; ++ii) {
    const View v = view_of(op.inputs[ii]);
    ones = v.inner_dims == 1 && !(v.c0 == 0 && identity(v.phys).size.back() == W);
  }
  if (!ones && concat_as_moves(op, op.outputs[0], so)) return true;
  if (ones && lanes_ != 0 && concat_ones_by_moves(op, so)) return true;
  concat_by_copies(op, so, ones);
  return true;
}

bool AttentionLowering::concat_ones_by_moves(const ir::Op& op, const ir::Shape& so) {
  const int64_t W = so.back();
  // V|1 by lane moves into [rows, W + 1] (lane W zero) and one VXM pass max(v, c), c = -inf
  // on lanes [0, W) and 1 on lane W: v unchanged (max with -inf is exact, -0 stays -0), lane W = 1.
  ir::Shape cys = so;
  cys.back() = W + 1;
  if (!concat_as_moves(op, ir::kNoTensor, cys)) return false;
  const ir::TensorId mv = fresh(op.name + ".moved", cys, ir::DType::F16);
  concat_as_moves(op, mv, cys);
  const ir::TensorId cy = fresh(op.name + ".ones", cys, ir::DType::F16);
  LoweredEltwise E;
  E.name = op.name + ".ones";
  E.kind = op.kind;
  E.vxm_op = static_cast<int>(Opcode::Max);
  EltOperand a, c;
  a.act = mv;
  c.const_rows = 1;
  c.values.assign(static_cast<size_t>(W), -std::numeric_limits<float>::infinity());
  c.values.push_back(1.f);
  c.const_f16 = true;  // -inf and 1 are f16: `max.f16` on the moved f16 V, one op a vector
  E.operands = {a, c};
  E.y = cy;
  E.y_shape = cys;
  produced_[static_cast<size_t>(cy)] = 1;
  lm_.steps.push_back({false, lm_.eltwise.size()});
  lm_.eltwise.push_back(std::move(E));
  nonfinite_[cy] = false;  // pad lanes: max(0, 0)
  zero_pad_[cy] = 1;
  ones_col_.insert(cy);
  View cv = identity(cy);
  cv.size.back() = W;
  define_view(op.outputs[0], cv);
  return true;
}

void AttentionLowering::concat_by_copies(const ir::Op& op, const ir::Shape& so, bool ones) {
  const size_t axis = static_cast<size_t>(op.attr_int("axis"));
  const int64_t W = so.back();
  const int64_t W1 = ones ? W + 1 : W;
  std::vector<float> eye(static_cast<size_t>(W * W1), 0.f), bias;
  for (int64_t i = 0; i < W; ++i) eye[static_cast<size_t>(i * W1 + i)] = 1.f;
  ir::TensorId cy = op.outputs[0];
  ir::Shape cys;
  if (ones) {
    bias.assign(static_cast<size_t>(W1), 0.f);
    bias.back() = 1.f;
    cys = so;
    cys.back() = W1;
    cy = fresh(op.name + ".ones", cys, ir::DType::F16);
    ones_col_.insert(cy);
    View cv = identity(cy);
    cv.size.back() = W;
    define_view(op.outputs[0], cv);
  }
  int64_t off = 0;
  for (size_t ii = 0; ii < op.inputs.size(); ++ii) {
    const ir::Shape si = g_.tensor(op.inputs[ii]).shape;
    if (g_.tensor(op.inputs[ii]).is_const) node_error(g_, op, "constant Concat inputs are not lowered");
    View v = flat_view(op, op.inputs[ii]);
    v.phys = mxm_phys(v.phys);
    // Output row of every input row: same multi-index, shifted by `off` on the axis.
    const int64_t rows = ir::num_elements(si, 0, si.size() - 1);
    std::vector<int64_t> ymap(static_cast<size_t>(rows));
    for (int64_t m = 0; m < rows; ++m) ymap[static_cast<size_t>(m)] = concat_row(si, so, axis, off, m);
    const size_t before = lm_.layers.size();
    if (!dense_from_view(fmt::format("{}.in{}", op.name, ii), v, W, W1, eye, bias, cy, cys, false, &ymap))
      node_error(g_, op, "an input's last axis is not contiguous in lanes");
    // A whole-row copy (all of a stored f16 tensor's lanes, pad lanes known zero: a graph input,
    // whose SRAM the host writes into zeroed memory, or a dense layer's output) is marked so the
    // scheduler moves vectors MEM -> MEM instead of running an identity matmul, which at fp16
    // rate streams one row per 4 cycles per plane (docs/llm-system.md "The attention decode
    // piece"). The output keeps zero pad lanes either way.
    if (lm_.layers.size() == before + 1 && !ones) {
      LoweredLayer& L = lm_.layers.back();
      const bool input = std::find(g_.inputs().begin(), g_.inputs().end(), v.phys) != g_.inputs().end();
      L.copy = L.xsegs.size() == 1 && L.xsegs[0].col0 == 0 && L.xsegs[0].width == W &&
               identity(v.phys).size.back() == W && (input || zero_pad_.count(v.phys) != 0) &&
               !stored_f32(v.phys) && !stored_f32(op.outputs[0]);
    }
    off += si[axis];
  }
}

bool AttentionLowering::lower_cast(const ir::Op& op) {
  // A float -> float Cast of a tensor the chip stores f16 changes no stored value (hidden
  // tensors are f16 whatever their graph type): a view of its input, so a consumer reads the
  // input through it (an int8 piece's o_proj reads each head's rows of P.V directly, instead of
  // an identity copy of the rows and a VXM pass). Not for graph outputs (stored f32) or an f32
  // input (the Cast would narrow it).
  const ir::TensorId in = op.inputs[0], out = op.outputs[0];
  auto is_float = [](ir::DType t) { return t == ir::DType::F32 || t == ir::DType::F16; };
  if (!is_float(g_.tensor(in).dtype) || !is_float(g_.tensor(out).dtype) || g_.tensor(in).is_const ||
      std::find(g_.outputs().begin(), g_.outputs().end(), out) != g_.outputs().end())
    return false;
  const View v = view_of(in);
  if (stored_f32(v.phys)) return false;
  for (const LoweredLane& Ln : lm_.lanes)
    if (Ln.y == v.phys && Ln.y_f32) return false;
  define_view(out, v);
  return true;
}

}  // namespace lpu::compiler
