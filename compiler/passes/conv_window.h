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

// Input coordinates (*ih, *iw) of tap t (t = i * kw + j) of output pixel (oh, ow); outside
// [0, H) x [0, W) where the tap falls in the padding.
inline void tap_coords(const Window& w, int64_t oh, int64_t ow, int64_t t, int64_t* ih, int64_t* iw) {
  *ih = oh * w.sh - w.pt + (t / w.kw) * w.dh;
  *iw = ow * w.sw - w.pl + (t % w.kw) * w.dw;
}

// For every tap (outer) and output pixel (inner, in [N, OH, OW] order) the input pixel it reads,
// a row (n * H + ih) * W + iw of the [N * H * W, C] layout, or -1 in the padding.
std::vector<std::vector<int64_t>> tap_rows(const Window& w, int64_t N, int64_t H, int64_t W, int64_t OH, int64_t OW);

// Conv `op`'s bias (its optional third input: a constant of M values), empty if none.
std::vector<float> conv_bias(const ir::Graph& g, const ir::Op& op, int64_t M);

// A 1x1 stride-1 unpadded ungrouped Conv with a constant weight (its rows are its input's pixels).
bool plain_1x1_conv(const ir::Graph& g, const ir::Op& q);

}  // namespace lpu::compiler
