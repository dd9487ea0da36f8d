// `lpusim regress GOLDEN.json [--current REPORT.json | WORKLOAD]`: compares a run's JSON report with
// a golden one and prints what moved; exit 1 on any cycle change (and other changes beyond the
// tolerance), 0 when identical (docs/regress.md). The comparison is in sweep/regress.h.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "isa/chip_config.h"
#include "sweep/regress.h"
#include "sweep/results.h"
#include "sweep/subprocess.h"
#include "tools/cli_io.h"
#include "tools/commands.h"

namespace lpu::cli {

namespace {

struct RegressArgs {
  std::string golden;
  std::string workload;
  std::string current;
  std::string chip;
  std::string precision;
  std::string mode;
  std::string lpusim;
  std::string save;
  double tolerance_pct = -1;
};

nlohmann::ordered_json load_report(const std::string& path, const std::string& what) {
  const std::string text = sweep::read_text(path);
  try {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(text);
    if (!j.is_object() || !j.contains("cycles"))
      throw InputError(fmt::format("{}: {} is not an lpusim JSON report (no top-level \"cycles\"; see "
                                   "docs/report-schema.md)", path, what));
    return j;
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(fmt::format("{}: {} is not valid JSON: {}", path, what, e.what()));
  }
}

// Runs WORKLOAD with this lpusim into a temporary JSON report and loads it.
nlohmann::ordered_json run_current(const RegressArgs& a) {
  char tmpl[] = "/tmp/lpusim-regress-XXXXXX";
  if (!mkdtemp(tmpl)) throw InputError("regress: cannot create a temporary directory in /tmp");
  const std::filesystem::path tmp(tmpl);
  struct RemoveDir {  // the temporary folder goes whatever happens
    std::filesystem::path p;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
    }
  } remove_tmp{tmp};
  const std::string report = a.save.empty() ? (tmp / "current.json").string() : a.save;
  const std::string log = (tmp / "run.log").string();
  const bool program = ends_with(a.workload, ".s") || ends_with(a.workload, ".lpu");
  std::vector<std::string> argv = {a.lpusim.empty() ? sweep::self_exe() : a.lpusim, program ? "sim" : "run", a.workload};
  if (!a.chip.empty()) argv.insert(argv.end(), {"--chip", a.chip});
  if (!a.precision.empty()) {
    if (program) throw InputError(fmt::format("--precision: applies to models, not to the program {}", a.workload));
    argv.insert(argv.end(), {"--precision", a.precision});
  }
  if (!a.mode.empty()) argv.insert(argv.end(), {"--mode", a.mode});
  argv.insert(argv.end(), {"--json", report});
  const sweep::ExitStatus st = sweep::run_logged(argv, log);
  std::error_code ec;
  if (!std::filesystem::exists(report, ec))
    throw InputError(fmt::format("regress: running {} failed ({}): {}", a.workload, st.text(), sweep::tail_text(log)));
  return load_report(report, "the current report");
}

void run_regress(const RegressArgs& a) {
  if (a.current.empty() == a.workload.empty())
    throw InputError("regress: give the current run either as --current REPORT.json or as a WORKLOAD to run (a .s/.lpu "
                     "program, an .onnx model or gemm:MxKxN), exactly one of them");
  if (a.tolerance_pct != -1 && a.tolerance_pct < 0)
    throw InputError(fmt::format("--tolerance-pct: must be >= 0; got {}", a.tolerance_pct));
  const nlohmann::ordered_json golden = load_report(a.golden, "the golden report");
  const nlohmann::ordered_json current = a.current.empty() ? run_current(a) : load_report(a.current, "the current report");
  const sweep::RegressResult r = sweep::compare_reports(golden, current, a.tolerance_pct);
  std::cout << sweep::regress_text(r, a.golden, a.current.empty() ? a.workload : a.current, a.tolerance_pct);
  if (r.failed) throw CLI::RuntimeError(1);
}

}  // namespace

void register_regress(CLI::App& app) {
  auto a = std::make_shared<RegressArgs>();
  CLI::App* s = app.add_subcommand("regress",
                                   "Compare a run's JSON report with a golden report; exit 1 on any cycle change");
  s->add_option("golden", a->golden, "golden JSON report (lpusim sim/run --json)")->required();
  s->add_option("workload", a->workload, "program (.s/.lpu) or model (.onnx, gemm:MxKxN) to run now and compare");
  s->add_option("--current", a->current, "compare this JSON report instead of running a workload");
  s->add_option("--chip", a->chip, "chip configuration YAML for the run (default: built-in tsp-v1)");
  s->add_option("--precision", a->precision, "precision for a model run (int8, fp16)");
  s->add_option("--mode", a->mode, "simulation mode for the run (functional, timing)");
  s->add_option("--save", a->save, "keep the current run's JSON report in this file");
  s->add_option("--tolerance-pct", a->tolerance_pct,
                "allow non-cycle figures to move by up to this percentage (default: exact equality)");
  s->add_option("--lpusim", a->lpusim, "lpusim executable for the run (default: this one)");
  s->callback([a]() { run_regress(*a); });
}

}  // namespace lpu::cli
