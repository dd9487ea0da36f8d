// Conformance forms of supported ops (compiler/passes/lower_forms.h): output copies of inputs and
// constants, Gemm with a matrix/scalar C and transA, standalone BatchNormalization, Where on a bool
// graph input, Concat along the last axis, Gather with constant indices. Each graph is compiled for
// tsp-v1 and simulated in timing and functional mode (both must measure the predicted cycles);
// data-movement forms must reproduce their inputs exactly, arithmetic forms must lie within twice
// the reference interpreter's bound (tests/support/chip_check.h).
#include <catch2/catch.hpp>

#include <cstring>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::check_chip_against_reference;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

namespace {

// Compiles `g`, simulates it in both modes (cycles == prediction in each) on f16 inputs given in
// graph-input order (host layout applied), and returns every graph output as f32 values in graph
// order.
std::vector<std::vector<float>> run_chip(const ir::Graph& g, const std::vector<std::vector<float>>& inputs) {
  auto cfg = default_chip_config();
  const CompileResult cr = compile(g, *cfg, CompileOptions{});
  const LoweredModel lm = lower_graph(g);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, *cfg, so).cycles == cr.program.predicted_cycles);
  so.mode = sim::Mode::Functional;
  for (size_t i = 0; i < g.inputs().size(); ++i)
    bind_input(cr.program, g.tensor(g.inputs()[i]).name, f16_bytes(to_chip_input(lm.inputs[i], inputs[i])), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  std::vector<std::vector<float>> outs;
  for (ir::TensorId t : g.outputs()) {
    const std::vector<uint8_t> b = gather_output(cr.program, g.tensor(t).name, r.outputs);
    REQUIRE(b.size() == static_cast<size_t>(g.tensor(t).elements()) * 4);
    std::vector<float> v(b.size() / 4);
    std::memcpy(v.data(), b.data(), b.size());
    outs.push_back(std::move(v));
  }
  return outs;
}

std::map<std::string, ir::AttrValue> gemm_attrs(float alpha, float beta, int64_t ta, int64_t tb) {
  return {{"alpha", alpha}, {"beta", beta}, {"transA", ta}, {"transB", tb}};
}

ir::TensorId const_f16(ir::Graph& g, const std::string& name, const ir::Shape& s, const std::vector<float>& v) {
  return g.add_constant(name, ir::DType::F16, s, f16_bytes(v));
}

}  // namespace

TEST_CASE("forms: a graph output that is a (reshaped) input or a constant is copied onto the chip exactly") {
  struct C { ir::Shape in, out; };
  // Same last dim (copied as stored), other lanes (the input is laid out in the output's shape),
  // and the identity reshape the importer writes for Identity/Dropout outputs.
  for (const C& c : {C{{2, 3, 40}, {6, 40}}, C{{3, 4, 5}, {5, 12}}, C{{2, 400}, {2, 400}}}) {
    INFO(ir::shape_str(c.in) << " -> " << ir::shape_str(c.out));
    ir::Graph g;
    g.name = "copy";
    const ir::TensorId x = g.add_input("x", ir::DType::F16, c.in);
    const ir::TensorId y = g.add_tensor("y", ir::DType::F16, c.out);
    g.add_op(make_op(ir::OpKind::Reshape, "r", {x}, {y}, {{"shape", c.out}}));
    g.mark_output(y);
    const std::vector<float> v = random_f16(ir::num_elements(c.in), -4, 4, 7);
    CHECK(run_chip(g, {v})[0] == v);
  }
  ir::Graph g;
  g.name = "const_out";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {4, 8});
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {4, 8});
  g.add_op(make_op(ir::OpKind::Relu, "relu", {x}, {y}));
  g.mark_output(y);
  const std::vector<float> cv = random_f16(15, -2, 2, 3);
  const ir::TensorId c = const_f16(g, "c", {3, 5}, cv);
  const ir::TensorId yc = g.add_tensor("yc", ir::DType::F16, {3, 5});
  g.add_op(make_op(ir::OpKind::Reshape, "copy_c", {c}, {yc}, {{"shape", ir::Shape{3, 5}}}));
  g.mark_output(yc);
  CHECK(run_chip(g, {random_f16(32, -1, 1, 4)})[1] == cv);
}

