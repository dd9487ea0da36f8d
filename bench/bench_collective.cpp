// Benchmark of the C2C all-reduce (compiler/llm/collective.h) against its tensor-parallel size: for
// one decode row (and a few prefill rows) of an LLM hidden size, prints per tp the compiled cycles,
// the simulated cycles (timing mode; must equal), the microseconds at the chip clock, the vectors
// sent, and the link plan (links per node peer / per remote counterpart / handoff). tp <= 8 is one
// node (direct reduce-scatter + all-gather); 16..64 span 2..8 nodes (hierarchical).
// Usage: bench_collective [--hidden N] [--rows R]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <systemc>

#include "compiler/llm/collective.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;

int sc_main(int argc, char** argv) {
  int64_t hidden = 8192, rows = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--hidden")) hidden = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rows")) rows = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_collective [--hidden N] [--rows R]\n");
      return 2;
    }
  }
  auto cfg = default_chip_config();
  std::printf("all-reduce of f16 [%lld, %lld] on %s at %.0f MHz\n", static_cast<long long>(rows),
              static_cast<long long>(hidden), cfg->name.c_str(), cfg->clock_hz / 1e6);
  std::printf("%4s %6s %10s %10s %5s %9s %9s %9s\n", "tp", "nodes", "predicted", "simulated", "same", "us",
              "vectors", "links");
  for (int64_t tp : {2, 4, 8, 16, 32, 64}) {
    const llm::LinkPlan lp = llm::link_plan(*cfg, tp);
    const llm::CollectiveProgram cp = llm::compile_allreduce(rows, hidden, tp, *cfg);
    sim::SimOptions so;
    so.mode = sim::Mode::Timing;
    const sim::SimResult r = sim::simulate(cp.program, *cfg, so);
    std::printf("%4lld %6lld %10llu %10llu %5s %9.3f %9llu %3u/%u/%u\n", static_cast<long long>(tp),
                static_cast<long long>(lp.nodes), static_cast<unsigned long long>(cp.predicted_cycles),
                static_cast<unsigned long long>(r.cycles), r.cycles == cp.predicted_cycles ? "yes" : "NO",
                static_cast<double>(cp.predicted_cycles) / cfg->clock_hz * 1e6,
                static_cast<unsigned long long>(cp.c2c_vectors), lp.per_peer, lp.per_remote, lp.handoff);
    std::fflush(stdout);
  }
  return 0;
}
