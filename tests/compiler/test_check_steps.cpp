// Per-step verification of `lpusim check` (compiler/reference/step_check.h): a program compiled with
// keep_intermediates exposes every stored tensor; each IR op recomputed from the chip's own inputs
// must be within its local bound. The check must pass on the example models and FAIL on a
// deliberately corrupted program (one weight byte flipped in the SRAM image; one bias-add
// instruction turned into a subtract), naming the step.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "compiler/compile.h"
#include "compiler/frontends/onnx_import.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;

namespace {

struct Model {
  ir::Graph g;
  compiler::LoweredModel lm;
  compiler::CompileResult cr;
  std::vector<ref::Value> inputs;
};

// A model of workloads/models with no host input layout (dense and attention models).
Model load(const std::string& name) {
  const std::string dir = std::string(LPU_SOURCE_DIR) + "/workloads/models/" + name + "/";
  Model m{frontend::import_onnx(dir + "model.onnx"), {}, {}, {}};
  m.lm = compiler::lower_graph(m.g);
  compiler::CompileOptions o;
  o.keep_intermediates = true;
  m.cr = compiler::compile(m.g, *default_chip_config(), o);
  m.inputs.push_back(frontend::load_onnx_tensor_file(dir + "test_data_set_0/input_0.pb"));
  REQUIRE(m.g.inputs().size() == 1);
  REQUIRE(m.lm.inputs.front().host_map.empty());
  return m;
}

ref::StepCheck run_steps(const Model& m, const Program& p) {
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  const ref::Value& x = m.inputs[0];
  std::vector<uint8_t> b(x.f.size() * 2);
  for (size_t i = 0; i < x.f.size(); ++i) {
    const uint16_t h = ir::f32_to_f16(x.f[i]);
    b[2 * i] = static_cast<uint8_t>(h & 0xFF);
    b[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
  compiler::bind_input(p, m.g.tensor(m.g.inputs()[0]).name, b, &so.inputs);
  const sim::SimResult s = sim::simulate(p, *default_chip_config(), so);
  return ref::verify_steps(m.g, m.inputs, ref::chip_graph_tensors(m.g, m.lm, p, s.outputs));
}

}  // namespace

TEST_CASE("check steps: every stored IR op of mlp and gpt_block is within its local bound", "[check]") {
  for (const char* name : {"mlp", "gpt_block"}) {
    INFO(name);
    const Model m = load(name);
    const ref::StepCheck sc = run_steps(m, m.cr.program);
    CHECK(sc.ok());
    CHECK(sc.steps.size() >= 3);
    for (const ref::StepVerdict& v : sc.steps) {
      INFO(v.op << " " << v.worst_ratio);
      CHECK(v.ok());
      if (v.exact) CHECK(v.max_err == 0);
    }
  }
}

TEST_CASE("check steps: a flipped weight byte in the SRAM image fails the step that reads it", "[check]") {
  const Model m = load("mlp");
  auto cfg = default_chip_config();
  const uint32_t lanes = cfg->vector_bytes();
  REQUIRE(run_steps(m, m.cr.program).ok());
  // Corrupt W[k][0] of the last layer (no relu after it to hide the change), for a row k whose input
  // on the chip is non-zero: flip bit 6 of its high byte (the top exponent bit: the weight scales by
  // 2^16 or 2^-16). fc3 is [256, 10]: its one tile has fewer columns than rows, so it is stored
  // transposed (placed_tensor.h PlacedWeights::trans): column n lives in group n % 8, vector n / 8,
  // lane k = row k, so W[k][0] is lane k of group 0's first vector. The memory map names each
  // group's slices, plane 0 (low bytes) first.
  const ir::Op* fc3 = nullptr;
  for (const ir::Op& op : m.g.ops())
    if (op.name == "/fc3/Gemm") fc3 = &op;
  REQUIRE(fc3 != nullptr);
  const ref::StepCheck good = run_steps(m, m.cr.program);
  // The chip's input of fc3 (fc2's relu output), from the good run.
  sim::SimOptions fo;
  fo.mode = sim::Mode::Functional;
  std::vector<uint8_t> b;
  for (float f : m.inputs[0].f) {
    const uint16_t h = ir::f32_to_f16(f);
    b.push_back(static_cast<uint8_t>(h & 0xFF));
    b.push_back(static_cast<uint8_t>(h >> 8));
  }
  compiler::bind_input(m.cr.program, m.g.tensor(m.g.inputs()[0]).name, b, &fo.inputs);
  const auto chip = ref::chip_graph_tensors(m.g, m.lm, m.cr.program,
                                            sim::simulate(m.cr.program, *cfg, fo).outputs);
  REQUIRE(chip.count(fc3->inputs[0]) == 1);
  const std::vector<double>& x = chip.at(fc3->inputs[0]);
  int64_t k = 0;  // the first row of W whose input is non-zero
  while (k < static_cast<int64_t>(x.size()) && x[static_cast<size_t>(k)] == 0) ++k;
  REQUIRE(k < static_cast<int64_t>(x.size()));
  const std::string key = "/fc3/Gemm.W.g0  ";
  const size_t at = m.cr.memory_map.find(key);
  REQUIRE(at != std::string::npos);
  const std::string slices = m.cr.memory_map.substr(at + key.size(), m.cr.memory_map.find(' ', at + key.size()) -
                                                                         at - key.size());
  const int hi = cfg->slice_index(slices.substr(slices.find(',') + 1));
  REQUIRE(hi >= 0);
  const size_t at_addr = m.cr.memory_map.find(' ', at + key.size()) + 1;  // "first..last" address
  const uint32_t a0 = static_cast<uint32_t>(std::stoul(m.cr.memory_map.substr(at_addr)));
  Program bad = m.cr.program;
  bool flipped = false;
  for (DataBlob& d : bad.data)
    if (d.slice == hi && d.addr <= a0 && (a0 - d.addr) * lanes < d.bytes.size()) {  // group 0's first vector
      REQUIRE(static_cast<uint32_t>(k) < lanes);
      d.bytes[(a0 - d.addr) * lanes + static_cast<size_t>(k)] ^= 0x40;
      flipped = true;
    }
  REQUIRE(flipped);
  const ref::StepCheck sc = run_steps(m, bad);
  CHECK(!sc.ok());
  const ref::StepVerdict* w = sc.worst();
  REQUIRE(w != nullptr);
  INFO(w->op << " " << w->outside << " " << w->err_at_worst << " " << w->bound_at_worst);
  CHECK(!w->ok());
  CHECK(w->op == "/fc3/Gemm");
  CHECK(w->outside == 1);  // only output lane 0
  // Only the corrupted layer fails: the others read the chip's values of their inputs.
  int failing = 0;
  for (const ref::StepVerdict& v : sc.steps) failing += v.ok() ? 0 : 1;
  CHECK(failing == 1);
  CHECK(good.ok());
}

TEST_CASE("check steps: a bias add turned into a subtract fails that layer's step", "[check]") {
  const Model m = load("mlp");
  Program bad = m.cr.program;
  bool changed = false;
  for (QueueCode& q : bad.chips[0].queues)
    for (Instr& in : q.code)
      if (!changed && in.op == Opcode::Add) {
        in.op = Opcode::Sub;
        changed = true;
      }
  REQUIRE(changed);
  const ref::StepCheck sc = run_steps(m, bad);
  CHECK(!sc.ok());
  const ref::StepVerdict* w = sc.worst();
  REQUIRE(w != nullptr);
  INFO(w->op);
  CHECK(!w->ok());
  CHECK((w->op == "/fc1/Gemm" || w->op == "/Relu"));  // the first layer: Gemm + Relu, stored after the Relu
}
