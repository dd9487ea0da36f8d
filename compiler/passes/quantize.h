// int8 quantization of a float model's dense layers (docs/compiler.md "Precision"), calibrated on
// given inputs:
//   - weights: symmetric per output channel, w_scale[n] = max_k |W[k][n]| / 127, Wq = rne(W / w_scale)
//     (an all-zero column gets scale 1);
//   - activations: symmetric per tensor, scale = max |x| / 127 over the calibration inputs, x taken
//     from the reference interpreter (compiler/reference) run on the float graph;
//   - a dense layer runs int8 (i8 x i8 -> i32 on the MXM) when its weights are constant, it reads its
//     X without a view/row map, and X is an i8 tensor: a graph input (the host quantizes it, see
//     quantize_host_input, then applies a conv input's layout, LoweredInput::host_map) or the output of another int8 layer. A tensor is stored i8 only if every
//     reader is such an int8 layer and it is not a graph output; everything else stays fp16 (mixed
//     precision at layer granularity).
//   - with Int8Options::onchip_quantize, the output of an elementwise step may also be stored i8 under
//     the same rule (every reader an
//     int8 layer, not a graph output): the step quantizes on chip (its f32 result times 1 / scale by
//     `muli`, then `cvt f32 -> i8`), so int8 layers can follow norms and activations (LLM pieces);
//     and a float X that cannot be stored i8 itself (it has other readers, is a graph output, or its
//     producer cannot quantize its result: a lane step, a gather, an fp16 layer) gets a QUANTIZED COPY (QuantCopy): one added VXM step (cvt to f32, `muli` by
//     1 / scale, `cvt f32 -> i8`) writes a new i8 tensor that every int8 layer reading X as X reads
//     (one copy per X), while X stays as it is for its other readers. Its scale is max |X| / 127 over
//     the calibration sets like any i8 tensor's. apply_quant_copies adds the copies to the lowered
//     model (compile() does; callers that inspect layers next to a plan must do the same);
//   - a dense layer may read X through a row map (x_rows) and write rows of a y that several layers
//     write (y_rows; the per-head projections of attention): y is i8 only if every writer is int8;
//     a layer reading X through a view (xsegs: column segments of X, e.g. attention's head merge
//     before the output projection) runs int8 like any other, its weights quantized per column and
//     then laid out per segment like the fp16 ones (view_ktiles);
//   - i8 pools: a Max/Min chain step (a MaxPool, possibly with its producer's Relu fused,
//     passes/lower_conv.cpp) whose output is i8 and whose operands are all one tensor t that only
//     int8 layers write and nothing else reads: t is stored i8 with the step's OUTPUT scale (no
//     calibration of its own), and the step runs on the i8 values (backend/elementwise_kernel.h
//     same_i8_scale: rounding with one scale is monotonic and maps 0 to 0, so the max of the
//     quantized values is the quantized max, bit for bit). Values of t below -127 s saturate; only
//     a fused Relu may follow, which sends them to 0 as it does the reference's (the int8 check's
//     delta for the pool is relu-aware, compiler/reference/int8_bound.h);
//   - Int8Options::layer_filter restricts which layers may run int8 (the others stay fp16, and so do
//     the tensors they read); Int8Options::timing_only plans without calibration data (every
//     activation scale 1; weights still quantized, an all-zero column gets scale 1): the schedule of
//     a program does not depend on scale values (they are SRAM constants and `muli` immediates), so
//     such a program times exactly like a calibrated one but computes nothing meaningful;
//   - epilogue of an int8 layer (MXM accumulator i32 -> VXM, f32): y = relu?(acc * scale[n] + bias[n])
//     with scale[n] = x_scale * w_scale[n], then cvt to f16/f32 for fp16 consumers and graph outputs.
//     When y is i8, 1 / y_scale is folded into the row constants (scale[n] = x_scale * w_scale[n] /
//     y_scale, bias[n] / y_scale; relu commutes with a positive factor) and cvt f32 -> i8 rounds to
//     nearest even and saturates. A layer with a fused residual Add (passes/fuse_residual.h) keeps
//     the rows unfolded: its epilogue adds the residual to the f16 result, and an i8 y is that sum
//     times 1 / y_scale (`muli`), converted to i8; it may also write an i8 copy of an f16 y as a
//     second output (LoweredLayer::y2), like an elementwise producer (apply_quant_copies). With an
//     i8 residual (Int8Options::i8_residuals) the sum is f32 and the rows fold 1 / y_scale again.
//   - LayerNorm folds (Int8Options::fold_norms): an int8 layer reading a LayerNormalization's
//     output y = (x - mean) / sd * scale + bias (LoweredModel::norms) as its plain X computes
//     y . W + b = ((x - mean) . W') / sd + b' with W' = diag(scale) W and b' = bias . W + b
//     (fold_norm_weights): it reads a CENTRED COPY, x - mean quantized to i8 by one VXM pass right
//     after the `.mean` step (QuantCopy::norm; its scale max |x - rowmean(x)| / 127 over the
//     calibration sets), and its epilogue divides each row by sd (LoweredLayer::row_div) before
//     the scale row. Its products then start once the mean is known instead of after the `.sd`
//     and `.norm` passes. Only where every int8 reader of y qualifies (no row maps, views, taps or
//     activation weights; K = the LayerNorm's width) and something else still reads y (a post-LN
//     residual, so the `.norm` step stays and the chip still stores y for the checks). That
//     `.norm` step moves to just before its first reader (apply_quant_copies), out of the folded
//     products' way in the list scheduler's order.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/interpreter.h"

