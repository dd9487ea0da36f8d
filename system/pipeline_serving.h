// Pipelined serving: K groups of B sequences in flight through a plan's pipeline stages
// (`lpusim llm --in-flight K`, docs/llm-system.md "Pipelined serving").
//
// One composed step (llm_system.h) keeps each stage's chips busy for only part of the step; a
// served system sends the next group in as soon as every chip is free of the previous one. The
// static schedule is periodic: group j's step starts `interval` cycles after group j-1's, with the
// same programs at the same offsets (every chip program of a step is compiled with its own SRAM
// placement, as each layer of a stage is; the planner counts K KV caches per chip,
// PlanRequest::in_flight). Exact by construction and shown by a test: the concatenation of K
// shifted copies of a step's timeline simulates in SystemC in (K-1) x interval + step cycles, with
// K times the step's energy events (tests/llm/test_pipeline_serving.cpp).
//
// interval = max(busiest chip's span, host link time): the chips' part is the smallest shift of
// the step at which every chip's first program of the next group starts after its last program of
// this group has ended, with their streams clear (start_rule.h: the composition's own rule); one
// step holds each host link direction for the longer of its two transfers (rows in to the first
// stage, outputs out of the last, full duplex). A group's next token cannot start before its
// previous one ends (decoders are autoregressive; encoders are modelled the same way: a group sends
// its next request when its answer is back), so each group gets one step every
//   period = max(step latency, K x interval)
// and the system delivers K x tokens per step per period. Energy per period: K steps' dynamic
// energy + static power of all chips x period.
#pragma once
#include <cstdint>
#include <vector>

#include "isa/chip_config.h"
#include "system/llm_system.h"

namespace lpu::system {

struct PipelineServing {
  int64_t in_flight = 1;            // K: groups in flight
  uint64_t busiest_chip_cycles = 0;  // busiest_chip_span: the least shift between groups' steps
  uint64_t interval_cycles = 0;      // busiest_chip_cycles: the chips' part of the interval
  double interval_seconds = 0;       // max(interval_cycles / clock, step.host_link_seconds)
  double period_seconds = 0;         // between two tokens of one group: max(step.seconds, K x interval)
  int64_t full_at = 1;               // ceil(step.seconds / interval): more groups add no throughput
  double tokens_per_second_per_user = 0;  // tokens per step per sequence / period
  double tokens_per_second = 0;           // K x batch x that
  double energy_j = 0;                    // per period: K x step dynamic + static x chips x period
  double tokens_per_joule = 0;
  double power_w = 0;                     // energy_j / period
};

// The least shift between two copies of `step` at which every chip may run the second copy's
// programs after the first's: at least each chip's span (first start to last end), plus the start
// rule's gap between its last program and its first (start_rule.h). logic_error if a timeline
// entry names a program the step does not list.
uint64_t busiest_chip_span(const StepResult& step, const ChipConfig& chip);

// The serving figures of `step` (tokens_per_sequence: tokens each sequence gets from one step,
// 1 for decode, P for an encoder pass) with K = in_flight groups on a system of `chips` chips.
PipelineServing pipeline_serving(const StepResult& step, int64_t in_flight, int64_t tokens_per_sequence,
                                 uint32_t chips, const ChipConfig& chip);

// K copies of the step's timeline, copy j shifted by j x interval_cycles (what concatenate() turns
// into the periodic static schedule of K groups in flight).
std::vector<TimelineEntry> pipelined_timeline(const StepResult& step, int64_t in_flight, uint64_t interval_cycles);

}  // namespace lpu::system
