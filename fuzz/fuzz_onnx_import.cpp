// libFuzzer target: lpu::frontend::import_onnx_bytes (the ONNX reader: protobuf parse, checker,
// shape inference, import, folding). Any exception other than lpu::InputError, or a crash, is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "compiler/frontends/onnx_import.h"
#include "isa/chip_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)lpu::frontend::import_onnx_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
  } catch (const lpu::InputError&) {
    // expected: bad input refused with a message
  }
  return 0;
}
