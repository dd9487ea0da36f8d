// Attention plumbing of the lowering: strided views, identity-matmul materialization, MatMul of
// views and of two activations, pad-lane cleanup (see lower_attention.h).
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

[[noreturn]] void fail(const ir::Graph& g, const ir::Op& op, const std::string& why) {
  throw InputError(fmt::format("model '{}': node '{}' ({}): {}", g.name, op.name, ir::op_kind_name(op.kind), why));
}

int64_t prod(const std::vector<int64_t>& v, size_t a, size_t b) {
  int64_t p = 1;
  for (size_t i = a; i < b; ++i) p *= v[i];
  return p;
}

using View = AttentionLowering::View;

// Logical shape of a view.
ir::Shape logical_shape(const View& v) {
  const size_t n = v.size.size(), k = static_cast<size_t>(v.inner_dims);
  ir::Shape s(v.size.begin(), v.size.begin() + static_cast<std::ptrdiff_t>(n - k));
  s.push_back(prod(v.size, n - k, n));
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
  const int64_t M = prod(v.size, 0, nout);
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
  const int64_t nseg = prod(v.size, n - nin, n - 1);
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
  const int64_t pinner = pshape.back(), prows = prod(pshape, 0, pshape.size() - 1);
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
    fail(g_, op, fmt::format("{}its result is a view whose last axis is not contiguous in lanes (a transpose "
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
  const int64_t yrows = prod(so, 0, so.size() - 1);
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
      int64_t rem = static_cast<int64_t>(m), out = 0, stride = 1;
      for (size_t d = si.size() - 1; d-- > 0;) {
        int64_t i = rem % si[d];
        rem /= si[d];
        if (d == axis) i += off;
        out += i * stride;
        stride *= so[d];
      }
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
    fail(g_, op, "the second operand's last axis is not contiguous in lanes");
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
  // y = sel(c, x, c) with c = 1 on the tensor's lanes and 0 (the constant's zero pad) elsewhere.
  const ir::Shape shape = lm_.tensor(g_, s).shape;
  const int64_t inner = shape.empty() ? 1 : shape.back();
  const ir::TensorId y = fresh(lm_.tensor(g_, s).name + ".padclear", shape, ir::DType::F16);
  LoweredEltwise E;
  E.name = lm_.tensor(g_, y).name;
  E.kind = ir::OpKind::Where;
  E.vxm_op = static_cast<int>(Opcode::Select);
  EltOperand c, x;
  c.const_rows = 1;
  c.values.assign(static_cast<size_t>(inner), 1.f);
  x.act = s;
  E.operands = {c, x, c};  // sel(c, x, c): lanes past the last dim read c's zero pad
  E.y = y;
  E.y_shape = shape;
  produced_[static_cast<size_t>(y)] = 1;
  lm_.steps.push_back({false, lm_.eltwise.size()});
  lm_.eltwise.push_back(std::move(E));
  nonfinite_[y] = false;
  cleaned_[s] = y;
  return y;
}

bool AttentionLowering::lower(const ir::Op& op) {
  switch (op.kind) {
    case ir::OpKind::Reshape: {
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
          fail(g_, op, "this Reshape is not a strided view of the stored tensor");
      }
      views_[op.outputs[0]] = out;
      produced_[static_cast<size_t>(op.outputs[0])] = 1;
      return true;
    }
    case ir::OpKind::Transpose: {
      View v = view_of(op.inputs[0]);
      if (v.inner_dims != 1) v = identity(stored(op, op.inputs[0]));
      std::vector<int64_t> perm(v.size.size());  // ONNX default: reversed dims
      for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(perm.size() - 1 - i);
      if (op.has("perm")) perm = op.attr_ints("perm");
      if (perm.size() != v.size.size()) fail(g_, op, "perm rank differs from the input rank");
      View o = v;
      for (size_t i = 0; i < perm.size(); ++i) {
        o.size[i] = v.size[static_cast<size_t>(perm[i])];
        o.rs[i] = v.rs[static_cast<size_t>(perm[i])];
        o.cs[i] = v.cs[static_cast<size_t>(perm[i])];
      }
      views_[op.outputs[0]] = o;
      produced_[static_cast<size_t>(op.outputs[0])] = 1;
      return true;
    }
    case ir::OpKind::Split:
    case ir::OpKind::Slice: {
      View v = view_of(op.inputs[0]);
      if (v.inner_dims != 1) v = identity(stored(op, op.inputs[0]));
      const size_t rank = v.size.size();
      if (g_.tensor(op.inputs[0]).shape.size() != rank) fail(g_, op, "rank-0 input");
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
            fail(g_, op, fmt::format("step {} on axis {}: only steps of 1 on the last axis and positive steps "
                                     "elsewhere are lowered", steps[o][d], d));
          r.r0 += starts[o][d] * v.rs[d];
          r.c0 += starts[o][d] * v.cs[d];
          r.rs[d] *= steps[o][d];
          r.cs[d] *= steps[o][d];
          r.size[d] = counts[o][d];
        }
        views_[op.outputs[o]] = r;
        produced_[static_cast<size_t>(op.outputs[o])] = 1;
      }
      return true;
    }
    case ir::OpKind::Concat: {
      // Along a row axis: each input copied by an exact identity matmul into its rows of the output
      // (a KV cache and the new tokens' rows). The last axis would need lane moves: InputError.
      const ir::Shape so = g_.tensor(op.outputs[0]).shape;
      const size_t axis = static_cast<size_t>(op.attr_int("axis"));
      if (so.empty() || axis + 1 >= so.size())
        fail(g_, op, "Concat is lowered along a row axis only (not the last axis, whose lanes would have to move)");
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
      if (ones && lanes_ != 0) {
        // V|1 by lane moves into [rows, W + 1] (lane W zero) and one VXM pass max(v, c), c = -inf
        // on lanes [0, W) and 1 on lane W: v unchanged (max with -inf is exact, -0 stays -0), lane W = 1.
        ir::Shape cys = so;
        cys.back() = W + 1;
        if (concat_as_moves(op, ir::kNoTensor, cys)) {
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
          views_[op.outputs[0]] = cv;
          produced_[static_cast<size_t>(op.outputs[0])] = 1;
          return true;
        }
      }
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
        views_[op.outputs[0]] = cv;
        produced_[static_cast<size_t>(op.outputs[0])] = 1;
      }
      int64_t off = 0;
      for (size_t ii = 0; ii < op.inputs.size(); ++ii) {
        const ir::Shape si = g_.tensor(op.inputs[ii]).shape;
        if (g_.tensor(op.inputs[ii]).is_const) fail(g_, op, "constant Concat inputs are not lowered");
        View v = view_of(op.inputs[ii]);
        if (v.inner_dims != 1) v = identity(stored(op, op.inputs[ii]));
        v.phys = mxm_phys(v.phys);
        // Output row of every input row: same multi-index, shifted by `off` on the axis.
        const int64_t rows = prod(si, 0, si.size() - 1);
        std::vector<int64_t> ymap(static_cast<size_t>(rows));
        for (int64_t m = 0; m < rows; ++m) {
          int64_t rem = m, out = 0, stride = 1;
          for (size_t d = si.size() - 1; d-- > 0;) {
            int64_t i = rem % si[d];
            rem /= si[d];
            if (d == axis) i += off;
            out += i * stride;
            stride *= so[d];
          }
          ymap[static_cast<size_t>(m)] = out;
        }
        const size_t before = lm_.layers.size();
        if (!dense_from_view(fmt::format("{}.in{}", op.name, ii), v, W, W1, eye, bias, cy, cys, false, &ymap))
          fail(g_, op, "an input's last axis is not contiguous in lanes");
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
      return true;
    }
    case ir::OpKind::Cast: {
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
      views_[out] = v;
      produced_[static_cast<size_t>(out)] = 1;
      return true;
    }
    case ir::OpKind::MatMul:
    case ir::OpKind::Gemm: {
      const ir::Tensor& wt = g_.tensor(op.inputs[1]);
      if (wt.is_const) {
        matmul_const(op);
      } else {
        matmul_act(op);
      }
      return true;
    }
    default:
      return false;
  }
}

