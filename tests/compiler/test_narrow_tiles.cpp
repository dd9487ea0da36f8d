// Narrow weight tiles (compiler/backend/placed_tensor.h PlacedWeights::trans): a tile with fewer
// valid columns than the rows an untransposed install loads is stored as its columns and installed
// by the transposed install `iwt`, so it costs min(rows, columns) `lw`. Checked on bare GEMMs:
// values (int8 exact, fp16 within the f32 bound) with the option on and off, the lw count tile by
// tile, the iwt count, predicted == simulated, and the install-bound speed-up.
#include <catch2/catch.hpp>

#include <algorithm>

#include "compiler/compile.h"
#include "isa/chip_config.h"
#include "tests/support/gemm_check.h"
#include "tests/support/issued_count.h"

using namespace lpu;
using namespace lpu::compiler;

TEST_CASE("narrow tiles: a tile narrower than its rows loads its columns and installs them transposed",
          "[compiler][narrow]") {
  const int64_t lanes = default_chip_config()->vector_bytes();
  struct S { int64_t M, K, N; };
  // 40x400x100: a 320-row tile of 100 columns (transposed) and an 80-row one (not: 80 < 100);
  // 200x700x650: the row cut, 10-column tiles transposed; 1x4096x1376: install-bound, 96 columns.
  uint32_t seed = 21;
  for (const S& s : {S{40, 400, 100}, S{200, 700, 650}, S{1, 4096, 1376}})
    for (Precision p : {Precision::INT8, Precision::FP16}) {
      INFO(s.M << "x" << s.K << "x" << s.N << (p == Precision::INT8 ? " int8" : " fp16"));
      const CompileResult on = test::check_gemm_values(s.M, s.K, s.N, p, seed, true);
      const CompileResult off = test::check_gemm_values(s.M, s.K, s.N, p, seed++, false);
      uint64_t lw_on = 0, lw_off = 0, narrow = 0;
      for (int64_t k0 = 0; k0 < s.K; k0 += lanes)
        for (int64_t n0 = 0; n0 < s.N; n0 += lanes) {
          const int64_t rows = std::min(lanes, s.K - k0), cols = std::min(lanes, s.N - n0);
          lw_on += static_cast<uint64_t>(std::min(rows, cols));
          lw_off += static_cast<uint64_t>(rows);
          narrow += cols < rows ? 1 : 0;
        }
      REQUIRE(narrow > 0);
      CHECK(on.stats.lw == lw_on);
      CHECK(off.stats.lw == lw_off);
      // Every narrow tile is installed by iwt (once per plane that loads a part of it), none without.
      CHECK(test::issued_count(on.program, Opcode::InstWT) >= narrow);
      CHECK(test::issued_count(off.program, Opcode::InstWT) == 0);
      if (s.M == 1) CHECK(on.program.predicted_cycles < off.program.predicted_cycles);  // install-bound: fewer lw, sooner
    }
}
