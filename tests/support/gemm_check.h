// One check for bare GEMMs (compiler::compile_gemm): random weights and X (int8: uniform in
// [-127, 127]; fp16: f16 values in [-2.5, 2.5]), simulated in timing and functional mode (both must
// measure the predicted cycles), Y compared with a plain double-precision reference: int8 exactly,
// fp16 within the f32-accumulation bound K * 2^-24 * sum_k |x_k w_k| (f16 x f16 products are exact
// in f32), which catches a lost or doubled weight row.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

namespace lpu::test {

// Returns the compile result (predicted cycles, stats) for further checks. transpose_narrow:
// TilingOptions::transpose_narrow_tiles (narrow weight tiles installed by `iwt`). chip: the chip
// compiled for and simulated on (nullptr: tsp-v1).
inline compiler::CompileResult check_gemm_values(int64_t M, int64_t K, int64_t N, compiler::Precision p, uint32_t seed,
                                                 bool transpose_narrow = true,
                                                 std::shared_ptr<const ChipConfig> chip = nullptr) {
  using namespace lpu::compiler;
  auto cfg = chip ? chip : default_chip_config();
  std::mt19937 rng(seed);
  const bool i8 = p == Precision::INT8;
  auto fill = [&](int64_t n, std::vector<uint8_t>* bytes, std::vector<double>* vals) {
    bytes->resize(static_cast<size_t>(n * (i8 ? 1 : 2)));
    vals->resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      if (i8) {
        const int v = static_cast<int>(rng() % 255) - 127;
        (*bytes)[static_cast<size_t>(i)] = static_cast<uint8_t>(static_cast<int8_t>(v));
        (*vals)[static_cast<size_t>(i)] = v;
      } else {
        const uint16_t h = ir::f32_to_f16((static_cast<float>(rng() % 20001) - 10000.f) / 4000.f);
        (*bytes)[static_cast<size_t>(2 * i)] = static_cast<uint8_t>(h & 0xFF);
        (*bytes)[static_cast<size_t>(2 * i + 1)] = static_cast<uint8_t>(h >> 8);
        (*vals)[static_cast<size_t>(i)] = ir::f16_to_f32(h);
      }
    }
  };
  std::vector<uint8_t> xb, wb;
  std::vector<double> xf, wf;
  fill(M * K, &xb, &xf);
  fill(K * N, &wb, &wf);
  CompileOptions opt;
  opt.precision = p;
  opt.tiling.transpose_narrow_tiles = transpose_narrow;
  CompileResult cr = compile_gemm(GemmProblem{M, K, N, wb}, *cfg, opt);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, *cfg, so).cycles == cr.program.predicted_cycles);
  so.mode = sim::Mode::Functional;
  bind_input(cr.program, "X", xb, &so.inputs);
  const sim::SimResult rf = sim::simulate(cr.program, *cfg, so);
  CHECK(rf.cycles == cr.program.predicted_cycles);
  const std::vector<uint8_t> y = gather_output(cr.program, "Y", rf.outputs);
  REQUIRE(y.size() == static_cast<size_t>(M * N * 4));
  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double t = xf[static_cast<size_t>(m * K + k)] * wf[static_cast<size_t>(k * N + n)];
        ref += t;
        mag += std::fabs(t);
      }
      const size_t at = static_cast<size_t>((m * N + n) * 4);
      if (i8) {
        int32_t got;
        std::memcpy(&got, &y[at], 4);
        if (got != static_cast<int32_t>(ref)) ++bad;
      } else {
        float got;
        std::memcpy(&got, &y[at], 4);
        if (!(std::fabs(got - ref) <= static_cast<double>(K) * std::ldexp(1.0, -24) * mag)) ++bad;
      }
    }
  CHECK(bad == 0);
  return cr;
}

}  // namespace lpu::test
