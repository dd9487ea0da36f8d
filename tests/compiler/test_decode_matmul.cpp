// Batch-1 (decode) dense layers at the weight-install bound (docs/compiler.md "The matmul kernel",
// install-bound layers): the (column tile, k-tile, row) sequence is cut into one piece per MXM
// plane, tiles may be cut between planes, and the partial rows are summed on the VXM. Tests: values
// (int8 exact, fp16 within the f32-accumulation bound) for shapes whose cut splits tiles and
// columns over planes, a SwiGLU FFN graph against the reference interpreter, and the cycle count of
// batch-1 GEMMs and of the Llama-2 7B FFN decode shard against the install bound.
#include <catch2/catch.hpp>
#include <algorithm>

#include <random>
#include <string>

#include "compiler/compile.h"
#include "compiler/llm/llm_config.h"
#include "compiler/llm/segments.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/gemm_check.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;

namespace {

uint64_t planes_of(const ChipConfig& cfg) {
  return static_cast<uint64_t>(cfg.slices_of(SliceKind::MXM).size()) * cfg.mxm_planes;
}

uint64_t latency(const ChipConfig& cfg, Opcode op) {
  return instr_timing(cfg, make_instr(op)).latency;
}

uint64_t timing_cycles(const Program& p, const ChipConfig& cfg) {
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  return sim::simulate(p, cfg, so).cycles;
}

}  // namespace

TEST_CASE("decode matmul: batch-1 GEMMs cut over the planes give exact int8 and bounded fp16 values",
          "[compiler][decode]") {
  // 1x640x320: two tiles over four planes (tiles cut by rows); 1x1376x700: 15 tiles, columns
  // split over planes; 3x1000x330: three rows; 1x4096x1376: the FFN gate/up shape of a tp-8 shard.
  struct S { int64_t M, K, N; };
  uint32_t seed = 11;
  for (const S& s : {S{1, 640, 320}, S{1, 1376, 700}, S{3, 1000, 330}, S{1, 4096, 1376}})
    for (Precision p : {Precision::INT8, Precision::FP16}) {
      INFO(s.M << "x" << s.K << "x" << s.N << (p == Precision::INT8 ? " int8" : " fp16"));
      const CompileResult cr = test::check_gemm_values(s.M, s.K, s.N, p, seed++);
      // Every weight tile is installed exactly once, by its valid rows (rows past K are not loaded)
      // or, when it has fewer valid columns than that, by its columns (a transposed tile, `iwt`).
      const int64_t lanes = default_chip_config()->vector_bytes();
      uint64_t lw = 0;
      for (int64_t k0 = 0; k0 < s.K; k0 += lanes)
        for (int64_t n0 = 0; n0 < s.N; n0 += lanes)
          lw += static_cast<uint64_t>(std::min(std::min(lanes, s.K - k0), std::min(lanes, s.N - n0)));
      CHECK(cr.stats.lw == lw);
      if (s.N % lanes != 0) CHECK(lw < static_cast<uint64_t>(s.K * ((s.N + lanes - 1) / lanes)));  // a narrow last column tile
    }
}

TEST_CASE("decode matmul: a batch-1 SwiGLU FFN matches the reference interpreter", "[compiler][decode]") {
  // y = (silu(x Wg) * (x Wu)) Wd, x [1, 640], hidden 700: split columns in all three layers.
  const int64_t D = 640, H = 700;
  std::mt19937 rng(5);
  auto rnd = [&](int64_t n, float scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = ir::round_f16((static_cast<float>(rng() % 2001) - 1000.f) / 1000.f * scale);
    return v;
  };
  ir::Graph g;
  g.name = "swiglu";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {1, D});
  const ir::TensorId wg = g.add_constant("w_gate", ir::DType::F16, {D, H}, test::f16_bytes(rnd(D * H, 0.05f)));
  const ir::TensorId wu = g.add_constant("w_up", ir::DType::F16, {D, H}, test::f16_bytes(rnd(D * H, 0.05f)));
  const ir::TensorId wd = g.add_constant("w_down", ir::DType::F16, {H, D}, test::f16_bytes(rnd(H * D, 0.05f)));
  const ir::TensorId gt = g.add_tensor("gate", ir::DType::F16, {1, H});
  const ir::TensorId up = g.add_tensor("up", ir::DType::F16, {1, H});
  const ir::TensorId sg = g.add_tensor("sig", ir::DType::F16, {1, H});
  const ir::TensorId si = g.add_tensor("silu", ir::DType::F16, {1, H});
  const ir::TensorId h = g.add_tensor("h", ir::DType::F16, {1, H});
  const ir::TensorId y = g.add_tensor("y", ir::DType::F32, {1, D});
  g.add_op(make_op(ir::OpKind::MatMul, "gate_mm", {x, wg}, gt));
  g.add_op(make_op(ir::OpKind::MatMul, "up_mm", {x, wu}, up));
  g.add_op(make_op(ir::OpKind::Sigmoid, "sigmoid", {gt}, sg));
  g.add_op(make_op(ir::OpKind::Mul, "silu_mul", {gt, sg}, si));
  g.add_op(make_op(ir::OpKind::Mul, "glu_mul", {si, up}, h));
  g.add_op(make_op(ir::OpKind::MatMul, "down_mm", {h, wd}, y));
  g.mark_output(y);
  test::check_chip_against_reference(g, {rnd(D, 2.f)});
}

