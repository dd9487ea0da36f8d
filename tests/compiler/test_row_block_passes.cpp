// VXM passes and lane steps over tensors split into row blocks (passes/tiling.h: port_split_*):
// the elementwise kernel takes the blocks' rows interleaved with one cursor per block and reads a
// broadcast constant row once per cycle for every vector that needs it, so one pass writes several
// vectors a cycle; the lane kernel interleaves the blocks alike and picks its all-reduce radix per
// step (docs/compiler.md "Elementwise ops, reductions, normalization"). Values against the
// reference interpreter, predicted == simulated (tests/support/chip_check.h).
#include <catch2/catch.hpp>

#include "compiler/ir/graph.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using lpu::test::check_chip_against_reference;
using lpu::test::random_f16;

TEST_CASE("row block passes: an op by a constant over 1024 rows in 8 row blocks writes several vectors a cycle") {
  // Inputs away from 0 (no f16 subnormal results, see test_compile_eltwise.cpp).
  // [1024, 320] f16: 8 row blocks of 128 rows (one vector per row). One block's slices take one
  // write a cycle, and the constant row sits in one place: a pass at one vector a cycle needs at
  // least 1024 cycles; interleaved blocks with the constant read shared must do better.
  constexpr int64_t rows = 1024, cols = 320;
  ir::Graph g;
  g.name = "row_blocks_mul";
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {rows, cols});
  const ir::TensorId c = g.add_constant("c", ir::DType::F16, {}, lpu::test::f16_bytes({0.375f}));
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {rows, cols});
  g.add_op(make_op(ir::OpKind::Mul, "mul", {x, c}, y));
  g.mark_output(y);
  const uint64_t cycles = check_chip_against_reference(g, {random_f16(rows * cols, 0.5f, 3, 7)});
  INFO("cycles " << cycles);
  CHECK(cycles < static_cast<uint64_t>(rows));
}

TEST_CASE("row block passes: Softmax over 1024 rows of 128 (8 row blocks, interleaved lane steps) matches the reference") {
  // Every step of the Softmax (clamp, row max, sub, exp, row sum, div) over a tensor split into
  // row blocks; the row max and sum lane steps each try their radices and keep the earliest.
  constexpr int64_t heads = 8, rows = 128, cols = 128;
  const ir::Graph g = unary_graph(ir::OpKind::Softmax, {heads, rows, cols}, {{"axis", int64_t{2}}},
                                  {heads, rows, cols});
  // Logits in [-1, 1]: every probability >= e^-2 / 128, an f16 normal (the reference's bound for
  // f16 outputs is relative and does not cover subnormal rounding).
  check_chip_against_reference(g, {random_f16(heads * rows * cols, -1, 1, 11)});  // values, cycles
}
