// Per-step profile of a compiled conv net (issue 5 item 6, ResNet-50 row of docs/validation.md):
// compiles an ONNX model for tsp-v1 (fp16, or with --int8 timing-only int8 as bench_models does)
// and prints, per stage (a step's name up to its second '/', e.g. "/layer1/layer1.0" -> "/layer1"),
// the cycles its steps added to the program's end (CompileResult::spans: end_after[i] -
// end_after[i - 1]; they sum to the predicted cycles minus the final drain), its abc count and the
// share of each step kind; with --steps every step. Compile only (no simulation: bench_models
// checks that the prediction equals the simulator's count). --chip: a chip configuration YAML
// instead of tsp-v1 (a what-if, e.g. vxm.fused_multiply_add: false).
// Usage: bench_conv_layers [--int8] [--steps] [--no-pack] [--no-fuse-copies] [--no-fuse-residual] [--no-i8-residuals] [--chip FILE] MODEL.onnx
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "compiler/compile.h"
#include "compiler/frontends/onnx_import.h"
#include "compiler/passes/stage_spans.h"
#include "isa/chip_config.h"

using namespace lpu;
using namespace lpu::compiler;

int main(int argc, char* argv[]) {
  bool int8 = false, steps = false, no_pack = false, no_fuse = false, no_residual = false, no_i8res = false;
  std::string path, chip;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--int8") int8 = true;
    else if (a == "--steps") steps = true;
    else if (a == "--no-pack") no_pack = true;  // every conv tap its own k-tile (LowerOptions::pack_conv_taps)
    else if (a == "--no-fuse-copies") no_fuse = true;  // int8: every i8 copy a step of its own (Int8Options::fuse_copies)
    else if (a == "--no-fuse-residual") no_residual = true;  // residual Adds as steps (LowerOptions::fuse_residual_adds)
    else if (a == "--no-i8-residuals") no_i8res = true;  // int8: fused residuals stay f16 (Int8Options::i8_residuals)
    else if (a == "--chip" && i + 1 < argc) chip = argv[++i];
    else if (a[0] != '-' && path.empty()) path = a;
    else {
      std::fprintf(stderr, "usage: bench_conv_layers [--int8] [--steps] [--no-pack] [--no-fuse-copies] [--no-fuse-residual] [--no-i8-residuals] [--chip FILE] MODEL.onnx\n");
      return 2;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "usage: bench_conv_layers [--int8] [--steps] [--no-pack] [--no-fuse-copies] [--no-fuse-residual] [--no-i8-residuals] [--chip FILE] MODEL.onnx\n");
    return 2;
  }
  try {
    const std::shared_ptr<const ChipConfig> cfg = chip.empty() ? default_chip_config() : load_chip_config(chip);
    const ir::Graph g = frontend::import_onnx(path);
    CompileOptions co;
    co.lower.pack_conv_taps = !no_pack;
    co.lower.fuse_residual_adds = !no_residual;
    if (int8) {
      co.precision = Precision::INT8;
      co.int8.timing_only = true;
      co.int8.onchip_quantize = true;
      co.int8.fuse_copies = !no_fuse;
      co.int8.i8_residuals = !no_i8res;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const CompileResult r = compile(g, *cfg, co);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s %s: %llu cycles predicted (%.1f images/s at %.0f MHz), compiled in %.2f s, %llu abc\n",
                path.c_str(), int8 ? "int8" : "fp16", static_cast<unsigned long long>(r.program.predicted_cycles),
                cfg->clock_hz / static_cast<double>(r.program.predicted_cycles), cfg->clock_hz / 1e6, secs,
                static_cast<unsigned long long>(r.stats.abc));
    uint64_t prev = 0;
    // --steps also: the step's first issue (start), its VXM instructions and the cycles they need
    // on the VXM's queues (vxm / queues), its SRAM slice reads and writes (a pass's bounds).
    uint32_t vxm_queues = 0;
    for (int i : cfg->slices_of(SliceKind::VXM)) vxm_queues += cfg->slices[static_cast<size_t>(i)].queues;
    if (steps)
      std::printf("%-60s %4s %10s %10s %9s %10s %9s %8s %9s %9s\n", "step", "kind", "end after", "added", "abc", "start",
                  "vxm", "vxm/q", "reads", "writes");
    for (const StepSpan& s : r.spans) {
      const uint64_t added = s.end_after > prev ? s.end_after - prev : 0;
      prev = std::max(prev, s.end_after);
      if (steps)
        std::printf("%-60s %4c %10llu %10llu %9llu %10llu %9llu %8llu %9llu %9llu\n", s.name.c_str(), s.kind,
                    static_cast<unsigned long long>(s.end_after), static_cast<unsigned long long>(added),
                    static_cast<unsigned long long>(s.abc), static_cast<unsigned long long>(s.start),
                    static_cast<unsigned long long>(s.vxm),
                    static_cast<unsigned long long>(vxm_queues ? (s.vxm + vxm_queues - 1) / vxm_queues : 0),
                    static_cast<unsigned long long>(s.reads), static_cast<unsigned long long>(s.writes));
    }
    std::printf("%-28s %6s %10s %7s %10s %10s  %s\n", "stage", "steps", "cycles", "share", "abc", "lw",
                "cycles by step kind (d dense, g gather, e elementwise, l lane)");
    for (const StageSpan& a : stage_spans(r.spans)) {
      std::string kinds;
      for (const auto& [k, v] : a.by_kind) kinds += std::string(kinds.empty() ? "" : ", ") + k + " " + std::to_string(v);
      std::printf("%-28s %6llu %10llu %6.1f%% %10llu %10llu  %s\n", a.name.c_str(), static_cast<unsigned long long>(a.steps),
                  static_cast<unsigned long long>(a.added), 100.0 * static_cast<double>(a.added) / static_cast<double>(r.program.predicted_cycles),
                  static_cast<unsigned long long>(a.abc), static_cast<unsigned long long>(a.lw), kinds.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_conv_layers: %s\n", e.what());
    return 1;
  }
  return 0;
}
