// Size-only estimate of the simulator's host memory: see host_limits.h. The terms mirror the
// allocations of sim/core (StreamFile::init, SramSlice, ChipEngine) and sim/units/mxm.cpp
// (MxmPlane::init/allocate); keep them in step when those change.
#include "sim/host_limits.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <set>
#include <vector>

#include "sim/core/chip_engine.h"
#include "sim/core/sram.h"
#include "sim/core/stream_file.h"
#include "sim/units/mxm_plane.h"

namespace lpu::sim {

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// Saturating arithmetic: an absurd config must give a huge estimate, never a wrapped small one.
uint64_t mul(uint64_t a, uint64_t b) { return (a != 0 && b > kMax / a) ? kMax : a * b; }
uint64_t add(uint64_t a, uint64_t b) { return b > kMax - a ? kMax : a + b; }

std::string mib(uint64_t b) { return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1ull << 20)); }

}  // namespace

std::string SimMemoryEstimate::describe() const {
  return fmt::format("stream registers {}, SRAM {}, MXM {}, code {}, trace {}", mib(streams), mib(sram), mib(mxm),
                     mib(code), mib(trace));
}

SimMemoryEstimate estimate_sim_memory(const Program& prog, const ChipConfig& cfg, const SimOptions& opt) {
  const bool values = opt.mode == Mode::Functional;
  const uint64_t lanes = cfg.vector_bytes();
  const uint64_t lanes_pad = (lanes + 15) & ~uint64_t{15};
  const uint64_t chips = std::max<uint64_t>(prog.num_chips, prog.chips.size());
  SimMemoryEstimate e;

  // Stream registers (StreamFile::init): a ring of window >= positions + max latency + 2 entries
  // (a power of two) per stream and direction; lane values in functional mode.
  uint64_t max_lat = 1;
  for (const TimingEntry& t : cfg.timing) max_lat = std::max<uint64_t>(max_lat, t.latency);
  uint64_t window = 1;
  while (window < cfg.num_positions() + max_lat + 2) window <<= 1;
  const uint64_t rings = mul(2ull * cfg.streams_per_direction, window);
  const uint64_t streams_per_chip = mul(rings, sizeof(core::StreamSlot) + (values ? lanes : 0));
  e.streams = mul(streams_per_chip, chips);

  // SRAM per MEM slice the program can write: values (functional), landing cycle and used flag per
  // address (SramSlice::note_write / mark_used), page table.
  const uint64_t addrs = cfg.sram_addresses;
  const uint64_t pages = (addrs + core::SramSlice::kPageVectors - 1) / core::SramSlice::kPageVectors;
  const uint64_t slice_full = add(mul(addrs, (values ? lanes : 0) + sizeof(uint64_t) + 1), pages * sizeof(void*));
  std::vector<std::set<uint32_t>> written(chips), mxm_used(chips);  // slices with state, per chip
  for (size_t c = 0; c < prog.chips.size(); ++c)
    for (const QueueCode& q : prog.chips[c].queues) {
      if (q.code.empty() || q.slice >= cfg.slices.size()) continue;
      if (cfg.slices[q.slice].kind == SliceKind::MEM) written[c].insert(q.slice);
      if (cfg.slices[q.slice].kind == SliceKind::MXM) mxm_used[c].insert(q.slice);
    }
  for (const DataBlob& b : prog.data)
    if (b.chip < chips) written[b.chip].insert(b.slice);
  for (const TensorDesc& t : prog.tensors)
    if (t.chip < chips)
      for (uint16_t s : t.slices) written[t.chip].insert(s);
  uint64_t mem_slices = 0, mxm_slices = 0;
  for (const SliceSpec& s : cfg.slices) mem_slices += s.kind == SliceKind::MEM;
  for (const SliceSpec& s : cfg.slices) mxm_slices += s.kind == SliceKind::MXM;
  for (uint64_t c = 0; c < chips; ++c) {
    e.sram = add(e.sram, mul(written[c].size(), slice_full));
    e.sram = add(e.sram, mul(mem_slices, pages * sizeof(void*)));  // page tables of untouched slices
  }

  // MXM planes: landing cycle per accumulator row always; functional storage on first use.
  const uint64_t rows = cfg.mxm_acc_rows;
  const uint64_t kb = units::MxmPlane::kBatch;
  const uint64_t plane_base = mul(rows, sizeof(uint64_t));
  uint64_t plane_values = 0;
  if (values) {
    plane_values = mul(mul(lanes, lanes), 2 * sizeof(float));            // shadow, active
    plane_values = add(plane_values, mul(mul(lanes, lanes_pad), sizeof(int16_t)));  // active_t16
    plane_values = add(plane_values, mul(rows, lanes * sizeof(uint32_t) + 1));      // acc, row_in_batch
    plane_values = add(plane_values, mul(kb, lanes * (2 * sizeof(float) + sizeof(int32_t)) + lanes_pad * sizeof(int16_t)));
  }
  for (uint64_t c = 0; c < chips; ++c) {
    e.mxm = add(e.mxm, mul(mul(mxm_slices, cfg.mxm_planes), plane_base));
    e.mxm = add(e.mxm, mul(mul(mxm_used[c].size(), cfg.mxm_planes), plane_values));
  }

  // Decoded instructions, and per chip the timing wheel and lane scratch buffers.
  uint64_t instrs = 0, executed = 0;
  for (const ChipCode& cc : prog.chips)
    for (const QueueCode& q : cc.queues)
      for (const Instr& in : q.code) {
        ++instrs;
        executed = add(executed, in.op == Opcode::Repeat ? in.get(Field::Count) : 1);
      }
  e.code = add(mul(instrs, sizeof(core::Decoded)),
               mul(chips, add(mul(lanes, 16 + 3 * sizeof(float) + 3 * sizeof(int64_t)), 256 * sizeof(uint64_t))));
  if (opt.record_trace) e.trace = mul(executed, sizeof(TraceEvent));

  e.total = add(add(add(e.streams, e.sram), add(e.mxm, e.code)), e.trace);
  return e;
}

}  // namespace lpu::sim
