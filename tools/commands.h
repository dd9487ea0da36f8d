// Subcommands of the `lpusim` command line; each lives in its own cmd_*.cpp and registers itself
// on the CLI11 app. Commands report bad input by throwing lpu::InputError (printed by main).
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace lpu::cli {

void register_isa(CLI::App& app);      // lpusim isa            (cmd_isa.cpp)
void register_config(CLI::App& app);   // lpusim config show    (cmd_config.cpp)
void register_asm(CLI::App& app);      // lpusim asm / disasm   (cmd_asm.cpp)
void register_sim(CLI::App& app);      // lpusim sim            (cmd_sim.cpp)
void register_compile(CLI::App& app);  // lpusim compile / run / check (cmd_compile.cpp)
void register_sweep(CLI::App& app);    // lpusim sweep / sweep merge (cmd_sweep.cpp)
void register_regress(CLI::App& app);  // lpusim regress           (cmd_regress.cpp)
void register_llm_config(CLI::App& app);  // lpusim llm-config   (cmd_llm_config.cpp)
void register_llm(CLI::App& app);         // lpusim llm         (cmd_llm.cpp)
void register_validate(CLI::App& app);    // lpusim validate    (cmd_validate.cpp)
void register_conformance(CLI::App& app);  // lpusim conformance (cmd_conformance.cpp)
// `lpusim run` with no MODEL: the default LLM decode (cmd_llm.cpp); chip/json/precision as given
// to `run` (empty = defaults).
void run_default_llm(const std::string& chip, const std::string& json, const std::string& precision);

}  // namespace lpu::cli
