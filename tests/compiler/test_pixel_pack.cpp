// Pixel packing (compiler/passes/lower_conv.h "Pixel packing", PackChoice): a 3x3 conv with few
// channels between two 1x1 convs (ResNet-50's bottlenecks) stores S output pixels a row and reads
// its input from rows of several pixels that the 1x1 conv before it writes: overlapping rows (kw + S
// - 1 column blocks, one stored row a kernel row) or disjoint rows (B pixels a row, each pixel once,
// D consecutive rows a kernel row; also for stride 2 and for 128 channels). The 1x1 conv after it is
// S layers, one per pixel position, each writing its pixels' rows (and taking the block's residual
// Add in its epilogue). Checked: the lowering (layouts, shapes, maps, the residual fused into every
// part), that a conv whose output has another reader keeps one pixel a row, values against the
// reference interpreter (odd widths, stride 2, C 40 / 64 / 128), predicted == simulated, the
// reported MACs equal to the unpacked model's, the per-step check, and int8 layer by layer.
#include <catch2/catch.hpp>

#include <cmath>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/step_check.h"
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

struct Block {
  int64_t Cin = 16, C = 64, M = 64, H = 5, W = 10;  // block channels, the 3x3 conv's input / output channels
  std::vector<int64_t> pads{1, 1, 1, 1};           // the 3x3 conv's: top, left, bottom, right
  int64_t stride = 1;                              // the 3x3 conv's (2: no residual Add)
  bool extra_reader = false;                       // the 3x3 conv's output also a graph output
  int64_t OH() const { return (H + pads[0] + pads[2] - 3) / stride + 1; }
  int64_t OW() const { return (W + pads[1] + pads[3] - 3) / stride + 1; }
};

ir::TensorId conv(ir::Graph& g, const std::string& name, ir::TensorId x, int64_t cin, int64_t cout, int64_t k,
                  std::vector<int64_t> pads, const ir::Shape& out_shape, uint32_t seed, int64_t stride = 1,
                  ir::DType dt = ir::DType::F16) {
  const float sc = 1.f / std::sqrt(static_cast<float>(cin * k * k));
  const ir::TensorId w = g.add_constant(name + ".w", ir::DType::F16, {cout, cin, k, k},
                                        f16_bytes(random_f16(cout * cin * k * k, -sc, sc, seed)));
  const ir::TensorId b = g.add_constant(name + ".b", ir::DType::F16, {cout}, f16_bytes(random_f16(cout, -0.5f, 0.5f, seed + 1)));
  const ir::TensorId y = g.add_tensor(name + ".y", dt, out_shape);
  g.add_op(make_op(ir::OpKind::Conv, name, {x, w, b}, {y},
                   {{"kernel_shape", std::vector<int64_t>{k, k}}, {"strides", std::vector<int64_t>{stride, stride}},
                    {"pads", pads}, {"group", int64_t{1}}}));
  return y;
}

ir::TensorId relu(ir::Graph& g, const std::string& name, ir::TensorId x, ir::DType dt = ir::DType::F16) {
  const ir::TensorId y = g.add_tensor(name, dt, g.tensor(x).shape);
  g.add_op(make_op(ir::OpKind::Relu, name, {x}, {y}));
  return y;
}

// X [1, Cin, H, W] -> lead (1x1) -> L; L -> pre (1x1, C) -> relu -> conv (3x3, M) -> relu -> post
// (1x1, Cin); Y = relu(post + L) (f32 output), or relu(post) for a strided conv.
ir::Graph block_graph(const Block& s) {
  ir::Graph g;
  g.name = "pixel_pack";
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {1, s.Cin, s.H, s.W});
  const ir::TensorId l = conv(g, "lead", x, s.Cin, s.Cin, 1, {0, 0, 0, 0}, {1, s.Cin, s.H, s.W}, 10);
  const ir::TensorId p = relu(g, "pre.relu", conv(g, "pre", l, s.Cin, s.C, 1, {0, 0, 0, 0}, {1, s.C, s.H, s.W}, 12));
  const ir::TensorId c = conv(g, "conv", p, s.C, s.M, 3, s.pads, {1, s.M, s.OH(), s.OW()}, 14, s.stride);
  if (s.extra_reader) g.mark_output(c);
  const ir::TensorId r = relu(g, "conv.relu", c);
  const ir::TensorId q = conv(g, "post", r, s.M, s.Cin, 1, {0, 0, 0, 0}, {1, s.Cin, s.OH(), s.OW()}, 16);
  if (s.stride != 1) {
    g.mark_output(relu(g, "Y", q, ir::DType::F32));
    return g;
  }
  const ir::TensorId sum = g.add_tensor("sum", ir::DType::F16, {1, s.Cin, s.H, s.W});
  g.add_op(make_op(ir::OpKind::Add, "residual", {q, l}, {sum}));
  g.mark_output(relu(g, "Y", sum, ir::DType::F32));
  return g;
}

