// Lowering pass: matches the IR graph onto the back end's kernels: dense layers
// y = relu?(x . W + b) from MatMul/Gemm with a constant weight, an optional Add of a constant bias
// and an optional Relu (folded into the matmul's VXM epilogue); every other elementwise op of the
// table in lowering.cpp becomes one VXM elementwise step; ReduceSum/ReduceMean, Softmax and
// LayerNormalization over the last axis become lane steps (VXM + SXM row all-reduce, no constant
// bigger than one row) plus VXM steps (passes/lower_norm.h), with intermediates in `extra`;
// Reshape of a graph input is folded into the
// input's shape (same row-major bytes). Anything else throws InputError naming the op and what
// is supported.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace lpu::compiler {

struct LoweredLayer {
  std::string name;              // name of the matmul op
  ir::TensorId x = ir::kNoTensor;  // activation input (a graph input or an earlier layer's y)
  ir::TensorId y = ir::kNoTensor;  // final output of the layer (after bias and relu)
  int64_t K = 0, N = 0;
  std::vector<float> w;          // K x N row-major (Gemm transB and alpha folded in)
  std::vector<float> bias;       // N values, empty if none (Gemm beta folded in)
  bool relu = false;
  std::vector<int64_t> y_shape;  // shape the chip stores y in (empty: y's graph shape)
  bool y_f32 = false;            // store a hidden y as f32 (default: f16)
  // > 0: x is an im2col tensor (LoweredGather) and w's K rows are k_blocks blocks of K / k_blocks
  // rows (conv taps); the scheduler pads each block to whole vectors (zero rows), as the gather does.
  int64_t k_blocks = 0;
  // Conv read in place (passes/lower_conv.h, no im2col tensor): with k_blocks taps, x is the conv
  // input and tap t of product row m reads x's stored row tap_rows[t][m] (-1: zeros, padding); the
  // scheduler makes each tap's chunks k-tiles (conv_tap_ktiles).
  std::vector<std::vector<int64_t>> tap_rows;
  // > 0: the MACs of the graph op(s) this layer computes, reported instead of rows x K x N (packed
  // layers compute zero blocks and pixels twice, lower_conv.h "Packed taps", "Pixel packing").
  int64_t model_macs = 0;
  // Attention plumbing (docs/compiler.md, passes/lower_attention.cpp): row maps (product row m
  // reads stored row x_rows[m] of x and writes stored row y_rows[m] of y; empty = m; several layers
  // may write disjoint rows of one y), X as column segments of stored tensors (logical columns
  // [k0, k0 + width) of product row m are columns [col0, col0 + width) of row row_off + x_rows[m] of
  // tensor x; empty = x's columns 0..K-1), and weights from an activation instead of `w`
  // (b != kNoTensor, w empty): W[k][n] = b[b_row0 + k][n], or with b_trans W[k][n] = b[b_row0 + n][k]
  // (b's lanes past K must be zero).
  struct XSegment {
    ir::TensorId x = ir::kNoTensor;
    int64_t row_off = 0, col0 = 0, k0 = 0, width = 0;
  };
  std::vector<int64_t> x_rows, y_rows;
  std::vector<XSegment> xsegs;
  ir::TensorId b = ir::kNoTensor;
  int64_t b_row0 = 0;
  bool b_trans = false;
  // A pure row copy (a row Concat's input, lower_attention.cpp): w is the identity, xsegs is one
  // segment of all of x's lanes (col0 0, width K == N == x's last dim) and x's pad lanes are zero,
  // so the scheduler may move whole vectors MEM -> MEM (backend/gather_kernel.h, GatherSpec::
  // dst_rows) instead of an identity matmul; the reference still evaluates it as the matmul.
  bool copy = false;
  // A residual Add fused into the epilogue (passes/fuse_residual.h): y = relu?(f16(x . W + bias) + r)
  // with r = `residual`, an activation stored f16 in y's stored shape, the sum rounded to f16 (the
  // same bits as storing the product's y and a separate Add step; `relu` then applies after the
  // add); kNoTensor: none.
  ir::TensorId residual = ir::kNoTensor;
  // A second output (passes/quantize.h apply_quant_copies, as LoweredEltwise::y2): y's stored values
  // quantized to i8 with y2's scale in the same epilogue; kNoTensor: none.
  ir::TensorId y2 = ir::kNoTensor;
  // A per-row divisor (passes/quantize.h "LayerNorm folds"): an f32 [rows, 1] lane-step result (a
  // LayerNorm's sd, its row's value in every lane); the epilogue divides each product row's f32
  // accumulator by it before the scale and bias: y = relu?(acc / d[row] * scale + bias).
  // kNoTensor: none.
  ir::TensorId row_div = ir::kNoTensor;
};

