// Packed conv taps (compiler/passes/lower_conv.h "Packed taps"): a conv with few input channels
// whose input is written by a 1x1 conv reads kh taps of kw*C channels from a column-packed input
// (row (n, h, w) = the kw column taps side by side, zeros outside the image) that the 1x1 conv
// writes as kw taps of its own input, one layer per set of valid blocks. Checked: the lowering
// (which shapes pack, the layers and maps), the packed tensor on chip (blocks outside the image
// exactly 0, the others bit-equal to the centre block of the neighbour pixel), the outputs against
// the reference interpreter for C = 3, 64, 96, 128, stride 2, dilation, asymmetric pads, and
// predicted == simulated; int8 (calibrated) within the int8 bound layer by layer.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"
#include "tests/support/lowered_lookup.h"
#include "tests/support/int8_nchw_run.h"
#include "tests/support/int8_verdicts.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

// Packed taps only (no pixel packing with disjoint rows, which a strided conv would take).
CompileOptions taps_only() {
  CompileOptions o;
  o.lower.pack_disjoint_rows = false;
  return o;
}

LoweredModel lower_taps(const ir::Graph& g) {
  return lower_graph(g, default_chip_config()->vector_bytes(), taps_only().lower);
}

struct Shape2 {
  int64_t Cin = 8, C = 64, H = 6, W = 9, M = 16;  // X channels, packed conv's input channels, output channels
  int64_t kh = 3, kw = 3, sh = 1, sw = 1, dh = 1, dw = 1;
  std::vector<int64_t> pads{1, 1, 1, 1};  // top, left, bottom, right
  int64_t OH() const { return (H + pads[0] + pads[2] - dh * (kh - 1) - 1) / sh + 1; }
  int64_t OW() const { return (W + pads[1] + pads[3] - dw * (kw - 1) - 1) / sw + 1; }
};

// X [1, Cin, H, W] -> pre (1x1, bias) -> Relu -> R -> conv (kh x kw, bias) -> Y (f32 output);
// with `lead` a 1x1 conv "lead" (Cin -> Cin) first, so pre reads a conv activation.
ir::Graph pair_graph(const Shape2& s, bool lead = false) {
  ir::Graph g;
  g.name = "conv_pack";
  ir::TensorId x = g.add_input("X", ir::DType::F16, {1, s.Cin, s.H, s.W});
  if (lead) {
    const float sl = 1.f / std::sqrt(static_cast<float>(s.Cin));
    const ir::TensorId wl = g.add_constant("WL", ir::DType::F16, {s.Cin, s.Cin, 1, 1},
                                           f16_bytes(random_f16(s.Cin * s.Cin, -sl, sl, 10)));
    const ir::TensorId xl = g.add_tensor("XL", ir::DType::F16, {1, s.Cin, s.H, s.W});
    g.add_op(make_op(ir::OpKind::Conv, "lead", {x, wl}, {xl},
                     {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"strides", std::vector<int64_t>{1, 1}},
                      {"pads", std::vector<int64_t>{0, 0, 0, 0}}, {"group", int64_t{1}}}));
    x = xl;
  }
  const float s0 = 1.f / std::sqrt(static_cast<float>(s.Cin));
  const ir::TensorId w0 = g.add_constant("W0", ir::DType::F16, {s.C, s.Cin, 1, 1},
                                         f16_bytes(random_f16(s.C * s.Cin, -s0, s0, 11)));
  // Biases of both signs: a block outside the image would hold relu(b) > 0 if its bias were kept.
  const ir::TensorId b0 = g.add_constant("B0", ir::DType::F16, {s.C}, f16_bytes(random_f16(s.C, -0.5f, 0.5f, 12)));
  const ir::TensorId p = g.add_tensor("P", ir::DType::F16, {1, s.C, s.H, s.W});
  g.add_op(make_op(ir::OpKind::Conv, "pre", {x, w0, b0}, {p},
                   {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"strides", std::vector<int64_t>{1, 1}},
                    {"pads", std::vector<int64_t>{0, 0, 0, 0}}, {"group", int64_t{1}}}));
  const ir::TensorId r = g.add_tensor("R", ir::DType::F16, {1, s.C, s.H, s.W});
  g.add_op(make_op(ir::OpKind::Relu, "relu", {p}, {r}));
  const float s1 = 1.f / std::sqrt(static_cast<float>(s.C * s.kh * s.kw));
  const ir::TensorId w1 = g.add_constant("W1", ir::DType::F16, {s.M, s.C, s.kh, s.kw},
                                         f16_bytes(random_f16(s.M * s.C * s.kh * s.kw, -s1, s1, 13)));
  const ir::TensorId b1 = g.add_constant("B1", ir::DType::F16, {s.M}, f16_bytes(random_f16(s.M, -0.2f, 0.2f, 14)));
  const ir::TensorId y = g.add_tensor("Y", ir::DType::F32, {1, s.M, s.OH(), s.OW()});
  g.add_op(make_op(ir::OpKind::Conv, "conv", {r, w1, b1}, {y},
                   {{"kernel_shape", std::vector<int64_t>{s.kh, s.kw}}, {"strides", std::vector<int64_t>{s.sh, s.sw}},
                    {"dilations", std::vector<int64_t>{s.dh, s.dw}}, {"pads", s.pads}, {"group", int64_t{1}}}));
  g.mark_output(y);
  return g;
}

