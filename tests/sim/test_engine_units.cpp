// Unit semantics in functional mode, checked against plain C++ references: VXM arithmetic per
// dtype (wrapping, f16 rounding, conversions), SXM lane movement, MXM fp16 with accumulation and
// interleaved rows, MEM gather/scatter. Programs are generated so that every operand plane
// reaches the unit on the same cycle (positions from the tsp-v1 floorplan).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include <Eigen/Core>
#include <fmt/format.h>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"

using namespace lpu;

namespace {

// One operand or result of the unit under test: a tensor whose byte plane b lives in slices[b]
// and travels on stream dir + (base + b).
struct Operand {
  std::string name;
  std::string dtype;
  std::vector<std::string> slices;
  char dir;   // 'E' or 'W'
  int base;
};

int pos(const ChipConfig& cfg, const std::string& slice) {
  const int i = cfg.slice_index(slice);
  REQUIRE(i >= 0);
  return static_cast<int>(cfg.slices[i].position);
}

std::string nop_then(int n, const std::string& instr) {
  return (n > 0 ? fmt::format("    nop {}\n", n) : std::string()) + "    " + instr + "\n";
}

// The unit instruction issues at cycle T on `unit_queue`; each input plane is read (latency 2)
// so that it reaches the unit on T; each result plane is written where it passes on its way.
std::string unit_program(const ChipConfig& cfg, const std::string& unit_queue, const std::string& instr, int latency,
                         const std::vector<Operand>& ins, const Operand& out) {
  const int T = 40;
  const std::string unit_slice = unit_queue.substr(0, unit_queue.find('.'));
  const int u = pos(cfg, unit_slice);
  std::string s = ".config tsp-v1\n.chips 1\n";
  for (const Operand& o : ins) {
    std::string sl;
    for (const auto& x : o.slices) sl += (sl.empty() ? "" : ",") + x;
    s += fmt::format(".tensor input {} {} [1,320] chip=0 slices={} addr=0\n", o.name, o.dtype, sl);
  }
  {
    std::string sl;
    for (const auto& x : out.slices) sl += (sl.empty() ? "" : ",") + x;
    s += fmt::format(".tensor output {} {} [1,320] chip=0 slices={} addr=0\n", out.name, out.dtype, sl);
  }
  s += ".chip 0\n";
  for (const Operand& o : ins)
    for (size_t b = 0; b < o.slices.size(); ++b) {
      const int p = pos(cfg, o.slices[b]);
      s += ".queue " + o.slices[b] + "\n" + nop_then(T - 2 - std::abs(u - p), fmt::format("read 0, {}{}", o.dir, o.base + b));
    }
  s += ".queue " + unit_queue + "\n" + nop_then(T, instr);
  for (size_t b = 0; b < out.slices.size(); ++b) {
    const int p = pos(cfg, out.slices[b]);
    s += ".queue " + out.slices[b] + "\n" + nop_then(T + latency + std::abs(p - u), fmt::format("write {}{}, 0", out.dir, out.base + b));
  }
  return s;
}

std::vector<uint8_t> bytes_of_floats(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}
std::vector<float> floats_of(const std::vector<uint8_t>& b) {
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}
uint16_t half_bits(float f) { return Eigen::numext::bit_cast<uint16_t>(Eigen::half(f)); }
float half_value(uint16_t h) { return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(h)); }

std::map<std::string, std::vector<uint8_t>> run(const std::string& src, std::map<std::string, std::vector<uint8_t>> inputs) {
  auto cfg = default_chip_config();
  Program p = assemble(src, "unit.s", *cfg);
  sim::SimOptions o;
  o.inputs = std::move(inputs);
  return sim::simulate(p, *cfg, o).outputs;
}

// Slices west of the VXM feed eastward streams, east of it westward ones.
const std::vector<std::string> kW = {"MEM_W0", "MEM_W1", "MEM_W2", "MEM_W3"};
const std::vector<std::string> kE = {"MEM_E0", "MEM_E1", "MEM_E2", "MEM_E3"};
const std::vector<std::string> kOut = {"MEM_E8", "MEM_E9", "MEM_E10", "MEM_E11"};
std::vector<std::string> first(const std::vector<std::string>& v, int n) { return {v.begin(), v.begin() + n}; }

