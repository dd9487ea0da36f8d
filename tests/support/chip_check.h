// One check for compiler tests: compile a graph for tsp-v1, simulate it in timing and functional
// mode (both must measure the predicted cycles), and compare every graph output with the reference
// interpreter within twice its running error bound (ref::run_with_error_bound; every bound must be
// finite). Inputs are f16-exact values in graph-input order; the host layout of conv inputs and
// outputs (passes/lower_conv.h: to_chip_input, from_chip_output) is applied, identity elsewhere.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/error_bound.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/f16_data.h"

namespace lpu::test {

// Returns the predicted cycles. `opt`: the compile's options (its lowering options also give the
// host layout).
inline uint64_t check_chip_against_reference(const ir::Graph& g, const std::vector<std::vector<float>>& inputs,
                                             const compiler::CompileOptions& opt = {}) {
  using namespace lpu::compiler;
  auto cfg = default_chip_config();
  const CompileResult cr = compile(g, *cfg, opt);
  // The host layout (to_chip_input) of the lowering compile() kept (its trials may have changed it).
  const LoweredModel lm = lower_graph(g, cfg->vector_bytes(), cr.lower);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, *cfg, so).cycles == cr.program.predicted_cycles);
  so.mode = sim::Mode::Functional;
  std::vector<ref::Value> rin;
  for (size_t i = 0; i < g.inputs().size(); ++i) {
    const ir::Tensor& t = g.tensor(g.inputs()[i]);
    rin.push_back(ref::Value::floats(t.shape, inputs[i], t.dtype));
    bind_input(cr.program, t.name, f16_bytes(to_chip_input(lm.inputs[i], inputs[i])), &so.inputs);
  }
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  std::vector<ref::Value> bounds;
  const std::vector<ref::Value> want = ref::run_with_error_bound(g, rin, &bounds);
  for (size_t o = 0; o < g.outputs().size(); ++o) {
    const ir::Tensor& t = g.tensor(g.outputs()[o]);
    const std::vector<uint8_t> bytes = gather_output(cr.program, t.name, r.outputs);
    REQUIRE(bytes.size() == static_cast<size_t>(t.elements()) * 4);
    std::vector<double> chip(bytes.size() / 4);
    for (size_t k = 0; k < chip.size(); ++k) {
      float f;
      std::memcpy(&f, &bytes[k * 4], 4);
      chip[k] = f;
    }
    const std::vector<double> got = from_chip_output(lm, g, g.outputs()[o], chip);
    int64_t bad = 0, unbounded = 0;
    for (int64_t k = 0; k < t.elements(); ++k) {
      const double y = got[static_cast<size_t>(k)];
      const double b = bounds[o].f[static_cast<size_t>(k)];
      if (!std::isfinite(b)) ++unbounded;
      if (!(std::fabs(y - want[o].f[static_cast<size_t>(k)]) <= 2 * b)) {
        if (bad < 3)
          UNSCOPED_INFO(t.name << "[" << k << "] = " << y << ", reference " << want[o].f[static_cast<size_t>(k)]
                                << " +- " << 2 * b);
        ++bad;
      }
    }
    CHECK(bad == 0);
    CHECK(unbounded == 0);
  }
  return cr.program.predicted_cycles;
}

}  // namespace lpu::test