// A row gather (conv im2col, passes/lower_conv.h): y row r = `taps` blocks, block t = x's row
// map[r * taps + t] (-1: zeros), each block padded to whole vectors when taps > 1.
struct LoweredGather {
  std::string name;
  ir::TensorId x = ir::kNoTensor, y = ir::kNoTensor;
  int64_t rows = 0, taps = 1;
  std::vector<int64_t> map;
  // Runtime-index form (embedding lookup, passes/lower_forms.h "Gather"): non-empty `table` holds
  // the constant [table_rows, table_cols] rows (row-major); x is then the index input (stored
  // [rows, lanes] i16, each row one token's row offset id * ceil(table_cols / lanes) in every lane,
  // written by the host: LoweredInput::lookup_*), map is unused; y row r = table row of token r.
  std::vector<float> table;
  int64_t table_rows = 0, table_cols = 0;
};

// An operand of an elementwise step: an activation of the output's shape, or a constant resolved
// (numpy broadcasting) to `const_rows` rows of the output's last dimension: 1 row broadcast to all
// rows (a per-row vector or a scalar), or one row per output row.
struct EltOperand {
  ir::TensorId act = ir::kNoTensor;  // activation (kNoTensor: constant)
  std::vector<float> values;         // constant: const_rows x inner, row-major
  int64_t const_rows = 0;
  // Constant only: stored f16 instead of f32 (every value must be exactly an f16, logic_error
  // otherwise), so a step whose other operands and output are f16 runs on the f16 values directly
  // (backend/elementwise_kernel.cpp `f16_direct`: no widening or narrowing `cvt`s), bit-identical.
  bool const_f16 = false;
  // Optional: output row r reads row row_map[r] (-1: zeros) of the activation, or of a constant of
  // const_rows rows (stored one row a block: passes/schedule_constants.cpp).
  std::vector<int64_t> row_map;
  // Activation only: a per-row scalar stored [rows, 1] by a lane step (LoweredLane), whose one
  // vector per row holds the value in every lane; read for every chunk of the output's row.
  bool lane_bcast = false;
  // A constant operand from per-element values in `shape`'s row-major order: one row if every row
  // of [rows, last dim] holds the same values, else all rows.
  static EltOperand constant(const std::vector<float>& full, const ir::Shape& shape);
  // The activation t as an operand (lane_bcast: a lane step's per-row scalar, above).
  static EltOperand of(ir::TensorId t, bool lane_bcast = false) {
    EltOperand o;
    o.act = t;
    o.lane_bcast = lane_bcast;
    return o;
  }
};

// Terms one VXM pass of an `add` / `max` / `min` chain combines when reducing n terms in levels
// (a pass: the op on the first two terms, a binary post op per further term; GlobalAveragePool,
// lower_conv.cpp, and reductions over row axes, lower_norm.cpp): n itself up to 16; beyond, ceil(
// sqrt(n)) capped at 64, so two short levels replace one long chain. Why: a chain's ops are
// serial and its f32 partial holds a stream group for all of them, so long chains of a row's
// vectors hardly overlap (docs/compiler/convolution.md "GlobalAveragePool").
inline int64_t reduction_chain_terms(int64_t n) {
  constexpr int64_t kMaxTerms = 64, kOneLevel = 16;
  if (n <= kOneLevel) return n;
  int64_t g = n < kMaxTerms ? n : kMaxTerms;
  while ((g - 1) * (g - 1) >= n) --g;
  return g;
}

// One elementwise op on the VXM: y = op(operands) with one VXM instruction (f32), or none (a Cast
// between float types). `vxm_op` is an lpu::Opcode value.
// True if VXM op `vxm_op` (an lpu::Opcode value) can give NaN or inf on finite inputs: a division
// (x / 0, 0 / 0), a root or logarithm of a negative or zero value, an exp that overflows.
bool vxm_may_make_nonfinite(int vxm_op);

