// End to end on the example model: workloads/models/mlp/model.onnx is imported, compiled for fp16,
// simulated (timing and functional), and its output compared with the ONNX test data's expected
// output (computed by the exporter in f32) within the derived bounds of compiler/reference/fp16_bound.h:
// the documented per-layer n * 2^-11 * sum|a_i w_i| propagated, and the tighter first-order rounding
// bound of the fp16 data path; and the same argmax.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "compiler/compile.h"
#include "compiler/frontends/onnx_import.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/fp16_bound.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;
using namespace lpu::compiler;

TEST_CASE("compile: MLP example ONNX model runs on the simulator as predicted and matches its test data") {
  const std::string dir = std::string(LPU_SOURCE_DIR) + "/workloads/models/mlp/";
  const ir::Graph g = frontend::import_onnx(dir + "model.onnx");
  const ref::Value in = frontend::load_onnx_tensor_file(dir + "test_data_set_0/input_0.pb");
  const ref::Value expect = frontend::load_onnx_tensor_file(dir + "test_data_set_0/output_0.pb");
  auto cfg = default_chip_config();
  const CompileResult cr = compile(g, *cfg, CompileOptions{});
  CHECK(cr.program.work_items == static_cast<uint64_t>(in.shape[0]));

  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, *cfg, so).cycles == cr.program.predicted_cycles);
  so.mode = sim::Mode::Functional;
  REQUIRE(g.inputs().size() == 1);
  ref::Value in16 = in;
  in16.dtype = ir::DType::F16;  // the chip's inputs are f16 (the host converts)
  bind_input(cr.program, g.tensor(g.inputs()[0]).name, in16.to_bytes(), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  const std::string out_name = g.tensor(g.outputs()[0]).name;
  const std::vector<uint8_t> yb = gather_output(cr.program, out_name, r.outputs);
  REQUIRE(yb.size() == expect.f.size() * 4);

  // Bounds (docs/compiler.md and the first-order one), in double on the f32 values.
  const Fp16Bound fb = fp16_dense_bound(lower_graph(g), in.f, in.shape[0]);
  const std::vector<double>& d = fb.documented;
  const std::vector<double>& f = fb.first_order;
  REQUIRE(d.size() == expect.f.size());
  int64_t bad = 0, bad_tight = 0;
  double worst = 0;
  size_t arg_got = 0, arg_exp = 0;
  std::vector<float> outv(expect.f.size());
  for (size_t i = 0; i < expect.f.size(); ++i) {
    float got;
    std::memcpy(&got, &yb[i * 4], 4);
    outv[i] = got;
    const double err = std::fabs(static_cast<double>(got) - expect.f[i]);
    worst = std::max(worst, err / f[i]);
    if (!(err <= d[i])) ++bad;
    if (!(err <= f[i])) ++bad_tight;
    if (got > outv[arg_got]) arg_got = i;
    if (expect.f[i] > expect.f[arg_exp]) arg_exp = i;
  }
  INFO("worst error / first-order bound = " << worst << ", output[0] = " << outv[0] << " expected " << expect.f[0] << " bound " << f[0]);
  CHECK(bad == 0);
  CHECK(bad_tight == 0);
  CHECK(arg_got == arg_exp);
}
