// LLM pieces store their hidden-state outputs f16 (LowerOptions::f16_output, set by
// system::piece_compile_options): the next piece, the all-reduce and the KV cache read them as f16,
// so an f32 store was four byte planes a value that no chip running the whole model writes, and it
// kept each piece's residual Add out of its product's epilogue (passes/fuse_residual.h). Checked on
// tiny-bert's attention and FFN prefill pieces (post-LN: each ends in a residual Add): with the
// option the output is f16, no elementwise Add step is left, the values are bit for bit the f32
// outputs rounded to f16 (what the functional composition did with them before), predicted ==
// simulated, and fewer cycles. The logits stay f32.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "compiler/llm/segments.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/chip_stored.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "tests/support/f16_data.h"
#include "tests/support/llm_workloads.h"

using namespace lpu;
using lpu::test::workload_llm;

namespace {

struct PieceOut {
  uint64_t cycles = 0;
  size_t adds = 0;  // elementwise Add steps left after lowering
  compiler::ChipStored y;
  bool noted = false;  // a diagnostic says which outputs are stored f16
};

PieceOut run_piece(const ir::Graph& g, const compiler::CompileOptions& co, const std::vector<float>& x) {
  auto chip = default_chip_config();
  const compiler::CompileResult cr = compiler::compile(g, *chip, co);
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  for (ir::TensorId in : g.inputs()) compiler::bind_input(cr.program, g.tensor(in).name, test::f16_bytes(x), &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, *chip, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  PieceOut o;
  o.cycles = r.cycles;
  for (const std::string& d : cr.diagnostics) o.noted = o.noted || d.find("stored f16 as asked") != std::string::npos;
  const compiler::LoweredModel lm = compiler::lower_graph(g, chip->vector_bytes(), cr.lower);
  for (const compiler::LoweredStep& st : lm.steps)
    if (!st.dense && !st.lane && !st.gather && lm.eltwise[st.index].kind == ir::OpKind::Add &&
        lm.eltwise[st.index].vxm_op == static_cast<int>(Opcode::Add))
      ++o.adds;
  o.y = compiler::chip_stored(cr.program, "partial", r.outputs, 1.0);
  return o;
}

}  // namespace

TEST_CASE("f16 outputs: a piece's hidden state is stored f16, its residual Add fused, the same values", "[llm]") {
  const llm::LlmConfig m = workload_llm("tiny-bert");
  for (const llm::SegmentKind kind : {llm::SegmentKind::Attention, llm::SegmentKind::Ffn}) {
    INFO(llm::segment_kind_name(kind));
    llm::SegmentSpec spec;
    spec.kind = kind;
    spec.shape.phase = llm::Phase::Prefill;
    spec.shape.tokens = 16;
    spec.shard = {0, 1};
    spec.fill = llm::WeightFill::Random;
    spec.seed = 3;
    const ir::Graph g = llm::build_segment(m, spec, 1);
    const std::vector<float> x = test::random_f16(spec.shape.tokens * m.hidden, -2.f, 2.f, 17);

    const compiler::CompileOptions f16 = system::piece_compile_options(llm::WeightPrecision::FP16);
    REQUIRE(f16.lower.f16_output);
    CHECK(f16.lower.f16_output("partial"));
    CHECK_FALSE(f16.lower.f16_output("logits"));
    compiler::CompileOptions f32 = f16;
    f32.lower.f16_output = nullptr;  // every output f32, as before

    const PieceOut a = run_piece(g, f16, x), b = run_piece(g, f32, x);
    CHECK(a.y.dtype == DType::F16);
    CHECK(b.y.dtype == DType::F32);
    CHECK(a.noted);
    CHECK_FALSE(b.noted);
    CHECK(a.adds + 1 == b.adds);  // the piece's last Add is its product's epilogue now
    REQUIRE(a.y.v.size() == b.y.v.size());
    size_t differ = 0;
    for (size_t k = 0; k < a.y.v.size(); ++k)
      differ += a.y.v[k] != static_cast<double>(ir::round_f16(static_cast<float>(b.y.v[k]))) ? 1 : 0;
    CHECK(differ == 0);
    CHECK(a.cycles < b.cycles);
  }
}
