// Decoding a stored tensor from the simulator's outputs (see chip_stored.h).
#include "compiler/reference/chip_stored.h"

#include <fmt/format.h>

#include <cstring>

#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "isa/chip_config.h"
#include "isa/isa.h"

namespace lpu::compiler {

ChipStored chip_stored(const Program& p, const std::string& name,
                       const std::map<std::string, std::vector<uint8_t>>& sim_outputs, double scale) {
  ChipStored s;
  const std::vector<RowBlock> blocks = row_blocks(p, name);
  for (const RowBlock& b : blocks) s.rows += b.rows;
  s.dtype = blocks.front().dtype;
  if (s.dtype != DType::I8 && s.dtype != DType::F16 && s.dtype != DType::F32)
    throw InputError(fmt::format("stored tensor '{}' is {}; only f32, f16 and i8 tensors decode to values", name,
                                 dtype_name(s.dtype)));
  const std::vector<uint8_t> bytes = gather_output(p, name, sim_outputs);
  const size_t eb = static_cast<size_t>(dtype_bytes(s.dtype));
  s.v.resize(bytes.size() / eb);
  for (size_t k = 0; k < s.v.size(); ++k) {
    const uint8_t* e = bytes.data() + k * eb;
    if (s.dtype == DType::I8) {
      s.v[k] = static_cast<int8_t>(e[0]) * scale;
    } else if (s.dtype == DType::F16) {
      uint16_t h;
      std::memcpy(&h, e, 2);  // little-endian host
      s.v[k] = ir::f16_to_f32(h);
    } else {
      float f;
      std::memcpy(&f, e, 4);
      s.v[k] = f;
    }
  }
  s.inner = s.rows ? static_cast<int64_t>(s.v.size()) / s.rows : 0;
  return s;
}

}  // namespace lpu::compiler
