// A MaxPool that takes its producer's Relu (passes/lower_conv.cpp lower_pool): a conv + Relu read
// only by a MaxPool stores its values before the Relu and the pool applies it once per pooled
// vector. Checked: the lowering moved the Relu (and does not when the Relu output has another
// reader), the pooled values are bit-identical to the unmoved program's and within the reference
// bound, predicted == simulated, and the VXM does fewer ops.
#include <catch2/catch.hpp>

#include <cmath>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

// X [1, 8, 10, 10] -> conv 3x3 (16 channels, bias of both signs) -> Relu -> R -> MaxPool 3x3 /2
// pad 1 -> Y [1, 16, 5, 5] (f32 output; 5 rows, odd: no row pairs, test_pool_pairs.cpp); with `keep_r`, R also feeds a GlobalAveragePool -> G (a second reader:
// R stays a stored f16 tensor, as in the moved program, so the two pools see the same roundings).
ir::Graph pool_graph(bool keep_r) {
  ir::Graph g;
  g.name = keep_r ? "pool_relu_kept" : "pool_relu";
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {1, 8, 10, 10});
  const ir::TensorId w = g.add_constant("W", ir::DType::F16, {16, 8, 3, 3}, f16_bytes(random_f16(16 * 8 * 9, -0.2f, 0.2f, 31)));
  const ir::TensorId b = g.add_constant("B", ir::DType::F16, {16}, f16_bytes(random_f16(16, -0.5f, 0.5f, 32)));
  const ir::TensorId p = g.add_tensor("P", ir::DType::F16, {1, 16, 10, 10});
  g.add_op(make_op(ir::OpKind::Conv, "conv", {x, w, b}, {p},
                   {{"kernel_shape", std::vector<int64_t>{3, 3}}, {"strides", std::vector<int64_t>{1, 1}},
                    {"pads", std::vector<int64_t>{1, 1, 1, 1}}, {"group", int64_t{1}}}));
  const ir::TensorId r = g.add_tensor("R", ir::DType::F16, {1, 16, 10, 10});
  g.add_op(make_op(ir::OpKind::Relu, "relu", {p}, {r}));
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F32, {1, 16, 5, 5});
  g.add_op(make_op(ir::OpKind::MaxPool, "pool", {r}, {y},
                   {{"kernel_shape", std::vector<int64_t>{3, 3}}, {"strides", std::vector<int64_t>{2, 2}},
                    {"pads", std::vector<int64_t>{1, 1, 1, 1}}}));
  g.mark_output(y);
  if (keep_r) {
    const ir::TensorId a = g.add_tensor("G", ir::DType::F32, {1, 16, 1, 1});
    g.add_op(make_op(ir::OpKind::GlobalAveragePool, "gap", {r}, {a}));
    g.mark_output(a);
  }
  return g;
}

const LoweredEltwise* pool_step(const LoweredModel& lm) {
  for (const LoweredEltwise& E : lm.eltwise)
    if (E.name == "pool.max") return &E;
  return nullptr;
}

std::vector<uint8_t> run_y(const ir::Graph& g, const std::vector<float>& x, CompileResult* cr) {
  auto cfg = default_chip_config();
  *cr = compile(g, *cfg, CompileOptions{});
  const LoweredModel lm = lower_graph(g);
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  bind_input(cr->program, "X", f16_bytes(to_chip_input(lm.inputs[0], x)), &so.inputs);
  const sim::SimResult r = sim::simulate(cr->program, *cfg, so);
  CHECK(r.cycles == cr->program.predicted_cycles);
  return gather_output(cr->program, "Y", r.outputs);
}

}  // namespace

TEST_CASE("pool relu: a MaxPool takes its conv's Relu, with bit-identical pooled values", "[compiler][conv]") {
  const ir::Graph moved = pool_graph(false), kept = pool_graph(true);
  {
    const LoweredModel lm = lower_graph(moved);
    REQUIRE(lm.layers.size() == 1);
    CHECK_FALSE(lm.layers[0].relu);
    CHECK(lm.layers[0].y != moved.find("R"));  // the values before the Relu, a lowering tensor
    const LoweredEltwise* E = pool_step(lm);
    REQUIRE(E);
    CHECK(E->relu);
    CHECK(E->operands[0].act == lm.layers[0].y);
  }
  {
    const LoweredModel lm = lower_graph(kept);  // R has a second reader: the conv keeps its Relu
    REQUIRE(lm.layers.size() == 1);
    CHECK(lm.layers[0].relu);
    const LoweredEltwise* E = pool_step(lm);
    REQUIRE(E);
    CHECK_FALSE(E->relu);
  }
  const std::vector<float> x = random_f16(8 * 10 * 10, -2.f, 2.f, 33);
  CompileResult cm, ck;
  const std::vector<uint8_t> ym = run_y(moved, x, &cm), yk = run_y(kept, x, &ck);
  REQUIRE(ym.size() == static_cast<size_t>(16 * 5 * 5 * 4));
  CHECK(ym == yk);
  int64_t zeros = 0;  // the Relu did something: some pooled windows are all negative before it
  for (size_t k = 0; k < ym.size(); k += 4) zeros += ym[k] == 0 && ym[k + 1] == 0 && ym[k + 2] == 0 && ym[k + 3] == 0;
  CHECK(zeros > 0);
  // The conv's epilogue lost its relu (one VXM op per conv output row: 10 x 10) and the pool
  // gained one per pooled vector (5 x 5).
  auto vxm_of = [](const CompileResult& c, const std::string& step) {
    for (const StepSpan& sp : c.spans)
      if (sp.name == step) return static_cast<int64_t>(sp.vxm);
    FAIL("no step " << step);
    return int64_t{0};
  };
  CHECK(vxm_of(cm, "conv") == vxm_of(ck, "conv") - 100);
  CHECK(vxm_of(cm, "pool.max") == vxm_of(ck, "pool.max") + 25);
  test::check_chip_against_reference(moved, {x});
}