struct LoweredEltwise {
  std::string name;  // the IR op's name
  ir::OpKind kind = ir::OpKind::Add;
  bool has_op = true;
  int vxm_op = 0;    // lpu::Opcode (Select: operands are cond, a, b)
  std::vector<EltOperand> operands;
  ir::TensorId y = ir::kNoTensor;
  std::vector<int64_t> y_shape;  // shape the chip stores y in (empty: y's graph shape)
  bool y_f32 = false;            // store a hidden y as f32 (default: f16)
  // A Relu fused into the step (lower_graph: a Relu whose input only this step writes and only the
  // Relu reads, e.g. ResNet's residual Add + Relu): y = relu(op(operands)), one VXM `relu` (f32)
  // after the op in the same pass; `name` stays the first op's, y is the Relu's output.
  bool relu = false;
  // Unary f32 VXM ops fused after the op (and the Relu) in the same pass, in order: lpu::Opcode
  // value and the immediate of muli/addi (e.g. Softmax's relu, neg, exp after the row max is
  // subtracted, passes/lower_norm.cpp). `name` stays the first op's.
  // operand >= 0: a binary post op whose src_b is operands[operand], an operand past the op's own,
  // in post order (backend/elementwise_kernel.h; e.g. LayerNorm's * scale and + bias).
  // operand2 >= 0 (an `fma` only): the value so far plus operands[operand] * operands[operand2]
  // (a depthwise conv's taps, passes/lower_conv.h).
  struct Post { int op = 0; float imm = 0.f; int operand = -1; int operand2 = -1; };
  std::vector<Post> post;
  // A second output (passes/quantize.h apply_quant_copies: a quantized copy fused into the step
  // that writes its source): y2 = y's stored values quantized to i8 with y2's scale, in the same
  // pass (backend/elementwise_kernel.h EltwiseSpec::y2); kNoTensor: none.
  ir::TensorId y2 = ir::kNoTensor;
  // An Add chain whose every partial sum is exact: each lane has at most one nonzero term (the
  // packed heads, lower_attention.h pack_segments); with f16 operands it runs on the f16 values
  // (backend/elementwise_kernel.h).
  bool disjoint_sum = false;
  // A Max/Min chain: the op and binary post ops of the same opcode, at most a fused Relu after a Max
  // (MaxPool's one pass, passes/lower_conv.cpp).
  bool minmax_chain() const;
  // True if the op or a post op can turn finite values into NaN or inf (vxm_may_make_nonfinite),
  // so that the pad lanes past a tensor's last dim may no longer be finite.
  bool may_make_nonfinite() const;
  // y (stored `shape`, its last dim `inner` lanes) = x with the pad lanes past `inner` zeroed:
  // sel(c, x, c), c = 1 on the lanes and, past them, the constant's zero pad (a step named `name`).
  static LoweredEltwise pad_clear(const std::string& name, ir::TensorId x, ir::TensorId y, const ir::Shape& shape,
                                  int64_t inner);
};

