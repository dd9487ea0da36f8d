// Matmul decision replay (backend/matmul_kernel.h MatmulDecision, CompileOptions::matmul_replay): a
// compile records each product's timing-dependent plan (the balanced cut's pieces per plane, which
// fix how fp16 partial sums are rounded); another compile of the same model, e.g. `lpusim check`'s
// keep_intermediates program whose SRAM placement and timing differ, takes them and computes
// bit-identical values. Checked: the decisions recorded and replayed, bit-identical outputs,
// a replayed cut that differs from the compile's own choice is obeyed (predicted == simulated), and
// a decision list that does not match the model is a logic_error. A balanced cut's run order
// (MatmulDecision::ready_order): taken where it lands first; replaying the cut's order instead
// gives a longer program with bit-identical values (each run keeps its k order and partial index).
// At int8 (exact i32 sums) the ready order also takes each run's own k-tiles as their X columns
// land: an FFN-shaped int8 pair, whose down projection's runs start on columns its up projection
// finishes late, gets a shorter program than the cut's order with bit-identical outputs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <stdexcept>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/quantize.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

// Y = relu(X . W1) . W2 with M rows (install-bound: each product's tiles are cut over the planes).
ir::Graph decode_graph(int64_t K, int64_t H, int64_t N, int64_t M = 1) {
  ir::Graph g;
  g.name = "replay";
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

std::vector<uint8_t> run(const CompileResult& cr, const std::vector<float>& x) {
  auto cfg = default_chip_config();
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  if (cr.quant && cr.quant->i8_inputs.count("X") != 0) {  // int8: the host quantizes X
    const ref::Value v = ref::Value::floats({static_cast<int64_t>(x.size())}, x, ir::DType::F16);  // bytes in row order
    bind_input(cr.program, "X", quantize_host_input(v, cr.quant->i8_inputs.at("X")).to_bytes(), &so.inputs);
  } else {
    bind_input(cr.program, "X", f16_bytes(x), &so.inputs);
  }
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  return gather_output(cr.program, "Y", r.outputs);
}

bool same(const std::vector<MatmulDecision>& a, const std::vector<MatmulDecision>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].row_cut != b[i].row_cut || a[i].pieces != b[i].pieces || a[i].ready_order != b[i].ready_order)
      return false;
  return true;
}

}  // namespace

TEST_CASE("matmul replay: the keep_intermediates compile takes the recorded cuts, bit-identical values",
          "[compiler][replay]") {
  const ir::Graph g = decode_graph(1376, 1400, 700);
  auto cfg = default_chip_config();
  const CompileResult a = compile(g, *cfg, CompileOptions{});
  REQUIRE(a.matmul_decisions);
  REQUIRE(a.matmul_decisions->size() == 2u);
  for (const MatmulDecision& d : *a.matmul_decisions) {  // both products cut over every plane
    CHECK_FALSE(d.row_cut);
    CHECK(d.pieces.size() == 4u);
  }
  CompileOptions k;
  k.keep_intermediates = true;
  k.matmul_replay = a.matmul_decisions;
  const CompileResult b = compile(g, *cfg, k);
  CHECK(same(*b.matmul_decisions, *a.matmul_decisions));
  const std::vector<float> x = random_f16(1376, -1.f, 1.f, 5);
  CHECK(run(b, x) == run(a, x));
}

TEST_CASE("matmul replay: a replayed cut other than the compile's own is obeyed", "[compiler][replay]") {
  const ir::Graph g = decode_graph(1376, 1400, 700);
  auto cfg = default_chip_config();
  const CompileResult a = compile(g, *cfg, CompileOptions{});
  // The planes' pieces rotated: plane i runs what plane i + 1 ran.
  auto rotated = std::make_shared<std::vector<MatmulDecision>>(*a.matmul_decisions);
  for (MatmulDecision& d : *rotated) std::rotate(d.pieces.begin(), d.pieces.begin() + 1, d.pieces.end());
  CompileOptions o;
  o.matmul_replay = rotated;
  const CompileResult b = compile(g, *cfg, o);
  CHECK(same(*b.matmul_decisions, *rotated));
  CHECK_FALSE(same(*b.matmul_decisions, *a.matmul_decisions));
  run(b, random_f16(1376, -1.f, 1.f, 6));  // the rotated program runs: predicted == simulated (inside run)
}

