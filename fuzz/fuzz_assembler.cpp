// libFuzzer target: lpu::assemble (the .s reader) on tsp-v1; for accepted programs also checks the
// documented round trip assemble(disassemble(p)) == p byte for byte. Non-InputError throws and
// crashes are bugs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "isa/program_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto cfg = lpu::default_chip_config();
  const std::string text(reinterpret_cast<const char*>(data), size);
  lpu::Program p;
  try {
    p = lpu::assemble(text, "fuzz.s", *cfg);
  } catch (const lpu::InputError&) {
    return 0;  // expected: bad input refused with a message
  }
  // The contract of isa/asm.h: disassembling and reassembling gives the same program. A .fill
  // disassembles into one hex line per vector; beyond 256 KiB of data the round trip costs seconds
  // under instrumentation and would be reported as a timeout, so large-data programs skip it.
  size_t data_bytes = 0;
  for (const auto& blob : p.data) data_bytes += blob.bytes.size();
  if (data_bytes > (size_t(256) << 10)) return 0;
  const std::string again = lpu::disassemble(p, *cfg);
  const lpu::Program q = lpu::assemble(again, "fuzz-roundtrip.s", *cfg);
  if (lpu::serialize_program(p) != lpu::serialize_program(q)) std::abort();
  return 0;
}
