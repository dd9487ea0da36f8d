// Internal helpers shared by program_io.cpp (binary format, validation), asm_parse.cpp (assembler)
// and asm_print.cpp (disassembler). Not a public contract: only files in isa/ include this.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "isa/program.h"

namespace lpu::detail {

// "MEM_E7.0": slice name and queue index, used in every error that names a queue.
std::string queue_label(const ChipConfig& cfg, uint16_t slice, uint8_t queue);

// Source lines of the items of an assembled program, so that validation errors can say
// "<file>:<line>:". Any vector may be empty (then that item kind is reported without a line).
struct ProgramLines {
  const SourceMap* instr = nullptr;    // lines[chip][queue_idx][instr_idx]
  std::vector<uint32_t> data, tensors, links, maps;
  uint32_t chips = 0, config = 0, work = 0;  // lines of .chips, .config, .work (0 = not given)
};

// validate_program with optional line numbers: errors are "<file>:<line>: <msg>" when the item's
// line is known and "<source>: <msg>" otherwise. Throws InputError on the first problem found
// (chips, maps, queues and instructions, data, tensors, links, in that order).
void validate_program_lines(const Program& p, const ChipConfig& cfg, const std::string& source,
                            const ProgramLines* lines);

// Deterministic pseudo-random bytes for `.fill`: splitmix64 seeded with `seed`; each 64-bit output
// supplies 8 bytes, least significant first. fill_bytes(seed, n) is a prefix of fill_bytes(seed, n+k).
std::vector<uint8_t> fill_bytes(uint64_t seed, size_t n);

// fimm text: the shortest decimal that strtof reads back to the same float ("1.5", "-0", "inf");
// NaNs print as their raw bits "0x7fc00000" so that every payload round-trips.
std::string format_fimm(uint32_t bits);

}  // namespace lpu::detail
