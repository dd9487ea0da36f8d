// Seeded random graphs through the whole compiler and simulator: chains of the ops lowering.cpp
// lists as supported (elementwise with numpy broadcasting, unary ops, MatMul by a constant, MatMul
// of two activations in both operand orders and with B transposed, Softmax, LayerNormalization,
// reductions, Transpose, Slice, Concat), on small odd shapes with an occasional dimension past one
// 320-lane vector. Each graph must either be refused with an InputError (a form the compiler
// names as unsupported) or compile, simulate in timing and functional mode with the predicted
// cycles, and match the reference interpreter within twice its error bound
// (check_chip_against_reference). Any other exception is a bug: a MatMul of a constant by an
// activation used to stop with an internal 'map::at'. Inputs stay in [-1, 1] and no op divides by
// or takes the root of an activation, so every reference bound is finite. A seed's graph is the
// same run after run of one build; draws made inside one call's arguments follow the compiler's
// argument order, so a GCC and a Clang build may give a seed different graphs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/chip_config.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/host_input.h"
#include "tests/support/ir_build.h"
#include "tests/support/random_cases.h"
#include "sim/simulator.h"

using namespace lpu;
using ir::OpKind;
using ir::Shape;
using ir::TensorId;

namespace {

class Builder : test::RandomModelBuilder {
 public:
  explicit Builder(uint32_t seed) : RandomModelBuilder(seed, "random") {}

  test::RandomModel build() {
    const int n_in = pick(1, 2);
    const int64_t R = dim(), C = dim();
    const Shape s = coin(4) ? Shape{pick(2, 3), R, C} : Shape{R, C};
    for (int i = 0; i < n_in; ++i) {
      const TensorId x = m_.g.add_input("x" + std::to_string(i), ir::DType::F16, s);
      m_.inputs.push_back(test::random_f16(ir::num_elements(s), -1.f, 1.f, seed_ * 7 + static_cast<uint32_t>(i)));
      pool_.push_back(x);
      note("input " + name(x));
    }
    if (n_in == 2) {  // every input is read (an unread one is not in the program)
      const TensorId y = out(s);
      add(make_op(coin(2) ? OpKind::Add : OpKind::Mul, op_name(), {pool_[0], pool_[1]}, y), y);
    }
    const int n_ops = pick(2, 6);
    for (int k = 0; k < n_ops; ++k) step();
    m_.g.mark_output(pool_.back());
    if (pool_.size() > 2 && coin(3) && pool_[pool_.size() - 2] != pool_.back() &&
        !m_.g.tensor(pool_[pool_.size() - 2]).is_const && !is_input(pool_[pool_.size() - 2]))
      m_.g.mark_output(pool_[pool_.size() - 2]);
    m_.g.validate();
    return std::move(m_);
  }

