// lpusim subcommand(s) registered by register_isa (see commands.h).
#include "tools/commands.h"

namespace lpu::cli {

void register_isa(CLI::App& app) { (void)app; }

}  // namespace lpu::cli