void AttentionLowering::matmul_const(const ir::Op& op) {
  const ir::Tensor& wt = g_.tensor(op.inputs[1]);
  if (wt.shape.size() != 2) fail(g_, op, "the constant weight must be 2-D");
  bool transB = false;
  float alpha = 1.f, beta = 1.f;
  if (op.kind == ir::OpKind::Gemm) {
    if (op.attr_int("transA") != 0) fail(g_, op, "transA=1 is not supported");
    transB = op.attr_int("transB") != 0;
    alpha = op.attr_float("alpha");
    beta = op.attr_float("beta");
  }
  const int64_t K = transB ? wt.shape[1] : wt.shape[0];
  const int64_t N = transB ? wt.shape[0] : wt.shape[1];
  const ir::TensorId a = op.inputs[0];
  const ir::Tensor& at = g_.tensor(a);
  if (at.is_const) fail(g_, op, "constant activation input '" + at.name + "'");
  if (at.dtype != ir::DType::F32 && at.dtype != ir::DType::F16)
    fail(g_, op, fmt::format("activation '{}' has type {}; float models only", at.name, ir::dtype_name(at.dtype)));
  if ((at.shape.empty() ? 1 : at.shape.back()) != K)
    fail(g_, op, fmt::format("activation inner dimension {} != weight rows {}", at.shape.empty() ? 1 : at.shape.back(), K));
  // [K, N] weights; the decoded constant already is that when neither transB nor alpha applies
  // (1 * x is x for every float but a signalling NaN's payload).
  std::vector<float> w = wt.const_floats();
  if (transB || alpha != 1.f) {
    std::vector<float> kn(static_cast<size_t>(K * N));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n)
        kn[static_cast<size_t>(k * N + n)] = alpha * w[static_cast<size_t>(transB ? n * K + k : k * N + n)];
    w = std::move(kn);
  }
  std::vector<float> bias;
  if (op.kind == ir::OpKind::Gemm && op.inputs.size() > 2 && op.inputs[2] != ir::kNoTensor) {
    const ir::Tensor& c = g_.tensor(op.inputs[2]);
    if (!c.is_const || c.elements() != N || c.shape.back() != N) fail(g_, op, "C must be a constant of N elements (a bias)");
    const std::vector<float> cv = c.const_floats();
    for (int64_t n = 0; n < N; ++n) bias.push_back(beta * cv[static_cast<size_t>(n)]);
  }
  View v = view_of(a);
  v.phys = mxm_phys(v.phys);  // same layout, f16 with finite pad lanes
  if (!dense_from_view(op.name, v, K, N, std::move(w), bias, op.outputs[0], {}, true))
    fail(g_, op, "its input's last axis is not contiguous in lanes (a transpose of the last axis)");
}

