// The compiler's contract with the simulator: for compiled GEMMs and MLPs the simulated cycle count
// equals Program::predicted_cycles (timing and functional modes), and functional outputs match a
// plain C++ reference (int8: exactly; fp16: within K * 2^-11 * sum_k |x_k w_k|, docs/compiler.md; GEMMs
// within the tighter f32-accumulation bound K * 2^-24 * sum_k |x_k w_k|, tests/support/gemm_check.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/gemm_check.h"

using namespace lpu;
using namespace lpu::compiler;

namespace {

// Compiles, simulates in both modes, checks cycles and values (tests/support/gemm_check.h).
void check_gemm(int64_t M, int64_t K, int64_t N, Precision p, uint32_t seed) {
  lpu::test::check_gemm_values(M, K, N, p, seed);
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

TEST_CASE("compile: int8 gemm 640x960x700 (row blocks, several k-tiles) predicted == simulated, exact values") {
  check_gemm(640, 960, 700, Precision::INT8, 5);
}

TEST_CASE("compile: fp16 gemm 200x330x650 (row blocks) predicted == simulated, values within bound") {
  check_gemm(200, 330, 650, Precision::FP16, 6);
}

namespace {

// A 2-layer MLP built directly in the IR: y = relu(x W1 + b1) W2 + b2.
struct Mlp {
  ir::Graph g;
  std::vector<float> x, w1, b1, w2, b2;
  int64_t B = 3, D = 300, H = 700, O = 10;
};

Mlp make_mlp(uint32_t seed) {
  Mlp m;
  std::mt19937 rng(seed);
  auto rnd = [&](int64_t n, float scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = ir::round_f16((static_cast<float>(rng() % 2001) - 1000.f) / 1000.f * scale);
    return v;
  };
  m.x = rnd(m.B * m.D, 1.f);
  m.w1 = rnd(m.D * m.H, 0.1f);
  m.b1 = rnd(m.H, 0.5f);
  m.w2 = rnd(m.H * m.O, 0.1f);
  m.b2 = rnd(m.O, 0.5f);
  ir::Graph& g = m.g;
  g.name = "mlp_test";
  const auto x = g.add_input("x", ir::DType::F32, {m.B, m.D});
  const auto w1 = g.add_constant_floats("w1", {m.D, m.H}, m.w1);
  const auto b1 = g.add_constant_floats("b1", {m.H}, m.b1);
  const auto w2 = g.add_constant_floats("w2", {m.H, m.O}, m.w2);
  const auto b2 = g.add_constant_floats("b2", {m.O}, m.b2);
  auto op = [&](ir::OpKind k, const std::string& name, std::vector<ir::TensorId> in, const ir::Shape& s) {
    const auto t = g.add_tensor(name + "_out", ir::DType::F32, s);
    ir::Op o;
    o.kind = k;
    o.name = name;
    o.inputs = std::move(in);
    o.outputs = {t};
    g.add_op(std::move(o));
    return t;
  };
  auto h = op(ir::OpKind::MatMul, "mm1", {x, w1}, {m.B, m.H});
  h = op(ir::OpKind::Add, "add1", {h, b1}, {m.B, m.H});
  h = op(ir::OpKind::Relu, "relu1", {h}, {m.B, m.H});
  h = op(ir::OpKind::MatMul, "mm2", {h, w2}, {m.B, m.O});
  h = op(ir::OpKind::Add, "add2", {b2, h}, {m.B, m.O});
  g.mark_output(h);
  g.validate();
  return m;
}

}  // namespace

TEST_CASE("compile: fp16 MLP predicted == simulated, outputs within the fp16 bound of a C++ reference") {
  auto cfg = default_chip_config();
  Mlp m = make_mlp(7);
  CompileResult cr = compile(m.g, *cfg, CompileOptions{});
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, *cfg, so).cycles == cr.program.predicted_cycles);
  so.mode = sim::Mode::Functional;
  std::vector<uint8_t> xb(m.x.size() * 2);
  for (size_t i = 0; i < m.x.size(); ++i) {
    const uint16_t h = ir::f32_to_f16(m.x[i]);
    xb[2 * i] = static_cast<uint8_t>(h & 0xFF);
    xb[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
  so.inputs["x"] = xb;
  sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  const std::string out_name = m.g.tensor(m.g.outputs()[0]).name;
  REQUIRE(r.outputs.count(out_name) == 1);
  const auto& yb = r.outputs.at(out_name);
  REQUIRE(yb.size() == static_cast<size_t>(m.B * m.O * 4));
  // Reference in double on the chip's data path: f16 operands, hidden layer rounded to f16.
  int64_t bad = 0;
  for (int64_t b = 0; b < m.B; ++b) {
    std::vector<double> h(static_cast<size_t>(m.H));
    for (int64_t j = 0; j < m.H; ++j) {
      double s = m.b1[static_cast<size_t>(j)];
      for (int64_t k = 0; k < m.D; ++k) s += double{m.x[static_cast<size_t>(b * m.D + k)]} * m.w1[static_cast<size_t>(k * m.H + j)];
      h[static_cast<size_t>(j)] = ir::round_f16(static_cast<float>(std::max(s, 0.0)));
    }
    for (int64_t o = 0; o < m.O; ++o) {
      double s = m.b2[static_cast<size_t>(o)], mag = std::fabs(s);
      for (int64_t j = 0; j < m.H; ++j) {
        const double t = h[static_cast<size_t>(j)] * m.w2[static_cast<size_t>(j * m.O + o)];
        s += t;
        mag += std::fabs(t);
      }
      float got;
      std::memcpy(&got, &yb[static_cast<size_t>((b * m.O + o) * 4)], 4);
      const double bound = static_cast<double>(m.H) * std::ldexp(1.0, -11) * mag;
      if (!(std::fabs(got - s) <= bound)) ++bad;
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("compile: predicted == simulated under other latencies, occupancies, fp16 rate and no stagger") {
  // The schedule must follow whatever the config says (instr_timing), not tsp-v1's numbers.
  std::string y = default_chip_config_yaml();
  auto sub = [&](const std::string& from, const std::string& to) {
    const size_t at = y.find(from);
    REQUIRE(at != std::string::npos);
    y.replace(at, from.size(), to);
  };
  sub("mem_read:      {latency: 2,  occupancy: 1}", "mem_read:      {latency: 5,  occupancy: 2}");
  sub("mxm_abc:       {latency: 24, occupancy: 1}", "mxm_abc:       {latency: 31, occupancy: 1}");
  sub("mxm_iw:        {latency: 20, occupancy: 1}", "mxm_iw:        {latency: 7, occupancy: 3}");
  sub("mxm_lw:        {latency: 2,  occupancy: 1}", "mxm_lw:        {latency: 4,  occupancy: 2}");
  sub("vxm_alu:       {latency: 3,  occupancy: 1}", "vxm_alu:       {latency: 5,  occupancy: 2}");
  sub("stagger: true", "stagger: false");
  sub("fp16_slowdown: 4", "fp16_slowdown: 3");
  auto cfg = parse_chip_config(y, "<altered tsp-v1>");
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  for (Precision p : {Precision::INT8, Precision::FP16}) {
    CompileOptions opt;
    opt.precision = p;
    const CompileResult r = compile_gemm(GemmProblem{1000, 640, 700, {}}, *cfg, opt);
    CHECK(sim::simulate(r.program, *cfg, so).cycles == r.program.predicted_cycles);
  }
  Mlp m = make_mlp(9);
  const CompileResult r = compile(m.g, *cfg, CompileOptions{});
  CHECK(sim::simulate(r.program, *cfg, so).cycles == r.program.predicted_cycles);
}

TEST_CASE("compile: k-split over planes (tiny M) predicted == simulated, exact int8 and bounded fp16 values") {
  // 1 row, 4 k-tiles, 1 column tile: the k-tiles are split over 4 planes whose partial rows meet
  // and are summed on the VXM; then 2 column tiles x 2 k-groups, and fp16 with 2 k-groups.
  check_gemm(1, 1280, 320, Precision::INT8, 11);
  check_gemm(1, 960, 500, Precision::INT8, 12);
  check_gemm(1, 1000, 330, Precision::FP16, 13);
}
