// Public API of the lpusim compiler: model graph (or a bare GEMM) -> statically scheduled
// lpu::Program with its predicted cycle count, SRAM memory map and diagnostics. No SystemC here.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compiler/backend/matmul_kernel.h"
#include "compiler/ir/graph.h"
#include "compiler/passes/quantize.h"
#include "compiler/passes/schedule.h"
#include "compiler/passes/tiling.h"
#include "isa/chip_config.h"
#include "isa/program.h"
#include "isa/stream_envelope.h"

namespace lpu::compiler {

enum class Precision { FP16, INT8 };

struct CompileOptions {
  Precision precision = Precision::FP16;
  bool use_repeat = true;   // fold regular instruction runs into `repeat`
  TilingOptions tiling;
  // Keep every intermediate: no SRAM reuse, each step's result listed as an Output tensor, so a
  // functional simulation exposes it (per-step verification of `lpusim check`).
  bool keep_intermediates = false;
  // int8 models: calibration sets (one Value per graph input, graph order) the activation scales are
  // taken from (passes/quantize.h); required for --precision int8 on a model, unused otherwise.
  std::vector<std::vector<ref::Value>> calibration;
  // int8 models: which layers may run int8, and timing-only planning without calibration data
  // (passes/quantize.h, Int8Options; used by the LLM pieces).
  Int8Options int8;
  // int8 models: use this plan (e.g. an earlier CompileResult::quant) instead of calibrating.
  std::shared_ptr<const QuantPlan> quant;
  // Take every product's timing-dependent plan from an earlier compile of the same model
  // (CompileResult::matmul_decisions) instead of choosing: the values are then bit-identical to that
  // compile's even where SRAM placement and timing differ (`lpusim check`'s per-step program).
  std::shared_ptr<const std::vector<MatmulDecision>> matmul_replay;
  // When the lowering pairs attention heads (lower.pair_heads), also compile without and keep the
  // faster program (compile()); false: lower.pair_heads as given.
  bool pair_trial = true;
  // When the lowering runs a depthwise conv on the VXM (lower.vxm_depthwise), also compile with
  // every depthwise conv a dense layer on the MXM and keep the faster program (compile(); the VXM
  // form on a tie); false: lower.vxm_depthwise as given.
  bool depthwise_trial = true;
  // Lowering choices (passes/lowering.h LowerOptions: packed conv taps, fused residual Adds); off
  // for before/after measurements. A caller lowering the graph itself next to the program must
  // lower it the same way (lower_graph(g, lanes, opt.lower)).
  LowerOptions lower;
  // Layout tuning: further port-split part sizes to try after tiling.port_split_min_part_rows, in
  // order. The model is scheduled once per size and the program with the fewest predicted cycles
  // is kept (the earlier size on a tie), so the result stays deterministic. The greedy scheduler's
  // result moves by several percent with the SRAM layout (docs/compiler/figures.md, Layout
  // tuning). The tiling's own size is scheduled as an untuned compile would be (its errors are
  // reported); a further size that does not fit SRAM is passed over. Nothing more is tried when no
  // activation (non-constant tensor) is split for ports (port_split_applies): every size would give
  // the same layout. Empty: no tuning.
  std::vector<int64_t> tune_part_rows = {32, 16};
  // Layout tuning also schedules every part size with TilingOptions::spread_epilogue_rows (when it
  // changes the layout: an install-bound int8 product of at least tiling.port_split_min_rows rows,
  // epilogue_rows_spreadable) and keeps the program with the fewest predicted cycles over all of
  // them (ties: the tiling's own rows).
  bool tune_epilogue_rows = true;
  // Layout tuning then schedules the best of those layouts once more with
  // TilingOptions::whole_tile_cut (when some product has at least tiling.port_split_min_rows rows,
  // has_tall_product) and keeps it if it has fewer predicted cycles (ties: the cut tiles).
  bool tune_whole_tiles = true;
  // Then (same condition) that layout with each of these TilingOptions::weight_groups in order,
  // each scheduled on the layout kept so far and kept if shorter (ties: the layout before). More
  // groups spread a weight matrix's rows over more SRAM slices, so its `lw` reads meet other
  // reads on other ports: BERT-base's FFN piece 5,108 -> 5,042 cycles with 32
  // (docs/compiler/matmul-kernel.md "Whole-tile cuts"). Empty: none tried.
  std::vector<uint32_t> tune_weight_groups = {16, 32};
};

struct CompileResult {
  Program program;                       // program.predicted_cycles: the compiler's cycle count
  // Per chip of the program (one): its predicted stream envelope (isa/stream_envelope.h), which the
  // simulator's measured one must equal, as cycles must (system/prediction_check.h checks both).
  std::vector<StreamEnvelope> predicted_streams;
  std::string memory_map;                // SramAllocator::format_map()
  std::vector<std::string> diagnostics;  // notes for the user (layout choices, precision)
  uint64_t macs = 0;                     // useful multiply-accumulates (M*K*N summed over layers)
  MatmulStats stats;                     // instruction counts summed over layers
  std::vector<StepSpan> spans;           // per lowered step (passes/schedule.h); empty for GEMMs
  // The lowering options the program was compiled with: CompileOptions::lower, except that
  // compile() may turn pair_heads off (see compile()). lower_graph(g, lanes, lower) is the lowered
  // model of this program (the step checks read the chip's tensors through it).
  LowerOptions lower;
  // int8 models: the quantization plan (scales; QuantPlan::i8_inputs names the inputs the host
  // quantizes with quantize_host_input); null for fp16 and GEMMs.
  std::shared_ptr<const QuantPlan> quant;
  // Each product's timing-dependent plan (backend/matmul_kernel.h MatmulDecision), in schedule order.
  std::shared_ptr<const std::vector<MatmulDecision>> matmul_decisions;
};

// Compiles a graph of dense layers, elementwise ops, last-axis reductions, Softmax and
// LayerNormalization (see passes/lowering.h and docs/compiler.md). fp16: activations and weights f16,
// accumulation and bias f32, hidden activations stored f16, graph outputs f32; the model's inputs
// are declared as f16 tensors (the host converts). int8: dense layers quantized as planned by
// passes/quantize.h from opt.calibration (InputError without it), other steps fp16. work_items = rows of the first input's leading dimension ("items").
// Depthwise convs on the VXM (docs/compiler/convolution.md "Depthwise on the VXM") gain for most
// layers but not all (few channels, many taps, an input the host lays out as im2col rows): when the
// lowering ran one there, the model is also compiled with them dense, and the faster program is
// kept (ties: the VXM form). Then paired heads (passes/pair_heads.h) usually gain but not always
// (fewer pairs than MXM planes: docs/compiler/attention.md "Paired heads" has both measured): when
// the lowering paired any heads, the model is also compiled without, and the faster program is
// kept (ties: paired). CompileResult::lower says which lowering. Not with opt.depthwise_trial /
// opt.pair_trial false, nor when the caller gives the quantization plan or matmul decisions to
// replay: those belong to one lowering, opt.lower's. lower.vxm_depthwise is off on a chip without
// vxm.fused_multiply_add.
CompileResult compile(const ir::Graph& g, const ChipConfig& cfg, const CompileOptions& opt);

// A bare GEMM Y[M,N] = X[M,K] . W[K,N]: X input "X" (i8 or f16), Y output "Y" (i32 or f32), W a
// constant in the compiler's tiled layout. `w` holds K*N row-major elements of the input type
// (little-endian), or is empty for all-zero weights (timing studies).
struct GemmProblem {
  int64_t M = 320, K = 320, N = 320;
  std::vector<uint8_t> w;
};
CompileResult compile_gemm(const GemmProblem& g, const ChipConfig& cfg, const CompileOptions& opt);

}  // namespace lpu::compiler
