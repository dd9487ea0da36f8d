// Benchmark of compiled-code quality: for int8 and fp16 GEMMs N^3 (320 .. 5120) prints the compiled
// cycle count, the ideal (MACs / peak MACs per cycle at that precision), MXM utilization = ideal /
// compiled, the compile time, and the simulated cycle count (timing mode) next to the prediction.
// Usage: bench_compile [--no-sim] [--max N]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <cstdlib>
#include <systemc>

#include "compiler/compile.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;
using namespace lpu::compiler;

int sc_main(int argc, char* argv[]) {
  bool run_sim = true;
  int64_t max_n = 5120;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-sim") == 0) run_sim = false;
    else if (std::strcmp(argv[i], "--max") == 0 && i + 1 < argc) max_n = std::atoll(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_compile [--no-sim] [--max N]\n");
      return 2;
    }
  }
  auto cfg = default_chip_config();
  std::printf("chip %s: peak %llu int8 MACs/cycle, fp16 at 1/%u of that\n", cfg->name.c_str(),
              static_cast<unsigned long long>(cfg->peak_int8_macs_per_cycle()), cfg->mxm_fp16_slowdown);
  std::printf("%-5s %6s %12s %12s %8s %10s %12s %6s\n", "prec", "N", "compiled", "ideal", "MXM util", "compile s",
              "simulated", "match");
  for (Precision p : {Precision::INT8, Precision::FP16}) {
    for (int64_t n : {320, 640, 1280, 2560, 5120}) {
      if (n > max_n) continue;
      CompileOptions opt;
      opt.precision = p;
      const auto t0 = std::chrono::steady_clock::now();
      CompileResult r;
      try {
        r = compile_gemm(GemmProblem{n, n, n, {}}, *cfg, opt);
      } catch (const std::exception& e) {
        std::printf("%-5s %6lld  does not compile: %s\n", p == Precision::INT8 ? "int8" : "fp16",
                    static_cast<long long>(n), e.what());
        continue;
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double ideal = static_cast<double>(r.macs) / static_cast<double>(cfg->peak_int8_macs_per_cycle()) *
                           (p == Precision::FP16 ? cfg->mxm_fp16_slowdown : 1);
      std::string simulated = "-", match = "-";
      if (run_sim) {
        sim::SimOptions so;
        so.mode = sim::Mode::Timing;
        const sim::SimResult s = sim::simulate(r.program, *cfg, so);
        simulated = std::to_string(s.cycles);
        match = s.cycles == r.program.predicted_cycles ? "yes" : "NO";
      }
      std::printf("%-5s %6lld %12llu %12.0f %7.1f%% %10.2f %12s %6s\n", p == Precision::INT8 ? "int8" : "fp16",
                  static_cast<long long>(n), static_cast<unsigned long long>(r.program.predicted_cycles), ideal,
                  100.0 * ideal / static_cast<double>(r.program.predicted_cycles), secs, simulated.c_str(), match.c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}

// Our own main (instead of libsystemc's) so that SystemC does not print its banner into the figures.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
