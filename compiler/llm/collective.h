// Chip-to-chip collective programs for LLM serving, compiled with the same static scheduler as every
// other program (ScheduleBuilder per chip: one instruction per queue per cycle, SRAM ports, link
// TX/RX sides, stream diagonals; timing from lpu::instr_timing). All chips share one global cycle
// count, so a send on chip a at cycle t is received on chip b at any cycle >= t + latency(send).
//
//  - all-reduce of an f16 [rows, hidden] partial over `tp` chips. Inside one node (tp <= node size:
//    direct reduce-scatter + all-gather): vector v is owned by chip v % tp; every other chip sends
//    its two byte planes of v to the owner over the links of that pair; the owner adds the tp terms
//    in f16 on its VXM (own partial first, then the others in chip order; add.f16 rounds each step),
//    stores the sum and sends it back to every other chip. Over g nodes (tp = g x node size, chip
//    c = node j x node size + local index k; hierarchical): (1) that reduce-scatter inside every
//    node (v owned by local index v % node size) gives a node sum; (2) every owner sends its node
//    sums to its counterparts (same local index) in the other nodes, and each adds the g node sums
//    in node order 0..g-1, so every node holds bit-identical sums; (3) the all-gather inside every
//    node. tp = 1: no program (nothing to do).
//  - stage-to-stage handoff of an f16 [rows, hidden] activation from chip 0 to chip 1 over the
//    links the all-reduce leaves free (every chip of a stage sends to its counterpart of the next).
// Tensors: all-reduce input "partial_c<k>" and output "sum_c<k>" on chip k; handoff input "x" on
// chip 0, output "y" on chip 1 (a tensor too large for one slice is split into row blocks named
// "<name>.rows_R0_R1", as for compiled models).
#pragma once
#include <cstdint>

#include "isa/chip_config.h"
#include "isa/program.h"
#include "isa/stream_envelope.h"

namespace lpu::llm {

// How the C2C links of a chip are used by a tensor-parallel group of `tp` chips: all-to-all inside
// a node (`per_peer` links to each other chip of the node), and for a group of `nodes` > 1 nodes of
// one rack, `per_remote` links to the counterpart chip (same local index) in each other node
// [assumed wiring: the topology section gives node and rack sizes, not the cabling]; of the links
// left, `handoff` links out to the next stage's counterpart chip (the last ones) and `handoff` in
// from the previous stage's (the ones before). Link numbering: intra-node peers first, then remote
// nodes, then handoff in, handoff out. InputError if tp is neither <= the node size nor a multiple
// of it within one rack, or the links cannot connect it (each pair and each handoff needs >= 1 link).
struct LinkPlan {
  int64_t tp = 1;
  int64_t local = 1;        // chips of the group in one node (min(tp, node size))
  int64_t nodes = 1;        // nodes the group spans (tp / local)
  uint32_t per_peer = 0;
  uint32_t per_remote = 0;  // 0 when nodes == 1
  uint32_t handoff = 0;
};
LinkPlan link_plan(const ChipConfig& cfg, int64_t tp);
// True if link_plan(cfg, tp) succeeds (a tensor-parallel size the topology and links can connect).
bool link_plan_ok(const ChipConfig& cfg, int64_t tp);

struct CollectiveProgram {
  Program program;                 // program.predicted_cycles is set; no chips' code and 0 cycles for tp = 1
  uint64_t predicted_cycles = 0;
  std::vector<StreamEnvelope> predicted_streams;  // per chip (isa/stream_envelope.h); empty for tp = 1
  uint64_t c2c_vectors = 0;        // 320-byte vectors sent over links, all chips
};

CollectiveProgram compile_allreduce(int64_t rows, int64_t hidden, int64_t tp, const ChipConfig& cfg);
CollectiveProgram compile_handoff(int64_t rows, int64_t hidden, int64_t tp, const ChipConfig& cfg);

}  // namespace lpu::llm
