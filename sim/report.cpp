// Builds the text and JSON reports of a run from one set of derived figures (so both agree).
#include "sim/report.h"

#include <algorithm>
#include <fmt/format.h>

#include "sim/energy.h"

namespace lpu::sim {

namespace {

constexpr int kSliceKinds = 5;  // SliceKind::MEM .. SliceKind::C2C
static_assert(static_cast<int>(SliceKind::C2C) + 1 == kSliceKinds, "report.cpp: update kSliceKinds with SliceKind");
constexpr size_t kBusiestShown = 5;

struct KindFigures {
  uint32_t slices = 0;         // over all chips
  uint64_t queues = 0;         // issue slots per cycle over all chips
  uint64_t instructions = 0;
  uint64_t busy_cycles = 0;
  double utilization = 0;      // busy_cycles / (cycles * queues)
};

struct SliceFigures {
  uint32_t chip = 0;
  int slice = 0;
  uint64_t busy_cycles = 0;
  double utilization = 0;      // busy_cycles / (cycles * the slice's queues)
};

// Every number the reports print, derived once.
struct Figures {
  uint32_t chips = 0;
  double seconds = 0;
  double latency_us = 0;
  EnergyBreakdown energy;
  std::array<uint64_t, kNumEnergyEvents> events{};
  std::array<KindFigures, kSliceKinds> kinds{};
  std::vector<SliceFigures> busiest;
  double mac_utilization = 0;  // int8-equivalent MACs / (cycles * peak MACs per cycle * chips)
  double tops = 0;             // 2 * MACs / seconds / 1e12 (int8 and fp16 MACs together)
  uint64_t sram_used_bytes = 0;
  uint64_t sram_chip_bytes = 0;  // over all chips
  double sram_used_percent = 0;
  bool has_work = false;
  double items_per_second = 0;
  double items_per_joule = 0;
};

double ratio(double num, double den) { return den > 0 ? num / den : 0.0; }

// Energy-event yaml keys end in "_pj"; the report names events without the unit suffix.
std::string event_name(EnergyEvent e) {
  std::string k(energy_info(e).key);
  if (k.size() > 3 && k.compare(k.size() - 3, 3, "_pj") == 0) k.resize(k.size() - 3);
  return k;
}

Figures derive(const Program& prog, const ChipConfig& cfg, const SimResult& r) {
  Figures f;
  f.chips = static_cast<uint32_t>(r.chips.size());
  f.energy = compute_energy(r, cfg);
  f.seconds = f.energy.seconds;
  f.latency_us = f.seconds * 1e6;
  const double cycles = static_cast<double>(r.cycles);

  for (uint32_t c = 0; c < f.chips; ++c) {
    const ChipStats& cs = r.chips[c];
    for (int k = 0; k < kNumEnergyEvents; ++k) f.events[k] += cs.events[k];
    f.sram_used_bytes += cs.sram_vectors_used * cfg.vector_bytes();
    for (size_t s = 0; s < cfg.slices.size() && s < cs.slices.size(); ++s) {
      const SliceSpec& spec = cfg.slices[s];
      KindFigures& kf = f.kinds[static_cast<int>(spec.kind)];
      kf.slices += 1;
      kf.queues += spec.queues;
      kf.instructions += cs.slices[s].instructions;
      kf.busy_cycles += cs.slices[s].busy_cycles;
      if (cs.slices[s].busy_cycles > 0)
        f.busiest.push_back({c, static_cast<int>(s), cs.slices[s].busy_cycles,
                             ratio(static_cast<double>(cs.slices[s].busy_cycles), cycles * spec.queues)});
    }
  }
  for (KindFigures& kf : f.kinds)
    kf.utilization = ratio(static_cast<double>(kf.busy_cycles), cycles * static_cast<double>(kf.queues));
  // Busiest first by utilization; ties broken by (chip, slice) so the order is deterministic.
  std::stable_sort(f.busiest.begin(), f.busiest.end(), [](const SliceFigures& a, const SliceFigures& b) {
    if (a.utilization != b.utilization) return a.utilization > b.utilization;
    if (a.chip != b.chip) return a.chip < b.chip;
    return a.slice < b.slice;
  });
  if (f.busiest.size() > kBusiestShown) f.busiest.resize(kBusiestShown);

  const double mac8 = static_cast<double>(f.events[static_cast<int>(EnergyEvent::MacInt8)]);
  const double mac16 = static_cast<double>(f.events[static_cast<int>(EnergyEvent::MacFp16)]);
  // An fp16 MAC takes fp16_slowdown int8 MAC slots of the array.
  f.mac_utilization = ratio(mac8 + mac16 * cfg.mxm_fp16_slowdown,
                            cycles * static_cast<double>(cfg.peak_int8_macs_per_cycle()) * f.chips);
  f.tops = ratio(2.0 * (mac8 + mac16), f.seconds) * 1e-12;

  f.sram_chip_bytes = cfg.sram_bytes_per_chip() * f.chips;
  f.sram_used_percent = 100.0 * ratio(static_cast<double>(f.sram_used_bytes), static_cast<double>(f.sram_chip_bytes));

  f.has_work = prog.work_items > 0;
  if (f.has_work) {
    f.items_per_second = ratio(static_cast<double>(prog.work_items), f.seconds);
    f.items_per_joule = ratio(static_cast<double>(prog.work_items), f.energy.total_j);
  }
  return f;
}

std::string work_unit(const Program& prog) { return prog.work_unit.empty() ? "items" : prog.work_unit; }

}  // namespace

std::string text_report(const Program& prog, const ChipConfig& cfg, const SimResult& r) {
  const Figures f = derive(prog, cfg, r);
  std::string out;
  auto line = [&out](const std::string& s) { out += s; out += '\n'; };

  line(fmt::format("config        {} ({} chip{}, {:.0f} MHz)", cfg.name, f.chips, f.chips == 1 ? "" : "s",
                   cfg.clock_hz * 1e-6));
  line(fmt::format("cycles        {}", r.cycles));
  if (prog.predicted_cycles > 0)
    line(fmt::format("predicted     {} (measured - predicted = {:+d})", prog.predicted_cycles,
                     static_cast<int64_t>(r.cycles) - static_cast<int64_t>(prog.predicted_cycles)));
  line(fmt::format("latency       {:.3f} us", f.latency_us));
  line(fmt::format("instructions  {}", r.instructions));
  if (f.has_work) {
    const std::string u = work_unit(prog);
    line(fmt::format("work          {} {}", prog.work_items, u));
    line(fmt::format("throughput    {:.6g} {}/s", f.items_per_second, u));
    line(fmt::format("efficiency    {:.6g} {}/J", f.items_per_joule, u));
  }

  line("");
  line("utilization (busy cycles / (cycles x queues), all chips)");
  line(fmt::format("  {:<5} {:>6} {:>7} {:>14} {:>14} {:>8}", "kind", "slices", "queues", "instructions",
                   "busy cycles", "util"));
  for (int k = 0; k < kSliceKinds; ++k) {
    const KindFigures& kf = f.kinds[k];
    if (kf.slices == 0) continue;
    line(fmt::format("  {:<5} {:>6} {:>7} {:>14} {:>14} {:>7.2f}%", slice_kind_name(static_cast<SliceKind>(k)),
                     kf.slices, kf.queues, kf.instructions, kf.busy_cycles, 100.0 * kf.utilization));
  }
  line(fmt::format("  MXM MAC array: {:.2f}% of peak ({:.3f} TOPS achieved)", 100.0 * f.mac_utilization, f.tops));
  if (!f.busiest.empty()) {
    line("  busiest slices:");
    for (const SliceFigures& s : f.busiest)
      line(fmt::format("    chip {} {:<8} {:>12} busy cycles {:>7.2f}%", s.chip, cfg.slices[s.slice].name,
                       s.busy_cycles, 100.0 * s.utilization));
  }

  line("");
  line(fmt::format("SRAM used     {} bytes of {} ({:.3f}%)", f.sram_used_bytes, f.sram_chip_bytes,
                   f.sram_used_percent));

  line("");
  line("energy");
  for (int k = 0; k < kNumEnergyEvents; ++k) {
    if (f.events[k] == 0) continue;
    const EnergyEvent e = static_cast<EnergyEvent>(k);
    line(fmt::format("  {:<16} {:>16} {:<11} {:>12.6g} J {:>6.2f}%", event_name(e), f.events[k],
                     energy_info(e).unit, f.energy.dynamic_j[k], 100.0 * ratio(f.energy.dynamic_j[k], f.energy.total_j)));
  }
  line(fmt::format("  {:<16} {:>16} {:<11} {:>12.6g} J {:>6.2f}%", "static", "", "", f.energy.static_j,
                   100.0 * ratio(f.energy.static_j, f.energy.total_j)));
  line(fmt::format("  total            {:.6g} J", f.energy.total_j));
  line(fmt::format("average power {:.2f} W ({:.2f} W per chip)", f.energy.average_power_w,
                   ratio(f.energy.average_power_w, f.chips)));
  return out;
}

nlohmann::ordered_json json_report(const Program& prog, const ChipConfig& cfg, const SimResult& r) {
  const Figures f = derive(prog, cfg, r);
  using J = nlohmann::ordered_json;
  J j;
  j["schema_version"] = kReportSchemaVersion;
  j["tool"] = "lpusim";
  j["config"] = cfg.name;
  j["chips"] = f.chips;
  j["cycles"] = r.cycles;
  if (prog.predicted_cycles > 0) j["predicted_cycles"] = prog.predicted_cycles;
  j["latency_us"] = f.latency_us;
  j["energy_j"] = f.energy.total_j;
  j["power_w"] = f.energy.average_power_w;
  j["instructions"] = r.instructions;
  if (f.has_work) {
    j["work_items"] = prog.work_items;
    j["work_unit"] = work_unit(prog);
    j["items_per_second"] = f.items_per_second;
    j["items_per_joule"] = f.items_per_joule;
  }

  J util;
  J kinds = J::object();
  for (int k = 0; k < kSliceKinds; ++k) {
    const KindFigures& kf = f.kinds[k];
    if (kf.slices == 0) continue;
    J o;
    o["slices"] = kf.slices;
    o["queues"] = kf.queues;
    o["instructions"] = kf.instructions;
    o["busy_cycles"] = kf.busy_cycles;
    o["utilization"] = kf.utilization;
    kinds[std::string(slice_kind_name(static_cast<SliceKind>(k)))] = o;
  }
  util["by_kind"] = kinds;
  util["mxm_mac_utilization"] = f.mac_utilization;
  util["tops"] = f.tops;
  J busiest = J::array();
  for (const SliceFigures& s : f.busiest)
    busiest.push_back(J{{"chip", s.chip}, {"slice", cfg.slices[s.slice].name}, {"busy_cycles", s.busy_cycles},
                        {"utilization", s.utilization}});
  util["busiest"] = busiest;
  j["utilization"] = util;

  J ev = J::object();
  J counts = J::object();
  for (int k = 0; k < kNumEnergyEvents; ++k) {
    const std::string name = event_name(static_cast<EnergyEvent>(k));
    ev[name] = f.energy.dynamic_j[k];
    counts[name] = f.events[k];
  }
  ev["static"] = f.energy.static_j;
  j["energy_by_event_j"] = ev;
  j["event_counts"] = counts;

  j["sram"] = J{{"used_bytes", f.sram_used_bytes},
                {"capacity_bytes", f.sram_chip_bytes},
                {"used_percent", f.sram_used_percent}};
  return j;
}

}  // namespace lpu::sim
