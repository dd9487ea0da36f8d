// The int8 comparison bound of docs/compiler.md ("Precision", int8 models), checked layer by layer
// on a chain of int8 dense layers (passes/quantize.h): each layer's result on the chip is compared
// with the float layer applied (in double) to the chip's OWN input, so quantization errors do not
// compound through the model. Per output element n of a layer with input a (the float graph input
// for the first layer, else the chip's dequantized i8 input), float weights w, bias b:
//   bound[n] = sum_i (|a_i| d_w + |w_in| d_a + d_a d_w) + 2^-21 (S_n + |b_n|) + r_out
// d_w = w_scale[n] / 2, d_a = x_scale / 2 for the host-quantized graph input (plus max(0, |a_i| -
// 127 x_scale) for values past the calibrated range) and 0 for an i8 input the chip multiplies as
// stored; S_n = sum_i (|a_i| + d_a)(|w_in| + d_w) bounds the accumulator and 2^-21 the f32 epilogue
// (i32 -> f32, rounded scale row, product, rounded bias, add: each <= 2^-24 relative). r_out: an i8
// result of scale s adds s / 2 + max(0, |y| - 127 s) (rounding, clipping past the calibrated range),
// an f16 one 2^-11 (|y| + bound), an f32 one nothing. Relu is 1-Lipschitz.
// Used by `lpusim check --precision int8` and the tests, so the tolerance has one definition.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "isa/program.h"

namespace lpu::compiler {

struct Int8LayerVerdict {
  std::string layer;
  int64_t elements = 0, outside = 0;  // outside: |chip - ref| > bound (NaN counts)
  double max_err = 0, max_bound = 0, max_ref = 0;  // max |chip - ref|, max bound, max |ref|
  double worst_ratio = 0;             // max |chip - ref| / bound
  bool ok() const { return outside == 0 && elements > 0; }
};

// The chip's value of every lowered layer's output (float domain: i8 results times their scale),
// decoded from the functional simulation of a program compiled with keep_intermediates (or any
// program listing those tensors as outputs). A layer output missing from the program is left out.
std::map<ir::TensorId, std::vector<double>> int8_chip_layers(const ir::Graph& g, const LoweredModel& lm,
                                                             const QuantPlan& q, const Program& p,
                                                             const std::map<std::string, std::vector<uint8_t>>& out);

// One int8 layer against its bound: `a` is the layer's input as the chip multiplies it (float domain,
// rows x L.K), `y` the chip's output (float domain, rows x L.N); `host_input`: a is the float graph
// input the host quantized (d_a = x_scale / 2 + clipping), else the chip's dequantized i8 tensor
// (d_a = 0); `is_output`: y is an f32 graph output (no rounding term). `relu_after`: the bound is
// of relu(y) against relu(ref) (y's only reader applies a Relu: a MaxPool that took the layer's
// Relu, passes/lower_conv.cpp): Relu is 1-Lipschitz and an i8 result clipped below -127 s is 0
// after it, as the reference is, so only clipping above 127 s counts. Used by int8_layer_check and
// by the LLM pieces' check (tests/llm/test_llm_int8.cpp), so the bound has one definition.
// `residual` (rows x L.N, product row order): the chip's values of a fused residual Add's other
// operand (LoweredLayer::residual; required iff the layer has one): the reference is
// relu?(x . W + b + r), the chip rounds x . W + b to f16 before adding r (one more f16 rounding;
// an i8 y quantizes the f16-rounded sum).
Int8LayerVerdict int8_layer_bound(const LoweredLayer& L, const LayerQuant& lq, const std::vector<double>& a,
                                  int64_t rows, const std::vector<double>& y, bool host_input, bool is_output,
                                  bool relu_after = false, const std::vector<double>* residual = nullptr,
                                  const std::vector<double>* row_div = nullptr);

// `input`: the model's single graph input (`rows` rows of the first layer's K values). Throws
// InputError if `lm` is not a chain of int8 dense layers from that input to the single graph output,
// the input size does not fit, or a layer's output is missing from `chip`.
std::vector<Int8LayerVerdict> int8_layer_check(const LoweredModel& lm, const QuantPlan& q,
                                               const std::vector<float>& input, int64_t rows,
                                               const std::map<ir::TensorId, std::vector<double>>& chip);

}  // namespace lpu::compiler
