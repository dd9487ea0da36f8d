// Attention PREFILL pieces (issue 5 item 6, the BERT-base validation row): the lowering's structure
// (one o_proj product over every head, the int8 Cast as a view) and its outputs. Where a piece's
// cycles go is printed by bench programs, not tests: `bench_piece --prefill T --layer L --timeline`
// (lowered steps and a per-1000-cycle histogram of instructions per unit) and `bench_prefill --steps`.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <string>

#include "compiler/compile.h"
#include "compiler/llm/segments.h"
#include "compiler/passes/lowering.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "tests/support/cli.h"
#include "tests/support/process.h"
#include "tests/support/llm_workloads.h"

using namespace lpu;
using lpu::test::workload_llm;

namespace {


llm::SegmentSpec prefill_attention(int64_t tokens, int64_t rank, int64_t size, bool int8) {
  llm::SegmentSpec s;
  s.kind = llm::SegmentKind::Attention;
  s.shape.phase = llm::Phase::Prefill;
  s.shape.tokens = tokens;
  s.shard = {rank, size};
  s.o_proj_cast = int8;
  return s;
}

}  // namespace


namespace {

// Dense steps with constant weights whose X segments read the stacked P.V output of every head
// (the o_proj), and the Add steps left between two dense products' outputs.
struct OprojShape {
  int oproj_layers = 0, oproj_segments = 0, product_adds = 0, casts = 0;
};

OprojShape oproj_shape(const compiler::LoweredModel& lm) {
  OprojShape s;
  std::map<ir::TensorId, int> dense_out;
  for (const compiler::LoweredStep& st : lm.steps)
    if (is_layer(st)) dense_out[lm.layers[st.index].y] = 1;
  for (const compiler::LoweredStep& st : lm.steps) {
    if (is_layer(st)) {
      const compiler::LoweredLayer& L = lm.layers[st.index];
      if (L.b == ir::kNoTensor && L.xsegs.size() > 1) {
        ++s.oproj_layers;
        s.oproj_segments += static_cast<int>(L.xsegs.size());
      }
    } else if (!st.gather && !st.lane) {
      const compiler::LoweredEltwise& E = lm.eltwise[st.index];
      if (E.kind == ir::OpKind::Cast) ++s.casts;
      if (E.kind == ir::OpKind::Add && E.operands.size() == 2 && dense_out.count(E.operands[0].act) &&
          dense_out.count(E.operands[1].act))
        ++s.product_adds;
    }
  }
  return s;
}

}  // namespace

TEST_CASE("attention prefill: the per-head o_proj terms are one product over every head's P.V rows, outputs within "
          "the reference bound, predicted == simulated",
          "[llm]") {
  const llm::LlmConfig cfg = workload_llm("tiny-bert");  // 4 heads of 32
  llm::SegmentSpec spec = prefill_attention(8, 0, 1, false);
  spec.fill = llm::WeightFill::Random;
  const ir::Graph g = llm::build_segment(cfg, spec, 1);  // layer 1: starts with layer 0's LayerNorm
  // The Add chain of the 4 per-head o_proj products is ONE dense layer with a k-tile segment per
  // head (and the o_proj bias folded into it): no Add of two products is left.
  const OprojShape s = oproj_shape(compiler::lower_graph(g));
  CHECK(s.oproj_layers == 1);
  CHECK(s.oproj_segments == cfg.heads);
  CHECK(s.product_adds == 0);
  // Values: the whole model through the simulated chips (both layers' attention pieces with this
  // lowering, seeded random weights) against the Eigen reference, boundary by boundary within the
  // fp16 bound (docs/llm-system.md section 5); every simulation measures the predicted cycles.
  const std::string out = (std::filesystem::temp_directory_path() / "lpusim_attn_prefill_functional.txt").string();
  const ProcessResult r = run_process(lpusim_exe(),
                                      {"llm", std::string(LPU_SOURCE_DIR) + "/workloads/llm/tiny-bert.json", "--mode",
                                       "functional", "--chips", "1", "--prompt", "8"},
                                      out, std::chrono::seconds(120), Stderr::ToOutput);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("within the fp16 bound") != std::string::npos);
}

TEST_CASE("attention prefill: int8 o_proj reads P.V through the Cast view (no per-head copy or Cast pass), one "
          "int8 product, predicted == simulated",
          "[llm][int8]") {
  const llm::LlmConfig cfg = workload_llm("tiny-bert");
  const llm::SegmentSpec spec = prefill_attention(8, 0, 1, true);  // o_proj_cast: a Cast before each head's o_proj
  const ir::Graph g = llm::build_segment(cfg, spec, 1);
  const compiler::LoweredModel lm = compiler::lower_graph(g);
  const OprojShape s = oproj_shape(lm);
  CHECK(s.casts == 0);
  CHECK(s.oproj_layers == 1);
  CHECK(s.oproj_segments == cfg.heads);
  int moves = 0;  // identity copies of a head's rows of P.V (what the Cast's materialization cost)
  for (const compiler::LoweredStep& st : lm.steps)
    if (is_layer(st) && lm.layers[st.index].name.find("Cast") != std::string::npos) ++moves;
  CHECK(moves == 0);
  auto chip = load_chip_config(std::string(LPU_SOURCE_DIR) + "/workloads/chips/tsp-v1.yaml");
  const compiler::CompileResult cr = compiler::compile(g, *chip, system::piece_compile_options(llm::WeightPrecision::INT8));
  // Two int8 layers: the fused q|k|v projection and the merged o_proj (which reads an on-chip i8
  // copy of P.V: its weights are activations, so the P.V product cannot quantize its output).
  std::string int8_note;
  for (const std::string& d : cr.diagnostics)
    if (d.find("dense layers int8") != std::string::npos) int8_note = d;
  INFO(int8_note);
  CHECK(int8_note.rfind("precision int8: 2 of ", 0) == 0);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, *chip, so).cycles == cr.program.predicted_cycles);
}
