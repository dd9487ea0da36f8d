// C2C collectives for LLM serving (compiler/llm/collective.h): the compiled all-reduce and stage
// handoff run on several chips in SystemC with the right values and exactly the predicted cycles.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>

#include "compiler/ir/dtype.h"
#include "compiler/llm/collective.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;

namespace {

std::vector<uint8_t> random_f16(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-4.0f, 4.0f);
  std::vector<uint8_t> b(static_cast<size_t>(n) * 2);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = ir::f32_to_f16(d(rng));
    std::memcpy(&b[static_cast<size_t>(i) * 2], &h, 2);
  }
  return b;
}

float f16_at(const std::vector<uint8_t>& b, int64_t i) {
  uint16_t h;
  std::memcpy(&h, &b[static_cast<size_t>(i) * 2], 2);
  return ir::f16_to_f32(h);
}

void check_allreduce(int64_t rows, int64_t hidden, int64_t tp) {
  auto cfg = default_chip_config();
  llm::CollectiveProgram cp = llm::compile_allreduce(rows, hidden, tp, *cfg);
  REQUIRE(cp.program.num_chips == tp);
  sim::SimOptions opt;
  for (int64_t c = 0; c < tp; ++c)
    opt.inputs["partial_c" + std::to_string(c)] = random_f16(rows * hidden, static_cast<uint32_t>(100 + c));
  sim::SimResult r = sim::simulate(cp.program, *cfg, opt);
  CHECK(r.cycles == cp.predicted_cycles);
  CHECK(cp.predicted_cycles > 0);
  // Expected: inside each node of L chips the owner of vector v (local index v % L) adds in f16,
  // own partial first, then chip order; over G nodes the node sums are added in node order.
  const int64_t L = std::min<int64_t>(tp, cfg->chips_per_node), G = tp / L;
  const int64_t lanes = cfg->vector_bytes(), vpr = (hidden + lanes - 1) / lanes;
  auto add16 = [](float a, float b) { return ir::round_f16(a + b); };
  auto in = [&](int64_t c, int64_t i) { return f16_at(opt.inputs["partial_c" + std::to_string(c)], i); };
  for (int64_t i = 0; i < rows * hidden; ++i) {
    const int64_t row = i / hidden, ch = (i % hidden) / lanes;
    const int64_t k = (row * vpr + ch) % L;
    float s = 0;
    for (int64_t j = 0; j < G; ++j) {
      const int64_t o = j * L + k;
      float node = in(o, i);
      for (int64_t c = j * L; c < (j + 1) * L; ++c)
        if (c != o) node = add16(node, in(c, i));
      s = j == 0 ? node : add16(s, node);
    }
    for (int64_t c = 0; c < tp; ++c) {
      INFO("chip " << c << " element " << i);
      REQUIRE(f16_at(r.outputs.at("sum_c" + std::to_string(c)), i) == s);
    }
  }
  // Inside each node every non-owner sends each of its vectors' 2 planes once and receives the sum
  // once; across nodes every owner sends its node sum to each other node's owner.
  const uint64_t vectors = static_cast<uint64_t>(rows * vpr);
  CHECK(cp.c2c_vectors == vectors * static_cast<uint64_t>(2 * G * (L - 1) + G * (G - 1)) * 2);
  uint64_t c2c_bytes = 0;
  for (const auto& ch : r.chips) c2c_bytes += ch.events[static_cast<int>(EnergyEvent::C2cByte)];
  CHECK(c2c_bytes == cp.c2c_vectors * cfg->vector_bytes());
}

}  // namespace

TEST_CASE("llm collective: all-reduce over 2 chips sums f16 partials, predicted == simulated", "[llm]") {
  check_allreduce(3, 700, 2);
}

TEST_CASE("llm collective: all-reduce over 4 chips sums f16 partials, predicted == simulated", "[llm]") {
  check_allreduce(2, 1000, 4);
}

TEST_CASE("llm collective: all-reduce over 8 chips (one node), predicted == simulated", "[llm]") {
  check_allreduce(1, 2048, 8);
}

TEST_CASE("llm collective: all-reduce over 2 nodes (tp 16, hierarchical), predicted == simulated", "[llm]") {
  check_allreduce(1, 1000, 16);
}

TEST_CASE("llm collective: all-reduce over 4 nodes of 8 (tp 32), predicted == simulated", "[llm]") {
  check_allreduce(1, 700, 32);
}

TEST_CASE("llm collective: tp 1 needs no program, link plans, tp not a node multiple is an InputError", "[llm]") {
  auto cfg = default_chip_config();
  const llm::CollectiveProgram none = llm::compile_allreduce(4, 640, 1, *cfg);
  CHECK(none.program.chips.empty());
  CHECK(none.predicted_cycles == 0);
  CHECK(llm::link_plan(*cfg, 8).per_peer == 2);
  CHECK(llm::link_plan(*cfg, 8).handoff == 1);
  CHECK(llm::link_plan(*cfg, 2).per_peer == 14);
  CHECK(llm::link_plan(*cfg, 1).handoff == cfg->c2c_links / 2);
  // Beyond one node: one link to each node peer and to each counterpart in the other nodes; the
  // rest of the 16 links carry the stage handoff. 8 nodes (a rack without its spare) fill 14 links.
  CHECK(llm::link_plan(*cfg, 16).per_peer == 1);
  CHECK(llm::link_plan(*cfg, 16).per_remote == 1);
  CHECK(llm::link_plan(*cfg, 16).handoff == 4);
  CHECK(llm::link_plan(*cfg, 64).handoff == 1);
  CHECK(llm::link_plan(*cfg, 8).per_remote == 0);
  CHECK_THROWS_WITH(llm::compile_allreduce(1, 640, 9, *cfg), Catch::Contains("chips_per_node = 8"));
  CHECK_THROWS_WITH(llm::compile_allreduce(1, 640, 72, *cfg), Catch::Contains("needs >= 17 C2C links"));
  CHECK_THROWS_WITH(llm::compile_allreduce(1, 640, 80, *cfg), Catch::Contains("within one rack"));
  CHECK_THROWS_AS(llm::compile_allreduce(0, 640, 2, *cfg), InputError);
}

TEST_CASE("llm collective: stage handoff moves the activation to the next chip, predicted == simulated", "[llm]") {
  auto cfg = default_chip_config();
  for (int64_t tp : {1, 8}) {
    llm::CollectiveProgram cp = llm::compile_handoff(2, 900, tp, *cfg);
    sim::SimOptions opt;
    opt.inputs["x"] = random_f16(2 * 900, 7);
    sim::SimResult r = sim::simulate(cp.program, *cfg, opt);
    CHECK(r.cycles == cp.predicted_cycles);
    CHECK(r.outputs.at("y") == opt.inputs["x"]);
    CHECK(cp.c2c_vectors == 2 * 3 * 2);
  }
}
