// Per-step verification of a compiled model (`lpusim check`, docs/compiler.md "Precision"): every IR
// op is recomputed by the reference interpreter from the chip's OWN values of its inputs (the
// functional simulation of a program compiled with CompileOptions::keep_intermediates exposes every
// tensor the chip stores) and compared with the chip's value of its output within a LOCAL bound,
// so errors do not compound through the model. Ops whose outputs the chip does not store (views
// folded into a consumer, a MatMul whose bias Add/Relu are fused, ...) are chained from the nearest
// stored tensors with the reference's running bound of that chain only.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/interpreter.h"
#include "isa/program.h"

namespace lpu::ref {

// The graph tensors the chip stores, in graph layout (row-major in the graph shape; conv tensors
// stored [N, H, W, C] converted back), decoded from the simulator's outputs of a program compiled
// with keep_intermediates. Graph inputs and tensors the chip stores in another shape (not the
// same number of elements) are left out. Tensors the program stores i8 are left out too unless
// `i8_scales` (int8 models: QuantPlan::i8_tensors) gives their scale: then dequantized (q * scale).
std::map<ir::TensorId, std::vector<double>> chip_graph_tensors(
    const ir::Graph& g, const compiler::LoweredModel& lm, const Program& p,
    const std::map<std::string, std::vector<uint8_t>>& sim_outputs,
    const std::map<ir::TensorId, float>& i8_scales = {});

// The verdict of one IR op whose output the chip stores.
struct StepVerdict {
  std::string op, kind, tensor;  // op name, op kind ("MatMul"), output tensor name
  int64_t elements = 0;
  int64_t outside = 0;           // elements with |chip - ref| > bound (NaN counts as outside)
  int64_t unbounded = 0;         // elements whose bound is not finite (count as outside)
  double max_err = 0;            // max |chip - ref|
  double worst_ratio = 0;        // max |chip - ref| / bound (over elements with bound > 0)
  double err_at_worst = 0, bound_at_worst = 0;
  bool exact = false;            // a view (Reshape, Transpose, ...) of chip tensors: must match exactly
  bool ok() const { return outside == 0 && unbounded == 0; }
};

struct StepCheck {
  std::vector<StepVerdict> steps;  // in graph order
  int64_t ops = 0;                 // all IR ops of the graph (steps.size() of them checked)
  bool ok() const;
  const StepVerdict* worst() const;  // a failing step if any, else the largest err/bound; null if none
};

// `inputs`: the graph inputs as given to the chip (f32 values; rounded to f16 here as the chip
// stores them). `chip`: chip_graph_tensors(). The local bound of an op's output element is
//   2 * B_ref + k * 2^-11 * |y|
// with B_ref the reference's first-order bound of the chain from stored tensors (weights rounded to
// f16 as the chip stores them, other constants f32, every hidden result f16; each rounding to f16
// counts 2^-11 |r| + 2^-25, the half subnormal step covering results near 0, op_error_bound) and k
// the number of f16 intermediates the lowering inserts inside the op (0 for every op since
// lower_norm.cpp keeps them f32). Views whose inputs are all stored must match exactly.
// `quantized` (int8 models): outputs the chip quantizes on chip with the given scale s (an elementwise
// step's f32 result times 1 / s, cvt f32 -> i8; `chip` holds them dequantized). Such an output is
// recomputed in f32 (as the VXM computes it) and its bound is the quantizing step's rounding and
// clipping: 2 * B_ref (B_ref now the f32 chain bound, which includes the f32 rounding of the result)
// + s / 2 + max(0, |y| + 2 * B_ref - 127 s).
// `chained_extra` (int8 models): op name -> a uniform bound on how far the chip's value of each of
// that op's CHAINED inputs (not stored by the chip, nor a constant or graph input) may be from the
// reference's, beyond the reference's own chain bound: the chip computed that chain with int8 layers
// (int8_step_check.h), whose error the fp16 chain bound does not cover. Added to those inputs' bounds.
StepCheck verify_steps(const ir::Graph& g, const std::vector<Value>& inputs,
                       const std::map<ir::TensorId, std::vector<double>>& chip,
                       const std::map<ir::TensorId, float>& quantized = {},
                       const std::map<std::string, double>& chained_extra = {});

}  // namespace lpu::ref
