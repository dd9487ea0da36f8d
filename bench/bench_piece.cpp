// Measurements of one LLM piece: the segment graph (compiler/llm/segments.h) of layer `layer`, shard
// `rank` of `tp`, for one sequence: decode (one new token, `context` tokens in the KV cache) or, with
// --prefill TOKENS, prefill (TOKENS new tokens, empty cache); zero weights; compiled as LlmSystem compiles pieces (system::piece_compile_options; --int8: int8 projections,
// o_proj through its Cast). Prints, always, one line: predicted cycles, int8 layers, `lw` and VXM
// instruction counts, build + compile seconds, and (unless --no-sim) the timing simulation's cycles
// next to the prediction (exit 1 if they differ). Optional sections:
//   --timeline: the lowered steps and a per-1000-cycle count of instructions per unit (MXM split by
//     mnemonic), replayed from the Program's queues, so a change can be judged by where MXM weight
//     installs sit idle; --window CYCLE also lists every instruction of the --span cycles (8) from CYCLE.
//   --fit (attention pieces): the SRAM allocator's view of the piece compiled on a copy of the chip
//     with 65535 addresses per slice (weights, other allocations, high water, largest allocation;
//     --map FILE writes that memory map), whether it compiles on the chip itself, and the planner's
//     parameter bytes and piece_sram_need (compiler/llm/partition.h) next to the map's weight tiles
//     and KV cache bytes.
// Usage: bench_piece [--model NAME] [--kind attention|ffn|lm_head] [--context C | --prefill TOKENS]
//                    [--layer L] [--tp N] [--rank R] [--int8] [--chip FILE.yaml] [--no-sim]
//                    [--timeline [--window CYCLE [--span N]]] [--fit [--map FILE]]
// Defaults: llama-2-7b attention, decode at context 2047, layer 0, tp 8, rank 0, fp16, the built-in tsp-v1.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <systemc>

#include "compiler/backend/queue_emitter.h"
#include "compiler/compile.h"
#include "compiler/llm/llm_config.h"
#include "compiler/llm/partition.h"
#include "compiler/llm/segments.h"
#include "compiler/passes/lowering.h"
#include "compiler/passes/sram_map_summary.h"
#include "isa/asm.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "system/llm_system.h"

using namespace lpu;

namespace {

struct Args {
  std::string model = "llama-2-7b", kind = "attention", chip, map;
  int64_t context = 2047, prefill = 0, layer = 0, tp = 8, rank = 0, span = 8;
  uint64_t window = 0;
  bool int8 = false, sim = true, timeline = false, fit = false;
};

const char* kUsage =
    "usage: bench_piece [--model NAME] [--kind attention|ffn|lm_head] [--context C | --prefill TOKENS] [--layer L]\n"
    "                   [--tp N] [--rank R] [--int8] [--chip FILE.yaml] [--no-sim]\n"
    "                   [--timeline [--window CYCLE [--span N]]] [--fit [--map FILE]]\n";

// Parses argv into *a; prints what is wrong and returns false on bad input.
bool parse(int argc, char* argv[], Args* a) {
  auto number = [&](int& i, const char* flag, int64_t lo, int64_t* out) {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_piece: %s needs a value\n%s", flag, kUsage);
      return false;
    }
    char* end = nullptr;
    const long long v = std::strtoll(argv[++i], &end, 10);
    if (*end != '\0' || v < lo) {
      std::fprintf(stderr, "bench_piece: %s %s: allowed a whole number >= %lld\n", flag, argv[i],
                   static_cast<long long>(lo));
      return false;
    }
    *out = v;
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    int64_t w = 0;
    bool ok = true;
    if (f == "--model" && i + 1 < argc) a->model = argv[++i];
    else if (f == "--kind" && i + 1 < argc) a->kind = argv[++i];
    else if (f == "--chip" && i + 1 < argc) a->chip = argv[++i];
    else if (f == "--map" && i + 1 < argc) a->map = argv[++i];
    else if (f == "--context") ok = number(i, "--context", 0, &a->context);
    else if (f == "--prefill") ok = number(i, "--prefill", 1, &a->prefill);
    else if (f == "--layer") ok = number(i, "--layer", 0, &a->layer);
    else if (f == "--span") ok = number(i, "--span", 1, &a->span);
    else if (f == "--tp") ok = number(i, "--tp", 1, &a->tp);
    else if (f == "--rank") ok = number(i, "--rank", 0, &a->rank);
    else if (f == "--window") { ok = number(i, "--window", 1, &w); a->window = static_cast<uint64_t>(w); }
    else if (f == "--int8") a->int8 = true;
    else if (f == "--no-sim") a->sim = false;
    else if (f == "--timeline") a->timeline = true;
    else if (f == "--fit") a->fit = true;
    else {
      std::fprintf(stderr, "bench_piece: unknown or incomplete argument '%s'\n%s", f.c_str(), kUsage);
      return false;
    }
    if (!ok) return false;
  }
  if (a->kind != "attention" && a->kind != "ffn" && a->kind != "lm_head") {
    std::fprintf(stderr, "bench_piece: --kind %s: allowed attention, ffn, lm_head\n", a->kind.c_str());
    return false;
  }
  if (a->rank >= a->tp) {
    std::fprintf(stderr, "bench_piece: --rank %lld: allowed 0 .. tp-1 = %lld\n", static_cast<long long>(a->rank),
                 static_cast<long long>(a->tp - 1));
    return false;
  }
  if (a->fit && (a->kind != "attention" || a->prefill > 0)) {
    std::fprintf(stderr, "bench_piece: --fit: the planner comparison is for decode attention pieces (--kind attention)\n");
    return false;
  }
  if (a->prefill > 0) a->context = 0;  // prefill: the cache is empty
  return true;
}

