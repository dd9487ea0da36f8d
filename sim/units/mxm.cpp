// MXM semantics (docs/architecture.md "Units"): lw fills a shadow weight row, iw installs shadow
// (iwt: its transpose) into the active array at its landing and zeroes shadow, abc computes acc[r] (=|+=) x . W, acc
// emits a row. Functional mode batches abc activations per plane and evaluates them as one GEMM
// when a row with a pending activation is emitted, the batch is full, or the weights change:
// int8 rows against all-int8 weights by an exact int16 dot-product kernel (SSE2, or AVX2 when the
// CPU has it; results are exact so they do not depend on the kernel) over weights transposed once
// per install, everything else by a float kernel summing each dot product in lane order (its
// value independent of the batch).
// Precise points (docs/architecture.md "Precise points" 4-5): an abc uses the weights active at its
// issue cycle; an iw issued while a lw of its plane is in flight is "lw-in-flight"; a lw issued
// after an iw but landing after it goes to the next tile (shadow after the zeroing); acc emits the
// accumulator words as they are (acc.i32 of an fp32 row gives its bits).
#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LPU_MXM_X86 1
#endif

#include <fmt/format.h>

#include "sim/core/chip_engine.h"
#include "sim/core/lane_math.h"

namespace lpu::sim::units {

void MxmPlane::init(uint32_t lanes, uint32_t acc_rows, bool functional) {
  abc_land.assign(acc_rows, 0);
  values = functional;
  lanes_ = lanes;
  acc_rows_ = acc_rows;
}

void MxmPlane::allocate() {
  shadow = RowMatrix::Zero(lanes_, lanes_);
  active = RowMatrix::Zero(lanes_, lanes_);
  acc.assign(static_cast<size_t>(acc_rows_) * lanes_, 0);
  batch_x = RowMatrix::Zero(kBatch, lanes_);
  batch_y = RowMatrix::Zero(kBatch, lanes_);
  batch_n = 0;
  batch_float_n = 0;
  row_in_batch.assign(acc_rows_, 0);
  active_t16.assign(static_cast<size_t>(lanes_) * lanes_pad(), 0);
  batch_x16.assign(static_cast<size_t>(kBatch) * lanes_pad(), 0);
  batch_y32.assign(static_cast<size_t>(kBatch) * lanes_, 0);
  active_int8 = true;  // all zero
}

void MxmPlane::convert_active() {
  const uint32_t L = lanes_, Lp = lanes_pad();
  active_int8 = true;
  for (uint32_t i = 0; i < L && active_int8; ++i) {
    const float* a = active.data() + static_cast<size_t>(i) * L;
    for (uint32_t j = 0; j < L; ++j)
      if (!(a[j] >= -128.f && a[j] <= 127.f && a[j] == std::nearbyint(a[j]))) {
        active_int8 = false;
        break;
      }
  }
  if (!active_int8) return;
  for (uint32_t i = 0; i < L; ++i) {
    const float* a = active.data() + static_cast<size_t>(i) * L;
    for (uint32_t j = 0; j < L; ++j) active_t16[static_cast<size_t>(j) * Lp + i] = static_cast<int16_t>(a[j]);
  }
}

void MxmPlane::apply_install() {
  if (iw_transpose)
    active = shadow.transpose();  // iwt: array[i][j] = shadow[j][i]
  else
    active.swap(shadow);
  shadow.setZero();
  iw_apply_pending = false;
  convert_active();
  // (Not reached by exec_mxm, which flushes at every iw.) Pending i8 rows evaluated by the float
  // GEMM against the new weights need their float activations.
  if (!active_int8)
    for (uint32_t k = 0; k < batch_n; ++k)
      if (batch_int[k])
        for (uint32_t i = 0; i < lanes_; ++i)
          batch_x(k, i) = static_cast<float>(batch_x16[static_cast<size_t>(k) * lanes_pad() + i]);
}

namespace {

// Exact int16 dot products: y[k * L + j] = sum_i x[k * Lp + i] * w[j * Lp + i] for k < n, j < L,
// accumulated in wrapping int32 (equal to the low 32 bits of the exact sum). Lp is a multiple of 16
// and both operands are zero-padded to it. R x C blocks of outputs share their operand loads.
#ifdef LPU_MXM_X86
inline int32_t hsum128(__m128i v) {
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4E));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xB1));
  return _mm_cvtsi128_si32(v);
}

