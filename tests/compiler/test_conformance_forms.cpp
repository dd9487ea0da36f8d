// ONNX conformance forms added for issue 4 items 2 and 8 (docs/compiler.md "Elementwise ops,
// reductions, normalization", docs/onnx-support.md "Opsets"):
//  - every Reduce* kind (Sum, Mean, Max, Min, SumSquare, L1, L2) over any set of axes, keepdims 0/1:
//    a lane step for the last axis, VXM passes of row-mapped operands for row axes;
//  - Softmax along a row axis; elementwise Max / Min / Abs; activations broadcast over rows;
//  - 1-D Conv / MaxPool / AveragePool (imported as 2-D over [N, C, 1, L]);
//  - opsets 6..10: Slice-1 attributes, legacy broadcast (Add-6 broadcast=1 axis=1), and refusals
//    naming the op, opset and what is supported for old-version differences that are not handled.
// Each chip case is compiled for tsp-v1 and simulated in timing and functional mode (cycles ==
// prediction in both); outputs within twice the reference interpreter's bound
// (tests/support/chip_check.h).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "compiler/frontends/onnx_import.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"
#include "tests/support/onnx_build.h"

using namespace lpu;
using lpu::test::check_chip_against_reference;
using lpu::test::random_f16;
using ir::OpKind;
using namespace lpu::test::onnx_build;

namespace {

// A one-op graph y = kind(x) with f16 input x of shape xs.
ir::Shape reduced(const ir::Shape& xs, const std::vector<int64_t>& axes, bool keep) {
  ir::Shape o;
  for (size_t i = 0; i < xs.size(); ++i) {
    const bool r = std::find(axes.begin(), axes.end(), static_cast<int64_t>(i)) != axes.end();
    if (!r) o.push_back(xs[i]);
    else if (keep) o.push_back(1);
  }
  return o;
}

}  // namespace

TEST_CASE("conformance forms: every Reduce* kind over any axes, keepdims 0 and 1, on the chip") {
  const OpKind kinds[] = {OpKind::ReduceMax, OpKind::ReduceMin, OpKind::ReduceSumSquare, OpKind::ReduceL1,
                          OpKind::ReduceL2,  OpKind::ReduceSum, OpKind::ReduceMean};
  struct C { ir::Shape xs; std::vector<int64_t> axes; };
  // The last axis alone (a lane step; 330 lanes: a masked second vector), one row axis, a row axis
  // with the last, two row axes, all axes.
  const C cases[] = {{{3, 330}, {1}}, {{3, 4, 5}, {0}}, {{3, 4, 5}, {1, 2}}, {{3, 4, 5}, {0, 1}}, {{2, 3, 2, 5}, {0, 1, 2, 3}}};
  uint32_t seed = 1;
  for (OpKind k : kinds)
    for (const C& c : cases)
      for (bool keep : {true, false}) {
        if (!keep && c.axes.size() == c.xs.size()) continue;  // a scalar output: covered with keepdims
        INFO(ir::op_kind_name(k) << " of " << ir::shape_str(c.xs) << " over " << ir::shape_str(c.axes)
                                 << " keepdims " << keep);
        const ir::Graph g = unary_graph(k, c.xs, {{"axes", c.axes}, {"keepdims", int64_t{keep}}},
                                        reduced(c.xs, c.axes, keep));
        // Negative and positive values (Min/Max pick either sign; L1 sums magnitudes).
        check_chip_against_reference(g, {random_f16(ir::num_elements(c.xs), -2, 2, seed++)});
      }
}

TEST_CASE("conformance forms: ReduceMin/ReduceMax find extremes in the masked second vector and in lane 0") {
  // Known extremes at known places, including the masked lanes of a second vector.
  const ir::Shape xs{2, 400};
  std::vector<float> x = random_f16(800, -1, 1, 3);
  x[399] = 7.5f;    // row 0: max in the last valid lane of vector 2
  x[400] = -9.25f;  // row 1: min in lane 0
  for (OpKind k : {OpKind::ReduceMax, OpKind::ReduceMin}) {
    const ir::Graph g = unary_graph(k, xs, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}}, {2, 1});
    // The bound is the f16 output rounding only (max and negation are exact on the chip).
    check_chip_against_reference(g, {x});
  }
}

TEST_CASE("conformance forms: Softmax along a row axis (VXM passes of row-mapped operands)") {
  struct C { ir::Shape xs; int64_t axis; };
  uint32_t seed = 10;
  for (const C& c : {C{{3, 4, 5}, 0}, C{{3, 4, 5}, 1}, C{{2, 3, 400}, 1}}) {
    INFO(ir::shape_str(c.xs) << " axis " << c.axis);
    const ir::Graph g = unary_graph(OpKind::Softmax, c.xs, {{"axis", c.axis}}, c.xs);
    check_chip_against_reference(g, {random_f16(ir::num_elements(c.xs), -4, 4, seed++)});
  }
}

