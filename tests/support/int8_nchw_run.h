// An int8 compile-and-run of a small NCHW graph (input "X" [1, C, H, W]) for the conv tests: every
// dense layer int8 except `fp16_layer` (inputs quantized on chip), calibrated on two seeded inputs,
// lowered with its quantized copies as the compiler lowers it, simulated functionally on the second
// calibration input (cycles must equal the prediction) and checked step by step (verify_int8_steps).
#pragma once
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/f16_data.h"
#include "tests/support/host_input.h"

namespace lpu::test {

struct Int8NchwRun {
  compiler::CompileOptions options;  // the compile's options (keep_intermediates on)
  compiler::CompileResult cr;
  compiler::LoweredModel lm;         // lower_graph + apply_quant_copies
  sim::SimResult run;                // functional, on the input below
  compiler::Int8StepCheck check;
  const compiler::QuantPlan& quant() const { return *cr.quant; }
};

// fuse_copies: Int8Options::fuse_copies (off: every quantized copy a step of its own);
// i8_residuals: Int8Options::i8_residuals; chip: compiled for and simulated on (nullptr: tsp-v1).
inline Int8NchwRun run_int8_nchw(const ir::Graph& g, int64_t C, int64_t H, int64_t W, uint32_t seed0, uint32_t seed1,
                                 const std::string& fp16_layer, bool fuse_copies = true, bool i8_residuals = true,
                                 std::shared_ptr<const ChipConfig> chip = nullptr) {
  auto cfg = chip ? chip : default_chip_config();
  auto value = [&](uint32_t seed) {
    return ref::Value::floats({1, C, H, W}, random_f16(C * H * W, -1.f, 1.f, seed), ir::DType::F16);
  };
  Int8NchwRun o;
  o.options.precision = compiler::Precision::INT8;
  o.options.int8.onchip_quantize = true;
  o.options.int8.layer_filter = [fp16_layer](const std::string& op, const std::string&) { return op != fp16_layer; };
  o.options.calibration = {{value(seed0)}, {value(seed1)}};
  o.options.keep_intermediates = true;
  o.options.int8.fuse_copies = fuse_copies;
  o.options.int8.i8_residuals = i8_residuals;
  // The default layout only (no layout tuning: CompileOptions::tune_part_rows and the refinements
  // tune_whole_tiles, tune_weight_groups): the tests using this count the kernel's per-plane work
  // on that layout.
  o.options.tune_part_rows.clear();
  o.options.tune_whole_tiles = false;
  o.options.tune_weight_groups.clear();
  o.cr = compiler::compile(g, *cfg, o.options);
  REQUIRE(o.cr.quant);
  o.lm = compiler::lower_graph(g, cfg->vector_bytes(), o.cr.lower);  // the lowering compile() kept
  compiler::apply_quant_copies(g, *o.cr.quant, &o.lm);
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  const ref::Value x = value(seed1);
  // X in its chip layout; quantized by the host when only int8 convs read it.
  bind_host_input(o.cr, o.lm.inputs[0], "X", x.f, &so.inputs);
  o.run = sim::simulate(o.cr.program, *cfg, so);
  CHECK(o.run.cycles == o.cr.program.predicted_cycles);
  o.check = compiler::verify_int8_steps(g, o.lm, *o.cr.quant, {x}, o.cr.program, o.run.outputs);
  return o;
}

}  // namespace lpu::test
