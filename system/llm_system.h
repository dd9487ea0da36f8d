// LLM serving on a multi-chip system, as a COMPOSITION OF CYCLE-ACCURATE PIECES RUN BACK TO BACK.
// One step (a prefill of P tokens or one decode token, for B sequences) runs, in order, for each
// pipeline stage of the plan, for each piece of the stage: the piece on the stage's tp chips
// (every rank at once, same start cycle; the piece ends when its slowest rank ends), then the
// all-reduce of its [B*T, hidden] partial over the tp chips (Attention and Ffn pieces, tp > 1);
// then the handoff of the activation to the next stage. The LM head ends the last stage.
// Each distinct piece is compiled once and simulated once in SystemC (PieceRunner); a piece
// starts once the previous one has ended, at the first cycle at which none of its stream values
// meets one that an earlier piece on the same chip left travelling to the chip edge (ChipClock,
// system/start_rule.h: exact, from the simulated pieces' stream envelopes; never later than the
// drain, piece_window). Nothing overlaps. The step's cycles are the last piece's start + its
// cycles, which is exactly what one SystemC simulation of the concatenated per-chip programs
// measures (concatenate(); tests/llm/test_llm_system.cpp checks it).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/llm/llm_config.h"
#include "compiler/llm/partition.h"
#include "compiler/llm/segments.h"
#include "isa/chip_config.h"
#include "system/piece_runner.h"

namespace lpu::system {

// Builds the IR graph of one piece (default: llm::build_segment with WeightFill::Zero).
using SegmentBuilder = std::function<ir::Graph(const llm::SegmentSpec&, int64_t layer)>;

// One program run inside a step: which program, when, on which chips of the system.
struct TimelineEntry {
  uint64_t hash = 0;            // PieceRunner program hash
  uint64_t offset = 0;          // start cycle within the step
  std::vector<uint32_t> chips;  // global chip of each of the program's chips
};

enum class TimeClass { Compute, OnChip, C2C };

struct PieceUse {               // a distinct program of the step and how often it starts
  std::string label;
  uint64_t hash = 0;
  uint32_t chips = 1;           // chips of the program
  uint64_t cycles = 0;
  uint64_t compute_cycles = 0;
  int64_t count = 0;            // starts in the step (all chips running it at once count once)
  int64_t instances = 0;        // chip-programs run (e.g. tp-1 ranks x count)
  double dynamic_j = 0;         // per run of the program
  bool collective = false;
  std::vector<StreamEnvelope> streams;  // per program chip (PieceRun::streams, start_rule.h)
};

struct StepResult {
  llm::StepShape shape;
  uint64_t cycles = 0;          // last start + its cycles
  uint64_t compute_cycles = 0;  // MAC-bound time of the pieces on the critical rank
  uint64_t onchip_cycles = 0;   // rest of the pieces' time (weight loads, SRAM/stream traffic, VXM, the waits after them)
  uint64_t c2c_cycles = 0;      // all-reduces and handoffs (with the waits after them: start_rule.h)
  // Host transfers around the chips (host_transfer_seconds); 0 when the chip config has no host link.
  double host_seconds = 0;
  // The longer of the two transfers (in, out): how long one step holds a host link direction
  // (pipelined serving, pipeline_serving.h: the next group's rows go in while this one's go out).
  double host_link_seconds = 0;
  // seconds = cycles / clock + host_seconds (the chips stay powered: static energy over all of it).
  double seconds = 0, dynamic_j = 0, static_j = 0, energy_j = 0;
  std::array<uint64_t, kNumEnergyEvents> events{};  // all chips
  std::vector<PieceUse> pieces;
  std::vector<TimelineEntry> timeline;
  std::vector<std::string> standins;  // "label: reason" of every piece timed by the fallback builder
};

// Piece graphs that fail to compile (an InputError from compile()) stop the step, unless a
// `fallback` builder is given: then that piece (and only it) is timed with the fallback's graph,
// its label starts with "STAND-IN " and the step lists it with the compile error in `standins`.
// A failed compile is remembered per piece key (not retried for every layer).
// How the pieces of a step are compiled for weights of precision `p` (timing mode: zero weights, no
// data). FP16: the compiler's default. INT8: the model's projections (llm::is_projection_weight)
// run i8 x i8 -> i32 with per-channel weight and per-tensor activation scales, quantized on chip by
// the elementwise step that produces their input (norm, SwiGLU product); every other step fp16;
// activation scales uncalibrated (Int8Options::timing_only: scales do not change the schedule).
compiler::CompileOptions piece_compile_options(llm::WeightPrecision p);

class LlmSystem {
 public:
  // `precision`: how the pieces are compiled (piece_compile_options); part of every piece's key.
  LlmSystem(const ChipConfig& chip, llm::LlmConfig model, llm::Plan plan, SegmentBuilder build = {},
            SegmentBuilder fallback = {}, llm::WeightPrecision precision = llm::WeightPrecision::FP16);
  StepResult step(const llm::StepShape& shape);
  PieceRunner& runner() { return runner_; }
  const llm::Plan& plan() const { return plan_; }
  const llm::LlmConfig& model() const { return model_; }
  const ChipConfig& chip() const { return chip_; }
  llm::WeightPrecision precision() const { return precision_; }

