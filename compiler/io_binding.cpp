// Host <-> Program tensor binding (see io_binding.h): row-block split of inputs, gather of outputs.
#include "compiler/io_binding.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "isa/chip_config.h"
#include "isa/isa.h"

namespace lpu::compiler {

namespace {

int64_t rows_of(const TensorDesc& d) {
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < d.shape.size(); ++i) rows *= d.shape[i];
  return rows;
}

int64_t bytes_of(const TensorDesc& d) {
  int64_t n = dtype_bytes(d.dtype);
  for (int64_t s : d.shape) n *= s;
  return n;
}

const TensorDesc& desc_of(const Program& p, const std::string& name) {
  for (const TensorDesc& d : p.tensors)
    if (d.name == name) return d;
  throw InputError(fmt::format("program: no tensor '{}'", name));
}

}  // namespace

std::vector<RowBlock> row_blocks(const Program& p, const std::string& name) {
  std::vector<RowBlock> out;
  const std::string prefix = name + ".rows_";
  for (const TensorDesc& d : p.tensors) {
    if (d.name == name) {
      out.push_back({d.name, 0, rows_of(d), d.dtype});
    } else if (d.name.rfind(prefix, 0) == 0) {
      long long a = 0, b = 0;
      char tail = 0;
      if (std::sscanf(d.name.c_str() + prefix.size(), "%lld_%lld%c", &a, &b, &tail) != 2 || b <= a ||
          rows_of(d) != b - a)
        throw InputError(fmt::format("program: tensor '{}' is not a row block of '{}' (shape rows {}, want "
                                     "NAME.rows_R0_R1 with R1 - R0 rows)", d.name, name, rows_of(d)));
      out.push_back({d.name, a, b - a, d.dtype});
    }
  }
  if (out.empty()) throw InputError(fmt::format("program: no tensor '{}' (nor row blocks '{}R0_R1')", name, prefix));
  std::sort(out.begin(), out.end(), [](const RowBlock& x, const RowBlock& y) { return x.row0 < y.row0; });
  int64_t next = 0;
  for (const RowBlock& t : out) {
    if (t.row0 != next || t.dtype != out[0].dtype)
      throw InputError(fmt::format("program: the parts of tensor '{}' do not tile its rows: '{}' starts at row "
                                   "{} (expected {}) with dtype {}", name, t.desc, t.row0, next,
                                   dtype_name(t.dtype)));
    next = t.row0 + t.rows;
  }
  return out;
}

void bind_input(const Program& p, const std::string& name, const std::vector<uint8_t>& bytes,
                std::map<std::string, std::vector<uint8_t>>* inputs) {
  const std::vector<RowBlock> parts = row_blocks(p, name);
  int64_t total = 0;
  for (const RowBlock& t : parts) total += bytes_of(desc_of(p, t.desc));
  if (static_cast<int64_t>(bytes.size()) != total)
    throw InputError(fmt::format("input '{}': {} bytes given, the program's tensor holds {} bytes", name,
                                 bytes.size(), total));
  size_t at = 0;
  for (const RowBlock& t : parts) {
    const size_t n = static_cast<size_t>(bytes_of(desc_of(p, t.desc)));
    (*inputs)[t.desc] = std::vector<uint8_t>(bytes.begin() + static_cast<long>(at),
                                             bytes.begin() + static_cast<long>(at + n));
    at += n;
  }
}

std::vector<uint8_t> gather_output(const Program& p, const std::string& name,
                                   const std::map<std::string, std::vector<uint8_t>>& outputs) {
  std::vector<uint8_t> out;
  for (const RowBlock& t : row_blocks(p, name)) {
    const auto it = outputs.find(t.desc);
    if (it == outputs.end()) throw InputError(fmt::format("simulation: output tensor '{}' was not produced", t.desc));
    const int64_t want = bytes_of(desc_of(p, t.desc));
    if (static_cast<int64_t>(it->second.size()) != want)
      throw InputError(fmt::format("simulation: output tensor '{}' has {} bytes, expected {}", t.desc,
                                   it->second.size(), want));
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

int64_t lookup_part_rows(int64_t rows, int64_t cols, uint32_t lanes, uint32_t sram_addresses) {
  const int64_t vpr = (cols + lanes - 1) / lanes;
  // A gather reaches addr + an int16 offset: at most 32768 addresses from a part's start.
  const int64_t reach = std::min<int64_t>(sram_addresses, 32768);
  if (rows * vpr <= reach) return rows;
  const int64_t cap = reach / vpr - 1;
  if (cap < 1)
    throw InputError(fmt::format("lookup table [{}, {}]: one row of {} vectors plus an all-zero row needs {} "
                                 "addresses; a MEM slice holds {}", rows, cols, vpr, 2 * vpr, sram_addresses));
  const int64_t parts = (rows + cap - 1) / cap;
  return (rows + parts - 1) / parts;
}

std::vector<uint8_t> lookup_index_bytes(const std::string& name, const std::vector<int64_t>& ids, int64_t rows,
                                        int64_t cols, uint32_t lanes, int64_t part_rows) {
  const int64_t stride = (cols + lanes - 1) / lanes;
  const bool split = part_rows > 0 && part_rows < rows;
  const int64_t parts = split ? (rows + part_rows - 1) / part_rows : 1;
  const int64_t max_off = split ? part_rows * stride : (rows - 1) * stride;
  if (rows < 1 || cols < 1 || lanes < 1 || max_off > 32767)
    throw InputError(fmt::format("input '{}': a lookup table [{}, {}] has row offsets up to {}, beyond int16", name,
                                 rows, cols, max_off));
  std::vector<int64_t> rows_of_id(ids.size());
  for (size_t k = 0; k < ids.size(); ++k) {
    const int64_t id = ids[k];
    if (id < -rows || id >= rows)
      throw InputError(fmt::format("input '{}': index {} at position {} is outside the table's rows: allowed "
                                   "{}..{} (negative ids count from the end)", name, id, k, -rows, rows - 1));
    rows_of_id[k] = id < 0 ? id + rows : id;
  }
  std::vector<uint8_t> out;
  out.reserve(ids.size() * static_cast<size_t>(parts) * lanes * 2);
  for (int64_t p = 0; p < parts; ++p) {  // part-major: all ids' offsets into part 0, then part 1, ...
    const int64_t r0 = p * part_rows, n = split ? std::min(part_rows, rows - r0) : rows;
    for (const int64_t id : rows_of_id) {
      const int64_t local = !split ? id : (id >= r0 && id < r0 + n) ? id - r0 : n;  // n: the zero row
      const uint16_t off = static_cast<uint16_t>(local * stride);
      for (uint32_t i = 0; i < lanes; ++i) {
        out.push_back(static_cast<uint8_t>(off & 0xFF));
        out.push_back(static_cast<uint8_t>(off >> 8));
      }
    }
  }
  return out;
}

}  // namespace lpu::compiler
