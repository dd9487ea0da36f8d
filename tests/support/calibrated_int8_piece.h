// The set-up shared by the int8 step-by-step tests of attention prefill pieces (packed heads,
// paired heads, V's ones column): the piece compiled int8 as the LLM system compiles it
// (system::piece_compile_options) with real calibration, simulated functionally on one input, and
// lowered as compile() lowered it, with its quantized copies, ready for compiler::verify_int8_steps.
#pragma once
#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "tests/support/f16_data.h"

namespace lpu::test {

struct CalibratedInt8Piece {
  const ir::Graph& g;
  compiler::CompileResult cr;
  sim::SimResult r;
  compiler::LoweredModel lm;        // as compile() lowered it, with apply_quant_copies
  std::vector<ref::Value> inputs;   // the simulated input (uniform in [-2, 2], f16 values)
  compiler::Int8StepCheck check() const {
    return compiler::verify_int8_steps(g, lm, *cr.quant, inputs, cr.program, r.outputs);
  }
};

// g: a piece with one [rows, width] input. Calibrated on the simulated input (seed) and one more
// (seed + 1); `tweak` adjusts the options first (e.g. pair_trial). REQUIREs a quantization plan.
inline CalibratedInt8Piece calibrated_int8_piece(const ir::Graph& g, uint32_t seed,
                                                 const std::function<void(compiler::CompileOptions&)>& tweak = {}) {
  auto chip = default_chip_config();
  compiler::CompileOptions co = system::piece_compile_options(llm::WeightPrecision::INT8);
  co.int8.timing_only = false;
  co.keep_intermediates = true;
  if (tweak) tweak(co);
  const ir::Tensor& xt = g.tensor(g.inputs()[0]);
  const ir::Shape xs = xt.shape;
  auto input = [&](uint32_t s) {
    return std::vector<ref::Value>{
        ref::Value::floats(xs, random_f16(ir::num_elements(xs), -2.f, 2.f, s), ir::DType::F32)};
  };
  CalibratedInt8Piece p{g, {}, {}, {}, input(seed)};
  co.calibration = {p.inputs, input(seed + 1)};
  p.cr = compiler::compile(g, *chip, co);
  REQUIRE(p.cr.quant);
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  compiler::bind_input(p.cr.program, xt.name, f16_bytes(p.inputs[0].f), &so.inputs);
  p.r = sim::simulate(p.cr.program, *chip, so);
  p.lm = compiler::lower_graph(g, chip->vector_bytes(), p.cr.lower);
  compiler::apply_quant_copies(g, *p.cr.quant, &p.lm);
  return p;
}

}  // namespace lpu::test
