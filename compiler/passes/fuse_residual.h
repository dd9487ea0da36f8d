// Residual-Add fusion, a pass over a lowered model (lower_graph runs it last, LowerOptions::
// fuse_residual_adds): an elementwise Add step y = relu?(a + r) of two activations, where a is
// written by one product (a dense layer with no Relu, not a row copy or a packed conv producer)
// and read by nothing else, becomes that product's epilogue: the layer's y is the
// Add's, `residual` = r, its `relu` the Add's (LoweredLayer::residual). The step and the stored a
// disappear: one SRAM write and read of a per element, and one step boundary in the dependency
// chain (ResNet's blocks end in conv + bias + shortcut + Relu, transformers' sublayers in a
// projection + bias + residual).
//
// Conditions (else the step stays as it is): the Add has no other fused op (post ops, a second
// output, a row map or lane broadcast on an operand, a constant), y, a and r are stored f16 in one
// stored shape (the epilogue adds on the f16 values: backend/matmul_kernel.h MatmulSpec::residual),
// y is not a graph output, and r is written before the product's step (a graph input, or every
// writer's step earlier), so the product can stay where it is. When both operands qualify, the
// later product fuses (the other operand is then written before it: ResNet's downsample blocks
// fuse the shortcut conv, whose epilogue adds the main branch's conv3).
//
// The values are bit-identical to the unfused steps: the epilogue rounds x . W + bias to f16 (what
// the product stored), adds r in f16 (`add.f16`: one rounding of the exact sum, as the Add step's
// f16-direct form) and applies the Relu on the f16 sum.
#pragma once

#include "compiler/ir/graph.h"
#include "compiler/passes/lowering.h"

namespace lpu::compiler {

// Fuses every qualifying Add of lm (lowered from g) into its product; returns how many.
int fuse_residual_adds(const ir::Graph& g, LoweredModel* lm);

}  // namespace lpu::compiler