// The conv reads kh taps of kw*C channels from R, which pre's layers write kw*C wide.
void require_packed(const LoweredModel& lm, const ir::Graph& g, const Shape2& s) {
  const LoweredLayer* c = lpu::test::layer_named(lm, "conv");
  const LoweredLayer* p = lpu::test::layer_named(lm, "pre");
  REQUIRE(c);
  REQUIRE(p);
  CHECK(c->k_blocks == s.kh);
  REQUIRE(c->tap_rows.size() == static_cast<size_t>(s.kh));
  CHECK(c->K == s.kh * s.kw * s.C);
  CHECK(c->x == g.find("R"));
  CHECK(p->y == g.find("R"));
  CHECK(p->N == s.kw * s.C);
  CHECK(p->k_blocks == s.kw);
  CHECK(p->y_shape == std::vector<int64_t>{1, s.H, s.W, s.kw * s.C});
}

}  // namespace

TEST_CASE("conv pack: a 64-channel 3x3 conv after a 1x1 conv is packed (lowering maps, edge layers, bias)",
          "[conv][conv_pack]") {
  const Shape2 s;  // C 64, 3x3, pad 1, stride 1
  const ir::Graph g = pair_graph(s);
  const LoweredModel lm = lower_graph(g);
  require_packed(lm, g, s);
  const LoweredLayer& c = *lpu::test::layer_named(lm, "conv");
  // Tap i of output pixel (oh, ow) reads packed row (oh - 1 + i, ow), -1 outside.
  CHECK(c.tap_rows[0][0] == -1);
  CHECK(c.tap_rows[1][0] == 0);
  CHECK(c.tap_rows[2][2 * s.W + 4] == 3 * s.W + 4);
  CHECK(c.tap_rows[2][(s.H - 1) * s.W] == -1);
  // pre = 3 layers: the interior columns (all blocks valid), column 0 (block 0 outside), column
  // W - 1 (block 2 outside); each edge layer writes its H rows, bias 0 in the outside block.
  const LoweredLayer& p = *lpu::test::layer_named(lm, "pre");
  const LoweredLayer* e1 = lpu::test::layer_named(lm, "pre.pack1");
  const LoweredLayer* e2 = lpu::test::layer_named(lm, "pre.pack2");
  REQUIRE(e1);
  REQUIRE(e2);
  CHECK_FALSE(lpu::test::layer_named(lm, "pre.pack3"));
  CHECK(p.y_rows.size() == static_cast<size_t>(s.H * (s.W - 2)));
  CHECK(e1->y_rows.size() == static_cast<size_t>(s.H));
  CHECK(e2->y_rows.size() == static_cast<size_t>(s.H));
  // A block outside the image (every row of the part would read the padding) has bias 0 and no
  // tap: its weight rows are not installed, so the part has one tap per block inside.
  int zero_blocks = 0;
  for (const LoweredLayer* L : {&p, e1, e2}) {
    REQUIRE(L->bias.size() == static_cast<size_t>(3 * s.C));
    int zero_here = 0;
    for (int64_t j = 0; j < 3; ++j) {
      bool zero = true;
      for (int64_t c2 = 0; c2 < s.C; ++c2) zero = zero && L->bias[static_cast<size_t>(j * s.C + c2)] == 0.f;
      zero_here += zero ? 1 : 0;
    }
    CHECK(L->tap_rows.size() == static_cast<size_t>(3 - zero_here));
    CHECK(L->K == (3 - zero_here) * s.Cin);
    for (const std::vector<int64_t>& t : L->tap_rows) CHECK(std::count(t.begin(), t.end(), -1) == 0);
    zero_blocks += zero_here;
  }
  CHECK(zero_blocks == 2);
  // Tap j of packed row (h, w) is x's pixel (h, w - 1 + j): the interior layer's row m is (h, w).
  const int64_t m = 5, r = p.y_rows[static_cast<size_t>(m)];
  REQUIRE(p.tap_rows.size() == 3u);
  for (int64_t j = 0; j < 3; ++j) CHECK(p.tap_rows[static_cast<size_t>(j)][static_cast<size_t>(m)] == r - 1 + j);
  // The steps: pre's edge layers right after pre, before the conv.
  std::vector<std::string> order;
  for (const LoweredStep& st : lm.steps)
    if (st.dense) order.push_back(lm.layers[st.index].name);
  CHECK(order == std::vector<std::string>{"pre", "pre.pack1", "pre.pack2", "conv"});
  // Not packed when switched off: 9 taps of C.
  const LoweredModel lu = lower_graph(g, default_chip_config()->vector_bytes(), LowerOptions{false, true});
  CHECK(lpu::test::layer_named(lu, "conv")->tap_rows.size() == 9u);
  CHECK_FALSE(lpu::test::layer_named(lu, "pre.pack1"));
}

