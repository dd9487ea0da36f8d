// `lpusim asm FILE.s -o FILE.lpu [--chip CFG]` and `lpusim disasm FILE.lpu [--chip CFG] [--no-cycles]
// [-o FILE.s]`: the assembler and disassembler of isa/asm.h on the command line.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "isa/program_io.h"
#include "tools/cli_io.h"
#include "tools/commands.h"

namespace lpu::cli {

void register_asm(CLI::App& app) {
  struct AsmArgs { std::string in, out, chip; };
  auto a = std::make_shared<AsmArgs>();
  CLI::App* as = app.add_subcommand("asm", "Assemble a .s file into a binary .lpu program (syntax: docs/assembly.md)");
  as->add_option("file", a->in, "assembly source (.s)")->required();
  as->add_option("-o,--output", a->out, "binary program to write (.lpu)")->required();
  as->add_option("--chip", a->chip, "chip config YAML (default: the built-in tsp-v1)");
  as->callback([a]() {
    const auto cfg = chip_or_default(a->chip);
    const Program p = assemble(read_text_file(a->in, "an assembly file"), a->in, *cfg);
    write_program_file(p, a->out);
    size_t instrs = 0;
    for (const ChipCode& c : p.chips)
      for (const QueueCode& q : c.queues) instrs += q.code.size();
    std::cout << fmt::format("{}: {} chip(s), {} instruction words, {} data blob(s), {} tensor(s) -> {}\n", a->in, p.num_chips,
                             instrs, p.data.size(), p.tensors.size(), a->out);
  });

  struct DisArgs { std::string in, out, chip; bool no_cycles = false; };
  auto d = std::make_shared<DisArgs>();
  CLI::App* dis = app.add_subcommand("disasm", "Print a binary .lpu program as assembly in normal form");
  dis->add_option("file", d->in, "binary program (.lpu)")->required();
  dis->add_option("-o,--output", d->out, "write the assembly here instead of standard output");
  dis->add_option("--chip", d->chip, "chip config YAML (default: the built-in tsp-v1)");
  dis->add_flag("--no-cycles", d->no_cycles, "omit the '; @cycle' issue-cycle comments");
  dis->callback([d]() {
    const auto cfg = chip_or_default(d->chip);
    const Program p = read_program_file(d->in);
    validate_program(p, *cfg, d->in);
    DisasmOptions opt;
    opt.cycle_comments = !d->no_cycles;
    const std::string text = disassemble(p, *cfg, opt);
    if (d->out.empty()) std::cout << text;
    else write_text_file(d->out, text);
  });
}

}  // namespace lpu::cli
