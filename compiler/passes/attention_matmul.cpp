// Attention plumbing, part 2: MatMul and Gemm nodes (lower_attention.h). A constant weight reads
// its X through a view (lane offsets and head merges folded into the weight tiles); a MatMul of two
// activations loads the second as MXM weights as stored, one product per batch index, and fuses a
// deferred Softmax's normalization (P.[V|1], a row-sum broadcast, a divide).
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "compiler/ir/dtype.h"
#include "compiler/passes/lower_attention.h"
#include "isa/isa.h"

namespace lpu::compiler {

using View = AttentionLowering::View;

void AttentionLowering::matmul_const(const ir::Op& op) {
  const ir::Tensor& wt = g_.tensor(op.inputs[1]);
  if (wt.shape.size() != 2) node_error(g_, op, "the constant weight must be 2-D");
  bool transB = false;
  float alpha = 1.f, beta = 1.f;
  if (op.kind == ir::OpKind::Gemm) {
    if (op.attr_int("transA") != 0) node_error(g_, op, "transA=1 is not supported");
    transB = op.attr_int("transB") != 0;
    alpha = op.attr_float("alpha");
    beta = op.attr_float("beta");
  }
  const int64_t K = transB ? wt.shape[1] : wt.shape[0];
  const int64_t N = transB ? wt.shape[0] : wt.shape[1];
  const ir::TensorId a = op.inputs[0];
  const ir::Tensor& at = g_.tensor(a);
  if (at.is_const) node_error(g_, op, "constant activation input '" + at.name + "'");
  if (at.dtype != ir::DType::F32 && at.dtype != ir::DType::F16)
    node_error(
        g_, op,
        fmt::format("activation '{}' has type {}; float models only", at.name, ir::dtype_name(at.dtype)));
  if ((at.shape.empty() ? 1 : at.shape.back()) != K)
    node_error(g_, op,
               fmt::format("activation inner dimension {} != weight rows {}",
                           at.shape.empty() ? 1 : at.shape.back(), K));
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
    if (!c.is_const || c.elements() != N || c.shape.back() != N)
      node_error(g_, op, "C must be a constant of N elements (a bias)");
    const std::vector<float> cv = c.const_floats();
    for (int64_t n = 0; n < N; ++n) bias.push_back(beta * cv[static_cast<size_t>(n)]);
  }
  View v = view_of(a);
  v.phys = mxm_phys(v.phys);  // same layout, f16 with finite pad lanes
  if (!dense_from_view(op.name, v, K, N, std::move(w), bias, op.outputs[0], {}, true))
    node_error(g_, op, "its input's last axis is not contiguous in lanes (a transpose of the last axis)");
}

namespace {
// Dims i and j of v swapped.
void swap_dims(View& v, size_t i, size_t j) {
  std::swap(v.size[i], v.size[j]);
  std::swap(v.rs[i], v.rs[j]);
  std::swap(v.cs[i], v.cs[j]);
}

// The stored-row and lane offsets (*r, *c) of output batch bo (row-major over so's batch dims) in an
// operand of shape s (rank >= 2, batch dims broadcast to so's) with batch strides rs / cs.
void batch_offset(const ir::Shape& so, const ir::Shape& s, const std::vector<int64_t>& rs,
                  const std::vector<int64_t>& cs, int64_t bo, int64_t* r, int64_t* c) {
  const size_t nbo = so.size() - 2, nbs = s.size() - 2;
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
}
}  // namespace

