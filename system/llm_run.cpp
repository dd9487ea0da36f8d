// run_llm and the LLM reports (see llm_run.h, docs/llm-system.md, docs/report-schema.md).
#include "system/llm_run.h"

#include <memory>

#include <algorithm>
#include <fmt/format.h>

namespace lpu::system {

namespace {

double us(const StepResult& s) { return s.seconds * 1e6; }

std::string mib(uint64_t b) { return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1024.0 * 1024.0)); }

const llm::StagePlan& fullest(const llm::Plan& p) {
  const llm::StagePlan* w = &p.stages.front();
  for (const llm::StagePlan& s : p.stages)
    if (s.total() > w->total()) w = &s;
  return *w;
}

nlohmann::ordered_json step_json(const StepResult& s, double clock) {
  using J = nlohmann::ordered_json;
  J pieces = J::array();
  for (const PieceUse& u : s.pieces)
    pieces.push_back(J{{"label", u.label},
                       {"chips", u.chips},
                       {"cycles", u.cycles},
                       {"compute_cycles", u.compute_cycles},
                       {"starts", u.count},
                       {"chip_runs", u.instances},
                       {"dynamic_energy_j", u.dynamic_j}});
  return J{{"phase", s.shape.phase == llm::Phase::Prefill ? "prefill" : "decode"},
           {"batch", s.shape.batch},
           {"tokens", s.shape.tokens},
           {"context", s.shape.context},
           {"cycles", s.cycles},
           {"latency_us", s.seconds * 1e6},
           {"host_transfer_us", s.host_seconds * 1e6},
           {"compute_cycles", s.compute_cycles},
           {"onchip_cycles", s.onchip_cycles},
           {"c2c_cycles", s.c2c_cycles},
           {"dynamic_energy_j", s.dynamic_j},
           {"static_energy_j", s.static_j},
           {"energy_j", s.energy_j},
           {"pieces", pieces}};
}

}  // namespace

LlmRun run_llm(const ChipConfig& chip, const llm::LlmConfig& model, const llm::PlanRequest& req,
               SegmentBuilder build, bool with_prefill, const std::string& piece_graphs, SegmentBuilder fallback) {
  LlmRun run;
  run.model = model;
  run.request = req;
  run.chip_name = chip.name;
  run.piece_graphs = piece_graphs;
  run.decoder = model.causal;
  run.has_prefill = with_prefill || !run.decoder;
  run.phase = run.has_prefill ? "all" : "decode";
  std::unique_ptr<LlmSystem> chosen =
      choose_split(chip, model, req, llm::plan_candidates(model, req, chip), build, fallback, &run.split);
  LlmSystem& sys = *chosen;
  run.plan = sys.plan();
  const llm::StepShape pre = llm::prefill_step(req.batch, req.prompt);
  if (run.has_prefill) run.prefill = sys.step(pre);
  if (run.decoder) {
    const llm::StepShape d1 = llm::decode_step(req.batch, req.prompt);
    if (run.has_prefill) run.first_decode = sys.step(d1);
    const llm::StepShape dc = llm::decode_step(req.batch, req.context);
    run.decode = run.has_prefill && req.context == req.prompt ? run.first_decode : sys.step(dc);
    run.ttft_us = run.has_prefill ? us(run.prefill) + us(run.first_decode) : 0.0;
    run.token_latency_us = us(run.decode);
  } else {
    run.ttft_us = us(run.prefill);
    run.token_latency_us = us(run.prefill);
  }
  const StepResult& tok = run.decoder ? run.decode : run.prefill;
  run.serving = pipeline_serving(tok, req.in_flight, run.decoder ? 1 : req.prompt, static_cast<uint32_t>(run.plan.chips),
                                 chip);
  run.tokens_per_second_per_user = run.serving.tokens_per_second_per_user;
  run.tokens_per_second = run.serving.tokens_per_second;
  run.tokens_per_joule = run.serving.tokens_per_joule;
  run.power_w = run.serving.power_w;
  run.simulations = sys.runner().simulations();
  run.compiles = sys.runner().compiles();
  run.compile_seconds = sys.runner().compile_seconds();
  run.simulate_seconds = sys.runner().simulate_seconds();
  for (const StepResult* st : {&run.prefill, &run.first_decode, &run.decode})
    for (const std::string& w : st->standins)
      if (std::find(run.standins.begin(), run.standins.end(), w) == run.standins.end()) run.standins.push_back(w);
  if (!run.standins.empty()) run.piece_graphs += "+dense-standin";
  return run;
}

