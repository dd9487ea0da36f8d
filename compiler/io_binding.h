// Host <-> Program tensor binding: maps graph-level tensor bytes (all rows, row-major) onto a compiled
// Program's tensors, where a tensor may be stored as row blocks "NAME.rows_R0_R1" (docs/compiler.md,
// "Row rotation"), and gathers a graph output's blocks back into one byte vector.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "isa/program.h"

namespace lpu::compiler {

// One Program tensor holding rows [row0, row0 + rows) of a graph tensor.
struct RowBlock {
  std::string desc;  // TensorDesc name ("NAME" or "NAME.rows_R0_R1")
  int64_t row0 = 0, rows = 0;
  DType dtype = DType::F32;
};

// The parts of graph tensor `name` in `p`, sorted by row0. Throws InputError if there are none or
// they do not cover rows 0..R contiguously with one dtype.
std::vector<RowBlock> row_blocks(const Program& p, const std::string& name);

// Splits `bytes` (every row of tensor `name`, row-major, in the Program's dtype) into the simulator
// inputs of its parts (added to `inputs`). Throws InputError on a size mismatch.
void bind_input(const Program& p, const std::string& name, const std::vector<uint8_t>& bytes,
                std::map<std::string, std::vector<uint8_t>>* inputs);

// Concatenates the simulator outputs of tensor `name`'s parts (row-major, the Program's dtype).
// Throws InputError if a part is missing or has the wrong size.
std::vector<uint8_t> gather_output(const Program& p, const std::string& name,
                                   const std::map<std::string, std::vector<uint8_t>>& outputs);

// Rows per part of an embedding-lookup table [rows, cols] on a chip whose MEM slices hold
// `sram_addresses` vectors (docs/compiler.md "Other forms"), vpr = ceil(cols / lanes), reach =
// min(sram_addresses, 32768) (a gather adds an int16 offset): `rows` when the table fits one slice
// (rows * vpr <= reach: one part, as before); else the table is cut by row ranges into
// P = ceil(rows / cap) parts of R = ceil(rows / P) rows (the last may hold fewer), cap = reach / vpr
// - 1, each part followed by one all-zero row (so a part holds (R + 1) * vpr addresses). Throws InputError naming the table if one row plus the zero row does
// not fit a slice.
int64_t lookup_part_rows(int64_t rows, int64_t cols, uint32_t lanes, uint32_t sram_addresses);

// The chip bytes of index input `name` of an embedding lookup into a [rows, cols] table
// (LoweredInput::lookup_rows/lookup_cols, docs/compiler.md "Other forms"). One part (part_rows 0 or
// >= rows): an [ids, lanes] i16 tensor whose row k holds id_k * ceil(cols / lanes), the first
// address offset of the table row, in every lane (the MEM `gather` lane offsets). A table split into
// parts of `part_rows` rows (lookup_part_rows): [parts * ids, lanes], part-major: row p * ids + k
// holds (id_k - p * part_rows) * ceil(cols / lanes) if id_k is in part p, else the offset of part
// p's zero row (its row count times ceil(cols / lanes)), so every part's gather reads a valid
// address and exactly one part returns the row. Negative ids count from `rows` (ONNX Gather). Throws InputError
// naming the input, the position, the value and the allowed range for an id outside [-rows, rows),
// or if an offset would not fit int16.
std::vector<uint8_t> lookup_index_bytes(const std::string& name, const std::vector<int64_t>& ids, int64_t rows,
                                        int64_t cols, uint32_t lanes, int64_t part_rows = 0);

}  // namespace lpu::compiler
