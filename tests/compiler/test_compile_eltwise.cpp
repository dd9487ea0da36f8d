// Elementwise ops lowered to the VXM: each graph is compiled, simulated in timing and functional
// mode (simulated cycles must equal the compiler's prediction), and its outputs compared with the
// reference interpreter within twice the reference's running error bound (docs/compiler.md).
// Graph tensors are typed f16 as the chip stores inputs and hidden tensors, so the reference rounds
// where the chip rounds; the chip's outputs are f32 (closer than the reference's f16 outputs, whose
// rounding the reference bound includes).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "compiler/reference/error_bound.h"
#include "isa/chip_config.h"
#include "tests/support/chip_check.h"
#include "tests/support/gelu_graph.h"
#include "tests/support/ir_build.h"
#include "tests/support/issued_count.h"
#include "tests/support/f16_data.h"
#include "sim/simulator.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

using lpu::test::check_chip_against_reference;

namespace {

// An f16 constant (the IR wants both operands of an elementwise op in one dtype).
ir::TensorId const_f16(ir::Graph& g, const std::string& name, const ir::Shape& shape, const std::vector<float>& v) {
  return g.add_constant(name, ir::DType::F16, shape, f16_bytes(v));
}

constexpr int64_t kRows = 70, kCols = 500;  // 2 vectors per row on a 320-lane chip; 70 rows

}  // namespace

// Inputs stay away from 0 where a result could be an f16 subnormal: the reference's bound for f16
// outputs is relative (2^-11 |y|) and does not cover subnormal rounding (absolute 2^-25).
TEST_CASE("compile: eltwise unary ops on the VXM predicted == simulated, values within the reference bound") {
  struct U { ir::OpKind k; float lo, hi; float pow_e; };
  const U cases[] = {{ir::OpKind::Relu, -3, 3, 0},    {ir::OpKind::Sigmoid, -6, 6, 0}, {ir::OpKind::Tanh, -3, 3, 0},
                     {ir::OpKind::Erf, -2, 2, 0},     {ir::OpKind::Exp, -4, 4, 0},     {ir::OpKind::Sqrt, 0.1f, 9, 0},
                     {ir::OpKind::Reciprocal, 0.25f, 4, 0}, {ir::OpKind::Neg, -3, 3, 0}, {ir::OpKind::Cast, -3, 3, 0},
                     {ir::OpKind::Pow, 0.2f, 3, 2.f},   {ir::OpKind::Pow, 0.1f, 9, 0.5f}};
  uint32_t seed = 1;
  for (const U& c : cases) {
    INFO(ir::op_kind_name(c.k) << " exponent " << c.pow_e);
    ir::Graph g;
    g.name = "unary";
    const ir::TensorId x = g.add_input("X", ir::DType::F16, {kRows, kCols});
    const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {kRows, kCols});
    ir::Op op = make_op(c.k, "op", {x}, y);
    if (c.k == ir::OpKind::Cast) op.attrs["to"] = static_cast<int64_t>(ir::DType::F16);
    if (c.k == ir::OpKind::Pow) op.inputs.push_back(g.add_constant_floats("e", {}, {c.pow_e}));
    g.add_op(op);
    g.mark_output(y);
    check_chip_against_reference(g, {random_f16(kRows * kCols, c.lo, c.hi, seed++)});
  }
}

