// Conv and pool window attributes (see conv_window.h).
#include "compiler/passes/conv_window.h"

#include <fmt/format.h>

#include "isa/chip_config.h"

namespace lpu::compiler {

void conv_fail(const ir::Graph& g, const ir::Op& op, const std::string& why) {
  throw InputError(fmt::format("model '{}': node '{}' ({}): {} (conv nets: Conv with 2 spatial dims, any strides, "
                               "pads, dilations and groups; MaxPool, AveragePool, GlobalAveragePool; elementwise "
                               "ops on conv activations; Flatten/Reshape of a [N, C, 1, 1] tensor to [N, C])",
                               g.name, op.name, ir::op_kind_name(op.kind), why));
}

Window window_of(const ir::Graph& g, const ir::Op& op, const ir::Shape& kernel) {
  Window w;
  if (kernel.size() != 2) conv_fail(g, op, fmt::format("kernel_shape {} has {} dims; 2 spatial dims only", ir::shape_str(kernel), kernel.size()));
  w.kh = kernel[0];
  w.kw = kernel[1];
  auto two = [&](const char* a, int64_t* x, int64_t* y) {
    if (!op.attrs.count(a)) return;
    const std::vector<int64_t>& v = op.attr_ints(a);
    if (v.empty()) return;
    if (v.size() != 2) conv_fail(g, op, fmt::format("attribute {} has {} values, expected 2", a, v.size()));
    *x = v[0];
    *y = v[1];
  };
  two("strides", &w.sh, &w.sw);
  two("dilations", &w.dh, &w.dw);
  if (op.attrs.count("pads") && !op.attr_ints("pads").empty()) {
    const std::vector<int64_t>& p = op.attr_ints("pads");
    if (p.size() != 4) conv_fail(g, op, fmt::format("attribute pads has {} values, expected 4", p.size()));
    w.pt = p[0];
    w.pl = p[1];
    w.pb = p[2];
    w.pr = p[3];
  }
  if (w.kh < 1 || w.kw < 1 || w.sh < 1 || w.sw < 1 || w.dh < 1 || w.dw < 1 || w.pt < 0 || w.pl < 0 || w.pb < 0 ||
      w.pr < 0)
    conv_fail(g, op, "kernel, strides and dilations must be >= 1 and pads >= 0");
  return w;
}

std::vector<std::vector<int64_t>> tap_rows(const Window& w, int64_t N, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  const int64_t taps = w.kh * w.kw;
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(taps), std::vector<int64_t>(static_cast<size_t>(N * OH * OW)));
  for (int64_t n = 0, r = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow, ++r)
        for (int64_t t = 0; t < taps; ++t) {
          int64_t ih = 0, iw = 0;
          tap_coords(w, oh, ow, t, &ih, &iw);
          rows[static_cast<size_t>(t)][static_cast<size_t>(r)] =
              ih >= 0 && ih < H && iw >= 0 && iw < W ? (n * H + ih) * W + iw : -1;
        }
  return rows;
}

bool plain_1x1_conv(const ir::Graph& g, const ir::Op& q) {
  if (q.kind != ir::OpKind::Conv || q.inputs.size() < 2) return false;
  const ir::Tensor& w = g.tensor(q.inputs[1]);
  if (!w.is_const || w.shape.size() != 4 || w.shape[2] != 1 || w.shape[3] != 1) return false;
  if (q.attrs.count("group") && q.attr_int("group") != 1) return false;
  const Window win = window_of(g, q, {1, 1});
  return win.sh == 1 && win.sw == 1 && win.pt + win.pl + win.pb + win.pr == 0;
}

std::vector<float> conv_bias(const ir::Graph& g, const ir::Op& op, int64_t M) {
  if (op.inputs.size() < 3 || op.inputs[2] == ir::kNoTensor) return {};
  const ir::Tensor& b = g.tensor(op.inputs[2]);
  if (!b.is_const || b.elements() != M) conv_fail(g, op, fmt::format("the bias '{}' must be a constant of {} values", b.name, M));
  return b.const_floats();
}

}  // namespace lpu::compiler
