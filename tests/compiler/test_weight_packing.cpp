// Packed weight blobs (compiler/backend/placed_tensor.h: PlacedWeights): only the weight rows a
// k-tile loads take SRAM. A product reading X through a view of narrow column segments (the head
// merge before an output projection) stores one segment's rows per k-tile instead of 320; a plain
// weight keeps whole k-tiles (the last one zero past K). Each case asserts
// the program's SRAM image size exactly from the layout rule (groups x Nt x sum_kt ceil(rows_kt /
// groups) vectors of 320 bytes per byte plane) and that the values are unchanged: simulated cycles
// == predicted, fp16 within the reference bound, int8 exact.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "compiler/compile.h"
#include "compiler/ir/graph.h"
#include "isa/chip_config.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/gemm_check.h"
#include "tests/support/ir_build.h"

using namespace lpu;

namespace {

uint64_t image_bytes(const Program& p) {
  uint64_t n = 0;
  for (const DataBlob& b : p.data) n += b.bytes.size();
  return n;
}

// ceil(a / b)
uint64_t cdiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

}  // namespace

TEST_CASE("weight packing: head-merge view X (H segments of D columns) stores only the segments' rows", "[packing]") {
  // Y[S, N] = reshape(transpose(relu(Q[H, S, D]), {1, 0, 2}), [S, H*D]) . W[H*D, N]: X is read
  // through a view whose last axis is H column segments of D lanes (docs/compiler.md "Attention
  // plumbing"), one k-tile per segment holding D of its 320 rows.
  // D = 36 is not a multiple of the 8 groups, so the view's per-segment layout (H * ceil(D / 8)
  // = 25 vectors per group) differs from a plain [H*D, N] weight's (ceil(180 / 8) = 23) and from
  // the unpacked one (H * 40 = 200).
  const int64_t H = 5, S = 24, D = 36, N = 96;
  ir::Graph g;
  g.name = "head_merge";
  const ir::TensorId q = g.add_input("Q", ir::DType::F16, {H, S, D});
  const ir::TensorId r = g.add_tensor("R", ir::DType::F16, {H, S, D});
  const ir::TensorId t = g.add_tensor("T", ir::DType::F16, {S, H, D});
  const ir::TensorId x = g.add_tensor("X", ir::DType::F16, {S, H * D});
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {S, N});
  g.add_op(make_op(ir::OpKind::Relu, "relu", {q}, r));
  g.add_op(make_op(ir::OpKind::Transpose, "tr", {r}, t, {{"perm", std::vector<int64_t>{1, 0, 2}}}));
  g.add_op(make_op(ir::OpKind::Reshape, "merge", {t}, x, {{"shape", std::vector<int64_t>{S, H * D}}}));
  const ir::TensorId w =
      g.add_constant("W", ir::DType::F16, {H * D, N}, test::f16_bytes(test::random_f16(H * D * N, -1.f, 1.f, 5)));
  g.add_op(make_op(ir::OpKind::MatMul, "o", {x, w}, y));
  g.mark_output(y);

  auto cfg = default_chip_config();
  const compiler::CompileResult cr = compiler::compile(g, *cfg, compiler::CompileOptions{});
  const uint64_t lanes = cfg->vector_bytes(), groups = compiler::TilingOptions{}.weight_groups;
  // Only the weights are constants: H k-tiles of D rows, one column tile, 2 byte planes (f16).
  const uint64_t packed = groups * 1 * (H * cdiv(D, groups)) * lanes * 2;
  const uint64_t unpacked = groups * 1 * (H * cdiv(lanes, groups)) * lanes * 2;  // 320 rows per k-tile
  CHECK(image_bytes(cr.program) == packed);
  CHECK(packed == groups * 25 * lanes * 2);
  CHECK(packed * 8 == unpacked);
  // Same values: simulated cycles == predicted (timing and functional), Y within the f32 bound.
  const uint64_t cycles = test::check_chip_against_reference(g, {test::random_f16(H * S * D, -1.f, 1.f, 6)});
  CHECK(cycles == cr.program.predicted_cycles);
  // pack_view_weights = false (LLM pieces, system/llm_system.cpp): whole tiles, no fewer cycles.
  compiler::CompileOptions whole;
  whole.tiling.pack_view_weights = false;
  const compiler::CompileResult cw = compiler::compile(g, *cfg, whole);
  CHECK(image_bytes(cw.program) == unpacked);
  CHECK(cr.program.predicted_cycles <= cw.program.predicted_cycles);
}

TEST_CASE("weight packing: a plain weight keeps whole 320-row k-tiles (int8 exact, fp16 bounded)", "[packing]") {
  // Default k-tiles are stored whole, the last one's rows past K as zeros: the LLM planner's
  // placed_weight_bytes mirrors that (compiler/llm/partition.h), so packing them is left undone.
  auto cfg = default_chip_config();
  const uint64_t lanes = cfg->vector_bytes(), groups = compiler::TilingOptions{}.weight_groups;
  for (const compiler::Precision p : {compiler::Precision::INT8, compiler::Precision::FP16}) {
    const int64_t M = 40, K = 400, N = 100;  // k-tiles of 320 and 80 rows
    INFO((p == compiler::Precision::INT8 ? "int8" : "fp16"));
    const compiler::CompileResult cr = test::check_gemm_values(M, K, N, p, 11);
    const uint64_t B = p == compiler::Precision::INT8 ? 1 : 2;
    CHECK(image_bytes(cr.program) == groups * 1 * 2 * cdiv(lanes, groups) * lanes * B);
  }
}
