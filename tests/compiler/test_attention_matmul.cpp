// MatMul of two activations (attention plumbing, passes/lower_attention.h): Y = A . B and
// Y = A . Transpose(B) (the second operand loaded as MXM weights as stored; the transposed form
// by `iwt`), several shapes including > 320 in each dimension and non-multiples of 320, batched
// products over a leading dim. Each graph is compiled, simulated in timing and functional mode
// (simulated cycles must equal the prediction) and every output is compared with a double
// reference within the documented f32-accumulation bound n * 2^-24 * sum |a_i b_i| (inputs are
// f16-exact, products of f16 values are exact in f32, moves of f16 values are exact).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "compiler/reference/error_bound.h"
#include "isa/chip_config.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "sim/simulator.h"
#include "tests/support/ir_build.h"
#include "tests/support/per_plane_count.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

// Batches x [M, K] . [K, N] (trans: B given as [N, K] and transposed in the graph).
// gemm: (batch 1, trans) as one Gemm with transB = 1 instead of MatMul(A, Transpose(B)).
// const_a: A is a constant initializer (stored by one VXM copy, lower_attention.h stored_constant).
// Returns the compile result (for plan checks).
CompileResult check_act_matmul(int64_t batch, int64_t M, int64_t K, int64_t N, bool trans, uint32_t seed,
                               bool gemm = false, bool const_a = false) {
  INFO("batch " << batch << " M " << M << " K " << K << " N " << N << (trans ? " A . B^T" : " A . B") << (gemm ? " Gemm" : "")
                << (const_a ? " A constant" : ""));
  ir::Graph g;
  g.name = "act_mm";
  const ir::Shape sa = batch > 1 ? ir::Shape{batch, M, K} : ir::Shape{M, K};
  const ir::Shape sb = trans ? (batch > 1 ? ir::Shape{batch, N, K} : ir::Shape{N, K})
                             : (batch > 1 ? ir::Shape{batch, K, N} : ir::Shape{K, N});
  const ir::Shape sy = batch > 1 ? ir::Shape{batch, M, N} : ir::Shape{M, N};
  const std::vector<float> av = random_f16(batch * M * K, -1.f, 1.f, seed), bv = random_f16(batch * K * N, -1.f, 1.f, seed + 1);
  const ir::TensorId a = const_a ? g.add_constant("A", ir::DType::F16, sa, f16_bytes(av)) : g.add_input("A", ir::DType::F16, sa);
  const ir::TensorId b = g.add_input("B", ir::DType::F16, sb);
  ir::TensorId bb = b;
  if (gemm) {
    const ir::TensorId yg = g.add_tensor("Y", ir::DType::F16, sy);
    g.add_op(make_op(ir::OpKind::Gemm, "gemm", {a, b}, {yg},
                     {{"alpha", 1.f}, {"beta", 1.f}, {"transA", int64_t{0}}, {"transB", int64_t{1}}}));
    g.mark_output(yg);
  } else if (trans) {
    bb = g.add_tensor("Bt", ir::DType::F16, batch > 1 ? ir::Shape{batch, K, N} : ir::Shape{K, N});
    g.add_op(make_op(ir::OpKind::Transpose, "tr", {b}, {bb},
                     {{"perm", batch > 1 ? std::vector<int64_t>{0, 2, 1} : std::vector<int64_t>{1, 0}}}));
  }
  if (!gemm) {
    const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, sy);
    g.add_op(make_op(ir::OpKind::MatMul, "mm", {a, bb}, {y}));
    g.mark_output(y);
  }
  auto cfg = default_chip_config();
  const CompileResult cr = compile(g, *cfg, CompileOptions{});
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, *cfg, so).cycles == cr.program.predicted_cycles);
  so.mode = sim::Mode::Functional;
  if (!const_a) bind_input(cr.program, "A", f16_bytes(av), &so.inputs);
  bind_input(cr.program, "B", f16_bytes(bv), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  const std::vector<uint8_t> got = gather_output(cr.program, "Y", r.outputs);
  REQUIRE(got.size() == static_cast<size_t>(batch * M * N) * 4);
  int64_t bad = 0;
  for (int64_t p = 0; p < batch; ++p)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double exact = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double x = av[static_cast<size_t>((p * M + m) * K + k)];
          const double w = trans ? bv[static_cast<size_t>((p * N + n) * K + k)] : bv[static_cast<size_t>((p * K + k) * N + n)];
          exact += x * w;
          mag += std::fabs(x * w);
        }
        float yv;
        std::memcpy(&yv, &got[static_cast<size_t>(((p * M + m) * N + n) * 4)], 4);
        const double bound = static_cast<double>(K) * std::ldexp(1.0, -24) * mag;
        if (!(std::fabs(yv - exact) <= bound)) {
          if (bad < 3) UNSCOPED_INFO("Y[" << p << "," << m << "," << n << "] = " << yv << ", exact " << exact << " +- " << bound);
          ++bad;
        }
      }
  CHECK(bad == 0);
  return cr;
}

}  // namespace

