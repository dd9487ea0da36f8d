// ChipConfig: the immutable, validated description of one chip (and its links) that both the
// compiler and the simulator read. Loaded from YAML (load_chip_config) or built in (tsp-v1,
// workloads/chips/tsp-v1.yaml embedded at build time). Every default number lives in that YAML,
// commented as published (with source) or assumed.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "isa/isa.h"

namespace lpu {

// A functional slice of the floorplan. Position 0 is the west edge; values on eastward streams
// move +1 position per cycle, westward -1.
enum class SliceKind : uint8_t { MEM, VXM, MXM, SXM, C2C };
std::string_view slice_kind_name(SliceKind k);
Unit slice_unit(SliceKind k);

struct SliceSpec {
  std::string name;     // unique, e.g. "MEM_W5", "VXM", "MXM_W"
  SliceKind kind;
  uint32_t position;    // unique, 0 .. num_positions-1
  uint32_t queues;      // instruction queues feeding this slice (>= 1)
};

struct TimingEntry { uint32_t latency = 1; uint32_t occupancy = 1; };

struct ChipConfig {
  std::string name;          // e.g. "tsp-v1"
  std::string source;        // file it was loaded from, or "<built-in tsp-v1>"

  // organization
  double clock_hz = 0;
  uint32_t superlanes = 0;
  uint32_t lanes_per_superlane = 0;
  uint32_t streams_per_direction = 0;  // per direction; <= 32 (the 5-bit stream index)
  bool stagger = true;                 // superlane staggering: adds superlanes-1 cycles at the end

  std::vector<SliceSpec> slices;       // sorted by position

  // memory
  uint32_t sram_addresses = 0;         // vector addresses per MEM slice (<= 65536, the addr field)

  // MXM
  uint32_t mxm_planes = 0;             // planes per MXM slice (<= 4, the plane field)
  uint32_t mxm_acc_rows = 0;           // accumulator rows per plane (<= 65536, the row field)
  uint32_t mxm_fp16_slowdown = 1;      // fp16 abc occupancy multiplier vs int8 (lw is not slowed)
  // Whether the MXM has the transposed install `iwt` (array <- shadow transposed). [assumed]: not
  // in the published instruction table; a chip without it rejects `iwt` and compilers must not
  // emit it (mxm.transposed_install, optional, default true).
  bool mxm_transposed_install = true;
  // Whether the VXM has the fused multiply-add `fma` (dst = a * b + c, one rounding). [assumed]:
  // not in the published instruction table ([ISCA20] Table I lists unary and binary ops); a chip
  // without it rejects `fma` and compilers emit `mul` then `add` (vxm.fused_multiply_add,
  // optional section and key, default true).
  bool vxm_fma = true;

  // timing and energy, indexed by SchedClass / EnergyEvent
  std::array<TimingEntry, kNumSchedClasses> timing{};
  std::array<double, kNumEnergyEvents> energy_pj{};
  double static_power_w = 0;

  // chip-to-chip
  uint32_t c2c_links = 0;              // links per chip (<= 32, the link field)
  double c2c_link_bytes_per_s = 0;     // per direction, per link
  uint32_t c2c_wire_latency_cycles = 0;// flight time excluding serialization
  uint32_t chips_per_node = 0;         // topology: Dragonfly node size
  uint32_t nodes_per_rack = 0;

  // host link (optional YAML section `host`; 0 = host transfers not modelled): each card's own
  // link to its host, used by the LLM composition for the rows the host writes and the logits it
  // reads per step (system/llm_system.h)
  double host_link_bytes_per_s = 0;    // per direction, per card
  double host_link_latency_s = 0;      // fixed cost of one host transfer (DMA set-up and completion)

  // ---- derived (computed by the loader, never written in YAML) ----
  uint32_t vector_bytes() const { return superlanes * lanes_per_superlane; }  // = lanes
  uint32_t num_positions() const;                   // max position + 1
  int slice_index(std::string_view name) const;     // -1 if absent
  std::vector<int> slices_of(SliceKind k) const;    // indices in position order
  uint64_t sram_bytes_per_chip() const;
  uint32_t c2c_serialization_cycles() const;        // ceil(vector_bytes / bytes per cycle)
  uint64_t peak_int8_macs_per_cycle() const;        // planes * lanes * lanes over all MXM slices
  uint32_t stagger_tail() const { return stagger ? superlanes - 1 : 0; }
};

// Timing of one instruction under a config (latency/occupancy of its class, with the fp16 MXM
// slowdown and C2C serialization applied). The compiler and the simulator both call this.
TimingEntry instr_timing(const ChipConfig& cfg, const Instr& in);

// Thrown by every loader in lpusim (config, program, assembly, models): `what()` names the file,
// the field or line, the value and what is allowed. Libraries never exit(); tools catch this.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Loads and validates a chip configuration. Unknown keys, wrong types, out-of-range values and
// inconsistent floorplans throw InputError naming file, field path (e.g. "timing.mxm_abc.latency"),
// value and allowed range.
std::shared_ptr<const ChipConfig> load_chip_config(const std::string& path);
std::shared_ptr<const ChipConfig> parse_chip_config(const std::string& yaml_text, const std::string& source_name);
std::shared_ptr<const ChipConfig> default_chip_config();  // built-in tsp-v1
const std::string& default_chip_config_yaml();            // its source text
// Effective configuration as YAML (every field, derived figures as comments).
std::string dump_chip_config(const ChipConfig& cfg);

}  // namespace lpu
