// `lpusim compile MODEL` (model -> program, assembly, memory map), `lpusim run [MODEL]` (compile,
// simulate, report) and `lpusim check MODEL [DATASET_DIR...]` (compile, simulate, fail unless
// simulated cycles == predicted and, per ONNX test-data dir, every IR op's result on the chip is
// within its local bound recomputed from the chip's own inputs, docs/compiler.md "Precision"). MODEL is an ONNX file or "gemm:MxKxN" (a bare GEMM). Bad input -> InputError.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <vector>

#include "compiler/compile.h"
#include "compiler/frontends/onnx_import.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/lowering.h"
#include "compiler/reference/error_bound.h"
#include "compiler/reference/step_check.h"
#include "compiler/reference/fp16_bound.h"
#include "compiler/reference/int8_bound.h"
#include "compiler/reference/int8_step_check.h"
#include "isa/asm.h"
#include "isa/program_io.h"
#include "sim/report.h"
#include "sim/simulator.h"
#include "sim/trace.h"
#include "system/prediction_check.h"
#include "tools/cli_io.h"
#include "tools/commands.h"
#include "tools/host_guard.h"
#include "tools/model_io.h"

namespace lpu::cli {

namespace {

struct CompileArgs {
  std::string model;
  std::string out;
  std::string asm_path;
  bool memory_map = false;
  std::string precision = "fp16";
  std::string chip;
  std::string mode = "timing";
  std::string json_path;
  std::string trace_path;
  std::vector<std::string> datasets;  // check: ONNX test-data directories
  std::vector<std::string> calibrate;  // int8 models: calibration datasets (check: default `datasets`)
  bool force = false;                 // skip the up-front host-memory checks
};

std::shared_ptr<const ChipConfig> chip_of(const CompileArgs& a) {
  return chip_or_default(a.chip);
}

compiler::CompileOptions options_of(const CompileArgs& a) {
  compiler::CompileOptions o;
  if (a.precision == "fp16") {
    o.precision = compiler::Precision::FP16;
  } else if (a.precision == "int8") {
    o.precision = compiler::Precision::INT8;
    // Elementwise steps quantize their output for int8 readers, other float X get quantized copies
    // (passes/quantize.h); a chain of dense layers plans exactly as without it.
    o.int8.onchip_quantize = true;
  } else {
    throw InputError(fmt::format("--precision: '{}' is not a precision (allowed: fp16, int8)", a.precision));
  }
  return o;
}

// "gemm:MxKxN" -> a bare GEMM; anything else is an ONNX file.
compiler::CompileResult compile_model(const std::string& model, const ChipConfig& cfg,
                                      compiler::CompileOptions o, bool force,
                                      const std::vector<std::string>& calibrate) {
  if (model.rfind("gemm:", 0) == 0) {
    static const std::regex re("gemm:([0-9]{1,7})x([0-9]{1,7})x([0-9]{1,7})");
    std::smatch m;
    if (!std::regex_match(model, m, re))
      throw InputError(fmt::format("MODEL '{}': a GEMM is written gemm:MxKxN with positive integers, e.g. "
                                   "gemm:2560x2560x2560", model));
    compiler::GemmProblem g;
    g.M = std::stoll(m[1]);
    g.K = std::stoll(m[2]);
    g.N = std::stoll(m[3]);
    guard_compile_weights(static_cast<uint64_t>(g.K) * static_cast<uint64_t>(g.N), model, force);
    return compiler::compile_gemm(g, cfg, o);
  }
  const ir::Graph graph = frontend::import_onnx(model);
  guard_compile_weights(graph_weight_elements(graph), model, force);
  if (o.precision == compiler::Precision::INT8)  // calibration inputs (passes/quantize.h)
    for (const std::string& d : calibrate) o.calibration.push_back(load_dataset(d, graph).inputs);
  return compiler::compile(graph, cfg, o);
}

// The default workload of `lpusim run`: the MLP example model if it can be found next to the
// working directory or the executable, else a 1280^3 GEMM.
std::string default_model() {
  std::vector<std::string> cands = {"workloads/models/mlp/model.onnx"};
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) {
    std::string dir(buf, static_cast<size_t>(n));
    for (int up = 0; up < 4 && dir.find('/') != std::string::npos; ++up) {
      dir = dir.substr(0, dir.rfind('/'));
      cands.push_back(dir + "/workloads/models/mlp/model.onnx");
    }
  }
  for (const std::string& c : cands)
    if (std::ifstream(c).good()) return c;
  return "gemm:1280x1280x1280";
}

void run_compile(const CompileArgs& a) {
  auto cfg = chip_of(a);
  const compiler::CompileResult r = compile_model(a.model, *cfg, options_of(a), a.force, a.calibrate);
  const std::string out = a.out.empty() ? "a.lpu" : a.out;
  write_program_file(r.program, out);
  if (!a.asm_path.empty()) write_text_file(a.asm_path, disassemble(r.program, *cfg), "--asm");
  std::cout << fmt::format("compiled {} for chip '{}': predicted {} cycles ({:.3f} us), {} MACs -> {}\n", a.model,
                           cfg->name, r.program.predicted_cycles, static_cast<double>(r.program.predicted_cycles) / cfg->clock_hz * 1e6,
                           r.macs, out);
  for (const std::string& d : r.diagnostics) std::cout << "note: " << d << "\n";
  if (a.memory_map) std::cout << r.memory_map;
}

// Compiles and simulates; returns the simulated result (schedule errors exit 1).
sim::SimResult simulate_model(const CompileArgs& a, const ChipConfig& cfg, const compiler::CompileResult& r) {
  sim::SimOptions so;
  if (a.mode == "timing") {
    so.mode = sim::Mode::Timing;
  } else if (a.mode == "functional") {
    so.mode = sim::Mode::Functional;
  } else {
    throw InputError(fmt::format("--mode: '{}' is not a mode (allowed: timing, functional)", a.mode));
  }
  so.record_trace = !a.trace_path.empty();
  guard_simulation(r.program, cfg, so, a.model, a.force);
  try {
    return sim::simulate(r.program, cfg, so);
  } catch (const sim::SimError& e) {
    std::cerr << "lpusim: schedule error [" << e.rule() << "] in compiled program: " << e.what() << "\n";
    throw CLI::RuntimeError(1);
  }
}

// Prints "compiler predicted N cycles; simulator measured M (match|MISMATCH)", and on a stream
// envelope that differs from the prediction (isa/stream_envelope.h) a line naming the first
// difference. True when both agree.
bool print_prediction_check(const compiler::CompileResult& r, const sim::SimResult& s) {
  const bool cycles = s.cycles == r.program.predicted_cycles;
  std::cout << fmt::format("compiler predicted {} cycles; simulator measured {} ({})\n", r.program.predicted_cycles, s.cycles,
                           cycles ? "match" : "MISMATCH");
  const std::string diff = system::envelope_mismatch(s, r.predicted_streams);
  if (!diff.empty()) std::cout << "MISMATCH with the compiler's prediction: " << diff << "\n";
  return cycles && diff.empty();
}

void run_run(const CompileArgs& in, bool check_only) {
  CompileArgs a = in;
  if (a.model.empty() && !check_only) {
    // No MODEL: the default main job is an LLM decode on a multi-chip system (cmd_llm.cpp).
    if (a.mode != "timing" || !a.trace_path.empty() || !a.calibrate.empty())
      throw InputError("lpusim run: --mode functional, --trace and --calibrate need a MODEL (the default run, an LLM "
                       "decode on many chips, is timing-only); e.g. lpusim run workloads/models/mlp/model.onnx");
    run_default_llm(a.chip, a.json_path, a.precision);
    return;
  }
  if (a.model.empty()) {
    a.model = default_model();
    std::cout << "default workload: " << a.model << "\n";
  }
  auto cfg = chip_of(a);
  const compiler::CompileResult r = compile_model(a.model, *cfg, options_of(a), a.force, a.calibrate);
  const sim::SimResult s = simulate_model(a, *cfg, r);
  const bool match = print_prediction_check(r, s);
  if (!check_only) {
    std::cout << sim::text_report(r.program, *cfg, s);
    if (!a.json_path.empty()) write_text_file(a.json_path, sim::json_report(r.program, *cfg, s).dump(2) + "\n", "--json");
    if (!a.trace_path.empty()) sim::write_chrome_trace_file(a.trace_path, r.program, *cfg, s);
  }
  if (!match) throw CLI::RuntimeError(1);
}

// Simulates `r` in functional mode on one dataset's inputs (conv inputs laid out by the host).
sim::SimResult simulate_dataset(const Dataset& ds, const ir::Graph& g, const compiler::LoweredModel& lm,
                                const ChipConfig& cfg, const compiler::CompileResult& r, bool force) {
  sim::SimOptions so;
  so.mode = sim::Mode::Functional;
  const std::vector<std::vector<int>> consumers = g.consumers();
  for (size_t i = 0; i < g.inputs().size(); ++i) {
    const std::string& name = g.tensor(g.inputs()[i]).name;
    // A graph input that no op reads (e.g. CastLike's `like` after expansion) cannot change an
    // output, and the compiler gives it no place in SRAM: nothing to bind.
    if (consumers[static_cast<size_t>(g.inputs()[i])].empty()) continue;
    const DType t = compiler::row_blocks(r.program, name).front().dtype;
    if (i < lm.inputs.size() && lm.inputs[i].lookup_rows > 0) {  // embedding-lookup ids: i16 row offsets
      compiler::bind_input(r.program, name,
                           compiler::lookup_index_bytes(name, ds.inputs[i].i, lm.inputs[i].lookup_rows,
                                                        lm.inputs[i].lookup_cols, cfg.vector_bytes(),
                                                        compiler::lookup_part_rows(lm.inputs[i].lookup_rows,
                                                                                   lm.inputs[i].lookup_cols,
                                                                                   cfg.vector_bytes(),
                                                                                   cfg.sram_addresses)),
                           &so.inputs);
      continue;
    }
    ref::Value v = ds.inputs[i];
    if (i < lm.inputs.size() && !lm.inputs[i].host_map.empty()) {  // conv layouts (passes/lower_conv.h)
      v.f = compiler::to_chip_input(lm.inputs[i], v.f);
      v.shape = lm.inputs[i].shape;
    }
    // int8 models: the host quantizes (after the layout: element by element, padding stays 0)
    if (t == DType::I8 && r.quant && r.quant->i8_inputs.count(name))
      v = compiler::quantize_host_input(v, r.quant->i8_inputs.at(name));
    compiler::bind_input(r.program, name, to_chip_bytes(v, t), &so.inputs);
  }
  guard_simulation(r.program, cfg, so, ds.dir, force);
  try {
    return sim::simulate(r.program, cfg, so);
  } catch (const sim::SimError& e) {
    std::cerr << "lpusim: schedule error [" << e.rule() << "] in compiled program: " << e.what() << "\n";
    throw CLI::RuntimeError(1);
  }
}

// One ONNX test-data set (docs/compiler.md "Precision"):
// 1. the program `r` (functional mode): simulated cycles must equal the prediction; per output the
//    max abs/rel difference from the dataset's fp32 output is printed; for a chain of dense layers
//    it must also be within the fp16 bounds of compiler/reference/fp16_bound.h (elsewhere there is
//    no end-to-end bound and the difference is informational);
// 2. the same model compiled with keep_intermediates (`dbg`: no SRAM reuse, every step's result
//    readable; each product's plan replayed from `r`, CompileOptions::matmul_replay, so its fp32
//    partial sums are the same) must give bit-identical outputs and cycles == its prediction, and every IR op whose
//    output the chip stores must be within its local bound when recomputed from the chip's own
//    inputs (compiler/reference/step_check.h); int8 models (r.quant): the same from the chip's own
//    inputs with int8 layers within the int8 bound and quantizing steps within rounding + clipping
//    (compiler/reference/int8_step_check.h). Returns true if all of that holds.
bool check_dataset(const Dataset& ds, const ir::Graph& g, const compiler::LoweredModel& lm, const ChipConfig& cfg,
                   const compiler::CompileResult& r, const compiler::CompileResult& dbg, bool force) {
  const std::vector<float> none;
  const std::vector<float>& x = ds.inputs.empty() ? none : ds.inputs[0].f;
  const int64_t K = lm.layers.empty() ? 0 : lm.layers.front().K;
  const int64_t rows = K > 0 ? static_cast<int64_t>(x.size()) / K : 0;
  compiler::Fp16Bound fb;
  bool dense = true;
  // int8 models: the output's difference from the dataset is informational; the int8 bound is checked
  // layer by layer on the per-step program below (compiler/reference/int8_bound.h).
  const bool q8 = r.quant != nullptr;
  if (q8) {
    dense = false;
  } else {
    try {
      fb = compiler::fp16_dense_bound(lm, x, rows);
    } catch (const InputError&) {
      dense = false;
    }
  }
  const sim::SimResult s = simulate_dataset(ds, g, lm, cfg, r, force);
  bool ok = s.cycles == r.program.predicted_cycles;
  std::cout << fmt::format("{}: simulated {} cycles ({})\n", ds.dir, s.cycles,
                           ok ? "matches prediction" : "MISMATCH with prediction");
  for (size_t o = 0; o < g.outputs().size(); ++o) {
    const std::string& name = g.tensor(g.outputs()[o]).name;
    const DType t = compiler::row_blocks(r.program, name).front().dtype;
    const std::vector<double> got = compiler::from_chip_output(
        lm, g, g.outputs()[o], from_chip_bytes(compiler::gather_output(r.program, name, s.outputs), t));
    const ref::Value& want = ds.outputs[o];
    if (got.size() != static_cast<size_t>(want.elements()) || (dense && fb.documented.size() != got.size()))
      throw InputError(fmt::format("{}/output_{}.pb: output '{}' has {} elements, the program produced {}", ds.dir, o,
                                   name, want.elements(), got.size()));
    double max_abs = 0, max_rel = 0, doc_at_max = 0, fo_at_max = 0, worst_ratio = 0;
    int64_t bad = 0;
    for (size_t k = 0; k < got.size(); ++k) {
      const double w = want.as_float(static_cast<int64_t>(k));
      const double err = std::fabs(got[k] - w);
      if (!std::isnan(max_abs) && (std::isnan(err) || err > max_abs)) {  // a NaN error stays the maximum
        max_abs = err;
        if (dense) {
          doc_at_max = fb.documented[k];
          fo_at_max = fb.first_order[k];
        }
      }
      if (w != 0) max_rel = std::max(max_rel, err / std::fabs(w));
      if (!dense) continue;
      const double b = std::min(fb.documented[k], fb.first_order[k]);
      if (!(err <= b)) ++bad;
      if (b > 0) worst_ratio = std::max(worst_ratio, err / b);
    }
    if (dense) {
      std::cout << fmt::format("  output '{}' ({} elements): max abs err {:.6g} (allowed there: first-order bound "
                               "{:.6g}, documented bound {:.6g}), max rel err {:.6g}, worst err/bound {:.4g}, {} "
                               "outside bound -> {}\n",
                               name, got.size(), max_abs, fo_at_max, doc_at_max, max_rel, worst_ratio, bad,
                               bad == 0 ? "ok" : "FAIL");
      ok = ok && bad == 0;
    } else {
      std::cout << fmt::format("  output '{}' ({} elements): max abs difference from the dataset's fp32 output "
                               "{:.6g}, max rel difference {:.6g} (informational: no end-to-end bound for this "
                               "model; see the per-step check)\n",
                               name, got.size(), max_abs, max_rel);
    }
  }
  // Per-step verification on the keep_intermediates program.
  const sim::SimResult sd = simulate_dataset(ds, g, lm, cfg, dbg, force);
  bool same = sd.cycles == dbg.program.predicted_cycles;
  std::cout << fmt::format("  per-step program (every intermediate kept): simulated {} cycles ({})\n", sd.cycles,
                           same ? "matches prediction" : "MISMATCH with prediction");
  for (size_t o = 0; o < g.outputs().size(); ++o) {
    const std::string& name = g.tensor(g.outputs()[o]).name;
    const bool eq = compiler::gather_output(r.program, name, s.outputs) ==
                    compiler::gather_output(dbg.program, name, sd.outputs);
    if (!eq) std::cout << fmt::format("  output '{}' differs between the program and the per-step program -> FAIL\n",
                                      name);
    same = same && eq;
  }
  // int8 models: every step from the chip's own inputs (compiler/reference/int8_step_check.h): int8
  // layers within the int8 bound, quantizing steps within rounding + clipping, the rest fp16 local.
  compiler::Int8StepCheck i8;
  if (q8) {
    i8 = compiler::verify_int8_steps(g, lm, *r.quant, ds.inputs, dbg.program, sd.outputs);
    for (const compiler::Int8LayerVerdict& v : i8.layers)
      std::cout << fmt::format("  int8 layer '{}' ({} elements): max err {:.6g}, max bound {:.6g}, max |ref| {:.6g}, "
                               "worst err/bound {:.4g}, {} outside the int8 bound -> {}\n",
                               v.layer, v.elements, v.max_err, v.max_bound, v.max_ref, v.worst_ratio, v.outside,
                               v.ok() ? "ok" : "FAIL");
  }
  const ref::StepCheck sc = q8 ? i8.steps
                               : ref::verify_steps(g, ds.inputs, ref::chip_graph_tensors(g, lm, dbg.program, sd.outputs));
  for (const ref::StepVerdict& v : sc.steps)
    if (!v.ok())
      std::cout << fmt::format("  step '{}' ({}) -> '{}': {} of {} elements outside its local bound{}, worst err "
                               "{:.6g} vs bound {:.6g} -> FAIL\n",
                               v.op, v.kind, v.tensor, v.outside + v.unbounded, v.elements,
                               v.unbounded ? fmt::format(" ({} with no finite bound)", v.unbounded) : "",
                               v.err_at_worst, v.bound_at_worst);
  const ref::StepVerdict* w = sc.worst();
  if (q8)
    std::cout << fmt::format("  per-step check: {} steps (stored IR ops of {}, quantized copies, quantizing steps); {}",
                             sc.steps.size(), sc.ops, sc.ok() ? "all within their local bounds" : "FAILED");
  else
    std::cout << fmt::format("  per-step check: {} of {} IR ops have their output on the chip; {}", sc.steps.size(),
                             sc.ops, sc.ok() ? "all within their local bounds" : "FAILED");
  if (w)
    std::cout << fmt::format("; worst step '{}' ({}) -> '{}': err/bound {:.4g} (err {:.6g}, bound {:.6g}){}", w->op,
                             w->kind, w->tensor, w->worst_ratio, w->err_at_worst, w->bound_at_worst,
                             w->exact ? ", exact view" : "");
  if (q8)
    std::cout << fmt::format("; {} int8 layers {}", i8.layers.size(),
                             i8.ok() ? "within the int8 bound" : "NOT all within the int8 bound");
  const bool steps_ok = q8 ? i8.ok() : sc.ok() && !sc.steps.empty();
  std::cout << (steps_ok && same ? " -> ok\n" : " -> FAIL\n");
  return ok && same && steps_ok;
}

// `lpusim check MODEL DATASET_DIR...`: compile, check timing-mode cycles, then every dataset.
void run_check(const CompileArgs& a) {
  if (a.datasets.empty()) return run_run(a, true);
  if (a.model.rfind("gemm:", 0) == 0)
    throw InputError(fmt::format("MODEL '{}': DATASET_DIR needs an ONNX model (a gemm:MxKxN has no named inputs)",
                                 a.model));
  auto cfg = chip_of(a);
  const ir::Graph g = frontend::import_onnx(a.model);
  guard_compile_weights(graph_weight_elements(g), a.model, a.force);
  std::vector<Dataset> sets;  // all loaded (and checked) before anything is simulated
  for (const std::string& d : a.datasets) sets.push_back(load_dataset(d, g));
  compiler::CompileOptions opt = options_of(a);
  if (opt.precision == compiler::Precision::INT8) {  // calibrate on --calibrate, else on the checked datasets
    for (const std::string& d : a.calibrate) opt.calibration.push_back(load_dataset(d, g).inputs);
    if (a.calibrate.empty())
      for (const Dataset& ds : sets) opt.calibration.push_back(ds.inputs);
  }
  const compiler::CompileResult r = compiler::compile(g, *cfg, opt);
  compiler::CompileOptions dopt = opt;
  dopt.keep_intermediates = true;
  dopt.quant = r.quant;  // int8: the same scales
  dopt.matmul_replay = r.matmul_decisions;  // the same k-tile pieces per plane: the same fp32 partial sums
  dopt.lower = r.lower;                     // the same lowering (compile() may have left heads unpaired)
  const compiler::CompileResult dbg = compiler::compile(g, *cfg, dopt);
  compiler::LoweredModel lm = compiler::lower_graph(g, cfg->vector_bytes(), r.lower);
  if (r.quant) compiler::apply_quant_copies(g, *r.quant, &lm);  // the layers as compiled (int8 copies)
  CompileArgs timing = a;
  timing.mode = "timing";
  const sim::SimResult st = simulate_model(timing, *cfg, r);
  bool ok = print_prediction_check(r, st);
  for (const Dataset& ds : sets) ok = check_dataset(ds, g, lm, *cfg, r, dbg, a.force) && ok;
  std::cout << (ok ? "check passed\n" : "check FAILED\n");
  if (!ok) throw CLI::RuntimeError(1);
}

void add_common(CLI::App* sub, CompileArgs* a) {
  sub->add_option("--precision", a->precision, "fp16 (default) or int8 (models: dense layers quantized, see --calibrate)");
  sub->add_option("--calibrate", a->calibrate,
                  "int8 models: ONNX test-data directories whose inputs set the activation scales (check: default "
                  "the checked datasets)");
  sub->add_option("--chip", a->chip, "chip configuration YAML (default: built-in tsp-v1)");
  sub->add_flag("--force", a->force, "run even if the estimated host memory exceeds what is available");
}

}  // namespace