llm::SegmentKind kind_of(const std::string& k) {
  return k == "ffn" ? llm::SegmentKind::Ffn : k == "lm_head" ? llm::SegmentKind::LmHead : llm::SegmentKind::Attention;
}

// The lowered steps, then instructions per unit per 1000 cycles (and every one of the window's).
void print_timeline(const ir::Graph& g, const compiler::CompileResult& cr, const ChipConfig& chip, uint64_t w0,
                    uint64_t span) {
  const compiler::LoweredModel lm = compiler::lower_graph(g);
  for (const compiler::LoweredStep& st : lm.steps) {
    if (st.dense) {
      const auto& L = lm.layers[st.index];
      fmt::print("dense {:40s} K {:5d} N {:5d} rows {:5d} {}\n", L.name, L.K, L.N,
                 L.x_rows.empty() ? -1 : static_cast<int64_t>(L.x_rows.size()),
                 L.b != ir::kNoTensor ? (L.b_trans ? "act-W^T" : "act-W") : "const-W");
    } else if (st.lane) {
      fmt::print("lane  {}\n", lm.lanes[st.index].name);
    } else if (!st.gather) {
      fmt::print("elt   {}\n", lm.eltwise[st.index].name);
    }
  }
  std::map<uint64_t, std::map<std::string, int>> bins;
  for (const QueueCode& q : cr.program.chips.at(0).queues)
    for (const auto& [cycle, in] : compiler::replay_queue(q.code)) {
      if (w0 > 0 && cycle >= w0 && cycle < w0 + span)  // every instruction of `span` cycles from --window
        fmt::print("  @{} {} {}\n", cycle, chip.slices[q.slice].name, format_instr(in));
      const SliceKind k = chip.slices[q.slice].kind;
      std::string key = k == SliceKind::MXM ? std::string(op_info(in.op).mnemonic) : std::string(slice_kind_name(k));
      bins[cycle / 1000][key]++;
    }
  fmt::print("predicted cycles {}\n", cr.program.predicted_cycles);
  for (const auto& [b, counts] : bins) {
    std::string line;
    for (const auto& [k, n] : counts) line += fmt::format(" {}={}", k, n);
    fmt::print("{:6d}k{}\n", b, line);
  }
}

