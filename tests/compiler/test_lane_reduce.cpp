// Row reductions on the VXM + SXM (backend/lane_kernel.h, passes/lower_norm.h): the lane all-reduce
// must count every lane exactly once (sum) or find the true maximum (max) for row lengths around
// and far past one vector (K = 1, 319, 320, 321, 2048), on negative rows too; Softmax with a
// causal mask, LayerNormalization and an RMSNorm-style chain (a per-row scalar broadcast by SXM
// distribute) match the reference; and no program holds a constant bigger than a few rows.
// Every compiled program must simulate in exactly its predicted cycles.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/ir_build.h"
#include "tests/support/f16_data.h"
#include "tests/support/layer_norm_build.h"
#include "tests/support/issued_count.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::check_chip_against_reference;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

// Distinct f16-exact integers per row (|v| <= 2048; odd rows negative), so that a lane counted
// twice or missed changes the sum and the maximum is unique.
std::vector<float> distinct_rows(int64_t R, int64_t K) {
  std::vector<float> v(static_cast<size_t>(R * K));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k)
      v[static_cast<size_t>(r * K + k)] = static_cast<float>(((k * 7 + r * 13) % 2048) + 1) * (r % 2 ? -1.f : 1.f);
  return v;
}

// Compiles g with every intermediate kept, simulates it (functional; cycles must equal the
// prediction) and returns the chip's values of tensor `name` (f16 or f32 as stored).
std::vector<double> run_and_read(const ir::Graph& g, const std::vector<float>& x, const std::string& name,
                                 Program* prog = nullptr) {
  auto cfg = default_chip_config();
  CompileOptions opt;
  opt.keep_intermediates = true;
  const CompileResult cr = compile(g, *cfg, opt);
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  bind_input(cr.program, g.tensor(g.inputs()[0]).name, f16_bytes(x), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  const std::vector<uint8_t> b = gather_output(cr.program, name, r.outputs);
  const DType t = row_blocks(cr.program, name).front().dtype;
  std::vector<double> out;
  for (size_t i = 0; i < b.size(); i += static_cast<size_t>(dtype_bytes(t))) {
    if (t == DType::F16) {
      out.push_back(ir::f16_to_f32(static_cast<uint16_t>(b[i] | (b[i + 1] << 8))));
    } else {
      float f;
      std::memcpy(&f, &b[i], 4);
      out.push_back(f);
    }
  }
  if (prog) *prog = cr.program;
  return out;
}

uint64_t constant_bytes(const Program& p) {
  uint64_t n = 0;
  for (const DataBlob& d : p.data) n += d.bytes.size();
  return n;
}

}  // namespace

TEST_CASE("lane reduce: ReduceSum counts every lane exactly once (K = 1, 319, 320, 321, 2048)") {
  for (int64_t K : {1, 2, 319, 320, 321, 2048}) {
    INFO("K " << K);
    const int64_t R = 6;
    ir::Graph g;
    g.name = "rsum";
    const ir::TensorId x = g.add_input("X", ir::DType::F16, {R, K});
    const ir::TensorId y = g.add_tensor("Y", ir::DType::F32, {R, 1});
    ir::Op op = make_op(ir::OpKind::ReduceSum, "rs", {x}, y);
    op.attrs["axes"] = std::vector<int64_t>{1};
    op.attrs["keepdims"] = int64_t{1};
    g.add_op(op);
    g.mark_output(y);
    const std::vector<float> v = distinct_rows(R, K);
    Program p;
    const std::vector<double> got = run_and_read(g, v, "Y", &p);
    REQUIRE(got.size() == static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) {
      double want = 0;  // integers below 2^24: the f32 sum is exact in any order
      for (int64_t k = 0; k < K; ++k) want += v[static_cast<size_t>(r * K + k)];
      CHECK(got[static_cast<size_t>(r)] == want);
    }
    CHECK(constant_bytes(p) <= 2 * 320 * 6);  // at most the two mask rows (f16 + f32)
    // No matmul: the program holds SXM lane ops and no MXM instruction.
    bool sxm = false, mxm = false;
    for (const auto& q : p.chips[0].queues)
      for (const Instr& in : q.code) {
        sxm = sxm || op_info(in.op).unit == Unit::SXM;
        mxm = mxm || op_info(in.op).unit == Unit::MXM;
      }
    CHECK(sxm);
    CHECK_FALSE(mxm);
  }
}

