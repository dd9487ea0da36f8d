// Attention plumbing of the lowering (docs/compiler.md "Attention plumbing"): Reshape, Transpose,
// Split and Slice become strided VIEWS of a stored tensor (no data moves); a consumer that needs a
// stored tensor gets one by an exact identity matmul that reads the view (one f16 term per
// output); a MatMul/Gemm with a constant weight reads its X through the view directly (lane
// offsets and head merges folded into the weight tiles); a MatMul of two activations loads the
// second operand as MXM weights as stored (Q . K^T by the transposed install `iwt`), one product
// per batch index. Pad lanes (past a tensor's last dim) that may hold non-finite values (after a
// Div, Sqrt, Exp, Softmax...) are cleared by a VXM select before the tensor enters the MXM, where
// NaN * 0 would spread.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "compiler/backend/matmul_kernel.h"
#include "compiler/ir/graph.h"
#include "compiler/passes/lowering.h"

namespace lpu::compiler {

class AttentionLowering {
 public:
  AttentionLowering(const ir::Graph& g, LoweredModel& lm, std::vector<int>& layer_of, std::vector<char>& produced,
                    const std::vector<ir::TensorId>& alias);
  // Lowers Reshape (except of a graph input), Transpose, Split, Slice, Concat (row axes), a float
  // Cast, MatMul and Gemm; false for other ops (and for the Reshape and Cast forms it leaves
  // alone). Throws InputError naming the node for forms it cannot lower.
  bool lower(const ir::Op& op);
  // `t` as a stored tensor of its own shape (materializes a view by an identity matmul).
  ir::TensorId stored(const ir::Op& op, ir::TensorId t);
  // stored(t) with finite pad lanes (a VXM select clears them when an earlier step may have left
  // NaN/inf there), for tensors read by the MXM.
  ir::TensorId mxm_input(const ir::Op& op, ir::TensorId t);
  // A constant first operand of a MatMul of activations (A . B with B an activation) as a stored
  // f16 tensor: one VXM `mov` pass writes the constant's f16 values, once per constant.
  ir::TensorId stored_constant(ir::TensorId t);
  // A fresh f16 tensor `name` of `shape` = src by one VXM `mov` pass (a Cast step: a copy); the
  // caller notes its pad lanes (note_written).
  ir::TensorId copy_step(const std::string& name, EltOperand src, ir::Shape shape);  // shape by value: fresh() may move lm_.extra
  // Records that a step wrote `y` and whether its pad lanes may hold non-finite values.
  void note_written(ir::TensorId y, bool maybe_nonfinite);
  bool nonfinite_pad(ir::TensorId t) const;
  // The chip's vector lanes (0: unknown). A row Concat of lane slices of one stored f16 tensor, each
  // slice inside one vector (heads of a fused projection stacked into rows), is then lowered as
  // SXM lane moves (LoweredLane::Mode::Move, one `permute` per row, exact) instead of identity
  // matmuls on the MXM.
  void set_lanes(uint32_t lanes) { lanes_ = lanes; }
  // Graph outputs that are still views are materialized under their own id.
  void finish();
  // A Softmax over the last axis whose only reader is a MatMul P.V (lower_norm.cpp) leaves its
  // normalization to that MatMul: `e` = exp(x - row max) (f32, [.., K]) is stored instead of P.
  // When V needs a stored copy anyway (a view of a projection: the head stacking copy), the copy
  // gets a ones column (V|1, bias 1, weight column 0), the MatMul runs P.[V|1] on e (stored f16
  // for the MXM) into an f32 [.., N + 1] whose lane N is the row sum of e, an SXM `distribute`
  // copies that lane to every lane, and one VXM divide of the N lanes writes P.V: the row sum
  // costs no lane all-reduce and the divide touches N lanes instead of K. Otherwise the sum and
  // divide are emitted as before (a lane sum of e and a divide into P) and P.V reads P.
  void defer_softmax(ir::TensorId p, ir::TensorId e, const std::string& name);

  struct View {
    ir::TensorId phys = ir::kNoTensor;
    std::vector<int64_t> size, rs, cs;  // expanded dims: size, stored-row stride, lane stride
    int64_t r0 = 0, c0 = 0;
    int inner_dims = 1;  // trailing expanded dims forming the logical last dim
  };

