// Partition planner (compiler/llm/partition.h): fewest chips that fit, forced chip counts, errors
// with numbers, int8 vs fp16 capacity.
#include <catch2/catch.hpp>

#include "compiler/llm/partition.h"
#include "isa/chip_config.h"

using namespace lpu;

namespace {

llm::LlmConfig llama7b_shape() {  // Llama-2 7B hyper-parameters (as in its config.json)
  llm::LlmConfig m;
  m.name = "llama-2-7b-shape";
  m.family = "llama";
  m.hidden = 4096;
  m.layers = 32;
  m.heads = 32;
  m.kv_heads = 32;
  m.head_dim = 128;
  m.ffn = 11008;
  m.vocab = 32000;
  m.max_positions = 4096;
  m.gated_ffn = true;
  m.rms_norm = true;
  m.rope = true;
  m.activation = "silu";
  return m;
}

void check_plan(const llm::Plan& p, const llm::LlmConfig& m) {
  REQUIRE(p.chips == p.tp * static_cast<int64_t>(p.stages.size()));
  std::vector<size_t> order;
  for (const auto& st : p.stages) {
    CHECK(st.total() <= p.usable_per_chip);
    CHECK(!st.pieces.empty());
    order.insert(order.end(), st.pieces.begin(), st.pieces.end());
  }
  REQUIRE(order.size() == p.pieces.size());
  for (size_t i = 0; i < order.size(); ++i) CHECK(order[i] == i);  // consecutive, in order, once each
  size_t heads = 0;
  for (const auto& pc : p.pieces) heads += pc.kind == llm::SegmentKind::LmHead;
  CHECK(heads >= 1);
  CHECK(p.pieces.size() == static_cast<size_t>(2 * m.layers) + heads);
}

}  // namespace

TEST_CASE("llm partition: fewest chips that fit, and one stage fewer does not fit", "[llm]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = llama7b_shape();
  llm::PlanRequest req;
  req.prompt = 128;
  req.context = 2047;  // KV cache for 2048 tokens
  const llm::Plan p = llm::plan_partition(m, req, *chip);
  check_plan(p, m);
  // All bytes placed: 7B parameters in fp16 need more than 13 GB over the chips (stage figures are
  // per chip; every stage has tp chips).
  uint64_t total = 0;
  for (const auto& st : p.stages) total += st.weight_bytes * static_cast<uint64_t>(p.tp);
  CHECK(total > 13'000'000'000ull);
  CHECK(static_cast<uint64_t>(p.chips) * p.usable_per_chip >= total);
  // The same tp with one stage fewer cannot hold it.
  llm::PlanRequest fewer = req;
  fewer.tp = p.tp;
  fewer.chips = p.chips - p.tp;
  CHECK_THROWS_AS(llm::plan_partition(m, fewer, *chip), InputError);
  // int8 weights need about half the chips.
  llm::PlanRequest i8 = req;
  i8.precision = llm::WeightPrecision::INT8;
  const llm::Plan q = llm::plan_partition(m, i8, *chip);
  check_plan(q, m);
  CHECK(q.chips < p.chips);
  CHECK(q.chips * 3 > p.chips);
}

TEST_CASE("llm partition: --chips forces the count and spreads the pieces", "[llm]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = llama7b_shape();
  llm::PlanRequest req;
  req.chips = 128;
  const llm::Plan p = llm::plan_partition(m, req, *chip);
  check_plan(p, m);
  CHECK(p.chips == 128);
  // The largest tensor-parallel size that divides 128 and the model (32 heads): 32 chips = 4 nodes
  // per stage (hierarchical all-reduce, collective.h), 4 stages.
  CHECK(p.tp == 32);
  CHECK(p.stages.size() == 4);
}

TEST_CASE("llm partition: too few chips or a bad tp is an InputError with the numbers", "[llm]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = llama7b_shape();
  llm::PlanRequest req;
  req.chips = 8;
  CHECK_THROWS_WITH(llm::plan_partition(m, req, *chip),
                    Catch::Contains("--chips 8") && Catch::Contains("MiB") && Catch::Contains("usable"));
  req.chips = 0;
  req.tp = 3;
  CHECK_THROWS_WITH(llm::plan_partition(m, req, *chip), Catch::Contains("tensor-parallel size 3 is not allowed"));
  req.tp = 0;
  req.batch = 0;
  CHECK_THROWS_AS(llm::plan_partition(m, req, *chip), InputError);
}

TEST_CASE("llm partition: a large LM head is cut into vocab parts of at most a quarter chip", "[llm]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/llama-3-8b.json");
  llm::PlanRequest req;
  req.tp = 8;
  const llm::Plan p = llm::plan_partition(m, req, *chip);
  check_plan(p, m);
  std::vector<llm::PlanPiece> heads;
  for (const auto& pc : p.pieces)
    if (pc.kind == llm::SegmentKind::LmHead) heads.push_back(pc);
  REQUIRE(heads.size() > 1);  // 4096 x 128256 fp16 / 8 chips = 131 MB > a quarter of 209 MiB
  for (size_t j = 0; j < heads.size(); ++j) {
    CHECK(heads[j].part == static_cast<int64_t>(j));
    CHECK(heads[j].shard_size == 8 * static_cast<int64_t>(heads.size()));
    CHECK(m.vocab % heads[j].shard_size == 0);
    CHECK(heads[j].weight_bytes <= p.usable_per_chip / 4 + static_cast<uint64_t>(m.hidden) * 2);
  }
}
