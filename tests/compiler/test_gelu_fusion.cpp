// Fused elementwise chains (lower_graph, docs/compiler.md "Fused elementwise chains"): GELU as the
// LLM front end builds it (compiler/llm/segments.cpp: erf and tanh forms) lowers to 1 VXM pass
// instead of 5 (erf) / 2 instead of 9 (tanh); values against the reference interpreter within its bound and
// predicted == simulated (tests/support/chip_check.h); the cases the fusion must refuse.
#include <catch2/catch.hpp>

#include <cmath>

#include "compiler/passes/lowering.h"
#include "isa/isa.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/gelu_graph.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::random_f16;

namespace {

struct Builder {
  ir::Graph g;
  ir::Shape sh;
  int n = 0;
  ir::TensorId bin(ir::OpKind k, ir::TensorId a, ir::TensorId b) {
    const ir::TensorId y = g.add_tensor("t" + std::to_string(n), ir::DType::F16, sh);
    g.add_op(make_op(k, "op" + std::to_string(n++), {a, b}, {y}));
    return y;
  }
  ir::TensorId un(ir::OpKind k, ir::TensorId a) {
    const ir::TensorId y = g.add_tensor("t" + std::to_string(n), ir::DType::F16, sh);
    g.add_op(make_op(k, "op" + std::to_string(n++), {a}, {y}));
    return y;
  }
  ir::TensorId scalar(float v) {  // an f16 scalar, like the f16 activations
    return g.add_constant("c" + std::to_string(n++), ir::DType::F16, {}, lpu::test::f16_bytes({v}));
  }
};

ir::Graph gelu_erf(int64_t rows, int64_t cols, bool extra_reader) { return lpu::test::gelu_erf_graph(rows, cols, extra_reader); }

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in segments.cpp's op order.
ir::Graph gelu_tanh(int64_t rows, int64_t cols) {
  Builder b;
  b.g.name = "gelu_tanh";
  b.sh = {rows, cols};
  const ir::TensorId x = b.g.add_input("X", ir::DType::F16, b.sh);
  const ir::TensorId x3 = b.bin(ir::OpKind::Mul, b.bin(ir::OpKind::Mul, x, x), x);
  const ir::TensorId inner = b.bin(ir::OpKind::Add, x, b.bin(ir::OpKind::Mul, x3, b.scalar(0.044715f)));
  const ir::TensorId in = b.bin(ir::OpKind::Mul, inner, b.scalar(static_cast<float>(std::sqrt(2.0 / M_PI))));
  const ir::TensorId hx = b.bin(ir::OpKind::Mul, x, b.scalar(0.5f));
  const ir::TensorId t1 = b.bin(ir::OpKind::Add, b.un(ir::OpKind::Tanh, in), b.scalar(1.f));
  b.g.mark_output(b.bin(ir::OpKind::Mul, hx, t1));
  return b.g;
}

size_t graph_eltwise_ops(const ir::Graph& g) { return g.ops().size(); }  // every op here is elementwise

}  // namespace

TEST_CASE("gelu fusion: erf GELU is 1 VXM pass (was 5), values within the bound, predicted == simulated",
          "[eltwise][gelu]") {
  const ir::Graph g = gelu_erf(7, 330, false);
  REQUIRE(graph_eltwise_ops(g) == 5);
  const LoweredModel lm = lower_graph(g);
  REQUIRE(lm.eltwise.size() == 1);  // 2 before the product fusion (d) of lower_graph
  // x * (1/sqrt 2), then erf, + 1, times x (a second operand, read again), then * 0.5 (the deferred
  // x * 0.5), f32 throughout.
  const LoweredEltwise& p = lm.eltwise[0];
  CHECK(p.vxm_op == static_cast<int>(Opcode::Mul));
  REQUIRE(p.operands.size() == 3);
  CHECK(p.operands[0].act == g.find("X"));
  CHECK(p.operands[2].act == g.find("X"));
  REQUIRE(p.post.size() == 4);
  CHECK(p.post[0].op == static_cast<int>(Opcode::Erf));
  CHECK(p.post[1].op == static_cast<int>(Opcode::AddImm));
  CHECK(p.post[1].imm == 1.f);
  CHECK(p.post[2].op == static_cast<int>(Opcode::Mul));
  CHECK(p.post[2].operand == 2);
  CHECK(p.post[3].op == static_cast<int>(Opcode::MulImm));
  CHECK(p.post[3].imm == 0.5f);
  CHECK(p.y == g.outputs()[0]);
  // Both signs and the tails (erf saturates past |x| ~ 4).
  lpu::test::check_chip_against_reference(g, {random_f16(7 * 330, -5.f, 5.f, 71)});
}

