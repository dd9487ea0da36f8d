// Partition planner (see partition.h): piece sizes per tensor-parallel shard, greedy packing of
// consecutive pieces into stages, fewest chips or a forced chip count.
#include "compiler/llm/partition.h"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <numeric>
#include <optional>

#include "compiler/llm/collective.h"
#include "compiler/passes/tiling.h"
#include "isa/chip_config.h"

namespace lpu::llm {

int weight_bytes(WeightPrecision p) { return p == WeightPrecision::INT8 ? 1 : 2; }
std::string precision_name(WeightPrecision p) { return p == WeightPrecision::INT8 ? "int8" : "fp16"; }

namespace {

constexpr uint64_t kKvBytes = 2;  // KV cache entries are f16 (the chip's activation type)

std::string mib(uint64_t b) { return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1024.0 * 1024.0)); }

struct Sizes {
  uint64_t attn_w = 0, ffn_w = 0, rest_w = 0;  // parameters of one layer: split / split / replicated
};

Sizes layer_sizes(const LlmConfig& m) {
  Sizes s;
  const int64_t qo = 2 * m.hidden * m.heads * m.head_dim;
  const int64_t kv = 2 * m.hidden * m.kv_heads * m.head_dim;
  s.attn_w = static_cast<uint64_t>(qo + kv);
  s.ffn_w = static_cast<uint64_t>((m.gated_ffn ? 3 : 2) * m.hidden * m.ffn * std::max<int64_t>(1, m.experts));
  const int64_t rest = m.layer_params() - static_cast<int64_t>(s.attn_w + s.ffn_w);
  s.rest_w = static_cast<uint64_t>(std::max<int64_t>(0, rest));
  return s;
}

int64_t kv_entries(const PlanRequest& r) { return std::max(r.prompt, r.context + 1); }

// KV heads one chip of a `tp`-wide shard holds: kv_heads / tp, or one replicated head when tp is
// wider than the kv heads (segments.h, KV-head replication).
int64_t kv_heads_per_chip(const LlmConfig& m, int64_t tp) { return std::max<int64_t>(1, m.kv_heads / tp); }

// Activation working set of one piece at a time on one chip (estimate; see partition.h).
uint64_t work_estimate(const LlmConfig& m, const PlanRequest& r, int64_t tp) {
  auto ws = [&](int64_t rows, int64_t ctx) {
    const int64_t experts = std::max<int64_t>(1, m.experts);
    int64_t b = rows * m.hidden * (2 * 3 + 4 * 2);                       // x, normed, residual f16; partials f32
    b += rows * (m.ffn * experts / tp) * 2 * 3;                          // FFN intermediates f16
    b += rows * ctx * 4 * 3;  // scores, exp, probabilities f32 of one head (heads run one after another; SRAM reused)
    b += rows * (m.heads / tp + 2 * kv_heads_per_chip(m, tp)) * m.head_dim * 2 * 2;  // q, k, v (+ rotated) f16
    return static_cast<uint64_t>(b);
  };
  return std::max(ws(r.batch * r.prompt, r.prompt), ws(r.batch, r.context + 1));
}

