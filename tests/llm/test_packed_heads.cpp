// Packed heads (passes/lower_attention.h pack_segments): in an attention prefill piece with >= 32
// tokens, each head's V is moved to its own lanes of a shared vector (G heads of W lanes and their
// ones columns), so the normalized P.V rows of G heads add up (exactly: one nonzero term a lane)
// to one vector and the o_proj reads ceil(heads / G) k-tiles instead of one per head. Checked: the
// lowering (o_proj segments, P.V product width, the exact-sum pass) and not below 32 tokens; the
// int8 piece (tiny-bert layer 1, calibrated) within the int8 bound step by step
// (compiler/reference/int8_step_check.h) with predicted == simulated and fewer `abc` than the
// unpacked lowering; the fp16 model end to end through `lpusim llm --mode functional`.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/llm/segments.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/quantize.h"
#include "compiler/reference/int8_step_check.h"
#include "compiler/reference/step_check.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "tests/support/calibrated_int8_piece.h"
#include "tests/support/cli.h"
#include "tests/support/f16_data.h"
#include "tests/support/int8_verdicts.h"
#include "tests/support/llm_workloads.h"
#include "tests/support/process.h"
#include "tests/support/step_verdicts.h"

using namespace lpu;
using lpu::test::workload_llm;

namespace {

llm::SegmentSpec attention_prefill(int64_t tokens, bool cast = true) {
  llm::SegmentSpec s;
  s.kind = llm::SegmentKind::Attention;
  s.shape.phase = llm::Phase::Prefill;
  s.shape.tokens = tokens;
  s.shard = {0, 1};
  s.o_proj_cast = cast;  // int8 pieces: a Cast before each head's o_proj (a view)
  s.fill = llm::WeightFill::Random;
  s.seed = 5;
  return s;
}

// The o_proj: the dense layer with constant weights reading column segments.
const compiler::LoweredLayer* oproj(const compiler::LoweredModel& lm) {
  for (const compiler::LoweredStep& st : lm.steps)
    if (is_layer(st) && lm.layers[st.index].b == ir::kNoTensor &&
        !lm.layers[st.index].xsegs.empty())
      return &lm.layers[st.index];
  return nullptr;
}

}  // namespace

TEST_CASE("packed heads: the o_proj reads G heads a vector from 32 tokens on, not below", "[llm]") {
  // 4 heads of 32 lanes: 320 / 33 = 9 fit a vector with their ones lanes; G = min(9, 4 heads) = 4.
  const llm::LlmConfig cfg = workload_llm("tiny-bert");
  const int64_t W = cfg.hidden / cfg.heads, G = 4;
  REQUIRE(320 / (W + 1) >= G);
  for (const bool cast : {true, false}) {
    INFO("o_proj_cast " << cast);
    // One P.V product a head, as pack_segments leaves them (pair_heads, tests/llm/test_paired_heads.cpp,
    // would then pair them).
    compiler::LowerOptions lo;
    lo.pair_heads = false;
    const compiler::LoweredModel lm =
        compiler::lower_graph(llm::build_segment(cfg, attention_prefill(32, cast), 1), 320, lo);
    const compiler::LoweredLayer* o = oproj(lm);
    REQUIRE(o);
    CHECK(o->xsegs.size() == 1);  // ceil(4 / 9) k-tiles instead of 4
    CHECK(lm.rearranged.count(o->x) == 1);
    int pv = 0, sums = 0;
    for (const compiler::LoweredLayer& L : lm.layers) pv += L.b != ir::kNoTensor && !L.b_trans && L.N == G * W + G ? 1 : 0;
    for (const compiler::LoweredEltwise& E : lm.eltwise) sums += E.disjoint_sum ? 1 : 0;
    CHECK(pv == cfg.heads);  // each head's P.[V|1] is as wide as the packed vector
    CHECK(sums == 1);
    // One divide after the packing: Q = Q1 / D, D one `distribute` a packed row (each head's row sum
    // from its ones lane G W + i to its lanes [W i, W i + W)), not a broadcast and a divide per head.
    int maps = 0, bcasts = 0;
    for (const compiler::LoweredLane& Ln : lm.lanes) {
      bcasts += Ln.mode == compiler::LoweredLane::Mode::Broadcast ? 1 : 0;
      if (Ln.lane_map.empty()) continue;
      ++maps;
      for (int64_t l = 0; l < G * W; ++l) CHECK(Ln.lane_map[static_cast<size_t>(l)] == G * W + l / W);
    }
    CHECK(maps == 1);
    CHECK(bcasts == 1);
    int divides = 0;
    for (const compiler::LoweredEltwise& E : lm.eltwise)
      if (E.y == o->x) {
        ++divides;
        CHECK(E.vxm_op == static_cast<int>(Opcode::Div));
        REQUIRE(E.operands.size() == 2);
        CHECK(!E.operands[1].lane_bcast);
      }
    CHECK(divides == 1);
  }
  {
    const compiler::LoweredModel lm = compiler::lower_graph(llm::build_segment(cfg, attention_prefill(8), 1));
    const compiler::LoweredLayer* o = oproj(lm);
    REQUIRE(o);
    CHECK(o->xsegs.size() == static_cast<size_t>(cfg.heads));  // 8 rows: one segment per head
    CHECK(lm.rearranged.empty());
  }
}