TEST_CASE("matmul replay: decisions that do not match the model are a logic_error", "[compiler][replay]") {
  const ir::Graph g = decode_graph(1376, 1400, 700);
  auto cfg = default_chip_config();
  CompileOptions o;
  o.matmul_replay = std::make_shared<std::vector<MatmulDecision>>();  // none recorded
  CHECK_THROWS_AS(compile(g, *cfg, o), std::logic_error);
  const CompileResult a = compile(g, *cfg, CompileOptions{});
  auto no_cut = std::make_shared<std::vector<MatmulDecision>>(*a.matmul_decisions);
  (*no_cut)[0].pieces.clear();  // a balanced product replayed without its cut
  o.matmul_replay = no_cut;
  CHECK_THROWS_AS(compile(g, *cfg, o), std::logic_error);
}

TEST_CASE("matmul run order: the planes take their runs as X is ready where that lands first, same values",
          "[compiler][matmul]") {
  const ir::Graph g = decode_graph(768, 2000, 768, 32);
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
  CHECK(b.program.predicted_cycles > a.program.predicted_cycles);
  // Each run keeps its k order and partial index: the f32 sums are the same, bit for bit.
  const std::vector<float> x = random_f16(32 * 768, -1.f, 1.f, 5);
  CHECK(run(a, x) == run(b, x));
}

TEST_CASE("matmul run order: int8 runs also take their own k-tiles as X lands, bit-identical values",
          "[compiler][matmul][int8]") {
  const int64_t M = 128, K = 768, H = 3072, N = 768;  // BERT-base's FFN shape at 128 tokens
  const ir::Graph g = decode_graph(K, H, N, M);
  auto cfg = default_chip_config();
  const std::vector<float> x = random_f16(M * K, -1.f, 1.f, 7);
  CompileOptions o;
  o.precision = Precision::INT8;
  o.calibration = {{ref::Value::floats({M, K}, x, ir::DType::F16)}};
  const CompileResult a = compile(g, *cfg, o);
  REQUIRE(a.quant);
  REQUIRE(a.quant->int8_layers == 2);
  REQUIRE(a.matmul_decisions);
  REQUIRE(a.matmul_decisions->size() == 2u);
  const MatmulDecision& mm2 = (*a.matmul_decisions)[1];
  REQUIRE(mm2.pieces.size() == 4u);
  CHECK(mm2.ready_order);
  // Some plane runs k-tiles of one column tile out of k order (mm1's planes finish its columns,
  // mm2's k-tiles, plane by plane).
  REQUIRE(mm2.tile_order.size() == 4u);
  bool out_of_order = false;
  for (const auto& plane : mm2.tile_order)
    for (size_t i = 1; i < plane.size(); ++i)
      out_of_order = out_of_order || (plane[i].nt == plane[i - 1].nt && plane[i].kt < plane[i - 1].kt);
  CHECK(out_of_order);
  // The same cuts in the cut's order (runs and their k-tiles): longer, and the same i32 sums.
  auto cut = std::make_shared<std::vector<MatmulDecision>>(*a.matmul_decisions);
  for (MatmulDecision& d : *cut) d.ready_order = false;
  CompileOptions ob = o;
  ob.quant = a.quant;
  ob.matmul_replay = cut;
  const CompileResult b = compile(g, *cfg, ob);
  CHECK_FALSE((*b.matmul_decisions)[1].ready_order);
  CHECK(b.program.predicted_cycles > a.program.predicted_cycles);
  CHECK(run(a, x) == run(b, x));
}