void AttentionLowering::matmul_act(const ir::Op& op) {
  if (op.kind == ir::OpKind::Gemm) {
    if (op.attr_int("transA") != 0 || op.attr_float("alpha") != 1.f ||
        (op.inputs.size() > 2 && op.inputs[2] != ir::kNoTensor))
      fail(g_, op, "a Gemm of two activations is lowered with transA=0, alpha=1 and no C only");
  }
  const bool gemm_tb = op.kind == ir::OpKind::Gemm && op.attr_int("transB") != 0;
  const ir::Shape sa = g_.tensor(op.inputs[0]).shape, sb0 = g_.tensor(op.inputs[1]).shape;
  const ir::Shape so = g_.tensor(op.outputs[0]).shape;
  if (sa.size() < 2 || sb0.size() < 2)
    fail(g_, op, "a MatMul of two activations needs operands of rank >= 2");
  for (ir::TensorId t : op.inputs)
    if (t != ir::kNoTensor && g_.tensor(t).dtype != ir::DType::F32 && g_.tensor(t).dtype != ir::DType::F16)
      fail(g_, op, "float operands only");
  const int64_t M = sa[sa.size() - 2], K = sa.back();
  // B's view, as [batch..., K, N].
  View bv = view_of(op.inputs[1]);
  if (bv.inner_dims != 1) bv = identity(stored(op, op.inputs[1]));
  bv.phys = mxm_phys(bv.phys);  // same layout, f16 with finite pad lanes
  if (gemm_tb) {
    std::swap(bv.size[bv.size.size() - 1], bv.size[bv.size.size() - 2]);
    std::swap(bv.rs[bv.rs.size() - 1], bv.rs[bv.rs.size() - 2]);
    std::swap(bv.cs[bv.cs.size() - 1], bv.cs[bv.cs.size() - 2]);
  }
  const size_t nb = bv.size.size();
  const int64_t N = bv.size[nb - 1];
  if (bv.size[nb - 2] != K) fail(g_, op, fmt::format("inner dimensions differ ({} vs {})", K, bv.size[nb - 2]));
  // P.V of a deferred Softmax (defer_softmax): A is decided once B's form is known.
  const auto dsm = deferred_.find(op.inputs[0]);
  const bool pv = dsm != deferred_.end() && !gemm_tb && op.inputs[1] != op.inputs[0];
  bool fuse_sum = false;  // P.[V|1] on e, then a divide by the sums column
  ir::TensorId a = pv ? ir::kNoTensor
                     : g_.tensor(op.inputs[0]).is_const ? stored_constant(op.inputs[0])
                                                        : mxm_input(op, op.inputs[0]);
  // Output batches (numpy broadcasting of the batch dims).
  const size_t nbo = so.size() - 2;
  const int64_t batches = prod(so, 0, nbo);
  auto batch_offset = [&](const ir::Shape& s, const std::vector<int64_t>& rs, const std::vector<int64_t>& cs,
                          int64_t bo, int64_t* r, int64_t* c) {
    // s has rank >= 2 and its batch dims broadcast to so's.
    const size_t nbs = s.size() - 2;
    int64_t rem = bo;
    *r = 0;
    *c = 0;
    for (size_t d = nbo; d-- > 0;) {
      const int64_t i = rem % so[d];
      rem /= so[d];
      const ptrdiff_t ds = static_cast<ptrdiff_t>(d) - static_cast<ptrdiff_t>(nbo - nbs);
      if (ds < 0 || s[static_cast<size_t>(ds)] == 1) continue;
      *r += i * rs[static_cast<size_t>(ds)];
      *c += i * cs[static_cast<size_t>(ds)];
    }
  };
  const size_t k_dim = nb - 2, n_dim = nb - 1;
  auto lane = [](const View& v, size_t d) { return v.size[d] == 1 || (v.rs[d] == 0 && v.cs[d] == 1); };
  auto rowc = [](const View& v, size_t d) { return v.size[d] == 1 || (v.rs[d] == 1 && v.cs[d] == 0); };
  const View bid = identity(bv.phys);
  const bool bzero = zero_pad_.count(bv.phys) != 0;
  auto all_batches_col0 = [&](const View& v) {
    for (int64_t bo = 0; bo < batches; ++bo) {
      int64_t r, c;
      batch_offset(v.size, v.rs, v.cs, bo, &r, &c);
      if (v.c0 + c != 0) return false;
    }
    return true;
  };
  bool trans = false;
  View B = bv;
  if (lane(bv, n_dim) && rowc(bv, k_dim) && all_batches_col0(bv) && !nonfinite_pad(bv.phys)) {
    trans = false;
    // V stored with its ones column (a Concat, concat_feeds_pv): install the N + 1 lanes.
    fuse_sum = pv && ones_col_.count(bv.phys) != 0 && bid.size.back() == N + 1;
  } else if (lane(bv, k_dim) && rowc(bv, n_dim) && all_batches_col0(bv) && bzero && bid.size.back() == K) {
    trans = true;
  } else if (lane(bv, n_dim)) {
    const ir::Shape ls = bv.size;
    fuse_sum = pv;
    const ir::TensorId s = pv ? materialize_ones(op, bv, ls) : materialize(op, bv, ir::kNoTensor, ls);
    B = identity(s);
  } else if (lane(bv, k_dim)) {
    View t = bv;
    std::swap(t.size[k_dim], t.size[n_dim]);
    std::swap(t.rs[k_dim], t.rs[n_dim]);
    std::swap(t.cs[k_dim], t.cs[n_dim]);
    const ir::TensorId s = materialize(op, t, ir::kNoTensor, t.size);
    B = identity(s);
    std::swap(B.size[k_dim], B.size[n_dim]);
    std::swap(B.rs[k_dim], B.rs[n_dim]);
    std::swap(B.cs[k_dim], B.cs[n_dim]);
    trans = true;
  } else {
    fail(g_, op, "neither axis of the second operand's last two is contiguous in lanes");
  }
  ir::TensorId e_sm = ir::kNoTensor;
  if (pv) {
    e_sm = dsm->second.e;
    if (fuse_sum) {
      // e feeds the MXM directly: stored f16 (it is in (0, 1]) instead of f32 then narrowed.
      for (LoweredEltwise& E : lm_.eltwise)
        if (E.y == e_sm) E.y_f32 = false;
      deferred_.erase(dsm);
      a = mxm_phys(e_sm);
    } else {
      finish_softmax(op.inputs[0]);
      a = mxm_input(op, op.inputs[0]);
    }
  }
  const int64_t NL = fuse_sum ? N + 1 : N;  // lanes of the product (N + 1: the sums column)
  ir::Shape so1 = so;
  so1.back() = NL;
  const ir::TensorId y =
      fuse_sum ? fresh(op.name + ".pv1", so1, ir::DType::F32) : op.outputs[0];
  const ir::Shape ya = identity(a).size;
  const int64_t arows = prod(ya, 0, ya.size() - 1);
  for (int64_t bo = 0; bo < batches; ++bo) {
    int64_t ar, ac, br, bc;
    std::vector<int64_t> ars(sa.size(), 0), acs(sa.size(), 0);
    {  // A is stored as is: batch i of A is rows [i * M, (i + 1) * M)
      int64_t st = M;
      for (size_t d = sa.size() - 2; d-- > 0;) {
        ars[d] = st;
        st *= sa[d];
      }
    }
    batch_offset(sa, ars, acs, bo, &ar, &ac);
    batch_offset(B.size, B.rs, B.cs, bo, &br, &bc);
    LoweredLayer L;
    L.name = batches > 1 ? fmt::format("{}.b{}", op.name, bo) : op.name;
    L.x = a;
    L.y = y;
    L.K = K;
    L.N = NL;
    L.b = B.phys;
    L.b_row0 = B.r0 + br;
    L.b_trans = trans;
    L.y_shape = fuse_sum ? so1 : so;
    L.y_f32 = fuse_sum;
    if (batches > 1 || arows != M) {
      for (int64_t m = 0; m < M; ++m) {
        L.x_rows.push_back(ar + m);
        L.y_rows.push_back(bo * M + m);
      }
    }
    produced_[static_cast<size_t>(y)] = 1;
    lm_.steps.push_back({true, lm_.layers.size()});
    lm_.layers.push_back(std::move(L));
  }
  // Lanes past N: zero when B's stored rows are exactly N lanes wide and clean, else unknown.
  const bool clean = trans ? true : (zero_pad_.count(B.phys) != 0 && identity(B.phys).size.back() == NL);
  nonfinite_[y] = !clean;
  if (clean) zero_pad_[y] = 1;
  if (!fuse_sum) return;
  // S = lane N of every row in every lane (SXM distribute), then P.V = (e.V) / S on the VXM.
  ir::Shape ss = so;
  ss.back() = 1;
  const ir::TensorId S = fresh(op.name + ".rowsum", ss, ir::DType::F32);
  LoweredLane Ln;
  Ln.name = op.name + ".rowsum";
  Ln.mode = LoweredLane::Mode::Broadcast;
  Ln.x = y;
  Ln.y = S;
  Ln.y_shape = ss;
  Ln.y_f32 = true;
  Ln.src_lane = N;
  produced_[static_cast<size_t>(S)] = 1;
  lm_.add_lane(std::move(Ln));
  note_written(S, !clean);
  LoweredEltwise E;
  E.name = op.name + ".normalize";
  E.kind = op.kind;
  E.vxm_op = static_cast<int>(Opcode::Div);
  EltOperand num, den;
  num.act = y;
  den.act = S;
  den.lane_bcast = true;
  E.operands = {num, den};
  E.y = op.outputs[0];
  E.y_shape = so;
  produced_[static_cast<size_t>(op.outputs[0])] = 1;
  lm_.steps.push_back({false, lm_.eltwise.size()});
  lm_.eltwise.push_back(std::move(E));
  // Pad lanes: lane N holds S / S = 1, lanes past it 0 / S (finite when P.[V|1]'s are zero).
  nonfinite_[op.outputs[0]] = !clean;
}

