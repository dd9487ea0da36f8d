// Binding graph input `name` of a compiled model as the host would: x (the graph's layout, floats)
// laid out for the chip (compiler::to_chip_input) and, when the quantization plan has the host
// quantize it (QuantPlan::i8_inputs: only int8 convs read it), quantized with `scale_factor` times
// the planned scale (1: as planned); else written f16.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lower_conv.h"
#include "compiler/passes/quantize.h"
#include "tests/support/f16_data.h"

namespace lpu::test {

inline void bind_host_input(const compiler::CompileResult& cr, const compiler::LoweredInput& in,
                            const std::string& name, const std::vector<float>& x,
                            std::map<std::string, std::vector<uint8_t>>* inputs, float scale_factor = 1.f) {
  const std::vector<float> chip = compiler::to_chip_input(in, x);
  const bool host_q = cr.quant && cr.quant->i8_inputs.count(name);
  compiler::bind_input(cr.program, name,
                       host_q ? compiler::quantize_host_input(ref::Value::floats(in.shape, chip, ir::DType::F16),
                                                              scale_factor * cr.quant->i8_inputs.at(name))
                                    .to_bytes()
                              : f16_bytes(chip),
                       inputs);
}

}  // namespace lpu::test