TEST_CASE("packed heads: 5 and 6 heads, 4 a vector: the last chunk's empty slots divide 0 by 1, every step in bound",
          "[llm]") {
  // 5 heads of 64 lanes (hidden 320): G = 320 / 65 = 4, so the second packed row holds one head and
  // three empty slots; without the constant 1 in their ones lanes they would hold 0 / 0 = NaN,
  // which the o_proj's MXM multiplies (by zero weights) into every output. 6 heads (hidden 384,
  // BERT-base's shard at tp 2): the packed sum's last operand, that constant, shares an SRAM port
  // with the row added just before it at the same relative cycle; until session 34 no cycle was
  // ever found ("no cycle found for MatMul_33.packed"), now that read is re-timed by a `mov`.
  for (const int64_t heads : {5, 6}) {
    INFO(heads << " heads");
    llm::LlmConfig cfg = workload_llm("tiny-bert");
    cfg.heads = cfg.kv_heads = heads;
    cfg.head_dim = 64;
    cfg.hidden = heads * 64;
    const int64_t T = 32;
    const ir::Graph g = llm::build_segment(cfg, attention_prefill(T, false), 1);
    {
      const compiler::LoweredModel lm = compiler::lower_graph(g);
      const compiler::LoweredLayer* o = oproj(lm);
      REQUIRE(o);
      CHECK(o->xsegs.size() == 2);  // ceil(heads / 4) k-tiles
      int filler = 0;
      for (const compiler::LoweredEltwise& E : lm.eltwise)
        for (const compiler::EltOperand& op : E.operands)
          if (E.disjoint_sum && op.act == ir::kNoTensor && op.const_rows == 2) ++filler;
      CHECK(filler == 1);
    }
    auto chip = default_chip_config();
    compiler::CompileOptions co;
    co.keep_intermediates = true;
    const compiler::CompileResult cr = compiler::compile(g, *chip, co);
    const std::vector<float> xv = test::random_f16(T * cfg.hidden, -2.f, 2.f, 17);
    sim::SimOptions so;
    so.mode = sim::Mode::Functional;
    REQUIRE(g.inputs().size() == 1);
    compiler::bind_input(cr.program, g.tensor(g.inputs()[0]).name, test::f16_bytes(xv), &so.inputs);
    const sim::SimResult r = sim::simulate(cr.program, *chip, so);
    CHECK(r.cycles == cr.program.predicted_cycles);
    const compiler::LoweredModel lm = compiler::lower_graph(g, chip->vector_bytes(), cr.lower);
    const ir::Tensor& xt = g.tensor(g.inputs()[0]);
    const ref::StepCheck sc = ref::verify_steps(g, {ref::Value::floats(xt.shape, xv, xt.dtype)},
                                                ref::chip_graph_tensors(g, lm, cr.program, r.outputs));
    lpu::test::check_steps_ok(sc);
  }
}

TEST_CASE("packed heads: a calibrated int8 prefill piece is within the int8 bound step by step", "[llm][int8]") {
  const ir::Graph g = llm::build_segment(workload_llm("tiny-bert"), attention_prefill(32), 1);
  const test::CalibratedInt8Piece p = test::calibrated_int8_piece(g, 41);
  CHECK(p.r.cycles == p.cr.program.predicted_cycles);
  const compiler::LoweredLayer* o = oproj(p.lm);
  REQUIRE(o);
  CHECK(o->xsegs.size() == 1);
  const size_t oi = static_cast<size_t>(o - p.lm.layers.data());
  REQUIRE(oi < p.cr.quant->layers.size());
  CHECK(p.cr.quant->layers[oi].int8);  // the o_proj reads an i8 copy of the packed heads
  lpu::test::check_int8_steps_ok(p.check());
}

TEST_CASE("packed heads: the fp16 model through 32-token prefill pieces matches the Eigen reference", "[llm]") {
  const std::string out = (std::filesystem::temp_directory_path() / "lpusim_packed_heads_functional.txt").string();
  const ProcessResult r = run_process(lpusim_exe(),
                                      {"llm", std::string(LPU_SOURCE_DIR) + "/workloads/llm/tiny-bert.json", "--mode",
                                       "functional", "--chips", "1", "--prompt", "32"},
                                      out, std::chrono::seconds(240), Stderr::ToOutput);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("within the fp16 bound") != std::string::npos);
}