void AttentionLowering::finish() {
  materialize_outputs();
  // Dense steps whose result nothing reads any more (a projection folded into per-head copies).
  std::vector<char> read(g_.tensors().size() + lm_.extra.size(), 0);
  for (const LoweredStep& st : lm_.steps)
    for (ir::TensorId t : step_reads(lm_, st)) read[static_cast<size_t>(t)] = 1;
  for (ir::TensorId t : g_.outputs()) read[static_cast<size_t>(t)] = 1;
  std::vector<LoweredStep> kept;
  for (const LoweredStep& st : lm_.steps) {
    const bool dead = st.dense && !st.gather && folded_.count(st.index) &&
                      !read[static_cast<size_t>(lm_.layers[st.index].y)];
    if (!dead) kept.push_back(st);
  }
  lm_.steps = std::move(kept);
  merge_product_sums();
  pack_segments();
}

void AttentionLowering::pack_segments() {
  if (lanes_ == 0) return;
  const int64_t Ln = lanes_;
  constexpr int64_t kMinRows = 32;  // decode's one row a head: the pass costs more than it saves
  std::vector<int> readers;
  auto count_readers = [&]() {
    readers.assign(g_.tensors().size() + lm_.extra.size(), 0);
    for (const LoweredStep& st : lm_.steps) {  // steps reading t (once per step)
      std::vector<ir::TensorId> r = step_reads(lm_, st);
      std::sort(r.begin(), r.end());
      r.erase(std::unique(r.begin(), r.end()), r.end());
      for (ir::TensorId t : r) readers[static_cast<size_t>(t)]++;
    }
    for (ir::TensorId t : g_.outputs()) readers[static_cast<size_t>(t)] += 1000;
  };
  // The one step writing t (position in lm_.steps), or -1.
  auto writer = [&](ir::TensorId t) {
    int w = -1, n = 0;
    for (size_t i = 0; i < lm_.steps.size(); ++i)
      for (ir::TensorId y : step_writes(lm_, lm_.steps[i]))
        if (y == t) {
          w = static_cast<int>(i);
          ++n;
        }
    return n == 1 ? w : -1;
  };
  for (size_t si = 0; si < lm_.steps.size(); ++si) {
    const LoweredStep st = lm_.steps[si];
    if (!st.dense || st.gather || st.lane) continue;
    const size_t li = st.index;
    LoweredLayer& P = lm_.layers[li];  // rewritten in place at the end; no layer is added before
    const size_t S = P.xsegs.size();
    if (S < 2 || P.b != ir::kNoTensor || P.k_blocks != 0 || !P.tap_rows.empty() || P.copy || P.x_rows.empty() ||
        P.w.size() != static_cast<size_t>(P.K * P.N))
      continue;
    const ir::TensorId O = P.xsegs[0].x;
    const int64_t W = P.xsegs[0].width;
    // G heads a packed row: the most that fit with their ones lanes (lanes / (W + 1)), at most S.
    // The last chunk's slots past S (S % G != 0) get a 1 in their ones lanes from a constant
    // operand of the packing pass (below): their lanes then divide 0 by 1, not 0 by 0 in lanes the
    // o_proj's MXM still multiplies (by zero weights).
    const int64_t G = std::min<int64_t>(Ln / (W + 1), static_cast<int64_t>(S));
    const int64_t NW = G * W + G;
    const int64_t M = static_cast<int64_t>(P.x_rows.size()), C = (static_cast<int64_t>(S) + G - 1) / G;
    bool ok = G >= 2 && M >= kMinRows && C < static_cast<int64_t>(S);
    for (size_t j = 0; j < S && ok; ++j) {
      const LoweredLayer::XSegment& sg = P.xsegs[j];
      ok = sg.x == O && sg.col0 == 0 && sg.width == W && sg.k0 == static_cast<int64_t>(j) * W;
    }
    if (!ok) continue;
    count_readers();
    // O = Y1 / S (the normalize of a fused P.[V|1], matmul_act), S = lane W of Y1 in every lane.
    const int wn = writer(O);
    if (wn < 0 || readers[static_cast<size_t>(O)] != 1 || !is_eltwise(lm_.steps[static_cast<size_t>(wn)])) continue;
    const size_t ni = lm_.steps[static_cast<size_t>(wn)].index;
    {
      const LoweredEltwise& N = lm_.eltwise[ni];
      ok = N.has_op && N.vxm_op == static_cast<int>(Opcode::Div) && N.operands.size() == 2 && N.post.empty() &&
           !N.relu && N.y2 == ir::kNoTensor && N.operands[0].act != ir::kNoTensor && N.operands[0].row_map.empty() &&
           N.operands[1].lane_bcast && N.operands[1].row_map.empty();
    }
    if (!ok) continue;
    const ir::TensorId Y1 = lm_.eltwise[ni].operands[0].act, Sm = lm_.eltwise[ni].operands[1].act;
    const int ws = writer(Sm);
    if (ws < 0 || !lm_.steps[static_cast<size_t>(ws)].lane || readers[static_cast<size_t>(Sm)] != 1 ||
        readers[static_cast<size_t>(Y1)] != 2)
      continue;
    const size_t bi = lm_.steps[static_cast<size_t>(ws)].index;
    if (lm_.lanes[bi].mode != LoweredLane::Mode::Broadcast || lm_.lanes[bi].x != Y1 || lm_.lanes[bi].src_lane != W)
      continue;
    // The P.V products writing Y1: activation weights V1 (one tensor), W + 1 columns; head j's
    // product writes the rows segment j reads.
    std::vector<size_t> prods;  // layer index per segment
    ir::TensorId V1 = ir::kNoTensor;
    int y1_writers = 0;
    for (const LoweredStep& q : lm_.steps)
      if (is_layer(q) && lm_.layers[q.index].y == Y1) ++y1_writers;
    for (size_t j = 0; j < S && ok; ++j) {
      const int64_t r0 = P.xsegs[j].row_off + P.x_rows[0];
      size_t found = lm_.layers.size();
      for (const LoweredStep& q : lm_.steps) {
        if (!q.dense || q.gather || q.lane) continue;
        const LoweredLayer& L = lm_.layers[q.index];
        if (L.y == Y1 && !L.y_rows.empty() && L.y_rows[0] == r0) found = q.index;
      }
      ok = found < lm_.layers.size();
      if (!ok) break;
      const LoweredLayer& L = lm_.layers[found];
      ok = L.b != ir::kNoTensor && !L.b_trans && L.N == W + 1 && L.xsegs.empty() &&
           static_cast<int64_t>(L.y_rows.size()) == M && (V1 == ir::kNoTensor || V1 == L.b);
      for (int64_t m = 0; m < M && ok; ++m)
        ok = L.y_rows[static_cast<size_t>(m)] == P.xsegs[j].row_off + P.x_rows[static_cast<size_t>(m)];
      V1 = L.b;
      prods.push_back(found);
    }
    if (!ok || y1_writers != static_cast<int>(S) || readers[static_cast<size_t>(V1)] != static_cast<int>(S)) continue;
    // V1 = max(MV, [-inf x W, 1]) (the ones pass), MV = V's rows moved to lanes [0, W).
    const int wo = writer(V1);
    if (wo < 0 || !is_eltwise(lm_.steps[static_cast<size_t>(wo)])) continue;
    const size_t oi = lm_.steps[static_cast<size_t>(wo)].index;
    {
      const LoweredEltwise& E = lm_.eltwise[oi];
      ok = E.vxm_op == static_cast<int>(Opcode::Max) && E.operands.size() == 2 && E.post.empty() &&
           E.operands[0].act != ir::kNoTensor && E.operands[0].row_map.empty() && E.operands[1].act == ir::kNoTensor &&
           E.operands[1].const_rows == 1 && E.operands[1].values.size() == static_cast<size_t>(W + 1);
    }
    if (!ok) continue;
    const ir::TensorId MV = lm_.eltwise[oi].operands[0].act;
    const int wm = writer(MV);
    if (wm < 0 || !lm_.steps[static_cast<size_t>(wm)].lane || readers[static_cast<size_t>(MV)] != 1) continue;
    const size_t mi = lm_.steps[static_cast<size_t>(wm)].index;
    if (lm_.lanes[mi].mode != LoweredLane::Mode::Move || !lm_.lanes[mi].y_cols.empty()) continue;
    const int64_t vrows = static_cast<int64_t>(lm_.lanes[mi].x_rows.size());
    // Slot of every V row (the head whose product installs it); a row shared by heads of different
    // slots (grouped-query attention) is not relaid.
    std::vector<int64_t> slot(static_cast<size_t>(vrows), -1);
    for (size_t j = 0; j < S && ok; ++j) {
      const LoweredLayer& L = lm_.layers[prods[j]];
      for (int64_t k = 0; k < L.K && ok; ++k) {
        const int64_t r = L.b_row0 + k;
        ok = r >= 0 && r < vrows;
        if (!ok) break;
        int64_t& sl = slot[static_cast<size_t>(r)];
        ok = sl < 0 || sl == static_cast<int64_t>(j) % G;
        sl = static_cast<int64_t>(j) % G;
      }
    }
    if (!ok) continue;
    // Relayout: head j's V at lanes W (j % G), its ones column at lane G W + j % G.
    {
      LoweredLane& mv = lm_.lanes[mi];
      mv.y_shape.back() = NW;
      for (int64_t r = 0; r < vrows; ++r) mv.y_cols.push_back(W * std::max<int64_t>(slot[static_cast<size_t>(r)], 0));
      if (mv.move_width == 0) mv.move_width = W;
    }
    {
      // Head j's ones column at lane G W + j % G only (one constant row per slot, read by its V
      // rows): head j's product holds its row sum S_j there and zeros in the other ones lanes.
      LoweredEltwise& E = lm_.eltwise[oi];
      E.y_shape.back() = NW;
      EltOperand c;
      c.const_rows = G;
      c.const_f16 = true;
      for (int64_t i = 0; i < G; ++i)
        for (int64_t l = 0; l < NW; ++l)
          c.values.push_back(l < G * W ? -std::numeric_limits<float>::infinity() : l == G * W + i ? 1.f : 0.f);
      for (int64_t r = 0; r < vrows; ++r) c.row_map.push_back(std::max<int64_t>(slot[static_cast<size_t>(r)], 0));
      E.operands[1] = std::move(c);
    }
    for (size_t j = 0; j < S; ++j) {
      LoweredLayer& L = lm_.layers[prods[j]];
      L.N = NW;
      L.y_shape.back() = NW;
    }
    // Packed sums Q1 [rows * C, NW] f16: row c M + m = the sum of Y1's rows of chunk c's heads for
    // product row m (each lane has one nonzero term: the f32 sum is exact, rounded once to f16), so
    // lanes [W i, W i + W) hold head c G + i's unnormalized output and lane G W + i its row sum.
    // Stored f16 (measured: BERT-base attention layers 1+ 7,824 cycles; f32 Q1 and D: 8,019, the
    // divide's two f32 operands taking the o_proj's streams).
    const ir::TensorId Q1 = fresh(P.name + ".packed", {M * C, NW}, ir::DType::F16);
    {
      LoweredEltwise E;
      E.name = P.name + ".packed";
      E.kind = ir::OpKind::Add;
      E.vxm_op = static_cast<int>(Opcode::Add);
      for (int64_t i = 0; i < G; ++i) {
        EltOperand o;
        o.act = Y1;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t m = 0; m < M; ++m) {
            const int64_t j = c * G + i;
            o.row_map.push_back(j < static_cast<int64_t>(S)
                                    ? P.xsegs[static_cast<size_t>(j)].row_off + P.x_rows[static_cast<size_t>(m)]
                                    : -1);
          }
        E.operands.push_back(std::move(o));
        if (i >= 2) E.post.push_back({static_cast<int>(Opcode::Add), 0.f, static_cast<int>(i)});
      }
      // Empty slots of the last chunk: row 1 of this constant (1 in their ones lanes), row 0 zeros.
      const int64_t filled = static_cast<int64_t>(S) - (C - 1) * G;
      if (filled < G) {
        EltOperand e;
        e.const_rows = 2;
        e.const_f16 = true;
        e.values.assign(static_cast<size_t>(2 * NW), 0.f);
        for (int64_t i = filled; i < G; ++i) e.values[static_cast<size_t>(NW + G * W + i)] = 1.f;
        for (int64_t c = 0; c < C; ++c) e.row_map.insert(e.row_map.end(), static_cast<size_t>(M), c + 1 == C ? 1 : 0);
        E.operands.push_back(std::move(e));
        E.post.push_back({static_cast<int>(Opcode::Add), 0.f, static_cast<int>(E.operands.size()) - 1});
      }
      E.y = Q1;
      E.y_shape = {M * C, NW};
      E.y_f32 = false;
      E.disjoint_sum = true;
      produced_[static_cast<size_t>(Q1)] = 1;
      nonfinite_[Q1] = false;
      lm_.eltwise.push_back(std::move(E));
    }
    // The row sums as divisors D [rows * C, NW] f16: one `distribute` a row copies lane G W + i to
    // lanes [W i, W i + W) and to lane G W + i (the ones lanes then hold 1 after the divide).
    const ir::TensorId D = fresh(P.name + ".rowsums", {M * C, NW}, ir::DType::F16);
    {
      LoweredLane& B = lm_.lanes[bi];
      B.x = Q1;
      B.y = D;
      B.y_shape = {M * C, NW};
      B.y_f32 = false;
      B.src_lane = G * W;
      B.lane_map.assign(static_cast<size_t>(Ln), G * W);
      for (int64_t l = 0; l < NW; ++l) B.lane_map[static_cast<size_t>(l)] = l < G * W ? G * W + l / W : l;
      produced_[static_cast<size_t>(D)] = 1;
      nonfinite_[D] = false;
    }
    // Q = Q1 / D [rows * C, NW] f16: head j's normalized output in its own lanes (O's values up to
    // the f16 roundings of Q1 and D), 1 in the ones lanes.
    const ir::TensorId Q = fresh(P.name + ".heads", {M * C, Ln}, ir::DType::F16);
    {
      LoweredEltwise& N = lm_.eltwise[ni];
      N.operands[0].act = Q1;
      N.operands[1].act = D;
      N.operands[1].lane_bcast = false;
      N.y = Q;
      N.y_shape = {M * C, NW};
      N.y_f32 = false;
      produced_[static_cast<size_t>(Q)] = 1;
      nonfinite_[Q] = false;
    }
    P.x = Q;
    P.x_rows.clear();
    P.xsegs.clear();
    for (int64_t c = 0; c < C; ++c) P.xsegs.push_back({Q, c * M, 0, c * G * W, std::min(G * W, P.K - c * G * W)});
    for (int64_t m = 0; m < M; ++m) P.x_rows.push_back(m);
    // Step order: the three steps right before the product (the broadcast and the divide leave
    // their places after the P.V products).
    {
      const LoweredStep bst = lm_.steps[static_cast<size_t>(ws)], nst = lm_.steps[static_cast<size_t>(wn)];
      LoweredStep es;
      es.dense = false;
      es.index = lm_.eltwise.size() - 1;
      std::vector<LoweredStep> steps;
      for (size_t k = 0; k < lm_.steps.size(); ++k) {
        if (k == static_cast<size_t>(ws) || k == static_cast<size_t>(wn)) continue;
        if (k == si) {
          steps.push_back(es);
          steps.push_back(bst);
          steps.push_back(nst);
        }
        steps.push_back(lm_.steps[k]);
      }
      si = si + 3 - (static_cast<size_t>(ws) < si) - (static_cast<size_t>(wn) < si);
      lm_.steps = std::move(steps);
    }
    lm_.rearranged[Q] = O;
  }
}