TEST_CASE("lane reduce: the Softmax row max is the exact maximum (K = 1, 319, 320, 321, 2048, negative rows)") {
  for (int64_t K : {1, 3, 319, 320, 321, 2048}) {
    INFO("K " << K);
    const int64_t R = 5;
    const ir::Graph g = unary_graph(ir::OpKind::Softmax, {R, K}, {{"axis", int64_t{1}}}, {R, K}, "sm");
    const std::vector<float> v = distinct_rows(R, K);
    const std::vector<double> m = run_and_read(g, v, "sm.max");  // the lane step's [R, 1] result
    REQUIRE(m.size() == static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) {
      float want = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < K; ++k) want = std::max(want, v[static_cast<size_t>(r * K + k)]);
      CHECK(m[static_cast<size_t>(r)] == want);
    }
  }
}

TEST_CASE("lane reduce: Softmax with a causal mask (Where -inf) and K = 2048 match the reference") {
  {
    const int64_t H = 2, T = 40;
    ir::Graph g;
    g.name = "causal";
    const ir::TensorId x = g.add_input("X", ir::DType::F16, {H, T, T});
    std::vector<int64_t> cond(static_cast<size_t>(T * T));
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) cond[static_cast<size_t>(i * T + j)] = j <= i;
    const ir::TensorId c = g.add_constant_ints("causal", ir::DType::BOOL, {T, T}, cond);
    const ir::TensorId ninf =
        g.add_constant("ninf", ir::DType::F16, {}, f16_bytes({-std::numeric_limits<float>::infinity()}));
    const ir::TensorId xm = g.add_tensor("Xm", ir::DType::F16, {H, T, T});
    g.add_op(make_op(ir::OpKind::Where, "mask", {c, x, ninf}, xm));
    const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {H, T, T});
    ir::Op op = make_op(ir::OpKind::Softmax, "sm", {xm}, y);
    op.attrs["axis"] = int64_t{2};
    g.add_op(op);
    g.mark_output(y);
    check_chip_against_reference(g, {random_f16(H * T * T, -3, 3, 5)});
  }
  {
    const int64_t R = 4, K = 2048;  // one decode query row per head over a 2k context
    const ir::Graph g = unary_graph(ir::OpKind::Softmax, {R, K}, {{"axis", int64_t{1}}}, {R, K}, "sm");
    // Logits in [8, 10]: the max must be subtracted; probabilities ~1e-4 stay f16 normals.
    check_chip_against_reference(g, {random_f16(R * K, 8, 10, 9)});
    const CompileResult cr = compile(g, *default_chip_config(), CompileOptions{});
    CHECK(constant_bytes(cr.program) <= 6 * K * 4);  // a few rows (the K x K matrices were 8 MB)
  }
}