// A lane step (backend/lane_kernel.h, passes/lower_norm.h): a row reduction over the last axis
// (Max, or Sum of x or of x * x, then unary f32 ops `post`), or a lane broadcast of an [rows, 1]
// tensor; y is stored [rows, 1] with the row's result in EVERY lane of its vector.
struct LoweredLane {
  enum class Mode { Max, Sum, Broadcast, Move };
  std::string name;
  Mode mode = Mode::Sum;
  ir::TensorId x = ir::kNoTensor, y = ir::kNoTensor;
  std::vector<int64_t> y_shape;  // [.., 1]: shape the chip stores y in
  bool y_f32 = false;            // store a hidden y as f32 (default: f16)
  bool square = false;
  // Sum only: a [rows, 1] f32 tensor (its row's value in every lane, e.g. the row mean) subtracted
  // from every widened chunk of x before the pad-lane mask and the square (LayerNorm's `.sd`:
  // sum((x - mean)^2) without a centred copy of x); kNoTensor: none.
  ir::TensorId center = ir::kNoTensor;
  // Max only, optional (0: none): x's row is several segments of this many lanes, each reduced on
  // its own; y's row holds each segment's max in that segment's lanes (y_shape [rows, 1]: one
  // vector a row, read lane for lane; backend/lane_kernel.h LaneSpec::segment).
  int64_t segment = 0;
  struct Post { int op = 0; float imm = 0.f; };  // lpu::Opcode value, immediate (muli/addi)
  std::vector<Post> post;
  // Broadcast only: the lane of x's row copied to every lane (x [rows, > src_lane], the lane in
  // the row's first vector; e.g. the row sums column of attention's P.[V|1], lower_attention.h).
  int64_t src_lane = 0;
  // Broadcast only, optional (one entry per lane of a vector): lane l of y's row copies lane
  // lane_map[l] of x's row's first vector instead of src_lane (one `distribute` with this map; the
  // packed heads' divisors, lower_attention.h pack_segments).
  std::vector<int64_t> lane_map;
  // Move only (an SXM lane move instead of an identity matmul, lower_attention.cpp Concat): y row r
  // = x row x_rows[r], columns [x_cols[r], x_cols[r] + W) in lanes [0, W), zeros above; each range
  // inside one vector of x.
  std::vector<int64_t> x_rows, x_cols;
  int64_t move_width = 0;  // Move: W (0: y's last dim); lanes of y past W are zero
  // Move only, optional: the range lands in lanes [y_cols[r], y_cols[r] + W) of y's row r instead
  // of [0, W), zeros elsewhere (the packed head merge, lower_attention.h pack_segments).
  std::vector<int64_t> y_cols;
  // Move only, optional (one entry per row, -1: none): row r also copies column one_cols[r] of its
  // x row (in the same vector as its range) to lane one_lanes[r] of y's row, outside the range's
  // lanes (V's ones column from its projection, passes/ones_in_projection.h).
  std::vector<int64_t> one_cols, one_lanes;
};

// Execution order of the lowered steps: layers[index] or eltwise[index].
struct LoweredStep {
  bool dense = true;
  size_t index = 0;
  bool gather = false;  // gathers[index] (dense is then false)
  bool lane = false;    // lanes[index] (dense is then false)
};
// The step is a product (layers[index]) / an elementwise step (eltwise[index]).
inline bool is_layer(const LoweredStep& st) { return st.dense && !st.gather && !st.lane; }
inline bool is_eltwise(const LoweredStep& st) { return !st.dense && !st.gather && !st.lane; }
// Removes the entries i of *v with gone[i] (lm.layers, lm.eltwise, ...) and renumbers the index of
// every step `is_kind` selects; a step must not index a removed entry.
template <class T, class IsKind>
void remove_entries(std::vector<T>* v, const std::vector<char>& gone, std::vector<LoweredStep>* steps,
                    IsKind is_kind) {
  std::vector<size_t> renum(v->size(), 0);
  std::vector<T> kept;
  for (size_t i = 0; i < v->size(); ++i) {
    renum[i] = kept.size();
    if (!gone[i]) kept.push_back(std::move((*v)[i]));
  }
  *v = std::move(kept);
  for (LoweredStep& st : *steps)
    if (is_kind(st)) st.index = renum[st.index];
}

struct LoweredInput {
  ir::TensorId id = ir::kNoTensor;  // graph input
  std::vector<int64_t> shape;       // shape the chip sees (a folded Reshape's output shape)
  ir::TensorId alias = ir::kNoTensor;  // tensor the layers read (the Reshape output), or id
  // Non-empty: the host lays the input out for the chip (conv nets, passes/lower_conv.h): chip
  // element i (row-major in `shape`) = graph element host_map[i], or 0 where it is -1.
  std::vector<int64_t> host_map;
  // > 0: an index input of a runtime-index Gather (embedding lookup, passes/lower_forms.h) into a
  // constant table [lookup_rows, lookup_cols]: the chip stores it as [ids, lanes] i16, row k =
  // id_k * ceil(lookup_cols / lanes) (the table row's first address offset) in every lane (a
  // table bigger than one slice: [parts * ids, lanes], per-part offsets, io_binding.h:
  // lookup_part_rows); the host converts the graph's integer ids (negative ones counted from
  // lookup_rows) and refuses ids outside [-lookup_rows, lookup_rows) (io_binding.h: lookup_index_bytes).
  int64_t lookup_rows = 0, lookup_cols = 0;
};