TEST_CASE("compile: eltwise binary ops with activations, per-row vectors and scalars predicted == simulated") {
  const ir::OpKind kinds[] = {ir::OpKind::Add, ir::OpKind::Sub, ir::OpKind::Mul, ir::OpKind::Div};
  uint32_t seed = 100;
  for (ir::OpKind k : kinds) {
    for (int form = 0; form < 4; ++form) {  // 0: X op Z, 1: X op vec, 2: scalar op X, 3: vec[1,C] op X
      INFO(ir::op_kind_name(k) << " form " << form);
      ir::Graph g;
      g.name = "binary";
      const ir::TensorId x = g.add_input("X", ir::DType::F16, {kRows, kCols});
      std::vector<std::vector<float>> ins{random_f16(kRows * kCols, 0.5f, 3, seed++)};
      ir::TensorId other;
      if (form == 0) {
        other = g.add_input("Z", ir::DType::F16, {kRows, kCols});
        ins.push_back(random_f16(kRows * kCols, 0.5f, 3, seed++));
      } else if (form == 1) {
        other = const_f16(g, "vec", {kCols}, random_f16(kCols, 0.5f, 2, seed++));
      } else if (form == 2) {
        other = const_f16(g, "s", {}, {1.75f});
      } else {
        other = const_f16(g, "vec", {1, kCols}, random_f16(kCols, -2, -0.5f, seed++));
      }
      const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {kRows, kCols});
      g.add_op(make_op(k, "op", form >= 2 ? std::vector<ir::TensorId>{other, x} : std::vector<ir::TensorId>{x, other}, y));
      g.mark_output(y);
      check_chip_against_reference(g, ins);
    }
  }
}

TEST_CASE("compile: eltwise Where with a constant condition predicted == simulated") {
  ir::Graph g;
  g.name = "where";
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {kRows, kCols});
  std::vector<int64_t> cond(kCols);
  for (int64_t i = 0; i < kCols; ++i) cond[static_cast<size_t>(i)] = (i * 7) % 3 == 0;
  const ir::TensorId c = g.add_constant_ints("cond", ir::DType::BOOL, {kCols}, cond);
  const ir::TensorId z = const_f16(g, "z", {}, {-1.5f});
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {kRows, kCols});
  g.add_op(make_op(ir::OpKind::Where, "op", {c, x, z}, y));
  g.mark_output(y);
  check_chip_against_reference(g, {random_f16(kRows * kCols, -3, 3, 7)});
}

TEST_CASE("compile: eltwise chain with f16 hidden tensors (x * s + b -> sigmoid -> * x) predicted == simulated") {
  ir::Graph g;
  g.name = "chain";
  const int64_t R = 300, C = 320;  // 300 rows: stored as row blocks
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {R, C});
  const ir::TensorId s = const_f16(g, "s", {C}, random_f16(C, 0.5f, 1.5f, 11));
  const ir::TensorId b = const_f16(g, "b", {C}, random_f16(C, -1, 1, 12));
  const ir::TensorId h1 = g.add_tensor("h1", ir::DType::F16, {R, C});
  const ir::TensorId h2 = g.add_tensor("h2", ir::DType::F16, {R, C});
  const ir::TensorId h3 = g.add_tensor("h3", ir::DType::F16, {R, C});
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {R, C});
  g.add_op(make_op(ir::OpKind::Mul, "scale", {x, s}, h1));
  g.add_op(make_op(ir::OpKind::Add, "shift", {h1, b}, h2));
  g.add_op(make_op(ir::OpKind::Sigmoid, "sig", {h2}, h3));
  g.add_op(make_op(ir::OpKind::Mul, "gate", {h3, x}, y));
  g.mark_output(y);
  check_chip_against_reference(g, {random_f16(R * C, -3, 3, 13)});
}

TEST_CASE("compile: an elementwise pass's reads statistic counts the SRAM reads it issues") {
  // 0.5 x (1 + erf(x / sqrt 2)): one fused pass (lower_graph) whose post `mul` reads x again on its
  // own cycle (operand 2 is x, read after the erf). The statistic (CompileResult::stats and the
  // steps' `reads`) must equal the program's `read` instructions: a repeated operand fetched again
  // is a read (it was counted once per vector), a value taken from a stream is none.
  const int64_t R = 64, C = 320;
  const ir::Graph g = lpu::test::gelu_erf_graph(R, C);
  const CompileResult cr = compile(g, *default_chip_config(), CompileOptions{});
  REQUIRE(cr.spans.size() == 1);
  const uint64_t issued = lpu::test::issued_count(cr.program, Opcode::Read);
  CHECK(cr.stats.reads == issued);
  CHECK(cr.spans[0].reads == issued);
  CHECK(issued >= static_cast<uint64_t>(2 * R * 2));  // x twice a row, 2 byte planes each
}

