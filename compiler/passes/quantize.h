// int8 quantization of a float model's dense layers (docs/compiler.md "Precision"), calibrated on
// given inputs:
//   - weights: symmetric per output channel, w_scale[n] = max_k |W[k][n]| / 127, Wq = rne(W / w_scale)
//     (an all-zero column gets scale 1);
//   - activations: symmetric per tensor, scale = max |x| / 127 over the calibration inputs, x taken
//     from the reference interpreter (compiler/reference) run on the float graph;
//   - a dense layer runs int8 (i8 x i8 -> i32 on the MXM) when its weights are constant, it reads its
//     X without a view/row map, and X is an i8 tensor: a graph input (the host quantizes it, see
//     quantize_host_input) or the output of another int8 layer. A tensor is stored i8 only if every
//     reader is such an int8 layer and it is not a graph output; everything else stays fp16 (mixed
//     precision at layer granularity).
//   - epilogue of an int8 layer (MXM accumulator i32 -> VXM, f32): y = relu?(acc * scale[n] + bias[n])
//     with scale[n] = x_scale * w_scale[n], then cvt to f16/f32 for fp16 consumers and graph outputs.
//     When y is i8, 1 / y_scale is folded into the row constants (scale[n] = x_scale * w_scale[n] /
//     y_scale, bias[n] / y_scale; relu commutes with a positive factor) and cvt f32 -> i8 rounds to
//     nearest even and saturates.
#pragma once
#include <cstdint>
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
};

struct QuantPlan {
  std::vector<LayerQuant> layers;               // per LoweredModel::layers index
  std::map<ir::TensorId, float> i8_tensors;     // tensors stored as i8, with their scale
  std::map<std::string, float> i8_inputs;       // graph inputs (by name) the host quantizes, with scale
  int int8_layers = 0;
};

// Plans the int8 layers of `lm` (lowered from `g`) with activation scales from running the reference
// interpreter on each calibration set (one Value per graph input, graph order). Throws InputError if
// `calibration` is empty, a set does not match the graph inputs, or no dense layer can run int8.
QuantPlan plan_int8(const ir::Graph& g, const LoweredModel& lm, const std::vector<std::vector<ref::Value>>& calibration);

// Symmetric quantization of one value: rne(v / scale) saturated to [-127, 127].
int8_t quantize_i8(double v, float scale);

// A float graph input as the i8 tensor the chip expects (dtype I8, same shape).
ref::Value quantize_host_input(const ref::Value& v, float scale);

}  // namespace lpu::compiler