TEST_CASE("conformance forms: elementwise Max, Min, Abs and an activation broadcast over rows") {
  const ir::Shape s{3, 4, 5};
  uint32_t seed = 20;
  for (OpKind k : {OpKind::Max, OpKind::Min, OpKind::Sub}) {
    INFO(ir::op_kind_name(k));
    ir::Graph g;
    g.name = "bin";
    const ir::TensorId a = g.add_input("a", ir::DType::F16, s);
    // Sub reads b broadcast over rows ([1, 4, 5] -> [3, 4, 5], a row map); Max/Min same shape.
    const ir::Shape bs = k == OpKind::Sub ? ir::Shape{1, 4, 5} : s;
    const ir::TensorId b = g.add_input("b", ir::DType::F16, bs);
    const ir::TensorId y = g.add_tensor("y", ir::DType::F16, s);
    g.add_op(make_op(k, "op", {a, b}, y));
    g.mark_output(y);
    check_chip_against_reference(g, {random_f16(60, -3, 3, seed++), random_f16(ir::num_elements(bs), -3, 3, seed++)});
  }
  // A per-row scalar [3, 1, 1] broadcast over rows AND lanes (SXM distribute, then a row map).
  ir::Graph g;
  g.name = "bcast";
  const ir::TensorId a = g.add_input("a", ir::DType::F16, s);
  const ir::TensorId m = g.add_tensor("m", ir::DType::F16, {3, 1, 1});
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, s);
  g.add_op(make_op(OpKind::ReduceMax, "mx", {a}, m, {{"axes", std::vector<int64_t>{1, 2}}, {"keepdims", int64_t{1}}}));
  g.add_op(make_op(OpKind::Sub, "sub", {a, m}, y));
  g.mark_output(y);
  check_chip_against_reference(g, {random_f16(60, -3, 3, 30)});
  const ir::Graph ab = unary_graph(OpKind::Abs, s, {}, s);
  check_chip_against_reference(ab, {random_f16(60, -3, 3, 31)});
}

TEST_CASE("conformance forms: 1-D Conv, MaxPool and AveragePool import as 2-D windows and run on the chip") {
  for (const std::string op : {"Conv", "MaxPool", "AveragePool"}) {
    INFO(op);
    onnx::ModelProto m;
    auto* g = m.mutable_graph();
    *g->add_input() = vinfo("x", {2, 3, 16});
    std::vector<std::string> ins = {"x"};
    int64_t cout = 3;
    if (op == "Conv") {
      cout = 4;
      add_init(g, "w", {4, 3, 3}, random_f16(36, -1, 1, 40));
      ins.push_back("w");
    }
    auto* n = add_node(g, op, ins, {"y"}, "win");
    attr_ints(n, "kernel_shape", {3});
    attr_ints(n, "strides", {2});
    attr_ints(n, "pads", {1, 1});
    *g->add_output() = vinfo("y", {2, cout, 8});
    const ir::Graph ig = frontend::import_onnx_bytes(model_bytes(m, 13), "conv1d.onnx");
    CHECK(ig.tensor(ig.outputs()[0]).shape == ir::Shape{2, cout, 8});
    check_chip_against_reference(ig, {random_f16(96, -2, 2, 41)});
  }
}

TEST_CASE("conformance forms: opset 9 Slice-1 takes starts/ends/axes as attributes") {
  onnx::ModelProto m;
  auto* g = m.mutable_graph();
  *g->add_input() = vinfo("x", {4, 10});
  auto* n = add_node(g, "Slice", {"x"}, {"y"}, "sl");
  attr_ints(n, "starts", {1, 2});
  attr_ints(n, "ends", {3, -1});
  attr_ints(n, "axes", {0, 1});
  *g->add_output() = vinfo("y", {2, 7});
  const ir::Graph ig = frontend::import_onnx_bytes(model_bytes(m, 9), "slice1.onnx");
  REQUIRE(ig.ops().size() == 1);
  CHECK(ig.ops()[0].kind == OpKind::Slice);
  CHECK(ig.ops()[0].attr_ints("starts") == std::vector<int64_t>{1, 2});
  CHECK(ig.ops()[0].attr_ints("counts") == std::vector<int64_t>{2, 7});
}

