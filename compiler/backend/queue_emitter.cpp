// Emission of per-queue code from placements: sort by cycle, nops for gaps, repeat for regular runs.
#include "compiler/backend/queue_emitter.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lpu::compiler {

namespace {

constexpr uint64_t kMaxRepeat = (uint64_t{1} << 24) - 1;  // FRep count/stride are 24-bit fields
constexpr uint64_t kMaxNop = 0xFFFFFFFFull;                // FImm imm is 32 bits

// True if b equals a with its step field advanced by k (and everything else identical).
bool is_step_of(const Instr& a, const Instr& b, uint64_t k) {
  if (a.op != b.op) return false;
  const Field sf = op_info(a.op).step;
  if (sf == Field::None) return a == b;
  Instr c = a;
  const uint64_t v = uint64_t{a.get(sf)} + k;
  if (v > 0xFFFFu) return false;  // Row and Addr fields are 16 bits
  c.set(sf, static_cast<uint32_t>(v));
  return c == b;
}

void push_nop(std::vector<Instr>& code, uint64_t n) {
  while (n > 0) {
    const uint64_t k = std::min(n, kMaxNop);
    Instr nop = make_instr(Opcode::Nop);
    nop.set(Field::Imm, static_cast<uint32_t>(k));
    code.push_back(nop);
    n -= k;
  }
}

// Indices of the placements in (slice, queue, t) order, ties in their original order (what a
// stable sort would give), without moving the placements: a counting sort by (slice, queue), then
// each queue's (t, index) pairs sorted. Whole models have tens of millions of placements; a
// std::stable_sort of the ~90-byte structs took a third of the CPU samples of BERT-base's compile.
std::vector<size_t> queue_order(const std::vector<Placement>& placements) {
  const size_t n = placements.size();
  auto key = [](const Placement& p) { return (size_t{p.slice} << 8) | p.queue; };
  size_t nkeys = 0;
  for (const Placement& p : placements) nkeys = std::max(nkeys, key(p) + 1);
  std::vector<size_t> start(nkeys + 1, 0);
  for (const Placement& p : placements) ++start[key(p) + 1];
  for (size_t k = 0; k < nkeys; ++k) start[k + 1] += start[k];
  std::vector<std::pair<uint64_t, size_t>> tq(n);  // (t, original index), grouped by queue
  std::vector<size_t> fill(start.begin(), start.end() - 1);
  for (size_t i = 0; i < n; ++i) tq[fill[key(placements[i])]++] = {placements[i].t, i};
  for (size_t k = 0; k < nkeys; ++k) {
    const auto b = tq.begin() + static_cast<std::ptrdiff_t>(start[k]);
    const auto e = tq.begin() + static_cast<std::ptrdiff_t>(start[k + 1]);
    if (!std::is_sorted(b, e)) std::sort(b, e);  // equal t: by original index
  }
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = tq[i].second;
  return order;
}

}  // namespace

ChipCode emit_queues(std::vector<Placement> placements_in, const EmitOptions& opt) {
  const std::vector<Placement>& all = placements_in;
  const std::vector<size_t> order = queue_order(all);
  // placements[j]: the j-th placement in (slice, queue, t) order.
  struct Sorted {
    const std::vector<Placement>& all;
    const std::vector<size_t>& order;
    const Placement& operator[](size_t j) const { return all[order[j]]; }
    size_t size() const { return order.size(); }
  } placements{all, order};
  ChipCode chip;
  size_t i = 0;
  while (i < placements.size()) {
    QueueCode qc;
    qc.slice = placements[i].slice;
    qc.queue = placements[i].queue;
    uint64_t cursor = 0;
    size_t j = i;
    while (j < placements.size() && placements[j].slice == qc.slice && placements[j].queue == qc.queue) {
      const Placement& p = placements[j];
      if (p.t < cursor)
        throw std::logic_error("emit_queues: two instructions on slice " + std::to_string(qc.slice) +
                               " queue " + std::to_string(qc.queue) + " at cycle " + std::to_string(p.t));
      push_nop(qc.code, p.t - cursor);
      qc.code.push_back(p.in);
      cursor = p.t + 1;
      size_t k = j + 1;
      if (opt.use_repeat && k < placements.size() && placements[k].slice == qc.slice &&
          placements[k].queue == qc.queue && placements[k].t > p.t && placements[k].t - p.t <= kMaxRepeat &&
          is_step_of(p.in, placements[k].in, 1)) {
        const uint64_t d = placements[k].t - p.t;
        uint64_t n = 1;
        while (n < kMaxRepeat && k + 1 < placements.size() && placements[k + 1].slice == qc.slice &&
               placements[k + 1].queue == qc.queue && placements[k + 1].t == p.t + (n + 1) * d &&
               is_step_of(p.in, placements[k + 1].in, n + 1)) {
          ++n;
          ++k;
        }
        Instr rep = make_instr(Opcode::Repeat);
        rep.set(Field::Count, static_cast<uint32_t>(n));
        rep.set(Field::Stride, static_cast<uint32_t>(d));
        qc.code.push_back(rep);
        cursor = p.t + n * d + 1;
        j = k + 1;
      } else {
        j = j + 1;
      }
    }
    chip.queues.push_back(std::move(qc));
    i = j;
  }
  return chip;
}

std::vector<std::pair<uint64_t, Instr>> replay_queue(const std::vector<Instr>& code) {
  std::vector<std::pair<uint64_t, Instr>> out;
  uint64_t cursor = 0;
  for (const Instr& in : code) {
    switch (op_info(in.op).unit) {
      case Unit::ICU:
        if (in.op == Opcode::Nop) {
          cursor += in.get(Field::Imm);
        } else if (in.op == Opcode::Repeat) {
          if (out.empty()) throw std::logic_error("replay_queue: repeat without a previous instruction");
          const auto prev = out.back();
          const Field sf = op_info(prev.second.op).step;
          for (uint64_t k = 1; k <= in.get(Field::Count); ++k) {
            Instr x = prev.second;
            if (sf != Field::None) x.set(sf, static_cast<uint32_t>(x.get(sf) + k));
            out.emplace_back(prev.first + k * in.get(Field::Stride), x);
          }
          cursor = prev.first + uint64_t{in.get(Field::Count)} * in.get(Field::Stride) + 1;
        } else {
          cursor += 1;  // notify/ifetch/config: one-cycle control ops
        }
        break;
      case Unit::MEM:
      case Unit::VXM:
      case Unit::MXM:
      case Unit::SXM:
      case Unit::C2C:
        out.emplace_back(cursor, in);
        cursor += 1;
        break;
    }
  }
  return out;
}

}  // namespace lpu::compiler
