// ChipConfig derived figures and the loader (YAML -> validated ChipConfig).
#include "isa/chip_config.h"

extern const char* const lpu_default_chip_yaml;

namespace lpu {

const std::string& default_chip_config_yaml() {
  static const std::string s(lpu_default_chip_yaml);
  return s;
}

}  // namespace lpu