LowerOptions overlapping() {
  LowerOptions o;
  o.pack_disjoint_rows = false;
  return o;
}

}  // namespace

TEST_CASE("pixel pack: overlapping rows, a 64-channel 3x3 conv stores 3 pixels a row (shapes, maps, residual)",
          "[conv][pixel_pack]") {
  const Block s;  // C = M = 64: S = 320 / 64 - 3 + 1 = 3; W = 10: 4 stored rows an image row
  const ir::Graph g = block_graph(s);
  const LoweredModel lm = lower_graph(g, default_chip_config()->vector_bytes(), overlapping());  // residual Adds fused
  const LoweredLayer* c = lpu::test::layer_named(lm, "conv");
  const LoweredLayer* p = lpu::test::layer_named(lm, "pre");
  REQUIRE(c);
  REQUIRE(p);
  const int64_t S = 3, J = 4;
  CHECK(p->y_shape == std::vector<int64_t>{1, s.H, J, 5 * s.C});
  CHECK(p->k_blocks == 5);
  CHECK(c->y_shape == std::vector<int64_t>{1, s.H, J, S * s.M});
  CHECK(c->N == S * s.M);
  CHECK(c->K == 3 * 5 * s.C);
  REQUIRE(c->tap_rows.size() == 3u);
  // Tap i of stored output row (oh, j) is pre's stored row (oh - 1 + i, j).
  CHECK(c->tap_rows[0][0] == -1);
  CHECK(c->tap_rows[1][2 * J + 3] == 2 * J + 3);
  CHECK(c->tap_rows[2][2 * J + 1] == 3 * J + 1);
  // Block b of pre's stored row (h, j) is pixel (h, 3j - 1 + b): row (1, 3) has blocks 0, 1 (columns
  // 8, 9) inside the image and 2-4 (10-12) outside, which its part does not read (2 taps).
  const LoweredLayer* pe = nullptr;  // the layer writing stored row (1, 3)
  size_t m = 0;
  for (const LoweredLayer& L : lm.layers) {
    if (L.y != p->y) continue;
    for (size_t k = 0; k < L.y_rows.size(); ++k)
      if (L.y_rows[k] == 1 * J + 3) {
        pe = &L;
        m = k;
      }
  }
  REQUIRE(pe);
  REQUIRE(pe->tap_rows.size() == 2u);
  CHECK(pe->K == 2 * s.Cin);
  CHECK(pe->tap_rows[0][m] == 1 * s.W + 8);
  CHECK(pe->tap_rows[1][m] == 1 * s.W + 9);
  // The conv's banded weight: output block s reads x blocks s..s+2 (block 4 of output block 0 is zero).
  const auto wat = [&](int64_t i, int64_t b, int64_t cc, int64_t ob, int64_t mm) {
    return c->w[static_cast<size_t>(((i * 5 + b) * s.C + cc) * c->N + ob * s.M + mm)];
  };
  CHECK(wat(1, 4, 7, 0, 5) == 0.f);
  CHECK(wat(1, 1, 7, 0, 5) == wat(1, 2, 7, 1, 5));
  CHECK(wat(1, 1, 7, 0, 5) != 0.f);
  // post: 3 layers, pixels w = 0, 1, 2 (mod 3): 4, 3, 3 an image row, each with the residual fused.
  const std::vector<std::string> parts{"post", "post.px1", "post.px2"};
  const std::vector<size_t> per_row{4, 3, 3};
  for (size_t k = 0; k < 3; ++k) {
    const LoweredLayer* q = lpu::test::layer_named(lm, parts[k]);
    REQUIRE(q);
    CHECK(q->y_rows.size() == per_row[k] * static_cast<size_t>(s.H));
    CHECK(q->K == S * s.M);
    CHECK(q->residual == g.find("lead.y"));
    CHECK(q->y == g.find("sum"));
    // Its row m is pixel (h, w) with w = k (mod 3), read from stored row (h, w / 3).
    const int64_t y1 = q->y_rows[1], h = y1 / s.W, w = y1 % s.W;
    CHECK(w % 3 == static_cast<int64_t>(k));
    CHECK(q->tap_rows[0][1] == h * J + w / 3);
  }
  CHECK_FALSE(lpu::test::layer_named(lm, "post.px3"));
  // No elementwise Add left: the residual runs in post's epilogues.
  for (const LoweredEltwise& E : lm.eltwise) CHECK(E.name != "residual");
}

