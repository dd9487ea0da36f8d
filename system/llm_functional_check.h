// The precision check of a functional LLM run (llm_functional.h) against the plain Eigen reference
// forward (llm::reference_forward), boundary by boundary along the whole chain of pieces.
//
// Bound (docs/compiler.md "Precision": the first-order rule n u sum|a_i b_i| per dot product and
// the per-op rules of ref::op_error_bound, docs/onnx-support.md), derived, never tuned:
// for every piece, with x_ref = the reference's input of that segment and x_chip = what reached the
// chip (the previous collective's / piece's output as simulated),
//   |out_chip - out_ref| <= B_chip + B_ref
// per element of every output (partial, k_new/v_new, logits), where
//  - B_chip: the running bound of the piece's graph evaluated as the chip stores it (weights rounded
//    to f16 with their rounding |w - f16(w)| as input error, other constants f32, every hidden
//    result f16: + 2^-11 |y| + 2^-24 (f16 subnormal step) + 2^-11 |y| per f16 intermediate the
//    lowering inserts inside an op, none today, as compiler/reference/step_check.cpp), with the
//    MEASURED input difference |x_chip - x_ref| as the input's error;
//  - B_ref: the fp32 running bound (ref::run_with_error_bound) of the unsharded segment on x_ref,
//    standing for reference_forward's own fp32 rounding (as tests/llm/test_llm_segments.cpp).
// A segment output that reaches the next piece through collectives adds, per element: each
// partial's f16 narrowing (2^-11 |p| + 2^-24 per rank) and the (tp - 1) f16 adds of the all-reduce
// (2^-11 (sum_r |p_r|) + 2^-24 each); the handoff copies exactly. The next piece's input check uses
// that sum as its bound. A whole-chain bound propagated a priori (bounds instead of measured
// differences through every layer) is vacuous here (docs/llm.md: 26.8 against logits <= 0.89 in
// fp32 after two layers, infinite for decode), so each piece's bound starts from the measured
// difference at its input: every link of the chain is a true first-order statement, and a
// violated link (e.g. a partial lost in the all-reduce) is reported at the boundary where it occurs.
// MoE Ffn pieces: the bound of the graph with the reference's expert selection as constant masks
// (the in-graph top-k is a step function whose bound is infinite); a row routed differently on the
// chip misses or adds a whole expert's contribution and shows up outside the bound.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "system/llm_functional.h"

namespace lpu::system {

struct BoundaryCheck {
  std::string what;             // e.g. "input of ffn layer 0 on chip 2", "k_new_1 of attention layer 1"
  int64_t elements = 0;
  int64_t outside = 0;          // |chip - ref| > bound (NaN counts)
  int64_t unbounded = 0;        // bound not finite
  double max_err = 0;           // max |chip - ref|
  double max_bound = 0;         // max finite bound
  double worst_ratio = 0;       // max |chip - ref| / bound
  double max_ref = 0;           // max |ref|
  bool ok() const { return outside == 0 && unbounded == 0; }
};

struct FunctionalCheck {
  std::vector<BoundaryCheck> checks;        // execution order; the last one is the logits
  std::vector<float> reference_logits;      // reference_forward's logits [B*T, vocab]
  std::vector<double> logits_bound;         // per logit: B_chip + B_ref of the LM head
  bool ok() const;
  const BoundaryCheck& logits() const { return checks.back(); }
  const BoundaryCheck* first_failure() const;  // null if ok
};

// `x` and `cache` as given to run_functional (rounded to f16 here, as the chips got them). The
// reference runs on the same rounded values, or, if `ref_cache` is given (e.g. the reference's own
// prefill K/V when the chips' cache came from a simulated prefill), on x and *ref_cache, and the
// cache inputs' measured difference |f16(cache) - ref_cache| enters every Attention piece's bound
// like x's.
FunctionalCheck check_functional(const llm::LlmConfig& m, const FunctionalRequest& req, const FunctionalRun& run,
                                 const std::vector<float>& x, const llm::KvCache* cache,
                                 const llm::KvCache* ref_cache = nullptr);

// f16-rounded copies (what the chips get), so a reference run sees the same inputs.
std::vector<float> f16_rounded(const std::vector<float>& v);
llm::KvCache f16_rounded(const llm::KvCache& c);

}  // namespace lpu::system
