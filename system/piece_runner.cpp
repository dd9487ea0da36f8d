// PieceRunner: compile once per key, simulate once per program hash (see piece_runner.h).
#include "system/piece_runner.h"

#include <chrono>
#include <stdexcept>

#include <fmt/format.h>

#include "isa/fnv_hash.h"
#include "isa/program_io.h"
#include "sim/energy.h"
#include "sim/simulator.h"
#include "system/prediction_check.h"

namespace lpu::system {

uint64_t program_hash(const Program& p) {
  const std::vector<uint8_t> bytes = serialize_program(p);
  return fnv1a64(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

const PieceRun& PieceRunner::run_program(const Program& p, const std::string& label,
                                         const std::vector<StreamEnvelope>* predicted_streams) {
  const uint64_t h = program_hash(p);
  auto it = runs_.find(h);
  if (it != runs_.end()) return it->second;
  sim::SimOptions opt;
  opt.mode = sim::Mode::Timing;
  const auto t0 = std::chrono::steady_clock::now();
  const sim::SimResult r = sim::simulate(p, cfg_, opt);
  simulate_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  check_prediction(r, p.predicted_cycles, predicted_streams, fmt::format("piece '{}'", label));
  PieceRun pr;
  pr.label = label;
  pr.hash = h;
  pr.chips = p.num_chips;
  pr.cycles = r.cycles;
  pr.instructions = r.instructions;
  const sim::EnergyBreakdown e = sim::compute_energy(r, cfg_);
  for (double d : e.dynamic_j) pr.dynamic_j += d;
  uint64_t i8 = 0, f16 = 0;
  for (const sim::ChipStats& c : r.chips) {
    i8 += c.events[static_cast<int>(EnergyEvent::MacInt8)];
    f16 += c.events[static_cast<int>(EnergyEvent::MacFp16)];
    for (int k = 0; k < kNumEnergyEvents; ++k) pr.events[static_cast<size_t>(k)] += c.events[static_cast<size_t>(k)];
    pr.c2c_bytes += c.events[static_cast<int>(EnergyEvent::C2cByte)];
    pr.sram_bytes = std::max<uint64_t>(pr.sram_bytes, c.sram_vectors_used * cfg_.vector_bytes());
    pr.streams.push_back(c.streams);
  }
  pr.macs = i8 + f16;
  const uint64_t peak = cfg_.peak_int8_macs_per_cycle();
  const uint64_t work = i8 + f16 * cfg_.mxm_fp16_slowdown;
  pr.compute_cycles = peak ? (work + peak - 1) / peak : 0;
  if (keep_) programs_.emplace(h, p);
  return runs_.emplace(h, pr).first->second;
}

const PieceRun& PieceRunner::run_graph(const std::string& key, const std::function<ir::Graph()>& build,
                                       const std::string& label, const compiler::CompileOptions& opt) {
  const std::string full = key + (opt.precision == compiler::Precision::INT8 ? " @int8" : " @fp16");
  auto it = compiled_.find(full);
  if (it != compiled_.end()) return runs_.at(it->second);
  const auto t0 = std::chrono::steady_clock::now();
  const ir::Graph g = build();
  compiler::CompileResult cr = compiler::compile(g, cfg_, opt);
  compile_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const PieceRun& pr = run_program(cr.program, label, &cr.predicted_streams);
  compiled_[full] = pr.hash;
  return pr;
}

}  // namespace lpu::system
