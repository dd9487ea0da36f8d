// Public API of the simulator: run a Program on one or more chips (SystemC underneath) and get
// cycles, values, per-unit activity and energy-event counts. Tools, tests and benches use only this.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "isa/program.h"
#include "isa/stream_envelope.h"

namespace lpu::sim {

enum class Mode { Functional, Timing };  // timing skips the arithmetic; cycle counts are identical

struct SimOptions {
  Mode mode = Mode::Functional;
  bool record_trace = false;              // fill SimResult::trace (one event per executed instruction)
  const SourceMap* source_map = nullptr;  // if set, errors name the assembly line
  // Functional mode: input tensor bytes by name (row-major elements of the tensor's dtype,
  // little-endian); inputs not given keep what the program's data image put there (or zeros).
  std::map<std::string, std::vector<uint8_t>> inputs;
};

// A broken schedule rule (collision, empty read, busy unit, hazard, abc without weights, recv
// without send, sync never released, ...). what() is the full human-readable message.
class SimError : public std::runtime_error {
 public:
  struct Where {
    uint64_t cycle = 0;
    uint32_t chip = 0;
    std::string slice;        // e.g. "VXM"
    uint32_t queue = 0;
    uint32_t instr_index = 0; // index in the queue's code
    std::string instr_text;   // the instruction in assembly syntax
    std::string stream;       // e.g. "E3" ("" if not about a stream)
    std::string source;       // "file.s:42" if a SourceMap was given, else ""
  };
  SimError(const std::string& rule, const Where& w, const std::string& detail);
  const std::string& rule() const { return rule_; }   // short rule id, e.g. "stream-collision"
  const Where& where() const { return where_; }
 private:
  std::string rule_;
  Where where_;
};

// One executed instruction (repeat iterations are separate events).
struct TraceEvent {
  uint32_t chip;
  uint16_t slice;
  uint8_t queue;
  Opcode op;
  uint32_t instr_index;
  uint64_t issue;      // issue cycle
  uint32_t latency;    // result lands at issue + latency
  uint32_t occupancy;  // resource busy for [issue, issue + occupancy)
};

struct SliceStats {
  uint64_t instructions = 0;  // executed (repeat iterations counted), excluding nop/sync
  uint64_t busy_cycles = 0;   // sum of occupancies of its instructions
};

struct ChipStats {
  std::vector<SliceStats> slices;                         // indexed like ChipConfig::slices
  std::array<uint64_t, kNumEnergyEvents> events{};        // energy event counts
  uint64_t sram_vectors_used = 0;                         // distinct (slice, address) ever written or preloaded
  StreamEnvelope streams;                                 // stream values near the program's ends (measured)
};

struct SimResult {
  uint64_t cycles = 0;                 // docs/architecture.md "End of program"
  uint64_t instructions = 0;           // executed, all chips
  std::vector<ChipStats> chips;
  std::vector<TraceEvent> trace;       // if record_trace; ordered by (issue, chip, slice, queue)
  std::map<std::string, std::vector<uint8_t>> outputs;  // functional mode: output tensors by name
};

// Runs the program. Throws SimError for schedule violations, InputError for a program that does
// not fit the config (validate_program). May be called more than once per process.
SimResult simulate(const Program& prog, const ChipConfig& cfg, const SimOptions& opt);

}  // namespace lpu::sim
