// lpusim subcommand(s) registered by register_asm (see commands.h).
#include "tools/commands.h"

namespace lpu::cli {

void register_asm(CLI::App& app) { (void)app; }

}  // namespace lpu::cli
