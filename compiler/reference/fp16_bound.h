// The fp16 error bound of docs/compiler.md ("Precision") for models lowered to a chain of dense
// layers y = relu?(x . W + b): per output, the documented bound n * 2^-11 * sum_i |a_i w_i| plus the
// previous layer's bound propagated through |W| (relu is 1-Lipschitz), and a tighter first-order
// rounding bound of the fp16 data path (operands rounded to f16: 2 * 2^-11 sum|a w|; f32
// accumulation: n * 2^-24 sum|a w|; hidden outputs rounded to f16: 2^-11 |y|; propagated likewise).
// Used by the tests and by `lpusim check`, so the tolerance has one definition.
#pragma once
#include <cstdint>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/passes/lowering.h"

namespace lpu::compiler {

struct Fp16Bound {
  std::vector<double> exact;        // the model's output in double on the given input (row-major)
  std::vector<double> documented;   // docs/compiler.md bound per output element
  std::vector<double> first_order;  // tighter first-order bound per output element
};

// `input`: the model's single graph input (`rows` rows of the first layer's K values). Throws
// InputError if `lm` is not a chain of dense layers from that input to the single graph output
// (elementwise steps have no documented fp16 bound here) or the input size does not fit.
Fp16Bound fp16_dense_bound(const LoweredModel& lm, const std::vector<float>& input, int64_t rows);

}  // namespace lpu::compiler
