// Tests of the graph IR: dtypes and fp16 conversion, builders, validation, dead-code removal,
// shape inference errors and the deterministic text dump.
#include <catch2/catch.hpp>

#include "tests/support/ir_build.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "compiler/ir/graph.h"
#include "compiler/ir/shape_infer.h"
#include "isa/chip_config.h"

namespace ir = lpu::ir;
using lpu::InputError;
using lpu::ir::DType;
using lpu::ir::OpKind;


TEST_CASE("ir: dtype names and sizes round trip") {
  for (int i = 0; i < ir::kNumIrDTypes; ++i) {
    const auto t = static_cast<DType>(i);
    CHECK(ir::dtype_from_name(ir::dtype_name(t)) == t);
  }
  CHECK(ir::dtype_bytes(DType::I64) == 8);
  CHECK(ir::dtype_bytes(DType::F16) == 2);
  CHECK_FALSE(ir::dtype_from_name("f64").has_value());
  OpKind k;
  CHECK(ir::op_kind_from_name("MatMul", &k));
  CHECK(k == OpKind::MatMul);
  CHECK_FALSE(ir::op_kind_from_name("Hardmax", &k));
}

TEST_CASE("ir: fp16 conversion rounds to nearest even and keeps specials") {
  CHECK(ir::f32_to_f16(1.0f) == 0x3C00);
  CHECK(ir::f32_to_f16(65504.0f) == 0x7BFF);
  CHECK(ir::f32_to_f16(65520.0f) == 0x7C00);                // rounds up to +inf
  CHECK(ir::f32_to_f16(std::ldexp(1.0f, -24)) == 0x0001);   // smallest subnormal
  CHECK(ir::f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);   // tie -> even (0)
  CHECK(ir::f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);                          // tie -> even
  CHECK(ir::f32_to_f16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)) == 0x3C01);  // above tie
  CHECK(ir::f32_to_f16(-2.0f) == 0xC000);
  CHECK(std::isnan(ir::round_f16(std::numeric_limits<float>::quiet_NaN())));
  // Every finite f16 survives f16 -> f32 -> f16.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00) continue;
    REQUIRE(ir::f32_to_f16(ir::f16_to_f32(static_cast<uint16_t>(h))) == h);
  }
}

TEST_CASE("ir: a small graph validates and dumps deterministically") {
  ir::Graph g;
  g.name = "tiny";
  auto x = g.add_input("x", DType::F32, {2, 3});
  auto w = g.add_constant_floats("w", {3, 4}, std::vector<float>(12, 0.5f));
  auto y = g.add_tensor("y", DType::F32, {2, 4});
  g.add_op(make_op(OpKind::MatMul, "mm", {x, w}, {y}));
  auto z = g.add_tensor("z", DType::F32, {4, 2});
  g.add_op(make_op(OpKind::Transpose, "tr", {y}, {z}, {{"perm", std::vector<int64_t>{1, 0}}}));
  g.mark_output(z);
  g.validate();
  CHECK(g.to_text() ==
        "graph tiny\n"
        "input %x:f32[2,3]\n"
        "const %w:f32[3,4] = 0.5 0.5 0.5 0.5 0.5 0.5 0.5 0.5 ...\n"
        "%y:f32[2,4] = MatMul(%x, %w)  # mm\n"
        "%z:f32[4,2] = Transpose(%y) {perm=[1,0]}  # tr\n"
        "output %z:f32[4,2]\n");
  CHECK(g.find("w") == w);
  CHECK(g.find("nope") == ir::kNoTensor);
  CHECK(g.unique_name("w") == "w_1");
}

TEST_CASE("ir: validate rejects use before definition and duplicate producers") {
  ir::Graph g;
  auto x = g.add_input("x", DType::F32, {2});
  auto a = g.add_tensor("a", DType::F32, {2});
  auto b = g.add_tensor("b", DType::F32, {2});
  g.add_op(make_op(OpKind::Relu, "r1", {b}, {a}));  // reads b before r2 writes it
  g.add_op(make_op(OpKind::Relu, "r2", {x}, {b}));
  g.mark_output(a);
  try {
    g.validate();
    FAIL("expected logic_error");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()) == "ir: invalid graph: op 'r1' reads 'b' before it is produced");
  }
  CHECK_THROWS_AS(g.add_op(make_op(OpKind::Relu, "r3", {x}, {a})), std::logic_error);
  CHECK_THROWS_AS(g.add_input("x", DType::F32, {1}), std::logic_error);
}

TEST_CASE("ir: remove_dead drops unused ops and constants and renumbers") {
  ir::Graph g;
  auto x = g.add_input("x", DType::F32, {2});
  auto unused_c = g.add_constant_floats("unused", {2}, {1, 2});
  auto dead = g.add_tensor("dead", DType::F32, {2});
  g.add_op(make_op(OpKind::Exp, "dead_op", {x}, {dead}));
  auto live = g.add_tensor("live", DType::F32, {2});
  g.add_op(make_op(OpKind::Relu, "live_op", {x}, {live}));
  g.mark_output(live);
  (void)unused_c;
  g.remove_dead();
  g.validate();
  REQUIRE(g.ops().size() == 1);
  CHECK(g.ops()[0].name == "live_op");
  CHECK(g.tensors().size() == 2);
  CHECK(g.tensor(g.outputs()[0]).name == "live");
  CHECK(g.tensor(g.outputs()[0]).producer == 0);
  CHECK(g.find("dead") == ir::kNoTensor);
}

TEST_CASE("ir: shape inference reports the op, the shapes and what is allowed") {
  ir::Graph g;
  auto a = g.add_input("a", DType::F32, {2, 3});
  auto b = g.add_input("b", DType::F32, {4, 5});
  auto c = g.add_input("c", DType::F32, {3});
  auto mm = make_op(OpKind::MatMul, "mm", {a, b}, {ir::kNoTensor});
  try {
    ir::infer_output_types(g, mm);
    FAIL("expected InputError");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == "op 'mm' (MatMul): inner dims differ: 'a' [2,3] x 'b' [4,5]");
  }
  auto add = make_op(OpKind::Add, "add", {a, b}, {ir::kNoTensor});
  CHECK_THROWS_WITH(ir::infer_output_types(g, add), "op 'add' (Add): shapes [2,3] and [4,5] do not broadcast");
  auto add_ok = make_op(OpKind::Add, "add", {a, c}, {ir::kNoTensor});
  CHECK(ir::infer_output_types(g, add_ok)[0].shape == ir::Shape{2, 3});
  auto rs = make_op(OpKind::Reshape, "rs", {a}, {ir::kNoTensor}, {{"shape", std::vector<int64_t>{4, 2}}});
  CHECK_THROWS_WITH(ir::infer_output_types(g, rs),
                    "op 'rs' (Reshape): shape [4,2] has 8 elements; input 'a' [2,3] has 6");
  CHECK(ir::broadcast_shapes({5, 1, 3}, {4, 1}) == ir::Shape{5, 4, 3});
  // ceil_mode drops a window that would start in the right padding only.
  CHECK(ir::window_out_dim(5, 2, 2, 1, 0, 0, false) == 2);
  CHECK(ir::window_out_dim(5, 2, 2, 1, 0, 0, true) == 3);
  CHECK(ir::window_out_dim(4, 2, 2, 1, 0, 1, true) == 2);
}