std::string vxm2(const ChipConfig& cfg, const std::string& instr, int lat, int in_bytes, const std::string& dt, int out_bytes,
                 const std::string& out_dt) {
  return unit_program(cfg, "VXM.0", instr, lat,
                      {{"a", dt, first(kW, in_bytes), 'E', 0}, {"b", dt, first(kE, in_bytes), 'W', 0}},
                      {"c", out_dt, first(kOut, out_bytes), 'E', 8});
}
std::string vxm1(const ChipConfig& cfg, const std::string& instr, int lat, int in_bytes, const std::string& dt, int out_bytes,
                 const std::string& out_dt) {
  return unit_program(cfg, "VXM.0", instr, lat, {{"a", dt, first(kW, in_bytes), 'E', 0}}, {"c", out_dt, first(kOut, out_bytes), 'E', 8});
}

}  // namespace

TEST_CASE("units: VXM integer ops wrap, compare and select lane-wise") {
  auto cfg = default_chip_config();
  std::vector<uint8_t> a(320), b(320);
  for (int i = 0; i < 320; ++i) {
    a[i] = static_cast<uint8_t>(i * 3 + 100);
    b[i] = static_cast<uint8_t>(200 - i * 5);
  }
  auto c = run(vxm2(*cfg, "add.i8 E0, W0 -> E8", 3, 1, "i8", 1, "i8"), {{"a", a}, {"b", b}}).at("c");
  for (int i = 0; i < 320; ++i) CHECK(c[i] == static_cast<uint8_t>(a[i] + b[i]));
  c = run(vxm2(*cfg, "mul.i8 E0, W0 -> E8", 4, 1, "i8", 1, "i8"), {{"a", a}, {"b", b}}).at("c");
  for (int i = 0; i < 320; ++i) CHECK(c[i] == static_cast<uint8_t>(static_cast<int8_t>(a[i]) * static_cast<int8_t>(b[i])));
  c = run(vxm2(*cfg, "cmpgt.i8 E0, W0 -> E8", 3, 1, "i8", 1, "i8"), {{"a", a}, {"b", b}}).at("c");
  for (int i = 0; i < 320; ++i) CHECK(c[i] == (static_cast<int8_t>(a[i]) > static_cast<int8_t>(b[i]) ? 1 : 0));
  c = run(vxm1(*cfg, "neg.i8 E0 -> E8", 3, 1, "i8", 1, "i8"), {{"a", a}}).at("c");
  for (int i = 0; i < 320; ++i) CHECK(c[i] == static_cast<uint8_t>(-static_cast<int8_t>(a[i])));
  c = run(vxm1(*cfg, "relu.i8 E0 -> E8", 3, 1, "i8", 1, "i8"), {{"a", a}}).at("c");
  for (int i = 0; i < 320; ++i) CHECK(static_cast<int8_t>(c[i]) == std::max<int8_t>(static_cast<int8_t>(a[i]), 0));
  // muli on integers: the fp32 immediate 2.5 rounds to 2 (nearest even), then wraps.
  c = run(vxm1(*cfg, "muli.i8 E0, 2.5 -> E8", 4, 1, "i8", 1, "i8"), {{"a", a}}).at("c");
  for (int i = 0; i < 320; ++i) CHECK(c[i] == static_cast<uint8_t>(a[i] * 2));
  // sel: c != 0 ? a : b, with c on E1 from MEM_W5.
  std::vector<uint8_t> sel(320);
  for (int i = 0; i < 320; ++i) sel[i] = i % 3 == 0 ? 0 : static_cast<uint8_t>(i);
  const std::string s = unit_program(*cfg, "VXM.0", "sel.i8 E1, E0, W0 -> E8", 3,
                                     {{"a", "i8", {"MEM_W0"}, 'E', 0}, {"b", "i8", {"MEM_E0"}, 'W', 0}, {"s", "i8", {"MEM_W5"}, 'E', 1}},
                                     {"c", "i8", {"MEM_E8"}, 'E', 8});
  c = run(s, {{"a", a}, {"b", b}, {"s", sel}}).at("c");
  for (int i = 0; i < 320; ++i) CHECK(c[i] == (sel[i] ? a[i] : b[i]));
}

