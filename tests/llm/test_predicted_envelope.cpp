// The compiler predicts each program's stream envelope (isa/stream_envelope.h: the stream diagonals
// its values take near its two ends), and the simulator's measured one must equal it, as cycles
// must (system/prediction_check.h). Checked on compiled models, a GEMM and the collectives; a
// prediction that differs in one bit is refused with the stream and the position named.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "compiler/compile.h"
#include "compiler/frontends/onnx_import.h"
#include "compiler/llm/collective.h"
#include "isa/chip_config.h"
#include "isa/stream_envelope.h"
#include "sim/simulator.h"
#include "system/prediction_check.h"
#include "tests/support/chip_variant.h"

using namespace lpu;

namespace {

sim::SimResult timed(const Program& p, const ChipConfig& cfg) {
  sim::SimOptions o;
  o.mode = sim::Mode::Timing;
  return sim::simulate(p, cfg, o);
}

size_t bits(const std::vector<std::vector<uint64_t>>& set) {
  size_t n = 0;
  for (const auto& s : set)
    for (uint64_t w : s) n += static_cast<size_t>(__builtin_popcountll(w));
  return n;
}

}  // namespace

TEST_CASE("predicted envelope: equals the simulated one for models, a GEMM and collectives", "[llm]") {
  auto cfg = default_chip_config();
  size_t head_bits = 0, tail_bits = 0;
  auto check = [&](const Program& p, const std::vector<StreamEnvelope>& predicted, const std::string& what) {
    INFO(what);
    REQUIRE(predicted.size() == p.num_chips);
    const sim::SimResult r = timed(p, *cfg);
    CHECK_NOTHROW(system::check_prediction(r, p.predicted_cycles, &predicted, what));
    for (const StreamEnvelope& e : predicted) {
      head_bits += bits(e.head);
      tail_bits += bits(e.tail);
    }
  };
  for (const char* name : {"mlp", "cnn", "gpt_block", "encoder_layer", "mobile_block"}) {
    const ir::Graph g = frontend::import_onnx(std::string(LPU_SOURCE_DIR) + "/workloads/models/" + name + "/model.onnx");
    const compiler::CompileResult r = compiler::compile(g, *cfg, {});
    check(r.program, r.predicted_streams, name);
  }
  compiler::GemmProblem gp;
  gp.M = 200, gp.K = 700, gp.N = 500;
  compiler::CompileOptions int8;
  int8.precision = compiler::Precision::INT8;
  const compiler::CompileResult gemm = compiler::compile_gemm(gp, *cfg, int8);
  check(gemm.program, gemm.predicted_streams, "gemm int8");
  for (int64_t tp : {2, 8, 16}) {
    const llm::CollectiveProgram ar = llm::compile_allreduce(4, 640, tp, *cfg);
    check(ar.program, ar.predicted_streams, "all-reduce over " + std::to_string(tp));
  }
  const llm::CollectiveProgram ho = llm::compile_handoff(4, 640, 2, *cfg);
  check(ho.program, ho.predicted_streams, "handoff");
  // Not vacuous: programs start with values near the chip's entry and leave values on it.
  CHECK(head_bits > 0);
  CHECK(tail_bits > 0);
}

TEST_CASE("predicted envelope: equal on chips with fewer streams and without staggering", "[llm]") {
  // The envelope's stream order (east 0..S-1, then west) and its tail (relative to the program's
  // end, which the stagger tail moves) must follow the chip, not tsp-v1's numbers.
  const auto streams16 = test::chip_variant("streams_per_direction: 32", "streams_per_direction: 16", "streams16");
  const auto unstaggered = test::chip_variant("stagger: true", "stagger: false", "unstaggered");
  REQUIRE(unstaggered->stagger_tail() == 0);
  for (const auto& cfg : {streams16, unstaggered}) {
    for (const char* name : {"mlp", "gpt_block"}) {
      INFO(cfg->name << " " << name);
      const ir::Graph g = frontend::import_onnx(std::string(LPU_SOURCE_DIR) + "/workloads/models/" + name + "/model.onnx");
      const compiler::CompileResult r = compiler::compile(g, *cfg, {});
      REQUIRE(r.predicted_streams.size() == 1);
      CHECK(r.predicted_streams[0].head.size() == 2 * static_cast<size_t>(cfg->streams_per_direction));
      CHECK_NOTHROW(system::check_prediction(timed(r.program, *cfg), r.program.predicted_cycles, &r.predicted_streams, name));
    }
    const llm::CollectiveProgram ar = llm::compile_allreduce(4, 640, 4, *cfg);
    CHECK_NOTHROW(system::check_prediction(timed(ar.program, *cfg), ar.predicted_cycles, &ar.predicted_streams,
                                           cfg->name + " all-reduce"));
  }
}

TEST_CASE("predicted envelope: one differing bit is refused, naming the stream and the position", "[llm]") {
  auto cfg = default_chip_config();
  const ir::Graph g = frontend::import_onnx(std::string(LPU_SOURCE_DIR) + "/workloads/models/mlp/model.onnx");
  const compiler::CompileResult r = compiler::compile(g, *cfg, {});
  const sim::SimResult s = timed(r.program, *cfg);
  std::vector<StreamEnvelope> wrong = r.predicted_streams;
  REQUIRE(wrong.size() == 1);
  // West stream 2, the last position: flip its tail bit.
  const size_t sid = envelope_stream(Dir::West, 2, cfg->streams_per_direction);
  const uint32_t k = cfg->num_positions() - 1;
  wrong[0].tail.at(sid).at(k / 64) ^= uint64_t{1} << (k % 64);
  CHECK_THROWS_WITH(system::check_prediction(s, r.program.predicted_cycles, &wrong, "mlp"),
                    Catch::Contains("mlp: chip 0 stream envelope: tail stream") &&
                        Catch::Contains("(west 2) k " + std::to_string(k) + ":"));
  CHECK_THROWS_WITH(system::check_prediction(s, r.program.predicted_cycles + 1, &r.predicted_streams, "mlp"),
                    Catch::Contains("compiler predicted"));
  CHECK_NOTHROW(system::check_prediction(s, r.program.predicted_cycles, &r.predicted_streams, "mlp"));
  CHECK_NOTHROW(system::check_prediction(s, r.program.predicted_cycles, nullptr, "mlp"));
}
