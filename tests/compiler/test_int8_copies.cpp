// int8 for float graphs whose activations have several readers (passes/quantize.h "quantized
// copy", docs/compiler.md "int8 models"): a post-LN block where the LayerNorm output h feeds two
// projections AND the residual Add, and the graph input x feeds the LayerNorm AND a third
// projection. Neither h nor x can be stored i8 (they have fp16 readers), so with
// Int8Options::onchip_quantize each gets one on-chip quantized copy (VXM: muli by 1 / scale, cvt
// f32 -> i8) that its int8 readers share, while the fp16 tensor stays for the others.
// Checked step by step on the chip's own values with verify_int8_steps (compiler/reference/
// int8_step_check.h, the check of `lpusim check --precision int8`; errors do not compound): each
// int8 layer within int8_layer_bound on its dequantized i8 input, each copy within its f32 rounding +
// s / 2 + clipping, every other op within the fp16 local bound; predicted == simulated; a copy whose
// on-chip scale is 25 % off fails that copy's step. Also: torch's encoder_layer (int8 through row
// maps, the head-merge view and post-LN copies, every step within its bound; linear1's epilogue
// scale 25 % off fails exactly that layer) and identity row copies of i8 tensors (exact).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <set>

#include "compiler/compile.h"
#include "compiler/frontends/onnx_import.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/int8_bound.h"
#include "compiler/reference/int8_step_check.h"
#include "compiler/reference/step_check.h"
#include "isa/chip_config.h"
#include "isa/program_io.h"
#include "sim/simulator.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"
#include "tests/support/layer_norm_build.h"
#include "tests/support/int8_verdicts.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

constexpr int64_t R = 8, D = 96, N = 80;

// out = (h . W1 + b1) + (h . W2) + h + x . W3 with h = LayerNorm(x); x [R, D].
ir::Graph post_ln_block() {
  ir::Graph g;
  g.name = "post_ln";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {R, D});
  const ir::TensorId h = lpu::test::add_layer_norm(g, x, R, D);
  const float ws = 1.0f / std::sqrt(static_cast<float>(D));
  auto dense = [&](const std::string& n, ir::TensorId in, int64_t K, uint32_t seed, bool bias) {
    const ir::TensorId w = g.add_constant("W_" + n, ir::DType::F16, {K, D}, f16_bytes(random_f16(K * D, -ws, ws, seed)));
    const ir::TensorId m = g.add_tensor("mm_" + n, ir::DType::F16, {R, D});
    g.add_op(make_op(ir::OpKind::MatMul, "matmul_" + n, {in, w}, m));
    if (!bias) return m;
    const ir::TensorId b = g.add_constant("b_" + n, ir::DType::F16, {D}, f16_bytes(random_f16(D, -0.2f, 0.2f, seed + 1)));
    const ir::TensorId y = g.add_tensor("y_" + n, ir::DType::F16, {R, D});
    g.add_op(make_op(ir::OpKind::Add, "bias_" + n, {m, b}, y));
    return y;
  };
  const ir::TensorId y1 = dense("1", h, D, 11, true);
  const ir::TensorId y2 = dense("2", h, D, 13, false);
  const ir::TensorId y3 = dense("3", x, D, 17, false);
  auto add = [&](const std::string& n, ir::TensorId a, ir::TensorId b) {
    const ir::TensorId t = g.add_tensor(n, ir::DType::F16, {R, D});
    g.add_op(make_op(ir::OpKind::Add, "add_" + n, {a, b}, t));
    return t;
  };
  const ir::TensorId s = add("s", y1, y2);
  const ir::TensorId r = add("r", s, h);  // the residual: h's fp16 reader
  const ir::TensorId out = g.add_tensor("out", ir::DType::F32, {R, D});
  g.add_op(make_op(ir::OpKind::Add, "add_out", {r, y3}, out));
  g.mark_output(out);
  return g;
}

std::vector<float> input_of(uint32_t seed) { return random_f16(R * D, -2.f, 3.f, seed); }

ref::Value value_of(const std::vector<float>& x) { return ref::Value::floats({R, D}, x, ir::DType::F16); }