TEST_CASE("units: VXM i32 arithmetic carries across the four byte planes") {
  auto cfg = default_chip_config();
  std::vector<int32_t> a(320), b(320);
  for (int i = 0; i < 320; ++i) {
    a[i] = static_cast<int32_t>(static_cast<uint32_t>(i) * 16777259u - 2000000000u);  // wraps, no UB
    b[i] = 2147483000 - i * 999983;
  }
  std::vector<uint8_t> ab(1280), bb(1280);
  std::memcpy(ab.data(), a.data(), 1280);
  std::memcpy(bb.data(), b.data(), 1280);
  auto c = run(vxm2(*cfg, "add.i32 E0, W0 -> E8", 3, 4, "i32", 4, "i32"), {{"a", ab}, {"b", bb}}).at("c");
  for (int i = 0; i < 320; ++i) {
    int32_t got;
    std::memcpy(&got, &c[i * 4], 4);
    CHECK(got == static_cast<int32_t>(static_cast<uint32_t>(a[i]) + static_cast<uint32_t>(b[i])));
  }
  // cvt.i32 -> i8 saturates.
  c = run(vxm1(*cfg, "cvt.i32 E0 -> .i8 E8", 3, 4, "i32", 1, "i8"), {{"a", ab}}).at("c");
  for (int i = 0; i < 320; ++i) CHECK(static_cast<int8_t>(c[i]) == std::clamp<int32_t>(a[i], -128, 127));
}

TEST_CASE("units: VXM float ops compute in fp32 and round f16 results to nearest even") {
  auto cfg = default_chip_config();
  std::vector<uint8_t> ah(640), bh(640);
  std::vector<float> af(320), bf(320);
  for (int i = 0; i < 320; ++i) {
    const uint16_t x = half_bits(0.001f * static_cast<float>(i * i) - 7.3f);
    const uint16_t y = half_bits(3.0f + 0.37f * static_cast<float>(i));
    ah[2 * i] = static_cast<uint8_t>(x); ah[2 * i + 1] = static_cast<uint8_t>(x >> 8);
    bh[2 * i] = static_cast<uint8_t>(y); bh[2 * i + 1] = static_cast<uint8_t>(y >> 8);
    af[i] = half_value(x);
    bf[i] = half_value(y);
  }
  auto c = run(vxm2(*cfg, "div.f16 E0, W0 -> E8", 8, 2, "f16", 2, "f16"), {{"a", ah}, {"b", bh}}).at("c");
  for (int i = 0; i < 320; ++i) {
    const uint16_t got = static_cast<uint16_t>(c[2 * i] | (c[2 * i + 1] << 8));
    CHECK(got == half_bits(af[i] / bf[i]));
  }
  // Round to nearest even, pinned: 1 + 2^-11 is a tie between 1 and 1 + 2^-10 -> 1 (even).
  std::vector<float> x(320, 1.0f), y(320, std::ldexp(1.0f, -11));
  y[1] = std::ldexp(3.0f, -11);  // 1 + 3*2^-11 ties between 1+2^-10 and 1+2^-9 -> 1+2^-9 (even)
  auto d = run(vxm2(*cfg, "add.f32 E0, W0 -> E8", 3, 4, "f32", 4, "f32"), {{"a", bytes_of_floats(x)}, {"b", bytes_of_floats(y)}}).at("c");
  CHECK(floats_of(d)[0] == 1.0f + std::ldexp(1.0f, -11));  // exact in f32
  d = run(vxm1(*cfg, "cvt.f32 E0 -> .f16 E8", 3, 4, "f32", 2, "f16"),
          {{"a", run(vxm2(*cfg, "add.f32 E0, W0 -> E8", 3, 4, "f32", 4, "f32"), {{"a", bytes_of_floats(x)}, {"b", bytes_of_floats(y)}}).at("c")}})
          .at("c");
  CHECK((d[0] | (d[1] << 8)) == 0x3C00);  // 1.0
  CHECK((d[2] | (d[3] << 8)) == 0x3C02);  // 1 + 2^-9
  // exp, and cvt f32 -> i8: nearest even, saturating, NaN -> 0.
  std::vector<float> v(320);
  for (int i = 0; i < 320; ++i) v[i] = -4.0f + 0.025f * static_cast<float>(i);
  auto e = floats_of(run(vxm1(*cfg, "exp.f32 E0 -> E8", 8, 4, "f32", 4, "f32"), {{"a", bytes_of_floats(v)}}).at("c"));
  for (int i = 0; i < 320; ++i) CHECK(e[i] == std::exp(v[i]));
  v[0] = 2.5f; v[1] = 3.5f; v[2] = -2.5f; v[3] = 300.0f; v[4] = -1e9f; v[5] = std::numeric_limits<float>::quiet_NaN();
  auto k = run(vxm1(*cfg, "cvt.f32 E0 -> .i8 E8", 3, 4, "f32", 1, "i8"), {{"a", bytes_of_floats(v)}}).at("c");
  CHECK(static_cast<int8_t>(k[0]) == 2);
  CHECK(static_cast<int8_t>(k[1]) == 4);
  CHECK(static_cast<int8_t>(k[2]) == -2);
  CHECK(static_cast<int8_t>(k[3]) == 127);
  CHECK(static_cast<int8_t>(k[4]) == -128);
  CHECK(static_cast<int8_t>(k[5]) == 0);
}