std::vector<PlanPiece> make_pieces(const LlmConfig& m, const PlanRequest& r, int64_t tp, uint64_t usable) {
  const Sizes s = layer_sizes(m);
  const uint64_t wb = static_cast<uint64_t>(weight_bytes(r.precision));
  const uint64_t t = static_cast<uint64_t>(tp);
  std::vector<PlanPiece> out;
  const bool decoder = m.causal;
  for (int64_t l = 0; l < m.layers; ++l) {
    PlanPiece a;
    a.kind = SegmentKind::Attention;
    a.layer = l;
    a.tp = tp;
    a.shard_size = tp;
    // q and o split by heads; k and v by kv heads, or one whole kv head per chip when tp > kv_heads
    // (KV-head replication); norms, biases, router: replicated (counted here).
    const uint64_t kv_w = static_cast<uint64_t>(2 * m.hidden * m.head_dim * kv_heads_per_chip(m, tp));
    const uint64_t qo_w = static_cast<uint64_t>(2 * m.hidden * m.heads * m.head_dim) / t;
    a.weight_bytes = (qo_w + kv_w + s.rest_w) * wb;
    a.matrix_weights = qo_w + kv_w;
    if (decoder)
      a.kv_bytes = 2 * static_cast<uint64_t>(r.batch * r.in_flight * kv_entries(r)) *
                   static_cast<uint64_t>(kv_heads_per_chip(m, tp)) *
                   static_cast<uint64_t>(m.head_dim) * kKvBytes;
    out.push_back(a);
    // FFN: columns (or experts) over tp chips; a shard over half a chip's usable SRAM is cut into
    // parts (consecutive pieces on the same tp ranks, Shard::size = tp x parts; an MoE expert's
    // columns are then split, segments.h) [assumed planner policy: the compiler's SRAM allocator
    // needs contiguous room for each weight group next to the activations; a Mixtral expert (176 MB
    // int8) on a 220 MiB chip does not get it, half of it does].
    const uint64_t ffn_limit = std::max<uint64_t>(1, usable / 2);
    int64_t fparts = 1;
    auto ffn_ok = [&](int64_t n) {
      const int64_t sz = tp * n;
      const bool experts_ok = m.experts == 0 || (sz <= m.experts ? m.experts % sz == 0
                                                                 : sz % m.experts == 0 && m.ffn % (sz / m.experts) == 0);
      return experts_ok && (m.experts > 0 || m.ffn % sz == 0);
    };
    while (fparts < 64 && (s.ffn_w / t * wb / static_cast<uint64_t>(fparts) > ffn_limit || !ffn_ok(fparts))) ++fparts;
    if (!ffn_ok(fparts)) fparts = 1;  // no valid cut: one piece (the compile reports what does not fit)
    for (int64_t j = 0; j < fparts; ++j) {
      PlanPiece f;
      f.kind = SegmentKind::Ffn;
      f.layer = l;
      f.tp = tp;
      f.shard_size = tp * fparts;
      f.part = j;
      f.weight_bytes = s.ffn_w / t * wb / static_cast<uint64_t>(fparts);
      f.matrix_weights = s.ffn_w / t / static_cast<uint64_t>(fparts);
      out.push_back(f);
    }
  }
  if (!decoder) {
    // The encoder's output LayerNorm (PlanPiece::norm_only) on every chip of the last stage's
    // group, which all hold the all-reduced hidden state; its gain and bias rows.
    PlanPiece h;
    h.kind = SegmentKind::LmHead;
    h.layer = -1;
    h.tp = h.shard_size = tp;
    h.norm_only = true;
    h.weight_bytes = static_cast<uint64_t>(2 * m.hidden) * wb;
    out.push_back(h);
  } else {
    // LM head: vocab columns over head_tp chips, in parts of at most a quarter of a chip each.
    const int64_t ht = head_tp(m, tp);
    const uint64_t head = static_cast<uint64_t>(m.hidden * m.vocab) * wb;
    const uint64_t limit = std::max<uint64_t>(1, usable / 4);
    int64_t parts = 1;
    while (head / static_cast<uint64_t>(ht * parts) > limit || m.vocab % (ht * parts) != 0) {
      if (++parts > m.vocab)
        throw InputError(fmt::format("{}: vocab {} cannot be cut into LM-head parts of <= {} bytes per chip", m.name,
                                     m.vocab, limit));
    }
    for (int64_t j = 0; j < parts; ++j) {
      PlanPiece h;
      h.kind = SegmentKind::LmHead;
      h.layer = -1;
      h.tp = ht;
      h.shard_size = ht * parts;
      h.part = j;
      h.weight_bytes = (head / static_cast<uint64_t>(ht * parts)) + static_cast<uint64_t>(m.hidden) * wb;
      h.matrix_weights = static_cast<uint64_t>(m.hidden * m.vocab) / static_cast<uint64_t>(ht * parts);
      out.push_back(h);
    }
  }
  return out;
}

