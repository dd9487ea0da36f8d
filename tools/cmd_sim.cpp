// `lpusim sim PROGRAM`: runs a .lpu or .s program on the simulator and prints the report;
// optional JSON report and Chrome trace. Exit 1 on a schedule error, 2 on bad input (main.cpp).
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "isa/asm.h"
#include "isa/program_io.h"
#include "sim/report.h"
#include "sim/simulator.h"
#include "sim/trace.h"
#include "tools/cli_io.h"
#include "tools/commands.h"
#include "tools/host_guard.h"

namespace lpu::cli {

namespace {

struct SimArgs {
  std::string program;
  std::string chip;
  std::string mode = "functional";
  std::string json_path;
  std::string trace_path;
  bool force = false;  // skip the up-front host-memory check
};


void run_sim(const SimArgs& a) {
  const std::shared_ptr<const ChipConfig> cfg = chip_or_default(a.chip);
  sim::SimOptions opt;
  if (a.mode == "functional") {
    opt.mode = sim::Mode::Functional;
  } else if (a.mode == "timing") {
    opt.mode = sim::Mode::Timing;
  } else {
    throw InputError(fmt::format("--mode: '{}' is not a mode (allowed: functional, timing)", a.mode));
  }
  // Assembly keeps a source map so schedule errors name the .s line; anything else is binary.
  SourceMap map;
  const Program prog = ends_with(a.program, ".s")
                           ? assemble(read_text_file(a.program, "an assembly file"), a.program, *cfg, &map)
                           : read_program_file(a.program);
  if (ends_with(a.program, ".s")) opt.source_map = &map;
  validate_program(prog, *cfg, a.program);  // against the chosen config, naming the file
  opt.record_trace = !a.trace_path.empty();
  guard_simulation(prog, *cfg, opt, a.program, a.force);  // before anything is allocated

  sim::SimResult r;
  try {
    r = sim::simulate(prog, *cfg, opt);
  } catch (const sim::SimError& e) {
    std::cerr << "lpusim: schedule error: " << e.what() << "\n";  // what() starts with the rule id
    throw CLI::RuntimeError(1);
  }
  std::cout << sim::text_report(prog, *cfg, r);
  if (!a.json_path.empty()) write_text_file(a.json_path, sim::json_report(prog, *cfg, r).dump(2) + "\n", "--json");
  if (!a.trace_path.empty()) sim::write_chrome_trace_file(a.trace_path, prog, *cfg, r);
}

}  // namespace

void register_sim(CLI::App& app) {
  auto args = std::make_shared<SimArgs>();
  CLI::App* sub = app.add_subcommand("sim", "Simulate a program (.lpu binary or .s assembly) and print its report");
  sub->add_option("program", args->program, "program file (.lpu or .s)")->required();
  sub->add_option("--chip", args->chip, "chip configuration YAML (default: built-in tsp-v1)");
  sub->add_option("--mode", args->mode, "functional (computes values) or timing (cycles only; same cycle count)");
  sub->add_option("--json", args->json_path, "also write the report as JSON (docs/report-schema.md)");
  sub->add_option("--trace", args->trace_path, "write a Chrome/Perfetto trace (1 us = 1 cycle)");
  sub->add_flag("--force", args->force, "run even if the estimated host memory exceeds what is available");
  sub->callback([args]() { run_sim(*args); });
}

}  // namespace lpu::cli
