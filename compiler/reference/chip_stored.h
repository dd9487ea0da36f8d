// A tensor as the chip stores it, read back from a functional simulation: the values of graph
// tensor `name` (every row block the Program lists for it, compiler/io_binding.h) decoded from the
// simulator's memory image into the float domain. One decoder for the reference checks
// (step_check, int8_bound, int8_step_check) so the stored layouts are read one way.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "isa/program.h"

namespace lpu::compiler {

// [rows, inner] row-major over the tensor's row blocks; f16 and f32 elements as stored, i8 ones
// times `scale` (dequantized).
struct ChipStored {
  std::vector<double> v;
  int64_t rows = 0, inner = 0;
  DType dtype = DType::F32;
};

// Throws InputError if the program does not list `name` (e.g. compiled without
// keep_intermediates), if the outputs' sizes do not fit its row blocks, or if it is stored in a
// type other than f32, f16 or i8.
ChipStored chip_stored(const Program& p, const std::string& name,
                       const std::map<std::string, std::vector<uint8_t>>& sim_outputs, double scale);

}  // namespace lpu::compiler
