// State of one MXM plane: resource ports, weight-install timing, per-row abc landing cycles, and
// (functional mode) shadow/active weights, accumulators and the batch of pending abc activations
// that is evaluated as one GEMM when a row is read or the weights change.
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
  std::vector<uint64_t> abc_land;  // per accumulator row: landing of its latest abc

  // ---- functional mode ----
  bool values = false;
  bool iw_apply_pending = false;  // latest iw's copy shadow -> active not yet applied
  RowMatrix shadow, active;       // lanes x lanes, element values as float (i8 or f16 values)
  std::vector<uint32_t> acc;      // acc_rows x lanes raw words (i32, or f32 bits)
  RowMatrix batch_x;              // kBatch x lanes activations
  uint32_t batch_row[kBatch] = {};
  bool batch_accum[kBatch] = {};
  bool batch_int[kBatch] = {};    // i8 abc (int32 accumulate) vs f16 (fp32)
  uint32_t batch_n = 0;
  std::vector<uint8_t> row_in_batch;  // per accumulator row: has an entry in the batch
  RowMatrix batch_y;              // kBatch x lanes results scratch

  void init(uint32_t lanes, uint32_t acc_rows, bool functional);
  // Functional mode: allocates weights, accumulators and batch on the plane's first use.
  void ensure_storage() {
    if (acc.empty()) allocate();
  }
  // Copies shadow into active and zeroes shadow (the landing of an iw).
  void apply_install();
  // Evaluates the pending abc batch into the accumulators in issue order.
  void flush();

 private:
  void allocate();
  uint32_t lanes_ = 0, acc_rows_ = 0;
};

}  // namespace lpu::sim::units
