// Text assembly for Programs: readable enough to teach with. Syntax in docs/assembly.md.
// Contract: assemble(disassemble(p)) == p (byte-identical once serialized), and
// disassemble(assemble(s)) is s in normal form.
#pragma once
#include <string>
#include <vector>

#include "isa/chip_config.h"
#include "isa/program.h"

namespace lpu {

// Source line of every instruction, filled by the assembler (not stored in .lpu files) so that
// simulator errors can name the assembly line. lines[chip][queue_idx][instr_idx].
struct SourceMap {
  std::string file;
  std::vector<std::vector<std::vector<uint32_t>>> lines;
};

// Throws InputError "<file>:<line>: <message>" (unknown mnemonic, bad operand, undefined label,
// out-of-range field, unknown slice, ...). `map` may be null.
Program assemble(const std::string& text, const std::string& source_name, const ChipConfig& cfg,
                 SourceMap* map = nullptr);

struct DisasmOptions { bool cycle_comments = true; };
std::string disassemble(const Program& p, const ChipConfig& cfg, const DisasmOptions& opt = {});

// One instruction in assembly syntax (no queue context), e.g. "add.f32 E0, W4 -> E8".
std::string format_instr(const Instr& in);

}  // namespace lpu
