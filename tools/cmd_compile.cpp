// lpusim subcommand(s) registered by register_compile (see commands.h).
#include "tools/commands.h"

namespace lpu::cli {

void register_compile(CLI::App& app) { (void)app; }

}  // namespace lpu::cli