TEST_CASE("conv pack: shapes whose packing would not save MXM vectors are not packed", "[conv][conv_pack]") {
  Shape2 s;
  s.C = 128;  // 3 x 128 = 384 lanes: two vectors a tap row, and pre 3 times as many
  const ir::Graph g = pair_graph(s);
  const LoweredModel lm = lower_graph(g);
  CHECK(lpu::test::layer_named(lm, "conv")->tap_rows.size() == 9u);
  CHECK_FALSE(lpu::test::layer_named(lm, "pre.pack1"));
  Shape2 t;
  t.sh = t.sw = 2;  // a 3x3 stride-2 conv reads each pixel ~2.25 times: packing taps costs pre more
  const ir::Graph g2 = pair_graph(t);
  CHECK(lpu::test::layer_named(lower_taps(g2), "conv")->tap_rows.size() == 9u);
  // (Pixel packing with disjoint rows writes each pixel once: it packs this conv, 3 x 2 taps.)
  CHECK(lpu::test::layer_named(lower_graph(g2), "conv")->tap_rows.size() == 6u);
}

TEST_CASE("conv pack: packed convs equal the reference (C 3, 64, 96, 128, stride 2, dilation, asymmetric pads)",
          "[conv][conv_pack]") {
  std::vector<Shape2> shapes;
  Shape2 a;  // C = 3 (9 lanes a packed row), odd sizes
  a.Cin = 5;
  a.C = 3;
  a.H = 5;
  a.W = 7;
  shapes.push_back(a);
  Shape2 b;  // C = 64, asymmetric pads (bottom and right 0)
  b.pads = {1, 1, 0, 0};
  shapes.push_back(b);
  Shape2 c;  // C = 96, dilation 2 (pads 2), 288 lanes a packed row
  c.C = 96;
  c.Cin = 24;
  c.dh = c.dw = 2;
  c.pads = {2, 2, 2, 2};
  c.W = 8;
  shapes.push_back(c);
  Shape2 d;  // C = 64, 5x5 stride 2 pad 2 (packing pays with 5 column taps)
  d.kh = d.kw = 5;
  d.sh = d.sw = 2;
  d.pads = {2, 2, 2, 2};
  d.H = 7;
  d.W = 10;
  shapes.push_back(d);
  Shape2 e;  // C = 128, a 3x2 kernel: 256 lanes a packed row, pads top 1, left 0, bottom 1, right 1
  e.C = 128;
  e.Cin = 40;
  e.kw = 2;
  e.pads = {1, 0, 1, 1};
  shapes.push_back(e);
  for (size_t k = 0; k < shapes.size(); ++k) {
    const Shape2& s = shapes[k];
    INFO("shape " << k << ": C " << s.C << ", kernel " << s.kh << "x" << s.kw << ", stride " << s.sh);
    const ir::Graph g = pair_graph(s);
    require_packed(lower_taps(g), g, s);
    lpu::test::check_chip_against_reference(g, {random_f16(s.Cin * s.H * s.W, -1.f, 1.f, static_cast<uint32_t>(20 + k))},
                                            taps_only());
  }
}

