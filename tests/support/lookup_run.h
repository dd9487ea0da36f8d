// One run of an embedding-lookup graph (graph input 0 = the ids) for the lookup tests: compiles it
// for `cfg`, simulates it in timing and functional mode (both must take exactly the predicted
// cycles) with the ids converted as the host binding does (io_binding.h: lookup_index_bytes, split
// into parts by lookup_part_rows when the table exceeds one slice), and returns output 0 as f32.
#pragma once
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lowering.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

namespace lpu::test {

struct LookupRun {
  std::vector<float> y;
  uint64_t cycles = 0;
  compiler::MatmulStats stats;
};

inline LookupRun run_lookup(const ir::Graph& g, const ChipConfig& cfg, const std::vector<int64_t>& ids) {
  using namespace lpu::compiler;
  const CompileResult cr = compile(g, cfg, CompileOptions{});
  const LoweredModel lm = lower_graph(g);
  const LoweredInput& in = lm.inputs.at(0);
  REQUIRE(in.lookup_rows > 0);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(cr.program, cfg, so).cycles == cr.program.predicted_cycles);
  so.mode = sim::Mode::Functional;
  const std::string name = g.tensor(g.inputs()[0]).name;
  const uint32_t lanes = cfg.vector_bytes();
  bind_input(cr.program, name,
             lookup_index_bytes(name, ids, in.lookup_rows, in.lookup_cols, lanes,
                                lookup_part_rows(in.lookup_rows, in.lookup_cols, lanes, cfg.sram_addresses)),
             &so.inputs);
  const sim::SimResult r = sim::simulate(cr.program, cfg, so);
  CHECK(r.cycles == cr.program.predicted_cycles);
  const ir::TensorId t = g.outputs()[0];
  const std::vector<uint8_t> b = gather_output(cr.program, g.tensor(t).name, r.outputs);
  REQUIRE(b.size() == static_cast<size_t>(g.tensor(t).elements()) * 4);
  LookupRun out;
  out.y.resize(b.size() / 4);
  std::memcpy(out.y.data(), b.data(), b.size());
  out.cycles = r.cycles;
  out.stats = cr.stats;
  return out;
}

}  // namespace lpu::test