struct LoweredModel {
  std::vector<LoweredInput> inputs;
  std::vector<LoweredLayer> layers;
  std::vector<ir::TensorId> outputs;  // graph outputs (each some layer's or step's y)
  // Graph outputs stored f16 instead of f32 (LowerOptions::f16_output); every other output is f32.
  std::set<ir::TensorId> f16_outputs;
  bool is_output(ir::TensorId t) const { return std::find(outputs.begin(), outputs.end(), t) != outputs.end(); }
  // Whether graph output t is stored f32 (an output not in f16_outputs); false for non-outputs.
  bool f32_output(ir::TensorId t) const { return is_output(t) && !f16_outputs.count(t); }
  std::vector<LoweredEltwise> eltwise;
  std::vector<LoweredGather> gathers;
  std::vector<LoweredLane> lanes;     // lane steps (passes/lower_norm.h)
  // Graph outputs the chip stores as [N, H, W, C] for a graph shape [N, C, H, W] (conv layout,
  // passes/lower_conv.h: from_chip_output converts).
  std::vector<ir::TensorId> nhwc_outputs;
  // Every graph tensor the chip stores in that conv layout, an output or not: the per-step check
  // reads kept intermediates by it (with C == H == W the stored shape alone cannot tell).
  std::set<ir::TensorId> nhwc_tensors;
  // Conv activations stored several pixels a row (passes/lower_conv.h "Packed taps", "Pixel
  // packing"): graph [N, C, H, W] stored [N, H, J, blocks * C], block b of stored row (h, k) holding
  // pixel (h, k * stride - pad + b * step) (zeros where that is outside the image; a pixel may be
  // in several rows). A conv's pixel-packed output: {S, S, 0, 1}.
  struct PixelLayout {
    int64_t stride = 1, blocks = 1, pad = 0, step = 1;
  };
  std::map<ir::TensorId, PixelLayout> pixel_packed;
  std::vector<LoweredStep> steps;     // all layers, eltwise and gather steps in graph order
  // Tensors the lowering introduced (intermediates of an op split into several steps); their ids
  // continue the graph's: id = g.tensors().size() + index.
  std::vector<ir::Tensor> extra;
  // Lowering tensors whose values are those of another tensor rearranged, with zeros and, past its
  // logical columns, small constants (the packed heads' ones lanes, lower_attention.h
  // pack_segments): calibrated as that tensor (passes/quantize.cpp).
  std::map<ir::TensorId, ir::TensorId> rearranged;
  // Graph tensors the chip stores in another layout (passes/pair_heads.h: columns reordered, two
  // heads' rows side by side): graph element i (row-major in the graph shape) is chip element
  // layouts[t][i] (row-major in the stored shape, which may hold zeros besides). Read back by the
  // step checks (reference/step_check.h chip_graph_tensors).
  std::map<ir::TensorId, std::vector<int64_t>> layouts;
  int paired_attentions = 0;  // attentions whose heads pair_heads paired (passes/pair_heads.h)
  int vxm_depthwise_convs = 0;  // depthwise convs lowered as VXM passes (LowerOptions::vxm_depthwise)
  // The LayerNormalizations over the last axis lowered as `.mean`, `.sd` and `.norm` steps
  // (passes/lower_norm.cpp): y = (x - mean) / sd * scale + bias, mean and sd f32 [rows, 1] lane
  // results; scale and bias hold K values (bias zeros if the op has none). Read by the int8
  // planner's LayerNorm folds (passes/quantize.h).
  struct Norm {
    ir::TensorId x = ir::kNoTensor, mean = ir::kNoTensor, sd = ir::kNoTensor, y = ir::kNoTensor;
    std::vector<float> scale, bias;
  };
  std::vector<Norm> norms;
  // Appends an intermediate tensor named g.unique_name(name) to `extra` and returns its id.
  ir::TensorId add_extra(const ir::Graph& g, const std::string& name, ir::DType dt, const ir::Shape& shape) {
    ir::Tensor t;
    t.name = g.unique_name(name);
    t.dtype = dt;
    t.shape = shape;
    extra.push_back(std::move(t));
    return static_cast<ir::TensorId>(g.tensors().size() + extra.size() - 1);
  }
  // Appends lane step `L` to `lanes` and its entry to `steps` (graph order).
  void add_lane(LoweredLane L) {
    LoweredStep st;
    st.dense = false;
    st.lane = true;
    st.index = lanes.size();
    steps.push_back(st);
    lanes.push_back(std::move(L));
  }
  const ir::Tensor& tensor(const ir::Graph& g, ir::TensorId id) const {
    const size_t n = g.tensors().size();
    return static_cast<size_t>(id) < n ? g.tensor(id) : extra.at(static_cast<size_t>(id) - n);
  }
  // The shape tensor t is stored in on chip (its stored rows: all dims but the last), as the
  // scheduler places it: a graph input's LoweredInput::shape (the host's layout: NHWC, im2col
  // rows), else its first writer's y_shape (a conv's NHWC rows, a lane step's rows; a second
  // output y2, e.g. a quantized copy, is stored like y), else the IR shape; a gather of
  // activation rows: {rows, its source's stored width} (the lowering makes only gathers of whole
  // rows, LoweredGather::taps 1); empty for a lookup-index input (i16 row offsets, not t's values).
  // The scheduler checks a product's X rows and a lane step's mask width against it.
  std::vector<int64_t> stored_shape(const ir::Graph& g, ir::TensorId t) const;
};

