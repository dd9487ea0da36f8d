// int8 conv nets: a graph input that only int8 convs read is quantized by the host after it lays the
// input out for the chip (LoweredInput::host_map: a stem conv's im2col rows, or NHWC), instead of an
// on-chip quantized copy (passes/quantize.h). Checked: the plan (the input in i8_inputs, no copy),
// predicted == simulated, and the stem conv within the int8 bound on the host-quantized values
// (compiler/reference/int8_step_check.h).
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <string>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/cli.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"
#include "tests/support/process.h"
#include "tests/support/int8_verdicts.h"
#include "tests/support/stem_net.h"

using namespace lpu;
using namespace lpu::compiler;

using lpu::test::stem_net;

TEST_CASE("int8 host input: a conv input read only by int8 convs is quantized by the host in its chip layout",
          "[conv][int8]") {
  const int64_t H = 14, W = 13, M = 16;
  const ir::Graph g = stem_net(H, W, M);
  auto cfg = default_chip_config();
  const CompileResult cr = lpu::test::compile_stem_int8(g, H, W, *cfg);
  REQUIRE(cr.quant);
  const QuantPlan& q = *cr.quant;
  REQUIRE(q.i8_inputs.count("X"));
  CHECK(q.copies.empty());  // no on-chip copy of the input
  LoweredModel lm = lower_graph(g);
  apply_quant_copies(g, q, &lm);
  REQUIRE(lm.inputs.size() == 1);
  CHECK_FALSE(lm.inputs[0].host_map.empty());
  CHECK(lm.inputs[0].shape == ir::Shape{((H - 1) / 2 + 1) * ((W - 1) / 2 + 1), 9 * 3});  // im2col rows
  for (size_t i = 0; i < lm.layers.size(); ++i) CHECK(q.layers[i].int8);
  // The host: layout first (floats), then quantization element by element (padding 0 stays 0).
  const std::vector<float> x = lpu::test::stem_input(H, W, 62);
  const sim::SimResult r = lpu::test::run_stem(cr, lm, x, *cfg);
  CHECK(r.cycles == cr.program.predicted_cycles);
  const Int8StepCheck ck = verify_int8_steps(g, lm, q, {lpu::test::stem_value(H, W, x)}, cr.program, r.outputs);
  lpu::test::require_int8_steps_ok(ck, 2);
  // A wrong scale on the host side is caught: the stem's values leave the bound.
  const sim::SimResult rb = lpu::test::run_stem(cr, lm, x, *cfg, 2.f);
  CHECK_FALSE(verify_int8_steps(g, lm, q, {lpu::test::stem_value(H, W, x)}, cr.program, rb.outputs).ok());
}

TEST_CASE("int8 host input: check --precision int8 passes on the committed cnn (its input host-quantized)",
          "[conv][int8]") {
  char tmpl[] = "/tmp/lpusim_int8_host_XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = std::string(LPU_SOURCE_DIR) + "/workloads/models/cnn/";
  const ProcessResult r = run_process(lpusim_exe(), {"check", dir + "model.onnx", dir + "test_data_set_0",
                                                     "--precision", "int8"},
                                      std::string(tmpl) + "/out.txt", std::chrono::seconds(60), Stderr::ToOutput);
  INFO(r.output);
  CHECK(!r.timed_out);
  CHECK(r.status == 0);
  CHECK(r.output.find("(matches prediction)") != std::string::npos);
  CHECK(r.output.find("int8 layer '/c1/Conv'") != std::string::npos);  // the stem, on the host-quantized input
  CHECK(r.output.find(".i8") == std::string::npos);                     // no quantized copy of the input
  CHECK(r.output.find("-> FAIL") == std::string::npos);
  CHECK(r.output.find("check passed") != std::string::npos);
}