TEST_CASE("pixel pack: a 3x3 conv whose output has another reader keeps one pixel a row", "[conv][pixel_pack]") {
  Block s;
  s.extra_reader = true;
  const ir::Graph g = block_graph(s);
  const LoweredModel lm = lower_graph(g);
  const LoweredLayer* c = lpu::test::layer_named(lm, "conv");
  REQUIRE(c);
  CHECK(c->N == s.M);  // packed taps (3 blocks a pixel), one pixel a row
  CHECK(lpu::test::layer_named(lm, "pre")->k_blocks == 3);
  CHECK_FALSE(lpu::test::layer_named(lm, "post.px1"));
}

TEST_CASE("pixel pack: disjoint rows, a 64-channel 3x3 conv stores 5 pixels a row from rows of 5 pixels",
          "[conv][pixel_pack]") {
  const Block s;  // C = M = 64, W = 10: x rows of 5 pixels (columns 5k - 1 .. 5k + 3), 3 an image row
  const ir::Graph g = block_graph(s);
  const LoweredModel lm = lower_graph(g);
  const LoweredLayer* c = lpu::test::layer_named(lm, "conv");
  const LoweredLayer* p = lpu::test::layer_named(lm, "pre");
  REQUIRE(c);
  REQUIRE(p);
  const int64_t Jx = 3, Jy = 2;
  CHECK(p->y_shape == std::vector<int64_t>{1, s.H, Jx, 5 * s.C});
  CHECK(c->y_shape == std::vector<int64_t>{1, s.H, Jy, 5 * s.M});
  CHECK(c->N == 5 * s.M);
  CHECK(c->k_blocks == 6);  // 3 kernel rows x 2 stored rows (5 output pixels need 7 columns)
  CHECK(c->K == 6 * 5 * s.C);
  REQUIRE(c->tap_rows.size() == 6u);
  // Tap (i, d) of output row (oh, j) is x's stored row (oh - 1 + i, j + d); row (2, 1), d = 1: (i, 2).
  CHECK(c->tap_rows[1 * 2 + 0][2 * Jy + 1] == 2 * Jx + 1);
  CHECK(c->tap_rows[2 * 2 + 1][2 * Jy + 1] == 3 * Jx + 2);
  CHECK(c->tap_rows[0][0] == -1);  // above the image
  // The weight: output pixel s, tap t reads block b of stored row d with d * 5 + b - s = t.
  const auto wat = [&](int64_t i, int64_t d, int64_t b, int64_t cc, int64_t sp, int64_t mm) {
    return c->w[static_cast<size_t>((((i * 2 + d) * 5 + b) * s.C + cc) * c->N + sp * s.M + mm)];
  };
  CHECK(wat(1, 0, 0, 3, 0, 7) != 0.f);
  CHECK(wat(1, 0, 0, 3, 0, 7) == wat(1, 0, 4, 3, 4, 7));  // tap 0 of pixels 0 and 4
  CHECK(wat(1, 1, 1, 3, 4, 7) == wat(1, 0, 2, 3, 0, 7));  // tap 2 of pixel 4 is block 1 of the next row
  CHECK(wat(1, 1, 0, 3, 0, 7) == 0.f);                    // pixel 0 never reads the next row
  // pre's stored row (h, 2) holds columns 9 .. 13: one tap (column 9).
  bool found = false;
  for (const LoweredLayer& L : lm.layers)
    for (size_t m = 0; L.y == p->y && m < L.y_rows.size(); ++m)
      if (L.y_rows[m] == 1 * Jx + 2) {
        found = true;
        REQUIRE(L.tap_rows.size() == 1u);
        CHECK(L.tap_rows[0][m] == 1 * s.W + 9);
      }
  CHECK(found);
  // post: 5 layers (pixels w = 0..4 mod 5, 2 an image row), the residual in each.
  for (int k = 0; k < 5; ++k) {
    const LoweredLayer* q = lpu::test::layer_named(lm, k == 0 ? "post" : "post.px" + std::to_string(k));
    REQUIRE(q);
    CHECK(q->y_rows.size() == static_cast<size_t>(2 * s.H));
    CHECK(q->residual == g.find("lead.y"));
  }
  // The same graph with disjoint rows off takes overlapping rows (3 pixels a row).
  CHECK(lpu::test::layer_named(lower_graph(g, default_chip_config()->vector_bytes(), overlapping()), "conv")->N ==
        3 * s.M);
}