TEST_CASE("units: VXM fma rounds a * b + c once (float) and wraps (int)") {
  auto cfg = default_chip_config();
  // a = b = 1 + 2^-12: a * b = 1 + 2^-11 + 2^-24, which a `mul` rounds to 1 + 2^-11 (a tie, to
  // even); with c = -(1 + 2^-11) the fma keeps the 2^-24 that mul then add loses.
  const float a0 = 1.0f + std::ldexp(1.0f, -12);
  std::vector<float> a(320), b(320), c(320);
  for (int i = 0; i < 320; ++i) {
    a[i] = i == 0 ? a0 : 0.5f + 0.01f * static_cast<float>(i);
    b[i] = i == 0 ? a0 : -3.0f + 0.02f * static_cast<float>(i);
    c[i] = i == 0 ? -(1.0f + std::ldexp(1.0f, -11)) : 0.25f * static_cast<float>(i % 7);
  }
  const std::string fma = unit_program(*cfg, "VXM.0", "fma.f32 E0, W0, E4 -> E8", 4,
                                       {{"a", "f32", kW, 'E', 0}, {"b", "f32", kE, 'W', 0},
                                        {"c", "f32", {"MEM_W4", "MEM_W5", "MEM_W6", "MEM_W7"}, 'E', 4}},
                                       {"d", "f32", kOut, 'E', 8});
  const auto d = floats_of(run(fma, {{"a", bytes_of_floats(a)}, {"b", bytes_of_floats(b)}, {"c", bytes_of_floats(c)}}).at("d"));
  CHECK(d[0] == std::ldexp(1.0f, -24));
  CHECK(a[0] * b[0] + c[0] == 0.0f);  // what mul then add (two roundings) gives
  for (int i = 1; i < 320; ++i) CHECK(d[i] == std::fma(a[i], b[i], c[i]));
  // i8: a * b + c wraps.
  std::vector<uint8_t> x(320), y(320), z(320);
  for (int i = 0; i < 320; ++i) {
    x[i] = static_cast<uint8_t>(i * 7 + 3);
    y[i] = static_cast<uint8_t>(100 - i);
    z[i] = static_cast<uint8_t>(i * 13);
  }
  const std::string fi = unit_program(*cfg, "VXM.0", "fma.i8 E0, W0, E1 -> E8", 4,
                                      {{"a", "i8", {"MEM_W0"}, 'E', 0}, {"b", "i8", {"MEM_E0"}, 'W', 0},
                                       {"c", "i8", {"MEM_W5"}, 'E', 1}},
                                      {"d", "i8", {"MEM_E8"}, 'E', 8});
  const auto e = run(fi, {{"a", x}, {"b", y}, {"c", z}}).at("d");
  for (int i = 0; i < 320; ++i)
    CHECK(e[i] == static_cast<uint8_t>(static_cast<int8_t>(x[i]) * static_cast<int8_t>(y[i]) + static_cast<int8_t>(z[i])));
}