TEST_CASE("lane reduce: LayerNormalization (K = 768) and an RMSNorm chain (distribute broadcast) match the reference") {
  const int64_t R = 8, K = 768;
  {
    ir::Graph g;
    g.name = "ln";
    g.mark_output(test::add_layer_norm(g, g.add_input("X", ir::DType::F16, {R, K}), R, K, 1.f));
    check_chip_against_reference(g, {random_f16(R * K, -2, 3, 8)});
    const CompileResult cr = compile(g, *default_chip_config(), CompileOptions{});
    CHECK(constant_bytes(cr.program) <= 8 * 960 * 4);  // scale, B, masks: a few rows
  }
  {
    // y = x / sqrt(mean(x * x) + eps): the Add and Sqrt of the [R, 1] mean are VXM steps whose
    // result is broadcast over the row by an SXM distribute (no ones-row matmul).
    ir::Graph g;
    g.name = "rms";
    const ir::TensorId x = g.add_input("X", ir::DType::F16, {R, K});
    const ir::TensorId x2 = g.add_tensor("x2", ir::DType::F16, {R, K});
    g.add_op(make_op(ir::OpKind::Mul, "sq", {x, x}, x2));
    const ir::TensorId ms = g.add_tensor("ms", ir::DType::F16, {R, 1});
    ir::Op red = make_op(ir::OpKind::ReduceMean, "mean", {x2}, ms);
    red.attrs["axes"] = std::vector<int64_t>{1};
    red.attrs["keepdims"] = int64_t{1};
    g.add_op(red);
    const ir::TensorId e = g.add_constant("eps", ir::DType::F16, {}, f16_bytes({1e-3f}));
    const ir::TensorId mse = g.add_tensor("mse", ir::DType::F16, {R, 1});
    g.add_op(make_op(ir::OpKind::Add, "addeps", {ms, e}, mse));
    const ir::TensorId rt = g.add_tensor("rt", ir::DType::F16, {R, 1});
    g.add_op(make_op(ir::OpKind::Sqrt, "sqrt", {mse}, rt));
    const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {R, K});
    g.add_op(make_op(ir::OpKind::Div, "div", {x, rt}, y));
    g.mark_output(y);
    check_chip_against_reference(g, {random_f16(R * K, 0.25f, 2, 12)});
    const LoweredModel lm = lower_graph(g);
    bool bcast = false;
    for (const LoweredLane& Ln : lm.lanes) bcast = bcast || Ln.mode == LoweredLane::Mode::Broadcast;
    CHECK(bcast);
    CHECK(lm.layers.empty());  // no matmul anywhere
  }
}

// The shapes of docs/compiler.md "Figures" (elementwise/normalization), printed for the docs
// (read with -s); each also checked against the reference and predicted == simulated.
TEST_CASE("lane reduce: figures of ReduceSum, LayerNormalization and Softmax shapes") {
  auto one = [](ir::OpKind k, int64_t R, int64_t K) {
    ir::Graph g;
    g.name = "fig";
    const ir::TensorId x = g.add_input("X", ir::DType::F16, {R, K});
    const bool red = k == ir::OpKind::ReduceSum;
    const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, {R, red ? 1 : K});
    ir::Op op = make_op(k, "op", {x}, y);
    if (red) {
      op.attrs["axes"] = std::vector<int64_t>{1};
      op.attrs["keepdims"] = int64_t{1};
    } else {
      op.attrs["axis"] = int64_t{1};
    }
    if (k == ir::OpKind::LayerNormalization) {
      op.inputs.push_back(g.add_constant("scale", ir::DType::F16, {K}, f16_bytes(random_f16(K, 0.5f, 1.5f, 3))));
      op.attrs["epsilon"] = 1e-5f;
    }
    g.add_op(op);
    g.mark_output(y);
    const float lo = k == ir::OpKind::Softmax ? 12.f : 0.5f, hi = k == ir::OpKind::Softmax ? 14.f : 2.f;
    const uint64_t c = check_chip_against_reference(g, {random_f16(R * K, lo, hi, 21)});
    WARN(ir::op_kind_name(k) << " " << R << "x" << K << ": " << c << " cycles");
  };
  one(ir::OpKind::ReduceSum, 70, 500);
  one(ir::OpKind::LayerNormalization, 64, 320);
  one(ir::OpKind::LayerNormalization, 64, 500);
  one(ir::OpKind::Softmax, 32, 100);
  one(ir::OpKind::Softmax, 32, 320);
}

