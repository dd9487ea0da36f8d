// Step spans grouped into model stages (a ResNet's stem, pool, layer1..layer4, fc): what each stage
// adds to the program's length and its MXM work, for bench/bench_conv_layers.cpp and `lpusim
// validate`'s ResNet-50 note. Attribution, not isolated cost: overlapping steps are charged for
// what they add to the program's end (StepSpan::end_after).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compiler/passes/schedule.h"

namespace lpu::compiler {

struct StageSpan {
  std::string name;
  uint64_t steps = 0, added = 0, abc = 0, lw = 0;
  std::map<char, uint64_t> by_kind;  // cycles added by step kind (StepSpan::kind)
};

// "/layer1/layer1.0/conv1/Conv" -> "/layer1" (a name up to its second '/'); a name without a
// leading '/' groups under itself up to its first '.', so "conv1.im2col" and "conv1" share a stage.
std::string stage_of(const std::string& step_name);

// The spans' stages in order of first appearance.
std::vector<StageSpan> stage_spans(const std::vector<StepSpan>& spans);

}  // namespace lpu::compiler
