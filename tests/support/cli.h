// Where the built `lpusim` tool is, for tests that run it as a user would.
#pragma once
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

// tests/main.cpp sets $LPUSIM to the tool built with this test binary (a caller may override it).
inline std::string lpusim_exe() {
  const char* env = std::getenv("LPUSIM");
  REQUIRE(env != nullptr);
  REQUIRE(std::filesystem::exists(env));
  return env;
}
