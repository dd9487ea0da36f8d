// ONNX activations written at import as chains of IR ops (compiler/frontends/onnx_activations.h):
// Clip, LeakyRelu, PRelu, Elu, Celu, Selu, Softplus, Softsign, HardSigmoid, HardSwish, LogSoftmax,
// and the variadic Sum / Mean. Each one-node model is imported, its reference result compared with
// the ONNX formula evaluated here in double, and then compiled and simulated on tsp-v1 within the
// reference's bound (tests/support/chip_check.h). Also: the refusal of a PRelu slope that would
// widen X, and a conv net whose pad lanes become inf (1 / 0) between two convs.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "compiler/frontends/onnx_import.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/interpreter.h"
#include "tests/support/chip_check.h"
#include "tests/support/conv_build.h"
#include "tests/support/f16_data.h"
#include "tests/support/onnx_build.h"

using namespace lpu;
using namespace lpu::test::onnx_build;
using lpu::test::check_chip_against_reference;
using lpu::test::random_f16;

namespace {

// Each model is built twice: f32 for the formula (the reference's f32 steps, a tight tolerance)
// and f16 for the chip (which stores every intermediate f16; the reference's bound for an f32
// model's steps would not cover that).
constexpr int kF32 = onnx::TensorProto::FLOAT, kF16 = onnx::TensorProto::FLOAT16;

using Formula = std::function<double(double)>;

struct Case {
  std::string op;
  std::vector<std::pair<std::string, float>> attrs;
  Formula f;
  int opset = 13;
  float lo = -4, hi = 4;  // input range
  bool f16 = true;        // ONNX defines the op for f16 (Celu: float32 only)
};

// y = op(x) over x [2, 3, 4, 5] of element type `elem`; returns the imported graph.
ir::Graph one_node(const Case& c, int elem) {
  const std::vector<int64_t> xs = {2, 3, 4, 5};
  onnx::ModelProto m;
  auto* g = m.mutable_graph();
  *g->add_input() = vinfo("x", xs, elem);
  auto* n = add_node(g, c.op, {"x"}, {"y"}, c.op + "_node");
  for (const auto& [name, v] : c.attrs) attr_float(n, name, v);
  *g->add_output() = vinfo("y", xs, elem);
  return frontend::import_onnx_bytes(model_bytes(m, c.opset), c.op + ".onnx");
}

// Reference result of f32 graph `g` on x against the formula, element by element (a few f32
// roundings of the chain's steps).
void check_formula(const ir::Graph& g, const std::vector<float>& x, const Formula& f) {
  const ir::Tensor& in = g.tensor(g.inputs()[0]);
  const std::vector<ref::Value> out = ref::run(g, {ref::Value::floats(in.shape, x)});
  REQUIRE(out[0].f.size() == x.size());
  for (size_t k = 0; k < x.size(); ++k) {
    const double want = f(x[k]);
    INFO("x = " << x[k] << ": got " << out[0].f[k] << ", want " << want);
    CHECK(std::fabs(out[0].f[k] - want) <= 1e-6 * std::max(1.0, std::fabs(want)));
  }
}

double relu(double x) { return x > 0 ? x : 0; }

}  // namespace