CompileOptions int8_options(const std::vector<std::vector<float>>& calib) {
  CompileOptions co;
  co.precision = Precision::INT8;
  co.int8.onchip_quantize = true;
  for (const std::vector<float>& c : calib) co.calibration.push_back({value_of(c)});
  return co;
}


// x -> y_k = x . W_k (k = 0, 1) -> c = Concat(y_0, y_1) along rows (identity row copies), a graph
// output; with_readers: also z_k = y_k . V_k (int8 products reading y_k), graph outputs. *ys gets y_k.
ir::Graph concat_rows_graph(bool with_readers, std::vector<ir::TensorId>* ys) {
  ir::Graph g;
  g.name = with_readers ? "concat_rows" : "concat_rows_alone";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {R, D});
  const float ws = 1.0f / std::sqrt(static_cast<float>(D));
  for (int k = 0; k < 2; ++k) {
    const ir::TensorId w = g.add_constant(fmt::format("W{}", k), ir::DType::F16, {D, N},
                                          f16_bytes(random_f16(D * N, -ws, ws, 40 + k)));
    ys->push_back(g.add_tensor(fmt::format("y{}", k), ir::DType::F16, {R, N}));
    g.add_op(make_op(ir::OpKind::MatMul, fmt::format("mm{}", k), {x, w}, ys->back()));
  }
  const ir::TensorId c = g.add_tensor("c", ir::DType::F32, {2 * R, N});
  g.add_op(make_op(ir::OpKind::Concat, "concat", {(*ys)[0], (*ys)[1]}, c, {{"axis", int64_t{0}}}));
  g.mark_output(c);
  for (int k = 0; with_readers && k < 2; ++k) {
    const ir::TensorId v = g.add_constant(fmt::format("V{}", k), ir::DType::F16, {N, N},
                                          f16_bytes(random_f16(N * N, -0.1f, 0.1f, 60 + k)));
    const ir::TensorId z = g.add_tensor(fmt::format("z{}", k), ir::DType::F32, {R, N});
    g.add_op(make_op(ir::OpKind::MatMul, fmt::format("mz{}", k), {(*ys)[static_cast<size_t>(k)], v}, z));
    g.mark_output(z);
  }
  return g;
}

// Whether L is an exact identity copy (K == N, no bias, weights the identity).
bool is_identity_layer(const LoweredLayer& L) {
  bool eye = L.K == L.N && L.bias.empty();
  for (int64_t k = 0; eye && k < L.K * L.N; ++k) eye = L.w[static_cast<size_t>(k)] == (k / L.N == k % L.N ? 1.f : 0.f);
  return eye;
}

}  // namespace