TEST_CASE("attention: MatMul of two activations A . B predicted == simulated, within the f32 bound") {
  check_act_matmul(1, 16, 16, 16, false, 1);
  check_act_matmul(1, 70, 400, 50, false, 3);   // K > 320 (two k-tiles of B rows)
  check_act_matmul(1, 33, 64, 650, false, 5);   // N > 320 (three column chunks of B)
  check_act_matmul(3, 20, 24, 40, false, 7);    // batched
}

TEST_CASE("attention: MatMul by a transposed activation A . B^T (iwt) predicted == simulated, within the f32 bound") {
  check_act_matmul(1, 16, 16, 16, true, 11);
  check_act_matmul(1, 33, 64, 700, true, 13);   // N > 320 tokens: several shadow tiles
  check_act_matmul(1, 20, 350, 40, true, 15);   // K > 320: two k-tiles of transposed rows
  check_act_matmul(4, 16, 16, 16, true, 17);    // batched (heads)
  check_act_matmul(1, 20, 48, 30, true, 19, true);  // Gemm transB = 1 with an activation B
}

TEST_CASE("attention: MatMul of a constant by an activation (C . B, C . B^T) predicted == simulated, within the f32 bound") {
  // The constant first operand was once placed nowhere (an internal error at schedule time).
  check_act_matmul(1, 24, 40, 16, false, 21, false, true);
  check_act_matmul(1, 70, 400, 50, true, 23, false, true);  // K > 320, B through iwt
  check_act_matmul(3, 20, 24, 40, false, 25, false, true);  // batched constant
}