TEST_CASE("onnx activations: each chain computes its ONNX formula, on the reference and on the chip") {
  const double selu_a = 1.67326319217681884765625, selu_g = 1.05070102214813232421875;
  const std::vector<Case> cases = {
      {"LeakyRelu", {}, [](double x) { return x >= 0 ? x : 0.01 * x; }},
      {"LeakyRelu", {{"alpha", 0.2f}}, [](double x) { return x >= 0 ? x : 0.2 * x; }},
      {"LeakyRelu", {{"alpha", 2.5f}}, [](double x) { return x >= 0 ? x : 2.5 * x; }},  // the Relu + Min form
      {"LeakyRelu", {{"alpha", -0.5f}}, [](double x) { return x >= 0 ? x : -0.5 * x; }},
      {"Elu", {}, [](double x) { return x > 0 ? x : std::exp(x) - 1; }},
      {"Elu", {{"alpha", 0.5f}}, [](double x) { return x > 0 ? x : 0.5 * (std::exp(x) - 1); }},
      // Celu is float32 only; the conformance cases node/test_celu* run it on the chip (lpusim check).
      {"Celu",
       {{"alpha", 2.f}},
       [](double x) { return relu(x) + std::min(0.0, 2 * (std::exp(x / 2) - 1)); },
       13,
       -4,
       4,
       false},
      {"Selu", {}, [=](double x) { return x > 0 ? selu_g * x : selu_g * (selu_a * std::exp(x) - selu_a); }},
      {"Softplus", {}, [](double x) { return std::log1p(std::exp(x)); }, 13, -30, 30},
      {"Softsign", {}, [](double x) { return x / (1 + std::fabs(x)); }},
      {"HardSigmoid", {}, [](double x) { return std::min(1.0, std::max(0.0, 0.2 * x + 0.5)); }},
      {"HardSigmoid",
       {{"alpha", 0.5f}, {"beta", 0.25f}},
       [](double x) { return std::min(1.0, std::max(0.0, 0.5 * x + 0.25)); }},
      {"HardSwish", {}, [](double x) { return x * std::min(1.0, std::max(0.0, x / 6 + 0.5)); }, 14, -6, 6},
      {"Clip", {{"min", -1.5f}, {"max", 2.f}}, [](double x) { return std::min(2.0, std::max(-1.5, x)); }, 6},
      {"Clip", {{"max", 0.5f}}, [](double x) { return std::min(0.5, x); }, 6},
      {"Clip", {}, [](double x) { return x; }, 6},
      {"Log", {}, [](double x) { return std::log(x); }, 13, 0.01f, 8},
  };
  uint32_t seed = 100;
  for (const Case& c : cases) {
    std::string what = c.op + " opset " + std::to_string(c.opset);
    for (const auto& [n, v] : c.attrs) what += " " + n + "=" + std::to_string(v);
    INFO(what);
    std::vector<float> x = random_f16(120, c.lo, c.hi, seed++);
    if (c.lo < 0 && c.hi > 0) x[7] = 0.f;  // the branch point
    check_formula(one_node(c, kF32), x, c.f);
    if (c.f16) check_chip_against_reference(one_node(c, kF16), {x});
  }
}