TEST_CASE("compile: eltwise errors name the node (Pow exponent, broadcast activation)") {
  auto cfg = default_chip_config();
  ir::Graph g;
  g.name = "bad";
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {4, 8});
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {4, 8});
  g.add_op(make_op(ir::OpKind::Pow, "p3", {x, g.add_constant_floats("e", {}, {3.f})}, y));
  g.mark_output(y);
  REQUIRE_THROWS_WITH(compile(g, *cfg, CompileOptions{}), Catch::Contains("p3") && Catch::Contains("exponent of 2 or 0.5"));
  ir::Graph g2;
  g2.name = "bad2";
  const ir::TensorId a = g2.add_input("A", ir::DType::F16, {4, 8});
  const ir::TensorId v = g2.add_input("V", ir::DType::F16, {1, 8});
  const ir::TensorId y2 = g2.add_tensor("Y", ir::DType::F16, {4, 8});
  g2.add_op(make_op(ir::OpKind::Add, "addv", {a, v}, y2));
  g2.mark_output(y2);
  // An activation broadcast over rows ([1, 8] -> [4, 8]) is a row map now (values checked in
  // test_conformance_forms.cpp); the error path is the Pow above.
  CHECK_NOTHROW(compile(g2, *cfg, CompileOptions{}));
}

TEST_CASE("compile: reduce ReduceSum/ReduceMean over the last axis (MXM ones column) predicted == simulated") {
  uint32_t seed = 200;
  for (ir::OpKind k : {ir::OpKind::ReduceSum, ir::OpKind::ReduceMean}) {
    for (int64_t keep : {1, 0}) {
      INFO(ir::op_kind_name(k) << " keepdims " << keep);
      ir::Graph g;
      g.name = "reduce";
      const ir::TensorId x = g.add_input("X", ir::DType::F16, {kRows, kCols});
      const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, keep ? ir::Shape{kRows, 1} : ir::Shape{kRows});
      ir::Op op = make_op(k, "red", {x}, y);
      op.attrs["axes"] = std::vector<int64_t>{1};
      op.attrs["keepdims"] = keep;
      g.add_op(op);
      g.mark_output(y);
      check_chip_against_reference(g, {random_f16(kRows * kCols, -3, 3, seed++)});
    }
  }
}

TEST_CASE("compile: eltwise after a matmul (MatMul -> Tanh -> Mul by a per-row vector) predicted == simulated") {
  ir::Graph g;
  g.name = "mm_tanh";
  const int64_t M = 64, K = 320, N = 200;
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {M, K});
  const ir::TensorId w = const_f16(g, "W", {K, N}, random_f16(K * N, -0.1f, 0.1f, 31));
  const ir::TensorId h = g.add_tensor("h", ir::DType::F16, {M, N});
  const ir::TensorId t = g.add_tensor("t", ir::DType::F16, {M, N});
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {M, N});
  g.add_op(make_op(ir::OpKind::MatMul, "mm", {x, w}, h));
  g.add_op(make_op(ir::OpKind::Tanh, "tanh", {h}, t));
  g.add_op(make_op(ir::OpKind::Mul, "scale", {t, const_f16(g, "s", {N}, random_f16(N, 0.5f, 2, 32))}, y));
  g.mark_output(y);
  check_chip_against_reference(g, {random_f16(M * K, -1, 1, 33)});
}

TEST_CASE("compile: norm LayerNormalization over the last axis (MXM ones matrix + VXM) predicted == simulated") {
  for (int64_t K : {320, 500}) {
    INFO("K " << K);
    ir::Graph g;
    g.name = "layernorm";
    const int64_t R = 64;
    const ir::TensorId x = g.add_input("X", ir::DType::F16, {R, K});
    const ir::TensorId sc = const_f16(g, "scale", {K}, random_f16(K, 0.5f, 1.5f, 41));
    const ir::TensorId b = const_f16(g, "B", {K}, random_f16(K, -0.5f, 0.5f, 42));
    const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {R, K});
    ir::Op op = make_op(ir::OpKind::LayerNormalization, "ln", {x, sc, b}, y);
    op.attrs["axis"] = int64_t{1};
    op.attrs["epsilon"] = 1e-5f;
    g.add_op(op);
    g.mark_output(y);
    check_chip_against_reference(g, {random_f16(R * K, -1, 3, 43)});
  }
}

