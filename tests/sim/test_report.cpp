// Tests of the run report (text + JSON), the energy arithmetic and the Chrome trace writer, on
// hand-made SimResults and a small hand-made chip so every expected figure is worked out here.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sstream>

#include "isa/asm.h"
#include "sim/energy.h"
#include "sim/report.h"
#include "sim/trace.h"

using namespace lpu;
using namespace lpu::sim;

namespace {

// A toy chip: 8 lanes, 1 GHz, MEM_A(0) VXM(1) MXM(2); only the figures the report reads matter.
ChipConfig toy_chip() {
  ChipConfig c;
  c.name = "toy";
  c.source = "<test>";
  c.clock_hz = 1e9;
  c.superlanes = 2;
  c.lanes_per_superlane = 4;
  c.streams_per_direction = 4;
  c.stagger = false;
  c.slices = {{"MEM_A", SliceKind::MEM, 0, 1}, {"VXM", SliceKind::VXM, 1, 4}, {"MXM", SliceKind::MXM, 2, 2}};
  c.sram_addresses = 16;
  c.mxm_planes = 1;
  c.mxm_acc_rows = 4;
  c.mxm_fp16_slowdown = 4;
  c.energy_pj[static_cast<int>(EnergyEvent::MacInt8)] = 2.0;
  c.energy_pj[static_cast<int>(EnergyEvent::SramRead)] = 100.0;
  c.static_power_w = 10.0;
  return c;
}

// Two chips, 1000 cycles (1 us at 1 GHz).
SimResult toy_result() {
  SimResult r;
  r.cycles = 1000;
  r.instructions = 300;
  r.chips.resize(2);
  for (ChipStats& cs : r.chips) cs.slices.resize(3);
  r.chips[0].events[static_cast<int>(EnergyEvent::MacInt8)] = 500;
  r.chips[1].events[static_cast<int>(EnergyEvent::MacInt8)] = 140;
  r.chips[0].events[static_cast<int>(EnergyEvent::SramRead)] = 10;
  r.chips[0].slices[0] = {200, 200};  // MEM_A busy 20% of the time
  r.chips[0].slices[1] = {100, 100};  // VXM: 100 / (1000 * 4 queues) = 2.5%
  r.chips[1].slices[2] = {0, 0};
  r.chips[0].sram_vectors_used = 3;
  r.chips[1].sram_vectors_used = 1;
  return r;
}

}  // namespace

TEST_CASE("report: energy is events x picojoules plus static power x chips x seconds", "[report]") {
  const ChipConfig cfg = toy_chip();
  const EnergyBreakdown e = compute_energy(toy_result(), cfg);
  // seconds = 1000 cycles / 1e9 Hz = 1e-6 s; static = 10 W x 2 chips x 1e-6 s = 2e-5 J
  CHECK(e.seconds == Approx(1e-6));
  CHECK(e.static_j == Approx(2e-5));
  // MACs: (500 + 140) x 2 pJ = 1.28e-9 J; SRAM reads: 10 x 100 pJ = 1e-9 J
  CHECK(e.dynamic_j[static_cast<int>(EnergyEvent::MacInt8)] == Approx(1.28e-9));
  CHECK(e.dynamic_j[static_cast<int>(EnergyEvent::SramRead)] == Approx(1e-9));
  CHECK(e.total_j == Approx(2e-5 + 2.28e-9));
  // power = total / seconds = 20.00228 W
  CHECK(e.average_power_w == Approx(20.00228));
}

TEST_CASE("report: zero cycles gives zero power and no division by zero", "[report]") {
  SimResult r;
  r.chips.resize(1);
  const EnergyBreakdown e = compute_energy(r, toy_chip());
  CHECK(e.seconds == 0);
  CHECK(e.total_j == 0);
  CHECK(e.average_power_w == 0);
}

TEST_CASE("report: JSON carries the documented top-level keys and figures", "[report]") {
  const ChipConfig cfg = toy_chip();
  Program p;
  p.num_chips = 2;
  p.chips.resize(2);
  p.work_items = 4;
  p.work_unit = "tokens";
  const nlohmann::ordered_json j = json_report(p, cfg, toy_result());
  const char* keys[] = {"schema_version", "tool", "config", "chips", "cycles", "latency_us", "energy_j", "power_w",
                        "instructions", "work_items", "work_unit", "items_per_second", "items_per_joule",
                        "utilization", "energy_by_event_j", "event_counts", "sram"};
  for (const char* k : keys) CHECK(j.contains(k));
  CHECK(j["schema_version"] == kReportSchemaVersion);
  CHECK(j["config"] == "toy");
  CHECK(j["chips"] == 2);
  CHECK(j["cycles"] == 1000);
  CHECK(j["latency_us"].get<double>() == Approx(1.0));
  CHECK(j["instructions"] == 300);
  CHECK(j["work_unit"] == "tokens");
  // 4 tokens in 1e-6 s = 4e6 tokens/s; 4 tokens / 2.000228e-5 J
  CHECK(j["items_per_second"].get<double>() == Approx(4e6));
  CHECK(j["items_per_joule"].get<double>() == Approx(4.0 / 2.000228e-5));
  CHECK(j["energy_by_event_j"]["mac_int8"].get<double>() == Approx(1.28e-9));
  CHECK(j["energy_by_event_j"]["static"].get<double>() == Approx(2e-5));
  CHECK(j["event_counts"]["mac_int8"] == 640);
  // MEM: 2 slices (one per chip), 2 queues, 200 busy cycles -> 200 / (1000 x 2) = 10%
  CHECK(j["utilization"]["by_kind"]["MEM"]["utilization"].get<double>() == Approx(0.10));
  // VXM: 100 / (1000 x 8 queues over 2 chips) = 1.25%
  CHECK(j["utilization"]["by_kind"]["VXM"]["utilization"].get<double>() == Approx(0.0125));
  // busiest: MEM_A on chip 0 (20%) before VXM on chip 0 (2.5%); idle slices are not listed
  REQUIRE(j["utilization"]["busiest"].size() == 2);
  CHECK(j["utilization"]["busiest"][0]["slice"] == "MEM_A");
  CHECK(j["utilization"]["busiest"][0]["utilization"].get<double>() == Approx(0.2));
  // peak = 1 plane x 8 x 8 = 64 MACs/cycle per chip; 640 / (1000 x 64 x 2) = 0.5%
  CHECK(j["utilization"]["mxm_mac_utilization"].get<double>() == Approx(0.005));
  // SRAM: 4 vectors x 8 bytes = 32 bytes of 2 chips x 16 addresses x 8 bytes = 256 bytes
  CHECK(j["sram"]["used_bytes"] == 32);
  CHECK(j["sram"]["capacity_bytes"] == 256);
  CHECK(j["sram"]["used_percent"].get<double>() == Approx(12.5));
}