TEST_CASE("forms: Gemm with a matrix, scalar or column C and with transA=1 (graph input or chip tensor)") {
  const int64_t M = 24, K = 40, N = 36;
  struct C { ir::Shape c; int64_t ta, tb; float alpha, beta; };
  uint32_t seed = 20;
  for (const C& cs : {C{{M, N}, 0, 0, 1.f, 1.f}, C{{1}, 0, 1, 0.5f, 2.f}, C{{M, 1}, 1, 0, 1.f, 0.25f},
                      C{{M, N}, 1, 1, 0.25f, 0.5f}, C{{N}, 1, 0, 1.f, 1.f}}) {
    INFO("C " << ir::shape_str(cs.c) << " transA " << cs.ta << " transB " << cs.tb);
    ir::Graph g;
    g.name = "gemm";
    const ir::TensorId a = g.add_input("a", ir::DType::F16, cs.ta ? ir::Shape{K, M} : ir::Shape{M, K});
    const ir::TensorId b = const_f16(g, "b", cs.tb ? ir::Shape{N, K} : ir::Shape{K, N}, random_f16(K * N, -1, 1, seed++));
    const ir::TensorId c = const_f16(g, "c", cs.c, random_f16(ir::num_elements(cs.c), -2, 2, seed++));
    const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {M, N});
    g.add_op(make_op(ir::OpKind::Gemm, "gemm", {a, b, c}, {y}, gemm_attrs(cs.alpha, cs.beta, cs.ta, cs.tb)));
    g.mark_output(y);
    check_chip_against_reference(g, {random_f16(M * K, -1, 1, seed++)});
  }
  // transA of an A computed on the chip: A^T is stored first by the Transpose form (MXM, exact).
  ir::Graph g;
  g.name = "gemm_ta";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {K, M});
  const ir::TensorId a = g.add_tensor("a", ir::DType::F16, {K, M});
  g.add_op(make_op(ir::OpKind::Relu, "relu", {x}, {a}));
  const ir::TensorId b = const_f16(g, "b", {K, N}, random_f16(K * N, -1, 1, 5));
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {M, N});
  g.add_op(make_op(ir::OpKind::Gemm, "gemm", {a, b}, {y}, gemm_attrs(1.f, 1.f, 1, 0)));
  g.mark_output(y);
  check_chip_against_reference(g, {random_f16(K * M, -1, 1, 6)});
}

TEST_CASE("forms: standalone BatchNormalization (per-channel scale and shift on the VXM)") {
  for (const ir::Shape& s : {ir::Shape{2, 3, 4, 5}, ir::Shape{6, 7}, ir::Shape{2, 4, 330}}) {
    INFO(ir::shape_str(s));
    const int64_t C = s[1];
    ir::Graph g;
    g.name = "bn";
    const ir::TensorId x = g.add_input("x", ir::DType::F16, s);
    std::vector<ir::TensorId> in{x};
    uint32_t seed = 40;
    in.push_back(const_f16(g, "scale", {C}, random_f16(C, 0.5f, 2, seed++)));
    in.push_back(const_f16(g, "B", {C}, random_f16(C, -1, 1, seed++)));
    in.push_back(const_f16(g, "mean", {C}, random_f16(C, -1, 1, seed++)));
    in.push_back(const_f16(g, "var", {C}, random_f16(C, 0.25f, 3, seed++)));
    const ir::TensorId y = g.add_tensor("y", ir::DType::F16, s);
    g.add_op(make_op(ir::OpKind::BatchNormalization, "bn", in, {y}, {{"epsilon", 1e-2f}}));
    g.mark_output(y);
    check_chip_against_reference(g, {random_f16(ir::num_elements(s), -3, 3, seed++)});
  }
}

TEST_CASE("forms: Where with a bool graph-input condition selects exactly") {
  const ir::Shape s{5, 330};
  const int64_t n = ir::num_elements(s);
  ir::Graph g;
  g.name = "where";
  const ir::TensorId c = g.add_input("cond", ir::DType::BOOL, s);
  const ir::TensorId x = g.add_input("x", ir::DType::F16, s);
  const std::vector<float> yv = random_f16(s.back(), -9, 9, 8);
  const ir::TensorId yc = const_f16(g, "yrow", {s.back()}, yv);  // broadcast over rows
  const ir::TensorId out = g.add_tensor("out", ir::DType::F16, s);
  g.add_op(make_op(ir::OpKind::Where, "where", {c, x, yc}, {out}));
  g.mark_output(out);
  std::vector<float> cond(static_cast<size_t>(n)), xv = random_f16(n, -3, 3, 9);
  for (int64_t k = 0; k < n; ++k) cond[static_cast<size_t>(k)] = (k * 7 + k / 13) % 3 == 0 ? 1.f : 0.f;
  const std::vector<float> got = run_chip(g, {cond, xv})[0];
  int64_t wrong = 0;
  for (int64_t k = 0; k < n; ++k)
    wrong += got[static_cast<size_t>(k)] != (cond[static_cast<size_t>(k)] != 0 ? xv[static_cast<size_t>(k)]
                                                                              : yv[static_cast<size_t>(k % s.back())]);
  CHECK(wrong == 0);
}