TEST_CASE("units: SXM shift, rotate, permute and 16x16 transpose move lanes") {
  auto cfg = default_chip_config();
  // SXM_W sits at position 1; MEM_W43 (2) feeds it westward, MEM_W41 (4) takes the result.
  std::vector<uint8_t> a(320);
  for (int i = 0; i < 320; ++i) a[i] = static_cast<uint8_t>(i * 13 + 5);
  auto sx = [&](const std::string& instr, int lat) {
    return run(unit_program(*cfg, "SXM_W.0", instr, lat, {{"a", "i8", {"MEM_W43"}, 'W', 0}}, {"c", "i8", {"MEM_W41"}, 'E', 0}),
               {{"a", a}}).at("c");
  };
  auto c = sx("shift.i8 W0, 5 -> E0", 3);
  for (int i = 0; i < 320; ++i) CHECK(c[i] == (i >= 5 ? a[i - 5] : 0));
  c = sx("shift.i8 W0, -7 -> E0", 3);
  for (int i = 0; i < 320; ++i) CHECK(c[i] == (i + 7 < 320 ? a[i + 7] : 0));
  c = sx("rotate.i8 W0, -7 -> E0", 3);
  for (int i = 0; i < 320; ++i) CHECK(c[i] == a[(i + 7) % 320]);
  // permute by a map: lane i takes lane (i * 7) % 320, every 5th lane zero.
  std::string maps = ".map 0\n";
  for (int i = 0; i < 320; ++i) maps += (i % 5 == 4 ? std::string("0xFFFF") : std::to_string((i * 7) % 320)) + (i % 16 == 15 ? "\n" : " ");
  std::string prog = unit_program(*cfg, "SXM_W.0", "permute.i8 W0, m0 -> E0", 4, {{"a", "i8", {"MEM_W43"}, 'W', 0}},
                                  {"c", "i8", {"MEM_W41"}, 'E', 0});
  prog.insert(prog.find(".tensor"), maps);
  c = run(prog, {{"a", a}}).at("c");
  for (int i = 0; i < 320; ++i) CHECK(c[i] == (i % 5 == 4 ? 0 : a[(i * 7) % 320]));
  // transpose: 16 input planes (a 16-byte "type" per lane) from MEM_W43..MEM_W28 (2..17) on
  // W0..W15, result on E16..E31 written by MEM_W27..MEM_W12 (18..33).
  std::vector<std::string> in, out;
  for (int k = 0; k < 16; ++k) {
    in.push_back(fmt::format("MEM_W{}", 43 - k));
    out.push_back(fmt::format("MEM_W{}", 27 - k));
  }
  std::string tp = ".config tsp-v1\n.chips 1\n.chip 0\n";
  std::string data;
  for (int k = 0; k < 16; ++k) {
    tp += fmt::format(".queue {}\n{}", in[k], nop_then(40 - 2 - (pos(*cfg, in[k]) - 1), fmt::format("read 0, W{}", k)));
    tp += fmt::format(".tensor output o{} i8 [1,320] chip=0 slices={} addr=0\n", k, out[k]);
    tp += fmt::format(".queue {}\n{}", out[k], nop_then(40 + 20 + (pos(*cfg, out[k]) - 1), fmt::format("write E{}, 0", 16 + k)));
    tp += fmt::format(".tensor input i{} i8 [1,320] chip=0 slices={} addr=0\n", k, in[k]);
  }
  tp += ".queue SXM_W.1\n" + nop_then(40, "transpose.i8 W0 -> E16");
  std::map<std::string, std::vector<uint8_t>> ins;
  for (int k = 0; k < 16; ++k) {
    std::vector<uint8_t> v(320);
    for (int i = 0; i < 320; ++i) v[i] = static_cast<uint8_t>(k * 16 + (i % 16) + (i / 16) * 3);
    ins["i" + std::to_string(k)] = v;
  }
  auto outs = run(tp, ins);
  int bad = 0;
  for (int j = 0; j < 16; ++j)
    for (int i = 0; i < 320; ++i) {
      const int blk = i / 16, l = i % 16;
      bad += outs.at("o" + std::to_string(j))[i] != ins.at("i" + std::to_string(l))[blk * 16 + j];
    }
  CHECK(bad == 0);
}