template <int R, int C>
inline void dot_block_sse2(const int16_t* x, const int16_t* w, uint32_t Lp, int32_t* y, uint32_t L) {
  __m128i acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm_setzero_si128();
  for (uint32_t i = 0; i < Lp; i += 8) {
    __m128i wv[C];
    for (int c = 0; c < C; ++c) wv[c] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + static_cast<size_t>(c) * Lp + i));
    for (int r = 0; r < R; ++r) {
      const __m128i xv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + static_cast<size_t>(r) * Lp + i));
      for (int c = 0; c < C; ++c) acc[r][c] = _mm_add_epi32(acc[r][c], _mm_madd_epi16(xv, wv[c]));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) y[static_cast<size_t>(r) * L + c] = hsum128(acc[r][c]);
}

template <int R>
void dot_rows_sse2(const int16_t* x, const int16_t* w, uint32_t L, uint32_t Lp, int32_t* y) {
  uint32_t j = 0;
  for (; j + 2 <= L; j += 2) dot_block_sse2<R, 2>(x, w + static_cast<size_t>(j) * Lp, Lp, y + j, L);
  if (j < L) dot_block_sse2<R, 1>(x, w + static_cast<size_t>(j) * Lp, Lp, y + j, L);
}

__attribute__((target("avx2"))) inline int32_t hsum256(__m256i v) {
  return hsum128(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

template <int R, int C>
__attribute__((target("avx2"))) inline void dot_block_avx2(const int16_t* x, const int16_t* w, uint32_t Lp, int32_t* y,
                                                           uint32_t L) {
  __m256i acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_si256();
  for (uint32_t i = 0; i < Lp; i += 16) {
    __m256i wv[C];
    for (int c = 0; c < C; ++c)
      wv[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + static_cast<size_t>(c) * Lp + i));
    for (int r = 0; r < R; ++r) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + static_cast<size_t>(r) * Lp + i));
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_add_epi32(acc[r][c], _mm256_madd_epi16(xv, wv[c]));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) y[static_cast<size_t>(r) * L + c] = hsum256(acc[r][c]);
}

template <int R>
__attribute__((target("avx2"))) void dot_rows_avx2(const int16_t* x, const int16_t* w, uint32_t L, uint32_t Lp, int32_t* y) {
  uint32_t j = 0;
  for (; j + 2 <= L; j += 2) dot_block_avx2<R, 2>(x, w + static_cast<size_t>(j) * Lp, Lp, y + j, L);
  if (j < L) dot_block_avx2<R, 1>(x, w + static_cast<size_t>(j) * Lp, Lp, y + j, L);
}

bool have_avx2() {
  static const bool v = __builtin_cpu_supports("avx2");
  return v;
}
#endif

// Computes the int32 products of the n activation rows; dispatches on the CPU (results are exact,
// so they do not depend on the kernel chosen).
void int_products(const int16_t* x, uint32_t n, const int16_t* w, uint32_t L, uint32_t Lp, int32_t* y) {
#ifdef LPU_MXM_X86
  const bool avx2 = have_avx2();
  uint32_t k = 0;
  for (; k + 4 <= n; k += 4) {
    const int16_t* xk = x + static_cast<size_t>(k) * Lp;
    int32_t* yk = y + static_cast<size_t>(k) * L;
    avx2 ? dot_rows_avx2<4>(xk, w, L, Lp, yk) : dot_rows_sse2<4>(xk, w, L, Lp, yk);
  }
  for (; k < n; ++k) {
    const int16_t* xk = x + static_cast<size_t>(k) * Lp;
    int32_t* yk = y + static_cast<size_t>(k) * L;
    avx2 ? dot_rows_avx2<1>(xk, w, L, Lp, yk) : dot_rows_sse2<1>(xk, w, L, Lp, yk);
  }
#else
  for (uint32_t k = 0; k < n; ++k)
    for (uint32_t j = 0; j < L; ++j) {
      uint32_t s = 0;
      for (uint32_t i = 0; i < Lp; ++i)
        s += static_cast<uint32_t>(static_cast<int32_t>(x[static_cast<size_t>(k) * Lp + i]) * w[static_cast<size_t>(j) * Lp + i]);
      y[static_cast<size_t>(k) * L + j] = static_cast<int32_t>(s);
    }
#endif
}

}  // namespace

