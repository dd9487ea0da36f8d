// Instructions a program issues that satisfy a predicate, counting an instruction followed by a
// `repeat` (issue the previous instruction `count` more times) as 1 + count issues.
#pragma once
#include <cstdint>

#include "isa/isa.h"
#include "isa/program.h"

namespace lpu::test {

template <class Pred>
uint64_t issued_count(const Program& p, Pred pred) {
  uint64_t n = 0;
  for (const ChipCode& c : p.chips)
    for (const QueueCode& q : c.queues)
      for (size_t i = 0; i < q.code.size(); ++i) {
        if (q.code[i].op == Opcode::Repeat || !pred(q.code[i])) continue;
        n += 1;
        if (i + 1 < q.code.size() && q.code[i + 1].op == Opcode::Repeat) n += q.code[i + 1].get(Field::Count);
      }
  return n;
}

// Issues of instructions with opcode `op`.
inline uint64_t issued_count(const Program& p, Opcode op) {
  return issued_count(p, [op](const Instr& in) { return in.op == op; });
}

}  // namespace lpu::test
