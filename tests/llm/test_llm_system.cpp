// System composition (system/llm_system.h): a step composed from once-simulated pieces equals one
// SystemC simulation of the concatenated per-chip programs of the whole system (cycles and every
// energy event), on tiny-llama planned as 2 stages x tensor-parallel 2; pieces are simulated once
// each. The pieces are the front end's real segment graphs (llm::build_segment, zero weights).
#include <catch2/catch.hpp>

#include "compiler/llm/partition.h"
#include "isa/chip_config.h"
#include "sim/energy.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "system/start_rule.h"

using namespace lpu;

namespace {

llm::LlmConfig tiny() {
  return llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/tiny-llama.json");
}

}  // namespace

TEST_CASE("llm system: composition of pieces == full simulation of the concatenated system", "[llm]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = tiny();
  llm::PlanRequest req;
  req.chips = 4;
  req.tp = 2;
  req.prompt = 4;
  req.context = 4;
  llm::Plan plan = llm::plan_partition(m, req, *chip);
  REQUIRE(plan.tp == 2);
  REQUIRE(plan.stages.size() == 2);
  system::LlmSystem sys(*chip, m, plan);  // default builder: llm::build_segment, WeightFill::Zero; no fallback
  sys.runner().keep_programs(true);
  // Decode (B=2) and a prefill of 4 tokens; the second step reuses nothing of the first (other shapes).
  const llm::StepShape decode = llm::decode_step(2, 4);
  const llm::StepShape prefill = llm::prefill_step(1, 4);
  for (const llm::StepShape& shape : {decode, prefill}) {
    INFO((shape.phase == llm::Phase::Decode ? "decode" : "prefill"));
    const size_t sims_before = sys.runner().simulations(), compiles_before = sys.runner().compiles();
    const system::StepResult st = sys.step(shape);
    // Distinct programs: attention and ffn x (rank 0, rank 1: rank 0 adds the residual), the lm head
    // (both ranks build the same program, simulated once), one all-reduce, one handoff; each
    // simulated once though the layers' pieces run twice.
    CHECK(sys.runner().simulations() - sims_before == 7);
    CHECK(sys.runner().compiles() - compiles_before == 6);
    CHECK(st.compute_cycles + st.onchip_cycles + st.c2c_cycles == st.cycles);
    CHECK(st.c2c_cycles > 0);

    Program whole = system::concatenate(st.timeline, sys.runner(), static_cast<uint32_t>(plan.chips), *chip);
    CHECK(whole.predicted_cycles == st.cycles);
    sim::SimOptions opt;
    opt.mode = sim::Mode::Timing;
    const sim::SimResult r = sim::simulate(whole, *chip, opt);
    CHECK(r.cycles == st.cycles);
    REQUIRE(r.chips.size() == 4);
    for (int k = 0; k < kNumEnergyEvents; ++k) {
      uint64_t full = 0;
      for (const auto& c : r.chips) full += c.events[static_cast<size_t>(k)];
      INFO("event " << k);
      CHECK(full == st.events[static_cast<size_t>(k)]);
    }
    const sim::EnergyBreakdown e = sim::compute_energy(r, *chip);
    // The step also counts the chips' static power during the host transfers around them
    // (host_transfer_seconds), which no chip simulation sees.
    CHECK(st.host_seconds > 0);
    CHECK(e.total_j ==
          Approx(st.energy_j - chip->static_power_w * static_cast<double>(plan.chips) * st.host_seconds).epsilon(1e-9));
  }
}