uint64_t piece_bytes(const PlanPiece& p) { return p.weight_bytes + p.kv_bytes; }

// Greedy packing of consecutive pieces under `cap` bytes per chip; 0 stages if a piece exceeds cap.
std::vector<StagePlan> pack(const std::vector<PlanPiece>& pieces, uint64_t cap) {
  std::vector<StagePlan> st;
  uint64_t used = cap;  // forces a new stage for the first piece
  for (size_t i = 0; i < pieces.size(); ++i) {
    const uint64_t b = piece_bytes(pieces[i]);
    if (b > cap) return {};
    if (st.empty() || used + b > cap) {
      st.emplace_back();
      used = 0;
    }
    st.back().pieces.push_back(i);
    st.back().weight_bytes += pieces[i].weight_bytes;
    st.back().kv_bytes += pieces[i].kv_bytes;
    used += b;
  }
  return st;
}

// Smallest per-chip capacity (<= cap) whose greedy packing needs at most `stages` stages.
std::vector<StagePlan> pack_into(const std::vector<PlanPiece>& pieces, uint64_t cap, size_t stages) {
  std::vector<StagePlan> best = pack(pieces, cap);
  if (best.empty() || best.size() > stages) return {};
  uint64_t lo = 0, hi = cap;
  for (const PlanPiece& p : pieces) lo = std::max(lo, piece_bytes(p));
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    std::vector<StagePlan> s = pack(pieces, mid);
    if (!s.empty() && s.size() <= stages) {
      hi = mid;
      best = std::move(s);
    } else {
      lo = mid + 1;
    }
  }
  return best;
}

Plan finish(const LlmConfig& m, const PlanRequest& r, const ChipConfig& chip, int64_t tp,
            std::vector<PlanPiece> pieces, std::vector<StagePlan> stages, uint64_t work) {
  Plan p;
  p.tp = tp;
  p.requested_chips = r.chips;
  p.sram_per_chip = chip.sram_bytes_per_chip();
  p.usable_per_chip = static_cast<uint64_t>(static_cast<double>(p.sram_per_chip) * (1.0 - r.margin));
  p.work_bytes = work;
  for (StagePlan& s : stages) s.work_bytes = work;
  p.pieces = std::move(pieces);
  p.stages = std::move(stages);
  p.chips = tp * static_cast<int64_t>(p.stages.size());
  return p;
}

// Stored size of a [rows, inner] tensor of `bytes` per element: whole vectors per row (place_tensor).
uint64_t placed_rows_bytes(int64_t rows, int64_t inner, int64_t bytes, const ChipConfig& chip) {
  const uint64_t lanes = chip.vector_bytes();
  return static_cast<uint64_t>(rows) * ((static_cast<uint64_t>(inner) + lanes - 1) / lanes) * lanes *
         static_cast<uint64_t>(bytes);
}

}  // namespace

int64_t head_tp(const LlmConfig& m, int64_t tp) {
  for (int64_t t = tp; t >= 1; --t)
    if (m.vocab % t == 0) return t;
  return 1;
}

uint64_t placed_weight_bytes(int64_t K, int64_t N, int64_t bytes_per_weight, const ChipConfig& chip) {
  // Mirrors place_weights (compiler/passes/tiling.cpp); tests/llm/test_piece_fit.cpp checks it
  // against the allocator's memory map byte for byte.
  const uint64_t lanes = chip.vector_bytes();
  const uint64_t kt = (static_cast<uint64_t>(K) + lanes - 1) / lanes, nt = (static_cast<uint64_t>(N) + lanes - 1) / lanes;
  const uint64_t per_group = std::max<uint64_t>(1, chip.sram_addresses / 2);
  const uint64_t need = (kt * nt * lanes + per_group - 1) / per_group;
  const uint64_t groups = std::max<uint64_t>(
      1, std::min<uint64_t>(std::max<uint64_t>(compiler::TilingOptions{}.weight_groups, need), lanes));
  const uint64_t rows_per_group = (lanes + groups - 1) / groups;
  return groups * kt * nt * rows_per_group * lanes * static_cast<uint64_t>(bytes_per_weight);
}

