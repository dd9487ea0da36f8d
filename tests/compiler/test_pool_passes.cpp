// Pools in few VXM passes (passes/lower_conv.h, session 8): a MaxPool is ONE pass (a `max` of the
// first two taps, then one binary post `max` per further tap, f16 throughout), a GlobalAveragePool
// one pass of up to 16 rows, else levels of ceil(sqrt(rows)) rows a pass (`add` chains, the last
// level scaled by a post `mul`).
// Checked: the lowered steps, values against the reference interpreter, predicted == simulated
// (check_chip_against_reference), incl. two-level pools (one with a zero-row tail)
// and batch 2.
#include <catch2/catch.hpp>

#include <cmath>

#include "compiler/passes/lowering.h"
#include "isa/isa.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

// X [N, C, H, W] -> 1x1 conv (so the pool reads a conv activation) -> pool -> P (graph output).
ir::Graph pool_graph(ir::OpKind k, int64_t N, int64_t C, int64_t H, int64_t W, int64_t kk, int64_t s, int64_t p) {
  ir::Graph g;
  g.name = "pool";
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {N, C, H, W});
  const float sc = 1.f / std::sqrt(static_cast<float>(C));
  const ir::TensorId w = g.add_constant("Wc", ir::DType::F16, {C, C, 1, 1}, f16_bytes(random_f16(C * C, -sc, sc, 7)));
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {N, C, H, W});
  g.add_op(make_op(ir::OpKind::Conv, "conv", {x, w}, {y},
                   {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"strides", std::vector<int64_t>{1, 1}},
                    {"dilations", std::vector<int64_t>{1, 1}}, {"pads", std::vector<int64_t>{0, 0, 0, 0}},
                    {"group", int64_t{1}}}));
  ir::TensorId z;
  if (k == ir::OpKind::GlobalAveragePool) {
    z = g.add_tensor("P", ir::DType::F16, {N, C, 1, 1});
    g.add_op(make_op(k, "pool", {y}, {z}));
  } else {
    const int64_t OH = (H + 2 * p - kk) / s + 1, OW = (W + 2 * p - kk) / s + 1;
    z = g.add_tensor("P", ir::DType::F16, {N, C, OH, OW});
    g.add_op(make_op(k, "pool", {y}, {z},
                     {{"kernel_shape", std::vector<int64_t>{kk, kk}}, {"strides", std::vector<int64_t>{s, s}},
                      {"pads", std::vector<int64_t>{p, p, p, p}}, {"dilations", std::vector<int64_t>{1, 1}},
                      {"ceil_mode", int64_t{0}}}));
  }
  g.mark_output(z);
  return g;
}

}  // namespace

TEST_CASE("pool passes: a 3x3 stride-2 MaxPool is one VXM pass, values and predicted == simulated", "[conv][pool]") {
  const ir::Graph g = pool_graph(ir::OpKind::MaxPool, 2, 40, 11, 12, 3, 2, 1);
  const LoweredModel lm = lower_graph(g);
  REQUIRE(lm.eltwise.size() == 1);
  const LoweredEltwise& E = lm.eltwise[0];
  CHECK(E.vxm_op == static_cast<int>(Opcode::Max));
  REQUIRE(E.operands.size() == 9);
  REQUIRE(E.post.size() == 7);
  for (size_t i = 0; i < E.post.size(); ++i) {
    CHECK(E.post[i].op == static_cast<int>(Opcode::Max));
    CHECK(E.post[i].operand == static_cast<int>(i) + 2);
  }
  for (const EltOperand& o : E.operands) CHECK(o.row_map.size() == static_cast<size_t>(2 * 6 * 6));
  lpu::test::check_chip_against_reference(g, {random_f16(2 * 40 * 11 * 12, -1.f, 1.f, 71)});
}

TEST_CASE("pool passes: GlobalAveragePool is one pass up to 16 rows, else levels of ceil(sqrt) rows", "[conv][pool]") {
  // 4x4: one pass of 16; 7x7 (ResNet-50's pool): 7 sums of 7, then one of 7; 6x3 = 18 rows: sums
  // of 5 (the fourth padded with the zero row), then one of the 4 partial sums; 9x10 = 90: 9 sums
  // of 10, then one of 9. The last pass scales by 1/(H*W).
  struct Case { int64_t H, W; size_t steps; size_t g0; };
  for (const Case c : {Case{4, 4, 1, 16}, Case{7, 7, 2, 7}, Case{6, 3, 2, 5}, Case{9, 10, 2, 10}}) {
    INFO(c.H << "x" << c.W);
    const ir::Graph g = pool_graph(ir::OpKind::GlobalAveragePool, 2, 24, c.H, c.W, 0, 0, 0);
    const LoweredModel lm = lower_graph(g);
    REQUIRE(lm.eltwise.size() == c.steps);
    const LoweredEltwise& last = lm.eltwise.back();
    REQUIRE_FALSE(last.post.empty());
    CHECK(last.post.back().op == static_cast<int>(Opcode::Mul));  // by a constant row of 1 / (H*W)
    REQUIRE(last.post.back().operand == static_cast<int>(last.operands.size()) - 1);
    const EltOperand& sc = last.operands.back();
    CHECK(sc.act == ir::kNoTensor);
    CHECK(sc.const_rows == 1);
    CHECK(sc.values.at(0) == 1.f / static_cast<float>(c.H * c.W));
    // Rows summed by the first pass (+ the scale row when it is also the last).
    CHECK(lm.eltwise.front().operands.size() == c.g0 + (c.steps == 1 ? 1 : 0));
    if (c.steps == 2) {
      const int64_t h2 = (c.H * c.W + static_cast<int64_t>(c.g0) - 1) / static_cast<int64_t>(c.g0);
      CHECK(last.operands.size() == static_cast<size_t>(h2) + 1);
    }
    lpu::test::check_chip_against_reference(g, {random_f16(2 * 24 * c.H * c.W, -1.f, 1.f, 73)});
  }
}