TEST_CASE("compile: reduce then broadcast a per-row scalar (x - ReduceMean(x), keepdims) predicted == simulated") {
  ir::Graph g;
  g.name = "center";
  const int64_t R = 48, K = 400;
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {R, K});
  const ir::TensorId m = g.add_tensor("m", ir::DType::F16, {R, 1});
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {R, K});
  ir::Op red = make_op(ir::OpKind::ReduceMean, "mean", {x}, m);
  red.attrs["axes"] = std::vector<int64_t>{1};
  red.attrs["keepdims"] = int64_t{1};
  g.add_op(red);
  g.add_op(make_op(ir::OpKind::Sub, "center", {x, m}, y));
  g.mark_output(y);
  check_chip_against_reference(g, {random_f16(R * K, -1, 3, 51)});
}

TEST_CASE("compile: eltwise x + x . P (lane rotation by a permutation matmul) predicted == simulated") {
  for (int64_t K : {100, 320}) {
    for (int64_t sh : {1, 64}) {
      INFO("K " << K << " shift " << sh);
      ir::Graph g;
      g.name = "rot";
      const int64_t R = 32;
      const ir::TensorId x = g.add_input("X", ir::DType::F16, {R, K});
      std::vector<float> perm(static_cast<size_t>(K * K), 0.f);
      for (int64_t n = 0; n < K; ++n) perm[static_cast<size_t>(((n + sh) % K) * K + n)] = 1.f;
      const ir::TensorId h = g.add_tensor("h", ir::DType::F16, {R, K});
      const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {R, K});
      g.add_op(make_op(ir::OpKind::MatMul, "rot", {x, const_f16(g, "P", {K, K}, perm)}, h));
      g.add_op(make_op(ir::OpKind::Add, "add", {x, h}, y));
      g.mark_output(y);
      check_chip_against_reference(g, {random_f16(R * K, -8, 40, 71)});
    }
  }
}

TEST_CASE("compile: eltwise rotation tree (cur *= cur . P_s, s = 1, 2, 4, ...) predicted == simulated") {
  for (int64_t K : {100, 320}) {
    INFO("K " << K);
    ir::Graph g;
    g.name = "tree";
    const int64_t R = 32;
    ir::TensorId cur = g.add_input("X", ir::DType::F16, {R, K});
    int lvl = 0;
    for (int64_t sh = 1; sh < K; sh *= 2, ++lvl) {
      std::vector<float> perm(static_cast<size_t>(K * K), 0.f);
      for (int64_t n = 0; n < K; ++n) perm[static_cast<size_t>(((n + sh) % K) * K + n)] = 1.f;
      const std::string L = std::to_string(lvl);
      const ir::TensorId h = g.add_tensor("h" + L, ir::DType::F16, {R, K});
      const ir::TensorId y = g.add_tensor("y" + L, ir::DType::F16, {R, K});
      g.add_op(make_op(ir::OpKind::MatMul, "rot" + L, {cur, const_f16(g, "P" + L, {K, K}, perm)}, h));
      g.add_op(make_op(ir::OpKind::Mul, "mix" + L, {cur, h}, y));
      cur = y;
    }
    g.mark_output(cur);
    check_chip_against_reference(g, {random_f16(R * K, 0.99f, 1.01f, 81)});
  }
}

TEST_CASE("compile: norm Softmax over the last axis (MXM rotations for the row max, ones for the sum) predicted == simulated") {
  for (int64_t K : {100, 320}) {
    INFO("K " << K);
    const int64_t R = 32;
    const ir::Graph g = unary_graph(ir::OpKind::Softmax, {R, K}, {{"axis", int64_t{1}}}, {R, K}, "sm");
    // Logits in [12, 14]: exp(x) alone would overflow f16 (the row max must be subtracted), and
    // every probability stays an f16 normal number (see the unary test's note on subnormals).
    check_chip_against_reference(g, {random_f16(R * K, 12, 14, 61)});
  }
}
