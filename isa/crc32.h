// CRC-32 (IEEE 802.3 / zlib polynomial, reflected 0xEDB88320) used to checksum .lpu program files.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lpu {

// CRC of n bytes. Pass a previous result as `crc` to continue a running checksum over several
// buffers; crc32(p, n) of "123456789" is 0xCBF43926 (the standard check value).
uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0);

}  // namespace lpu
