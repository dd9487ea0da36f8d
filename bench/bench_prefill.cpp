// Benchmark of PREFILL pieces (issue 5 item 6, the BERT-base validation row): for the BERT-base
// attention pieces (layer 0's, and that of layers 1+, which starts with the previous layer's
// LayerNorm), the FFN piece and the output LayerNorm (sequence 128, tp 1, int8 as `lpusim validate`
// compiles them) prints the compiled cycles, the `lw` rows installed, the install bound = rows /
// MXM planes (one `lw` per plane per cycle, chip config; "-" for a piece with no `lw`), compiled /
// bound, compile seconds and the simulated cycles (timing mode) next to the prediction; then one
// forward pass composed as `lpusim llm` does (every layer's pieces back to back, each starting by
// the start rule of system/start_rule.h after the previous one's end, the pass ending with its
// last piece), from the compiler's predicted cycles and stream envelopes, which every simulation
// here must equal (system/prediction_check.h; --no-sim skips the simulations, not the composition),
// next to the same pass with drain windows (every piece waiting out the drain).
// --steps: also each lowered step's first-issue and end cycles, what it added to the piece, and its
// lw / abc rows and VXM instructions (CompileResult::spans).
// --joint: also layer 1 (its attention, which starts with layer 0's closing LayerNorm, and its FFN)
// compiled as ONE program (llm::build_layer_graph), next to the two pieces' cycles back to back:
// what a scheduler gains or loses when the pieces may overlap (docs/ROADMAP.md, issue 5 "Next").
// --gaps: for the two boundaries of a layer (attention of layers 1+ -> FFN, FFN -> attention), the
// smallest start gap after the first piece's end at which the two programs, concatenated
// (system::concatenate), still simulate without a rule violation, every larger gap up to the
// window's drain included, next to the gap of the composition's start rule (start_rule.h), which
// is checked to simulate with one cycle less colliding (a stream value of the first piece still
// travelling meets one of the second on its diagonal); logic_error if not.
// --no-pair-heads: one q.K^T and one P.V product a head (LowerOptions::pair_heads off), to measure
// what paired heads gain (passes/pair_heads.h).
// Usage: bench_prefill [--no-sim] [--tokens T] [--steps] [--joint] [--gaps] [--no-pair-heads]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <systemc>

#include "compiler/compile.h"
#include "compiler/llm/llm_config.h"
#include "compiler/llm/model_graph.h"
#include "compiler/llm/segments.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "system/prediction_check.h"
#include "system/start_rule.h"

using namespace lpu;
using namespace lpu::compiler;