// The last dim of a shape (1 for a scalar): the lanes of a stored row.
inline int64_t last_dim(const ir::Shape& s) { return s.empty() ? 1 : s.back(); }
// The lowering passes' error for a node whose form they cannot lower: throws InputError
// "model 'M': node 'N' (Kind): why".
[[noreturn]] void node_error(const ir::Graph& g, const ir::Op& op, const std::string& why);
// The activations step `st` of lm reads (x, a lane step's center, a product's activation weights
// b, view segments and residual, an elementwise step's activation operands), in that order.
std::vector<ir::TensorId> step_reads(const LoweredModel& lm, const LoweredStep& st);
// The tensors step `st` writes: its y, and its second output y2 if any.
std::vector<ir::TensorId> step_writes(const LoweredModel& lm, const LoweredStep& st);
// The steps writing and reading each tensor (positions in lm.steps, in order; a step reading a
// tensor twice is listed once). Graph outputs are not readers here.
struct StepUses {
  std::map<ir::TensorId, std::vector<size_t>> writers, readers;
};
StepUses step_uses(const LoweredModel& lm);

struct LowerOptions {
  // Pack the taps of small-channel convs into whole vectors (passes/lower_conv.h "Packed taps").
  bool pack_conv_taps = true;
  // Fuse residual Adds into the epilogue of the product writing one of their operands
  // (passes/fuse_residual.h). Off: each such Add is its own elementwise step (the same values).
  bool fuse_residual_adds = true;
  // Consider pixel packing with disjoint rows (passes/lower_conv.h PackChoice); off: only packed
  // taps and overlapping rows (tests of those layouts, and what-ifs).
  bool pack_disjoint_rows = true;
  // Depthwise convs (group = C = M) as one VXM pass of fused multiply-adds, one a tap
  // (docs/compiler/convolution.md "Depthwise on the VXM"); off, or on a chip without
  // vxm.fused_multiply_add (compile() turns it off): a block-diagonal dense layer on the MXM.
  bool vxm_depthwise = true;
  // Graph outputs stored f16 instead of f32: those whose name this returns true for (nullptr: none,
  // every output f32). The LLM pieces' hidden states, partial sums and new KV rows, which the next
  // piece, the all-reduce or the cache read as f16 (system/llm_system.cpp piece_compile_options):
  // f32 there would be a store no chip running the whole model makes, four byte planes a value
  // instead of two, and it keeps a residual Add out of its product's epilogue (fuse_residual.h).
  std::function<bool(const std::string&)> f16_output;
  // Paired heads (passes/pair_heads.h): two heads' attention scores share a row (one q.K^T and one
  // P.V product a pair instead of one a head). Off: one product a head (the same values).
  bool pair_heads = true;
  // V's ones column from its projection (passes/ones_in_projection.h): the packed heads' V|1 is
  // the lane move's output, its ones lanes copied from a ones column of V's fused projection,
  // instead of a VXM pass after the move. Off: the pass (the same values).
  bool ones_in_projection = true;
};

// lanes: the chip's vector lanes (0: lowerings that need them are not used), e.g. for packing the
// taps of small-channel convs into whole vectors (passes/lower_conv.h "Packed taps", unless
// opt.pack_conv_taps is false). Without it: the built-in chip's (default_chip_config), as compile()
// lowers for that chip. The passes run as GraphLowering (graph_lowering.h).
LoweredModel lower_graph(const ir::Graph& g, uint32_t lanes, const LowerOptions& opt = {});
LoweredModel lower_graph(const ir::Graph& g);

}  // namespace lpu::compiler