TEST_CASE("gelu fusion: tanh GELU is 2 VXM passes (was 9), values within the bound, predicted == simulated",
          "[eltwise][gelu]") {
  const ir::Graph g = gelu_tanh(5, 200);
  REQUIRE(graph_eltwise_ops(g) == 9);
  const LoweredModel lm = lower_graph(g);
  // x * x, times x (product fusion), * 0.044715; x + that reads two activations: a step, with
  // * sqrt(2/pi), tanh, + 1, times x (product fusion) and the deferred * 0.5. (4 before (d).)
  CHECK(lm.eltwise.size() == 2);
  lpu::test::check_chip_against_reference(g, {random_f16(5 * 200, -4.f, 4.f, 72)});
}

TEST_CASE("gelu fusion: x * 0.5 with another reader is not deferred, a fused chain followed by Relu keeps "
          "the order", "[eltwise][gelu]") {
  const ir::Graph g = gelu_erf(4, 96, true);
  const LoweredModel lm = lower_graph(g);
  REQUIRE(lm.eltwise.size() == 3);  // x * 0.5 is stored (a graph output)
  CHECK(lm.eltwise[1].y == g.outputs()[1]);
  // The product is not fused into the erf pass: its other operand x * 0.5 is written by a later
  // step (the pass would read it before it exists).
  CHECK(lm.eltwise[0].post.size() == 2);
  CHECK(lm.eltwise[2].post.empty());
  lpu::test::check_chip_against_reference(g, {random_f16(4 * 96, -3.f, 3.f, 73)});

  // relu(erf(x * 2) - 0.25): the Relu runs after the fused erf and addi, as a post op.
  Builder b;
  b.g.name = "erf_relu";
  b.sh = {3, 150};
  const ir::TensorId x = b.g.add_input("X", ir::DType::F16, b.sh);
  const ir::TensorId y = b.bin(ir::OpKind::Sub, b.un(ir::OpKind::Erf, b.bin(ir::OpKind::Mul, x, b.scalar(2.f))),
                               b.scalar(0.25f));
  b.g.mark_output(b.un(ir::OpKind::Relu, y));
  const LoweredModel lr = lower_graph(b.g);
  REQUIRE(lr.eltwise.size() == 1);
  CHECK_FALSE(lr.eltwise[0].relu);
  REQUIRE(lr.eltwise[0].post.size() == 3);
  CHECK(lr.eltwise[0].post[1].op == static_cast<int>(Opcode::AddImm));
  CHECK(lr.eltwise[0].post[1].imm == -0.25f);
  CHECK(lr.eltwise[0].post[2].op == static_cast<int>(Opcode::Relu));
  lpu::test::check_chip_against_reference(b.g, {random_f16(3 * 150, -1.f, 1.f, 74)});
}

TEST_CASE("layernorm fusion: normalize, scale and shift are one VXM pass (was 3), values within the bound, "
          "predicted == simulated", "[eltwise][layernorm]") {
  const int64_t R = 6, K = 768;
  for (const bool has_b : {true, false}) {
    ir::Graph g;
    g.name = has_b ? "ln" : "ln_nob";
    const ir::TensorId x = g.add_input("X", ir::DType::F16, {R, K});
    const ir::TensorId sc = g.add_constant("scale", ir::DType::F16, {K}, lpu::test::f16_bytes(random_f16(K, 0.5f, 1.5f, 81)));
    std::vector<ir::TensorId> ins{x, sc};
    if (has_b) ins.push_back(g.add_constant("B", ir::DType::F16, {K}, lpu::test::f16_bytes(random_f16(K, -1, 1, 82))));
    const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {R, K});
    ir::Op op = make_op(ir::OpKind::LayerNormalization, "ln", ins, y);
    op.attrs["axis"] = int64_t{1};
    op.attrs["epsilon"] = 1e-5f;
    g.add_op(op);
    g.mark_output(y);
    const LoweredModel lm = lower_graph(g);
    REQUIRE(lm.eltwise.size() == 1);  // .norm alone (the `.sd` lane step centres x itself; was .center, .norm)
    const LoweredEltwise& n = lm.eltwise[0];
    CHECK(n.name == "ln.norm");
    CHECK(n.vxm_op == static_cast<int>(Opcode::Sub));
    CHECK(n.y == y);
    REQUIRE(n.operands.size() == (has_b ? 5u : 4u));
    REQUIRE(n.post.size() == (has_b ? 3u : 2u));
    CHECK(n.post[0].op == static_cast<int>(Opcode::Div));
    CHECK(n.post[0].operand == 2);
    CHECK(n.post[1].op == static_cast<int>(Opcode::Mul));
    CHECK(n.post[1].operand == 3);
    if (has_b) {
      CHECK(n.post[2].op == static_cast<int>(Opcode::Add));
      CHECK(n.post[2].operand == 4);
    }
    lpu::test::check_chip_against_reference(g, {random_f16(R * K, -2, 3, has_b ? 83 : 84)});
  }
}
