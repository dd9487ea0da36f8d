// libFuzzer target: lpu::parse_chip_config (the chip config YAML reader). Any exception other
// than lpu::InputError, or a crash, is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "isa/chip_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)lpu::parse_chip_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  } catch (const lpu::InputError&) {
    // expected: bad input refused with a message
  }
  return 0;
}
