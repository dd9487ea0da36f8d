// `lpusim isa [--chip FILE]`: prints the markdown instruction-set reference (isa/isa_doc.h);
// docs/isa.md is this output for the built-in tsp-v1.
#include <iostream>
#include <memory>
#include <string>

#include "isa/chip_config.h"
#include "isa/isa_doc.h"
#include "tools/cli_io.h"
#include "tools/commands.h"

namespace lpu::cli {

void register_isa(CLI::App& app) {
  CLI::App* isa = app.add_subcommand("isa", "Print the instruction-set reference (markdown) generated from the ISA tables");
  auto chip = std::make_shared<std::string>();
  isa->add_option("--chip", *chip, "chip config YAML whose latencies/energies to show (default: built-in tsp-v1)");
  isa->callback([chip]() {
    const std::shared_ptr<const ChipConfig> cfg = chip_or_default(*chip);
    std::cout << isa_reference_markdown(*cfg);
  });
}

}  // namespace lpu::cli
