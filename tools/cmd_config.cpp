// lpusim subcommand(s) registered by register_config (see commands.h).
#include "tools/commands.h"

namespace lpu::cli {

void register_config(CLI::App& app) { (void)app; }

}  // namespace lpu::cli