namespace lpu::compiler {

struct LayerQuant {
  bool int8 = false;              // this layer runs int8; the fields below are set only then
  float x_scale = 0;              // x = xq * x_scale
  std::vector<float> w_scale;     // N per-output-channel scales
  std::vector<int8_t> wq;         // K x N row-major quantized weights
  bool y_int8 = false;            // y stored i8 with scale y_scale (1/y_scale folded below)
  float y_scale = 0;
  std::vector<float> epi_scale;   // N: f32 row the i32 accumulator (as f32) is multiplied by
  std::vector<float> epi_bias;    // N or empty: f32 row added after the scaling
  // A fused residual stored i8 (Int8Options::i8_residuals): the epilogue adds r_int8's values times
  // epi_rscale (N copies of r_scale / fold) to the scaled accumulator in f32.
  bool r_int8 = false;
  std::vector<float> epi_rscale;
  // A folded LayerNorm (LoweredModel::norms index, -1: none): wq, w_scale and epi_bias are those of
  // fold_norm_weights' W' and b', x_scale the centred copy's.
  int norm_fold = -1;
};

struct Int8Options {
  // Timing studies (zero weights, no data): no calibration, activation scales 1 (see above).
  bool timing_only = false;
  // Elementwise steps may quantize their output for int8 readers, and other float X get quantized
  // copies (see above). Off: only graph inputs and int8 layers' outputs are i8.
  bool onchip_quantize = false;
  // A graph where no layer can run int8 is compiled all fp16 (an empty plan) instead of being an
  // InputError (LLM pieces: e.g. BERT's first attention, whose projections read the residual input).
  bool allow_no_int8 = false;
  // If set, only layers for which it returns true may run int8. Arguments: the layer's op name and
  // the name of its constant weight tensor.
  std::function<bool(const std::string& op, const std::string& weight)> layer_filter;
  // A quantized copy whose source is written by one elementwise step only is fused into that step
  // as its second output (LoweredEltwise::y2: one VXM pass writes both forms, no pass re-reading
  // the f16 tensor); false: always a separate copy step (the same i8 bytes; tests compare them).
  bool fuse_copies = true;
  // A fused residual (passes/fuse_residual.h) whose tensor only int8 layers write may be read i8:
  // the tensor is then stored i8 if its other readers are int8 layers too (ResNet's block outputs
  // and downsample branches: no f16 copy next to the i8 one), and the reading layer's epilogue
  // computes relu?(acc * scale + bias + r_q * r_scale) in f32 (with 1 / y_scale folded into all
  // three rows for an i8 y) instead of adding r in f16. A residual written by an elementwise or
  // lane step (a transformer's LayerNorm output) stays f16. false: every fused residual f16.
  bool i8_residuals = true;
  // LayerNorm folds (see above; needs onchip_quantize). false: an int8 layer after a LayerNorm reads
  // the quantized copy of its output.
  bool fold_norms = true;
};

// A quantized copy (see above): lowered-model tensor `copy` (an id past the graph's and the lowering's
// extra tensors, added by apply_quant_copies) = X `src` quantized with scale i8_tensors[copy]; the
// int8 layers whose X is src read copy instead.
struct QuantCopy {
  ir::TensorId src = ir::kNoTensor, copy = ir::kNoTensor;
  std::string name;                // the copy's tensor name (src's name + ".i8", made unique)
  std::vector<int64_t> shape;      // the shape src is stored in (the copy is stored alike)
  // >= 0: a centred copy for a LayerNorm fold: x - mean of LoweredModel::norms[norm] (src is the
  // LayerNorm's output y, whose int8 readers it replaces), quantized with its own scale.
  int norm = -1;
};

struct QuantPlan {
  std::vector<LayerQuant> layers;               // per LoweredModel::layers index
  std::map<ir::TensorId, float> i8_tensors;     // tensors stored as i8, with their scale
  std::map<std::string, float> i8_inputs;       // graph inputs (by name) the host quantizes, with scale
  int int8_layers = 0;
  int quantize_steps = 0;                       // elementwise steps whose output is stored i8
  std::vector<QuantCopy> copies;                // quantized copies, in id order
  bool timing_only = false;                     // planned without calibration (Int8Options)
  bool fuse_copies = true;                      // Int8Options::fuse_copies (apply_quant_copies)
};

// Plans the int8 layers of `lm` (lowered from `g`) with activation scales from running the reference
// interpreter on each calibration set (one Value per graph input, graph order). Throws InputError if
// `calibration` is empty, a set does not match the graph inputs, or no dense layer can run int8.
// With opt.timing_only, `calibration` may be empty and is not used.
QuantPlan plan_int8(const ir::Graph& g, const LoweredModel& lm, const std::vector<std::vector<ref::Value>>& calibration,
                    const Int8Options& opt = {});

// Adds the plan's quantized copies to `lm` (the model the plan was made for): per copy an extra
// tensor, a VXM step (a Cast, no op: the i8 output makes it `muli` + `cvt`) placed before the first
// step that reads it, and the int8 layers reading src as X redirected to it. With plan.fuse_copies,
// a copy whose src has exactly one writer, an elementwise step, is that step's second output
// (LoweredEltwise::y2) instead of a step of its own, and so is a copy whose src has exactly one
// writer, a product that is not a row copy (LoweredLayer::y2, the copy quantized in its epilogue).
// No-op without copies.
// Throws std::logic_error if the plan was made for another lowering.
void apply_quant_copies(const ir::Graph& g, const QuantPlan& plan, LoweredModel* lm);

// Dense layer L with LayerNorm n folded in: w = W' (K x N, W'[k][n] = scale[k] W[k][n] in f32) and
// bias = b' (N, b[n] + sum_k n.bias[k] W[k][n] summed in double, then f32). The planner and the int8
// check use this one function, so both see the same values.
void fold_norm_weights(const LoweredLayer& L, const LoweredModel::Norm& n, std::vector<float>* w,
                       std::vector<float>* bias);

// Symmetric quantization of one value: rne(v / scale) saturated to [-127, 127].
int8_t quantize_i8(double v, float scale);

// A float graph input as the i8 tensor the chip expects (dtype I8, same shape).
ref::Value quantize_host_input(const ref::Value& v, float scale);

}  // namespace lpu::compiler