TEST_CASE("lane reduce: ReduceSum/ReduceMean over a row axis (VXM adds of row-mapped operands) match the reference") {
  struct C { ir::OpKind k; ir::Shape xs; int64_t axis; bool keep; };
  const C cases[] = {{ir::OpKind::ReduceMean, {3, 5, 40}, 1, false},
                     {ir::OpKind::ReduceSum, {4, 3, 330}, 0, true},
                     {ir::OpKind::ReduceSum, {2, 1, 7}, 1, true}};
  uint32_t seed = 40;
  for (const C& c : cases) {
    INFO(ir::op_kind_name(c.k) << " " << ir::shape_str(c.xs) << " axis " << c.axis);
    ir::Graph g;
    g.name = "rowreduce";
    const ir::TensorId x = g.add_input("X", ir::DType::F16, c.xs);
    ir::Shape ys;
    for (size_t d = 0; d < c.xs.size(); ++d)
      if (static_cast<int64_t>(d) != c.axis) ys.push_back(c.xs[d]);
      else if (c.keep) ys.push_back(1);
    const ir::TensorId y = g.add_tensor("Y", ir::DType::F16, ys);
    ir::Op op = make_op(c.k, "r", {x}, y);
    op.attrs["axes"] = std::vector<int64_t>{c.axis};
    op.attrs["keepdims"] = int64_t{c.keep};
    g.add_op(op);
    g.mark_output(y);
    check_chip_against_reference(g, {random_f16(ir::num_elements(c.xs), 0.5f, 2, seed++)});
  }
}

// Paired rows (backend/lane_reduce.cpp, Shape::pair in lane_run.h): a row max over K <= lanes / 2 lanes whose
// final windows tile [0, K) reduces two rows in one vector (b shifted by K lanes by the SXM, merged
// by a `sel` with the mask row). The maximum must stay exact for every row, the unpaired last row
// of an odd count included, with rows of only -inf / NaN and rows holding some of each; the
// program must issue one `shift` by K per pair (the paired form was chosen); the whole Softmax
// matches the reference and simulates in its predicted cycles.
TEST_CASE("lane reduce: the paired Softmax row max (K <= lanes / 2) is exact, odd row counts, -inf and NaN rows") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // K = 96 (final windows of 32 lanes, c = 3): over 769 rows the pairs' throughput beats a single
  // row's shorter latency, so the kernel's trial picks the paired form (BERT-base: K = 128, 1536 rows).
  for (int64_t K : {96}) {
    INFO("K " << K);
    const int64_t R = 769;
    const ir::Graph g = unary_graph(ir::OpKind::Softmax, {R, K}, {{"axis", int64_t{1}}}, {R, K}, "sm");
    std::vector<float> v = distinct_rows(R, K);
    for (int64_t k = 0; k < K; ++k) {
      v[static_cast<size_t>(3 * K + k)] = -inf;                      // a wholly masked row
      v[static_cast<size_t>(4 * K + k)] = k % 3 ? -inf : nan;        // -inf and NaN only
      if (k % 2) v[static_cast<size_t>(5 * K + k)] = -inf;           // half masked
      if (k == K - 1) v[static_cast<size_t>(6 * K + k)] = nan;       // one NaN lane (max ignores it: fmax)
      if (k == 0) v[static_cast<size_t>((R - 1) * K + k)] = 4000.f;  // the unpaired last row: max in lane 0
    }
    Program p;
    const std::vector<double> m = run_and_read(g, v, "sm.max", &p);
    REQUIRE(m.size() == static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) {
      float want = -inf;  // the max of the clamped row: fmax(x, -65504) per lane
      for (int64_t k = 0; k < K; ++k) want = std::max(want, std::fmax(v[static_cast<size_t>(r * K + k)], -65504.f));
      INFO("row " << r);
      CHECK(m[static_cast<size_t>(r)] == want);
    }
    CHECK(test::issued_count(p, [&](const Instr& in) { return in.op == Opcode::Shift && in.simm() == K; }) ==
          static_cast<uint64_t>(R / 2));
    check_chip_against_reference(g, {random_f16(R * K, -1.f, 1.f, 5)});
  }
}
