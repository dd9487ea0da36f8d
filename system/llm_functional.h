// FUNCTIONAL run of one LLM step through simulated chips (issue 5 item 7): the values of a whole
// model, piece after piece, on the chips of a plan (llm::plan_partition), with seeded random weights
// (llm::WeightFill::Random). Every piece of every rank is compiled (fp16) and simulated in SystemC
// in functional mode on its chip; tensor-parallel partials are combined by the compiled C2C
// all-reduce PROGRAM (llm::compile_allreduce) simulated in SystemC, and stage boundaries by the
// compiled handoff program: the values that reach the next piece are the ones those simulations
// produced. The host does only what a piece's own program would do on the chip in a fused whole-
// system program (docs/llm-system.md, "Functional check across chips"):
//  - it reads a piece's f32 graph output ("partial") and writes it, rounded to f16 (round to
//    nearest even, as the chip's cvt.f32.f16), as the all-reduce's input or, for tp 1, as the next
//    piece's input "x"; on real hardware the piece would store that f16 value in SRAM and the next
//    program would read it there (same value; only the SRAM placement differs, since every piece
//    is compiled with its own placement);
//  - it writes each Attention piece's KV-cache inputs (the decode cache, given by the caller) and
//    reads the LM head's logits slices (concatenated by vocab column: the host reading the output).
// No host-side summing: the partial sums are added by the simulated all-reduce (in its f16 order).
// Every simulation must measure the compiler's predicted cycles (std::logic_error otherwise).
// Only for small models: every weight is a graph constant and every rank's program is compiled and
// simulated (see kFunctionalMaxParams).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/llm/llm_config.h"
#include "compiler/llm/partition.h"
#include "compiler/llm/segments.h"
#include "isa/chip_config.h"

namespace lpu::system {

// Largest model (llm::LlmConfig::params()) the functional mode accepts: all weights of a rank's
// pieces become f32 graph constants on the host and every rank's program is compiled and simulated
// with values. A host-time policy [assumed], measured on the shared 2-core machine: tiny-llama
// (0.43 M parameters, 4 chips, prompt 8) 1.8 s wall; a 3.8 M llama shape (hidden 256, 4 layers,
// vocab 2048, 4 chips, prompt 16) 8.8 s wall and 65 MB; gpt2 (124 M) would be ~30x that.
constexpr int64_t kFunctionalMaxParams = 4'000'000;

// Fault injection for the negative test: in the all-reduce after piece `piece` (index into the
// plan's pieces), the partial of rank `rank` is replaced by zeros on its way into the collective
// (as if the collective dropped that chip's contribution). -1: no fault.
struct FunctionalFault {
  int64_t piece = -1;
  int64_t rank = -1;
};

struct FunctionalRequest {
  llm::StepShape shape;
  int64_t position = 0;       // position of the first new token
  uint64_t seed = 1;          // model seed (llm::WeightFill::Random)
  int64_t chips = 1;          // llm::PlanRequest::chips
  int64_t tp = 0;             // llm::PlanRequest::tp (0: the planner's choice)
  FunctionalFault fault;
};

// One rank of one piece as it ran on its chip.
struct ShardRun {
  int64_t rank = 0;                         // shard rank (LM head in parts: part*tp + chip rank)
  int64_t chip = 0;                         // global chip (stage * tp + chip rank)
  std::vector<float> x;                     // the "x" input the chip got ([B*T, hidden], f16 values)
  std::vector<std::vector<float>> outputs;  // graph outputs in graph order, f32 as the chip wrote them
  std::vector<std::string> output_names;    // their graph names ("partial", "k_new_<g>", "logits", ...)
  uint64_t cycles = 0;                      // simulated == predicted
};

struct PieceRecord {
  llm::PlanPiece piece;
  std::vector<ShardRun> shards;             // ranks in order
  uint64_t allreduce_cycles = 0;            // 0 if tp = 1 or LM head
  uint64_t handoff_cycles = 0;              // after this piece, if it ends a stage (not the last)
};

struct FunctionalRun {
  llm::Plan plan;
  std::vector<PieceRecord> pieces;          // in execution order
  std::vector<float> logits;                // [B*T, vocab] (encoders: the MLM head's), from the chips
  uint64_t programs = 0;                    // functional simulations run (pieces x ranks + collectives)
  uint64_t piece_cycles = 0;                // sum over pieces of the slowest rank's cycles
  uint64_t collective_cycles = 0;           // sum of the all-reduce and handoff programs' cycles
  // The step's cycles composed as the timing mode composes them (llm_system.h: each program starts
  // when the previous one has ended and its streams are clear, start_rule.h). Equals LlmSystem::step().cycles on the same
  // plan (the random-weight programs take as many cycles as the zero-weight ones; a test checks it).
  uint64_t step_cycles = 0;
};

// Refuses (InputError naming the limit) models above kFunctionalMaxParams.
void check_functional_size(const llm::LlmConfig& m);

// Runs one step. `x` [B*T, hidden] is the embedded input; `cache` is required for decode
// (shape.context > 0), its values are what the chips get (rounded to f16; give f16-exact values to
// compare with a reference run on the same cache). x is rounded to f16 as the chips' input.
FunctionalRun run_functional(const ChipConfig& chip, const llm::LlmConfig& m, const FunctionalRequest& req,
                             const std::vector<float>& x, const llm::KvCache* cache);

// The KV cache a prefill run leaves (decode input for context = its tokens): every Attention
// piece's k_new_<g> / v_new_<g> as the chips wrote them, per layer and global kv head. With
// KV-head replication (tp > kv_heads) each replica keeps its own copy; std::logic_error if the
// replicas' rows differ.
llm::KvCache prefill_cache(const llm::LlmConfig& m, const FunctionalRun& prefill);

// A seeded embedded input [rows, hidden] at the scale of a token embedding (~U(-1, 1)), f16-exact:
// the host's token-embedding gather is not modelled (docs/llm.md), so tests and the CLI use this.
std::vector<float> seeded_embedded_input(const llm::LlmConfig& m, int64_t rows, uint64_t seed);

// The spec of a plan piece's graph for shard `rank` (what run_functional compiled).
llm::SegmentSpec functional_spec(const FunctionalRequest& req, const llm::PlanPiece& p, int64_t rank);

}  // namespace lpu::system
