// Simulator speed: simulated cycles/s and instructions/s of (a) an MXM-bound program in timing mode,
// (b) the same in functional mode, (c) Eigen alone doing the same matrix products (the floor for
// functional mode), and (d) a mostly idle program (huge nops) showing idle cycles cost nothing.
// Usage: bench_sim [path/to/full_busy.s]   (default: workloads/asm/full_busy.s of this source tree)
#include <Eigen/Dense>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <cstdlib>
#include <systemc>

#include "isa/asm.h"
#include "sim/simulator.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kMinSeconds = 2.0;  // each measurement repeats until it has run this long

struct Rate {
  double seconds_per_run = 0;
  uint64_t runs = 0;
  uint64_t cycles = 0;
  uint64_t instructions = 0;
};

Rate time_sim(const lpu::Program& p, const lpu::ChipConfig& cfg, lpu::sim::Mode mode) {
  lpu::sim::SimOptions o;
  o.mode = mode;
  Rate r;
  const auto t0 = Clock::now();
  double el = 0;
  do {
    const lpu::sim::SimResult res = lpu::sim::simulate(p, cfg, o);
    r.cycles = res.cycles;
    r.instructions = res.instructions;
    ++r.runs;
    el = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (el < kMinSeconds);
  r.seconds_per_run = el / static_cast<double>(r.runs);
  return r;
}

void print_rate(const char* what, const Rate& r) {
  fmt::print("{:<34} {:>10.4f} s/run ({} runs)  {:>10.3e} cycles/s  {:>10.3e} instr/s  ({} cycles, {} instr)\n", what,
             r.seconds_per_run, r.runs, r.cycles / r.seconds_per_run, r.instructions / r.seconds_per_run, r.cycles,
             r.instructions);
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int sc_main(int argc, char* argv[]) {
  const auto cfg = lpu::default_chip_config();
  const std::string path = argc > 1 ? argv[1]
                                    : (std::filesystem::path(__FILE__).parent_path().parent_path() / "workloads/asm/full_busy.s").string();
  const lpu::Program busy = lpu::assemble(slurp(path), path, *cfg);

  // (a), (b): the MXM-bound program.
  const Rate timing = time_sim(busy, *cfg, lpu::sim::Mode::Timing);
  const Rate functional = time_sim(busy, *cfg, lpu::sim::Mode::Functional);

  // (c): Eigen alone: the abc work of full_busy.s as one float GEMM per plane (int8 values held in
  // float, exact for 320-term int8 sums): every abc of a plane is a row of X, every plane holds W.
  uint64_t abc = 0;
  for (const auto& q : busy.chips[0].queues)
    for (size_t i = 0; i < q.code.size(); ++i)
      if (q.code[i].op == lpu::Opcode::Abc) {
        abc += 1;
        if (i + 1 < q.code.size() && q.code[i + 1].op == lpu::Opcode::Repeat) abc += q.code[i + 1].get(lpu::Field::Count);
      }
  const Eigen::Index L = cfg->vector_bytes();
  const Eigen::Index planes = 4, rows = static_cast<Eigen::Index>(abc / planes);
  using M = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  M X = (M::Random(rows, L) * 127.f).array().round().matrix(), W = (M::Random(L, L) * 127.f).array().round().matrix();
  M Y(rows, L);
  uint64_t eruns = 0;
  double checksum = 0;
  const auto t0 = Clock::now();
  double el = 0;
  do {
    for (Eigen::Index p = 0; p < planes; ++p) {
      Y.noalias() = X * W;
      checksum += Y(0, 0);
    }
    ++eruns;
    el = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (el < kMinSeconds);
  const double eigen_s = el / static_cast<double>(eruns);

  // (d): mostly idle: 11 reads 100 million cycles apart.
  std::string idle_src = ".chips 1\n.chip 0\n.queue MEM_W0\n    read 0, E0\n";
  for (int i = 1; i <= 10; ++i) idle_src += fmt::format("    nop 100000000\n    read {}, E0\n", i);
  const lpu::Program idle = lpu::assemble(idle_src, "<idle>", *cfg);
  const Rate idle_rate = time_sim(idle, *cfg, lpu::sim::Mode::Functional);

  fmt::print("bench_sim: {} ({} abc = {:.3e} int8 MACs), config {}\n", path, abc,
             static_cast<double>(abc) * L * L, cfg->name);
  print_rate("(a) MXM-bound, timing mode", timing);
  print_rate("(b) MXM-bound, functional mode", functional);
  fmt::print("{:<34} {:>10.4f} s/run ({} runs)  {:>10.3e} MAC/s  (checksum {:.0f})\n", "(c) Eigen alone, same GEMMs", eigen_s,
             eruns, static_cast<double>(abc) * L * L / eigen_s, checksum);
  print_rate("(d) mostly idle (nop 1e8 x 10)", idle_rate);
  fmt::print("functional / Eigen time ratio: {:.2f}x;  functional / timing: {:.2f}x\n", functional.seconds_per_run / eigen_s,
             functional.seconds_per_run / timing.seconds_per_run);
  return 0;
}

// Our own main (instead of libsystemc's) so that SystemC does not print its banner into the figures.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
