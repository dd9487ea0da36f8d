// `lpusim validate [-o FILE] [--json FILE] [--row NAME ...] [--resnet50 FILE]`: the published
// results of /work/shared/design/machine.md section 8, each simulated under its stated conditions,
// against the simulator as a markdown table with an account of every gap (docs/validation.md), and
// as JSON (docs/report-schema.md "Validation report").
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compiler/backend/matmul_kernel.h"  // mxm_plane_count
#include "compiler/compile.h"
#include "compiler/frontends/onnx_import.h"
#include "compiler/llm/llm_config.h"
#include "compiler/llm/partition.h"
#include "compiler/passes/stage_spans.h"
#include "sim/simulator.h"
#include "system/llm_run.h"
#include "system/prediction_check.h"
#include "system/standin_segments.h"
#include "tools/cli_io.h"
#include "tools/commands.h"

namespace lpu::cli {

namespace {

// What a row's run writes besides its value: the note, the conditions simulated (preset to the
// row's stated ones) and, for an LLM decode row, the model's layers (0 otherwise).
struct RowOut {
  std::string note, cond;
  int64_t decode_layers = 0;
};

struct Row {
  std::string workload, published_text, unit, conditions, source;
  double published = 0;
  // The simulated value (may throw), given the published one (a decode row places it among its splits).
  std::function<double(double published, RowOut* out)> run;
  std::string gap;  // account of the gap: the mechanisms behind it (no numbers that a rerun would change)
};

// Simulates a compiled single-chip program in timing mode; its cycles must equal the prediction.
uint64_t timed_cycles(const compiler::CompileResult& cr, const ChipConfig& chip, const char* what) {
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  const sim::SimResult r = sim::simulate(cr.program, chip, so);
  system::check_prediction(r, cr.program.predicted_cycles, &cr.predicted_streams, what);
  return r.cycles;
}

double gemm_tops(std::string* note, std::string* cond) {
  auto chip = default_chip_config();
  compiler::GemmProblem g;
  g.M = g.K = g.N = 2560;
  compiler::CompileOptions o;
  o.precision = compiler::Precision::INT8;
  const compiler::CompileResult cr = compiler::compile_gemm(g, *chip, o);
  const uint64_t cycles = timed_cycles(cr, *chip, "gemm");
  const double secs = static_cast<double>(cycles) / chip->clock_hz;
  *cond = fmt::format("int8 GEMM {}x{}x{}, 1 chip, {:.0f} MHz", g.M, g.K, g.N, chip->clock_hz / 1e6);
  *note = fmt::format("{} cycles; the MXM ceiling of tsp-v1 is {:.0f} TOPS (409,600 MAC/cycle); the rest is weight "
                      "loading between tiles and the pipeline fill/drain of one finite GEMM",
                      cycles, 2.0 * static_cast<double>(chip->peak_int8_macs_per_cycle()) * chip->clock_hz / 1e12);
  return 2.0 * static_cast<double>(cr.macs) / secs / 1e12;
}

// ResNet-50 images/s at batch 1 from an ONNX file the user generated (the model is about 100 MB, so it
// is not committed: `python3 scripts/make_models.py --resnet50 FILE`, torchvision's resnet50):
// compiled int8 as the published run is (convs and dense layers i8 x i8 -> i32, their inputs
// quantized on chip; timing needs no calibration data: scales never change the schedule, as for
// the LLM pieces) for the default chip, simulated in timing mode (cycles must equal the prediction).
double resnet50_images_per_s(const std::string& file, std::string* note, std::string* cond) {
  auto chip = default_chip_config();
  const ir::Graph g = frontend::import_onnx(file);
  compiler::CompileOptions o;
  o.precision = compiler::Precision::INT8;
  o.int8.timing_only = true;
  o.int8.onchip_quantize = true;
  const compiler::CompileResult cr = compiler::compile(g, *chip, o);
  const uint64_t cycles = timed_cycles(cr, *chip, "resnet50");
  *cond = "batch 1, 1 chip, int8 (validate --resnet50 FILE)";
  // The MXM floors of this lowering: every plane busy every cycle with `abc` (one row a cycle at
  // int8), or with `lw` (one weight row a cycle); the program cannot be shorter than either.
  const uint64_t planes = compiler::mxm_plane_count(*chip);
  const uint64_t abc_floor = (cr.stats.abc + planes - 1) / planes, lw_floor = (cr.stats.lw + planes - 1) / planes;
  *note = fmt::format("{} cycles at {:.0f} MHz, predicted == simulated; {:.1f} % MXM utilization ({} MACs at the "
                      "int8 rate); `build/bench/bench_conv_layers --int8 --steps FILE` breaks the cycles down per step. "
                      "MXM floors of this lowering: {} `abc` rows over {} planes = {} cycles, {} `lw` rows = {} "
                      "cycles, so at most {:.0f} images/s with every plane busy every cycle",
                      cycles, chip->clock_hz / 1e6,
                      100.0 * static_cast<double>(cr.macs) /
                          (static_cast<double>(cycles) * static_cast<double>(chip->peak_int8_macs_per_cycle())),
                      cr.macs, cr.stats.abc, planes, abc_floor, cr.stats.lw, lw_floor,
                      chip->clock_hz / static_cast<double>(std::max<uint64_t>(1, std::max(abc_floor, lw_floor))));
  // Per stage: the cycles it adds to the program's end (compiler/passes/stage_spans.h), and that
  // figure over its own `abc` and `lw` floors on the planes.
  std::string stages;
  for (const compiler::StageSpan& st : compiler::stage_spans(cr.spans)) {
    const uint64_t fa = (st.abc + planes - 1) / planes, fl = (st.lw + planes - 1) / planes;
    auto ratio = [&](uint64_t floor) {
      return floor ? fmt::format("{:.2f}x", static_cast<double>(st.added) / static_cast<double>(floor)) : std::string("-");
    };
    stages += fmt::format("{}{} {} ({} / {})", stages.empty() ? "" : ", ", st.name, st.added, ratio(fa), ratio(fl));
  }
  *note += ". Per stage, cycles added (and over the stage's own `abc` / `lw` floor): " + stages;
  return chip->clock_hz / static_cast<double>(cycles);
}

// A decode row's splits (composed with PlanRequest::all_splits): each one's tokens/s per user at
// batch 1 (1 / its step's seconds, host transfer included) and where `published` falls among those
// composed on the real graphs, e.g. "(tp 64 x 9 stages = 576 chips 539.9 tokens/s, chosen; ...):
// the published 300 lies between tp 16 (206.2) and tp 32 (354.1)".
std::string splits_note(const system::SplitChoice& c, double published) {
  std::string list;
  std::vector<std::pair<double, int64_t>> rates;  // (tokens/s, tp) of the real-graph splits composed
  for (size_t i = 0; i < c.options.size(); ++i) {
    const system::SplitOption& o = c.options[i];
    std::string fig;
    if (o.seconds > 0) {
      const double rate = 1.0 / o.seconds;
      const bool standin = o.status.rfind("stand-in", 0) == 0;
      fig = fmt::format("{:.1f} tokens/s{}", rate, i == c.chosen ? ", chosen" : standin ? ", " + o.status : "");
      if (!standin) rates.emplace_back(rate, o.tp);
    } else {
      fig = o.status.substr(0, o.status.find(':'));  // "not composed" / "does not compile": the reason is long
    }
    list += fmt::format("{}tp {} x {} stages = {} chips {}", list.empty() ? "" : "; ", o.tp, o.stages, o.chips, fig);
  }
  std::sort(rates.begin(), rates.end());
  std::string where;
  if (rates.empty()) {
    where = "none composed on the real graphs";
  } else if (published < rates.front().first) {
    where = fmt::format("the published {:.0f} is below every one (the slowest: tp {} {:.1f})", published,
                        rates.front().second, rates.front().first);
  } else if (published > rates.back().first) {
    where = fmt::format("the published {:.0f} is above every one (the fastest: tp {} {:.1f})", published,
                        rates.back().second, rates.back().first);
  } else {
    size_t i = 1;
    while (i + 1 < rates.size() && rates[i].first < published) ++i;
    where = fmt::format("the published {:.0f} lies between tp {} ({:.1f}) and tp {} ({:.1f})", published,
                        rates[i - 1].second, rates[i - 1].first, rates[i].second, rates[i].first);
  }
  return fmt::format("these chips, composed at batch 1 ({}): {}", list, where);
}

// One run of an LLM row's model on a plan request (llm_row's run_plan).
using PlanRunner = std::function<system::LlmRun(const llm::PlanRequest&)>;

// The weight-install bound of this plan (llm::install_bound_cycles): every projection weight of a
// chip is installed once per token (an encoder: once per pass), pieces run one after another.
std::string install_bound_note(const system::LlmRun& run, const system::StepResult& s, const llm::LlmConfig& m,
                               const ChipConfig& chip) {
  double weights = 0;
  for (const llm::PlanPiece& p : run.plan.pieces) weights += static_cast<double>(p.matrix_weights);
  const uint64_t bound = std::max<uint64_t>(1, llm::install_bound_cycles(run.plan, chip));
  const double bound_s = static_cast<double>(bound) / chip.clock_hz;
  return fmt::format(". Weight-install bound of this plan: {} ({:.3g} projection weights per chip "
                     "along the pipeline, {} weights/cycle per chip: one lw of {} weights per MXM plane per "
                     "cycle, tsp-v1 [assumed])",
                     m.causal ? fmt::format("{:.0f} tokens/s", 1.0 / bound_s)
                              : fmt::format("{:.1f} us a pass ({:.1f} us with the host transfer)", bound_s * 1e6,
                                            (bound_s + s.host_seconds) * 1e6),
                     weights, llm::install_weights_per_cycle(chip), chip.vector_bytes());
}

// A decode row on a tensor-parallel group wider than a node whose composed splits include none
// inside one node: the source states no split, so the same chips with the group kept inside one
// node (the largest valid tp <= the node size), for the reader to weigh the split's effect.
std::string node_split_note(const system::LlmRun& run, const llm::PlanRequest& req, const llm::LlmConfig& m,
                            const ChipConfig& chip, const PlanRunner& run_plan) {
  int64_t node_tp = 1;
  for (int64_t t : llm::valid_tp(m, chip))
    if (t <= static_cast<int64_t>(chip.chips_per_node)) node_tp = t;
  llm::PlanRequest one = req;
  one.tp = node_tp;
  one.chips = run.plan.chips;
  std::string where = fmt::format("on the same {} chips", run.plan.chips);
  system::LlmRun alt;
  try {
    try {
      alt = run_plan(one);
    } catch (const InputError&) {  // those chips cannot hold the model at tp <= the node: the fewest that can
      one.chips = 0;
      where = "on the fewest chips that fit it";
      alt = run_plan(one);
    }
  } catch (const InputError& e) {
    where = fmt::format("does not fit at tp {} ({})", node_tp, e.what());
  }
  if (alt.plan.chips > 0)
    return fmt::format(". Split sensitivity: {} with the tensor-parallel group inside one node (tp {} x {} "
                       "stages = {} chips, `--tp {}`): {:.1f} tokens/s",
                       where, alt.plan.tp, alt.plan.stages.size(), alt.plan.chips, node_tp,
                       alt.tokens_per_second_per_user);
  return ". Split sensitivity: inside one node it " + where;
}

// An encoder row on one chip: the source states no chip count either, so the same pass on every
// valid tensor-parallel group inside one node, for the reader to weigh what more chips would give
// (empty: no such group).
std::string encoder_tp_note(const llm::PlanRequest& req, const llm::LlmConfig& m, const ChipConfig& chip,
                            const PlanRunner& run_plan) {
  std::string alts;
  for (int64_t t : llm::valid_tp(m, chip)) {
    if (t <= 1 || t > static_cast<int64_t>(chip.chips_per_node)) continue;
    llm::PlanRequest one = req;
    one.tp = t;
    std::string fig;
    try {
      fig = fmt::format("tp {} {:.1f} us", t, run_plan(one).token_latency_us);
    } catch (const InputError& e) {
      fig = fmt::format("tp {} not run ({})", t, e.what());
    }
    alts += (alts.empty() ? "" : ", ") + fig;
  }
  if (alts.empty()) return "";
  return ". Chip-count sensitivity (the source states no chip count; the same pass on a tensor-parallel group "
         "inside one node, `--tp T`): " +
         alts;
}

// Decode tokens/s per user (or, for an encoder, the forward-pass latency in us), on the plan
// `lpusim llm` runs without --tp: `chips` of them (0: the fewest that fit), split at the
// tensor-parallel size whose token is shortest (system/split_choice.h). `published` is the row's
// published value (a decode row's note places it among the splits, splits_note).
double llm_row(const std::string& name, llm::WeightPrecision prec, int64_t context, int64_t chips, int64_t prompt,
               double published, RowOut* out) {
  std::string* note = &out->note;
  std::string* cond = &out->cond;
  auto chip = default_chip_config();
  const std::string path = find_repo_file("workloads/llm/" + name + ".json");
  if (path.empty()) throw InputError(fmt::format("workloads/llm/{}.json is not in the repository", name));
  const llm::LlmConfig m = llm::load_llm_config(path);
  out->decode_layers = m.causal ? m.layers : 0;
  llm::PlanRequest req;
  req.precision = prec;
  req.batch = 1;
  req.prompt = m.causal ? std::min<int64_t>(prompt, context) : prompt;
  req.context = context;
  req.chips = chips;
  // The source states no split: a decoder's row composes every split that fits (the choice is the
  // same) and the note places the published rate among them.
  req.all_splits = m.causal;
  // The front end's graphs; a piece whose graph does not compile is timed as a dense stand-in
  // (same weight matrices) and the row says so, naming the piece and the compile error. Every run
  // of the row (its plan and the sensitivity plans below) goes through run_plan.
  const system::SegmentBuilder standin = [m](const llm::SegmentSpec& s, int64_t) { return system::standin_segment(m, s); };
  const PlanRunner run_plan = [&](const llm::PlanRequest& r) {
    return system::run_llm(*chip, m, r, {}, /*with_prefill=*/!m.causal, "segments", standin);
  };
  system::LlmRun run;
  try {
    run = run_plan(req);
  } catch (const InputError& e) {
    throw InputError(fmt::format("not simulated: a {} piece, real or stand-in, does not fit one chip: {}",
                                 llm::precision_name(prec), e.what()));
  }
  const system::StepResult& s = m.causal ? run.decode : run.prefill;
  auto share = [&](uint64_t c) { return s.cycles ? 100.0 * static_cast<double>(c) / static_cast<double>(s.cycles) : 0.0; };
  const std::string chips_text =
      chips ? (run.plan.chips != chips
                   ? fmt::format(" ({} requested: {} stages of tp {} hold the model)", chips, run.plan.stages.size(),
                                 run.plan.tp)
                   : std::string())
            : std::string(" = fewest that fit");
  const std::string split_text =
      run.split.options.size() > 1
          ? fmt::format(", the tp with the shortest token of {} that fit (`split` in the report)", run.split.options.size())
          : std::string();
  *cond = m.causal ? fmt::format("batch 1, decode of token {} (context {}), {} weights, {} chips (tp {} x {} stages){}{}",
                                 context + 1, context, llm::precision_name(prec), run.plan.chips, run.plan.tp,
                                 run.plan.stages.size(), chips_text, split_text)
                   : fmt::format("batch 1, sequence {} [assumed], {} weights, {} chips (tp {} x {} stages){}", prompt,
                                 llm::precision_name(prec), run.plan.chips, run.plan.tp, run.plan.stages.size(),
                                 split_text);
  *note = fmt::format("chip time: compute {:.0f}%, on-chip data movement {:.0f}%, chip-to-chip {:.0f}%; plus {:.1f} us "
                      "of host transfer (rows in, {} out: host section of tsp-v1.yaml, [assumed]); {} distinct "
                      "programs simulated",
                      share(s.compute_cycles), share(s.onchip_cycles), share(s.c2c_cycles), s.host_seconds * 1e6,
                      m.causal ? "logits" : "hidden states", run.simulations);
  *note += prec == llm::WeightPrecision::INT8
               ? ". Pieces compiled int8: the projections run i8 x i8 -> i32 (inputs quantized on chip by the "
                 "step that produces them), everything else fp16 (docs/llm-system.md)"
               : ". Pieces compiled fp16";
  *note += install_bound_note(run, s, m, *chip);
  bool node_split_listed = false;  // a split inside one node is among those composed
  if (m.causal && run.split.options.size() > 1) {
    *note += ". Every split that fits " + splits_note(run.split, published) + " (`lpusim llm " + name +
             " --precision " + llm::precision_name(prec) + fmt::format(" --context {}", context) +
             (chips ? fmt::format(" --chips {}", chips) : std::string()) + " --phase decode --all-splits`)";
    for (const system::SplitOption& o : run.split.options)
      node_split_listed = node_split_listed || (o.seconds > 0 && o.tp <= static_cast<int64_t>(chip->chips_per_node));
  }
  if (m.causal && run.plan.tp > static_cast<int64_t>(chip->chips_per_node) && !node_split_listed)
    *note += node_split_note(run, req, m, *chip, run_plan);
  if (!m.causal && chips == 0 && run.plan.tp == 1) *note += encoder_tp_note(req, m, *chip, run_plan);
  if (!run.standins.empty()) {
    *cond += fmt::format("; **{} of {} distinct pieces are DENSE STAND-INS**", run.standins.size(), run.simulations);
    *note += ". DENSE STAND-IN pieces (the model's weight matrices as dense layers; attention scores, softmax, RoPE, "
             "norms and MoE gating omitted), because the front end's graph does not compile:";
    for (const std::string& w : run.standins) *note += " [" + w + "]";
  }
  return m.causal ? run.tokens_per_second_per_user : run.token_latency_us;
}

std::vector<Row> rows(const std::string& resnet50) {
  using P = llm::WeightPrecision;
  std::vector<Row> r;
  r.push_back({"dense GEMM peak", "737-750 TOPS", "TOPS", "1 chip, 900 MHz, int8", "[ALCF] + arithmetic", 750,
               [](double, RowOut* o) { return gemm_tops(&o->note, &o->cond); }, ""});
  r.push_back({"ResNet-50", "20,400 images/s", "images/s", "batch 1, 1 chip", "[ISCA20]", 20400,
               [resnet50](double, RowOut* o) -> double {
                 if (!resnet50.empty()) return resnet50_images_per_s(resnet50, &o->note, &o->cond);
                 throw InputError("not run: the ResNet-50 ONNX file (about 100 MB) is not committed; generate it with "
                                  "`python3 scripts/make_models.py --resnet50 FILE` (torchvision resnet50) and run "
                                  "`lpusim validate --resnet50 FILE` (build/bench/bench_models also compiles and "
                                  "simulates it: `bench_models --int8 FILE`)");
               },
               "Convolutions read their taps in place (each tap's input rows are k-tiles of the conv's matmul, "
               "no im2col copy); the 3x3 convs of stages 1-2 (64 and 128 channels) are pixel-packed (the 1x1 "
               "conv before each writes rows of 5 or 2 pixels, the 3x3 conv reads consecutive rows as k-tiles "
               "and writes 5 or 2 output pixels a row, the 1x1 conv after it is one layer per pixel position), "
               "but the 256- and 512-channel 3x3 convs of stages 3-4 take a whole 320-lane vector per pixel "
               "and tap (docs/compiler.md, convolutions); each block's residual Add runs in "
               "its last conv's epilogue, and the block outputs are stored i8 only (the next conv reads them as "
               "X, the next block's epilogue as its residual); the stem conv writes two image rows a stored "
               "row and the MaxPool runs on those pairs (128 of 320 lanes; one SXM move unpairs its output: "
               "docs/compiler/convolution.md \"Row pairs\"), bound by the VXM (the stem's epilogue and the "
               "pool's 9 ops a pooled vector) while the planes wait; stages 1-2 run well above their `abc` "
               "and `lw` floors (the note's per-stage figures: the 1x1 -> 3x3 -> 1x1 row chain), "
               "stages 3-4 are bound by weight installs (batch 1: 196 or 49 rows per 320x320 weight tile) "
               "and by the conv-to-conv row chain (`build/bench/bench_conv_layers --int8 --steps FILE` per "
               "stage; docs/ROADMAP.md)"});
  // Each LLM row's weight precision follows the published system where it is known (the
  // condition says which and why); the pieces are compiled at that precision.
  auto llm = [](const std::string& name, P prec, int64_t ctx, int64_t chips, int64_t prompt, const std::string& why) {
    return [=](double published, RowOut* o) {
      const double v = llm_row(name, prec, ctx, chips, prompt, published, o);
      o->cond += " (" + why + ")";
      return v;
    };
  };
  const std::string install =
      "What-if for the install rate: a chip with mxm.planes_per_slice 4 (twice the planes: twice the lw rows and "
      "MACs per cycle): `sed 's/^  planes_per_slice: 2 /  planes_per_slice: 4 /' workloads/chips/tsp-v1.yaml > "
      "/tmp/tsp-4planes.yaml` then the row's `lpusim llm` command with `--chip /tmp/tsp-4planes.yaml` "
      "(docs/llm-system.md lists the commands and the figures measured)";
  // What every decode row's gap shares: the unstated split, what a served system pays that is not
  // modelled, and where the pieces stand against their installs.
  const std::string decode_gap = "The source states no chip count or split (the conditions column says what the simulation used): the planner's default puts each layer on the widest tensor-parallel group that fits those chips, so each token's weight installs are spread over more chips; a group wider than a node spans whole nodes with a hierarchical all-reduce (about 1.2-1.4 us over 2-8 nodes vs 0.8 us in a node, docs/llm-system.md section 2). The note composes every split that fits those chips and says where the published rate falls among them (and, where no split inside one node is among them, gives the rate with the group kept inside one node); how the published system split the model is not stated. Not modelled, each of which a served system pays per token: host and network time around the chips, clock-synchronization exchanges, link-level errors; the wiring across nodes and every link's latency are [assumed] (tsp-v1.yaml). Inside the chips the pieces still run above their projections' installs (attention decode: the copies of the cached keys and values next to the new row, K^T and V installed as MXM weights, the softmax over the context on the VXM; docs/llm-system.md \"The attention decode piece\"), and pieces do not overlap (a real schedule would load the next layer's weights during the all-reduce). ";
  r.push_back({"BERT-base", "130 us", "us", "batch 1", "arXiv 2206.11062", 130,
               llm("bert-base", P::INT8, 0, 0, 128, "int8: the published run is int8"), ""});
  r.back().gap =
      "every piece is the real graph, compiled int8 where the graph allows (the projections; the 12 heads' o_proj products are one int8 product reading P.V through a view). The pass is slower than published (the error column: within 25 % since session 36, and since session 38 by about 1,800 cycles of a 131,410-cycle pass), and the reasons are in the pieces, none a single chip-config number (`build/bench/bench_prefill --steps` prints each piece against its weight-install bound: the attention pieces are the furthest above it): in the Softmax the row max is a lane all-reduce through the SXMs, on each head's half of a paired row (the scores' scale 1/sqrt(d) is folded into q's projection, the subtract and exp are one VXM pass, and the row sums come from the MXM as a ones column of V); q.K^T and P.V are products of two activations, run in fp16 (K^T and V installed as MXM weights: 4 times the int8 cost), two heads a product since session 34 (docs/compiler/attention.md \"Paired heads\": a pair's scores share a row); the heads' q, K and V are moved lane-aligned by the SXMs before those products (V's moves also carry its ones column, copied from ones columns of the q|k|v projection since session 35, docs/compiler/attention.md \"V's ones column\"), and the projection's planes finish q and K before V (docs/compiler/matmul-kernel.md \"Column need order\"); each LayerNorm takes two lane all-reduces in series (the mean, then the variance about it), and each row's all-reduce is latency-bound: five round trips between the VXM and an SXM at the chip's edge (docs/ROADMAP.md, issue 5, \"What bounds a LayerNorm\"); BERT is post-LN, so the projections read an on-chip quantized i8 copy of the LayerNorm output (docs/compiler.md \"int8 models\"), or, where that gives the shorter piece (the FFN, and since session 35 the attention too), fold the LayerNorm: they read x - mean quantized right after the mean and divide their rows by the sd in the epilogue (passes/quantize.h \"LayerNorm folds\"); layers 1-11's attention pieces start with the LayerNorm that ended the previous layer (layer 0's has none: two attention programs), and the pass ends with layer 11's LayerNorm, the encoder's output, as a piece of its own; the embeddings and their LayerNorm are not in the pass (gathered by the host, docs/llm.md); pieces run back to back with no overlap, each starting right at the previous one's end (the start rule of docs/architecture.md \"Programs back to back\" finds their streams clear at once: `build/bench/bench_prefill --gaps`), and one layer compiled as ONE program is no faster (`build/bench/bench_prefill --joint` prints both; the FFN's LayerNorm waits for the attention's last rows). No single lever closes the gap; measured ceilings of those left, in % of the pass as it was in session 30 (161,281 cycles; docs/ROADMAP.md, issue 5, session 30, says how each was measured; chip or model what-ifs rerun with a command there, the others were throwaway timing prototypes of the compiler, not in the repo): in the attention pieces the fp16 products and the row max bound together then (products at the int8 rate, `fp16_slowdown: 1` in a copy of the chip config: -3.2 % of the pass; no row max at all, a prototype: -2.3 %; both: -8.3 %; since the paired heads of session 34 the same products what-if gains nothing; stream values consumed at their last reader, docs/ROADMAP.md item 0, measured about -3.5 % of session 34's pass in session 35, a prototype), a LayerNorm of one all-reduce about -4.6 % (a prototype), GELU inside the up projection's epilogue -3.4 % (`\"hidden_act\": \"relu\"` in a copy of bert-base.json), free LayerNorm constant rows -1.2 % (a prototype): the last steps inside 25 % were layout tuning trying spread int8 epilogue rows (the FFN piece keeps them: docs/compiler/matmul-kernel.md \"Epilogue rows per column tile\") and session 38's refinements of the tuned layout, whole-tile cuts and more weight groups (the attention pieces of layers 1+ keep the first, the FFN both; -1.2 % of the pass: docs/compiler/matmul-kernel.md \"Whole-tile cuts\"; `build/bench/bench_prefill --no-sim` prints today's pass), and closing the gap needs about all of these. More chips do not close the gap: on a tensor-parallel group each piece ends with an all-reduce of its [128, 768] rows across the group (the note's chip-count sensitivity). Published BERT-base uses hand-written int8 kernels. " + install;
  r.push_back({"Llama-2 7B", "750 tokens/s per user", "tokens/s", "2k context", "[3P]", 750,
               llm("llama-2-7b", P::FP16, 2047, 0, 128,
                   "precision not stated: fp16 fits at tp 8; int8 weights install at the same lw rate here, so they change capacity, not the token time"),
               ""});
  r.back().gap =
      "every piece is the real graph (no stand-in). " + decode_gap + install + "; int8 instead of fp16: `lpusim llm workloads/llm/llama-2-7b.json --precision int8 --tp 8 --prompt 128 --context 2047`";
  r.push_back({"Llama-2 70B", "300 tokens/s per user", "tokens/s", "4k context, about 576 chips", "[3P]", 300,
               llm("llama-2-70b", P::INT8, 4095, 576, 128,
                   "int8: 576 chips x 230 MB cannot hold 140 GB of fp16 weights, machine.md section 6"),
               ""});
  r.back().gap =
      "every piece is the real graph compiled int8 (no stand-in). On the stated ~576 chips the widest group that fits is 64 chips = 8 nodes, one rack without its spare: 1 query head per chip with a copy of its kv head (KV-head replication, 8 copies of each of the 8 kv heads and of their cache, docs/llm.md), 9 stages. Kept in one node (tp 8), the chips could hold the model in 54 stages = 432 chips, and the row sat at that plan's weight-install bound (note). int8 does not speed up installs (one lw row of 320 weights per cycle at either precision); it makes the model fit. " + decode_gap + install;
  r.push_back({"Llama-3 8B", "877 tokens/s", "tokens/s", "not stated", "[3P]", 877,
               llm("llama-3-8b", P::FP16, 2047, 0, 128,
                   "precision not stated: fp16, as Llama-2 7B"),
               ""});
  r.back().gap =
      "as Llama-2 7B; grouped-query attention (4 query heads per kv head): a group wider than the 8 kv heads gives each chip a copy of one kv head (KV-head replication); the larger vocabulary's LM head is cut into parts. " + decode_gap + install;
  r.push_back({"Llama-3 70B", "280 tokens/s", "tokens/s", "not stated", "[3P]", 280,
               llm("llama-3-70b", P::INT8, 4095, 576, 128,
                   "int8 and 576 chips as Llama-2 70B: not stated by the source"),
               ""});
  r.back().gap = "as Llama-2 70B. " + install;
  r.push_back({"Mixtral 8x7B", "480 tokens/s", "tokens/s", "not stated", "[3P]", 480,
               llm("mixtral-8x7b", P::INT8, 2047, 0, 128,
                   "int8: not stated by the source; an fp16 expert (352 MB) exceeds a chip"),
               ""});
  r.back().gap =
      "simulated with every piece the real graph compiled int8. A static schedule cannot branch on the routing, so every expert runs on every token, weighted by its gate (0 when not selected): a token installs all 8 experts' weights, 4 times the top-2 a dynamic system touches. With a tensor-parallel group of 32 chips each expert's columns are split over 4 chips and the 8 experts of a layer run at once on different chips: the unselected experts cost chips and energy, not latency (docs/llm-system.md, expert column split). " + decode_gap + install;
  return r;
}

// What `lpusim validate` was asked for: the markdown and JSON files (empty: markdown to stdout,
// no JSON), the rows to run by workload name (empty: all) and the ResNet-50 ONNX file.
struct ValidateArgs {
  std::string out, json, resnet50;
  std::vector<std::string> only;
};

// The fidelity target (issue 5 item 6): every row within this error.
constexpr double kTargetErrorPct = 25.0;

// The rows named by `only` (all when empty), in the table's order. InputError for a name that is
// no row's, naming it and the rows there are.
std::vector<Row> selected_rows(const std::vector<Row>& all, const std::vector<std::string>& only) {
  if (only.empty()) return all;
  for (const std::string& name : only)
    if (std::none_of(all.begin(), all.end(), [&](const Row& r) { return r.workload == name; })) {
      std::string names;
      for (const Row& r : all) names += (names.empty() ? "'" : ", '") + r.workload + "'";
      throw InputError(fmt::format("--row: no row '{}'; allowed: {}", name, names));
    }
  std::vector<Row> picked;
  for (const Row& r : all)
    if (std::find(only.begin(), only.end(), r.workload) != only.end()) picked.push_back(r);
  return picked;
}

// One row run: its status ("simulated", "not simulated": an InputError, e.g. a missing input, or
// "error": any other exception, a bug) and, when simulated, its value and error against the
// published figure.
struct RowResult {
  std::string state = "simulated";
  double value = 0, error_pct = 0;
  RowOut out;
  bool simulated() const { return state == "simulated"; }
  // A simulated decode row's token divided by its layers, in us: published (1 / the published
  // rate) and simulated (1 / the simulated rate; tokens/s per user at batch 1).
  double published_us_per_layer(const Row& r) const { return 1e6 / r.published / static_cast<double>(out.decode_layers); }
  double simulated_us_per_layer() const { return 1e6 / value / static_cast<double>(out.decode_layers); }
  bool per_layer() const { return simulated() && out.decode_layers > 0; }
};

RowResult run_row(const Row& r) {
  RowResult x;
  x.out.cond = r.conditions;
  try {
    x.value = r.run(r.published, &x.out);
    x.error_pct = 100.0 * (x.value - r.published) / r.published;
  } catch (const InputError& e) {
    x.state = "not simulated";
    x.out.note = e.what();
  } catch (const std::exception& e) {
    x.state = "error";
    x.out.note = std::string("internal error: ") + e.what();
  }
  return x;
}

// A row of the JSON report (docs/report-schema.md "Validation report").
nlohmann::json row_json(const Row& r, const RowResult& x) {
  nlohmann::json j;
  j["workload"] = r.workload;
  j["published"] = r.published;
  j["published_text"] = r.published_text;
  j["unit"] = r.unit;
  j["source"] = r.source;
  j["status"] = x.state;
  j["simulated"] = x.simulated() ? nlohmann::json(x.value) : nlohmann::json(nullptr);
  j["error_pct"] = x.simulated() ? nlohmann::json(x.error_pct) : nlohmann::json(nullptr);
  j["within_target"] =
      x.simulated() ? nlohmann::json(std::fabs(x.error_pct) <= kTargetErrorPct) : nlohmann::json(nullptr);
  j["us_per_layer"] = x.per_layer() ? nlohmann::json{{"layers", x.out.decode_layers},
                                                     {"published", x.published_us_per_layer(r)},
                                                     {"simulated", x.simulated_us_per_layer()}}
                                    : nlohmann::json(nullptr);
  j["conditions"] = x.out.cond;
  j["note"] = x.out.note;
  j["gap"] = r.gap;
  return j;
}

// The paragraph after the table comparing the decode rows' tokens per layer ("" without one).
std::string per_layer_text(const std::vector<Row>& rs, const std::vector<RowResult>& xs) {
  std::string list;
  double lo = 0, hi = 0;
  int n = 0;
  for (size_t i = 0; i < rs.size(); ++i) {
    if (!xs[i].per_layer()) continue;
    const double pub = xs[i].published_us_per_layer(rs[i]), sim = xs[i].simulated_us_per_layer();
    list += fmt::format("{}{} {:.1f} us against {:.1f} ({:+.1f} us a layer, {} layers)", n ? "; " : "", rs[i].workload,
                        pub, sim, pub - sim, xs[i].out.decode_layers);
    lo = n ? std::min(lo, pub - sim) : pub - sim;
    hi = n ? std::max(hi, pub - sim) : pub - sim;
    ++n;
  }
  if (n == 0) return "";
  return fmt::format(
      "\nPer layer, a decode row's token (1 / the rate: the published one, and the simulated one with its host "
      "transfer) divided by the model's layers, published against simulated: {}. The published systems take {:.1f} "
      "to {:.1f} us a layer longer than the simulation in every decode row; what the simulation leaves out is listed "
      "in each row's gap (host and network time, clock-synchronization exchanges; link latencies are [assumed]), and "
      "how a chip-config what-if moves a row is in docs/llm-system.md \"What the decode rows leave out\".\n",
      list, lo, hi);
}

int run_validate(const ValidateArgs& a) {
  const std::vector<Row> all = rows(a.resnet50);
  const std::vector<Row> todo = selected_rows(all, a.only);
  std::string md;
  md += "# Validation against published results\n\n";
  md += "Generated by `python3 scripts/make_models.py --resnet50 resnet50.onnx` (torchvision's ResNet-50, not\n";
  md += "committed: about 100 MB) and `lpusim validate -o docs/validation.md --resnet50 resnet50.onnx`\n";
  md += "(deterministic; rerun it to reproduce). Published\n";
  md += "figures and conditions: /work/shared/design/machine.md section 8. The LLM rows are compositions of\n";
  md += "cycle-accurate pieces run back to back (docs/llm-system.md); every piece's simulated cycles equal the\n";
  md += "compiler's prediction. There is no per-workload correction factor anywhere in the code: each number\n";
  md += "below comes from the chip config (workloads/chips/tsp-v1.yaml), the model config and the simulator.\n";
  md += "A decode row's rate is at the planner's default split of its chips (the tensor-parallel size whose\n";
  md += "token is shortest); the sources state no split, so each decode row's note also composes every split\n";
  md += "that fits the same chips and says where the published rate falls among them.\n\n";
  if (!a.only.empty())
    md += fmt::format("This page holds only the {} of {} rows named by `--row`.\n\n", todo.size(), all.size());
  md += "| workload | published | simulated | error | conditions (simulated) | source |\n";
  md += "| --- | --- | --- | --- | --- | --- |\n";
  std::string notes;
  std::vector<RowResult> results;
  nlohmann::json jrows = nlohmann::json::array();
  int status = 0;
  for (const Row& r : todo) {
    results.push_back(run_row(r));
    const RowResult& x = results.back();
    if (x.state == "error") status = 1;
    const std::string sim_text = x.simulated() ? fmt::format("{:.1f} {}", x.value, r.unit) : x.state;
    const std::string err_text = x.simulated() ? fmt::format("{:+.1f}%", x.error_pct) : "-";
    jrows.push_back(row_json(r, x));
    md += fmt::format("| {} | {} | {} | {} | {} | {} |\n", r.workload, r.published_text, sim_text, err_text,
                      x.out.cond, r.source);
    notes += fmt::format("- **{}**: {}\n", r.workload, x.out.note);
    if (!r.gap.empty()) notes += fmt::format("  *Gap:* {}\n", r.gap);
    std::cerr << "validate: " << r.workload << ": " << sim_text << "\n";
  }
  md += per_layer_text(todo, results);
  md += "\n## Notes per row\n\n" + notes;
  if (a.out.empty())
    std::cout << md;
  else
    write_text_file(a.out, md, "-o");
  if (!a.json.empty()) {
    nlohmann::json j;
    j["target_error_pct"] = kTargetErrorPct;
    j["rows"] = std::move(jrows);
    write_text_file(a.json, j.dump(2) + "\n", "--json");
  }
  return status;
}

}  // namespace

void register_validate(CLI::App& app) {
  auto a = std::make_shared<ValidateArgs>();
  CLI::App* v = app.add_subcommand("validate", "Simulate the published results (machine.md section 8) and tabulate the errors");
  v->add_option("-o,--output", a->out, "markdown file to write (default: stdout)");
  v->add_option("--json", a->json, "also write the rows as JSON to this file (docs/report-schema.md)");
  v->add_option("--row", a->only,
                "run only this row, by its workload name as the table prints it (e.g. 'BERT-base'); repeatable");
  v->add_option("--resnet50", a->resnet50,
                "ResNet-50 ONNX file for its row (python3 scripts/make_models.py --resnet50 FILE); without it the row "
                "is listed as not run")
      ->check(CLI::ExistingFile);
  v->callback([a]() {
    if (run_validate(*a) != 0) throw CLI::RuntimeError(1);
  });
}

}  // namespace lpu::cli