uint64_t piece_sram_need(const LlmConfig& m, const PlanRequest& r, const PlanPiece& p, const ChipConfig& chip) {
  const int64_t wb = weight_bytes(r.precision);
  const bool q8 = r.precision == WeightPrecision::INT8;
  // A projection: its weight tiles, its int8 per-column scales (f32 row), its bias (f32 row).
  auto proj = [&](int64_t K, int64_t N, bool bias) {
    uint64_t b = placed_weight_bytes(K, N, wb, chip);
    if (q8) b += placed_rows_bytes(1, N, 4, chip);
    if (bias) b += placed_rows_bytes(1, N, 4, chip);
    return b;
  };
  const int64_t hd = m.head_dim;
  uint64_t need = 0;
  if (p.kind == SegmentKind::Attention) {
    // segments.cpp attention(): the shard's q and k columns in one fused projection (RoPE's
    // rotate-half applied to its output by a permutation matmul) and v in another (families
    // without RoPE: q, k, v in one, with bias); o_proj (below).
    // A shard size wider than the kv heads replicates one kv head per shard (segments.h): the
    // shard's q_per query heads share it.
    const int64_t kv_per = kv_heads_per_chip(m, p.shard_size), q_per = m.heads / p.shard_size;
    const int64_t nq = q_per * hd, nk = kv_per * hd;
    const int64_t C = r.context, B = r.batch;
    if (m.rope)  // + the [nq + nk]^2 rotate-half permutation (fp16) if nq + nk < hidden, else the twin projection
      need += proj(m.hidden, nq + nk, false) + proj(m.hidden, nk, false) +
              (nq + nk < m.hidden ? placed_weight_bytes(nq + nk, nq + nk, 2, chip) : proj(m.hidden, nq + nk, false));
    else need += proj(m.hidden, nq + 2 * nk, true);
    // o_proj: the per-head products and their Add chain are lowered as ONE product over the heads'
    // P.V rows (lower_attention.cpp merge_product_sums), each head's [head_dim, hidden] rows in
    // their own 320-row K tile; one int8 scale row.
    const int64_t lanes = static_cast<int64_t>(chip.vector_bytes());
    need += proj(q_per > 1 ? q_per * lanes : hd, m.hidden, false);
    // Row Concats and copies of views are lowered as MXM products with a [head_dim, head_dim]
    // identity per input (lower_attention.cpp), placed like weights (fp16) in as many 320-row K
    // tiles as the view's lanes span in its source (a head at lanes 256..383 spans two): per
    // sequence the stacked query heads (or the copy of the one head's q view) and, per kv head, K
    // and V (cache + new row); the k_new / v_new outputs (views of the projections); per query head
    // its rows of every sequence (B > 1; int8 pieces' o_proj Cast is a view, no copy). Whole-row copies need no identity
    // (LoweredLayer::copy: moved MEM -> MEM): the cache inputs and, with RoPE and one kv head per
    // shard, v's new row (all of the v projection's lanes).
    auto view_copy = [&](int64_t c0) {
      const int64_t kt = (c0 % lanes + hd + lanes - 1) / lanes;
      return placed_weight_bytes(kt * lanes, hd, 2, chip);
    };
    const int64_t kvs = kv_per * (C > 0 ? 2 : 1), v0 = m.rope ? 0 : nq + nk;  // v0: v's first lane in its projection
    const uint64_t b = static_cast<uint64_t>(B);
    // A row Concat of lane slices each inside one vector (several q heads of a sequence; the new k
    // rows of several kv heads without a cache) is SXM lane moves, no identity (lower_attention.cpp
    // concat_as_moves).
    auto moves = [&](int64_t n, int64_t c0, int64_t step) {
      bool ok = n > 1;
      for (int64_t j = 0; j < n && ok; ++j) ok = (c0 + j * step) % lanes + hd <= lanes;
      return ok;
    };
    const bool q_moves = moves(q_per, 0, hd), k_moves = C == 0 && moves(kv_per, nq, hd);
    for (int64_t j = 0; j < q_per && !q_moves; ++j) need += b * view_copy(j * hd);  // q heads at their lanes of q|k
    for (int64_t gi = 0; gi < kv_per; ++gi) {
      const uint64_t kn = view_copy(nq + gi * hd), vn = view_copy(v0 + gi * hd);
      need += kn + vn;  // the k_new / v_new outputs
      if (kvs > 1) need += b * ((k_moves ? 0 : kn) + (C > 0 && m.rope && kv_per == 1 ? 0 : vn));  // new rows in the K / V Concats
    }
    need += static_cast<uint64_t>(q_per * (B > 1 ? B : 0)) * view_copy(0);
    if (C > 0) {
      // The cache inputs (k and v per kv head) and, for one sequence at a time, the Concat of every
      // kv head's cache with its new row (K and V), f16.
      need += static_cast<uint64_t>(2 * kv_per) * placed_rows_bytes(B * C, hd, 2, chip);
      need += 2 * placed_rows_bytes(kv_per * (C + 1), hd, 2, chip);
    }
  } else if (p.kind == SegmentKind::Ffn) {
    const uint64_t mats = m.gated_ffn ? 2 : 1;  // up (+ gate): [hidden, n]; down: [n, hidden]
    if (m.experts == 0) {
      const int64_t n = m.ffn / p.shard_size;
      need += mats * proj(m.hidden, n, !m.rope) + proj(n, m.hidden, false);
    } else {
      const int64_t E = m.experts;
      const int64_t split = p.shard_size > E && p.shard_size % E == 0 ? p.shard_size / E : 1;
      const int64_t per = split > 1 ? 1 : E / p.shard_size, n = m.ffn / split;
      need += static_cast<uint64_t>(per) * (mats * proj(m.hidden, n, !m.rope) + proj(n, m.hidden, false));
      // Router (replicated) and the top-k helper matrices (fp16 constants, segments.cpp select_experts).
      need += proj(m.hidden, E, false) + placed_weight_bytes(E, E * E, 2, chip) + placed_weight_bytes(E * E, E, 2, chip) +
              static_cast<uint64_t>(E) * placed_weight_bytes(E, 1, 2, chip);
    }
  } else if (p.norm_only) {
    need += 2 * placed_rows_bytes(1, m.hidden, 4, chip);  // the LayerNorm's gain and bias rows
  } else {
    need += proj(m.hidden, m.vocab / p.shard_size, false);
  }
  return need;
}

