// Looking up a lowered model's steps by name in tests (LoweredLayer::name, the IR op's or a part's
// such as "NAME.pack1" / "NAME.px2").
#pragma once
#include <string>

#include "compiler/passes/lowering.h"

namespace lpu::test {

// The dense layer named n, or nullptr.
inline const compiler::LoweredLayer* layer_named(const compiler::LoweredModel& lm, const std::string& n) {
  for (const compiler::LoweredLayer& L : lm.layers)
    if (L.name == n) return &L;
  return nullptr;
}

}  // namespace lpu::test
