// File helpers shared by the tests (reading whole files as bytes/text).
#pragma once
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

// The whole file at `path`; fails the test if it cannot be opened.
inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
