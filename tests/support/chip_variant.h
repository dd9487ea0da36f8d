// tsp-v1 with one setting of its YAML replaced (a capability turned off, for instance), renamed so
// errors name the variant: chip_variant("transposed_install: true", "transposed_install: false",
// "no-iwt").
#pragma once
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "isa/chip_config.h"

namespace lpu::test {

inline std::shared_ptr<const ChipConfig> chip_variant(const std::string& from, const std::string& to,
                                                      const std::string& name) {
  std::string y = default_chip_config_yaml();
  const size_t at = y.find(from);
  REQUIRE(at != std::string::npos);
  y.replace(at, from.size(), to);
  const size_t nm = y.find("name: tsp-v1");
  REQUIRE(nm != std::string::npos);
  y.replace(nm, 12, "name: " + name);
  return parse_chip_config(y, name + ".yaml");
}

// tsp-v1 without the fused multiply-add (vxm.fused_multiply_add: false): `mul` then `add`.
inline std::shared_ptr<const ChipConfig> chip_without_fma() {
  auto c = chip_variant("fused_multiply_add: true", "fused_multiply_add: false", "no-fma");
  REQUIRE_FALSE(c->vxm_fma);
  return c;
}

}  // namespace lpu::test
