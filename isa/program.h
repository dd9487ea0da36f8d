// Program: the contract between compiler and simulator, as silicon would see it. Per-chip,
// per-queue instruction streams; the initial SRAM image; input/output tensor placement; C2C link
// wiring; SXM lane maps; declared work; and the compiler's predicted cycle count.
// Binary form: program_io.h. Text form (assembly): asm.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "isa/isa.h"

namespace lpu {

constexpr uint32_t kProgramVersion = 1;

struct QueueCode {
  uint16_t slice = 0;   // index into ChipConfig::slices
  uint8_t queue = 0;    // < that slice's queue count
  std::vector<Instr> code;
};

struct ChipCode {
  std::vector<QueueCode> queues;   // sorted by (slice, queue), each (slice, queue) at most once
};

// A run of whole vectors placed in one MEM slice: bytes.size() is a multiple of the vector size.
struct DataBlob {
  uint32_t chip = 0;
  uint16_t slice = 0;
  uint32_t addr = 0;
  std::vector<uint8_t> bytes;
};

enum class TensorRole : uint8_t { Input = 0, Output = 1 };

// Layout of a tensor in SRAM: the flattened tensor is viewed as [rows, inner] with inner = last
// dim (1 for scalars); each row is split into ceil(inner / lanes) vectors; vector v of the tensor
// is row v / vpr, lanes ((v % vpr) * lanes ...). Byte plane b of every element is stored in
// slices[b] at address addr + v (little-endian planes; slices.size() == dtype_bytes(dtype)).
// Unused lanes of the last vector of a row are zero.
struct TensorDesc {
  std::string name;
  TensorRole role = TensorRole::Input;
  DType dtype = DType::I8;
  std::vector<int64_t> shape;
  uint32_t chip = 0;
  std::vector<uint16_t> slices;
  uint32_t addr = 0;
};

// A bidirectional C2C cable between (chip_a, link_a) and (chip_b, link_b).
struct LinkDesc { uint32_t chip_a = 0, link_a = 0, chip_b = 0, link_b = 0; };

struct Program {
  std::string config_name;            // chip config the program was compiled for (informational)
  uint32_t num_chips = 1;
  std::vector<ChipCode> chips;        // size num_chips
  std::vector<DataBlob> data;         // initial SRAM image (weights, constants)
  std::vector<TensorDesc> tensors;    // inputs and outputs
  std::vector<LinkDesc> links;
  std::vector<std::vector<uint16_t>> maps;  // SXM lane maps, each of `lanes` entries
  uint64_t predicted_cycles = 0;      // 0 = no prediction recorded
  uint64_t work_items = 0;            // declared work (0 = none)
  std::string work_unit;              // "tokens", "images", "items"
};

}  // namespace lpu
