// MXM semantics (docs/architecture.md "Units"): lw fills a shadow weight row, iw installs shadow
// into the active array at its landing and zeroes shadow, abc computes acc[r] (=|+=) x . W, acc
// emits a row. Functional mode batches abc activations per plane and evaluates them as one GEMM
// (Eigen) when a row with a pending activation is emitted, the batch is full, or the weights
// change.
// Choices the docs leave open (tell the lead): an abc uses the weights active at its issue cycle
// (an iw issued later never affects it); a lw that lands after a pending iw lands goes to the
// next tile (shadow after the zeroing), one landing at or before it is installed by it; acc emits
// the accumulator words as they are (acc.i32 of an fp32 row gives its bits).
#include <cmath>
#include <cstring>

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
  row_in_batch.assign(acc_rows_, 0);
}

void MxmPlane::apply_install() {
  active.swap(shadow);
  shadow.setZero();
  iw_apply_pending = false;
}

void MxmPlane::flush() {
  if (batch_n == 0) return;
  const Eigen::Index n = batch_n;
  const Eigen::Index L = active.cols();
  batch_y.topRows(n).noalias() = batch_x.topRows(n) * active;
  for (Eigen::Index k = 0; k < n; ++k) {
    uint32_t* row = acc.data() + static_cast<size_t>(batch_row[k]) * L;
    const float* y = batch_y.data() + k * L;
    if (batch_int[k] && L > 1024) {
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
      if (!functional_) return;
      P.ensure_storage();
      if (P.iw_apply_pending && P.iw_land < land) P.apply_install();
      float* row = P.shadow.data() + static_cast<size_t>(in.get(Field::Row) + step) * L;
      for (uint32_t i = 0; i < L; ++i)
        row[i] = T == DType::I8 ? static_cast<float>(static_cast<int8_t>(x[0][i])) : load_float(T, x, i);
      return;
    }
    case Opcode::InstW: {
      P.iw_issued = true;
      P.iw_land = land;
      if (!functional_) return;
      P.ensure_storage();
      P.flush();
      if (P.iw_apply_pending) P.apply_install();
      P.iw_apply_pending = true;
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
      for (uint32_t i = 0; i < L; ++i)
        bx[i] = T == DType::I8 ? static_cast<float>(static_cast<int8_t>(x[0][i])) : load_float(T, x, i);
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
