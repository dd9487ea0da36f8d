// MXM instructions of a compiled program counted per plane: instructions with opcode `op` (and,
// if dt >= 0, that data type) per (MXM slice, plane), repeats expanded (replay_queue). Used by the
// matmul kernel's plan tests (which plane installs which tile, how rows are dealt).
#pragma once
#include <cstdint>
#include <map>
#include <utility>

#include "compiler/backend/queue_emitter.h"
#include "isa/isa.h"
#include "isa/program.h"

namespace lpu::test {

inline std::map<std::pair<uint16_t, uint32_t>, int64_t> per_plane(const Program& p, Opcode op, int dt = -1) {
  std::map<std::pair<uint16_t, uint32_t>, int64_t> n;
  for (const QueueCode& q : p.chips[0].queues)
    for (const auto& ti : compiler::replay_queue(q.code)) {
      const Instr& in = ti.second;
      if (in.op == op && (dt < 0 || in.get(Field::DType) == static_cast<uint32_t>(dt)))
        n[{q.slice, in.get(Field::Plane)}]++;
    }
  return n;
}

}  // namespace lpu::test
