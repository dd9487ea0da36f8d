// A chip without the transposed install (mxm.transposed_install: false, chip config): the [assumed]
// `iwt` is a chip capability an architect can turn off. The compiler then stores narrow weight
// tiles untransposed (no `iwt`, every valid row loaded) with the same values and predicted ==
// simulated; a product whose weights are an activation read transposed (attention's K^T, a
// Transpose) has no other lowering and is refused with an InputError naming the step and the
// field; a program holding `iwt` is refused by such a chip's simulator, naming the instruction.
#include <catch2/catch.hpp>

#include <algorithm>

#include "compiler/compile.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/capability_refusal.h"
#include "tests/support/chip_variant.h"
#include "tests/support/gemm_check.h"
#include "tests/support/issued_count.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;

namespace {

std::shared_ptr<const ChipConfig> chip_without_iwt() {
  auto c = test::chip_variant("transposed_install: true", "transposed_install: false", "no-iwt");
  REQUIRE_FALSE(c->mxm_transposed_install);
  return c;
}

}  // namespace

TEST_CASE("no transposed install: narrow tiles load every row, no iwt, same values, predicted == simulated",
          "[compiler][narrow]") {
  const auto no_iwt = chip_without_iwt();
  const int64_t lanes = no_iwt->vector_bytes();
  struct S { int64_t M, K, N; };
  uint32_t seed = 41;
  for (const S& s : {S{40, 400, 100}, S{1, 4096, 1376}})
    for (Precision p : {Precision::INT8, Precision::FP16}) {
      INFO(s.M << "x" << s.K << "x" << s.N << (p == Precision::INT8 ? " int8" : " fp16"));
      // The compiler option is left on: the chip's capability decides.
      const CompileResult off = test::check_gemm_values(s.M, s.K, s.N, p, seed, true, no_iwt);
      const CompileResult on = test::check_gemm_values(s.M, s.K, s.N, p, seed++, true);
      uint64_t lw_rows = 0;
      for (int64_t k0 = 0; k0 < s.K; k0 += lanes)
        for (int64_t n0 = 0; n0 < s.N; n0 += lanes) lw_rows += static_cast<uint64_t>(std::min(lanes, s.K - k0));
      CHECK(off.stats.lw == lw_rows);
      CHECK(on.stats.lw < lw_rows);
      CHECK(test::issued_count(off.program, Opcode::InstWT) == 0);
      CHECK(test::issued_count(on.program, Opcode::InstWT) > 0);
      if (s.M == 1) CHECK(off.program.predicted_cycles > on.program.predicted_cycles);  // install-bound: more lw, later
      // tsp-v1's program (it holds iwt) is refused by the chip without the capability.
      test::check_sim_refuses(on.program, *no_iwt, "iwt", "mxm.transposed_install: false");
    }
}

TEST_CASE("no transposed install: A . Transpose(B) of activations is refused naming the step and the field",
          "[compiler][narrow]") {
  ir::Graph g;
  g.name = "act_mm_t";
  const ir::TensorId a = g.add_input("A", ir::DType::F16, {16, 32});
  const ir::TensorId b = g.add_input("B", ir::DType::F16, {24, 32});
  const ir::TensorId bt = g.add_tensor("Bt", ir::DType::F16, {32, 24});
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {16, 24});
  g.add_op(make_op(ir::OpKind::Transpose, "tr", {b}, {bt}, {{"perm", std::vector<int64_t>{1, 0}}}));
  g.add_op(make_op(ir::OpKind::MatMul, "mm", {a, bt}, {y}));
  g.mark_output(y);
  CHECK_NOTHROW(compile(g, *default_chip_config(), CompileOptions{}));
  try {
    compile(g, *chip_without_iwt(), CompileOptions{});
    FAIL("compiled A . B^T for a chip without the transposed install");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Catch::Matchers::Contains("mm") && Catch::Matchers::Contains("no-iwt") &&
                             Catch::Matchers::Contains("mxm.transposed_install: false"));
  }
}
