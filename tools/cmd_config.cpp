// `lpusim config show [FILE] [--chip FILE]`: prints the effective chip configuration as YAML
// (dump_chip_config), with where it came from and its derived figures as comments.
#include <iostream>
#include <memory>
#include <string>

#include "isa/chip_config.h"
#include "tools/cli_io.h"
#include "tools/commands.h"

namespace lpu::cli {

void register_config(CLI::App& app) {
  CLI::App* config = app.add_subcommand("config", "Chip configuration tools");
  config->require_subcommand(1);
  CLI::App* show = config->add_subcommand(
      "show", "Print the effective chip configuration (every field, derived figures as comments)");
  auto file = std::make_shared<std::string>();
  auto chip = std::make_shared<std::string>();
  show->add_option("file", *file, "chip config YAML (default: the built-in tsp-v1)");
  show->add_option("--chip", *chip, "chip config YAML (same as FILE)");
  show->callback([file, chip]() {
    if (!file->empty() && !chip->empty() && *file != *chip)
      throw InputError("config show: give the chip config either as FILE or with --chip, not both; got '" + *file +
                       "' and '" + *chip + "'");
    const std::string& path = file->empty() ? *chip : *file;
    const std::shared_ptr<const ChipConfig> cfg = chip_or_default(path);
    std::cout << "# source: " << cfg->source << "\n" << dump_chip_config(*cfg);
  });
}

}  // namespace lpu::cli
