// Planner vs SRAM allocator (issue 5): a piece the planner places on a chip must compile there.
// The planner's per-piece SRAM need (partition.h: piece_sram_need) must cover what the compiler's
// allocator really places for that piece alone: tile-padded weights, 320-lane padded activations
// (the KV cache rows of head_dim 128 take a whole vector), constants, live activations.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fmt/format.h>
#include <string>

#include "compiler/compile.h"
#include "compiler/llm/partition.h"
#include "compiler/llm/segments.h"
#include "compiler/passes/sram_map_summary.h"
#include "isa/chip_config.h"
#include "system/llm_system.h"
#include "tests/support/llm_piece_sram.h"
#include "tests/support/llm_workloads.h"

using namespace lpu;
using lpu::test::workload_llm;

namespace {


std::shared_ptr<const ChipConfig> tsp() {
  return load_chip_config(std::string(LPU_SOURCE_DIR) + "/workloads/chips/tsp-v1.yaml");
}

llm::SegmentSpec decode_spec(llm::SegmentKind kind, int64_t context, int64_t rank, int64_t size, bool int8) {
  llm::SegmentSpec s;
  s.kind = kind;
  s.shape.phase = llm::Phase::Decode;
  s.shape.batch = 1;
  s.shape.tokens = 1;
  s.shape.context = context;
  s.shard = {rank, size};
  s.fill = llm::WeightFill::Zero;
  s.position = context;
  s.o_proj_cast = int8;
  return s;
}

}  // namespace

TEST_CASE("llm fit: every distinct piece of the default llama-3-8b decode plan compiles", "[llm][fit][heavy]") {
  const llm::LlmConfig m = workload_llm("llama-3-8b");
  const auto chip = tsp();
  llm::PlanRequest req;
  req.prompt = 128;
  req.context = 2047;
  const llm::Plan plan = llm::plan_partition(m, req, *chip);
  // Before the fix the default was tp 1, whose attention piece (332.6 MB of weight tiles) did not compile.
  CHECK(plan.tp > 1);
  const auto opt = system::piece_compile_options(llm::WeightPrecision::FP16);
  std::vector<std::string> done;
  for (const llm::PlanPiece& pp : plan.pieces) {
    CHECK(pp.compile_bytes <= plan.usable_per_chip);
    // Distinct graphs: kind and shard size (ranks 1.. and other parts have rank 1's shapes).
    const std::string key = fmt::format("{} {}", llm::segment_kind_name(pp.kind), pp.shard_size);
    if (std::find(done.begin(), done.end(), key) != done.end()) continue;
    done.push_back(key);
    for (int64_t rank = 0; rank < std::min<int64_t>(pp.shard_size, 2); ++rank) {
      INFO(key << " rank " << rank);
      const ir::Graph g = llm::build_segment(m, decode_spec(pp.kind, req.context, rank, pp.shard_size, false), 0);
      compiler::CompileResult cr;
      REQUIRE_NOTHROW(cr = compiler::compile(g, *chip, opt));
      // The planner's need (without the working set) is what the allocator placed, byte for byte:
      // weight tiles (placed_weight_bytes), cache inputs and the K / V Concats (tests/support/llm_piece_sram.h).
      const uint64_t need = llm::piece_sram_need(m, req, pp, *chip);
      const lpu::test::MirroredSram got = lpu::test::mirrored_sram(g, cr.memory_map);
      if (pp.kind == llm::SegmentKind::Attention) CHECK(got.caches > 0);
      if (pp.kind == llm::SegmentKind::Attention) CHECK(got.concat_ops == 2);
      CHECK(need == got.total());
    }
  }
  CHECK(done.size() >= 3);  // attention, FFN, LM head
}

TEST_CASE("llm fit: at tp 1 the llama-3-8b attention piece is refused by the planner and by the compiler",
          "[llm][fit][heavy]") {
  const llm::LlmConfig m = workload_llm("llama-3-8b");
  const auto chip = tsp();
  llm::PlanRequest req;
  req.prompt = 128;
  req.context = 2047;
  req.tp = 1;
  try {
    llm::plan_partition(m, req, *chip);
    FAIL("tp 1 was planned");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Catch::Contains("compiled attention piece needs"));
  }
  // The compiler agrees: the piece's weight tiles alone exceed the chip.
  const ir::Graph g = llm::build_segment(m, decode_spec(llm::SegmentKind::Attention, req.context, 0, 1, false), 0);
  CHECK_THROWS_AS(compiler::compile(g, *chip, system::piece_compile_options(llm::WeightPrecision::FP16)), InputError);
  llm::PlanPiece a;
  a.kind = llm::SegmentKind::Attention;
  CHECK(llm::piece_sram_need(m, req, a, *chip) > chip->sram_bytes_per_chip());
}

TEST_CASE("llm fit: the default llama-2-70b int8 decode plan's attention piece compiles int8", "[llm][fit][int8]") {
  const llm::LlmConfig m = workload_llm("llama-2-70b");
  const auto chip = tsp();
  llm::PlanRequest req;
  req.precision = llm::WeightPrecision::INT8;
  req.prompt = 128;
  req.context = 4095;
  const llm::Plan plan = llm::plan_partition(m, req, *chip);
  CHECK(plan.tp > 2);  // tp 2 was the default before: its attention piece (304 MB of int8 tiles) did not compile
  const llm::PlanPiece& a = plan.pieces.front();
  REQUIRE(a.kind == llm::SegmentKind::Attention);
  CHECK(a.compile_bytes <= plan.usable_per_chip);
  const ir::Graph g = llm::build_segment(m, decode_spec(a.kind, req.context, 0, a.shard_size, true), 0);
  compiler::CompileResult cr;
  REQUIRE_NOTHROW(cr = compiler::compile(g, *chip, system::piece_compile_options(llm::WeightPrecision::INT8)));
  const uint64_t need = llm::piece_sram_need(m, req, a, *chip);
  const lpu::test::MirroredSram got = lpu::test::mirrored_sram(g, cr.memory_map);
  CHECK(got.scales > 0);
  CHECK(need == got.total());  // byte for byte (tests/support/llm_piece_sram.h)
  req.tp = 2;
  CHECK_THROWS_WITH(llm::plan_partition(m, req, *chip), Catch::Contains("compiled attention piece needs"));
}