TEST_CASE("report: no declared work means no throughput keys", "[report]") {
  Program p;
  p.num_chips = 2;
  p.chips.resize(2);
  const nlohmann::ordered_json j = json_report(p, toy_chip(), toy_result());
  CHECK_FALSE(j.contains("items_per_second"));
  CHECK_FALSE(j.contains("items_per_joule"));
  CHECK_FALSE(j.contains("work_unit"));
  CHECK(text_report(p, toy_chip(), toy_result()).find("/s") == std::string::npos);
}

TEST_CASE("report: text report is deterministic and names cycles and power and the work unit", "[report]") {
  const ChipConfig cfg = toy_chip();
  Program p;
  p.num_chips = 2;
  p.chips.resize(2);
  p.work_items = 4;
  p.work_unit = "images";
  const std::string a = text_report(p, cfg, toy_result());
  const std::string b = text_report(p, cfg, toy_result());
  CHECK(a == b);
  CHECK(a.find("cycles        1000") != std::string::npos);
  CHECK(a.find("latency       1.000 us") != std::string::npos);
  CHECK(a.find("images/s") != std::string::npos);
  CHECK(a.find("images/J") != std::string::npos);
  CHECK(a.find("average power 20.00 W") != std::string::npos);
  CHECK(a.find("MEM_A") != std::string::npos);
  CHECK(json_report(p, cfg, toy_result()).dump() == json_report(p, cfg, toy_result()).dump());
  CHECK(a.find("predicted") == std::string::npos);
  CHECK_FALSE(json_report(p, cfg, toy_result()).contains("predicted_cycles"));
  // A recorded compiler prediction is shown next to the measurement: 1000 - 990 = +10.
  p.predicted_cycles = 990;
  CHECK(text_report(p, cfg, toy_result()).find("predicted     990 (measured - predicted = +10)") != std::string::npos);
  CHECK(json_report(p, cfg, toy_result())["predicted_cycles"] == 990);
}

TEST_CASE("report: trace has metadata per chip and queue and one X event per executed instruction", "[report]") {
  const ChipConfig cfg = toy_chip();
  Program p;
  p.num_chips = 1;
  p.chips.resize(1);
  QueueCode mem;
  mem.slice = 0;
  mem.queue = 0;
  Instr rd = make_instr(Opcode::Read);
  rd.set(Field::Addr, 5);
  mem.code = {rd, make_instr(Opcode::Nop)};
  mem.code[1].set(Field::Imm, 3);
  p.chips[0].queues.push_back(mem);
  SimResult r;
  r.cycles = 10;
  r.chips.resize(1);
  // The read issued twice (as if repeated): the second event shows the stepped address 6.
  r.trace.push_back({0, 0, 0, Opcode::Read, 0, 0, 2, 1});
  r.trace.push_back({0, 0, 0, Opcode::Read, 0, 1, 2, 1});
  std::ostringstream a, b;
  write_chrome_trace(a, p, cfg, r);
  write_chrome_trace(b, p, cfg, r);
  CHECK(a.str() == b.str());
  const nlohmann::json j = nlohmann::json::parse(a.str());
  int x = 0, threads = 0, procs = 0;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] == "X") {
      CHECK(e["name"] == "read");
      CHECK(e["ts"] == e["args"]["issue"]);
      CHECK(e["dur"] == 1);
      CHECK(e["args"]["asm"] == format_instr([&] { Instr i = rd; i.set(Field::Addr, 5 + x); return i; }()));
      ++x;
    } else if (e["name"] == "thread_name") {
      CHECK(e["args"]["name"] == "MEM_A.0");
      ++threads;
    } else if (e["name"] == "process_name") {
      CHECK(e["args"]["name"] == "chip 0");
      ++procs;
    }
  }
  CHECK(x == 2);
  CHECK(threads == 1);
  CHECK(procs == 1);
  CHECK(j["otherData"]["time_unit"].get<std::string>().find("cycle") != std::string::npos);
}

TEST_CASE("report: a trace event outside the program is refused and not dropped", "[report]") {
  Program p;
  p.chips.resize(1);
  SimResult r;
  r.chips.resize(1);
  r.trace.push_back({0, 1, 0, Opcode::Add, 0, 0, 3, 1});
  std::ostringstream out;
  CHECK_THROWS_AS(write_chrome_trace(out, p, toy_chip(), r), std::invalid_argument);
}
