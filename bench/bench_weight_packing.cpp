// Packed vs whole weight tiles (compiler/backend/placed_tensor.h: PlacedWeights, docs/compiler.md):
// compiles each ONNX model int8 (timing only, scales uncalibrated, quantized on chip, as
// bench_models --int8) with and without view-weight packing (TilingOptions::pack_view_weights) and
// prints the predicted cycles, the SRAM image size and the `lw` count, or the compiler's error.
// Usage: bench_weight_packing MODEL.onnx...
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <string>
#include <systemc>

#include "compiler/compile.h"
#include "compiler/frontends/onnx_import.h"
#include "isa/chip_config.h"

using namespace lpu;

int sc_main(int argc, char* argv[]) {
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: bench_weight_packing MODEL.onnx...\n");
    return 2;
  }
  auto cfg = default_chip_config();
  int failures = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string path = argv[i];
    ir::Graph g;
    try {
      g = frontend::import_onnx(path);
    } catch (const InputError& e) {
      fmt::print("{}: {}\n", path, e.what());
      ++failures;
      continue;
    }
    for (const bool pack : {true, false}) {
      compiler::CompileOptions co;
      co.precision = compiler::Precision::INT8;
      co.int8.timing_only = true;
      co.int8.onchip_quantize = true;
      co.tiling.pack_view_weights = pack;
      std::string res;
      try {
        const compiler::CompileResult r = compiler::compile(g, *cfg, co);
        uint64_t image = 0;  // the SRAM image: every data blob the program places
        for (const DataBlob& b : r.program.data) image += b.bytes.size();
        res = fmt::format("{} cycles, image {:.1f} MiB, {} lw", r.program.predicted_cycles, image / 1048576.0, r.stats.lw);
      } catch (const InputError& e) {
        res = e.what();
      }
      fmt::print("{} int8 pack_view_weights={}: {}\n", path, pack, res);
    }
  }
  std::fflush(stdout);
  return failures ? 1 : 0;
}

// Our own main (instead of libsystemc's) so that SystemC does not print its banner into the figures.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