void AttentionLowering::merge_product_sums() {
  // Readers of each tensor (steps and graph outputs) and the dense steps writing it.
  const size_t nt = g_.tensors().size() + lm_.extra.size();
  std::vector<int> readers(nt, 0), writers(nt, 0);
  for (const LoweredStep& st : lm_.steps) {
    std::vector<ir::TensorId> r = step_reads(lm_, st);
    std::sort(r.begin(), r.end());
    r.erase(std::unique(r.begin(), r.end()), r.end());
    for (ir::TensorId t : r) readers[static_cast<size_t>(t)]++;
    const ir::TensorId y = st.gather ? lm_.gathers[st.index].y
                           : st.lane ? lm_.lanes[st.index].y
                           : st.dense ? lm_.layers[st.index].y
                                      : lm_.eltwise[st.index].y;
    writers[static_cast<size_t>(y)]++;
  }
  for (ir::TensorId t : g_.outputs()) readers[static_cast<size_t>(t)] += 1000;  // never merged away
  // Position in lm_.steps of the one plain dense step writing t (constant weights, no row map on
  // y, no relu, not a conv or copy) that is t's only writer and whose t only the step `user` reads.
  std::vector<char> drop(lm_.steps.size(), 0);  // positions whose step moved or merged away
  auto product_of = [&](ir::TensorId t) -> int {
    if (writers[static_cast<size_t>(t)] != 1 || readers[static_cast<size_t>(t)] != 1) return -1;
    for (size_t i = 0; i < lm_.steps.size(); ++i) {
      const LoweredStep& st = lm_.steps[i];
      if (drop[i] || !st.dense || st.gather || st.lane || lm_.layers[st.index].y != t) continue;
      const LoweredLayer& L = lm_.layers[st.index];
      bool y_as_is = true;  // every row of y written in order (no y row map, or the identity)
      for (size_t m = 0; m < L.y_rows.size() && y_as_is; ++m) y_as_is = L.y_rows[m] == static_cast<int64_t>(m);
      const bool plain = L.b == ir::kNoTensor && L.k_blocks == 0 && L.tap_rows.empty() && !L.copy && !L.relu &&
                         y_as_is && L.w.size() == static_cast<size_t>(L.K * L.N);
      return plain ? static_cast<int>(i) : -1;
    }
    return -1;
  };
  auto segments = [](const LoweredLayer& L) {
    if (!L.xsegs.empty()) return L.xsegs;
    return std::vector<LoweredLayer::XSegment>{{L.x, 0, 0, 0, L.K}};
  };
  for (size_t ei = 0; ei < lm_.steps.size(); ++ei) {
    const LoweredStep st = lm_.steps[ei];
    if (st.dense || st.gather || st.lane || drop[ei]) continue;
    const LoweredEltwise E = lm_.eltwise[st.index];
    if (!E.has_op || E.vxm_op != static_cast<int>(Opcode::Add) || E.operands.size() != 2 ||
        writers[static_cast<size_t>(E.y)] != 1)
      continue;
    const EltOperand &o0 = E.operands[0], &o1 = E.operands[1];
    auto plain_act = [](const EltOperand& o) { return o.act != ir::kNoTensor && o.row_map.empty() && !o.lane_bcast; };
    const ir::Shape ys = E.y_shape.empty() ? lm_.tensor(g_, E.y).shape : E.y_shape;
    const int64_t inner = ys.empty() ? 1 : ys.back();
    if (plain_act(o0) && plain_act(o1)) {
      // y = X_a . W_a + X_b . W_b: ONE product over the segments of both (the MXM accumulates in
      // f32 what the Add chain summed per term), e.g. the per-head o_proj terms of attention.
      const int pa = product_of(o0.act), pb = product_of(o1.act);
      if (pa < 0 || pb < 0 || pa == pb) continue;
      // A grows in place into the merged product: a chain of H terms (o_proj's heads) appends each
      // term's weights once, linear in the weight bytes.
      LoweredLayer& A = lm_.layers[lm_.steps[static_cast<size_t>(pa)].index];
      const LoweredLayer& B = lm_.layers[lm_.steps[static_cast<size_t>(pb)].index];
      if (A.N != B.N || A.N != inner || A.x_rows.size() != B.x_rows.size() || A.y_rows != B.y_rows) continue;
      // Both read the same rows up to a constant offset d (each head's rows of P.V): d moves into
      // B's segments' row offsets.
      const int64_t d = A.x_rows.empty() ? 0 : B.x_rows[0] - A.x_rows[0];
      bool shifted = true;
      for (size_t m = 0; m < A.x_rows.size() && shifted; ++m) shifted = B.x_rows[m] - A.x_rows[m] == d;
      if (!shifted) continue;
      // Only terms that all read ONE tensor (the heads of P.V; two products of one X): a layer over
      // several X tensors could not run int8 (one activation scale per layer, quantize.h), and a
      // residual-style sum of two different inputs keeps its two products.
      bool one_x = true;
      for (const LoweredLayer::XSegment& sg : segments(A)) one_x = one_x && sg.x == A.x;
      for (const LoweredLayer::XSegment& sg : segments(B)) one_x = one_x && sg.x == A.x;
      if (!one_x) continue;
      std::vector<LoweredLayer::XSegment> segs = segments(A);
      for (LoweredLayer::XSegment sg : segments(B)) {
        sg.k0 += A.K;
        sg.row_off += d;
        segs.push_back(sg);
      }
      A.y = E.y;
      A.y_shape = E.y_shape;
      A.y_f32 = E.y_f32;
      A.K += B.K;
      A.w.insert(A.w.end(), B.w.begin(), B.w.end());
      if (!B.bias.empty()) {
        if (A.bias.empty()) A.bias.assign(static_cast<size_t>(A.N), 0.f);
        for (size_t n = 0; n < A.bias.size(); ++n) A.bias[n] += B.bias[n];
      }
      A.xsegs = std::move(segs);
      A.x = A.xsegs[0].x;
      lm_.steps[ei] = lm_.steps[static_cast<size_t>(pa)];  // the merged product runs where the Add ran
      drop[static_cast<size_t>(pa)] = drop[static_cast<size_t>(pb)] = 1;
      readers[static_cast<size_t>(o0.act)] = readers[static_cast<size_t>(o1.act)] = 0;
      continue;
    }
    // y = X . W + c (a constant row): folded into the product's bias.
    const EltOperand& a = plain_act(o0) ? o0 : o1;
    const EltOperand& c = plain_act(o0) ? o1 : o0;
    if (!plain_act(a) || c.act != ir::kNoTensor || c.const_rows != 1 ||
        c.values.size() != static_cast<size_t>(inner))
      continue;
    const int pa = product_of(a.act);
    if (pa < 0) continue;
    LoweredLayer& L = lm_.layers[lm_.steps[static_cast<size_t>(pa)].index];
    if (L.N != inner) continue;
    if (L.bias.empty()) L.bias.assign(static_cast<size_t>(L.N), 0.f);
    for (size_t n = 0; n < L.bias.size(); ++n) L.bias[n] += c.values[n];
    L.y = E.y;
    L.y_shape = E.y_shape;
    L.y_f32 = E.y_f32;
    lm_.steps[ei] = lm_.steps[static_cast<size_t>(pa)];
    drop[static_cast<size_t>(pa)] = 1;
    readers[static_cast<size_t>(a.act)] = 0;
  }
  std::vector<LoweredStep> kept;
  for (size_t i = 0; i < lm_.steps.size(); ++i)
    if (!drop[i]) kept.push_back(lm_.steps[i]);
  lm_.steps = std::move(kept);
}

void AttentionLowering::materialize_outputs() {
  for (ir::TensorId t : g_.outputs()) {
    auto it = views_.find(t);
    if (it == views_.end()) continue;
    const int pi = g_.tensor(t).producer;
    ir::Op op;
    if (pi >= 0) op = g_.ops()[static_cast<size_t>(pi)];
    else op.name = g_.tensor(t).name;
    const View v = it->second;
    views_.erase(it);
    // No fold here: a graph output that is a view (k_new / v_new of an LLM shard's fused
    // projection) has a producer that other steps still read, so a fold would only add a second
    // projection (and a non-int8 reader of its input); the identity copy loads `width` rows.
    no_fold_ = true;
    materialize(op, v, t, g_.tensor(t).shape);
    no_fold_ = false;
  }
}

}  // namespace lpu::compiler