TEST_CASE("conformance forms: opset 6 Add with legacy broadcast=1, axis=1 broadcasts B from that axis") {
  onnx::ModelProto m;
  auto* g = m.mutable_graph();
  *g->add_input() = vinfo("x", {2, 3, 4, 5});
  add_init(g, "b", {3}, {1.f, -2.f, 0.5f});
  auto* n = add_node(g, "Add", {"x", "b"}, {"y"}, "add");
  attr_int(n, "broadcast", 1);
  attr_int(n, "axis", 1);
  *g->add_output() = vinfo("y", {2, 3, 4, 5});
  const ir::Graph ig = frontend::import_onnx_bytes(model_bytes(m, 6), "add6.onnx");
  // B became [3, 1, 1]: channel c of x gets b[c] (numpy broadcasting of [3] would pair it with W).
  std::vector<ref::Value> in = {ref::Value::floats({2, 3, 4, 5}, std::vector<float>(120, 0.f))};
  const std::vector<ref::Value> out = ref::run(ig, in);
  CHECK(out[0].f[0] == 1.f);
  CHECK(out[0].f[20] == -2.f);
  CHECK(out[0].f[40] == 0.5f);
  check_chip_against_reference(ig, {random_f16(120, -2, 2, 50)});
}

TEST_CASE("conformance forms: old-opset differences that are not handled are refused by name") {
  {  // opset 5 and older: refused as a whole.
    onnx::ModelProto m;
    auto* g = m.mutable_graph();
    *g->add_input() = vinfo("x", {2});
    add_node(g, "Relu", {"x"}, {"y"}, "relu");
    *g->add_output() = vinfo("y", {2});
    CHECK(import_error(model_bytes(m, 5)) ==
          "m.onnx: default-domain opset 5 is not supported; allowed: 6..17 (re-export with opset_version in that "
          "range)");
  }
  {  // BatchNormalization-7 spatial=0: statistics per activation.
    onnx::ModelProto m;
    auto* g = m.mutable_graph();
    *g->add_input() = vinfo("x", {1, 2, 3});
    for (const char* p : {"s", "b", "mu", "var"}) add_init(g, p, {2, 3}, std::vector<float>(6, 1.f));
    auto* n = add_node(g, "BatchNormalization", {"x", "s", "b", "mu", "var"}, {"y"}, "bn");
    attr_int(n, "spatial", 0);
    *g->add_output() = vinfo("y", {1, 2, 3});
    CHECK(import_error(model_bytes(m, 7)) ==
          "m.onnx: node 'bn' (BatchNormalization, opset 7): spatial=0 (BatchNormalization-7: statistics per "
          "activation, not per channel) is not supported; supported: spatial=1");
  }
  {  // Dropout-6 without is_test: training mode.
    onnx::ModelProto m;
    auto* g = m.mutable_graph();
    *g->add_input() = vinfo("x", {2, 3});
    add_node(g, "Dropout", {"x"}, {"y"}, "drop");
    *g->add_output() = vinfo("y", {2, 3});
    CHECK(import_error(model_bytes(m, 6)) ==
          "m.onnx: node 'drop' (Dropout, opset 6): is_test=0 (Dropout-6 in training mode: a random mask) is not "
          "supported; supported: is_test=1 (inference)");
  }
}

TEST_CASE("conformance forms: a keepdims=0 reduction read by another op") {
  // Over row axes only the result keeps rows of lanes and is read as is; over the last axis it is
  // stored one value per row ([3, 4] as [3, 4, 1]), which another op cannot read as [3, 4]: refused.
  uint32_t seed = 60;
  for (OpKind k : {OpKind::ReduceSum, OpKind::ReduceMax, OpKind::ReduceL2}) {
    for (const std::vector<int64_t>& axes : {std::vector<int64_t>{0}, std::vector<int64_t>{2}, std::vector<int64_t>{0, 2}}) {
      INFO(ir::op_kind_name(k) << " over " << ir::shape_str(axes));
      ir::Graph g;
      g.name = "chain";
      const ir::Shape xs{3, 4, 5};
      const ir::TensorId x = g.add_input("x", ir::DType::F16, xs);
      const ir::Shape rs = reduced(xs, axes, false);
      const ir::TensorId r = g.add_tensor("r", ir::DType::F16, rs);
      const ir::TensorId y = g.add_tensor("y", ir::DType::F16, rs);
      g.add_op(make_op(k, "red", {x}, r, {{"axes", axes}, {"keepdims", int64_t{0}}}));
      g.add_op(make_op(OpKind::Neg, "neg", {r}, y));
      g.mark_output(y);
      if (axes.back() != 2) {
        check_chip_against_reference(g, {random_f16(60, -2, 2, seed++)});
        continue;
      }
      auto cfg = default_chip_config();
      REQUIRE_THROWS_WITH(compiler::compile(g, *cfg, compiler::CompileOptions{}),
                          Catch::Contains("node 'red'") && Catch::Contains("keepdims=0 over the last axis") &&
                              Catch::Contains("node 'neg' reads it as " + ir::shape_str(rs)));
    }
  }
}
