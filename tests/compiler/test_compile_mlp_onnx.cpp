// End to end on the example model: workloads/models/mlp/model.onnx is imported, compiled for fp16,
// simulated (timing and functional), and its output compared with the ONNX test data's expected
// output (computed by the exporter in f32) within a derived bound: per layer n * 2^-11 * sum|a_i w_i|
// (docs/compiler.md) plus the previous layer's bound propagated through |W| (relu is 1-Lipschitz);
// and, since that bound is loose, also a first-order rounding bound of the fp16 data path: operands
// rounded to f16 (2 x 2^-11 sum|a w|), f32 accumulation (n 2^-24 sum|a w|), hidden outputs rounded to
// f16 (2^-11 |y|), the previous layer's first-order bound propagated; and the same argmax.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "compiler/compile.h"
#include "compiler/frontends/onnx_import.h"
#include "compiler/passes/lowering.h"
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
  CHECK(sim::simulate(cr.program, *cfg, so).cycles == cr.predicted_cycles);
  so.mode = sim::Mode::Functional;
  std::vector<uint8_t> xb(in.f.size() * 2);
  for (size_t i = 0; i < in.f.size(); ++i) {
    const uint16_t h = ir::f32_to_f16(in.f[i]);
    xb[2 * i] = static_cast<uint8_t>(h & 0xFF);
    xb[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
  REQUIRE(g.inputs().size() == 1);
  so.inputs[g.tensor(g.inputs()[0]).name] = xb;
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.predicted_cycles);
  const std::string out_name = g.tensor(g.outputs()[0]).name;
  REQUIRE(r.outputs.count(out_name) == 1);
  const auto& yb = r.outputs.at(out_name);
  REQUIRE(yb.size() == expect.f.size() * 4);

  // Bound per layer, in double on the f32 values: b_out[j] = n 2^-11 sum_i |a_i w_ij| + sum_i d_i |w_ij|.
  const LoweredModel lm = lower_graph(g);
  const int64_t rows = in.shape[0];
  std::vector<double> a(in.f.begin(), in.f.end()), d(a.size(), 0.0), f(a.size(), 0.0);
  int64_t width = lm.layers.front().K;
  for (const LoweredLayer& L : lm.layers) {
    REQUIRE(L.K == width);
    std::vector<double> na(static_cast<size_t>(rows * L.N)), nd(na.size()), nf(na.size());
    const bool last = &L == &lm.layers.back();
    for (int64_t m = 0; m < rows; ++m)
      for (int64_t j = 0; j < L.N; ++j) {
        double s = L.bias.empty() ? 0.0 : L.bias[static_cast<size_t>(j)], mag = std::fabs(s), prop = 0, fprop = 0;
        for (int64_t k = 0; k < L.K; ++k) {
          const double w = L.w[static_cast<size_t>(k * L.N + j)];
          const double t = a[static_cast<size_t>(m * L.K + k)] * w;
          s += t;
          mag += std::fabs(t);
          prop += d[static_cast<size_t>(m * L.K + k)] * std::fabs(w);
          fprop += f[static_cast<size_t>(m * L.K + k)] * std::fabs(w);
        }
        na[static_cast<size_t>(m * L.N + j)] = L.relu ? std::max(s, 0.0) : s;
        nd[static_cast<size_t>(m * L.N + j)] = static_cast<double>(L.K) * std::ldexp(1.0, -11) * mag + prop;
        const double y = L.relu ? std::max(s, 0.0) : s;
        nf[static_cast<size_t>(m * L.N + j)] = std::ldexp(2.0, -11) * mag +
                                               static_cast<double>(L.K) * std::ldexp(1.0, -24) * mag +
                                               (last ? 0.0 : std::ldexp(1.0, -11) * std::fabs(y)) + fprop;
      }
    a = std::move(na);
    d = std::move(nd);
    f = std::move(nf);
    width = L.N;
  }
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