TEST_CASE("onnx activations: Softplus stays finite where exp(x) overflows f16") {
  // exp(x) exceeds f16's 65504 from x = 11.1: the chain computes relu(x) + log(1 + exp(-|x|)).
  const Case c{"Softplus", {}, {}};
  std::vector<float> x(120);
  for (size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(static_cast<int>(k) - 60) * 0.5f;  // -30 .. 29.5
  check_formula(one_node(c, kF32), x, [](double v) { return std::log1p(std::exp(v)); });
  check_chip_against_reference(one_node(c, kF16), {x});
}

TEST_CASE("onnx activations: Clip-11+ reads min and max from inputs, either may be absent") {
  for (int which = 0; which < 3; ++which) {  // both, only min, only max
    auto model = [&](int elem) {
      onnx::ModelProto m;
      auto* g = m.mutable_graph();
      *g->add_input() = vinfo("x", {4, 30}, elem);
      add_init(g, "lo", {}, {-0.5f}, elem);
      add_init(g, "hi", {}, {1.25f}, elem);
      add_node(g, "Clip", {"x", which == 2 ? "" : "lo", which == 1 ? "" : "hi"}, {"y"}, "clip");
      *g->add_output() = vinfo("y", {4, 30}, elem);
      return frontend::import_onnx_bytes(model_bytes(m, 13), "clip.onnx");
    };
    const double lo = which == 2 ? -1e30 : -0.5, hi = which == 1 ? 1e30 : 1.25;
    const std::vector<float> x = random_f16(120, -3, 3, 200 + static_cast<uint32_t>(which));
    check_formula(model(kF32), x, [=](double v) { return std::min(hi, std::max(lo, v)); });
    check_chip_against_reference(model(kF16), {x});
  }
}

TEST_CASE(
    "onnx activations: PRelu slopes per channel (PRelu-6's 1-D slope too), a widening slope is refused") {
  for (int opset : {6, 9}) {
    INFO("opset " << opset);
    auto model = [&](int elem) {
      onnx::ModelProto m;
      auto* g = m.mutable_graph();
      *g->add_input() = vinfo("x", {2, 3, 4, 5}, elem);
      // PRelu-9: unidirectional broadcast, [3, 1, 1] is per channel; PRelu-6: a 1-D [3] slope is.
      if (opset == 6)
        add_init(g, "s", {3}, {0.1f, -0.3f, 2.f}, elem);
      else
        add_init(g, "s", {3, 1, 1}, {0.1f, -0.3f, 2.f}, elem);
      add_node(g, "PRelu", {"x", "s"}, {"y"}, "prelu");
      *g->add_output() = vinfo("y", {2, 3, 4, 5}, elem);
      return frontend::import_onnx_bytes(model_bytes(m, opset), "prelu.onnx");
    };
    const std::vector<float> x = random_f16(120, -3, 3, 300 + static_cast<uint32_t>(opset));
    const std::vector<ref::Value> out = ref::run(model(kF32), {ref::Value::floats({2, 3, 4, 5}, x)});
    const float slope[3] = {0.1f, -0.3f, 2.f};
    for (size_t k = 0; k < x.size(); ++k) {
      const float s = slope[k / 20 % 3];
      CHECK(out[0].f[k] == (x[k] >= 0 ? x[k] : s * x[k]));  // one product, rounded once: exact
    }
    check_chip_against_reference(model(kF16), {x});
  }
  onnx::ModelProto m;
  auto* g = m.mutable_graph();
  *g->add_input() = vinfo("x", {3, 4});
  add_init(g, "s", {2, 3, 4}, std::vector<float>(24, 0.5f));
  add_node(g, "PRelu", {"x", "s"}, {"y"}, "wide");
  *g->add_output() = vinfo("y", {3, 4});  // as ONNX infers it (from X alone)
  const std::string e = import_error(model_bytes(m, 13));
  INFO(e);
  CHECK(
      e.find("node 'wide' (PRelu, opset 13): slope of shape [2,3,4] does not broadcast to X's shape [3,4]") !=
      std::string::npos);
}

TEST_CASE("onnx activations: LogSoftmax over any axis, opset 13 and the flattened opset-11 form") {
  for (int opset : {11, 13}) {
    for (int64_t axis : {1, 2}) {
      INFO("opset " << opset << " axis " << axis);
      auto model = [&](int elem) {
        onnx::ModelProto m;
        auto* g = m.mutable_graph();
        *g->add_input() = vinfo("x", {2, 3, 40}, elem);
        attr_int(add_node(g, "LogSoftmax", {"x"}, {"y"}, "lsm"), "axis", axis);
        *g->add_output() = vinfo("y", {2, 3, 40}, elem);
        return frontend::import_onnx_bytes(model_bytes(m, opset), "lsm.onnx");
      };
      std::vector<float> x = random_f16(240, -5, 5, 400 + static_cast<uint32_t>(opset + axis));
      x[3] = 60.f;  // softmax of the others underflows f16 (e^-60): log(softmax) would be -inf
      const std::vector<ref::Value> out = ref::run(model(kF32), {ref::Value::floats({2, 3, 40}, x)});
      // The softmax group of element k: opset 13 one axis; opset 11 dims [axis, rank) flattened.
      const int64_t inner = axis == 2 || opset == 11 ? (axis == 2 ? 40 : 120) : 1;
      const int64_t len = axis == 2 ? 40 : opset == 11 ? 120 : 3;
      const int64_t stride = axis == 1 && opset == 13 ? 40 : 1;
      for (int64_t k = 0; k < 240; ++k) {
        const int64_t base = stride == 1 ? k / inner * inner : k / 120 * 120 + k % 40;
        double mx = -1e30, sum = 0;
        for (int64_t j = 0; j < len; ++j) mx = std::max(mx, static_cast<double>(x[base + j * stride]));
        for (int64_t j = 0; j < len; ++j) sum += std::exp(x[base + j * stride] - mx);
        const double want = x[k] - mx - std::log(sum);
        INFO("element " << k);
        CHECK(std::fabs(out[0].f[k] - want) <= 1e-5 * std::max(1.0, std::fabs(want)));
      }
      check_chip_against_reference(model(kF16), {x});
    }
  }
}

TEST_CASE("onnx activations: Sum and Mean of three inputs") {
  for (const std::string op : {"Sum", "Mean"}) {
    INFO(op);
    auto model = [&](int elem) {
      onnx::ModelProto m;
      auto* g = m.mutable_graph();
      for (const char* n : {"a", "b", "c"}) *g->add_input() = vinfo(n, {3, 50}, elem);
      add_node(g, op, {"a", "b", "c"}, {"y"}, "v");
      *g->add_output() = vinfo("y", {3, 50}, elem);
      return frontend::import_onnx_bytes(model_bytes(m, 13), "v.onnx");
    };
    std::vector<std::vector<float>> in;
    std::vector<ref::Value> rv;
    for (uint32_t s = 0; s < 3; ++s) {
      in.push_back(random_f16(150, -2, 2, 500 + s));
      rv.push_back(ref::Value::floats({3, 50}, in.back()));
    }
    const std::vector<ref::Value> out = ref::run(model(kF32), rv);
    for (size_t k = 0; k < 150; ++k) {
      const double sum = static_cast<double>(in[0][k]) + in[1][k] + in[2][k];
      CHECK(std::fabs(out[0].f[k] - (op == "Sum" ? sum : sum / 3)) <= 1e-6);
    }
    check_chip_against_reference(model(kF16), in);
  }
}

TEST_CASE("onnx activations: a conv whose input pad lanes hold inf reads them cleared") {
  // conv -> Reciprocal -> conv: the first conv's pad lanes (channels 8..319 of its 320-lane rows)
  // are 0, so 1 / x makes them inf; the second conv's zero weight rows would turn inf into NaN
  // (inf * 0) in every output. A VXM select zeroes them first (ConvLowering::cleared).
  using namespace lpu::test;
  ir::Graph g;
  g.name = "recip_between_convs";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {1, 4, 6, 6});
  // Positive weights, inputs and bias keep the first conv's outputs in [0.5, 3]: 1 / x is tame.
  const ir::TensorId w1 =
      g.add_constant("w1", ir::DType::F16, {8, 4, 3, 3}, f16_bytes(random_f16(288, 0.f, 0.05f, 600)));
  const ir::TensorId b1 = g.add_constant("b1", ir::DType::F16, {8}, f16_bytes(std::vector<float>(8, 0.5f)));
  const ir::TensorId w2 = conv_weight(g, "w2", 6, 8, 1, 601);
  const ir::TensorId c1 = g.add_tensor("c1", ir::DType::F16, {1, 8, 6, 6});
  const ir::TensorId r = g.add_tensor("r", ir::DType::F16, {1, 8, 6, 6});
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {1, 6, 6, 6});
  g.add_op(conv_op("conv1", {x, w1, b1}, c1, 3, 1, 1));
  g.add_op(make_op(ir::OpKind::Reciprocal, "recip", {c1}, r));
  g.add_op(conv_op("conv2", {r, w2}, y, 1, 1, 0));
  g.mark_output(y);
  const compiler::LoweredModel lm = compiler::lower_graph(g, 320, {});
  int clears = 0;
  for (const compiler::LoweredEltwise& E : lm.eltwise)
    clears += E.name.find(".padclear") != std::string::npos;
  CHECK(clears == 1);
  check_chip_against_reference(g, {random_f16(144, 0.5f, 1.5f, 602)});
}