TEST_CASE("conv pack: the packed tensor on chip: blocks outside the image exactly 0, the others the neighbour's",
          "[conv][conv_pack]") {
  Shape2 s;
  s.C = 40;
  s.W = 6;
  s.H = 4;
  const ir::Graph g = pair_graph(s);
  auto cfg = default_chip_config();
  CompileOptions o;
  o.keep_intermediates = true;
  const CompileResult cr = compile(g, *cfg, o);
  const LoweredModel lm = lower_graph(g);
  require_packed(lm, g, s);
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  bind_input(cr.program, "X", f16_bytes(to_chip_input(lm.inputs[0], random_f16(s.Cin * s.H * s.W, -1.f, 1.f, 7))),
             &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  const ChipStored R = chip_stored(cr.program, "R", r.outputs, 1.0);
  REQUIRE(R.rows == s.H * s.W);
  REQUIRE(R.inner == 3 * s.C);
  int64_t zeros = 0, positive = 0;
  for (int64_t h = 0; h < s.H; ++h)
    for (int64_t w = 0; w < s.W; ++w)
      for (int64_t j = 0; j < 3; ++j) {
        const int64_t iw = w - 1 + j;
        for (int64_t c = 0; c < s.C; ++c) {
          const double v = R.v[static_cast<size_t>((h * s.W + w) * R.inner + j * s.C + c)];
          if (iw < 0 || iw >= s.W) {
            CHECK(v == 0.0);
            ++zeros;
          } else {  // block j of (h, w) is block 1 (the centre) of (h, iw), bit for bit
            CHECK(v == R.v[static_cast<size_t>((h * s.W + iw) * R.inner + s.C + c)]);
            positive += v > 0 ? 1 : 0;
          }
        }
      }
  CHECK(zeros == 2 * s.H * s.C);
  CHECK(positive > 0);
  // The useful MACs are those of the unpacked model (pre's zero blocks are not counted).
  CompileOptions un = o;
  un.lower.pack_conv_taps = false;
  CHECK(compile(g, *cfg, un).macs == cr.macs);
  CHECK(cr.macs == static_cast<uint64_t>(s.H * s.W * (s.Cin * s.C + 9 * s.C * s.M)));
}

TEST_CASE("conv pack: int8, calibrated: packed layers within the int8 bound, predicted == simulated",
          "[conv][conv_pack][int8]") {
  Shape2 s;
  s.C = 64;
  s.Cin = 16;
  s.H = 5;
  s.W = 7;
  const ir::Graph g = pair_graph(s, true);
  // lead stays fp16 (pre reads a quantized copy of its output); pre's three layers run int8 and
  // write R as i8 (packed), the conv reads it.
  const lpu::test::Int8NchwRun t = lpu::test::run_int8_nchw(g, s.Cin, s.H, s.W, 51, 52, "lead");
  require_packed(t.lm, g, s);
  const QuantPlan& q = t.quant();
  for (size_t i = 0; i < t.lm.layers.size(); ++i) CHECK(q.layers[i].int8 == (t.lm.layers[i].name != "lead"));
  CHECK(q.i8_tensors.count(g.find("R")));
  CHECK(q.copies.size() == 1);  // of lead's output only
  lpu::test::require_int8_steps_ok(t.check, 4);  // pre, pre.pack1, pre.pack2, conv
}
