// Assertion shared by the fp16 per-step tests: every op the chip stores is within its local bound
// (ref::verify_steps), and at least one op was checked.
#pragma once
#include <catch2/catch.hpp>

#include "compiler/reference/step_check.h"

namespace lpu::test {

inline void check_steps_ok(const ref::StepCheck& sc) {
  for (const ref::StepVerdict& v : sc.steps) {
    INFO(v.op << " (" << v.kind << ") -> " << v.tensor << ": " << v.outside << " outside, " << v.unbounded
              << " unbounded, worst err/bound " << v.worst_ratio);
    CHECK(v.ok());
  }
  CHECK(sc.ok());
  CHECK(!sc.steps.empty());
}

}  // namespace lpu::test
