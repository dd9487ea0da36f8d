// Engine smoke tests: the sample assembly programs run, take the cycles they predict and compute
// the values a plain C++ reference computes.
#include <catch2/catch.hpp>

#include "tests/support/files.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;

namespace {

Program load_sample(const std::string& name, const ChipConfig& cfg) {
  const std::string path = std::string(LPU_SOURCE_DIR) + "/tests/data/asm/" + name;
  return assemble(read_text(path), name, cfg);
}

}  // namespace

TEST_CASE("engine: add_vectors sample adds and takes its predicted cycles") {
  auto cfg = default_chip_config();
  Program p = load_sample("add_vectors.s", *cfg);
  sim::SimOptions opt;
  std::vector<uint8_t> a(320), b(320);
  for (int i = 0; i < 320; ++i) {
    a[i] = static_cast<uint8_t>(i * 7 + 1);
    b[i] = static_cast<uint8_t>(200 + i * 3);
  }
  opt.inputs["a"] = a;
  opt.inputs["b"] = b;
  sim::SimResult r = sim::simulate(p, *cfg, opt);
  CHECK(r.cycles == p.predicted_cycles);
  CHECK(r.cycles == 17 + 2 + 19);
  REQUIRE(r.outputs.count("c") == 1);
  const auto& c = r.outputs.at("c");
  REQUIRE(c.size() == 320);
  for (int i = 0; i < 320; ++i) CHECK(c[i] == static_cast<uint8_t>(a[i] + b[i]));
  CHECK(r.instructions == 4);
  const auto& ev = r.chips[0].events;
  CHECK(ev[static_cast<int>(EnergyEvent::SramRead)] == 2);
  CHECK(ev[static_cast<int>(EnergyEvent::SramWrite)] == 1);
  CHECK(ev[static_cast<int>(EnergyEvent::VxmOp)] == 1);
  // Hops: A 40->46 (6), B 54->46 (8), C 46->50 (4), one byte plane each.
  CHECK(ev[static_cast<int>(EnergyEvent::StreamHop)] == 18);
  CHECK(r.chips[0].sram_vectors_used == 3);
}

TEST_CASE("engine: matvec_i8 sample computes x . W exactly in int32") {
  auto cfg = default_chip_config();
  Program p = load_sample("matvec_i8.s", *cfg);
  sim::SimOptions opt;
  std::vector<uint8_t> x(320);
  for (int i = 0; i < 320; ++i) x[i] = static_cast<uint8_t>((i * 37) % 251);
  opt.inputs["x"] = x;
  sim::SimResult r = sim::simulate(p, *cfg, opt);
  CHECK(r.cycles == p.predicted_cycles);
  // W is the .fill blob in MEM_W43: row i at address i.
  const DataBlob* w = nullptr;
  for (const DataBlob& b : p.data)
    if (cfg->slices[b.slice].name == "MEM_W43") w = &b;
  REQUIRE(w != nullptr);
  const auto& y = r.outputs.at("y");
  REQUIRE(y.size() == 320 * 4);
  for (int j = 0; j < 320; ++j) {
    int32_t want = 0;
    for (int i = 0; i < 320; ++i) want += static_cast<int8_t>(x[i]) * static_cast<int8_t>(w->bytes[i * 320 + j]);
    int32_t got;
    std::memcpy(&got, &y[j * 4], 4);
    CHECK(got == want);
  }
  const auto& ev = r.chips[0].events;
  CHECK(ev[static_cast<int>(EnergyEvent::MacInt8)] == 320 * 320);
  CHECK(ev[static_cast<int>(EnergyEvent::WeightLoad)] == 320);
  CHECK(ev[static_cast<int>(EnergyEvent::AccRead)] == 1);
}

TEST_CASE("engine: sxm_sync sample converts, scales, permutes and releases the sync") {
  auto cfg = default_chip_config();
  Program p = load_sample("sxm_sync.s", *cfg);
  sim::SimOptions opt;
  opt.record_trace = true;
  std::vector<uint8_t> x(320);
  for (int i = 0; i < 320; ++i) x[i] = static_cast<uint8_t>(i * 5 - 100);
  opt.inputs["x"] = x;
  sim::SimResult r = sim::simulate(p, *cfg, opt);
  CHECK(r.cycles == p.predicted_cycles);
  const auto& y = r.outputs.at("y");
  REQUIRE(y.size() == 320 * 4);
  for (int i = 0; i < 320; ++i) {
    float got;
    std::memcpy(&got, &y[i * 4], 4);
    CHECK(got == static_cast<float>(static_cast<int8_t>(x[319 - i])) * 0.5f - 1.25f);
  }
  // The sync'd queue resumes 2 cycles (icu_sync latency) after the notify at 20.
  int seen = 0;
  for (const sim::TraceEvent& e : r.trace) {
    if (e.op == Opcode::Ifetch) { CHECK(e.issue == 22); ++seen; }
    if (e.op == Opcode::Config) { CHECK(e.issue == 23); ++seen; }
  }
  CHECK(seen == 2);
  // Trace order: (issue, chip, slice, queue).
  for (size_t i = 1; i < r.trace.size(); ++i) CHECK(r.trace[i - 1].issue <= r.trace[i].issue);
  // repeat 2 re-issues the read: 3 reads on MEM_E1.
  const int e1 = cfg->slice_index("MEM_E1");
  CHECK(r.chips[0].slices[e1].instructions == 3);
}
