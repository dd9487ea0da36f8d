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
// later product fuses (the other operand is then written before it).
//
// Branch order, first: when both operands of such an Add are written by products only, the
// products of the one written LATER in step order move to just after the last step writing what
// they read, if that is before the other operand's first product (and they write nothing else,
// and only the Add reads their result). ResNet's downsample blocks: the shortcut conv (reading the
// block input) is scheduled before conv1 instead of after conv3, so the steps placed first take
// the shortcut's MXM and VXM work into the cycles where the conv1 -> conv2 -> conv3 chain waits,
// and conv3, the chain's end, adds the stored shortcut in its epilogue. Steps are scheduled in
// list order (each at its earliest free cycles), so this changes priorities, not dependencies:
// ResNet-50 int8 58,493 -> 57,816 cycles, fp16 117,610 -> 117,850 (`build/bench/bench_conv_layers
// [--int8] FILE`, docs/ROADMAP.md session 28).
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
