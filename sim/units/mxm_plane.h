// State of one MXM plane: resource ports, weight-install timing, per-row abc landing cycles, and
// (functional mode) shadow/active weights, accumulators and the batch of pending abc activations
// that is evaluated as one GEMM when a row is read or the weights change. When every active weight
// is an int8 value, int8 abc rows are evaluated by an exact int16 x int16 -> int32 kernel over a
// transposed int16 copy of the weights made once per install (no float GEMM, no repacking).
#pragma once
#include <cstdint>
#include <vector>

#include <Eigen/Core>

namespace lpu::sim::units {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct MxmPlane {
  static constexpr uint32_t kBatch = 128;  // abc activations gathered before one GEMM

  // Resource::MxmLw, MxmIw, MxmAbc, MxmAcc busy-until cycles.
  uint64_t lw_busy = 0, iw_busy = 0, abc_busy = 0, acc_busy = 0;

  bool iw_issued = false;      // some iw was issued on this plane
  uint64_t iw_land = 0;        // landing cycle of the latest iw
  uint64_t lw_land = 0;        // latest landing cycle of any lw (an iw must not issue before it)
  std::vector<uint64_t> abc_land;  // per accumulator row: landing of its latest abc

  // ---- functional mode ----
  bool values = false;
  bool iw_apply_pending = false;  // latest iw's copy shadow -> active not yet applied
  bool iw_transpose = false;      // the pending install is an iwt (active <- shadow transposed)
  RowMatrix shadow, active;       // lanes x lanes, element values as float (i8 or f16 values)
  std::vector<uint32_t> acc;      // acc_rows x lanes raw words (i32, or f32 bits)
  RowMatrix batch_x;              // kBatch x lanes activations (i8 rows only while !active_int8)
  uint32_t batch_row[kBatch] = {};
  bool batch_accum[kBatch] = {};
  bool batch_int[kBatch] = {};    // i8 abc (int32 accumulate) vs f16 (fp32)
  uint32_t batch_n = 0;
  std::vector<uint8_t> row_in_batch;  // per accumulator row: has an entry in the batch
  RowMatrix batch_y;              // kBatch x lanes results scratch
  uint32_t batch_float_n = 0;     // entries of the batch that are f16 (need the float GEMM)

  // Integer fast path (valid while active_int8): active transposed as int16, lanes x lanes_pad
  // (column j of the weights is row j here), int8 activations as int16 (kBatch x lanes_pad, zero
  // padded), and int32 results (kBatch x lanes). lanes_pad = lanes rounded up to 16.
  bool active_int8 = true;             // every active weight is an integer in [-128, 127]
  std::vector<int16_t> active_t16;     // lanes x lanes_pad
  std::vector<int16_t> batch_x16;      // kBatch x lanes_pad, every i8 row
  std::vector<int32_t> batch_y32;      // kBatch x lanes

  void init(uint32_t lanes, uint32_t acc_rows, bool functional);
  // Functional mode: allocates weights, accumulators and batch on the plane's first use.
  void ensure_storage() {
    if (acc.empty()) allocate();
  }
  // Copies shadow into active and zeroes shadow (the landing of an iw).
  void apply_install();
  // Evaluates the pending abc batch into the accumulators in issue order.
  void flush();
  // Row stride of active_t16 and batch_x16: lanes rounded up to 16 (one AVX2 register of int16).
  uint32_t lanes_pad() const { return (lanes_ + 15u) & ~15u; }

 private:
  void allocate();
  // Recomputes active_int8 and (if set) active_t16 from active.
  void convert_active();
  // batch_y's first n rows = batch_x's times active, each dot product summed in lane order.
  void float_products(Eigen::Index n);
  uint32_t lanes_ = 0, acc_rows_ = 0;
};

}  // namespace lpu::sim::units
