// Compile-and-simulate with memoization: each distinct program (same bytes => same program) is
// simulated once, cycle-accurately in timing mode, and its figures are kept in memory keyed by a
// 64-bit FNV-1a hash of the serialized program. Graph pieces are also compiled once per caller key
// (a key that names everything the graph depends on: kind, step shape, shard). Every simulation is
// checked: the simulator's cycles, and for compiled graphs its stream envelopes, must equal the
// compiler's prediction (logic_error otherwise).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "compiler/compile.h"
#include "compiler/ir/graph.h"
#include "isa/chip_config.h"
#include "isa/program.h"
#include "isa/stream_envelope.h"
#include "sim/simulator.h"

namespace lpu::system {

struct PieceRun {
  std::string label;            // first label it was run under
  uint64_t hash = 0;            // program hash
  uint32_t chips = 1;
  uint64_t cycles = 0;          // simulated (== predicted)
  uint64_t instructions = 0;    // executed, all chips
  double dynamic_j = 0;         // dynamic energy, all chips (no static)
  uint64_t compute_cycles = 0;  // MAC-bound time: (int8 MACs + fp16 MACs x slowdown) / peak MACs per cycle, ceil
  uint64_t c2c_bytes = 0;
  uint64_t sram_bytes = 0;      // distinct vectors written or preloaded x vector bytes, max over chips
  uint64_t macs = 0;            // int8 + fp16 MACs, all chips
  std::array<uint64_t, kNumEnergyEvents> events{};  // energy event counts, all chips
  std::vector<StreamEnvelope> streams;  // per program chip: stream values near its ends (start_rule.h), measured
};

uint64_t program_hash(const Program& p);

class PieceRunner {
 public:
  explicit PieceRunner(const ChipConfig& cfg) : cfg_(cfg) {}
  // Simulates `p` (timing mode) unless a program with the same hash was simulated before. The
  // simulation must match the compiler's prediction (system/prediction_check.h): p.predicted_cycles
  // and, when given, the predicted stream envelope of each program chip.
  const PieceRun& run_program(const Program& p, const std::string& label,
                              const std::vector<StreamEnvelope>* predicted_streams = nullptr);
  // Compiles build() with `opt` (default fp16) once per (`key`, opt.precision), then run_program.
  // The precision is part of the cache key, so one runner can hold fp16 and int8 pieces; everything
  // else `opt` carries (e.g. the int8 layer filter) must be a function of the key and the precision.
  const PieceRun& run_graph(const std::string& key, const std::function<ir::Graph()>& build, const std::string& label,
                            const compiler::CompileOptions& opt = {});
  size_t simulations() const { return runs_.size(); }
  size_t compiles() const { return compiled_.size(); }
  // Keep every simulated program (for tests that rebuild the whole system from the pieces).
  void keep_programs(bool on) { keep_ = on; }
  const Program& program(uint64_t hash) const { return programs_.at(hash); }
  // The figures of a program run before (std::out_of_range for a hash never run).
  const PieceRun& run(uint64_t hash) const { return runs_.at(hash); }
  const ChipConfig& cfg() const { return cfg_; }
  // Host wall time spent so far (seconds): building + compiling graphs, simulating programs.
  double compile_seconds() const { return compile_s_; }
  double simulate_seconds() const { return simulate_s_; }

 private:
  const ChipConfig& cfg_;
  std::map<uint64_t, PieceRun> runs_;
  std::map<std::string, uint64_t> compiled_;  // key -> program hash
  bool keep_ = false;
  std::map<uint64_t, Program> programs_;
  double compile_s_ = 0, simulate_s_ = 0;
};

}  // namespace lpu::system