// Runs the fp16 MXM program below with `iw` (W installed as loaded) or, if `transposed`, `iwt`
// (W^T: docs/architecture.md, [assumed]); the same scheduling class, so the same cycles in both
// modes. Checks y against x . W (or x . W^T) exactly in fp32.
static void check_mxm_f16(bool transposed) {
  auto cfg = default_chip_config();
  // W (f16) rows in MEM_W42 (low plane, position 3, on W0) and MEM_W43 (high plane, 2, on W1):
  // row r read at r (W42) and r + 1 (W43), both at MXM_W (0) on r + 5. lw @5..324 (the last lands
  // 326), iw @326 lands 346. x (3 f16 vectors) in MEM_W41 (4) / MEM_W40 (5) on W2/W3, at MXM_W on 350, 354, 358.
  // abc x0 -> r0 @350, x1 -> r1 @354, x2 -> r0+ @358 (lands 382). acc r0 @382 -> E0..E3,
  // acc r1 @383 -> E4..E7; byte plane b of E0.. passes position 6 + b on 390 + b.
  std::string src = R"(
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
    iw.f16 p0
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
  if (transposed) src.replace(src.find("iw.f16 p0"), 9, "iwt.f16 p0");
  // Values in steps of 1/4 and 1/2 with small magnitudes: every product and sum is exact in fp32.
  std::vector<float> w(320 * 320), x(3 * 320);
  for (int i = 0; i < 320 * 320; ++i) w[i] = 0.5f * static_cast<float>((i * 7919) % 9 - 4);
  for (int i = 0; i < 3 * 320; ++i) x[i] = 0.25f * static_cast<float>((i * 104729) % 13 - 6);
  auto halves = [](const std::vector<float>& f) {
    std::vector<uint8_t> b(f.size() * 2);
    for (size_t i = 0; i < f.size(); ++i) {
      const uint16_t h = half_bits(f[i]);
      b[2 * i] = static_cast<uint8_t>(h);
      b[2 * i + 1] = static_cast<uint8_t>(h >> 8);
    }
    return b;
  };
  auto cfgp = default_chip_config();
  Program p = assemble(src, transposed ? "mxm_f16_iwt.s" : "mxm_f16.s", *cfgp);
  sim::SimOptions o;
  o.inputs = {{"w", halves(w)}, {"x", halves(x)}};
  sim::SimResult r = sim::simulate(p, *cfgp, o);
  CHECK(r.cycles == 398 + 2 + 19);
  sim::SimOptions timing = o;
  timing.mode = sim::Mode::Timing;
  CHECK(sim::simulate(p, *cfgp, timing).cycles == r.cycles);
  const auto y0 = floats_of(r.outputs.at("y0"));
  const auto y1 = floats_of(r.outputs.at("y1"));
  int bad = 0, differs_from_other = 0;
  for (int j = 0; j < 320; ++j) {
    double s0 = 0, s1 = 0, other = 0;
    for (int i = 0; i < 320; ++i) {
      const float wij = transposed ? w[j * 320 + i] : w[i * 320 + j];
      const float wother = transposed ? w[i * 320 + j] : w[j * 320 + i];
      s0 += (double(x[i]) + double(x[640 + i])) * wij;
      s1 += double(x[320 + i]) * wij;
      other += (double(x[i]) + double(x[640 + i])) * wother;
    }
    bad += y0[j] != static_cast<float>(s0) || y1[j] != static_cast<float>(s1);
    differs_from_other += static_cast<float>(s0) != static_cast<float>(other);
  }
  CHECK(bad == 0);
  CHECK(differs_from_other > 100);  // the data tells W from W^T, so the test tells iw from iwt
  CHECK(r.chips[0].events[static_cast<int>(EnergyEvent::MacFp16)] == 3 * 320 * 320);
  CHECK(r.chips[0].events[static_cast<int>(EnergyEvent::WeightLoad)] == 320);
  CHECK(r.chips[0].events[static_cast<int>(EnergyEvent::AccRead)] == 2);
}