 private:
  int64_t dim() { return coin(8) ? pick(321, 340) : pick(1, 40); }
  bool is_input(TensorId t) const {
    for (TensorId i : m_.g.inputs())
      if (i == t) return true;
    return false;
  }
  TensorId any() { return pool_[static_cast<size_t>(pick(0, static_cast<int64_t>(pool_.size()) - 1))]; }
  void step() {
    const TensorId x = any();
    const Shape s = shape(x);
    const int64_t last = s.back();
    switch (pick(0, 15)) {
      case 0: {  // unary
        const OpKind ks[] = {OpKind::Relu, OpKind::Sigmoid, OpKind::Tanh, OpKind::Neg, OpKind::Abs, OpKind::Exp};
        const OpKind k = ks[pick(0, 5)];
        if (k == OpKind::Exp && !exp_ok(x)) return;
        const TensorId y = out(s);
        add(make_op(k, op_name(), {x}, y), y);
        if (k == OpKind::Sigmoid || k == OpKind::Tanh) bounded_.insert(y);
        return;
      }
      case 1: {  // binary with an activation of the same shape, or a broadcast constant
        const OpKind ks[] = {OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Max, OpKind::Min};
        const OpKind k = ks[pick(0, 4)];
        TensorId b = ir::kNoTensor;
        for (int tries = 0; tries < 4 && b == ir::kNoTensor; ++tries) {
          const TensorId c = any();
          if (shape(c) == s) b = c;
        }
        if (b == ir::kNoTensor) b = coin(2) ? constant({last}, -1.f, 1.f) : constant({1}, 0.25f, 1.f);
        const TensorId y = out(s);
        add(make_op(k, op_name(), coin(2) ? std::vector<TensorId>{x, b} : std::vector<TensorId>{b, x}, y), y);
        return;
      }
      case 2: {  // Div by a positive constant
        const TensorId y = out(s);
        add(make_op(OpKind::Div, op_name(), {x, constant({last}, 0.5f, 2.f)}, y), y);
        return;
      }
      case 3: {  // MatMul by a constant weight, optionally + bias
        const int64_t N = dim();
        Shape ys = s;
        ys.back() = N;
        const TensorId w = constant({last, N}, -0.1f, 0.1f);
        const TensorId y = out(ys);
        add(make_op(OpKind::MatMul, op_name(), {x, w}, y), y);
        if (coin(2)) {
          const TensorId z = out(ys);
          add(make_op(OpKind::Add, op_name(), {y, constant({N}, -0.5f, 0.5f)}, z), z);
        }
        return;
      }
      case 4: {  // MatMul of two activations: x . B, or x . B^T
        for (int tries = 0; tries < 6; ++tries) {
          const TensorId b = any();
          const Shape& bs = shape(b);
          if (bs.size() != s.size() || (s.size() == 3 && bs[0] != s[0])) continue;
          const bool trans = bs.back() == last && coin(2);
          if (!trans && bs[bs.size() - 2] != last) continue;
          TensorId bb = b;
          if (trans) {
            Shape ts = bs;
            std::swap(ts[ts.size() - 1], ts[ts.size() - 2]);
            bb = out(ts);
            add(make_op(OpKind::Transpose, op_name(), {b}, bb,
                        {{"perm", s.size() == 3 ? std::vector<int64_t>{0, 2, 1} : std::vector<int64_t>{1, 0}}}),
                bb);
          }
          Shape ys = s;
          ys.back() = shape(bb).back();
          const TensorId y = out(ys);
          add(make_op(OpKind::MatMul, op_name(), {x, bb}, y), y);
          return;
        }
        return;
      }
      case 5: {  // a constant times an activation: C [M, R] . x [R, last]
        if (s.size() != 2) return;
        const int64_t M = dim();
        const TensorId c = constant({M, s[0]}, -0.1f, 0.1f);
        const TensorId y = out({M, last});
        add(make_op(OpKind::MatMul, op_name(), {c, x}, y), y);
        return;
      }
      case 6: {  // Softmax over the last axis or another one
        const int64_t axis = coin(3) ? 0 : static_cast<int64_t>(s.size() - 1);
        const TensorId y = out(s);
        add(make_op(OpKind::Softmax, op_name(), {x}, y, {{"axis", axis}}), y);
        bounded_.insert(y);
        return;
      }
      case 7: {  // LayerNormalization over the last axis
        if (last < 2) return;
        const TensorId y = out(s);
        ir::Op ln = make_op(OpKind::LayerNormalization, op_name(),
                            {x, constant({last}, 0.5f, 1.5f), constant({last}, -0.5f, 0.5f)}, y);
        ln.attrs["axis"] = static_cast<int64_t>(s.size() - 1);
        ln.attrs["epsilon"] = 1e-5f;
        add(std::move(ln), y);
        return;
      }
      case 8: {  // a reduction over the last axis or the first, keepdims
        const OpKind ks[] = {OpKind::ReduceSum, OpKind::ReduceMean, OpKind::ReduceMax};
        const OpKind k = ks[pick(0, 2)];
        const int64_t axis = coin(2) ? static_cast<int64_t>(s.size() - 1) : 0;
        Shape ys = s;
        ys[static_cast<size_t>(axis)] = 1;
        const TensorId y = out(ys);
        add(make_op(k, op_name(), {x}, y, {{"axes", std::vector<int64_t>{axis}}, {"keepdims", int64_t{1}}}), y);
        return;
      }
      case 9: {  // Transpose of the last two axes, or a Slice of the last axis
        if (coin(2)) {
          Shape ts = s;
          std::swap(ts[ts.size() - 1], ts[ts.size() - 2]);
          const TensorId y = out(ts);
          add(make_op(OpKind::Transpose, op_name(), {x}, y,
                      {{"perm", s.size() == 3 ? std::vector<int64_t>{0, 2, 1} : std::vector<int64_t>{1, 0}}}),
              y);
        } else {
          if (last < 2) return;
          const int64_t b = pick(0, last - 2), e = pick(b + 1, last);
          Shape ys = s;
          ys.back() = e - b;
          const TensorId y = out(ys);
          std::vector<int64_t> starts(s.size(), 0), steps(s.size(), 1), counts(s.begin(), s.end());
          starts.back() = b;
          counts.back() = e - b;
          add(make_op(OpKind::Slice, op_name(), {x}, y, {{"starts", starts}, {"steps", steps}, {"counts", counts}}), y);
        }
        return;
      }
      case 11: {  // Gemm by a constant with transB and a bias row (2-D)
        if (s.size() != 2) return;
        const int64_t N = dim();
        const TensorId y = out({s[0], N});
        add(make_op(OpKind::Gemm, op_name(), {x, constant({N, last}, -0.1f, 0.1f), constant({N}, -0.5f, 0.5f)}, y,
                    {{"alpha", 0.5f}, {"beta", 1.f}, {"transA", int64_t{0}}, {"transB", int64_t{1}}}),
            y);
        return;
      }
      case 12: {  // Reshape: split the rows into two dims, or merge the leading two
        Shape ys;
        if (s.size() == 3) ys = {s[0] * s[1], last};
        else if (s[0] % 2 == 0 && s[0] > 2) ys = {2, s[0] / 2, last};
        else return;
        const TensorId y = out(ys);
        add(make_op(OpKind::Reshape, op_name(), {x}, y, {{"shape", std::vector<int64_t>(ys.begin(), ys.end())}}), y);
        return;
      }
      case 13: {  // Split of the last axis into two parts; both are kept
        if (last < 2) return;
        const int64_t a = pick(1, last - 1);
        Shape s0 = s, s1 = s;
        s0.back() = a;
        s1.back() = last - a;
        const TensorId y0 = out(s0), y1 = out(s1);
        ir::Op op = make_op(OpKind::Split, op_name(), {x}, std::vector<TensorId>{y0, y1},
                            {{"axis", static_cast<int64_t>(s.size() - 1)}, {"split", std::vector<int64_t>{a, last - a}}});
        note("Split(" + name(x) + ") -> " + name(y0) + ", " + name(y1));
        m_.g.add_op(std::move(op));
        pool_.push_back(y0);
        pool_.push_back(y1);
        return;
      }
      case 14: {  // unary ops of a restricted domain: sqrt(|x| + 1), 1 / (sigmoid(x) + 0.5), erf, x^2
        const int form = static_cast<int>(pick(0, 3));
        if (form == 0 || form == 1) {
          const TensorId t = out(s), u = out(s), y = out(s);
          add(make_op(form == 0 ? OpKind::Abs : OpKind::Sigmoid, op_name(), {x}, t), t);
          add(make_op(OpKind::Add, op_name(), {t, constant({1}, form == 0 ? 1.f : 0.5f, form == 0 ? 1.f : 0.5f)}, u), u);
          add(make_op(form == 0 ? OpKind::Sqrt : OpKind::Reciprocal, op_name(), {u}, y), y);
        } else if (form == 2) {
          const TensorId y = out(s);
          add(make_op(OpKind::Erf, op_name(), {x}, y), y);
        } else {
          const TensorId y = out(s);
          add(make_op(OpKind::Pow, op_name(), {x, constant({1}, 2.f, 2.f)}, y), y);
        }
        return;
      }
      case 15: {  // Where with a constant condition
        const TensorId y = out(s);
        std::vector<uint8_t> cond(static_cast<size_t>(last));
        for (auto& c : cond) c = static_cast<uint8_t>(pick(0, 1));
        const TensorId c = m_.g.add_constant("c" + std::to_string(next_++), ir::DType::BOOL, {last}, cond);
        add(make_op(OpKind::Where, op_name(), {c, x, constant({1}, -0.25f, 0.25f)}, y), y);
        return;
      }
      default: {  // Concat along the first axis with a tensor of the same trailing dims
        for (int tries = 0; tries < 6; ++tries) {
          const TensorId b = any();
          const Shape& bs = shape(b);
          if (bs.size() != s.size() || !std::equal(bs.begin() + 1, bs.end(), s.begin() + 1)) continue;
          Shape ys = s;
          ys[0] += bs[0];
          const TensorId y = out(ys);
          add(make_op(OpKind::Concat, op_name(), {x, b}, y, {{"axis", int64_t{0}}}), y);
          return;
        }
        return;
      }
    }
  }
  // Exp only of values a Sigmoid, Tanh or Softmax bounded (|x| <= 1): no overflow, a finite bound.
  bool exp_ok(TensorId x) const { return bounded_.count(x) || is_input(x); }