 private:
  const ChipConfig& chip_;
  llm::LlmConfig model_;
  llm::Plan plan_;
  SegmentBuilder build_;
  SegmentBuilder fallback_;
  PieceRunner runner_;
  llm::WeightPrecision precision_ = llm::WeightPrecision::FP16;
  compiler::CompileOptions compile_opt_;
  compiler::CompileOptions standin_opt_;  // int8: every stand-in matmul is a projection (no filter)
  std::map<std::string, std::string> failed_;  // piece key -> compile error of build_'s graph
};

// Host time of one step of `shape` on `plan` (0 if the chip config has no host link): before the
// first piece the host writes the step's [B*T, hidden] f16 input rows to each chip of the first
// stage (one transfer per card, over the cards' own links at once); after the last piece it reads
// the outputs: decoders the [B, vocab] f16 logits of each sequence's last token, each LM-head chip
// its vocab slice (all parts); encoders the [B*T, hidden] f16 rows from rank 0 of the last stage.
// Each transfer costs host.link_latency_s + bytes / host.link_bytes_per_s. Not simulated: the host
// is outside the chips (machine.md section 8: the vendor's estimate is chip time plus host transfer).
struct HostTransfer {
  double in_s = 0, out_s = 0;  // rows in (before the first piece), outputs out (after the last)
  double total() const { return in_s + out_s; }
};
HostTransfer host_transfers(const ChipConfig& chip, const llm::LlmConfig& model, const llm::Plan& plan,
                            const llm::StepShape& shape);
double host_transfer_seconds(const ChipConfig& chip, const llm::LlmConfig& model, const llm::Plan& plan,
                             const llm::StepShape& shape);  // host_transfers(...).total()

// Cycles after its start at which any program may follow a piece of `cycles` on the same chip,
// whatever either holds: its stream values have all left the chip (cycles + stream_drain, for a
// simulated program's cycles, which exceed the stagger tail; 0 for an empty program). The composition
// starts pieces earlier where their streams allow (start_rule.h); this bound is what it would take
// without envelopes (bench_prefill's drain-window pass, the composition test's comparison).
uint64_t piece_window(const ChipConfig& chip, uint64_t cycles);

// One Program for the whole system: every chip's queues run the timeline's programs at their
// offsets (nop padding between them), links are the union of the pieces' links. Timing mode only:
// SRAM images and tensors are left out (each piece's data placement is its own). The runner must
// have kept the programs (PieceRunner::keep_programs).
Program concatenate(const std::vector<TimelineEntry>& timeline, const PieceRunner& runner, uint32_t chips,
                    const ChipConfig& chip);

}  // namespace lpu::system
