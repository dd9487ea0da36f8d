// LayerNormalization without a centring pass (passes/lower_norm.cpp, backend/lane_kernel.h): the
// `.sd` lane step reads x and the row mean and subtracts the mean from each widened chunk itself
// (before the pad-lane mask and the square), and `.norm` is ONE pass (x - mean) / sd * Scale (+ B).
// The f32 operations and their order are those of the former four-step form (`.mean`, `.center`
// writing d = x - mean as f32, `.sd` over d, `.norm` over d), so the output is bit-identical to it:
// checked against FNV-1a hashes of the output bytes recorded from that form (commit ca55dfb) for
// fixed seeds, besides the usual predicted == simulated and reference-bound check. The hashes are
// taken on a chip without the fused multiply-add (the four-step form's `mul` then `add`; with it,
// * Scale + B is one `fma`, tests/compiler/test_fma.cpp).
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lowering.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/chip_variant.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"
#include "tests/support/layer_norm_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

// y = LayerNorm(x) over the last axis of x [R, K] f16 (eps 1e-5), seeded gamma (and beta).
ir::Graph ln_graph(int64_t R, int64_t K, bool has_b) {
  ir::Graph g;
  g.name = "ln";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {R, K});
  g.mark_output(test::add_layer_norm(g, x, R, K, 0.5f, has_b, "y"));
  return g;
}

// x: uniform in [-2, 2], or (offset) 1000 plus a small spread (a large mean against the spread:
// f16 values in [992, 1008]).
std::vector<float> ln_input(int64_t R, int64_t K, bool offset) {
  return offset ? random_f16(R * K, 992.f, 1008.f, 7) : random_f16(R * K, -2.f, 2.f, 5);
}

// FNV-1a 64 of the simulated (functional) output bytes.
uint64_t output_hash(const ir::Graph& g, const std::vector<float>& x) {
  auto cfg = test::chip_without_fma();
  const CompileResult cr = compile(g, *cfg, CompileOptions{});
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  bind_input(cr.program, "x", f16_bytes(x), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  const std::vector<uint8_t> bytes = gather_output(cr.program, "y", r.outputs);
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : bytes) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

struct Case {
  int64_t R, K;
  bool has_b, offset;
  uint64_t hash;  // output bytes of the four-step form (ca55dfb)
};

}  // namespace

TEST_CASE("layernorm center fusion: no centring pass, output bit-identical to the four-step form",
          "[layernorm][lane]") {
  // K = 768: three chunks of 320 lanes, pad lanes in the last; K = 320: one chunk, no pad lanes;
  // K = 100: one chunk with pads.
  const std::vector<Case> cases = {
      {128, 768, true, false, 10126253094379180828ull}, {1, 768, true, false, 3087005529540910059ull},
      {128, 320, true, false, 9389370730430343963ull},  {1, 100, true, false, 6063464090473995153ull},
      {128, 100, false, false, 15492396560548552442ull}, {128, 768, false, true, 1046066327200610724ull},
      {1, 320, false, true, 5164385868474354034ull},
  };
  for (const Case& c : cases) {
    INFO("R " << c.R << " K " << c.K << (c.has_b ? " with B" : " without B") << (c.offset ? " offset rows" : ""));
    const ir::Graph g = ln_graph(c.R, c.K, c.has_b);
    const LoweredModel lm = lower_graph(g);
    for (const LoweredEltwise& e : lm.eltwise) CHECK(e.name.find(".center") == std::string::npos);
    const std::vector<float> x = ln_input(c.R, c.K, c.offset);
    lpu::test::check_chip_against_reference(g, {x});
    const uint64_t h = output_hash(g, x);
    CHECK(h == c.hash);
  }
}

TEST_CASE("layernorm center fusion: the 128 x 768 LayerNorm takes fewer cycles than the four-step form",
          "[layernorm][lane]") {
  const ir::Graph g = ln_graph(128, 768, true);
  auto cfg = default_chip_config();
  const CompileResult cr = compile(g, *cfg, CompileOptions{});
  // ca55dfb (mean, centre pass, sd over the centred f32 tensor, norm): 1946 cycles.
  CHECK(cr.program.predicted_cycles < 1946u);
}