TEST_CASE("pixel pack: values equal the reference, predicted == simulated, the model's MACs reported",
          "[conv][pixel_pack]") {
  std::vector<Block> shapes;
  shapes.push_back(Block{});  // W = 10: partial last rows (overlapping: pixels 10, 11 outside)
  Block b;                    // C = M = 40, W = 13, H = 3 (overlapping S = 6, disjoint 8 a row)
  b.C = b.M = 40;
  b.W = 13;
  b.H = 3;
  shapes.push_back(b);
  Block c;  // C 64 -> M 96 (the conv's output blocks 288 lanes), W = 9, Cin 24
  c.M = 96;
  c.W = 9;
  c.Cin = 24;
  shapes.push_back(c);
  Block d;  // C = M = 128 (ResNet-50 stage 2): disjoint rows of 2 pixels
  d.C = d.M = 128;
  d.W = 7;
  shapes.push_back(d);
  Block e = d;  // ... stride 2 (layer2.0's 3x3), W = 8
  e.stride = 2;
  e.W = 8;
  e.H = 6;
  shapes.push_back(e);
  Block f;  // C = 64, stride 2, asymmetric pads
  f.stride = 2;
  f.W = 11;
  f.pads = {1, 1, 0, 1};
  shapes.push_back(f);
  auto cfg = default_chip_config();
  for (size_t k = 0; k < shapes.size(); ++k)
    for (const bool disjoint : {true, false}) {
      const Block& s = shapes[k];
      INFO("shape " << k << ": C " << s.C << ", M " << s.M << ", W " << s.W << ", stride " << s.stride
                    << (disjoint ? ", disjoint rows" : ", overlapping rows"));
      const ir::Graph g = block_graph(s);
      CompileOptions o;
      o.lower.pack_disjoint_rows = disjoint;
      const LoweredModel lm = lower_graph(g, cfg->vector_bytes(), o.lower);
      // Packed: pre writes rows of several pixels (not packed taps' kw blocks of one pixel).
      const LoweredLayer* p = lpu::test::layer_named(lm, "pre");
      REQUIRE(p);
      if (disjoint || (s.stride == 1 && s.C * 4 <= 320)) CHECK(p->y_shape[2] < s.W);
      lpu::test::check_chip_against_reference(g, {random_f16(s.Cin * s.H * s.W, -1.f, 1.f, static_cast<uint32_t>(30 + k))}, o);
      // The reported MACs are the graph's, as without any packing.
      CompileOptions un;
      un.lower.pack_conv_taps = false;
      const CompileResult packed = compile(g, *cfg, o);
      CHECK(packed.macs == compile(g, *cfg, un).macs);
      CHECK(packed.macs == static_cast<uint64_t>(s.H * s.W * (s.Cin * s.Cin + s.Cin * s.C) +
                                                 s.OH() * s.OW() * (9 * s.C * s.M + s.M * s.Cin)));
    }
}