TEST_CASE("int8 copies: an X with fp16 readers is copied to i8 once, shared by its int8 layers", "[int8][copies]") {
  const ir::Graph g = post_ln_block();
  const LoweredModel lm0 = lower_graph(g);
  const QuantPlan q = plan_int8(g, lm0, {{value_of(input_of(5))}}, int8_options({}).int8);
  // y1 + y2 (both products of h) is ONE layer over two segments of h (the lowering's product-sum
  // merge, lower_attention.h): 2 int8 layers, h's copy read by one of them, x's by the other.
  CHECK(q.int8_layers == 2);
  REQUIRE(q.copies.size() == 2);  // h (LN output, also the residual) and x (graph input, also read by the LN)
  std::set<std::string> srcs;
  for (const QuantCopy& c : q.copies) {
    srcs.insert(g.tensor(c.src).name);
    CHECK(q.i8_tensors.count(c.copy));
    CHECK_FALSE(q.i8_tensors.count(c.src));  // the fp16 tensor stays for its other readers
  }
  CHECK(srcs == std::set<std::string>{"h", "x"});
  CHECK(q.i8_inputs.empty());  // x reaches the chip as f16
  LoweredModel lm = lm0;
  apply_quant_copies(g, q, &lm);
  // h's copy is fused into the LayerNorm's last step (h's only writer, an elementwise step: its
  // second output, LoweredEltwise::y2); x, a graph input, gets a copy step of its own.
  CHECK(lm.eltwise.size() == lm0.eltwise.size() + 1);
  CHECK(lm.steps.size() == lm0.steps.size() + 1);
  int reads_copy = 0;
  for (const LoweredLayer& L : lm.layers)
    for (const QuantCopy& c : q.copies) reads_copy += L.x == c.copy ? 1 : 0;
  CHECK(reads_copy == 2);
  // x's copy step comes right before its first reader; h's copy is written by h's producer,
  // before its first reader.
  for (const QuantCopy& c : q.copies) {
    size_t at = lm.steps.size(), fused_at = lm.steps.size(), first_reader = lm.steps.size();
    for (size_t si = 0; si < lm.steps.size(); ++si) {
      const LoweredStep& st = lm.steps[si];
      if (is_eltwise(st) && lm.eltwise[st.index].y == c.copy) at = si;
      if (is_eltwise(st) && lm.eltwise[st.index].y2 == c.copy) {
        fused_at = si;
        CHECK(lm.eltwise[st.index].y == c.src);
      }
      if (is_layer(st) && lm.layers[st.index].x == c.copy) first_reader = std::min(first_reader, si);
    }
    if (g.tensor(c.src).name == "x") {
      CHECK(at + 1 == first_reader);
      CHECK(fused_at == lm.steps.size());
    } else {
      CHECK(at == lm.steps.size());
      CHECK(fused_at < first_reader);
    }
  }
  // Without onchip_quantize no layer qualifies (h and x have fp16 readers): refused, or all fp16.
  Int8Options off;
  CHECK_THROWS_WITH(plan_int8(g, lm0, {{value_of(input_of(5))}}, off),
                    Catch::Contains("found no dense layer that can run int8"));
  off.allow_no_int8 = true;
  CHECK(plan_int8(g, lm0, {{value_of(input_of(5))}}, off).int8_layers == 0);
}