LlmRun plan_llm(const ChipConfig& chip, const llm::LlmConfig& model, const llm::PlanRequest& req) {
  LlmRun run;
  run.model = model;
  run.request = req;
  run.chip_name = chip.name;
  run.phase = "plan";
  run.piece_graphs = "";
  run.decoder = model.causal;
  run.has_prefill = false;
  run.plan = llm::plan_partition(model, req, chip);
  return run;
}

nlohmann::ordered_json llm_json_report(const LlmRun& run, const ChipConfig& chip) {
  using J = nlohmann::ordered_json;
  const llm::StagePlan& st = fullest(run.plan);
  const StepResult& tok = run.decoder ? run.decode : run.prefill;
  const double clock = chip.clock_hz;
  const bool plan_only = run.phase == "plan";
  J j;
  j["schema_version"] = 1;
  j["tool"] = "lpusim";
  j["kind"] = "llm";
  j["phase"] = run.phase;
  j["chips"] = run.plan.chips;
  // Phase plan: the plan's keys only (nothing was timed); phase decode: no ttft_us (not measured).
  if (run.has_prefill) j["ttft_us"] = run.ttft_us;
  if (!plan_only) {
    j["token_latency_us"] = run.token_latency_us;
    j["tokens_per_second"] = run.tokens_per_second;
    j["tokens_per_second_per_user"] = run.tokens_per_second_per_user;
    j["tokens_per_joule"] = run.tokens_per_joule;
    j["power_w"] = run.power_w;
  }
  j["model"] = run.model.name;
  j["family"] = run.model.family;
  j["decoder"] = run.decoder;
  j["config"] = chip.name;
  j["precision"] = llm::precision_name(run.request.precision);
  if (!plan_only) {
    j["timing_precision"] = llm::precision_name(run.request.precision);  // pieces compiled at the weights' precision
    j["piece_graphs"] = run.piece_graphs;
    j["standin_pieces"] = run.standins;
  }
  j["batch"] = run.request.batch;
  j["in_flight"] = run.request.in_flight;
  j["prompt"] = run.request.prompt;
  j["context"] = run.request.context;
  j["tensor_parallel"] = run.plan.tp;
  j["pipeline_stages"] = run.plan.stages.size();
  j["sram_per_chip"] = J{{"capacity_bytes", run.plan.sram_per_chip},
                         {"usable_bytes", run.plan.usable_per_chip},
                         {"weights_bytes", st.weight_bytes},
                         {"kv_cache_bytes", st.kv_bytes},
                         {"working_set_bytes", st.work_bytes},
                         {"used_percent", 100.0 * static_cast<double>(st.total()) /
                                              static_cast<double>(run.plan.sram_per_chip)}};
  if (plan_only) return j;
  J opts = J::array();
  for (const SplitOption& o : run.split.options)
    opts.push_back(J{{"tensor_parallel", o.tp},
                     {"pipeline_stages", o.stages},
                     {"chips", o.chips},
                     {"install_bound_cycles", o.bound_cycles},
                     {"cycles", o.cycles},
                     {"step_us", o.seconds * 1e6},
                     {"period_cycles", o.cost_cycles},
                     {"status", o.status}});
  j["split"] = J{{"deciding_step", run.split.step}, {"options", opts}};
  j["token_time"] = J{{"cycles", tok.cycles},
                      {"compute_us", static_cast<double>(tok.compute_cycles) / clock * 1e6},
                      {"onchip_data_movement_us", static_cast<double>(tok.onchip_cycles) / clock * 1e6},
                      {"chip_to_chip_us", static_cast<double>(tok.c2c_cycles) / clock * 1e6},
                      {"host_transfer_us", tok.host_seconds * 1e6}};
  j["pipeline"] = J{{"in_flight", run.serving.in_flight},
                    {"busiest_chip_cycles", run.serving.busiest_chip_cycles},
                    {"interval_us", run.serving.interval_seconds * 1e6},
                    {"period_us", run.serving.period_seconds * 1e6},
                    {"full_at", run.serving.full_at}};
  j["distinct_programs_simulated"] = run.simulations;
  J steps = J::array();
  if (run.has_prefill) steps.push_back(step_json(run.prefill, clock));
  if (run.decoder) {
    if (run.has_prefill) steps.push_back(step_json(run.first_decode, clock));
    if (!run.has_prefill || run.request.context != run.request.prompt) steps.push_back(step_json(run.decode, clock));
  }
  j["steps"] = steps;
  return j;
}

