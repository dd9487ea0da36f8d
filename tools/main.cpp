// Entry point of the `lpusim` command line: builds the CLI11 app from the subcommand files and
// turns InputError into a message and exit status 2.
#include <cstdlib>
#include <iostream>
#include <systemc>

#include "isa/chip_config.h"
#include "tools/commands.h"

int sc_main(int argc, char* argv[]) {
  CLI::App app{"lpusim: cycle-accurate simulator and static compiler for an LPU-style tensor streaming processor"};
  app.require_subcommand(0, 1);
  lpu::cli::register_isa(app);
  lpu::cli::register_config(app);
  lpu::cli::register_asm(app);
  lpu::cli::register_sim(app);
  lpu::cli::register_compile(app);
  lpu::cli::register_sweep(app);
  lpu::cli::register_regress(app);
  lpu::cli::register_llm_config(app);
  lpu::cli::register_llm(app);
  lpu::cli::register_validate(app);
  lpu::cli::register_conformance(app);
  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) {
      std::cout << app.help();
      return 0;
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lpu::InputError& e) {
    std::cerr << "lpusim: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lpusim: internal error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}

// Our own main (instead of libsystemc's) so that SystemC does not greet users with its banner.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
