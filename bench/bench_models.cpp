// Benchmark of whole-model compilation (issue 4 item 10): for each ONNX model prints the import
// time, the compile wall time (lowering, scheduling, emission) and its CPU time (the process's, so
// comparable on a shared machine), the predicted cycles, the ideal cycles (MACs / peak MACs per
// cycle), the MXM utilization (ideal / predicted), the time per inference at the chip clock, the
// size of the initial SRAM image (weights and constants as laid out: padded to whole 320x320
// tiles) and, unless --no-sim, the simulated cycles (timing mode), which must
// equal the prediction, and the simulation wall time. Each model is compiled in fp16 and, with
// --int8, also int8 as the LLM pieces are (Int8Options: timing_only, onchip_quantize: dense layers
// whose X can be i8 run i8 x i8 -> i32; weights quantized, activation scales NOT calibrated, so the
// program times exactly like a calibrated one but its outputs mean nothing). MXM utilization is
// always against the fp16 peak for fp16 rows and the int8 peak for int8 rows.
// --sram-x N (2..8) compiles for a WHAT-IF chip "tsp-v1-sramxN": tsp-v1 with N times the addresses
// per MEM slice (N x 220 MiB), everything else equal, for models whose weights do not fit tsp-v1
// (fp16 BERT-base); its compile times are real, its cycles are those of a chip that does not exist.
//
// Models are ONNX paths or these names (generated on first use into the working directory by
// `/usr/bin/python3 scripts/make_models.py --<name> FILE`, with FILE's test data set beside it;
// needs Debian's python3-torch, python3-torchvision, python3-onnx; not committed):
//   cnn                the committed example workloads/models/cnn/model.onnx
//   resnet50           torchvision.models.resnet50(weights=None), batch 1, 3x224x224 (~100 MB)
//   bert-base-encoder  BERT-base's 12-layer encoder stack, sequence 128, input [1, 128, 768] (~340 MB)
//   bert-base          BERT-base with its embeddings (Gather of input_ids), sequence 128 (~440 MB)
//   mobilenet-v2       torchvision.models.mobilenet_v2(weights=None), 3x224x224 (~14 MB)
//   mobilenet-v3-small torchvision.models.mobilenet_v3_small(weights=None), 3x224x224 (~10 MB)
// Default: the first four, in that order. A model that does not compile prints the compiler's message.
// Usage: bench_models [--no-sim] [--int8] [--sram-x N] [MODEL.onnx | NAME ...]
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <systemc>
#include <vector>

#include "compiler/compile.h"
#include "compiler/frontends/onnx_import.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;
using namespace lpu::compiler;

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Model {
  std::string label;  // printed in the first column
  std::string path;   // ONNX file
  std::string flag;   // make_models.py option that generates `path`, empty for a given file
};

// The named models above; an empty label for an unknown name.
Model named_model(const std::string& name) {
  if (name == "cnn") return {"cnn", std::string(LPU_SOURCE_DIR) + "/workloads/models/cnn/model.onnx", ""};
  if (name == "resnet50") return {"resnet50", "resnet50.onnx", "--resnet50"};
  if (name == "bert-base-encoder") return {"bert-base-encoder", "bert_base_encoder.onnx", "--bert-base-encoder"};
  if (name == "bert-base") return {"bert-base", "bert_base.onnx", "--bert-base"};
  if (name == "mobilenet-v2") return {"mobilenet-v2", "mobilenet_v2.onnx", "--mobilenet-v2"};
  if (name == "mobilenet-v3-small") return {"mobilenet-v3-small", "mobilenet_v3_small.onnx", "--mobilenet-v3-small"};
  return {};
}

// Generates a named model with the repository's script if its file is missing; false on failure.
bool ensure_generated(const Model& m) {
  if (m.flag.empty() || std::filesystem::exists(m.path)) return true;
  const std::string cmd = std::string("/usr/bin/python3 ") + LPU_SOURCE_DIR + "/scripts/make_models.py " + m.flag + " " + m.path;
  std::printf("generating %s: %s\n", m.path.c_str(), cmd.c_str());
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  if (std::system(cmd.c_str()) != 0 || !std::filesystem::exists(m.path)) {
    std::fprintf(stderr, "bench_models: could not generate %s (needs Debian's python3-torch, python3-torchvision and python3-onnx)\n",
                 m.path.c_str());
    return false;
  }
  std::printf("generated in %.1f s\n", since(t0));
  return true;
}

// The what-if chip of --sram-x: the built-in tsp-v1 text with `x` times its addresses per slice,
// parsed and validated like any chip config.
std::shared_ptr<const ChipConfig> sram_scaled(const ChipConfig& base, int x) {
  std::string y = default_chip_config_yaml();
  const std::string key = "addresses_per_slice: " + std::to_string(base.sram_addresses);
  const std::string nkey = "name: " + base.name;
  const size_t a = y.find(key), n = y.find(nkey);
  if (a == std::string::npos || n == std::string::npos)
    throw std::logic_error("bench_models: the built-in chip config has no '" + key + "' or '" + nkey + "'");
  y.replace(a, key.size(), "addresses_per_slice: " + std::to_string(base.sram_addresses * static_cast<uint32_t>(x)));
  y.replace(n, nkey.size(), nkey + "-sramx" + std::to_string(x));
  return parse_chip_config(y, "tsp-v1 with --sram-x " + std::to_string(x));
}

}  // namespace

