// Binary program files (.lpu): versioned, checksummed, refused with a clear InputError when
// truncated, corrupt, of the wrong version or magic. Layout documented in docs/program-format.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "isa/chip_config.h"
#include "isa/program.h"

namespace lpu {

std::vector<uint8_t> serialize_program(const Program& p);
// Throws InputError("<source>: ...") on any damage; never reads out of bounds.
Program deserialize_program(const std::vector<uint8_t>& bytes, const std::string& source_name);
void write_program_file(const Program& p, const std::string& path);
Program read_program_file(const std::string& path);

// Structural checks of a program against a chip config: slice/queue indices and unit kinds,
// per-opcode field domains (addresses < sram_addresses, streams < streams_per_direction, planes,
// rows, links, map ids), tensor placement, blob sizes, link wiring. Throws InputError naming chip,
// queue and instruction index.
void validate_program(const Program& p, const ChipConfig& cfg, const std::string& source_name);

}  // namespace lpu