TEST_CASE("forms: the mask form Where(Equal(mask, 0), -big, scores) with a row-broadcast runtime mask") {
  // An attention padding mask [B, 1, 1, S] against scores [B, H, S, S]: broadcast over rows only.
  const int64_t B = 2, H = 3, S = 8;
  ir::Graph g;
  g.name = "mask";
  const ir::TensorId mask = g.add_input("mask", ir::DType::F16, {B, 1, 1, S});
  const ir::TensorId sc = g.add_input("scores", ir::DType::F16, {B, H, S, S});
  const ir::TensorId zero = const_f16(g, "zero", {}, {0.f});
  const ir::TensorId big = const_f16(g, "big", {}, {-30000.f});
  const ir::TensorId eq = g.add_tensor("eq", ir::DType::BOOL, {B, 1, 1, S});
  g.add_op(make_op(ir::OpKind::Equal, "eq", {mask, zero}, {eq}));
  const ir::TensorId out = g.add_tensor("out", ir::DType::F16, {B, H, S, S});
  g.add_op(make_op(ir::OpKind::Where, "w", {eq, big, sc}, {out}));
  g.mark_output(out);
  std::vector<float> mv(static_cast<size_t>(B * S));
  for (int64_t k = 0; k < B * S; ++k) mv[static_cast<size_t>(k)] = k % 3 == 1 ? 0.f : 1.f;
  const std::vector<float> sv = random_f16(B * H * S * S, -4, 4, 31);
  const std::vector<float> got = run_chip(g, {mv, sv})[0];
  int64_t wrong = 0;
  for (int64_t k = 0; k < B * H * S * S; ++k) {
    const int64_t b = k / (H * S * S), j = k % S;
    const float want = mv[static_cast<size_t>(b * S + j)] == 0.f ? -30000.f : sv[static_cast<size_t>(k)];
    wrong += got[static_cast<size_t>(k)] != want;
  }
  CHECK(wrong == 0);
}

TEST_CASE("forms: Concat along the last axis puts each piece at its lane offset exactly") {
  // Two activations (one of 2 vectors per row) and a constant piece between them.
  const int64_t R = 6, w0 = 100, w1 = 17, w2 = 350, W = w0 + w1 + w2;
  ir::Graph g;
  g.name = "concat";
  const ir::TensorId a = g.add_input("a", ir::DType::F16, {2, 3, w0});
  const ir::TensorId b = g.add_input("b", ir::DType::F16, {2, 3, w2});
  const std::vector<float> cv = random_f16(R * w1, -5, 5, 11);
  const ir::TensorId c = const_f16(g, "c", {2, 3, w1}, cv);
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {2, 3, W});
  g.add_op(make_op(ir::OpKind::Concat, "cat", {a, c, b}, {y}, {{"axis", int64_t{2}}}));
  g.mark_output(y);
  const std::vector<float> av = random_f16(R * w0, -3, 3, 12), bv = random_f16(R * w2, -3, 3, 13);
  const std::vector<float> got = run_chip(g, {av, bv})[0];
  std::vector<float> want;
  for (int64_t r = 0; r < R; ++r) {
    want.insert(want.end(), av.begin() + r * w0, av.begin() + (r + 1) * w0);
    want.insert(want.end(), cv.begin() + r * w1, cv.begin() + (r + 1) * w1);
    want.insert(want.end(), bv.begin() + r * w2, bv.begin() + (r + 1) * w2);
  }
  CHECK(got == want);
}