// Layers whose graphs differ get their own program (llm::representative_layer): bert is post-LN,
// so layer 0's attention reads the embeddings as they are and every later layer's attention starts
// with the previous layer's LayerNorm. A pass of tiny-bert (3 layers) runs 1 layer-0 attention
// program, 2 starts of the layers-1+ one (with the norm: more cycles and lane steps) and 3 FFNs;
// the pass's cycles are their windows back to back, ending with the output LayerNorm (below).
// Before session 9 layer 0's program stood for
// every layer (2 programs, the norms of layers 1+ left out).
TEST_CASE("llm system: bert's attention pieces of layers 1+ include the previous layer's LayerNorm", "[llm]") {
  auto chip = default_chip_config();
  llm::LlmConfig m = llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/tiny-bert.json");
  m.layers = 3;
  CHECK(llm::representative_layer(m, llm::SegmentKind::Attention, 0) == 0);
  CHECK(llm::representative_layer(m, llm::SegmentKind::Attention, 2) == 1);
  CHECK(llm::representative_layer(m, llm::SegmentKind::Ffn, 2) == 0);
  const llm::LlmConfig llama = tiny();
  CHECK(llm::representative_layer(llama, llm::SegmentKind::Attention, 1) == 0);
  // The representative's graph has the same operations as the layer's own.
  llm::SegmentSpec spec;
  spec.kind = llm::SegmentKind::Attention;
  spec.shape = llm::prefill_step(1, 8);
  auto kinds = [&](int64_t layer) {
    std::vector<int> k;
    const ir::Graph g = llm::build_segment(m, spec, layer);
    for (const ir::Op& op : g.ops()) k.push_back(static_cast<int>(op.kind));
    return k;
  };
  CHECK(kinds(2) == kinds(1));
  CHECK(kinds(1) != kinds(0));
  llm::PlanRequest req;
  req.prompt = 8;
  const llm::Plan plan = llm::plan_partition(m, req, *chip);
  REQUIRE(plan.chips == 1);
  system::LlmSystem sys(*chip, m, plan);
  const system::StepResult st = sys.step(llm::prefill_step(1, 8));
  const system::PieceUse *a0 = nullptr, *a1 = nullptr, *ffn = nullptr, *out = nullptr;
  for (const system::PieceUse& u : st.pieces) {
    if (u.label.rfind("layer 0 attention", 0) == 0) a0 = &u;
    if (u.label.rfind("layers 1+ attention", 0) == 0) a1 = &u;
    if (u.label.rfind("ffn", 0) == 0) ffn = &u;
    if (u.label.rfind("output LayerNorm", 0) == 0) out = &u;
  }
  REQUIRE(a0);
  REQUIRE(a1);
  REQUIRE(ffn);
  REQUIRE(out);  // the last layer's LayerNorm, the encoder's output (PlanPiece::norm_only)
  CHECK(a0->count == 1);
  CHECK(a1->count == 2);
  CHECK(ffn->count == 3);
  CHECK(out->count == 1);
  CHECK(a1->cycles > a0->cycles);  // the LayerNorm
  CHECK(out->cycles > 0);
  // The pass: a0, ffn, (a1, ffn) x 2, out, each starting by the start rule after the one before.
  uint64_t pass = 0, drained = 0;  // drained: every piece waiting out the drain (piece_window) instead
  for (const system::PieceUse* u : {a0, a1, ffn, out}) {
    pass += static_cast<uint64_t>(u->count) * u->cycles;
    drained += static_cast<uint64_t>(u->count) * system::piece_window(*chip, u->cycles);
  }
  drained -= system::piece_window(*chip, out->cycles) - out->cycles;  // the pass ends with it
  auto gap = [&](const system::PieceUse* a, const system::PieceUse* b) {
    return system::start_gap(*chip, sys.runner().run(a->hash).streams.at(0), sys.runner().run(b->hash).streams.at(0));
  };
  pass += gap(a0, ffn) + 2 * gap(ffn, a1) + 2 * gap(a1, ffn) + gap(ffn, out);
  CHECK(st.cycles == pass);
  CHECK(st.cycles <= drained);
}

// The encoder's output LayerNorm (the one ending its last layer) is a piece of its own: bert's
// LayerNorms start the piece after them, and nothing follows the last FFN. Its graph is that
// LayerNorm alone, over the whole hidden state on every chip of the last group (after the
// all-reduce); the functional check runs the MLM head in its place (the same LayerNorm first).
TEST_CASE("llm system: an encoder's pass ends with its output LayerNorm", "[llm]") {
  auto chip = default_chip_config();
  const llm::LlmConfig m = llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/tiny-bert.json");
  llm::PlanRequest req;
  req.prompt = 8;
  req.tp = 2;
  const llm::Plan plan = llm::plan_partition(m, req, *chip);
  REQUIRE(!plan.pieces.empty());
  const llm::PlanPiece& last = plan.pieces.back();
  CHECK(last.kind == llm::SegmentKind::LmHead);
  CHECK(last.norm_only);
  CHECK(last.tp == plan.tp);
  CHECK(last.matrix_weights == 0);
  llm::SegmentSpec spec;
  spec.kind = llm::SegmentKind::LmHead;
  spec.shape = llm::prefill_step(1, 8);
  spec.norm_only = true;
  const ir::Graph g = llm::build_segment(m, spec, 0);
  REQUIRE(g.ops().size() == 1);
  CHECK(g.ops()[0].kind == ir::OpKind::LayerNormalization);
  REQUIRE(g.outputs().size() == 1);
  CHECK(g.tensor(g.outputs()[0]).name == "partial");
  // Not for a decoder (its LM head has the final norm inside).
  spec.norm_only = true;
  CHECK_THROWS_AS(llm::build_segment(tiny(), spec, 0), InputError);
  system::LlmSystem sys(*chip, m, plan);
  const system::StepResult st = sys.step(llm::prefill_step(1, 8));
  int64_t outs = 0;
  for (const system::PieceUse& u : st.pieces) outs += u.label.rfind("output LayerNorm", 0) == 0 ? u.instances : 0;
  CHECK(outs == plan.tp);  // every chip of the group
}