std::string llm_text_report(const LlmRun& run, const ChipConfig& chip) {
  const llm::StagePlan& st = fullest(run.plan);
  const StepResult& tok = run.decoder ? run.decode : run.prefill;
  const double clock = chip.clock_hz;
  // Shares of the step's time: the chips' cycles plus the host transfers around them.
  const double step_s = tok.seconds;
  auto pct_s = [&](double secs) { return step_s > 0 ? 100.0 * secs / step_s : 0.0; };
  auto pct = [&](uint64_t c) { return pct_s(static_cast<double>(c) / clock); };
  std::string s;
  auto line = [&](const std::string& l) { s += l + "\n"; };
  line(fmt::format("model         {} ({}), weights {}, timing of {} programs", run.model.name, run.model.family,
                   llm::precision_name(run.request.precision), llm::precision_name(run.request.precision)));
  line(fmt::format("system        {} chips of {}: tensor-parallel {} x {} pipeline stages", run.plan.chips, chip.name,
                   run.plan.tp, run.plan.stages.size()));
  line(fmt::format("request       batch {}, prompt {}, context {}{}", run.request.batch, run.request.prompt,
                   run.request.context,
                   run.request.in_flight > 1 ? fmt::format(", {} groups in flight", run.request.in_flight) : ""));
  line(fmt::format("SRAM per chip weights {}, KV cache {}, working set {} (estimate) = {:.1f}% of {}",
                   mib(st.weight_bytes), mib(st.kv_bytes), mib(st.work_bytes),
                   100.0 * static_cast<double>(st.total()) / static_cast<double>(run.plan.sram_per_chip),
                   mib(run.plan.sram_per_chip)));
  if (run.phase == "plan") {
    line("method        the partition plan only (--phase plan): nothing compiled or simulated (docs/llm-system.md)");
    return s;
  }
  if (run.split.options.size() > 1) {
    line(fmt::format("split         tp {} chosen of {} that fit: the shortest {} (docs/llm-system.md \"Choosing the "
                     "split\")",
                     run.plan.tp, run.split.options.size(), run.split.step));
    for (const SplitOption& o : run.split.options)
      line(fmt::format("  tp {:>2} x {:>3} stages = {:>4} chips: install bound {:>9} cycles, {}", o.tp, o.stages, o.chips,
                       o.bound_cycles,
                       o.cycles ? fmt::format("step {} cycles ({:.2f} us with the host transfer){}, {}", o.cycles,
                                              o.seconds * 1e6,
                                              run.request.in_flight > 1 ? fmt::format(", period {}", o.cost_cycles) : "",
                                              o.status)
                                : o.status));
  }
  if (run.decoder && run.has_prefill) {
    line(fmt::format("TTFT          {:.2f} us (prefill {:.2f} us + first token {:.2f} us)", run.ttft_us,
                     run.prefill.seconds * 1e6, run.first_decode.seconds * 1e6));
  }
  if (run.decoder) {
    line(fmt::format("token latency {:.2f} us at context {} ({} cycles on the chips + host transfer)",
                     run.token_latency_us, run.request.context, tok.cycles));
  } else {
    line(fmt::format("forward pass  {:.2f} us for {} tokens ({} cycles on the chips + host transfer)",
                     run.token_latency_us, run.request.prompt,
                     tok.cycles));
  }
  const PipelineServing& sv = run.serving;
  line(fmt::format("pipeline      {} group{} of {} in flight: a group enters every {:.2f} us (busiest chip {} cycles{}), "
                   "each group gets a {} every {:.2f} us; {} group{} fill the pipeline (--in-flight)",
                   sv.in_flight, sv.in_flight > 1 ? "s" : "", run.request.batch, sv.interval_seconds * 1e6,
                   sv.busiest_chip_cycles,
                   sv.interval_seconds * clock > static_cast<double>(sv.busiest_chip_cycles) + 0.5 ? ", host link longer" : "",
                   run.decoder ? "token" : "pass", sv.period_seconds * 1e6, sv.full_at, sv.full_at > 1 ? "s" : ""));
  // An encoder generates nothing: its tokens/s counts prompt tokens through the model (a pass of
  // `prompt` tokens per user), said so next to the figure, with the passes per second.
  line(fmt::format("tokens/s      {:.1f} per user, {:.1f} aggregate (batch {} x {} in flight){}",
                   run.tokens_per_second_per_user, run.tokens_per_second, run.request.batch, run.request.in_flight,
                   run.decoder ? std::string()
                               : fmt::format("; an encoder has no decode: prompt tokens through the model, {:.1f} "
                                             "passes of {} tokens a second per user",
                                             run.tokens_per_second_per_user / static_cast<double>(run.request.prompt),
                                             run.request.prompt)));
  line(fmt::format("tokens/J      {:.4f}; average system power {:.1f} W ({:.1f} W per chip)", run.tokens_per_joule,
                   run.power_w, run.power_w / static_cast<double>(run.plan.chips)));
  line(fmt::format("token time    compute {:.2f} us ({:.1f}%), on-chip data movement {:.2f} us ({:.1f}%), "
                   "chip-to-chip {:.2f} us ({:.1f}%), host transfer {:.2f} us ({:.1f}%{})",
                   static_cast<double>(tok.compute_cycles) / clock * 1e6, pct(tok.compute_cycles),
                   static_cast<double>(tok.onchip_cycles) / clock * 1e6, pct(tok.onchip_cycles),
                   static_cast<double>(tok.c2c_cycles) / clock * 1e6, pct(tok.c2c_cycles), tok.host_seconds * 1e6,
                   pct_s(tok.host_seconds), chip.host_link_bytes_per_s > 0 ? "" : ": no host link in the chip config"));
  line(fmt::format("method        composition of {} distinct cycle-accurate programs run back to back "
                   "(docs/llm-system.md)", run.simulations));
  if (run.piece_graphs == "dense-standin")
    line("pieces        DENSE STAND-INS: projections only; attention scores, softmax, RoPE, norms and MoE gating "
         "are omitted (system/standin_segments.h)");
  for (const std::string& w : run.standins)
    line("WARNING       the front end's graph of this piece does not compile; it is timed as a DENSE STAND-IN "
         "(projections only, system/standin_segments.h): " + w);
  line("pieces of one token (cycles, starts per token):");
  for (const PieceUse& u : tok.pieces)
    line(fmt::format("  {:<48} {:>10} x {}", u.label, u.cycles, u.count));
  return s;
}

}  // namespace lpu::system