 private:
  // lower()'s cases. Reshape, Transpose, Split / Slice and a float Cast become views (no step) when
  // they can (true); a Concat along a row axis is lane moves (a whole stored row: MEM -> MEM),
  // V|1 by moves and a ones pass (concat_ones_by_moves, false if the moves cannot express it), or
  // one identity product per input into its rows of the output (concat_by_copies).
  bool lower_reshape(const ir::Op& op);
  bool lower_transpose(const ir::Op& op);
  bool lower_slices(const ir::Op& op);
  bool lower_concat(const ir::Op& op);
  bool concat_ones_by_moves(const ir::Op& op, const ir::Shape& so);
  void concat_by_copies(const ir::Op& op, const ir::Shape& so, bool ones);
  bool lower_cast(const ir::Op& op);
  View identity(ir::TensorId t) const;
  View view_of(ir::TensorId t) const;
  // t's view with one expanded dim for its last logical dim (stored first when it has several).
  View flat_view(const ir::Op& op, ir::TensorId t);
  // out becomes the view v of a stored tensor (no step).
  void define_view(ir::TensorId out, const View& v);
  bool is_stored_as_is(const View& v) const;
  ir::TensorId fresh(const std::string& name, const ir::Shape& shape, ir::DType dt);
  // y (stored with shape ys) = view . w (+ bias); false if the view's last dim is not lane-contiguous.
  // w by value: a caller done with its weights moves them in (the last layer made takes them).
  bool dense_from_view(const std::string& name, const View& v, int64_t K, int64_t N, std::vector<float> w,
                       const std::vector<float>& bias, ir::TensorId y, const ir::Shape& ys, bool set_layer_of,
                       const std::vector<int64_t>* y_map = nullptr);  // y row of each view row (default: same)
  ir::TensorId materialize(const ir::Op& op, const View& v, ir::TensorId target, const ir::Shape& shape);
  // A stored copy of the view with one more lane holding 1 (V|1 above), shape `shape` with last + 1.
  ir::TensorId materialize_ones(const ir::Op& op, const View& v, const ir::Shape& shape);
  // The deferred Softmax's lane sum and divide into P (the unfused form).
  void finish_softmax(ir::TensorId p);
  // A row Concat whose output (through Reshapes) is only the V of a deferred Softmax's P.V: it is
  // stored with a ones column (V|1), its graph tensor a view of the first lanes.
  bool concat_feeds_pv(const ir::Op& op) const;
  // Copies a view of a dense layer's output by that layer's own product restricted to the view's
  // weight columns (reads the layer's input; the layer may then be dead). False if not applicable.
  // ones_col: y gets one more column of 1 (bias 1, weights 0) after the view's `width`.
  bool fold_into_producer(const ir::Op& op, const View& v, ir::TensorId y, const ir::Shape& ys, int64_t width,
                          bool ones_col = false);
  void materialize_outputs();
  // Sums of products folded into products (run by finish()): an Add of two dense layers' outputs
  // that nothing else reads, both reading one X tensor (rows equal up to a constant offset),
  // becomes ONE layer over both layers' X segments with the weights
  // stacked (the MXM accumulates the terms; an Add chain of per-head o_proj terms becomes one
  // product with a k-tile per head), and an Add of a constant row after such a layer becomes its
  // bias. Same sum, fewer roundings (one f32 accumulation instead of an f16 result per term).
  void merge_product_sums();
  // Packed heads (run by finish() after merge_product_sums): a product reading S >= 2 head
  // segments (W lanes at lane 0 of their rows, >= 32 rows) of the normalized output O of a fused
  // P.[V|1] (matmul_act: per-head products Y1 installing V|1, a row-sum broadcast, a divide) reads
  // a packed copy instead. G heads share a vector (the most that fit with a ones lane each, lanes /
  // (W + 1), at most S); head j's V is moved to lanes W (j % G) and its ones column to lane
  // G W + j % G (the ones pass takes one constant row per slot), so Y1's row of head j holds its
  // unnormalized output in its own lanes, its row sum in its ones lane and zeros elsewhere. Three
  // steps then replace the per-head broadcast and divide: one VXM pass adds the Y1 rows of each
  // group of G heads (exact: one nonzero term per lane) into Q1 [rows * C, G W + G] f16, C =
  // ceil(S / G), a last chunk's empty slots adding a constant 1 in their ones lanes (so they
  // divide 0 by 1, not 0 by 0); one `distribute` per Q1 row copies ones lane G W + i to lanes
  // [W i, W i + W) (D, the divisors); one VXM pass Q = Q1 / D. The product reads Q as C segments
  // of G W lanes: C k-tiles instead of S (BERT-base's o_proj: 3 instead of 12, a quarter of the
  // `abc` rows; the ones lanes, 1 after the divide, meet no weight row), and the VXM divides once
  // per packed vector instead of once per head row. Numerics: the output and its row sum are
  // rounded to f16 before the divide (two more f16 roundings than O = Y1 / S in f32; inside the
  // bounds, tests/llm/test_packed_heads.cpp). Q is calibrated as O (LoweredModel::rearranged).
  void pack_segments();
  // pack_segments' steps, one product at a time: the chain it rewrites (match_packed_heads, no
  // change made; false if P at step si is not the form above), V's and the ones column's new lanes
  // (relayout_heads), and the packed sum, divisors and divide placed before the product
  // (pack_heads, which returns the product's new step position).
  struct PackedHeads;
  struct HeadUses;
  bool match_packed_heads(size_t si, PackedHeads* h);
  // match_packed_heads' parts, in order, each filling its fields of *h (attention_finish.cpp).
  bool match_head_merge(size_t si, PackedHeads* h) const;
  bool match_normalize(const HeadUses& u, PackedHeads* h) const;
  bool match_pv_products(const HeadUses& u, PackedHeads* h) const;
  bool match_ones_pass(const HeadUses& u, PackedHeads* h) const;
  bool assign_slots(PackedHeads* h) const;
  void relayout_heads(const PackedHeads& h);
  size_t pack_heads(const PackedHeads& h);
  bool stored_f32(ir::TensorId t) const;
  // A stored tensor ready for the MXM: f16 (a narrowing copy of an f32 one) with finite pad lanes.
  ir::TensorId mxm_phys(ir::TensorId s);
  ir::TensorId clean(ir::TensorId s);
  void matmul_const(const ir::Op& op);
  void matmul_act(const ir::Op& op);
  // matmul_act's steps: the second operand bv ([batch..., K, N]) in the form the MXM installs (as
  // is, transposed in place, or a stored copy; *fuse_sum: with its ones column for a deferred
  // Softmax's P.[V|1], pv); the divide of P.[V|1] y by its sums column N (a broadcast, a VXM pass).
  View product_weights(const ir::Op& op, const View& bv, bool pv, bool* fuse_sum, bool* trans);
  void normalize_by_sums(const ir::Op& op, ir::TensorId y, int64_t N, bool clean);

