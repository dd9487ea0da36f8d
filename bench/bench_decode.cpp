// Benchmark of batch-1 (decode) dense layers against the weight-install bound: for GEMMs 1xKxN and
// the Llama-2 7B FFN decode shard (tp 8: RMSNorm, gate/up 4096x1376, SiLU, mul, down 1376x4096,
// residual) and attention decode shard (context 2047) prints the compiled cycles, the `lw` rows installed, the install bound = rows / MXM
// planes (one `lw` per plane per cycle, chip config), compiled / bound, and the simulated cycles
// (timing mode) next to the prediction. Usage: bench_decode [--no-sim]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <systemc>

#include "compiler/compile.h"
#include "compiler/llm/llm_config.h"
#include "compiler/llm/segments.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_system.h"

using namespace lpu;
using namespace lpu::compiler;

namespace {

void row(const char* what, const char* prec, const CompileResult& r, const ChipConfig& cfg, bool run_sim, double secs) {
  const uint64_t planes = static_cast<uint64_t>(cfg.slices_of(SliceKind::MXM).size()) * cfg.mxm_planes;
  const double bound = static_cast<double>(r.stats.lw) / static_cast<double>(planes);
  std::string simulated = "-", match = "-";
  if (run_sim) {
    sim::SimOptions so;
    so.mode = sim::Mode::Timing;
    const sim::SimResult s = sim::simulate(r.program, cfg, so);
    simulated = std::to_string(s.cycles);
    match = s.cycles == r.program.predicted_cycles ? "yes" : "NO";
  }
  std::printf("%-28s %-5s %10llu %9llu %10.0f %7.3f %8.2f %10s %5s\n", what, prec,
              static_cast<unsigned long long>(r.program.predicted_cycles), static_cast<unsigned long long>(r.stats.lw), bound,
              static_cast<double>(r.program.predicted_cycles) / bound, secs, simulated.c_str(), match.c_str());
  std::fflush(stdout);
}

}  // namespace

int sc_main(int argc, char* argv[]) {
  bool run_sim = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-sim") == 0) {
      run_sim = false;
    } else {
      std::fprintf(stderr, "usage: bench_decode [--no-sim]\n");
      return 2;
    }
  }
  auto cfg = default_chip_config();
  std::printf("chip %s: %zu MXM slices x %u planes, one lw (one weight row) per plane per cycle\n", cfg->name.c_str(),
              cfg->slices_of(SliceKind::MXM).size(), cfg->mxm_planes);
  std::printf("%-28s %-5s %10s %9s %10s %7s %8s %10s %5s\n", "shape", "prec", "compiled", "lw rows", "bound",
              "ratio", "compile s", "simulated", "match");
  struct G { int64_t K, N; };
  for (const G& g : {G{4096, 1376}, G{1376, 4096}, G{3200, 3200}, G{4096, 4096}, G{640, 320}}) {
    for (Precision p : {Precision::FP16, Precision::INT8}) {
      CompileOptions opt;
      opt.precision = p;
      const auto t0 = std::chrono::steady_clock::now();
      const CompileResult r = compile_gemm(GemmProblem{1, g.K, g.N, {}}, *cfg, opt);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const std::string name = "gemm 1x" + std::to_string(g.K) + "x" + std::to_string(g.N);
      row(name.c_str(), p == Precision::INT8 ? "int8" : "fp16", r, *cfg, run_sim, secs);
    }
  }
  const llm::LlmConfig m = llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/llama-2-7b.json");
  llm::SegmentSpec spec;
  spec.kind = llm::SegmentKind::Ffn;
  spec.shape.phase = llm::Phase::Decode;
  spec.shape.context = 2047;
  spec.position = 2047;
  spec.shard = {0, 8};
  for (llm::SegmentKind kind : {llm::SegmentKind::Ffn, llm::SegmentKind::Attention}) {
    spec.kind = kind;
    spec.o_proj_cast = false;
    const bool ffn = kind == llm::SegmentKind::Ffn;
    for (llm::WeightPrecision p : {llm::WeightPrecision::FP16, llm::WeightPrecision::INT8}) {
      spec.o_proj_cast = p == llm::WeightPrecision::INT8;  // as LlmSystem builds int8 pieces
      const ir::Graph graph = llm::build_segment(m, spec, 0);
      const auto t0 = std::chrono::steady_clock::now();
      const CompileResult r = compile(graph, *cfg, system::piece_compile_options(p));
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      row(ffn ? "llama-2-7b FFN tp8 decode" : "llama-2-7b attn tp8 C2047", p == llm::WeightPrecision::INT8 ? "int8" : "fp16",
          r, *cfg, run_sim, secs);
    }
  }
  return 0;
}

// Our own main (instead of libsystemc's) so that SystemC does not print its banner into the figures.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
