// The transposed install `iwt` (docs/architecture.md, [assumed]): the same program as the fp16 MXM
// unit test with `iw` replaced by `iwt` computes y[j] = sum_i x[i] * shadow[j][i] (W^T), in both
// modes with the same cycles as `iw` (same class), exactly in fp32 for these values.
#include <catch2/catch.hpp>

#include <Eigen/Core>
#include <cstring>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;

TEST_CASE("units: MXM iwt installs the transpose of the shadow buffer") {
  const char* src = R"(
.config tsp-v1
.chips 1
.tensor input w f16 [320,320] chip=0 slices=MEM_W42,MEM_W43 addr=0
.tensor input x f16 [3,320] chip=0 slices=MEM_W41,MEM_W40 addr=0
.tensor output y0 f32 [1,320] chip=0 slices=MEM_W39,MEM_W38,MEM_W37,MEM_W36 addr=0
.tensor output y1 f32 [1,320] chip=0 slices=MEM_W35,MEM_W34,MEM_W33,MEM_W32 addr=0
.chip 0
.queue MEM_W42
    read 0, W0
    repeat 319, 1
.queue MEM_W43
    nop 1
    read 0, W1
    repeat 319, 1
.queue MXM_W.0
    nop 5
    lw.f16 p0, W0, r0
    repeat 319, 1
    nop 1
    iwt.f16 p0
    nop 23
    abc.f16 p0, W2, r0
    nop 3
    abc.f16 p0, W2, r1
    nop 3
    abc.f16 p0, W2, r0+
    nop 23
    acc.f32 p0, r0 -> E0
    acc.f32 p0, r1 -> E4
.queue MEM_W41
    nop 344
    read 0, W2
    repeat 2, 4
.queue MEM_W40
    nop 343
    read 0, W3
    repeat 2, 4
.queue MEM_W39
    nop 390
    write E0, 0
.queue MEM_W38
    nop 391
    write E1, 0
.queue MEM_W37
    nop 392
    write E2, 0
.queue MEM_W36
    nop 393
    write E3, 0
.queue MEM_W35
    nop 395
    write E4, 0
.queue MEM_W34
    nop 396
    write E5, 0
.queue MEM_W33
    nop 397
    write E6, 0
.queue MEM_W32
    nop 398
    write E7, 0
)";
  std::vector<float> w(320 * 320), x(3 * 320);
  for (int i = 0; i < 320 * 320; ++i) w[i] = 0.5f * static_cast<float>((i * 7919) % 9 - 4);
  for (int i = 0; i < 3 * 320; ++i) x[i] = 0.25f * static_cast<float>((i * 104729) % 13 - 6);
  auto halves = [](const std::vector<float>& f) {
    std::vector<uint8_t> b(f.size() * 2);
    for (size_t i = 0; i < f.size(); ++i) {
      const uint16_t h = Eigen::numext::bit_cast<uint16_t>(Eigen::half(f[i]));
      b[2 * i] = static_cast<uint8_t>(h);
      b[2 * i + 1] = static_cast<uint8_t>(h >> 8);
    }
    return b;
  };
  auto floats = [](const std::vector<uint8_t>& b) {
    std::vector<float> v(b.size() / 4);
    std::memcpy(v.data(), b.data(), b.size());
    return v;
  };
  auto cfg = default_chip_config();
  Program p = assemble(src, "mxm_iwt.s", *cfg);
  sim::SimOptions o;
  o.inputs = {{"w", halves(w)}, {"x", halves(x)}};
  const sim::SimResult r = sim::simulate(p, *cfg, o);
  CHECK(r.cycles == 398 + 2 + 19);
  o.mode = sim::Mode::Timing;
  CHECK(sim::simulate(p, *cfg, o).cycles == r.cycles);
  const auto y0 = floats(r.outputs.at("y0"));
  const auto y1 = floats(r.outputs.at("y1"));
  int bad = 0, differs_from_iw = 0;
  for (int j = 0; j < 320; ++j) {
    double s0 = 0, s1 = 0, n0 = 0;
    for (int i = 0; i < 320; ++i) {
      s0 += (double(x[i]) + double(x[640 + i])) * w[j * 320 + i];  // W^T
      s1 += double(x[320 + i]) * w[j * 320 + i];
      n0 += (double(x[i]) + double(x[640 + i])) * w[i * 320 + j];  // what iw would give
    }
    bad += y0[j] != static_cast<float>(s0) || y1[j] != static_cast<float>(s1);
    differs_from_iw += static_cast<float>(s0) != static_cast<float>(n0);
  }
  CHECK(bad == 0);
  CHECK(differs_from_iw > 100);  // the test tells iwt from iw
}