// Decode attention of one head with a KV cache: K = Concat(K_cache, k_new) along rows,
// P = Softmax(q . K^T * s), y = P . V with V = Concat(V_cache, v_new). Compared with the reference
// interpreter on the f16-typed graph within twice its running bound (docs/compiler.md "Precision").
TEST_CASE("attention: decode head with a KV cache (Concat rows, q . K^T, Softmax, P . V) predicted == simulated") {
  for (int64_t C : {40, 400}) {
    INFO("context " << C);
    const int64_t D = 64;
    ir::Graph g;
    g.name = "decode_head";
    const ir::TensorId q = g.add_input("q", ir::DType::F16, {1, D});
    const ir::TensorId kc = g.add_input("k_cache", ir::DType::F16, {C, D});
    const ir::TensorId kn = g.add_input("k_new", ir::DType::F16, {1, D});
    const ir::TensorId vc = g.add_input("v_cache", ir::DType::F16, {C, D});
    const ir::TensorId vn = g.add_input("v_new", ir::DType::F16, {1, D});
    const ir::TensorId k = g.add_tensor("K", ir::DType::F16, {C + 1, D});
    const ir::TensorId v = g.add_tensor("V", ir::DType::F16, {C + 1, D});
    const ir::TensorId kt = g.add_tensor("Kt", ir::DType::F16, {D, C + 1});
    const ir::TensorId s = g.add_tensor("s", ir::DType::F16, {1, C + 1});
    const ir::TensorId ss = g.add_tensor("ss", ir::DType::F16, {1, C + 1});
    const ir::TensorId p = g.add_tensor("p", ir::DType::F16, {1, C + 1});
    const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {1, D});
    g.add_op(make_op(ir::OpKind::Concat, "catk", {kc, kn}, {k}, {{"axis", int64_t{0}}}));
    g.add_op(make_op(ir::OpKind::Concat, "catv", {vc, vn}, {v}, {{"axis", int64_t{0}}}));
    g.add_op(make_op(ir::OpKind::Transpose, "kt", {k}, {kt}, {{"perm", std::vector<int64_t>{1, 0}}}));
    g.add_op(make_op(ir::OpKind::MatMul, "qk", {q, kt}, {s}));
    g.add_op(make_op(ir::OpKind::Mul, "scale", {s, g.add_constant("sc", ir::DType::F16, {}, f16_bytes({0.125f}))}, {ss}));
    g.add_op(make_op(ir::OpKind::Softmax, "sm", {ss}, {p}, {{"axis", int64_t{1}}}));
    g.add_op(make_op(ir::OpKind::MatMul, "pv", {p, v}, {y}));
    g.mark_output(y);
    std::vector<std::vector<float>> in = {random_f16(D, -1.f, 1.f, 21), random_f16(C * D, -1.f, 1.f, 22), random_f16(D, -1.f, 1.f, 23), random_f16(C * D, -1.f, 1.f, 24),
                                          random_f16(D, -1.f, 1.f, 25)};
    lpu::test::check_chip_against_reference(g, in);
  }
}

// Batched products (one per head) are runs of independent products: the matmul kernel gives each
// whole to the plane that can finish it first (matmul_kernel.h), so each head's weight tile is
// installed once. The previous plan cut every product's 128 rows into 4 blocks of 32, one per
// plane, so every plane installed every head's tile (4 x the lw rows: 4,096 here) and, fp16 rows
// taking 4 cycles each, the run was bound by those installs instead of by its abc cycles.
TEST_CASE("attention: batched products install each head's tile on one plane, all planes busy, in the f32 bound",
          "[attention][matmul]") {
  auto cfg = default_chip_config();
  const int64_t heads = 8, T = 128, D = 64;
  const size_t planes = cfg->slices_of(SliceKind::MXM).size() * cfg->mxm_planes;
  // P.V shape: [T, T] . [T, D] per head, V's T rows installed as weights.
  const CompileResult cr = check_act_matmul(heads, T, T, D, false, 31);
  const auto lw = lpu::test::per_plane(cr.program, Opcode::LoadW);
  int64_t lw_total = 0;
  for (const auto& kv : lw) lw_total += kv.second;
  CHECK(lw_total == heads * T);
  const auto abc = lpu::test::per_plane(cr.program, Opcode::Abc);
  REQUIRE(abc.size() == planes);  // every plane works, on 2 whole heads
  for (const auto& kv : abc) CHECK(kv.second == heads * T / static_cast<int64_t>(planes));
  // Bound: the abc cycles (heads x T rows x the fp16 abc occupancy, over the planes) after the
  // first tile's install (T rows + lw and iw latency), which no abc can overlap. Within 20 %.
  auto timing = [&](Opcode op) {
    Instr in = make_instr(op, DType::F16);
    return instr_timing(*cfg, in);
  };
  const uint64_t bound = static_cast<uint64_t>(heads * T) * timing(Opcode::Abc).occupancy / planes +
                         static_cast<uint64_t>(T) + timing(Opcode::LoadW).latency + timing(Opcode::InstW).latency;
  INFO("predicted " << cr.program.predicted_cycles << ", bound " << bound);
  CHECK(cr.program.predicted_cycles * 5 <= bound * 6);
}
