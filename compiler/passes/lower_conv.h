// Lowering of convolutional-network ops (docs/compiler.md "Convolution and pooling"). The compiler
// stores conv activations with channels on lanes: a graph tensor [N, C, H, W] lives on the chip as
// [N, H, W, C] (N*H*W rows of C elements); a graph input consumed by a Conv or a pool is declared
// in that layout, or, when a Conv is its only consumer, as that Conv's im2col rows; the host
// converts (LoweredInput::host_map, to_chip_input).
//   Conv            = a dense layer whose k-tiles read the input in place: tap t's chunks of output
//                     pixel row m are chunks of x's row tap_rows[t][m] (a zero vector for padding),
//                     weight rows past C in each tap's tile are zero and not loaded (no im2col
//                     tensor, no gather); groups (incl. depthwise) become a block-diagonal dense
//                     weight. A 1x1 stride-1 unpadded conv reads x's rows as they are.
//   MaxPool         = a chain of VXM max steps over row-mapped operands (padding taps map to a
//                     valid tap of the same window: padding never wins).
//   AveragePool     = a chain of VXM adds (f32) over row-mapped operands (padding reads zeros),
//                     then a multiply by 1/count per output row (count_include_pad honoured).
//   GlobalAveragePool = a tree of VXM adds over the H*W rows of each image (f32), times 1/(H*W).
//   Flatten/Reshape of a pooled [N, C, 1, 1] tensor to [N, C] renames it (same bytes).
//   Packed taps     = for a conv (any strides, pads, dilations) whose input x is written only by a
//                     1x1 stride-1 conv layer P and read only by it, P writes x "column-packed":
//                     row (n, h, w) = [x(n,h,w-pl) | x(n,h,w-pl+dw) | ... ] (kw blocks of C lanes,
//                     zeros outside the image), as kw taps of P's input with block-diagonal weights;
//                     the conv then reads kh taps of kw*C channels (same weight rows). P is split
//                     into one layer per set of valid blocks (image edges), whose bias is zero in
//                     the invalid blocks, writing its rows (y_rows). Chosen when the MXM vectors
//                     (rows x k-tiles x column tiles of P and the conv) drop (pack_lanes).
//   Pixel packing   = x's stored rows hold several pixels (PackChoice): OVERLAPPING rows (stride 1,
//                     undilated: row (n, h, j) = [x(n,h,jS-pl) | ... | x(n,h,jS-pl+kw+S-2)], kw+S-1
//                     blocks, one row a kernel row) or DISJOINT rows (undilated, any stride: row
//                     (n, h, k) = B pixels x(n,h,kB-pl .. kB-pl+B-1), each pixel once, D consecutive
//                     rows a kernel row); the conv's stored row (n, oh, j) holds its output pixels
//                     jS..jS+S-1 (S blocks of M lanes, a banded weight), and for S > 1 its output
//                     may only be read by a 1x1 stride-1 conv Q (through a fused Relu at most),
//                     which becomes S layers: layer s reads block s of the rows holding pixels
//                     w = s (mod S) (one tap of S*C channels, weight rows zero outside block s) and
//                     writes those pixels' rows. Ungrouped convs only. MXM rows a pixel, overlapping:
//                     P (kw+S-1)/S instead of kw, the conv kh/S instead of kh; disjoint: P 1, the
//                     conv kh*D/S (ResNet-50: stage 1 B = S = 5, stage 2 B = S = 2 with 128
//                     channels, 3 instead of 9 a pixel); the layout with the fewest MXM vectors of P
//                     and the conv is chosen (LowerOptions::pack_disjoint_rows off: no disjoint).
//   Row pairs       = a MaxPool whose input is a conv layer's output with a fused Relu, read by the
//                     pool alone, where the conv reads a graph input the host lays out as im2col
//                     rows (a stem conv) and 2 K and 2 M fit a vector: the conv writes stored row
//                     (n, k, w) = [y(n, k-pt, w) | y(n, k-pt+H/2, w)] (an image row outside the
//                     image replaced by the nearest edge row, which the window holds: max-neutral),
//                     from host rows of both pixels' patches and a block-diagonal weight; the pool
//                     runs on those pairs (its stored row (n, m, w) = output rows m and m + OH/2),
//                     with the Relu; one SXM lane move per output row writes the plain layout.
//                     Needs H = 2 sh (OH / 2); halves the conv's MXM rows and epilogue vectors and
//                     the pool's vectors (ResNet-50's stem: 12,544 -> 6,384 and 3,136 -> 1,568).
// Elementwise ops on conv activations keep the layout (their constants are permuted to it); any
// other consumer of a conv activation is an InputError.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "compiler/backend/matmul_kernel.h"
#include "compiler/ir/graph.h"
#include "compiler/passes/conv_window.h"
#include "compiler/passes/lowering.h"

