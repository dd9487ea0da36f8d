// The Python 3 that runs scripts/plot_sweep.py and the tutorial's python3 commands in tests:
// Debian's /usr/bin/python3, into which scripts/install-deps.sh installs python3-matplotlib (a
// python3 earlier on PATH, e.g. a pyenv one, may lack it). $LPU_PYTHON3 overrides it.
#pragma once
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

inline std::string debian_python3() {
  const char* env = std::getenv("LPU_PYTHON3");
  const std::string py = env && *env ? env : "/usr/bin/python3";
  INFO("python3 with matplotlib (scripts/install-deps.sh installs python3-matplotlib): " << py);
  REQUIRE(std::filesystem::exists(py));
  return py;
}
