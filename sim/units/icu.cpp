// ICU semantics (docs/architecture.md "Issue"): issue cursors, nop, repeat, sync/notify.
// Contracts: a non-ICU instruction issues at the cursor and the cursor advances by 1; `nop n`
// advances it by n; `repeat n, d` after X (issued at c) re-issues X at c + k*d (k = 1..n, step
// field + k) and leaves the cursor at c + n*d + 1; `sync` parks the queue at its cursor; a notify
// at t releases every queue parked at cursor <= t, resuming at t + latency(icu_sync).
// `repeat` itself is not an executed instruction (its iterations are executions of X), and
// nop/sync are not counted as executed either.
#include <algorithm>
#include <functional>
#include <stdexcept>

#include "sim/core/chip_engine.h"

namespace lpu::sim::core {

void ChipEngine::schedule(uint32_t qid, uint64_t cycle) {
  if (cycle < now_) throw std::logic_error("ChipEngine::schedule: issue cycle in the past");
  if (cycle - now_ < kWheel) {
    wheel_[(cycle & (kWheel - 1)) * words_ + (qid >> 6)] |= uint64_t{1} << (qid & 63);
    ++wheel_count_;
  } else {
    overflow_.push_back(Event{cycle, qid});
    std::push_heap(overflow_.begin(), overflow_.end(), std::greater<Event>());
  }
}

void ChipEngine::advance(uint32_t qid) {
  EngineQueue& q = queues_[qid];
  const std::vector<Instr>& code = *q.code;
  while (q.pc < code.size()) {
    const Instr& in = code[q.pc];
    switch (in.op) {
      case Opcode::Nop:
        q.cursor += in.get(Field::Imm);
        ++q.pc;
        continue;
      case Opcode::Sync:
        park(qid);
        return;
      case Opcode::Repeat:
        throw std::logic_error("ChipEngine::advance: repeat not after an issued instruction (load check missed it)");
      default:
        schedule(qid, q.cursor);
        return;
    }
  }
}

void ChipEngine::after_issue(uint32_t qid, uint64_t t) {
  EngineQueue& q = queues_[qid];
  if (q.in_repeat) {
    if (q.rep_k == q.rep_n) {
      q.in_repeat = false;
      advance(qid);
    } else {
      ++q.rep_k;
      q.rep_next += q.rep_stride;
      schedule(qid, q.rep_next);
    }
    return;
  }
  ++q.pc;
  q.cursor = t + 1;
  const std::vector<Instr>& code = *q.code;
  if (q.pc < code.size() && code[q.pc].op == Opcode::Repeat) {
    const Instr& r = code[q.pc];
    q.in_repeat = true;
    q.rep_pc = q.pc - 1;
    q.rep_k = 1;
    q.rep_n = r.get(Field::Count);
    q.rep_stride = r.get(Field::Stride);
    q.rep_next = t + q.rep_stride;
    q.cursor = t + static_cast<uint64_t>(q.rep_n) * q.rep_stride + 1;
    ++q.pc;
    schedule(qid, q.rep_next);
    return;
  }
  advance(qid);
}

void ChipEngine::park(uint32_t qid) {
  EngineQueue& q = queues_[qid];
  q.parked = true;
  q.park_pc = q.pc;
  q.park_cursor = q.cursor;
  // A notify already executed at a cycle >= the park cursor releases it (only possible when the
  // cursor did not move past the current cycle, e.g. a sync right after a release).
  auto it = std::lower_bound(notifies_.begin(), notifies_.end(), q.park_cursor);
  if (it != notifies_.end()) {
    release(qid, *it);
    return;
  }
  parked_.push_back(qid);
}

void ChipEngine::release(uint32_t qid, uint64_t notify_cycle) {
  EngineQueue& q = queues_[qid];
  q.parked = false;
  q.cursor = notify_cycle + instr_timing(cfg_, make_instr(Opcode::Sync)).latency;  // the shared timing rule
  q.pc = q.park_pc + 1;
  advance(qid);
}

void ChipEngine::exec_notify(uint64_t t) {
  notifies_.push_back(t);
  // Release in queue-id order; released queues may park again (on a later sync), which appends.
  size_t n = parked_.size();
  std::sort(parked_.begin(), parked_.end());
  size_t keep = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t qid = parked_[i];
    if (queues_[qid].park_cursor <= t) {
      release(qid, t);
    } else {
      parked_[keep++] = qid;
    }
  }
  // Entries appended during the releases sit after index n.
  std::move(parked_.begin() + static_cast<std::ptrdiff_t>(n), parked_.end(), parked_.begin() + static_cast<std::ptrdiff_t>(keep));
  parked_.resize(keep + (parked_.size() - n));
}

}  // namespace lpu::sim::core
