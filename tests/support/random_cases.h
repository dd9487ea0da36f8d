// The loop of the seeded random-model tests (tests/compiler/test_random_graphs.cpp,
// test_random_cnns.cpp): seeds [first, last] (or 1..N when the environment variable `env` = N is
// set), each case built and checked by `run_case(seed, &text)` (which sets `text` to the model's
// description first). An InputError counts as a refusal (the compiler named a form it does not
// lower; reported with the model), any other exception fails the test with the seed and the
// model. At least `min_share` of the cases must compile (the generator builds supported forms).
#pragma once
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>

#include "isa/chip_config.h"

namespace lpu::test {

template <class Case>
void run_random_cases(const char* env, uint32_t first, uint32_t last, double min_share, Case run_case) {
  if (const char* n = std::getenv(env)) {
    first = 1;
    last = static_cast<uint32_t>(std::strtoul(n, nullptr, 10));
  }
  uint32_t compiled = 0, refused = 0;
  for (uint32_t seed = first; seed <= last; ++seed) {
    std::string text;
    try {
      run_case(seed, &text);
      ++compiled;
    } catch (const InputError& e) {
      ++refused;
      UNSCOPED_INFO("seed " << seed << " refused: " << e.what() << "\n" << text);
    } catch (const std::exception& e) {
      FAIL("seed " << seed << ": not an InputError: " << e.what() << "\n" << text);
    }
  }
  INFO("compiled " << compiled << ", refused " << refused);
  CHECK(compiled >= min_share * (last + 1 - first));
}

}  // namespace lpu::test