TEST_CASE("pixel pack: the per-step check unpacks the conv's stored rows (whole and partial last rows)",
          "[conv][pixel_pack]") {
  // W 9 / 10: the stored tensor has the graph's element count with overlapping / disjoint rows (3
  // or 5 pixels a row), and more with the other.
  for (const int64_t W : {9, 10})
    for (const bool disjoint : {true, false}) {
    INFO("W " << W << (disjoint ? ", disjoint rows" : ", overlapping rows"));
    Block s;
    s.W = W;
    s.H = 3;
    const ir::Graph g = block_graph(s);
    const auto cfg = default_chip_config();
    CompileOptions o;
    o.keep_intermediates = true;
    o.lower.pack_disjoint_rows = disjoint;
    const CompileResult cr = compile(g, *cfg, o);
    const LoweredModel lm = lower_graph(g, cfg->vector_bytes(), o.lower);
    const ir::TensorId r = g.find("conv.relu");
    REQUIRE(lm.pixel_packed.count(r));
    const std::vector<float> xv = random_f16(s.Cin * s.H * s.W, -1.f, 1.f, 40);
    sim::SimOptions so;
    so.mode = sim::Mode::Functional;
    bind_input(cr.program, "X", f16_bytes(to_chip_input(lm.inputs[0], xv)), &so.inputs);
    const sim::SimResult run = sim::simulate(cr.program, *cfg, so);
    CHECK(run.cycles == cr.program.predicted_cycles);
    const auto chip = ref::chip_graph_tensors(g, lm, cr.program, run.outputs);
    REQUIRE(chip.count(r));  // the conv's output, in graph order
    const ref::StepCheck sc = ref::verify_steps(g, {ref::Value::floats({1, s.Cin, s.H, s.W}, xv, ir::DType::F16)}, chip);
    CHECK(sc.ok());
    // The conv's output and pre's (x, several pixels a row) are both checked.
    bool conv_checked = false, pre_checked = false;
    for (const ref::StepVerdict& v : sc.steps) {
      conv_checked = conv_checked || v.op == "conv.relu";
      pre_checked = pre_checked || v.op == "pre.relu";
    }
    CHECK(conv_checked);
    CHECK(pre_checked);
    REQUIRE(chip.count(g.find("pre.relu")));
    // Two pixels of the conv's output exchanged (what a wrong unpacking gives) are caught: the
    // pair with the largest difference, so the swap is always a real change.
    auto bad = chip;
    std::vector<double>& v = bad.at(r);
    size_t lo = 0, hi = 0;
    for (size_t k = 0; k < v.size(); ++k) {
      if (v[k] < v[lo]) lo = k;
      if (v[k] > v[hi]) hi = k;
    }
    REQUIRE(v[hi] - v[lo] > 0.1);
    std::swap(v[lo], v[hi]);
    CHECK_FALSE(ref::verify_steps(g, {ref::Value::floats({1, s.Cin, s.H, s.W}, xv, ir::DType::F16)}, bad).ok());
  }
}

TEST_CASE("pixel pack: int8, calibrated: every packed layer within the int8 bound, predicted == simulated",
          "[conv][pixel_pack][int8]") {
  Block s;
  s.W = 10;  // disjoint rows (at W = 11 overlapping rows cost fewer MXM vectors)
  s.H = 4;
  const ir::Graph g = block_graph(s);
  const lpu::test::Int8NchwRun t = lpu::test::run_int8_nchw(g, s.Cin, s.H, s.W, 61, 62, "lead");
  REQUIRE(lpu::test::layer_named(t.lm, "post.px4"));
  CHECK(lpu::test::layer_named(t.lm, "conv")->N == 5 * s.M);  // disjoint rows, 5 pixels a row
  // pre's parts (one per set of blocks inside the image), the conv, post's 5 parts: all int8.
  size_t int8_layers = 0;
  for (size_t i = 0; i < t.lm.layers.size(); ++i) int8_layers += t.quant().layers[i].int8 ? 1 : 0;
  CHECK(int8_layers == t.lm.layers.size() - 1);  // all but lead
  lpu::test::require_int8_steps_ok(t.check, int8_layers);
}

TEST_CASE("pixel pack: conv part names map back to their graph op", "[compiler][conv][pixel_pack]") {
  CHECK(conv_part_name("/l1/conv3/Conv", ConvPart::Px, 0) == "/l1/conv3/Conv");
  CHECK(conv_part_name("/l1/conv3/Conv", ConvPart::Px, 2) == "/l1/conv3/Conv.px2");
  CHECK(conv_part_name("/l1/conv1/Conv", ConvPart::Pack, 11) == "/l1/conv1/Conv.pack11");
  for (const ConvPart k : {ConvPart::Pack, ConvPart::Px})
    for (size_t n : {0, 1, 12}) CHECK(conv_part_op(conv_part_name("a.b/Conv", k, n)) == "a.b/Conv");
  CHECK(conv_part_op("conv.pack") == "conv.pack");    // no part number
  CHECK(conv_part_op("conv.px3b") == "conv.px3b");    // not a number
  CHECK(conv_part_op("conv.px3.x") == "conv.px3.x");  // not a suffix
  CHECK(conv_part_op("MatMul_1") == "MatMul_1");
}
