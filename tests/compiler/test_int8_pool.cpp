// i8 pools (passes/quantize.h): a MaxPool whose input only int8 convs write (ResNet's stem, the
// Relu moved into the pool) reads that input as i8 stored with the POOL OUTPUT's scale, and runs on
// the i8 values (`max.i8`, `relu.i8`; backend/elementwise_kernel.h same_i8_scale) instead of
// widening f16 values, scaling and narrowing. Checked: the plan (the stem's output i8 with the
// pool's scale), the pool's VXM ops (9 a pooled vector: the Relu and 8 max, all i8), predicted ==
// simulated, the pooled bytes equal the max of the stem's stored bytes (then relu) exactly, and the
// per-step int8 check passes with a pool bound of a few quantization steps although stem values
// below -127 s saturate (compiler/reference/int8_bound.h relu_after).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/chip_stored.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/f16_data.h"
#include "tests/support/int8_verdicts.h"
#include "tests/support/issued_count.h"
#include "tests/support/stem_net.h"

using namespace lpu;
using namespace lpu::compiler;

TEST_CASE("int8 pool: a MaxPool after an int8 stem runs on the stem's i8 values, bit-exact", "[conv][int8][pool]") {
  const int64_t H = 14, W = 13, M = 16, H1 = 7, W1 = 7, H2 = 4, W2 = 4;
  // Mostly negative biases: stem values lie below the pooled range (-127 s) and saturate in i8.
  const ir::Graph g = lpu::test::stem_net(H, W, M, -4.f, 0.5f);
  auto cfg = default_chip_config();
  const CompileResult cr = lpu::test::compile_stem_int8(g, H, W, *cfg);
  REQUIRE(cr.quant);
  const QuantPlan& q = *cr.quant;
  const LoweredModel lm = lpu::test::lower_with_copies(g, q);
  size_t si = lm.layers.size();
  for (size_t i = 0; i < lm.layers.size(); ++i)
    if (lm.layers[i].name == "stem") si = i;
  REQUIRE(si < lm.layers.size());
  const ir::TensorId src = lm.layers[si].y, P = g.find("P");
  REQUIRE(static_cast<size_t>(src) >= g.tensors().size());  // the values before the Relu, a lowering tensor
  REQUIRE(q.i8_tensors.count(src));
  REQUIRE(q.i8_tensors.count(P));
  CHECK(q.i8_tensors.at(src) == q.i8_tensors.at(P));  // the pool output's scale
  CHECK(q.layers[si].y_int8);
  CHECK(q.copies.empty());
  // The pool: one `relu.i8` and 8 `max.i8` per pooled vector (16 pixels x 16 channels: one vector
  // each) and nothing else: no `muli` anywhere (the f16 pool scales each vector by 1 / s before its
  // `cvt` to i8; the stem's scale is folded into its epilogue rows), and no `mov` (the Relu runs on
  // the first tap and every further tap is read when its `max` issues, so no two taps in one slice
  // are read on one cycle: backend/elementwise_kernel.cpp relu_first).
  int64_t pool_vxm = -1;
  for (const StepSpan& sp : cr.spans)
    if (sp.name == "pool.max") pool_vxm = static_cast<int64_t>(sp.vxm);
  CHECK(pool_vxm == 9 * H2 * W2);
  CHECK(lpu::test::issued_count(cr.program, Opcode::Mov) == 0);
  CHECK(lpu::test::issued_count(cr.program, Opcode::MulImm) == 0);
  auto i8_issues = [&](Opcode op) {
    return lpu::test::issued_count(cr.program, [op](const Instr& in) {
      return in.op == op && static_cast<DType>(in.get(Field::DType)) == DType::I8;
    });
  };
  CHECK(i8_issues(Opcode::Max) == static_cast<uint64_t>(8 * H2 * W2));
  CHECK(i8_issues(Opcode::Relu) == static_cast<uint64_t>(H2 * W2));

  const std::vector<float> x = lpu::test::stem_input(H, W, 62);
  const sim::SimResult r = lpu::test::run_stem(cr, lm, x, *cfg);
  CHECK(r.cycles == cr.program.predicted_cycles);
  // Pooled bytes = relu(max of the stem's stored bytes over the window), exactly.
  const ChipStored s8 = chip_stored(cr.program, lm.tensor(g, src).name, r.outputs, 1.0);
  const ChipStored p8 = chip_stored(cr.program, g.tensor(P).name, r.outputs, 1.0);
  REQUIRE(s8.rows == H1 * W1);
  REQUIRE(p8.rows == H2 * W2);
  int64_t saturated = 0, differ = 0;
  for (double v : s8.v) saturated += v == -127.0 ? 1 : 0;
  const std::vector<double> want = lpu::test::pool_relu_reference(
      H1, W1, H2, W2, M, [&](int64_t ih, int64_t iw, int64_t c) { return s8.v[static_cast<size_t>((ih * W1 + iw) * M + c)]; });
  REQUIRE(p8.v.size() == want.size());
  for (size_t k = 0; k < want.size(); ++k) differ += p8.v[k] != want[k] ? 1 : 0;
  CHECK(differ == 0);
  CHECK(saturated > 0);  // the case the relu-aware bound is for
  const Int8StepCheck ck = verify_int8_steps(g, lm, q, {lpu::test::stem_value(H, W, x)}, cr.program, r.outputs);
  lpu::test::check_int8_steps_ok(ck);
  // The pool's chained input bound is relu-aware: a few quantization steps, although the stem's own
  // (strict) bound, which counts the saturated values' distance to -127 s, is many steps.
  const double s = q.i8_tensors.at(P);
  double stem_bound = 0;
  for (const Int8LayerVerdict& v : ck.layers)
    if (v.layer == "stem") stem_bound = v.max_bound;
  CHECK(stem_bound > 20 * s);
  bool seen = false;
  for (const ref::StepVerdict& v : ck.steps.steps)
    if (v.op == "pool") {
      seen = true;
      INFO("pool: bound at worst " << v.bound_at_worst << ", scale " << s << ", stem bound " << stem_bound);
      CHECK(v.bound_at_worst < 8 * s);
    }
  CHECK(seen);
}