  const ir::Graph& g_;
  LoweredModel& lm_;
  std::vector<int>& layer_of_;
  std::vector<char>& produced_;
  const std::vector<ir::TensorId>& alias_;
  std::map<ir::TensorId, View> views_;
  std::map<ir::TensorId, bool> nonfinite_;
  std::map<ir::TensorId, ir::TensorId> cleaned_;
  std::map<ir::TensorId, char> zero_pad_;  // written by a dense layer: pad lanes exactly zero
  std::map<ir::TensorId, ir::TensorId> narrowed_;
  std::map<ir::TensorId, ir::TensorId> const_copies_;  // stored_constant's copies
  std::set<size_t> folded_;                 // layers folded into per-view copies (dead if unread)
  bool no_fold_ = false;                    // materializing graph outputs: identity copies only
  uint32_t lanes_ = 0;
  // The Concat as one lane-move step writing y (stored ys: the Concat's shape, or one lane wider,
  // lanes past the Concat's zero), if every input is a lane slice of one stored f16 tensor inside
  // one vector (lanes_ known); false otherwise (nothing emitted). y kNoTensor: the check only.
  bool concat_as_moves(const ir::Op& op, ir::TensorId y, const ir::Shape& ys);
  struct DeferredSoftmax {
    ir::TensorId e = ir::kNoTensor;
    std::string name;  // the Softmax node's
  };
  std::map<ir::TensorId, DeferredSoftmax> deferred_;  // by P
  std::set<ir::TensorId> ones_col_;  // stored with lane (width - 1) all ones (V|1)
};

// For the scheduler: weights of a layer with X segments, one lanes-row tile per (segment, vector)
// piece with the segment's weight rows at the lanes its X columns occupy; fills `w` ((tiles *
// lanes) x N; w may be null when only the k-tiles are wanted) and the k-tiles (x tensors looked
// up by `placed`).
template <class Lookup>
void view_ktiles(const LoweredLayer& L, uint32_t lanes, Lookup placed, std::vector<float>* w,
                 std::vector<MatmulKTile>* kt) {
  kt->clear();
  std::vector<int64_t> k_lo;  // per tile: the weight row its lane t.w_lo holds
  for (const LoweredLayer::XSegment& s : L.xsegs) {
    for (int64_t c = s.col0; c < s.col0 + s.width;) {
      const int64_t chunk = c / lanes, lo = c % lanes;
      const int64_t hi = std::min<int64_t>(lanes, lo + (s.col0 + s.width - c));
      MatmulKTile t;
      t.x = placed(s.x);
      t.x_row_off = s.row_off;
      t.x_chunk = static_cast<uint32_t>(chunk);
      t.w_lo = static_cast<uint32_t>(lo);
      t.w_hi = static_cast<uint32_t>(hi);
      kt->push_back(t);
      k_lo.push_back(s.k0 + (chunk * lanes + lo - s.col0));
      c += hi - lo;
    }
  }
  if (!w) return;
  const size_t tile = static_cast<size_t>(lanes * L.N);
  w->assign(kt->size() * tile, 0.f);  // sized once: these are whole weight sets of LLM pieces
  for (size_t i = 0; i < kt->size(); ++i) {
    const MatmulKTile& t = (*kt)[i];
    for (uint32_t l = t.w_lo; l < t.w_hi; ++l) {
      const int64_t k = k_lo[i] + (l - t.w_lo);
      std::copy_n(L.w.begin() + static_cast<std::ptrdiff_t>(k * L.N), L.N,
                  w->begin() + static_cast<std::ptrdiff_t>(i * tile + l * static_cast<size_t>(L.N)));
    }
  }
}

}  // namespace lpu::compiler