namespace lpu::compiler {

// The layout pack_taps chose for a conv's input x (stored rows of B blocks of C lanes, row j's block
// b = x's column j * stride - pl + b) and output (S pixels a row); the conv reads D consecutive
// stored rows per kernel row. S 0: not packed; {1, 1, kw, 1}: packed taps; {S, S, kw + S - 1, 1}
// (S > 1): pixel packing, overlapping rows; {S, B, B, D}: pixel packing, disjoint rows (each pixel
// once; B >= 2 pixels a row, S * sw a multiple of B).
struct PackChoice {
  int64_t S = 0, stride = 0, B = 0, D = 0;
};

// The shapes pack_taps works with: the conv's input x [N, C, H, W], output OH x OW, its window.
struct PackGeom {
  int64_t N = 0, H = 0, W = 0, C = 0, OH = 0, OW = 0;
  Window win;
};

class ConvLowering {
 public:
  // References lower_graph's state: `layer_of` (layer producing each graph tensor), `produced`
  // (per tensor id incl. extra tensors), `alias` (tensor the steps read for a graph tensor).
  // pack_lanes: the chip's vector lanes for packed taps (see "Packed taps" below); 0 = never pack;
  // disjoint_rows: pixel packing may use disjoint rows (PackChoice).
  ConvLowering(const ir::Graph& g, LoweredModel& lm, std::vector<int>& layer_of, std::vector<char>& produced,
               std::vector<ir::TensorId>& alias, uint32_t pack_lanes = 0, bool disjoint_rows = true,
               bool vxm_depthwise = true);
  // Lowers Conv, MaxPool, AveragePool, GlobalAveragePool and a Reshape of a pooled conv tensor;
  // returns false for any other op (after checking it does not read a conv activation in a way the
  // layout cannot serve: then InputError).
  bool lower(const ir::Op& op);
  // After lower_graph's generic lowering of `op`: keeps the chip layout on its output when it reads
  // a conv activation (a fused Relu/bias, an elementwise step) and permutes that step's constants.
  void after(const ir::Op& op);
  // True if the chip stores t in the conv layout: an elementwise operand that after() lays out
  // (the generic lowering must not broadcast it in graph layout).
  bool in_conv_layout(ir::TensorId t) const { return nhwc_.count(t) > 0; }

 private:
  void set_layout(ir::TensorId t, const ir::Shape& nhwc);  // records t's layout (and nhwc_outputs)
  ir::TensorId conv_input(const ir::Op& op, ir::TensorId t, ir::Shape* nhwc);
  ir::TensorId fresh(const std::string& name, ir::DType dt, const ir::Shape& shape);
  void add_eltwise(LoweredEltwise E);
  // Conv activation `a` with its pad lanes (past C) zeroed, for a conv or pool reading it when an
  // earlier step may have left NaN/inf there (nonfinite_): one VXM select per tensor.
  ir::TensorId cleared(ir::TensorId a);
  void lower_conv(const ir::Op& op);
  void lower_pool(const ir::Op& op);
  void lower_global_pool(const ir::Op& op);
  // True if the graph reads t exactly once and t is no graph output (a rewrite may then change
  // how t is stored).
  bool read_once(ir::TensorId t) const;
  // MaxPool over x: if x is a dense layer's output with a fused Relu that only this pool reads,
  // the layer writes its values before the Relu into a new f16 lowering tensor, returned, and
  // *relu is set (the pool applies it); else x and false.
  ir::TensorId take_producer_relu(ir::TensorId x, const ir::Shape& xs, bool* relu);
  // MaxPool `op` with window w over src, the pre-Relu output (shape xs, NHWC) of a stem conv
  // (take_producer_relu set relu): lowers it on row pairs (see "Row pairs") and returns true, or
  // returns false with nothing changed when the conv, the shapes or the window do not allow it.
  bool pool_on_row_pairs(const ir::Op& op, ir::TensorId src, const ir::Shape& xs, const Window& w, bool relu);