void MxmPlane::float_products(Eigen::Index n) {
  // y[k][j] = sum over i of x[k][i] * w[i][j], accumulated in lane order i = 0, 1, .. (down the
  // array's column), so a row's value does not depend on how many rows share the batch (a GEMM
  // library picks its summation order by the matrix sizes: a product would then round differently
  // with the schedule's abc/acc interleaving). Blocks of rows share each weight row's load.
  constexpr Eigen::Index kRows = 8;
  const Eigen::Index L = active.cols();
  for (Eigen::Index k0 = 0; k0 < n; k0 += kRows) {
    const Eigen::Index k1 = std::min(n, k0 + kRows);
    for (Eigen::Index k = k0; k < k1; ++k) std::fill_n(batch_y.data() + k * L, L, 0.f);
    for (Eigen::Index i = 0; i < L; ++i) {
      const float* __restrict w = active.data() + i * L;
      for (Eigen::Index k = k0; k < k1; ++k) {
        const float xv = batch_x(k, i);
        float* __restrict y = batch_y.data() + k * L;
        for (Eigen::Index j = 0; j < L; ++j) y[j] += xv * w[j];
      }
    }
  }
}

void MxmPlane::flush() {
  if (batch_n == 0) return;
  const Eigen::Index n = batch_n;
  const Eigen::Index L = active.cols();
  const uint32_t Lp = lanes_pad();
  // int8 rows against int8 weights: exact integer kernel; everything else: the float GEMM.
  const bool int_fast = active_int8;
  const bool need_float = batch_float_n > 0 || !int_fast;
  if (need_float) float_products(n);
  if (int_fast && batch_float_n < batch_n)
    int_products(batch_x16.data(), batch_n, active_t16.data(), lanes_, Lp, batch_y32.data());
  for (Eigen::Index k = 0; k < n; ++k) {
    uint32_t* __restrict row = acc.data() + static_cast<size_t>(batch_row[k]) * L;
    const float* __restrict y = batch_y.data() + k * L;
    if (batch_int[k] && int_fast) {
      // Exact: equals the int64 sum truncated to 32 bits.
      const int32_t* __restrict yi = batch_y32.data() + k * L;
      if (batch_accum[k])
        for (Eigen::Index j = 0; j < L; ++j) row[j] += static_cast<uint32_t>(yi[j]);
      else
        for (Eigen::Index j = 0; j < L; ++j) row[j] = static_cast<uint32_t>(yi[j]);
    } else if (batch_int[k] && L > 1024) {
      // Wider than 1024 lanes an fp32 sum of int8 products may round: exact integer dot products.
      const float* x = batch_x.data() + k * L;
      for (Eigen::Index j = 0; j < L; ++j) {
        int64_t s = 0;
        for (Eigen::Index i = 0; i < L; ++i) s += static_cast<int64_t>(x[i]) * static_cast<int64_t>(active(i, j));
        const uint32_t v = static_cast<uint32_t>(s);
        row[j] = batch_accum[k] ? row[j] + v : v;
      }
    } else if (batch_int[k]) {
      // int8 x int8 sums over <= 1024 lanes are exact in fp32 (|sum| < 2^24).
      for (Eigen::Index j = 0; j < L; ++j) {
        const uint32_t v = static_cast<uint32_t>(static_cast<int32_t>(y[j]));  // y[j] is integral
        row[j] = batch_accum[k] ? row[j] + v : v;
      }
    } else {
      for (Eigen::Index j = 0; j < L; ++j) {
        const float v = batch_accum[k] ? core::bits_to_f32(row[j]) + y[j] : y[j];
        row[j] = core::f32_to_bits(v);
      }
    }
    row_in_batch[batch_row[k]] = 0;
  }
  batch_n = 0;
  batch_float_n = 0;
}

}  // namespace lpu::sim::units