void register_compile(CLI::App& app) {
  auto ca = std::make_shared<CompileArgs>();
  CLI::App* c = app.add_subcommand("compile", "Compile a model (ONNX file or gemm:MxKxN) into a program");
  c->add_option("model", ca->model, "model: .onnx file or gemm:MxKxN")->required();
  c->add_option("-o,--output", ca->out, "program file to write (default a.lpu)");
  c->add_option("--asm", ca->asm_path, "also write the program as assembly");
  c->add_flag("--memory-map", ca->memory_map, "print the SRAM memory map");
  add_common(c, ca.get());
  c->callback([ca]() { run_compile(*ca); });

  auto ra = std::make_shared<CompileArgs>();
  CLI::App* r = app.add_subcommand("run", "Compile a model, simulate it and print the report");
  r->add_option("model", ra->model, "model: .onnx file or gemm:MxKxN (default: a Llama-2 7B decode, see lpusim llm)");
  r->add_option("--mode", ra->mode, "timing (default) or functional");
  r->add_option("--json", ra->json_path, "also write the report as JSON");
  r->add_option("--trace", ra->trace_path, "write a Chrome/Perfetto trace (1 us = 1 cycle)");
  add_common(r, ra.get());
  r->callback([ra]() { run_run(*ra, false); });

  auto ka = std::make_shared<CompileArgs>();
  CLI::App* k = app.add_subcommand(
      "check", "Compile and simulate a model; exit 1 unless simulated == predicted cycles and, for each ONNX "
               "test-data dir (input_N.pb, output_N.pb), every IR op's result on the chip is within its local "
               "bound, recomputed from the chip's own inputs (docs/compiler.md \"Precision\")");
  k->add_option("model", ka->model, "model: .onnx file or gemm:MxKxN")->required();
  k->add_option("datasets", ka->datasets, "ONNX test-data directories (ONNX models only; functional mode)");
  k->add_option("--mode", ka->mode, "timing (default) or functional (without DATASET_DIR)");
  add_common(k, ka.get());
  k->callback([ka]() { run_check(*ka); });
}

}  // namespace lpu::cli
