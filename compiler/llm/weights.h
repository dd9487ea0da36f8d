// Deterministic synthetic weights of an LLM, shared by the segment graphs (segments.cpp) and the
// plain Eigen reference forward (reference_forward.cpp) so both compute the same model.
// Every element is a pure function of (seed, layer, tensor, expert, global element index), so a
// tensor-parallel shard generates exactly its slice of the unsharded tensor (counter-based RNG, no
// stream state). Matrices and biases: uniform with std 0.02 (N(0, 0.02)-like); norm gains:
// 1 + U(-0.1, 0.1); norm biases: uniform with std 0.02.
#pragma once
#include <cstdint>
#include <vector>

namespace lpu::llm {

// Logical (unsharded) tensors, row-major [rows, cols], x . W convention (inputs on the left):
//  Q [hidden, heads*hd]   K, V [hidden, kv_heads*hd]   O [heads*hd, hidden]   Q/K/V/OBias [1, cols]
//  Norm1G/B, Norm2G/B [1, hidden]  (pre-LN: before attention / FFN; bert post-LN: after them)
//  Up, Gate [hidden, ffn]  Down [ffn, hidden]  UpBias [1, ffn]  DownBias [1, hidden]  (per expert)
//  Router [hidden, experts]
//  FinalG/B [1, hidden]  LmHead [hidden, vocab]  (layer index ignored)
//  bert MLM head: MlmDense [hidden, hidden], MlmDenseBias, MlmNormG/B [1, hidden], MlmBias [1, vocab]
enum class Wt : uint32_t {
  Q, K, V, O, QBias, KBias, VBias, OBias, Norm1G, Norm1B, Norm2G, Norm2B,
  Up, Gate, Down, UpBias, DownBias, Router, FinalG, FinalB, LmHead,
  MlmDense, MlmDenseBias, MlmNormG, MlmNormB, MlmBias
};

// Element `index` (row * cols + col of the logical tensor) of tensor t.
float weight_at(uint64_t seed, int64_t layer, Wt t, int64_t expert, int64_t index);

// Block rows [r0, r0+nr) x cols [c0, c0+nc) of a logical tensor with `cols` columns, row-major.
std::vector<float> weight_block(uint64_t seed, int64_t layer, Wt t, int64_t expert, int64_t cols, int64_t r0,
                                int64_t nr, int64_t c0, int64_t nc);

// Rotary tables for positions pos0 .. pos0+count-1 (row i = position pos0 + i), head_dim columns,
// HF "rotate_half" layout: column c uses frequency theta^(-2 (c mod hd/2) / hd); computed in double
// and rounded once to float.
void rope_tables(int64_t head_dim, double theta, int64_t pos0, int64_t count, std::vector<float>* cos_t,
                 std::vector<float>* sin_t);

}  // namespace lpu::llm
