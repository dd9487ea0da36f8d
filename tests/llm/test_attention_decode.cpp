// Attention decode pieces (issue 5): the lowering choices that cut the cycles of a compiled
// attention piece. Where those cycles go (the lowered steps and a per-1000-cycle histogram of
// instructions per unit) is printed by `bench_piece --timeline` (bench/bench_piece.cpp).
#include <catch2/catch.hpp>

#include <string>

#include "compiler/compile.h"
#include "compiler/llm/segments.h"
#include "compiler/passes/lowering.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"
#include "tests/support/llm_workloads.h"

using namespace lpu;
using lpu::test::workload_llm;

namespace {


llm::SegmentSpec decode_attention(int64_t context, int64_t rank, int64_t size, bool int8) {
  llm::SegmentSpec s;
  s.kind = llm::SegmentKind::Attention;
  s.shape.phase = llm::Phase::Decode;
  s.shape.context = context;
  s.shard = {rank, size};
  s.position = context;
  s.o_proj_cast = int8;
  return s;
}

}  // namespace

// Weight rows the MXM must install for the dense layers with constant weights that read the
// normalized input (K == hidden): ceil(N / lanes) column tiles of K rows each.
static int64_t projection_rows(const compiler::LoweredModel& lm, int64_t hidden, uint32_t lanes, int* layers) {
  int64_t rows = 0;
  *layers = 0;
  for (const compiler::LoweredStep& st : lm.steps) {
    if (!st.dense) continue;
    const compiler::LoweredLayer& L = lm.layers[st.index];
    if (L.b != ir::kNoTensor || L.K != hidden) continue;
    rows += (L.N + lanes - 1) / lanes * L.K;
    ++*layers;
  }
  return rows;
}

TEST_CASE("attention decode: Llama-2 7B shard's q/k/v projections are fused into full weight tiles", "[llm]") {
  // tp 8: 4 heads of 128 per chip. Per head q, k (and their RoPE twins x.(W R)) and v were 20
  // matmuls of [4096, 128], each filling 128 of a tile's 320 columns: 20 x 4096 weight rows to
  // install. Fused: [q | k] (1024 columns, 4 tiles) and v (512, 2 tiles); RoPE's rotate-half is a
  // [1024, 1024] permutation applied to q|k (4 column tiles of 1024 rows).
  const llm::LlmConfig cfg = workload_llm("llama-2-7b");
  const ir::Graph g = llm::build_segment(cfg, decode_attention(2047, 0, 8, false), 0);
  const compiler::LoweredModel lm = compiler::lower_graph(g);
  int layers = 0;
  const int64_t rows = projection_rows(lm, cfg.hidden, 320, &layers);
  CHECK(layers == 2);
  CHECK(rows == 6 * 4096);
  int rot = 0;
  for (const compiler::LoweredLayer& L : lm.layers)
    if (L.b == ir::kNoTensor && L.K == 1024 && L.N == 1024) {
      ++rot;
      for (int64_t j = 0; j < L.N; ++j) {  // one +-1 per column: exact on the MXM
        int nz = 0;
        for (int64_t k = 0; k < L.K; ++k) nz += L.w[static_cast<size_t>(k * L.N + j)] != 0.f;
        CHECK(nz == 1);
      }
    }
  CHECK(rot == 1);
  // No view of the fused outputs is folded back into a per-head projection (lower_attention.cpp
  // kMaxFoldRatio, and graph outputs k_new / v_new are identity copies).
  for (const compiler::LoweredLayer& L : lm.layers) CHECK(L.name.find(".fold") == std::string::npos);
}