TEST_CASE("decode matmul: batch-1 GEMMs finish within one tile of the install bound", "[compiler][decode]") {
  // Bound: every plane installs one weight row per cycle (ceil(lw / planes)) and pays, per tile it
  // installs, the lw landing and the iw latency before the next tile's rows may load (the hazard
  // rule of docs/architecture.md "Precise points" 4); the cut may add one tile part per plane.
  // Allowed on top: one tile's rows (320 cycles) for the first read, the last abc, acc and the
  // epilogue. Before the install-bound cut (round-robin column tiles) 1x4096x1376 fp16 took 8917
  // cycles against a limit of 5,836.
  auto cfg = default_chip_config();
  const uint64_t P = planes_of(*cfg), lanes = cfg->vector_bytes();
  const uint64_t ovh = latency(*cfg, Opcode::LoadW) + latency(*cfg, Opcode::InstW);
  struct S { int64_t K, N; };
  for (const S& s : {S{4096, 1376}, S{1376, 4096}, S{3200, 3200}, S{4096, 4096}})
    for (Precision p : {Precision::INT8, Precision::FP16}) {
      INFO("1x" << s.K << "x" << s.N << (p == Precision::INT8 ? " int8" : " fp16"));
      CompileOptions opt;
      opt.precision = p;
      const CompileResult cr = compile_gemm(GemmProblem{1, s.K, s.N, {}}, *cfg, opt);
      CHECK(timing_cycles(cr.program, *cfg) == cr.program.predicted_cycles);
      const uint64_t tiles = ((static_cast<uint64_t>(s.K) + lanes - 1) / lanes) * ((static_cast<uint64_t>(s.N) + lanes - 1) / lanes);
      const uint64_t limit = (cr.stats.lw + P - 1) / P + ((tiles + P - 1) / P + 1) * ovh + lanes;
      CHECK(cr.program.predicted_cycles <= limit);
    }
}

TEST_CASE("decode matmul: the Llama-2 7B FFN decode shard (tp 8) runs near the install bound", "[compiler][decode]") {
  // RMSNorm, gate/up 4096x1376, SiLU, mul, down 1376x4096, residual: 52,896 loaded weight rows
  // (58,848 before the narrow column tiles were loaded transposed). Measured 14,999 cycles fp16
  // (16,681 untransposed, 24,653 before the install-bound cut) against 13,224 for the rows alone;
  // the rest is the per-tile install overhead (~22 cycles per tile, 46 tiles a plane) and the
  // RMSNorm, during which each plane can hold only two tiles (active + shadow).
  auto cfg = default_chip_config();
  const llm::LlmConfig m = llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/llama-2-7b.json");
  llm::SegmentSpec spec;
  spec.kind = llm::SegmentKind::Ffn;
  spec.shape.context = 2047;
  spec.position = 2047;
  spec.shard = {0, 8};
  const CompileResult cr = compile(llm::build_segment(m, spec, 0), *cfg, CompileOptions{});
  CHECK(timing_cycles(cr.program, *cfg) == cr.program.predicted_cycles);
  // gate + up: 13 k-tiles (12 of 320 rows, one of 256) x 4 column tiles of 320 + the 96-column tile
  // loaded transposed (96 lw per k-tile); down: 4 k-tiles of 320 rows x (12 column tiles + the
  // 256-column tile transposed) + the 96-row k-tile x 13 column tiles.
  CHECK(cr.stats.lw == uint64_t{2} * (4096 * 4 + 13 * 96) + (4 * (12 * 320 + 256) + 13 * 96));
  INFO("cycles " << cr.program.predicted_cycles << " lw " << cr.stats.lw);
  const uint64_t bound = (cr.stats.lw + planes_of(*cfg) - 1) / planes_of(*cfg);
  CHECK(cr.program.predicted_cycles * 10 <= bound * 12);  // within 20 % of the install bound (measured 13.4 %)
}