  std::set<TensorId> bounded_;
};

}  // namespace

TEST_CASE("random graphs: each compiles, simulates at its predicted cycles and matches the reference, or is refused",
          "[random]") {
  // The suite runs seeds 12..31 (about 1 s). LPU_RANDOM_GRAPHS=N runs seeds 1..N instead: 300
  // took ~1 minute and all passed when this test was written. Seeds 3, 8 and 11 take 3-4 s each to
  // compile (the lane scheduler's compile-time cliff, docs/ROADMAP.md); they are left to that run.
  test::run_random_cases("LPU_RANDOM_GRAPHS", 12, 31, 2.0 / 3, [](uint32_t seed, std::string* text) {
    test::RandomModel rg = Builder(seed).build();
    *text = rg.text;
    INFO("seed " << seed << ":\n" << rg.text);
    test::check_chip_against_reference(rg.g, rg.inputs);
  });
}

TEST_CASE("a graph outside the IR contract is refused naming the node, not lowered out of range", "[random]") {
  // A Softmax with axis -1 (the IR's axes are non-negative, op_kinds.def) crashed the row-axis
  // Softmax lowering; a declared output shape that its inputs do not give is refused the same way.
  ir::Graph g = unary_graph(OpKind::Softmax, {14, 33}, {{"axis", int64_t{-1}}}, {14, 33}, "sm");
  try {
    (void)compiler::lower_graph(g);
    FAIL("lowered");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Catch::Contains("'sm'") && Catch::Contains("axis=-1"));
  }
  ir::Graph h = unary_graph(OpKind::Relu, {14, 33}, {}, {14, 32}, "r");
  try {
    (void)compiler::lower_graph(h);
    FAIL("lowered");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Catch::Contains("node 'r'") && Catch::Contains("[14,32]") && Catch::Contains("[14,33]"));
  }
}