TEST_CASE("int8 copies: post-LN block with a residual, calibrated, within the int8 bound step by step", "[int8][copies]") {
  auto chip = default_chip_config();
  const ir::Graph g = post_ln_block();
  const std::vector<float> x = input_of(21);
  CompileOptions co = int8_options({input_of(22), x});
  co.keep_intermediates = true;
  const CompileResult cr = compile(g, *chip, co);
  REQUIRE(cr.quant);
  const QuantPlan& q = *cr.quant;
  REQUIRE(q.int8_layers == 2);  // y1 + y2 is one product (see above)
  REQUIRE(q.copies.size() == 2);
  LoweredModel lm = lower_graph(g);
  apply_quant_copies(g, q, &lm);

  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, *chip, so).cycles == cr.program.predicted_cycles);
  so.mode = sim::Mode::Functional;
  bind_input(cr.program, "x", f16_bytes(x), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *chip, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  // The program without keep_intermediates too (SRAM reuse: the copy's space is released).
  CompileOptions lean = co;
  lean.keep_intermediates = false;
  lean.quant = cr.quant;
  const CompileResult crl = compile(g, *chip, lean);
  sim::SimOptions sl = so;
  const sim::SimResult rl = sim::simulate(crl.program, *chip, sl);
  CHECK(rl.cycles == crl.program.predicted_cycles);
  CHECK(gather_output(crl.program, "out", rl.outputs) == gather_output(cr.program, "out", r.outputs));

  // Step by step (compiler/reference/int8_step_check.h, as `lpusim check --precision int8`).
  const Int8StepCheck ck = verify_int8_steps(g, lm, q, {value_of(x)}, cr.program, r.outputs);
  REQUIRE(ck.layers.size() == 2);  // y1 + y2 is one int8 layer
  for (const Int8LayerVerdict& v : ck.layers) {  // each int8 layer on its own dequantized i8 input
    INFO(v.layer << ": max err " << v.max_err << ", max bound " << v.max_bound << ", max |y| " << v.max_ref);
    CHECK(v.ok());
    CHECK(v.max_bound < 0.25 * v.max_ref);  // the bound says something (the 25 % of docs/compiler.md)
    WARN("int8 " << v.layer << ": max err " << v.max_err << ", max bound " << v.max_bound << ", max |y| " << v.max_ref
                 << ", worst err/bound " << v.worst_ratio);
  }
  int copies = 0, others = 0;  // the copies (rounding + clipping); LayerNorm and the Adds (fp16 local bound)
  for (const ref::StepVerdict& v : ck.steps.steps) {
    INFO(v.op << " (" << v.kind << "): max err " << v.max_err << ", worst err/bound " << v.worst_ratio);
    CHECK(v.ok());
    if (v.kind == "quantized copy") {
      ++copies;
      WARN("int8 copy " << v.op << ": worst err/bound " << v.worst_ratio);
    } else {
      ++others;
    }
  }
  CHECK(copies == 2);
  // ln and add_out: s = y1 + y2 is the merged int8 layer, and r = s + h its fused residual Add
  // (passes/fuse_residual.h), checked in ck.layers with h as the chip stored it.
  CHECK(others >= 2);
  bool fused_r = false;
  for (const LoweredLayer& L : lm.layers) fused_r = fused_r || (L.residual == g.find("h") && L.y == g.find("r"));
  CHECK(fused_r);
  CHECK(ck.ok());
  // End to end against the reference interpreter on the float graph (reported).
  const std::vector<ref::Value> want = ref::run(g, {value_of(x)});
  const std::vector<uint8_t> ob = gather_output(cr.program, "out", r.outputs);
  REQUIRE(ob.size() == static_cast<size_t>(R * D) * 4);
  double maxd = 0, maxv = 0;
  for (int64_t k = 0; k < R * D; ++k) {
    float f;
    std::memcpy(&f, &ob[static_cast<size_t>(k) * 4], 4);
    maxd = std::max(maxd, std::fabs(static_cast<double>(f) - want[0].as_float(k)));
    maxv = std::max(maxv, std::fabs(static_cast<double>(want[0].as_float(k))));
  }
  WARN("post-LN int8 block: " << cr.program.predicted_cycles << " cycles (lean program " << crl.program.predicted_cycles
                              << "); output vs reference max |diff| " << maxd << " (max |value| " << maxv << ")");

  // The check can fail: a copy whose on-chip scale is 25 % too large (muli by 1 / (1.25 s)) while the
  // plan (epilogue and checker) says s fails the copy's bound and its layers' bounds.
  for (const QuantCopy& c : q.copies) {
    INFO("mutated copy " << c.name);
    auto bad = std::make_shared<QuantPlan>(q);
    bad->i8_tensors[c.copy] *= 1.25f;
    CompileOptions cb = co;
    cb.quant = bad;
    const CompileResult crb = compile(g, *chip, cb);
    const sim::SimResult rb = sim::simulate(crb.program, *chip, so);
    CHECK(rb.cycles == crb.program.predicted_cycles);
    CHECK(crb.program.predicted_cycles == cr.program.predicted_cycles);  // scales never change the schedule
    // The checker believes the plan `q`: the copy's step fails its rounding bound.
    const Int8StepCheck bc = verify_int8_steps(g, lm, q, {value_of(x)}, crb.program, rb.outputs);
    CHECK_FALSE(bc.ok());
    int failed_copy = 0;
    for (const ref::StepVerdict& v : bc.steps.steps) failed_copy += v.op == c.name && !v.ok() ? 1 : 0;
    CHECK(failed_copy == 1);
  }
}

TEST_CASE("int8 copies: same input, byte-identical program", "[int8][copies]") {
  auto chip = default_chip_config();
  const ir::Graph g = post_ln_block();
  const CompileOptions co = int8_options({input_of(22)});
  const CompileResult a = compile(g, *chip, co), b = compile(g, *chip, co);
  CHECK(a.program.predicted_cycles == b.program.predicted_cycles);
  CHECK(serialize_program(a.program) == serialize_program(b.program));
  bool diag = false;
  for (const std::string& d : a.diagnostics) diag = diag || d.find("2 quantized copies") != std::string::npos;
  CHECK(diag);
}