TEST_CASE("forms: Gather with constant indices (row axis: row gather, last axis: selection matmul) is exact") {
  const ir::Shape ds{5, 4, 30};
  const std::vector<float> xv = random_f16(ir::num_elements(ds), -8, 8, 21);
  auto at = [&](int64_t i, int64_t j, int64_t k) { return xv[static_cast<size_t>((i * 4 + j) * 30 + k)]; };
  const std::vector<int64_t> idx{3, -1, 0, 3};  // [2, 2], a negative and a repeated index
  for (int64_t axis : {0, 1, 2}) {
    INFO("axis " << axis);
    ir::Graph g;
    g.name = "gather";
    const ir::TensorId x = g.add_input("x", ir::DType::F16, ds);
    const ir::TensorId ind = g.add_constant_ints("idx", ir::DType::I64, {2, 2}, idx);
    ir::Shape ys;
    for (int64_t d = 0; d < 3; ++d) {
      if (d == axis) {
        ys.push_back(2);
        ys.push_back(2);
      } else {
        ys.push_back(ds[static_cast<size_t>(d)]);
      }
    }
    const ir::TensorId y = g.add_tensor("y", ir::DType::F16, ys);
    g.add_op(make_op(ir::OpKind::Gather, "gather", {x, ind}, {y}, {{"axis", axis}}));
    g.mark_output(y);
    const std::vector<float> got = run_chip(g, {xv})[0];
    std::vector<float> want;
    auto norm = [&](int64_t i) { return i < 0 ? i + ds[static_cast<size_t>(axis)] : i; };
    if (axis == 0)
      for (int64_t q : idx) for (int64_t j = 0; j < 4; ++j) for (int64_t k = 0; k < 30; ++k) want.push_back(at(norm(q), j, k));
    if (axis == 1)
      for (int64_t i = 0; i < 5; ++i) for (int64_t q : idx) for (int64_t k = 0; k < 30; ++k) want.push_back(at(i, norm(q), k));
    if (axis == 2)
      for (int64_t i = 0; i < 5; ++i) for (int64_t j = 0; j < 4; ++j) for (int64_t q : idx) want.push_back(at(i, j, norm(q)));
    CHECK(got == want);
  }
  // Runtime indices into a constant table (an embedding lookup) lower to MEM gathers whose offsets
  // the host writes (tests/compiler/test_embedding_lookup.cpp).
  ir::Graph g;
  g.name = "embed";
  const ir::TensorId table = const_f16(g, "table", {50, 16}, random_f16(800, -1, 1, 22));
  const ir::TensorId ids = g.add_input("ids", ir::DType::I64, {7});
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {7, 16});
  g.add_op(make_op(ir::OpKind::Gather, "embed", {table, ids}, {y}, {{"axis", int64_t{0}}}));
  g.mark_output(y);
  CHECK(lower_graph(g).inputs.at(0).lookup_rows == 50);
}

TEST_CASE("forms: Transpose that moves the last axis (rows installed transposed, times an identity) is exact") {
  struct C { ir::Shape s; std::vector<int64_t> perm; };
  for (const C& c : {C{{7, 333}, {1, 0}}, C{{2, 3, 4, 5}, {0, 3, 1, 2}}, C{{3, 5, 6}, {2, 1, 0}}}) {
    INFO(ir::shape_str(c.s));
    const size_t r = c.s.size();
    ir::Shape ys(r);
    for (size_t d = 0; d < r; ++d) ys[d] = c.s[static_cast<size_t>(c.perm[d])];
    ir::Graph g;
    g.name = "transpose";
    const ir::TensorId x = g.add_input("x", ir::DType::F16, c.s);
    const ir::TensorId y = g.add_tensor("y", ir::DType::F16, ys);
    g.add_op(make_op(ir::OpKind::Transpose, "t", {x}, {y}, {{"perm", c.perm}}));
    g.mark_output(y);
    const std::vector<float> xv = random_f16(ir::num_elements(c.s), -5, 5, 17);
    const std::vector<float> got = run_chip(g, {xv})[0];
    // Reference: y[o] = x[i] with i[perm[d]] = o[d].
    std::vector<float> want(xv.size());
    std::vector<int64_t> o(r, 0);
    for (size_t k = 0; k < want.size(); ++k) {
      int64_t rem = static_cast<int64_t>(k), xi = 0;
      for (size_t d = r; d-- > 0;) {
        o[d] = rem % ys[d];
        rem /= ys[d];
      }
      std::vector<int64_t> i(r);
      for (size_t d = 0; d < r; ++d) i[static_cast<size_t>(c.perm[d])] = o[d];
      for (size_t d = 0; d < r; ++d) xi = xi * c.s[d] + i[d];
      want[k] = xv[static_cast<size_t>(xi)];
    }
    CHECK(got == want);
  }
}
