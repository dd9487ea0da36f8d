// libFuzzer target: lpu::deserialize_program (the .lpu reader) and, for inputs it accepts,
// validate_program against tsp-v1. Any exception other than lpu::InputError, or a crash, is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "isa/chip_config.h"
#include "isa/program_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto cfg = lpu::default_chip_config();
  try {
    const std::vector<uint8_t> bytes(data, data + size);
    const lpu::Program p = lpu::deserialize_program(bytes, "fuzz.lpu");
    lpu::validate_program(p, *cfg, "fuzz.lpu");
  } catch (const lpu::InputError&) {
    // expected: bad input refused with a message
  }
  return 0;
}