TEST_CASE("onnx activations: a chain fused into one step on a conv's output keeps each op's constant") {
  // HardSigmoid's x * 0.2 + 0.5 on a conv output: the Mul is an elementwise step with a constant
  // operand (laid out per channel for the conv layout), the Add joins it as an immediate post op.
  // Laying the step's operands out again for the Add must not replace the Mul's 0.2 by the 0.5.
  using namespace lpu::test;
  ir::Graph g;
  g.name = "conv_hard_sigmoid";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {1, 4, 5, 5});
  const ir::TensorId w = conv_weight(g, "w", 8, 4, 3, 700);
  const ir::TensorId c = g.add_tensor("c", ir::DType::F16, {1, 8, 5, 5});
  const ir::TensorId a = g.add_constant("alpha", ir::DType::F16, {}, f16_bytes({0.2f}));
  const ir::TensorId b = g.add_constant("beta", ir::DType::F16, {}, f16_bytes({0.5f}));
  const ir::TensorId m = g.add_tensor("m", ir::DType::F16, {1, 8, 5, 5});
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {1, 8, 5, 5});
  g.add_op(conv_op("conv", {x, w}, c, 3, 1, 1));
  g.add_op(make_op(ir::OpKind::Mul, "scale", {c, a}, m));
  g.add_op(make_op(ir::OpKind::Add, "shift", {m, b}, y));
  g.mark_output(y);
  const compiler::LoweredModel lm = compiler::lower_graph(g, 320, {});
  bool fused = false;  // the form this test is about: one step, the Add a post op
  for (const compiler::LoweredEltwise& E : lm.eltwise)
    fused = fused || (E.y == y && E.name == "scale" && E.post.size() == 1);
  CHECK(fused);
  check_chip_against_reference(g, {random_f16(100, -2, 2, 701)});
}