namespace lpu::sim::core {

void ChipEngine::exec_mxm(const Instr& in, uint32_t step, uint64_t t, const TimingEntry& tm) {
  const uint32_t p = in.get(Field::Plane);
  units::MxmPlane& P = mxm_[queues_[cur_q_].slice][p];
  const uint64_t land = t + tm.latency;
  const uint32_t L = lanes_;
  switch (in.op) {
    case Opcode::LoadW: {
      const DType T = in.dtype();
      const uint8_t* x[4] = {};
      read_group(in.src_a(), dtype_bytes(T), t, x);
      count(EnergyEvent::WeightLoad, 1);
      P.lw_land = std::max(P.lw_land, land);
      if (!functional_) return;
      P.ensure_storage();
      if (P.iw_apply_pending && P.iw_land < land) P.apply_install();
      float* row = P.shadow.data() + static_cast<size_t>(in.get(Field::Row) + step) * L;
      for (uint32_t i = 0; i < L; ++i)
        row[i] = T == DType::I8 ? static_cast<float>(static_cast<int8_t>(x[0][i])) : load_float(T, x, i);
      return;
    }
    case Opcode::InstW:
    case Opcode::InstWT: {
      if (P.lw_land > t)
        fail("lw-in-flight", "",
             fmt::format("iw on plane {} on cycle {} while a lw has not landed (it lands on cycle {})", p, t, P.lw_land));
      P.iw_issued = true;
      P.iw_land = land;
      if (!functional_) return;
      P.ensure_storage();
      P.flush();
      if (P.iw_apply_pending) P.apply_install();
      P.iw_apply_pending = true;
      P.iw_transpose = in.op == Opcode::InstWT;
      return;
    }
    case Opcode::Abc: {
      const DType T = in.dtype();
      const uint8_t* x[4] = {};
      read_group(in.src_a(), dtype_bytes(T), t, x);
      if (!P.iw_issued)
        fail("abc-no-weights", "", fmt::format("abc on plane {} on cycle {}: no iw was ever issued on this plane", p, t));
      if (P.iw_land > t)
        fail("abc-no-weights", "",
             fmt::format("abc on plane {} on cycle {} while an iw is in flight (it lands on cycle {})", p, t, P.iw_land));
      const uint32_t r = in.get(Field::Row) + step;
      P.abc_land[r] = land;
      count(T == DType::I8 ? EnergyEvent::MacInt8 : EnergyEvent::MacFp16, static_cast<uint64_t>(L) * L);
      if (!functional_) return;
      P.ensure_storage();
      if (P.iw_apply_pending) P.apply_install();  // it has landed (checked above)
      if (P.batch_n == units::MxmPlane::kBatch) P.flush();
      float* bx = P.batch_x.data() + static_cast<size_t>(P.batch_n) * L;
      if (T == DType::I8) {
        int16_t* bx16 = P.batch_x16.data() + static_cast<size_t>(P.batch_n) * P.lanes_pad();  // padding stays 0
        const int8_t* xi = reinterpret_cast<const int8_t*>(x[0]);
        for (uint32_t i = 0; i < L; ++i) bx16[i] = xi[i];
        if (!P.active_int8)  // the float path needs it
          for (uint32_t i = 0; i < L; ++i) bx[i] = static_cast<float>(xi[i]);
      } else {
        for (uint32_t i = 0; i < L; ++i) bx[i] = load_float(T, x, i);
        ++P.batch_float_n;
      }
      P.batch_row[P.batch_n] = r;
      P.batch_accum[P.batch_n] = in.get(Field::AccFlag) != 0;
      P.batch_int[P.batch_n] = T == DType::I8;
      P.row_in_batch[r] = 1;
      ++P.batch_n;
      return;
    }
    case Opcode::Acc: {
      const uint32_t r = in.get(Field::Row) + step;
      if (P.abc_land[r] > t)
        fail("acc-in-flight", "",
             fmt::format("acc of row {} on plane {} on cycle {} while an abc into it lands only on cycle {}", r, p, t, P.abc_land[r]));
      uint8_t* out[4] = {};
      write_group(in.dst(), 4, land, out);
      count(EnergyEvent::AccRead, 1);
      if (!functional_) return;
      P.ensure_storage();
      if (P.row_in_batch[r]) P.flush();  // rows not read keep batching: bigger GEMMs
      const uint32_t* row = P.acc.data() + static_cast<size_t>(r) * L;
      for (uint32_t i = 0; i < L; ++i) store_raw(out, 4, i, row[i]);
      return;
    }
    default:
      throw std::logic_error(fmt::format("exec_mxm: opcode {} is not an MXM instruction", op_info(in.op).mnemonic));
  }
}

}  // namespace lpu::sim::core
