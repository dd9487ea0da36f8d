// Per-step verification of an int8 model (`lpusim check --precision int8`, docs/compiler.md
// "Precision"): the int8 counterpart of ref::verify_steps for ANY lowered model. Every step is
// recomputed from its inputs AS THE CHIP COMPUTED THEM (the functional simulation of a program
// compiled with keep_intermediates and the plan `q`), so errors do not compound:
//   - each int8 dense layer: int8_layer_bound (int8_bound.h) on the chip's dequantized i8 input
//     (through its row map / column segments), or on the float graph input the host quantized;
//   - each quantized copy (QuantCopy) and each lowering step that quantizes a value copy of another
//     tensor (a pad-lane clearing `sel`, a float Cast): against the chip's source value v,
//     |q s - v| <= 2^-23 |v| + s / 2 + max(0, |v| - 127 s) (the f32 product by fl(1 / s), rounding to
//     the nearest step, clipping past the calibrated range);
//   - each graph op whose output the chip quantizes on chip (an elementwise step stored i8):
//     verify_steps' quantized rule (step_check.h);
//   - every other graph op whose output the chip stores: verify_steps' fp16 local bound.
// A lowering step that quantizes anything else has no bound here and fails (counted unbounded).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/chip_stored.h"
#include "compiler/reference/int8_bound.h"
#include "compiler/reference/step_check.h"
#include "isa/program.h"

namespace lpu::compiler {

// The input of int8 layer L as its MXM multiplies it: rows of X (through x_rows) and, for a view,
// its column segments (xsegs), from X stored as `x` (chip_stored.h); M x L.K row-major. M (returned in *rows) is
// x_rows' size, else x's rows.
std::vector<double> layer_input_rows(const LoweredLayer& L, const ChipStored& x, int64_t* rows);

struct Int8StepCheck {
  std::vector<Int8LayerVerdict> layers;  // the int8 layers, in lowered order
  ref::StepCheck steps;                  // copies, quantizing steps and every other stored graph op
  bool ok() const;
};

// `lm`: the model as compiled (apply_quant_copies applied); `inputs`: the graph inputs as given to
// the host (f32 values; host-quantized ones are quantized by the host from these); `p` and
// `sim_outputs`: the keep_intermediates program and its functional simulation.
Int8StepCheck verify_int8_steps(const ir::Graph& g, const LoweredModel& lm, const QuantPlan& q,
                                const std::vector<ref::Value>& inputs, const Program& p,
                                const std::map<std::string, std::vector<uint8_t>>& sim_outputs);

}  // namespace lpu::compiler
