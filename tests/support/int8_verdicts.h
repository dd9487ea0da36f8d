// Assertions shared by the int8 compile tests: a per-step int8 check (verify_int8_steps) where
// every int8 layer is within its bound, every bound says something (under 25 % of the largest
// |y|, the figure docs/compiler.md uses), and every other step passes.
#pragma once
#include <catch2/catch.hpp>

#include <cstddef>

#include "compiler/reference/int8_step_check.h"

namespace lpu::test {

// Every int8 layer within its bound and every other step ok.
inline void check_int8_steps_ok(const compiler::Int8StepCheck& ck) {
  for (const compiler::Int8LayerVerdict& v : ck.layers) {
    INFO(v.layer << ": max err " << v.max_err << ", max bound " << v.max_bound << ", max |y| " << v.max_ref);
    CHECK(v.ok());
  }
  for (const ref::StepVerdict& v : ck.steps.steps) {
    INFO(v.op << " (" << v.kind << "): max err " << v.max_err << ", worst err/bound " << v.worst_ratio);
    CHECK(v.ok());
  }
  CHECK(ck.ok());
}

// As check_int8_steps_ok, with exactly `int8_layers` int8 layers, each bound under 25 % of its max |y|.
inline void require_int8_steps_ok(const compiler::Int8StepCheck& ck, size_t int8_layers) {
  REQUIRE(ck.layers.size() == int8_layers);
  for (const compiler::Int8LayerVerdict& v : ck.layers) {
    INFO(v.layer << ": max bound " << v.max_bound << ", max |y| " << v.max_ref);
    CHECK(v.max_bound < 0.25 * v.max_ref);  // the bound says something
  }
  check_int8_steps_ok(ck);
}

}  // namespace lpu::test