void AttentionLowering::matmul_act(const ir::Op& op) {
  if (op.kind == ir::OpKind::Gemm) {
    if (op.attr_int("transA") != 0 || op.attr_float("alpha") != 1.f ||
        (op.inputs.size() > 2 && op.inputs[2] != ir::kNoTensor))
      node_error(g_, op, "a Gemm of two activations is lowered with transA=0, alpha=1 and no C only");
  }
  const bool gemm_tb = op.kind == ir::OpKind::Gemm && op.attr_int("transB") != 0;
  const ir::Shape sa = g_.tensor(op.inputs[0]).shape, sb0 = g_.tensor(op.inputs[1]).shape;
  const ir::Shape so = g_.tensor(op.outputs[0]).shape;
  if (sa.size() < 2 || sb0.size() < 2)
    node_error(g_, op, "a MatMul of two activations needs operands of rank >= 2");
  for (ir::TensorId t : op.inputs)
    if (t != ir::kNoTensor && g_.tensor(t).dtype != ir::DType::F32 && g_.tensor(t).dtype != ir::DType::F16)
      node_error(g_, op, "float operands only");
  const int64_t M = sa[sa.size() - 2], K = sa.back();
  // B's view, as [batch..., K, N].
  View bv = flat_view(op, op.inputs[1]);
  bv.phys = mxm_phys(bv.phys);  // same layout, f16 with finite pad lanes
  if (gemm_tb) swap_dims(bv, bv.size.size() - 1, bv.size.size() - 2);
  const size_t nb = bv.size.size();
  const int64_t N = bv.size[nb - 1];
  if (bv.size[nb - 2] != K)
    node_error(g_, op, fmt::format("inner dimensions differ ({} vs {})", K, bv.size[nb - 2]));
  // P.V of a deferred Softmax (defer_softmax): A is decided once B's form is known.
  const auto dsm = deferred_.find(op.inputs[0]);
  const bool pv = dsm != deferred_.end() && !gemm_tb && op.inputs[1] != op.inputs[0];
  bool fuse_sum = false;  // P.[V|1] on e, then a divide by the sums column
  ir::TensorId a = pv                                 ? ir::kNoTensor
                   : g_.tensor(op.inputs[0]).is_const ? stored_constant(op.inputs[0])
                                                      : mxm_input(op, op.inputs[0]);
  bool trans = false;
  const View B = product_weights(op, bv, pv, &fuse_sum, &trans);
  if (pv) {
    const ir::TensorId e_sm = dsm->second.e;
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
  const ir::TensorId y = fuse_sum ? fresh(op.name + ".pv1", so1, ir::DType::F32) : op.outputs[0];
  const ir::Shape ya = identity(a).size;
  const int64_t arows = ir::num_elements(ya, 0, ya.size() - 1);
  // One product per output batch (numpy broadcasting of the batch dims).
  const int64_t batches = ir::num_elements(so, 0, so.size() - 2);
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
    batch_offset(so, sa, ars, acs, bo, &ar, &ac);
    batch_offset(so, B.size, B.rs, B.cs, bo, &br, &bc);
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
  if (fuse_sum) normalize_by_sums(op, y, N, clean);
}

View AttentionLowering::product_weights(const ir::Op& op, const View& bv, bool pv, bool* fuse_sum, bool* trans) {
  const ir::Shape so = g_.tensor(op.outputs[0]).shape;
  const int64_t batches = ir::num_elements(so, 0, so.size() - 2);
  const size_t nb = bv.size.size(), k_dim = nb - 2, n_dim = nb - 1;
  const int64_t K = bv.size[k_dim], N = bv.size[n_dim];
  auto lane = [](const View& v, size_t d) { return v.size[d] == 1 || (v.rs[d] == 0 && v.cs[d] == 1); };
  auto rowc = [](const View& v, size_t d) { return v.size[d] == 1 || (v.rs[d] == 1 && v.cs[d] == 0); };
  const View bid = identity(bv.phys);
  const bool bzero = zero_pad_.count(bv.phys) != 0;
  auto all_batches_col0 = [&](const View& v) {
    for (int64_t bo = 0; bo < batches; ++bo) {
      int64_t r, c;
      batch_offset(so, v.size, v.rs, v.cs, bo, &r, &c);
      if (v.c0 + c != 0) return false;
    }
    return true;
  };
  *trans = false;
  if (lane(bv, n_dim) && rowc(bv, k_dim) && all_batches_col0(bv) && !nonfinite_pad(bv.phys)) {
    // V stored with its ones column (a Concat, concat_feeds_pv): install the N + 1 lanes.
    *fuse_sum = pv && ones_col_.count(bv.phys) != 0 && bid.size.back() == N + 1;
    return bv;
  }
  if (lane(bv, k_dim) && rowc(bv, n_dim) && all_batches_col0(bv) && bzero && bid.size.back() == K) {
    *trans = true;
    return bv;
  }
  if (lane(bv, n_dim)) {
    const ir::Shape ls = bv.size;
    *fuse_sum = pv;
    return identity(pv ? materialize_ones(op, bv, ls) : materialize(op, bv, ir::kNoTensor, ls));
  }
  if (lane(bv, k_dim)) {
    View t = bv;
    swap_dims(t, k_dim, n_dim);
    View B = identity(materialize(op, t, ir::kNoTensor, t.size));
    swap_dims(B, k_dim, n_dim);
    *trans = true;
    return B;
  }
  node_error(g_, op, "neither axis of the second operand's last two is contiguous in lanes");
}

void AttentionLowering::normalize_by_sums(const ir::Op& op, ir::TensorId y, int64_t N, bool clean) {
  // S = lane N of every row in every lane (SXM distribute), then P.V = (e.V) / S on the VXM.
  const ir::Shape so = g_.tensor(op.outputs[0]).shape;
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
  E.operands = {EltOperand::of(y), EltOperand::of(S, true)};
  E.y = op.outputs[0];
  E.y_shape = so;
  produced_[static_cast<size_t>(op.outputs[0])] = 1;
  lm_.steps.push_back({false, lm_.eltwise.size()});
  lm_.eltwise.push_back(std::move(E));
  // Pad lanes: lane N holds S / S = 1, lanes past it 0 / S (finite when P.[V|1]'s are zero).
  nonfinite_[op.outputs[0]] = !clean;
}

}  // namespace lpu::compiler
