// ONNX test-data loading and chip dtype conversion for `lpusim check` (see model_io.h).
#include "tools/model_io.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>

#include "compiler/frontends/onnx_import.h"
#include "compiler/ir/dtype.h"
#include "isa/chip_config.h"

namespace lpu::cli {

namespace {

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& p) { return std::ifstream(p).good(); }

// Loads dir/PREFIX_k.pb for each tensor of `ids` and checks it against the graph tensor.
std::vector<ref::Value> load_set(const std::string& dir, const ir::Graph& g, const std::vector<ir::TensorId>& ids,
                                 const char* prefix, const char* what) {
  std::vector<ref::Value> out;
  for (size_t k = 0; k < ids.size(); ++k) {
    const ir::Tensor& t = g.tensor(ids[k]);
    const std::string file = fmt::format("{}/{}_{}.pb", dir, prefix, k);
    if (!exists(file))
      throw InputError(fmt::format("{}: missing (the model has {} {}s; {} {} is '{}')", file, ids.size(), what, what,
                                   k, t.name));
    ref::Value v = frontend::load_onnx_tensor_file(file);
    if (v.dtype != t.dtype || v.shape != t.shape)
      throw InputError(fmt::format("{}: {} '{}' expected {} {}, got {} {}", file, what, t.name, ir::dtype_name(t.dtype),
                                   ir::shape_str(t.shape), ir::dtype_name(v.dtype), ir::shape_str(v.shape)));
    out.push_back(std::move(v));
  }
  const std::string extra = fmt::format("{}/{}_{}.pb", dir, prefix, ids.size());
  if (exists(extra))
    throw InputError(fmt::format("{}: unexpected file (the model has {} {}s, numbered from 0)", extra, ids.size(), what));
  return out;
}

}  // namespace

Dataset load_dataset(const std::string& dir, const ir::Graph& g) {
  if (!is_dir(dir)) throw InputError(fmt::format("DATASET_DIR '{}': not a directory (want input_N.pb/output_N.pb)", dir));
  Dataset d;
  d.dir = dir;
  d.inputs = load_set(dir, g, g.inputs(), "input", "input");
  d.outputs = load_set(dir, g, g.outputs(), "output", "output");
  return d;
}

std::vector<uint8_t> to_chip_bytes(const ref::Value& v, DType t) {
  ref::Value c = v;
  switch (t) {
    case DType::F16: c.dtype = ir::DType::F16; break;
    case DType::F32: c.dtype = ir::DType::F32; break;
    case DType::I8: c.dtype = ir::DType::I8; break;
    case DType::I32: c.dtype = ir::DType::I32; break;
    case DType::I16:
      throw InputError(fmt::format("input: the program's tensor dtype {} has no host conversion", dtype_name(t)));
  }
  // A bool input (e.g. Where's condition) is written as 0/1 in a float tensor (passes/lower_forms.h).
  if (v.dtype == ir::DType::BOOL && ir::dtype_is_float(c.dtype)) {
    c.f.assign(v.i.begin(), v.i.end());
    for (float& x : c.f) x = x != 0.f ? 1.f : 0.f;
    return c.to_bytes();
  }
  if (ir::dtype_is_float(c.dtype) != ir::dtype_is_float(v.dtype))
    throw InputError(fmt::format("input: a {} value cannot feed a program tensor of dtype {}", ir::dtype_name(v.dtype),
                                 dtype_name(t)));
  return c.to_bytes();
}

std::vector<double> from_chip_bytes(const std::vector<uint8_t>& bytes, DType t) {
  const size_t b = static_cast<size_t>(dtype_bytes(t));
  std::vector<double> out(bytes.size() / b);
  for (size_t k = 0; k < out.size(); ++k) {
    const uint8_t* p = bytes.data() + k * b;
    switch (t) {
      case DType::F32: { float f; std::memcpy(&f, p, 4); out[k] = f; break; }
      case DType::F16: { uint16_t h; std::memcpy(&h, p, 2); out[k] = ir::f16_to_f32(h); break; }
      case DType::I8: { int8_t i; std::memcpy(&i, p, 1); out[k] = i; break; }
      case DType::I16: { int16_t i; std::memcpy(&i, p, 2); out[k] = i; break; }
      case DType::I32: { int32_t i; std::memcpy(&i, p, 4); out[k] = i; break; }
    }
  }
  return out;
}

}  // namespace lpu::cli
