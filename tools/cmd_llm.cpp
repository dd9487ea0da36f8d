// `lpusim llm CONFIG.json ...`: plan an LLM on a multi-chip system, compose its step time from
// once-simulated cycle-accurate pieces and print the LLM report (system/llm_run.h).
#include <filesystem>
#include <fmt/format.h>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "compiler/llm/llm_config.h"
#include "compiler/llm/partition.h"
#include "system/llm_run.h"
#include "system/standin_segments.h"
#include "tools/cli_io.h"
#include "tools/cmd_llm_functional.h"
#include "tools/commands.h"

namespace lpu::cli {

namespace {

struct LlmArgs {
  std::string config, chip, json, precision = "fp16", pieces = "segments";
  int64_t prompt = 128, context = -1, batch = 1, chips = 0, tp = 0, in_flight = 1;
  bool wall_time = false;
  bool all_splits = false;  // compose every split that fits (PlanRequest::all_splits)
  std::string phase = "all";  // all | decode | plan (system/llm_run.h LlmRun::phase)
  std::string mode = "timing";  // timing | functional (cmd_llm_functional.h)
  uint64_t seed = 1;            // functional: model seed of the random weights and inputs
};

llm::WeightPrecision parse_precision(const std::string& p) {
  if (p == "fp16") return llm::WeightPrecision::FP16;
  if (p == "int8") return llm::WeightPrecision::INT8;
  throw InputError(fmt::format("--precision: '{}' is not a precision (allowed: fp16, int8)", p));
}

// A path, or a name of workloads/llm/<name>.json.
llm::LlmConfig load_model(const std::string& arg) {
  if (arg.find('/') == std::string::npos && !ends_with(arg, ".json")) {
    const std::string found = find_repo_file("workloads/llm/" + arg + ".json");
    if (!found.empty()) return llm::load_llm_config(found);
    std::error_code ec;
    if (!std::filesystem::exists(arg, ec))
      throw InputError(fmt::format("'{}' is neither a file nor the name of a config in workloads/llm (e.g. gpt2, "
                                   "llama-2-7b, llama-3-8b, mixtral-8x7b)", arg));
  }
  return llm::load_llm_config(arg);
}

void run_llm_cmd(const LlmArgs& a) {
  auto chip = chip_or_default(a.chip);
  const llm::LlmConfig m = load_model(a.config);
  if (a.mode == "functional") {
    // Timing-report options have no meaning here: refuse them rather than ignore them.
    const std::vector<std::pair<bool, std::string>> timing_only = {
        {a.precision != "fp16", "--precision " + a.precision + " (functional mode runs fp16 programs)"},
        {!a.json.empty(), "--json"},
        {a.pieces != "segments", "--pieces " + a.pieces},
        {a.wall_time, "--wall-time"},
        {a.phase != "all", "--phase " + a.phase},
        {a.all_splits, "--all-splits"},
        {a.in_flight != 1, "--in-flight " + std::to_string(a.in_flight)}};
    for (const auto& [set, what] : timing_only)
      if (set) throw InputError(fmt::format("{}: not available with --mode functional (a timing-mode option)", what));
    LlmFunctionalArgs f;
    f.prompt = a.prompt;
    f.context = a.context < 0 ? a.prompt : a.context;
    f.batch = a.batch;
    f.chips = a.chips;
    f.tp = a.tp;
    f.seed = a.seed;
    if (!run_llm_functional(*chip, m, f)) throw CLI::RuntimeError(1);
    return;
  }
  if (a.mode != "timing")
    throw InputError(fmt::format("--mode: '{}' is not a mode (allowed: timing, functional)", a.mode));
  llm::PlanRequest req;
  req.precision = parse_precision(a.precision);
  req.batch = a.batch;
  req.in_flight = a.in_flight;
  req.prompt = a.prompt;
  req.context = a.context < 0 ? a.prompt : a.context;
  req.chips = a.chips;
  req.tp = a.tp;
  req.all_splits = a.all_splits;
  if (a.phase != "all" && a.phase != "decode" && a.phase != "plan")
    throw InputError(fmt::format("--phase: '{}' is not a phase (allowed: all, decode, plan)", a.phase));
  if (a.all_splits && a.tp != 0)
    throw InputError(fmt::format("--all-splits: --tp {} leaves one split to run (allowed: --all-splits without --tp)",
                                 a.tp));
  if (a.all_splits && a.phase == "plan")
    throw InputError("--all-splits: --phase plan composes nothing (allowed: --phase all or decode)");
  if (a.phase == "plan") {  // the planner alone: nothing compiled or simulated
    const system::LlmRun run = system::plan_llm(*chip, m, req);
    std::cout << system::llm_text_report(run, *chip);
    if (!a.json.empty()) write_text_file(a.json, system::llm_json_report(run, *chip).dump(2) + "\n", "--json");
    return;
  }
  system::SegmentBuilder build, fallback;
  const system::SegmentBuilder standin = [m](const llm::SegmentSpec& s, int64_t) { return system::standin_segment(m, s); };
  if (a.pieces == "dense-standin")
    build = standin;
  else if (a.pieces == "segments")
    fallback = standin;  // per piece, only where the front end's graph does not compile; reported loudly
  else if (a.pieces != "segments-strict")
    throw InputError(fmt::format("--pieces: '{}' is not a piece model (allowed: segments, segments-strict, dense-standin)",
                                 a.pieces));
  const system::LlmRun run =
      system::run_llm(*chip, m, req, build, a.phase == "all", a.pieces == "dense-standin" ? a.pieces : "segments",
                      fallback);
  if (!run.standins.empty())
    std::cerr << "lpusim llm: WARNING: " << run.standins.size()
              << " piece(s) timed as DENSE STAND-INS because their graphs do not compile (see the report)\n";
  if (a.wall_time)
    std::cerr << fmt::format("lpusim llm: host wall time: compiling {} piece graphs {:.1f} s, simulating {} programs "
                             "{:.1f} s; composing the other splits {:.1f} s\n",
                             run.compiles, run.compile_seconds, run.simulations, run.simulate_seconds,
                             run.split.search_seconds);
  std::cout << system::llm_text_report(run, *chip);
  if (!a.json.empty()) write_text_file(a.json, system::llm_json_report(run, *chip).dump(2) + "\n", "--json");
}

}  // namespace

// The default main job (`lpusim run` with no MODEL; the README's run command): one Llama-2 7B
// decode step on the default system. Llama-2 7B is the largest workloads/llm model whose pieces
// all compile as the front end's real graphs at tp 8 and whose whole run (prefill of 128 tokens,
// first token, report) takes well under a minute of host CPU here (README, docs/llm-system.md).
void run_default_llm(const std::string& chip, const std::string& json, const std::string& precision) {
  LlmArgs a;
  a.config = "llama-2-7b";
  a.chip = chip;
  a.json = json;
  if (!precision.empty()) a.precision = precision;
  a.tp = 8;
  a.prompt = 128;
  std::cout << "default workload: llama-2-7b (workloads/llm/llama-2-7b.json), batch 1, prompt 128, decode at "
               "context 128, tensor-parallel 8 (`lpusim llm --help` for other models and shapes)\n";
  run_llm_cmd(a);
}

void register_llm(CLI::App& app) {
  auto a = std::make_shared<LlmArgs>();
  CLI::App* c = app.add_subcommand("llm", "Serve an LLM on a multi-chip system: TTFT, token latency, tokens/s, tokens/J");
  c->add_option("config", a->config, "config.json (or a name in workloads/llm, e.g. llama-2-7b)")->required();
  c->add_option("--prompt", a->prompt, "prompt length P (default 128)");
  c->add_option("--context", a->context, "context C of the decode token (default: P)");
  c->add_option("--batch", a->batch, "sequences served together (default 1)");
  c->add_option("--in-flight", a->in_flight,
                "groups of --batch sequences in flight through the pipeline stages, each with its own KV cache "
                "(default 1; the report's pipeline line says how many fill it; docs/llm-system.md \"Pipelined serving\")");
  c->add_option("--chips", a->chips, "use exactly N chips (default: the fewest that fit)");
  c->add_option("--tp", a->tp, "tensor-parallel size (default: of the sizes that fit, the one with the shortest composed token; the report's split lines list them)");
  c->add_option("--precision", a->precision, "weights: fp16 (default) or int8 (capacity, and the pieces compiled int8: projections i8, the rest fp16)");
  c->add_option("--chip", a->chip, "chip configuration YAML (default: built-in tsp-v1)");
  c->add_option("--json", a->json, "also write the LLM report as JSON");
  c->add_option("--pieces", a->pieces,
                "segments (default: the front end's graphs; a piece whose graph does not compile is timed as a dense "
                "stand-in and reported), segments-strict (fail instead) or dense-standin (projections only; see "
                "docs/llm-system.md)");
  c->add_flag("--all-splits", a->all_splits,
              "compose every tensor-parallel size that fits, none skipped by its install bound: the report's "
              "split lines give each one's step (the split run is the same)");
  c->add_flag("--wall-time", a->wall_time, "print the host time spent compiling and simulating pieces (stderr)");
  c->add_option("--phase", a->phase,
                "all (default: prefill, first token and the decode token at --context), decode (the decode token only: "
                "no TTFT, faster) or plan (the partition planner only: chips and SRAM per chip, nothing simulated)");
  c->add_option("--mode", a->mode,
                "timing (default: the LLM report) or functional (small models only: the values of a prefill and a "
                "decode step through the simulated chips and collectives, checked against the Eigen reference; prints "
                "the logits' top-5 token ids and the max error)");
  c->add_option("--seed", a->seed, "functional mode: seed of the random weights and inputs (default 1)");
  c->callback([a]() { run_llm_cmd(*a); });

}

}  // namespace lpu::cli
