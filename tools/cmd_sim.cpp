// lpusim subcommand(s) registered by register_sim (see commands.h).
#include "tools/commands.h"

namespace lpu::cli {

void register_sim(CLI::App& app) { (void)app; }

}  // namespace lpu::cli