  // Packed taps: rewrites the 1x1 conv layer producing conv `op`'s input x (and x's layout) so that
  // x's row (n, h, w) holds the kw column taps [x(n,h,w+j*dw-pl) for j < kw] side by side (zeros
  // outside the image), when that saves MXM vectors; `L` (op's layer) then reads kh taps of kw*C
  // channels. Returns false (nothing changed) when the producer or the shapes do not allow it.
  // Returns the layout chosen (S 0: nothing changed); for any but packed taps the caller builds L's
  // weight (add_packed_conv).
  PackChoice pack_taps(const ir::Op& op, ir::TensorId x, int64_t N, int64_t H, int64_t W, int64_t C, const Window& w,
                       int64_t OH, int64_t OW, LoweredLayer* L);
  // pack_taps' steps: the layer producing x if it may be rewritten (-1: none); the cheapest layout
  // for producer P (S 0: unpacked); P rewritten into its parts (the main part first, then one per
  // set of blocks inside the image at the edges); those parts in place of layer li (the edge parts'
  // steps right after its step); the conv's tap rows over the packed x.
  int packable_producer(const ir::Op& op, ir::TensorId x, const PackGeom& pg) const;
  PackChoice choose_pack(const ir::Op& op, const LoweredLayer& P, const PackGeom& pg) const;
  std::vector<LoweredLayer> producer_parts(const LoweredLayer& P, ir::TensorId x, const PackChoice& pick,
                                           const PackGeom& pg) const;
  void replace_producer(int li, std::vector<LoweredLayer> parts);
  void set_packed_taps(const PackChoice& pick, const PackGeom& pg, LoweredLayer* L) const;
  // True if conv `op`'s output may be stored pixel-packed: it is no graph output and its only reader
  // is a 1x1 stride-1 unpadded ungrouped Conv, directly or through one Relu read only by it.
  bool pixel_pack_ok(const ir::Op& op) const;
  // Lowers 1x1 conv `op` over a pixel-packed conv output x (packed_outputs_) as one layer per pixel position.
  void lower_unpacking_conv(const ir::Op& op, ir::TensorId x);
  // A depthwise conv (group = C = M) as one VXM pass: y = x[tap 0] * w_0, then one `fma` post op
  // per further tap (y + x[tap t] * w_t, each tap a row-mapped read of x, w_t a constant row of C
  // per-channel weights), then + bias; -1 map entries (padding) read the zero row.
  void lower_depthwise(const ir::Op& op, ir::TensorId x, const ir::Shape& xs);
  // Completes conv layer L (x and taps set by pack_taps) for a layout other than packed taps: its
  // banded weight, bias and output layout (see "Pixel packing"), and adds it.
  void add_packed_conv(const ir::Op& op, LoweredLayer L, const PackChoice& pc, const Window& w, int64_t N, int64_t C,
                       int64_t M, int64_t OH, int64_t OW);
  // Adds conv layer L as the step writing L.y in layout L.y_shape.
  void add_conv_layer(LoweredLayer L);

  const ir::Graph& g_;
  uint32_t pack_lanes_ = 0;
  LoweredModel& lm_;
  std::vector<int>& layer_of_;
  std::vector<char>& produced_;
  std::vector<ir::TensorId>& alias_;
  std::map<ir::TensorId, ir::Shape> nhwc_;  // tensors stored as [N, H, W, C] on the chip
  // Conv outputs stored S > 1 pixels a row (see "Pixel packing"; S is lm_.pixel_packed's stride,
  // nhwc_ holds the stored shape [N, H, ceil(W / S), S * C]), which only lower_unpacking_conv reads.
  std::set<ir::TensorId> packed_outputs_;
  bool disjoint_ = true;  // LowerOptions::pack_disjoint_rows
  bool vxm_depthwise_ = true;  // LowerOptions::vxm_depthwise
  std::set<ir::TensorId> nonfinite_;        // conv activations whose pad lanes may be NaN/inf
  // Elementwise step (index in lm_.eltwise) -> how many of its operands after() has laid out: a
  // later op fused into the step (a post op) adds operands, never changes the earlier ones.
  std::map<size_t, size_t> laid_out_;
  std::map<ir::TensorId, ir::TensorId> cleared_;  // nonfinite_ tensor -> its copy with pad lanes zeroed
};

// Conv layer parts: part n > 0 of a conv layer named OP is "OP.packN" (a packed-taps producer's
// edge part, "Packed taps") or "OP.pxN" (a pixel-unpacking conv's part, "Pixel packing"); part 0
// is OP. conv_part_op gives the graph op any layer name stands for (OP for a part, else the name).
enum class ConvPart { Pack, Px };
std::string conv_part_name(const std::string& op, ConvPart kind, size_t n);
std::string conv_part_op(const std::string& layer_name);

// The values the chip's input tensor holds for graph input values (row-major in the graph's
// shape): applies in.host_map (NCHW -> NHWC, or im2col rows for a stem conv); identity if empty.
std::vector<float> to_chip_input(const LoweredInput& in, const std::vector<float>& graph_values);

// Graph output t's values in graph order (NCHW) from the chip's (row-major in the chip's shape):
// permutes the outputs listed in lm.nhwc_outputs, identity for the others.
std::vector<double> from_chip_output(const LoweredModel& lm, const ir::Graph& g, ir::TensorId t,
                                     const std::vector<double>& chip);

// Expands a conv layer's compact weight (K = k_blocks blocks of K / k_blocks rows) to the chip's
// im2col layout: each block padded with zero rows to a multiple of `lanes`. Returns the new K.
int64_t expand_conv_weight(const LoweredLayer& L, uint32_t lanes, std::vector<float>* w);
// The same layout for the layer's int8 weights (LayerQuant::wq, L.K x L.N row-major): the i8 bytes.
std::vector<uint8_t> expand_conv_weight_i8(const LoweredLayer& L, const std::vector<int8_t>& wq, uint32_t lanes);

// The k-tiles of a conv layer read in place (L.tap_rows, k_blocks taps of C = K / k_blocks
// channels): k-tile t * ceil(C / lanes) + c reads chunk c of row tap_rows[t][m] and loads weight
// rows [0, min(lanes, C - c * lanes)) of its tile (expand_conv_weight's layout).
std::vector<MatmulKTile> conv_tap_ktiles(const LoweredLayer& L, uint32_t lanes);

}  // namespace lpu::compiler