int sc_main(int argc, char* argv[]) {
  bool run_sim = true, with_int8 = false;
  int sram_x = 1;
  std::vector<Model> models;
  const char* usage = "usage: bench_models [--no-sim] [--int8] [--sram-x N] [MODEL.onnx | cnn | resnet50 | bert-base-encoder | bert-base | mobilenet-v2 | mobilenet-v3-small ...]\n";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-sim") {
      run_sim = false;
    } else if (a == "--int8") {
      with_int8 = true;
    } else if (a == "--sram-x" && i + 1 < argc) {
      sram_x = std::atoi(argv[++i]);
      if (sram_x < 2 || sram_x > 8) {
        std::fprintf(stderr, "bench_models: --sram-x %s: allowed 2..8 (addresses per slice <= 65536)\n", argv[i]);
        return 2;
      }
    } else if (a[0] == '-') {
      std::fprintf(stderr, "%s", usage);
      return 2;
    } else if (!named_model(a).label.empty()) {
      models.push_back(named_model(a));
    } else if (a.size() > 5 && a.compare(a.size() - 5, 5, ".onnx") == 0) {
      models.push_back({std::filesystem::path(a).filename().string(), a, ""});
    } else {
      std::fprintf(stderr, "bench_models: '%s' is neither an .onnx file nor a model name\n%s", a.c_str(), usage);
      return 2;
    }
  }
  if (models.empty())
    for (const char* n : {"cnn", "resnet50", "bert-base-encoder", "bert-base"}) models.push_back(named_model(n));
  std::shared_ptr<const ChipConfig> cfg = default_chip_config();
  if (sram_x > 1) cfg = sram_scaled(*cfg, sram_x);
  const double peak_i8 = static_cast<double>(cfg->peak_int8_macs_per_cycle());
  const double peak_f16 = peak_i8 / cfg->mxm_fp16_slowdown;
  std::printf("chip %s%s, %.0f MHz, SRAM %.0f MiB, peak MACs/cycle: fp16 %.0f, int8 %.0f\n", cfg->name.c_str(),
              sram_x > 1 ? " (WHAT-IF: more SRAM than tsp-v1)" : "", cfg->clock_hz / 1e6,
              static_cast<double>(cfg->sram_bytes_per_chip()) / (1 << 20), peak_f16, peak_i8);
  std::printf("%-20s %-5s %8s %9s %7s %12s %14s %11s %8s %10s %9s %12s %6s %7s\n", "model", "prec", "import s",
              "compile s", "cpu s", "cycles", "MACs", "ideal cyc", "MXM util", "us/infer", "image MiB", "simulated", "match",
              "sim s");
  int failures = 0;
  for (const Model& m : models) {
    if (!ensure_generated(m)) {
      ++failures;
      continue;
    }
    for (const bool int8 : {false, true}) {
      if (int8 && !with_int8) continue;
      const char* prec = int8 ? "int8" : "fp16";
      try {
        auto t0 = std::chrono::steady_clock::now();
        const ir::Graph g = frontend::import_onnx(m.path);
        const double t_import = since(t0);
        CompileOptions co;
        if (int8) {
          co.precision = Precision::INT8;
          co.int8.timing_only = true;
          co.int8.onchip_quantize = true;
        }
        t0 = std::chrono::steady_clock::now();
        const std::clock_t c0 = std::clock();
        const CompileResult r = compile(g, *cfg, co);
        const double t_compile = since(t0);
        const double cpu_compile = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
        std::string simulated = "-", match = "-", sim_s = "-";
        if (run_sim) {
          sim::SimOptions so;
          so.mode = sim::Mode::Timing;
          t0 = std::chrono::steady_clock::now();
          const sim::SimResult s = sim::simulate(r.program, *cfg, so);
          char buf[32];
          std::snprintf(buf, sizeof buf, "%.2f", since(t0));
          sim_s = buf;
          simulated = std::to_string(s.cycles);
          match = s.cycles == r.program.predicted_cycles ? "yes" : "NO";
          if (s.cycles != r.program.predicted_cycles) ++failures;
        }
        const double ideal = static_cast<double>(r.macs) / (int8 ? peak_i8 : peak_f16);
        uint64_t image = 0;
        for (const DataBlob& d : r.program.data) image += d.bytes.size();
        std::printf("%-20s %-5s %8.2f %9.2f %7.2f %12llu %14llu %11.0f %7.1f%% %10.1f %9.1f %12s %6s %7s\n", m.label.c_str(), prec,
                    t_import, t_compile, cpu_compile, static_cast<unsigned long long>(r.program.predicted_cycles),
                    static_cast<unsigned long long>(r.macs), ideal,
                    100.0 * ideal / static_cast<double>(r.program.predicted_cycles),
                    static_cast<double>(r.program.predicted_cycles) / cfg->clock_hz * 1e6,
                    static_cast<double>(image) / (1 << 20), simulated.c_str(), match.c_str(),
                    sim_s.c_str());
        for (const std::string& d : r.diagnostics)
          if (int8 && d.rfind("precision int8", 0) == 0) std::printf("    %s\n", d.c_str());
      } catch (const std::exception& e) {
        ++failures;
        std::printf("%-20s %-5s does not compile: %s\n", m.label.c_str(), prec, e.what());
      }
      std::fflush(stdout);
    }
  }
  return failures == 0 ? 0 : 1;
}

// Our own main (instead of libsystemc's) so that SystemC does not print its banner into the figures.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