TEST_CASE("random graphs' findings: a reshaped input read elsewhere too, a row reduction of a reshaped view",
          "[random]") {
  // Seed 17: a graph input read by a Reshape and by a Concat. The Reshape was folded into the
  // input's layout regardless, and the Concat then read an input the program did not have
  // (internal 'map::at'); now only a Reshape that is the input's one reader is folded.
  {
    ir::Graph g;
    const TensorId x = g.add_input("x", ir::DType::F16, {22, 8});
    const TensorId r = g.add_tensor("r", ir::DType::F16, {2, 11, 8}), c = g.add_tensor("c", ir::DType::F16, {44, 8});
    g.add_op(make_op(OpKind::Reshape, "rs", {x}, r, {{"shape", std::vector<int64_t>{2, 11, 8}}}));
    g.add_op(make_op(OpKind::Concat, "cat", {x, x}, c, {{"axis", int64_t{0}}}));
    g.mark_output(r);
    g.mark_output(c);
    test::check_chip_against_reference(g, {test::random_f16(22 * 8, -1.f, 1.f, 5)});
  }
  // Seed 66: ReduceSum over axis 0 of a Reshape [3, 6, 15] -> [18, 15] of a computed tensor. The
  // reduction took its axes in the stored tensor's shape [3, 6, 15] (3 terms of 6 rows) and the
  // schedule stopped on a row map of the wrong size; the axes now refer to the op's input shape.
  {
    ir::Graph g;
    const TensorId x = g.add_input("x", ir::DType::F16, {3, 6, 15});
    const TensorId s = g.add_tensor("s", ir::DType::F16, {3, 6, 15}), r = g.add_tensor("r", ir::DType::F16, {18, 15}),
                   y = g.add_tensor("y", ir::DType::F16, {1, 15});
    g.add_op(make_op(OpKind::Sigmoid, "sg", {x}, s));
    g.add_op(make_op(OpKind::Reshape, "rs", {s}, r, {{"shape", std::vector<int64_t>{18, 15}}}));
    g.add_op(make_op(OpKind::ReduceSum, "sum", {r}, y, {{"axes", std::vector<int64_t>{0}}, {"keepdims", int64_t{1}}}));
    g.mark_output(y);
    test::check_chip_against_reference(g, {test::random_f16(3 * 6 * 15, -1.f, 1.f, 6)});
  }
}

