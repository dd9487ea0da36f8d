// The compiler's contract with the simulator: for compiled GEMMs and MLPs the simulated cycle count
// equals Program::predicted_cycles (timing and functional modes), and functional outputs match a
// plain C++ reference (int8: exactly; fp16: within K * 2^-11 * sum_k |x_k w_k|, docs/compiler.md).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "compiler/compile.h"
#include "compiler/ir/dtype.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;
using namespace lpu::compiler;

namespace {

struct GemmData {
  std::vector<uint8_t> x, w;     // input-type elements
  std::vector<double> xf, wf;    // their values
};

GemmData random_gemm(int64_t M, int64_t K, int64_t N, Precision p, uint32_t seed) {
  std::mt19937 rng(seed);
  GemmData d;
  const int B = p == Precision::INT8 ? 1 : 2;
  auto fill = [&](int64_t n, std::vector<uint8_t>* bytes, std::vector<double>* vals) {
    bytes->resize(static_cast<size_t>(n * B));
    vals->resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      if (p == Precision::INT8) {
        const int v = static_cast<int>(rng() % 255) - 127;
        (*bytes)[static_cast<size_t>(i)] = static_cast<uint8_t>(static_cast<int8_t>(v));
        (*vals)[static_cast<size_t>(i)] = v;
      } else {
        const float f = (static_cast<float>(rng() % 20001) - 10000.f) / 4000.f;
        const uint16_t h = ir::f32_to_f16(f);
        (*bytes)[static_cast<size_t>(2 * i)] = static_cast<uint8_t>(h & 0xFF);
        (*bytes)[static_cast<size_t>(2 * i + 1)] = static_cast<uint8_t>(h >> 8);
        (*vals)[static_cast<size_t>(i)] = ir::f16_to_f32(h);
      }
    }
  };
  fill(M * K, &d.x, &d.xf);
  fill(K * N, &d.w, &d.wf);
  return d;
}

// Compiles, simulates in both modes, checks cycles and (functional) values.
void check_gemm(int64_t M, int64_t K, int64_t N, Precision p, uint32_t seed) {
  auto cfg = default_chip_config();
  GemmData d = random_gemm(M, K, N, p, seed);
  GemmProblem gp{M, K, N, d.w};
  CompileOptions opt;
  opt.precision = p;
  CompileResult cr = compile_gemm(gp, *cfg, opt);
  REQUIRE(cr.program.tensors.size() == 2);  // small shapes: X and Y are single blocks
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  sim::SimResult rt = sim::simulate(cr.program, *cfg, so);
  CHECK(rt.cycles == cr.predicted_cycles);
  so.mode = sim::Mode::Functional;
  so.inputs["X"] = d.x;
  sim::SimResult rf = sim::simulate(cr.program, *cfg, so);
  CHECK(rf.cycles == cr.predicted_cycles);
  REQUIRE(rf.outputs.count("Y") == 1);
  const std::vector<uint8_t>& y = rf.outputs.at("Y");
  REQUIRE(y.size() == static_cast<size_t>(M * N * 4));
  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double t = d.xf[static_cast<size_t>(m * K + k)] * d.wf[static_cast<size_t>(k * N + n)];
        ref += t;
        mag += std::fabs(t);
      }
      const size_t at = static_cast<size_t>((m * N + n) * 4);
      if (p == Precision::INT8) {
        int32_t got;
        std::memcpy(&got, &y[at], 4);
        if (got != static_cast<int32_t>(ref)) ++bad;
      } else {
        float got;
        std::memcpy(&got, &y[at], 4);
        const double bound = static_cast<double>(K) * std::ldexp(1.0, -11) * mag;
        if (!(std::fabs(got - ref) <= bound)) ++bad;
      }
    }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("compile: int8 gemm 320^3 predicted == simulated, exact values") {
  check_gemm(320, 320, 320, Precision::INT8, 1);
}

TEST_CASE("compile: int8 gemm ragged 37x500x700 predicted == simulated, exact values") {
  check_gemm(37, 500, 700, Precision::INT8, 2);
}

TEST_CASE("compile: fp16 gemm 64x640x330 predicted == simulated, values within bound") {
  check_gemm(64, 640, 330, Precision::FP16, 3);
}

TEST_CASE("compile: int8 gemm single row 1x320x1280 predicted == simulated") {
  check_gemm(1, 320, 1280, Precision::INT8, 4);
}