// The allocator's view on a chip with 65535 addresses per slice next to the planner's estimate.
void print_fit(const llm::LlmConfig& m, const Args& a, const ir::Graph& g, const ChipConfig& chip,
               const std::string& on_chip) {
  ChipConfig big = chip;
  big.sram_addresses = 65535;
  const llm::WeightPrecision prec = a.int8 ? llm::WeightPrecision::INT8 : llm::WeightPrecision::FP16;
  const compiler::CompileResult cr = compiler::compile(g, big, system::piece_compile_options(prec));
  const compiler::SramMapSummary v = compiler::summarize_sram_map(cr.memory_map);
  if (!a.map.empty()) std::ofstream(a.map) << cr.memory_map;
  const uint64_t mem_slices = chip.slices_of(SliceKind::MEM).size();
  fmt::print("{} tp {} ctx {} {}: weights {} B, other allocations {} B (sum over the program, with reuse), high water "
             "{} addresses per slice (chip has {}; {} B if every slice were filled to it), largest '{}' {} B\n",
             m.name, a.tp, a.context, a.int8 ? "int8" : "fp16", v.weights, v.others, v.high_water, chip.sram_addresses,
             v.high_water * mem_slices * chip.vector_bytes(), v.largest, v.largest_bytes);
  fmt::print("on {}: {}\n", chip.name, on_chip);
  llm::PlanRequest req;
  req.context = a.context;
  req.precision = prec;
  llm::PlanPiece p;
  p.kind = llm::SegmentKind::Attention;
  p.shard_size = a.tp;
  fmt::print("planner: parameters {} B, piece_sram_need {} B (map: weight tiles {} B, cache inputs {} B)\n",
             (2 * m.hidden * m.heads * m.head_dim + 2 * m.hidden * m.kv_heads * m.head_dim) / a.tp * (a.int8 ? 1 : 2),
             llm::piece_sram_need(m, req, p, chip), compiler::sram_map_bytes(cr.memory_map, ".W.g"),
             compiler::sram_map_bytes(cr.memory_map, "_cache_"));
}

}  // namespace

int sc_main(int argc, char* argv[]) {
  Args a;
  if (!parse(argc, argv, &a)) return 2;
  try {
    const std::shared_ptr<const ChipConfig> chip = a.chip.empty() ? default_chip_config() : load_chip_config(a.chip);
    const llm::LlmConfig m = llm::load_llm_config(std::string(LPU_SOURCE_DIR) + "/workloads/llm/" + a.model + ".json");
    llm::SegmentSpec spec;
    spec.kind = kind_of(a.kind);
    spec.shape.phase = a.prefill > 0 ? llm::Phase::Prefill : llm::Phase::Decode;
    spec.shape.tokens = a.prefill > 0 ? a.prefill : 1;
    spec.shape.context = a.context;
    spec.shard = {a.rank, a.tp};
    spec.fill = llm::WeightFill::Zero;
    spec.position = a.context;
    spec.o_proj_cast = a.int8;  // as LlmSystem builds int8 pieces
    const auto t0 = std::chrono::steady_clock::now();
    const ir::Graph g = llm::build_segment(m, spec, a.layer);
    compiler::CompileResult cr;
    std::string on_chip = "compiles";
    try {
      cr = compiler::compile(g, *chip, system::piece_compile_options(a.int8 ? llm::WeightPrecision::INT8
                                                                            : llm::WeightPrecision::FP16));
    } catch (const InputError& e) {
      on_chip = e.what();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string what =
        fmt::format("{} {} {}{} layer {} tp{} rank{} {}", m.name, a.kind, a.prefill > 0 ? "prefill T" : "C",
                    a.prefill > 0 ? a.prefill : a.context, a.layer, a.tp, a.rank, a.int8 ? "int8" : "fp16");
    int rc = 0;
    if (on_chip != "compiles") {
      fmt::print("{}: does not compile on {}: {}\n", what, chip->name, on_chip);
    } else {
      std::string sim = "not simulated (--no-sim)";
      if (a.sim) {
        sim::SimOptions so;
        so.mode = sim::Mode::Timing;
        const uint64_t cycles = sim::simulate(cr.program, *chip, so).cycles;
        sim = fmt::format("simulated {} ({})", cycles, cycles == cr.program.predicted_cycles ? "matches" : "MISMATCH");
        if (cycles != cr.program.predicted_cycles) rc = 1;
      }
      fmt::print("{}: {} cycles, {} int8 layers, {} lw, {} vxm, build+compile {:.2f} s; {}\n", what, cr.program.predicted_cycles,
                 cr.quant ? cr.quant->int8_layers : 0, cr.stats.lw, cr.stats.vxm, secs, sim);
      if (a.timeline) print_timeline(g, cr, *chip, a.window, static_cast<uint64_t>(a.span));
    }
    if (a.fit) print_fit(m, a, g, *chip, on_chip);
    std::fflush(stdout);
    return rc;
  } catch (const InputError& e) {
    std::fprintf(stderr, "bench_piece: %s\n", e.what());
    return 2;
  }
}

// Our own main (instead of libsystemc's) so that SystemC does not print its banner into the figures.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
