// Elementwise kernel builder: schedules Y = op(A[, B[, C]]) vector by vector on the VXM. Every
// operand vector is read from SRAM to reach the VXM on one cycle, f16 operands are widened to f32
// (`cvt`), the one VXM instruction of the op computes in f32, and the result is narrowed to f16
// (`cvt`) when Y is stored f16 (or scaled by `muli` and narrowed to i8 when Y is an int8 layer's
// quantized input), then written as it passes Y's slices. Where that gives the same value, the op
// runs on the f16 operands directly instead (no widening or narrowing: Max/Min chains, and a lone
// Add/Sub/Mul with at most a Relu into an f16 Y; elementwise_kernel.cpp `f16_direct`). Operands are tensors of
// Y's [rows, inner] shape (activations or constants; an activation may be wider in its last vector) or constants of 1 row broadcast to every row
// (numpy broadcasting of a per-row vector or scalar is resolved by the lowering into such a row).
// An operand may carry a row map (pooling, docs/compiler.md): row r of Y then reads the operand's
// row map[r], or the all-zero tensor `zero` where the map says -1 (padding).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/backend/matmul_kernel.h"
#include "compiler/backend/placed_tensor.h"
#include "compiler/backend/schedule_builder.h"

namespace lpu::compiler {

struct EltwiseSpec {
  std::string name;
  bool has_op = true;                // false: no VXM op (a Cast between float types: widen + narrow only)
  Opcode op = Opcode::Add;           // VXM opcode, f32; operands fill src_a, src_b (Select: src_c, src_a, src_b)
  std::vector<PlacedTensor*> operands;  // F16 or F32 (I8: same_i8_scale); rows == Y.rows, or rows == 1 (broadcast row)
  PlacedTensor* y = nullptr;         // F16, F32 or I8, same inner as the operands
  // I8 y only (an on-chip quantization, passes/quantize.h): the f32 result is multiplied by this
  // (`muli`, 1 / y's scale) and converted f32 -> i8 (`cvt`, round to nearest even, saturating).
  // The value is an instruction immediate: it never changes the schedule.
  float y_inv_scale = 1.0f;
  // A fused Relu (LoweredEltwise::relu): one more VXM `relu` (f32) on the op's result, before the
  // narrowing (or the int8 scaling); exact, so the stored value is that of the two ops in sequence.
  bool relu = false;
  // Unary VXM ops (f32) after the op and the Relu, in order, in the same pass (imm: the muli/addi
  // immediate); exact-in-sequence like the Relu: the stored value is that of the ops in sequence.
  // A binary post op (operand >= 0, e.g. LayerNorm's * scale, + bias) takes its src_b from
  // operands[operand], an operand past the op's own (those the op reads are at the VXM on the op's
  // cycle); that operand is read to reach the VXM on the post op's cycle (a vector already passing
  // the VXM on that cycle for another row, e.g. a constant row, is taken from the stream).
  // An `fma` with operand2 >= 0 accumulates: src_a = operands[operand], src_b = operands[operand2],
  // src_c = the value so far (a depthwise conv's taps; needs the chip's vxm.fused_multiply_add).
  struct Post { Opcode op = Opcode::Mov; float imm = 0.f; int operand = -1; int operand2 = -1; };
  std::vector<Post> post;
  // Empty, or one entry per operand: nullptr (rows as above) or Y.rows source rows (-1: `zero`).
  std::vector<const std::vector<int64_t>*> row_maps;
  const PlacedTensor* zero = nullptr;  // [1, >= Y.inner] all zero (F16 or F32), for -1 map entries
  // Empty, or one flag per operand: the operand is [rows, 1] holding its row's value in every lane
  // (a lane step's result, lane_kernel.h) and is read as that one vector for every chunk of Y's row.
  std::vector<char> lane_bcast;
  // Optional second output (a quantized copy fused into its producer, passes/quantize.h
  // apply_quant_copies): y2 (I8, Y's shape) receives, in the same pass, the value stored in Y
  // quantized to i8: the narrowed f16 value on its way to Y is widened back to f32 (`cvt`; nothing
  // for an F32 Y), multiplied by y2_inv_scale (`muli`, 1 / y2's scale) and converted f32 -> i8
  // (`cvt`), so y2 holds byte for byte what a separate Cast step reading Y would write. Y must be
  // F16 or F32. Updates y2->ready.
  PlacedTensor* y2 = nullptr;
  float y2_inv_scale = 1.0f;
  // I8 operands holding values of Y's own scale (passes/quantize.h "i8 pools": a MaxPool reading
  // its producer's i8 output): a Max/Min chain (the op and binary post ops of the same opcode, at
  // most a fused Relu after a Max) into an I8 Y runs on the i8 values directly (`max.i8`, `relu.i8`:
  // quantizing with one scale is monotonic and maps 0 to 0, so the max of quantized values is the
  // quantized max, bit for bit), with no widening, `muli` or narrowing, and 1-stream values.
  // std::logic_error for any other step. Unset: operands must be F16 or F32.
  bool same_i8_scale = false;
  // An `add` chain (the op and binary post `add`s) of f16 operands into an f16 Y where every lane
  // has at most one nonzero term (LoweredEltwise::disjoint_sum): every f16 partial sum is exact,
  // so the chain runs on the f16 values (`add.f16`) like a lone add (no widening or narrowing).
  bool disjoint_sum = false;
};

class EltwiseScheduler {
 public:
  explicit EltwiseScheduler(ScheduleBuilder& b);
  // Schedules one elementwise op after everything already placed; reads of each input vector wait
  // for its `ready` cycle, and vectors go chunk by chunk as their rows become ready (a pass follows
  // a matmul's column tiles; elementwise_kernel.cpp). Updates y->ready (each vector's own landing
  // cycle) and operands' last_read. Throws InputError for a chip
  // without a VXM or unsupported types, logic_error for inconsistent shapes.
  MatmulStats schedule(const EltwiseSpec& spec);

 private:
  class Run;  // one schedule() call's state and steps (elementwise_kernel.cpp)

  ScheduleBuilder& b_;
  int vxm_slice_ = -1;
  uint32_t vxm_pos_ = 0;
};

}  // namespace lpu::compiler