// The kernels' int8 paths that read X through row maps (x_rows), column segments of a view
// (xsegs: the head merge before o_proj) and write rows of a shared y (y_rows: one product per
// head), on torch's TransformerEncoderLayer (post-LN: both LayerNorm outputs are residuals too).
TEST_CASE("int8 copies: encoder_layer int8 (heads, head merge, post-LN FFN), every int8 layer within its bound",
          "[int8][copies]") {
  auto chip = default_chip_config();
  const ir::Graph g = frontend::import_onnx(std::string(LPU_SOURCE_DIR) + "/workloads/models/encoder_layer/model.onnx");
  REQUIRE(g.inputs().size() == 1);
  const ir::Tensor& in = g.tensor(g.inputs()[0]);
  auto set = [&](uint32_t seed) {
    return std::vector<ref::Value>{ref::Value::floats(in.shape, random_f16(in.elements(), -2.f, 2.f, seed), in.dtype)};
  };
  CompileOptions co;
  co.precision = Precision::INT8;
  co.int8.onchip_quantize = true;
  co.calibration = {set(31), set(32)};
  co.keep_intermediates = true;
  const CompileResult cr = compile(g, *chip, co);
  REQUIRE(cr.quant);
  const QuantPlan& q = *cr.quant;
  LoweredModel lm = lower_graph(g);
  apply_quant_copies(g, q, &lm);
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  const std::vector<ref::Value> input = set(32);
  bind_input(cr.program, in.name, f16_bytes(input[0].f), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *chip, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  // Every step from the chip's own inputs (as `lpusim check --precision int8`).
  const Int8StepCheck ck = verify_int8_steps(g, lm, q, input, cr.program, r.outputs);
  lpu::test::check_int8_steps_ok(ck);
  int rowmapped = 0, viewed = 0;
  for (size_t i = 0; i < lm.layers.size(); ++i) {
    if (!q.layers[i].int8) continue;
    rowmapped += lm.layers[i].x_rows.empty() ? 0 : 1;
    viewed += lm.layers[i].xsegs.empty() ? 0 : 1;
  }
  const int checked = static_cast<int>(ck.layers.size());
  WARN("encoder_layer int8: " << q.int8_layers << " of " << lm.layers.size() << " dense layers int8, " << q.copies.size()
                              << " copies, " << q.quantize_steps << " quantizing steps; " << cr.program.predicted_cycles
                              << " cycles");
  CHECK(checked == q.int8_layers);
  CHECK(rowmapped > 0);  // per-head products and the head merge
  CHECK(viewed > 0);     // o_proj through the head-merge view
  // Quantized copies of tensors with fp16 readers, and steps quantizing their own result (the
  // attention's P.V divide by its row sums, lower_attention.h defer_softmax, writes P.V i8 for
  // o_proj: no copy of it).
  CHECK(q.copies.size() >= 1);
  CHECK(q.copies.size() + static_cast<size_t>(q.quantize_steps) >= 3);

  // The check can fail: linear1's epilogue scale 25 % too large in the Program while the checker
  // believes the plan `q`: that layer (and nothing upstream of it) is outside its bound.
  size_t li = lm.layers.size();
  for (size_t i = 0; i < lm.layers.size(); ++i)
    if (lm.layers[i].name == "/layer/linear1/MatMul") li = i;
  REQUIRE(li < lm.layers.size());
  REQUIRE(q.layers[li].int8);
  auto bad = std::make_shared<QuantPlan>(q);
  for (float& f : bad->layers[li].epi_scale) f *= 1.25f;
  CompileOptions cb = co;
  cb.quant = bad;
  const CompileResult crb = compile(g, *chip, cb);
  CHECK(crb.program.predicted_cycles == cr.program.predicted_cycles);  // scales never change the schedule
  const sim::SimResult rb = sim::simulate(crb.program, *chip, so);
  const Int8StepCheck bc = verify_int8_steps(g, lm, q, input, crb.program, rb.outputs);
  CHECK_FALSE(bc.ok());
  int bad_layers = 0, good_layers = 0;
  for (const Int8LayerVerdict& v : bc.layers) (v.ok() ? good_layers : bad_layers) += 1;
  CHECK(bad_layers == 1);
  for (const Int8LayerVerdict& v : bc.layers)
    if (!v.ok()) CHECK(v.layer == lm.layers[li].name);
}

// Exact identity matmuls (a row Concat's copies, lower_attention.cpp) run int8 when their X is i8
// anyway (here each y_k is also X of an int8 product z_k): weight 127 with scale 1/127, so the copy
// of the dequantized values is exact up to the f32 epilogue; they never get a quantized copy of
// their own. (Without the z_k the y_k would be quantized for the copies alone, and the copies run
// fp16: "int8 copies: an identity copy alone never makes its X i8".)
TEST_CASE("int8 copies: identity row copies of i8 tensors run int8 and stay exact", "[int8][copies]") {
  auto chip = default_chip_config();
  std::vector<ir::TensorId> ys;
  const ir::Graph g = concat_rows_graph(true, &ys);
  const std::vector<float> xv = input_of(51);
  CompileOptions co;
  co.precision = Precision::INT8;
  co.int8.onchip_quantize = true;
  co.calibration = {{value_of(xv)}};
  co.keep_intermediates = true;
  const CompileResult cr = compile(g, *chip, co);
  REQUIRE(cr.quant);
  const QuantPlan& q = *cr.quant;
  LoweredModel lm = lower_graph(g);
  apply_quant_copies(g, q, &lm);
  int identities = 0;
  for (size_t i = 0; i < lm.layers.size(); ++i) {
    INFO(lm.layers[i].name);
    CHECK(q.layers[i].int8);
    identities += is_identity_layer(lm.layers[i]) ? 1 : 0;
  }
  REQUIRE(identities == 2);
  CHECK(q.copies.empty());         // x is host-quantized (only int8 readers), y0 / y1 stored i8
  CHECK(q.i8_inputs.count("x"));
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  const ref::Value xq = quantize_host_input(value_of(xv), q.i8_inputs.at("x"));
  const std::vector<uint8_t> xb = xq.to_bytes();
  bind_input(cr.program, "x", xb, &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *chip, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  const ChipStored out = chip_stored(cr.program, "c", r.outputs, 1.0);
  REQUIRE(out.v.size() == static_cast<size_t>(2 * R * N));
  double worst = 0;
  for (int k = 0; k < 2; ++k) {
    const ChipStored yk = chip_stored(cr.program, fmt::format("y{}", k), r.outputs, q.i8_tensors.at(ys[static_cast<size_t>(k)]));
    REQUIRE(yk.v.size() == static_cast<size_t>(R * N));
    for (int64_t e = 0; e < R * N; ++e) {
      const double a = yk.v[static_cast<size_t>(e)], b = out.v[static_cast<size_t>(k * R * N + e)];
      CHECK(std::fabs(a - b) <= std::ldexp(std::fabs(a), -22));
      worst = std::max(worst, std::fabs(a - b));
    }
  }
  WARN("int8 identity row copies: max |copy - source| " << worst << "; " << cr.program.predicted_cycles << " cycles");
}

// The rule above, the other way: copies whose X no int8 product reads run fp16 and leave X float
// (quantizing y_k for the copies alone would add a quantization the model does not have, which no
// check bounds; found by tests/compiler/test_random_graphs.cpp at int8).
TEST_CASE("int8 copies: an identity copy alone never makes its X i8", "[int8][copies]") {
  std::vector<ir::TensorId> ys;
  const ir::Graph g = concat_rows_graph(false, &ys);
  const LoweredModel lm = lower_graph(g);
  CompileOptions co;
  co.int8.onchip_quantize = true;
  const QuantPlan q = plan_int8(g, lm, {{value_of(input_of(51))}}, co.int8);
  int identities = 0, int8_products = 0;
  for (size_t i = 0; i < lm.layers.size(); ++i) {
    INFO(lm.layers[i].name);
    if (is_identity_layer(lm.layers[i])) {
      ++identities;
      CHECK_FALSE(q.layers[i].int8);
    } else {
      int8_products += q.layers[i].int8 ? 1 : 0;
    }
  }
  CHECK(identities == 2);
  CHECK(int8_products == 2);  // mm0, mm1 still run int8 on the host-quantized x
  for (ir::TensorId y : ys) CHECK_FALSE(q.i8_tensors.count(y));
}