std::vector<int64_t> valid_tp(const LlmConfig& m, const ChipConfig& chip) {
  std::vector<int64_t> out;
  // The all-reduce's reach (collective.h link_plan): up to a node, or whole nodes of one rack as
  // far as the C2C links connect them.
  const int64_t lim = static_cast<int64_t>(std::max<uint32_t>(1, chip.chips_per_node)) *
                      std::max<int64_t>(1, chip.nodes_per_rack);
  for (int64_t t = 1; t <= lim; ++t) {
    if (t > 1 && !link_plan_ok(chip, t)) continue;
    // Attention: whole kv heads per shard, or one replicated kv head per shard (segments.h).
    if (m.heads % t || (m.kv_heads % t && t % m.kv_heads)) continue;
    // FFN: dense columns; MoE whole experts per shard, or each expert's columns over t / experts shards.
    if (m.experts == 0 ? m.ffn % t != 0
                       : m.experts % t != 0 && (t % m.experts != 0 || m.ffn % (t / m.experts) != 0))
      continue;
    out.push_back(t);
  }
  return out;
}

std::vector<Plan> plan_candidates(const LlmConfig& m, const PlanRequest& r, const ChipConfig& chip) {
  if (r.batch < 1 || r.prompt < 1 || r.context < 0)
    throw InputError(fmt::format("{}: batch {} and prompt {} must be >= 1 and context {} >= 0", m.name, r.batch,
                                 r.prompt, r.context));
  if (!(r.margin >= 0 && r.margin < 1)) throw InputError(fmt::format("planner margin {} must be in [0, 1)", r.margin));
  // Positions the model has (learned position tables, RoPE's trained range): a prompt of P tokens
  // uses 0..P-1, the decoded token at context C uses position C.
  if (std::max(r.prompt, r.context + 1) > m.max_positions)
    throw InputError(fmt::format("{}: prompt {} / context {} needs {} positions; the model has {} "
                                 "(max_position_embeddings / n_positions in its config)",
                                 m.name, r.prompt, r.context, std::max(r.prompt, r.context + 1), m.max_positions));
  if (r.in_flight < 1 || r.in_flight > kMaxInFlight)
    throw InputError(fmt::format("{}: --in-flight {} must be in [1, {}] (groups of --batch sequences in flight)", m.name,
                                 r.in_flight, kMaxInFlight));
  if (r.chips < 0) throw InputError(fmt::format("--chips {} must be >= 1 (or 0 for the fewest that fit)", r.chips));
  const uint64_t usable = static_cast<uint64_t>(static_cast<double>(chip.sram_bytes_per_chip()) * (1.0 - r.margin));
  std::vector<int64_t> tps = valid_tp(m, chip);
  if (r.tp != 0) {
    if (std::find(tps.begin(), tps.end(), r.tp) == tps.end())
      throw InputError(fmt::format("{}: tensor-parallel size {} is not allowed; valid sizes on chip '{}': {}", m.name,
                                   r.tp, chip.name, fmt::join(tps, ", ")));
    tps = {r.tp};
  }
  // The plan at `tp` in at most `stages` stages (0: as few as fit); nullopt with the numbers in
  // *why if it does not fit. A tp is only taken if every piece's OWN compiled program fits one chip
  // (compile_bytes), then pieces are packed into stages by their parameters and KV cache.
  auto attempt = [&](int64_t tp, size_t stages, std::string* why) -> std::optional<Plan> {
    const uint64_t work = work_estimate(m, r, tp);
    std::vector<PlanPiece> pieces = make_pieces(m, r, tp, usable);
    for (PlanPiece& p : pieces) p.compile_bytes = piece_sram_need(m, r, p, chip) + work;
    for (const PlanPiece& p : pieces)
      if (p.compile_bytes > usable) {
        *why = fmt::format("tp {}: the compiled {} piece needs {} per chip as the compiler lays it out (weights in "
                           "{}x{} tiles, KV cache one vector per row, working set {}), usable {}",
                           tp, segment_kind_name(p.kind), mib(p.compile_bytes), chip.vector_bytes(),
                           chip.vector_bytes(), mib(work), mib(usable));
        return std::nullopt;
      }
    if (work >= usable) {
      *why = fmt::format("tp {}: the working set alone ({}) exceeds the usable {} per chip", tp, mib(work), mib(usable));
      return std::nullopt;
    }
    std::vector<StagePlan> st = stages ? pack_into(pieces, usable - work, stages) : pack(pieces, usable - work);
    if (st.empty()) {
      uint64_t big = 0, total = 0;
      for (const PlanPiece& p : pieces) {
        big = std::max(big, piece_bytes(p));
        total += piece_bytes(p);
      }
      *why = stages ? fmt::format("tp {} x {} stages: {} of weights + KV cache per tensor-parallel rank need >= {} per "
                                  "chip (+ working set {}), but a chip has {} usable",
                                  tp, stages, mib(total), mib((total + stages - 1) / stages), mib(work), mib(usable))
                    : fmt::format("tp {}: the largest piece needs {} + working set {} per chip, usable {}", tp, mib(big),
                                  mib(work), mib(usable));
      return std::nullopt;
    }
    return finish(m, r, chip, tp, std::move(pieces), std::move(st), work);
  };
  std::vector<Plan> out;
  std::string why;  // numbers of a failed attempt (the largest tp's, as the capacity default would report)
  for (auto it = tps.rbegin(); it != tps.rend(); ++it) {
    const int64_t tp = *it;
    if (r.chips && r.chips % tp) continue;
    std::string no;
    std::optional<Plan> p = attempt(tp, r.chips ? static_cast<size_t>(r.chips / tp) : 0, &no);
    if (p)
      out.push_back(std::move(*p));
    else if (why.empty())
      why = no;
  }
  if (out.empty()) {
    if (r.chips == 0)
      throw InputError(fmt::format("{} ({}) does not fit any tensor-parallel split on chip '{}' ({} SRAM, margin {}%): {}",
                                   m.name, precision_name(r.precision), chip.name, mib(chip.sram_bytes_per_chip()),
                                   r.margin * 100, why));
    if (why.empty()) why = fmt::format("no tensor-parallel size in {{{}}} divides {}", fmt::join(tps, ", "), r.chips);
    throw InputError(fmt::format("--chips {}: {} ({}) cannot be placed on chip '{}' ({} SRAM, margin {}%): {}", r.chips,
                                 m.name, precision_name(r.precision), chip.name, mib(chip.sram_bytes_per_chip()),
                                 r.margin * 100, why));
  }
  if (r.chips == 0) {  // the fewest chips first: keep the sizes that reach them
    int64_t fewest = out.front().chips;
    for (const Plan& p : out) fewest = std::min(fewest, p.chips);
    out.erase(std::remove_if(out.begin(), out.end(), [&](const Plan& p) { return p.chips != fewest; }), out.end());
  }
  return out;
}