int sc_main(int argc, char* argv[]) {
  bool run_sim = true, steps = false, joint = false, gaps = false, pair_heads = true;
  int64_t tokens = 128;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-sim") == 0) {
      run_sim = false;
    } else if (std::strcmp(argv[i], "--steps") == 0) {
      steps = true;
    } else if (std::strcmp(argv[i], "--joint") == 0) {
      joint = true;
    } else if (std::strcmp(argv[i], "--gaps") == 0) {
      gaps = true;
    } else if (std::strcmp(argv[i], "--no-pair-heads") == 0) {
      pair_heads = false;
    } else if (std::strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) {
      tokens = std::atoll(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_prefill [--no-sim] [--tokens T] [--steps] [--joint] [--gaps] [--no-pair-heads]\n");
      return 2;
    }
  }
  auto cfg = default_chip_config();
  CompileOptions piece_opt = system::piece_compile_options(llm::WeightPrecision::INT8);
  piece_opt.lower.pair_heads = pair_heads;
  const uint64_t planes = static_cast<uint64_t>(cfg->slices_of(SliceKind::MXM).size()) * cfg->mxm_planes;
  const llm::LlmConfig m = llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/bert-base.json");
  std::printf("chip %s, bert-base prefill of %lld tokens, tp 1, int8 pieces (piece_compile_options)%s\n",
              cfg->name.c_str(), static_cast<long long>(tokens), pair_heads ? "" : ", heads not paired");
  std::printf("%-22s %10s %9s %9s %7s %9s %10s %5s\n", "piece", "compiled", "lw rows", "bound", "ratio", "compile s",
              "simulated", "match");
  uint64_t pass = 0, last_drain = 0;  // the pass with drain windows (each piece waits out the drain)
  // Each lowered step's first issue, its own last landing, the program's end after it, the cycles it added and its MXM / VXM work.
  auto print_steps = [](const CompileResult& r) {
    uint64_t prev = 0;
    for (const StepSpan& sp : r.spans) {
      const uint64_t added = sp.end_after > prev ? sp.end_after - prev : 0;
      prev = std::max(prev, sp.end_after);
      std::printf("  %-40s %c start %7llu own end %7llu end %7llu added %6llu  lw %6llu abc %6llu vxm %6llu\n",
                  sp.name.c_str(), sp.kind, static_cast<unsigned long long>(sp.start),
                  static_cast<unsigned long long>(sp.own_end), static_cast<unsigned long long>(sp.end_after),
                  static_cast<unsigned long long>(added), static_cast<unsigned long long>(sp.lw),
                  static_cast<unsigned long long>(sp.abc), static_cast<unsigned long long>(sp.vxm));
    }
  };
  sim::SimOptions timing;  // every simulation here: timing mode
  timing.mode = sim::Mode::Timing;
  // Simulated cycles (timing mode), checked against the prediction (cycles and stream envelope:
  // logic_error on a difference), and "yes"; "-", "-" with --no-sim.
  auto simulate = [&](const CompileResult& r, const char* what) -> std::pair<std::string, std::string> {
    if (!run_sim) return {"-", "-"};
    const sim::SimResult s = sim::simulate(r.program, *cfg, timing);
    system::check_prediction(s, r.program.predicted_cycles, &r.predicted_streams, what);
    return {std::to_string(s.cycles), "yes"};
  };
  CompileResult attn1, ffn;  // layer 1's two programs (--gaps)
  // The pass's distinct pieces (llm::representative_layer): layer 0's attention (no leading norm),
  // the attention of layers 1+ (it starts with the previous layer's LayerNorm), the FFN.
  // Last, the encoder's output LayerNorm (the one ending layer 11: PlanPiece::norm_only).
  struct Piece { llm::SegmentKind kind; int64_t layer, starts; const char* label; };
  const Piece pieces[] = {{llm::SegmentKind::Attention, 0, 1, "attention (layer 0)"},
                          {llm::SegmentKind::Attention, 1, m.layers - 1, "attention (layers 1+)"},
                          {llm::SegmentKind::Ffn, 0, m.layers, "ffn"},
                          {llm::SegmentKind::LmHead, 0, 1, "output LayerNorm"}};
  // A prefill segment of `tokens` tokens on one chip, as LlmSystem builds int8 pieces.
  auto prefill_spec = [&](llm::SegmentKind kind) {
    llm::SegmentSpec spec;
    spec.kind = kind;
    spec.norm_only = kind == llm::SegmentKind::LmHead;
    spec.shape.phase = llm::Phase::Prefill;
    spec.shape.tokens = tokens;
    spec.shard = {0, 1};
    spec.o_proj_cast = true;
    return spec;
  };
  // The start rule's gap between two programs (system/start_rule.h).
  auto start_gap = [&](const StreamEnvelope& a, const StreamEnvelope& b) { return system::start_gap(*cfg, a, b); };
  uint64_t piece_cycles[4] = {};   // per entry of pieces[]
  StreamEnvelope piece_streams[4];  // their predicted stream envelopes (start_rule.h)
  for (size_t pk = 0; pk < 4; ++pk) {
    const Piece& pc = pieces[pk];
    const llm::SegmentKind kind = pc.kind;
    const ir::Graph g = llm::build_segment(m, prefill_spec(kind), pc.layer);
    const auto t0 = std::chrono::steady_clock::now();
    const CompileResult r = compile(g, *cfg, piece_opt);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double bound = static_cast<double>(r.stats.lw) / static_cast<double>(planes);
    if (steps) print_steps(r);
    const auto [simulated, match] = simulate(r, pc.label);
    piece_cycles[pk] = r.program.predicted_cycles;
    piece_streams[pk] = r.predicted_streams.at(0);
    const std::string ratio = bound > 0 ? fmt::format("{:.2f}", static_cast<double>(r.program.predicted_cycles) / bound) : "-";
    std::printf("%-22s %10llu %9llu %9.0f %7s %9.2f %10s %5s\n",
                pc.label,
                static_cast<unsigned long long>(r.program.predicted_cycles), static_cast<unsigned long long>(r.stats.lw), bound,
                ratio.c_str(), secs, simulated.c_str(), match.c_str());
    std::fflush(stdout);
    const uint64_t window = system::piece_window(*cfg, r.program.predicted_cycles);
    pass += static_cast<uint64_t>(pc.starts) * window;
    last_drain = window - r.program.predicted_cycles;
    if (pc.layer == 1) attn1 = r;
    if (kind == llm::SegmentKind::Ffn) ffn = r;
  }
  pass -= last_drain;  // the pass ends when its last piece ends
  {
    // As `lpusim llm` composes it (start_rule.h): each piece starts at the first cycle after the
    // previous one's end at which their streams are clear. Order: layer 0's attention, its FFN,
    // then (attention of layers 1+, FFN) per layer, the output LayerNorm.
    auto gap = [&](size_t a, size_t b) { return start_gap(piece_streams[a], piece_streams[b]); };
    const uint64_t layers = static_cast<uint64_t>(m.layers);
    const uint64_t exact = piece_cycles[0] + gap(0, 2) + piece_cycles[2] +
                           (layers - 1) * (gap(2, 1) + piece_cycles[1] + gap(1, 2) + piece_cycles[2]) + gap(2, 3) +
                           piece_cycles[3];
    std::printf("starts after the previous piece's end (start_rule.h): attention -> ffn %llu (layer 0) / %llu, ffn -> attention "
                "%llu, ffn -> output LayerNorm %llu cycles (the drain: %llu)\n",
                static_cast<unsigned long long>(gap(0, 2)), static_cast<unsigned long long>(gap(1, 2)),
                static_cast<unsigned long long>(gap(2, 1)), static_cast<unsigned long long>(gap(2, 3)),
                static_cast<unsigned long long>(system::stream_drain(*cfg)));
    std::printf("forward pass: %d layers of (attention + ffn) + the output LayerNorm = %llu cycles = %.1f us at %.0f MHz "
                "(with drain windows: %llu)\n",
                static_cast<int>(m.layers), static_cast<unsigned long long>(exact),
                static_cast<double>(exact) / cfg->clock_hz * 1e6, cfg->clock_hz / 1e6, static_cast<unsigned long long>(pass));
  }
  if (joint) {
    const ir::Graph g = llm::build_layer_graph(m, prefill_spec(llm::SegmentKind::Attention), 1);
    const CompileResult r = compile(g, *cfg, piece_opt);
    if (steps) print_steps(r);
    const auto [simulated, match] = simulate(r, "layer 1 as one program");
    // From a layer's start to the next layer's (its attention), as the pass composes them.
    const uint64_t one = r.program.predicted_cycles + start_gap(r.predicted_streams.at(0), piece_streams[1]);
    const uint64_t two = piece_cycles[1] + start_gap(piece_streams[1], piece_streams[2]) + piece_cycles[2] +
                         start_gap(piece_streams[2], piece_streams[1]);
    std::printf("layer 1 as one program: %llu cycles (simulated %s, match %s), to the next layer's start %llu, vs its "
                "two pieces back to back %llu (start_rule.h): %+.1f %%\n",
                static_cast<unsigned long long>(r.program.predicted_cycles), simulated.c_str(), match.c_str(),
                static_cast<unsigned long long>(one), static_cast<unsigned long long>(two),
                100.0 * (static_cast<double>(one) / static_cast<double>(two) - 1.0));
  }
  if (gaps) {
    system::PieceRunner runner(*cfg);
    runner.keep_programs(true);
    const system::PieceRun& ra = runner.run_program(attn1.program, "attention (layers 1+)", &attn1.predicted_streams);
    const system::PieceRun& rf = runner.run_program(ffn.program, "ffn", &ffn.predicted_streams);
    // Whether the two programs concatenated with `second` starting d cycles after `first` ends simulate.
    auto clean_at = [&](const system::PieceRun& first, const system::PieceRun& second, uint64_t d) {
      std::vector<system::TimelineEntry> tl(2);
      tl[0].hash = first.hash;
      tl[0].chips = {0};
      tl[1].hash = second.hash;
      tl[1].offset = first.cycles + d;
      tl[1].chips = {0};
      try {
        sim::simulate(system::concatenate(tl, runner, 1, *cfg), *cfg, timing);
      } catch (const sim::SimError&) {
        return false;
      }
      return true;
    };
    // The smallest gap from which every larger one up to the drain simulates, and the start rule's.
    auto smallest_gap = [&](const system::PieceRun& first, const system::PieceRun& second) {
      const uint64_t drain = system::stream_drain(*cfg);
      // The drain itself must always be safe: that is piece_window's own rule.
      if (!clean_at(first, second, drain)) throw std::logic_error("bench_prefill --gaps: the window drain fails");
      uint64_t ok = drain;
      while (ok > 0 && clean_at(first, second, ok - 1)) --ok;
      const uint64_t rule = start_gap(first.streams.at(0), second.streams.at(0));
      // The rule is exact: its gap simulates, and one cycle less collides.
      if (!clean_at(first, second, rule) || (rule > 0 && clean_at(first, second, rule - 1)))
        throw std::logic_error("bench_prefill --gaps: the start rule's gap is not the smallest that simulates");
      return std::make_tuple(ok, rule, drain);
    };
    const auto [af, af_rule, drain_a] = smallest_gap(ra, rf);
    const auto [fa, fa_rule, drain_f] = smallest_gap(rf, ra);
    std::printf("gaps: attention -> ffn %llu cycles (start rule %llu, window drain %llu), ffn -> attention %llu (start "
                "rule %llu, window drain %llu): the start rule saves %llu cycles a layer over the drain\n",
                static_cast<unsigned long long>(af), static_cast<unsigned long long>(af_rule),
                static_cast<unsigned long long>(drain_a), static_cast<unsigned long long>(fa),
                static_cast<unsigned long long>(fa_rule), static_cast<unsigned long long>(drain_f),
                static_cast<unsigned long long>(drain_a - af_rule + drain_f - fa_rule));
  }
  return 0;
}

// Our own main (instead of libsystemc's) so that SystemC does not print its banner into the figures.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