TEST_CASE("attention decode: Llama-2 7B decode piece (context 2047, tp 8) cycles, predicted == simulated", "[llm]") {
  // Before the fused projections, RoPE by permutation and the kv-head-batched softmax: 55,817
  // cycles (commit 76bfab6); after: 36,236.
  const llm::LlmConfig cfg = workload_llm("llama-2-7b");
  const ir::Graph g = llm::build_segment(cfg, decode_attention(2047, 0, 8, false), 0);
  auto chip = load_chip_config(std::string(LPU_SOURCE_DIR) + "/workloads/chips/tsp-v1.yaml");
  const compiler::CompileResult cr = compiler::compile(g, *chip, system::piece_compile_options(llm::WeightPrecision::FP16));
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, *chip, so).cycles == cr.program.predicted_cycles);
  WARN("llama-2-7b attention decode piece, rank 0 of 8, context 2047: " << cr.program.predicted_cycles << " cycles");
  // The 8 KV-cache Concat copies (4 kv heads x K and V, 2,047 rows each) were identity matmuls at
  // one row per cycle (fp16 abc: one row per 4 cycles on each of the 4 planes): 33,383 cycles, of
  // which ~16.5 k abc. As MEM -> MEM row copies over the cache's 8 row parts: 17,288.
  CHECK(cr.stats.abc < 4096);  // projections, q.K^T, P.V and o_proj only; no abc per cache row
  CHECK(cr.program.predicted_cycles < 20000);
}

TEST_CASE("attention decode: a row Concat of a KV cache input copies whole rows MEM -> MEM, several rows a cycle",
          "[llm]") {
  // K = Concat(k_cache [C, 128], k_new [1, 128]) read by q . K^T (the decode score product). Both
  // inputs are graph inputs covering all their lanes: lowered as row copies (LoweredLayer::copy),
  // so no identity weights are placed, and the values are checked against the reference interpreter
  // on the chip in functional mode (predicted == simulated). An identity matmul copied one row per
  // cycle at fp16 rate, so the old program took more than C cycles for the copy alone.
  using lpu::test::random_f16;
  const int64_t C = 2047, D = 128;
  ir::Graph g;
  g.name = "kv_append";
  const ir::TensorId q = g.add_input("q", ir::DType::F16, {1, D});
  const ir::TensorId kc = g.add_input("k_cache", ir::DType::F16, {C, D});
  const ir::TensorId kn = g.add_input("k_new", ir::DType::F16, {1, D});
  const ir::TensorId k = g.add_tensor("K", ir::DType::F16, {C + 1, D});
  const ir::TensorId kt = g.add_tensor("Kt", ir::DType::F16, {D, C + 1});
  const ir::TensorId s = g.add_tensor("s", ir::DType::F16, {1, C + 1});
  g.add_op(make_op(ir::OpKind::Concat, "catk", {kc, kn}, {k}, {{"axis", int64_t{0}}}));
  g.add_op(make_op(ir::OpKind::Transpose, "kt", {k}, {kt}, {{"perm", std::vector<int64_t>{1, 0}}}));
  g.add_op(make_op(ir::OpKind::MatMul, "qk", {q, kt}, {s}));
  g.mark_output(s);
  const compiler::LoweredModel lm = compiler::lower_graph(g);
  int copies = 0;
  for (const compiler::LoweredLayer& L : lm.layers) copies += L.copy ? 1 : 0;
  CHECK(copies == 2);
  const uint64_t cycles = lpu::test::check_chip_against_reference(
      g, {random_f16(D, -1.f, 1.f, 31), random_f16(C * D, -1.f, 1.f, 32), random_f16(D, -1.f, 1.f, 33)});
  const compiler::CompileResult cr = compiler::compile(g, *default_chip_config(), compiler::CompileOptions{});
  CHECK(cr.memory_map.find("catk") == std::string::npos);  // no identity weight tiles
  CHECK(cr.stats.abc < 64);  // q . K^T's few column tiles; an identity copy streamed one abc per row
  WARN("kv append: copy of " << C << " cache rows + q.K^T: " << cycles << " cycles");
  CHECK(cycles < static_cast<uint64_t>(C));
}