Plan plan_partition(const LlmConfig& m, const PlanRequest& r, const ChipConfig& chip) {
  return plan_candidates(m, r, chip).front();
}

uint64_t install_weights_per_cycle(const ChipConfig& chip) {
  const uint64_t planes = chip.slices_of(SliceKind::MXM).size() * chip.mxm_planes;
  const uint64_t occ = std::max<uint32_t>(1, instr_timing(chip, make_instr(Opcode::LoadW)).occupancy);
  return std::max<uint64_t>(1, planes * chip.vector_bytes() / occ);
}

uint64_t install_bound_cycles(const Plan& plan, const ChipConfig& chip) {
  const uint64_t per_cycle = install_weights_per_cycle(chip);
  uint64_t cycles = 0;
  for (const StagePlan& st : plan.stages)
    for (size_t i : st.pieces) cycles += plan.pieces[i].matrix_weights / per_cycle;  // floor: stays a lower bound
  return cycles;
}

std::string Plan::describe() const {
  std::string s = fmt::format("{} chips = tensor-parallel {} x {} pipeline stages{}\n", chips, tp, stages.size(),
                              requested_chips && requested_chips != chips
                                  ? fmt::format(" (requested {}; the rest would be idle)", requested_chips)
                                  : "");
  uint64_t mx = 0;
  const StagePlan* worst = nullptr;
  for (const StagePlan& st : stages)
    if (!worst || st.total() > mx) {
      mx = st.total();
      worst = &st;
    }
  if (worst)
    s += fmt::format("SRAM per chip (fullest stage): weights {}, KV cache {}, working set {} (estimate); total {} of {} "
                     "({:.1f}%)\n",
                     mib(worst->weight_bytes), mib(worst->kv_bytes), mib(worst->work_bytes), mib(worst->total()),
                     mib(sram_per_chip), 100.0 * static_cast<double>(worst->total()) / static_cast<double>(sram_per_chip));
  return s;
}

}  // namespace lpu::llm