TEST_CASE("units: MXM fp16 abc accumulates into interleaved rows exactly in fp32") { check_mxm_f16(false); }

TEST_CASE("units: MXM iwt installs the transpose of the shadow buffer") { check_mxm_f16(true); }

TEST_CASE("units: MEM gather and scatter index lanes with int16 offsets") {
  auto cfg = default_chip_config();
  // Indices (int16) in MEM_E3 (50, low byte, on E0) and MEM_E4 (51, high byte, on E1): at MEM_E5
  // (52) on 40 when read on 36 and 37. Gather @40 from 100 + idx[i]; its result on E2 lands at 52
  // on 43 and reaches MEM_E7 (54) on 45.
  std::vector<uint8_t> idx(640);
  for (int i = 0; i < 320; ++i) {
    const int16_t v = static_cast<int16_t>((i * 7) % 8);
    idx[2 * i] = static_cast<uint8_t>(v);
    idx[2 * i + 1] = static_cast<uint8_t>(static_cast<uint16_t>(v) >> 8);
  }
  const char* gsrc = R"(
.config tsp-v1
.chips 1
.fill chip=0 slice=MEM_E5 addr=100 count=2560 seed=3
.tensor input idx i16 [1,320] chip=0 slices=MEM_E3,MEM_E4 addr=0
.tensor output g i8 [1,320] chip=0 slices=MEM_E7 addr=0
.chip 0
.queue MEM_E3
    nop 36
    read 0, E0
.queue MEM_E4
    nop 37
    read 0, E1
.queue MEM_E5
    nop 40
    gather E0, 100 -> E2
.queue MEM_E7
    nop 45
    write E2, 0
)";
  Program gp = assemble(gsrc, "gather.s", *cfg);
  sim::SimOptions o;
  o.inputs = {{"idx", idx}};
  sim::SimResult gr = sim::simulate(gp, *cfg, o);
  const auto& blob = gp.data.at(0).bytes;
  const auto& g = gr.outputs.at("g");
  for (int i = 0; i < 320; ++i) CHECK(g[i] == blob[((i * 7) % 8) * 320 + i]);
  CHECK(gr.cycles == 45 + 2 + 19);

  // Scatter @40: values from MEM_E2 (49, on E2, read @35), same indices, to 200 + idx[i].
  const char* ssrc = R"(
.config tsp-v1
.chips 1
.tensor input idx i16 [1,320] chip=0 slices=MEM_E3,MEM_E4 addr=0
.tensor input v i8 [1,320] chip=0 slices=MEM_E2 addr=0
.tensor output s i8 [8,320] chip=0 slices=MEM_E5 addr=200
.chip 0
.queue MEM_E2
    nop 35
    read 0, E2
.queue MEM_E3
    nop 36
    read 0, E0
.queue MEM_E4
    nop 37
    read 0, E1
.queue MEM_E5
    nop 40
    scatter E2, E0, 200
)";
  Program sp = assemble(ssrc, "scatter.s", *cfg);
  std::vector<uint8_t> v(320);
  for (int i = 0; i < 320; ++i) v[i] = static_cast<uint8_t>(i + 1);
  o.inputs = {{"idx", idx}, {"v", v}};
  sim::SimResult sr = sim::simulate(sp, *cfg, o);
  const auto& s = sr.outputs.at("s");
  for (int a = 0; a < 8; ++a)
    for (int i = 0; i < 320; ++i) CHECK(s[a * 320 + i] == ((i * 7) % 8 == a ? v[i] : 0));
  // idx (2 vectors) + v (1) preloaded, 8 addresses scattered to.
  CHECK(sr.chips[0].sram_vectors_used == 3 + 8);

  // An index past the end of the slice is reported in functional mode.
  idx[2 * 17] = 0xFF;
  idx[2 * 17 + 1] = 0x7F;  // 32767
  o.inputs = {{"idx", idx}};
  try {
    sim::simulate(gp, *cfg, o);
    FAIL("expected sram-range");
  } catch (const sim::SimError& e) {
    CHECK(e.rule() == "sram-range");
    CHECK(std::string(e.what()).find("lane 17: address 100 + index 32767 = 32867 is outside 0..8191") != std::string::npos);
  }
}
