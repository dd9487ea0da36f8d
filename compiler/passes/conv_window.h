// Conv and pool window attributes and the shared error of the conv lowering (passes/lower_conv.h);
// used by lower_conv.cpp and conv_packing.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace lpu::compiler {

// InputError naming the model, the node and what the conv lowering supports.
[[noreturn]] void conv_fail(const ir::Graph& g, const ir::Op& op, const std::string& why);

// Spatial attributes of a Conv / pool with 2 spatial dims.
struct Window {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
};

// Kernel, strides, dilations and pads of `op` (2 spatial dims; conv_fail on bad attributes).
Window window_of(const ir::Graph& g, const ir::Op& op, const ir::Shape& kernel);

// Conv `op`'s bias (its optional third input: a constant of M values), empty if none.
std::vector<float> conv_bias(const ir::Graph& g, const ir::Op& op, int64_t M);

// A 1x1 stride-1 unpadded ungrouped Conv with a constant weight (its rows are its input's pixels).
bool plain_1x1_conv(const ir::Graph& g, const ir::Op& q);

}  // namespace lpu::compiler
