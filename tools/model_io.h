// Host-side data of `lpusim check`: loads an ONNX test-data directory (input_N.pb, output_N.pb)
// checked against a graph's inputs and outputs, and converts values to/from a Program tensor's dtype.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/reference/interpreter.h"
#include "isa/isa.h"

namespace lpu::cli {

// One ONNX test-data set: one Value per graph input and per graph output, in graph order.
struct Dataset {
  std::string dir;
  std::vector<ref::Value> inputs, outputs;
};

// Reads dir/input_N.pb for every graph input and dir/output_N.pb for every graph output. Throws
// InputError naming the directory or file, the tensor, and expected vs got when the directory or a
// file is missing, a file is unreadable, there are more input_N.pb/output_N.pb files than graph
// inputs/outputs, or a tensor's shape or dtype differs from the graph's.
Dataset load_dataset(const std::string& dir, const ir::Graph& g);

// `v`'s values as little-endian bytes of the chip dtype `t` (floats rounded to f16 for F16).
std::vector<uint8_t> to_chip_bytes(const ref::Value& v, DType t);

// Decodes `bytes` of chip dtype `t` into doubles (one per element).
std::vector<double> from_chip_bytes(const std::vector<uint8_t>& bytes, DType t);

}  // namespace lpu::cli