TEST_CASE("random graphs at int8: each compiles, simulates at its predicted cycles and passes the per-step int8 "
          "check, or is refused",
          "[random][int8]") {
  // As above with --precision int8 (calibrated on the graph's own inputs, quantized on chip) and
  // `lpusim check --precision int8`'s per-step check (verify_int8_steps). LPU_RANDOM_GRAPHS_INT8=N
  // runs seeds 1..N instead of the suite's 12..23.
  auto chip = default_chip_config();
  uint32_t unchecked = 0;
  // Most graphs have no product int8 can take ("compile it with fp16", refused by name): about a
  // third compile.
  test::run_random_cases("LPU_RANDOM_GRAPHS_INT8", 12, 23, 0.25, [&](uint32_t seed, std::string* text) {
    test::RandomModel rg = Builder(seed).build();
    *text = rg.text;
    INFO("seed " << seed << " (int8):\n" << rg.text);
    std::vector<ref::Value> in;
    for (size_t i = 0; i < rg.g.inputs().size(); ++i) {
      const ir::Tensor& t = rg.g.tensor(rg.g.inputs()[i]);
      in.push_back(ref::Value::floats(t.shape, rg.inputs[i], t.dtype));
    }
    compiler::CompileOptions co;
    co.precision = compiler::Precision::INT8;
    co.int8.onchip_quantize = true;
    co.calibration = {in};
    co.keep_intermediates = true;
    const compiler::CompileResult cr = compiler::compile(rg.g, *chip, co);  // may refuse: InputError
    try {  // past the compile, an InputError is a failure
      sim::SimOptions so;
      so.mode = sim::Mode::Timing;
      CHECK(sim::simulate(cr.program, *chip, so).cycles == cr.program.predicted_cycles);
      so.mode = sim::Mode::Functional;
      compiler::LoweredModel lm = compiler::lower_graph(rg.g, chip->vector_bytes(), cr.lower);
      for (size_t i = 0; i < rg.g.inputs().size(); ++i)  // as the host: quantized if the plan says so
        test::bind_host_input(cr, lm.inputs[i], rg.g.tensor(rg.g.inputs()[i]).name, rg.inputs[i], &so.inputs);
      const sim::SimResult r = sim::simulate(cr.program, *chip, so);
      CHECK(r.cycles == cr.program.predicted_cycles);
      if (!cr.quant) return;  // nothing quantized: the fp16 test above covers it
      compiler::apply_quant_copies(rg.g, *cr.quant, &lm);
      // Every int8 layer within its bound and every checked step ok. A quantizing step the check
      // cannot read in graph layout is reported "(unchecked)" (a limit of the check, counted).
      const compiler::Int8StepCheck ck = compiler::verify_int8_steps(rg.g, lm, *cr.quant, in, cr.program, r.outputs);
      for (const compiler::Int8LayerVerdict& v : ck.layers) {
        INFO(v.layer << ": max err " << v.max_err << ", max bound " << v.max_bound);
        CHECK(v.ok());
      }
      for (const ref::StepVerdict& v : ck.steps.steps) {
        if (v.kind.find("(unchecked)") != std::string::npos) {
          ++unchecked;
          continue;
        }
        INFO(v.op << " (" << v.kind << "): max err " << v.max_err << ", worst err/bound " << v.worst_ratio);
        CHECK(v.ok());
      }
    } catch (const InputError& e) {
      FAIL("after the compile: " << e.what());
    }
  });
  INFO("quantizing steps the per-step check reported unchecked: " << unchecked);
  CHECK(unchecked <= 1);  // one in seeds 1..250 (a limit of the check, docs/ROADMAP.md session 24)
}
