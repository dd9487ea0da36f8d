// A balanced cut's run order (backend/matmul_kernel.h MatmulDecision::ready_order): a product cut
// over the planes whose X lands column by column out of order (it reads a product that was itself
// cut over the planes) may let each plane take its runs in the order their X is ready. The compile
// schedules both orders and keeps the one whose last result lands first. Checked: the order is
// taken where it pays, replaying the cut's order instead gives a longer program, both programs
// run at their predicted cycles, and their values are bit-identical (each run keeps its k order
// and partial index).
#include <catch2/catch.hpp>

#include <memory>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

// Y = relu(X . W1) . W2 with M rows: both products install-bound and cut over the planes.
ir::Graph chain(int64_t M, int64_t K, int64_t H, int64_t N) {
  ir::Graph g;
  g.name = "run_order";
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {M, K});
  const ir::TensorId w1 = g.add_constant("W1", ir::DType::F16, {K, H}, f16_bytes(random_f16(K * H, -0.05f, 0.05f, 3)));
  const ir::TensorId w2 = g.add_constant("W2", ir::DType::F16, {H, N}, f16_bytes(random_f16(H * N, -0.05f, 0.05f, 4)));
  const ir::TensorId h = g.add_tensor("H", ir::DType::F16, {M, H});
  const ir::TensorId r = g.add_tensor("R", ir::DType::F16, {M, H});
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F32, {M, N});
  g.add_op(make_op(ir::OpKind::MatMul, "mm1", {x, w1}, {h}));
  g.add_op(make_op(ir::OpKind::Relu, "relu", {h}, {r}));
  g.add_op(make_op(ir::OpKind::MatMul, "mm2", {r, w2}, {y}));
  g.mark_output(y);
  return g;
}

}  // namespace

std::vector<uint8_t> run(const CompileResult& cr, const std::vector<float>& x) {
  auto cfg = default_chip_config();
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  bind_input(cr.program, "X", f16_bytes(x), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.predicted_cycles);
  return r.outputs.at("Y");
}

TEST_CASE("matmul run order: the planes take their runs as X is ready where that lands first, same values",
          "[compiler][matmul]") {
  const ir::Graph g = chain(32, 768, 2000, 768);
  auto cfg = default_chip_config();
  const CompileResult a = compile(g, *cfg, CompileOptions{});
  REQUIRE(a.matmul_decisions);
  REQUIRE(a.matmul_decisions->size() == 2u);
  const MatmulDecision& mm1 = (*a.matmul_decisions)[0];
  const MatmulDecision& mm2 = (*a.matmul_decisions)[1];
  CHECK(mm1.pieces.size() == 4u);
  CHECK_FALSE(mm1.ready_order);  // X (a graph input) is all there at once: nothing to reorder
  REQUIRE(mm2.pieces.size() == 4u);
  CHECK(mm2.ready_order);  // mm1's columns land plane by plane, not in column order
  // The same cut with every plane in the cut's order: a longer program.
  auto cut = std::make_shared<std::vector<MatmulDecision>>(*a.matmul_decisions);
  for (MatmulDecision& d : *cut) d.ready_order = false;
  CompileOptions o;
  o.matmul_replay = cut;
  const CompileResult b = compile(g, *cfg, o);
  CHECK_FALSE((*b.matmul_decisions)[1].ready_order);
  CHECK(b.predicted_cycles > a.predicted_cycles);
  // Each run keeps its k order and partial index: the f32 sums are the same, bit for bit.
  const std::vector<float> x = random_f16(32 * 768, -1.f, 1.f, 5);
  CHECK(run(a, x) == run(b, x));
}
