// A lone Add / Sub / Mul of f16 operands into an f16 tensor (with at most a fused Relu) runs on the
// f16 values directly (backend/elementwise_kernel.cpp `f16_direct`): `add.f16` + `relu.f16`, no
// widening `cvt`s and no narrowing one. A float VXM op computes in f32 and rounds once to its
// dtype, so the stored values are bit for bit those of the widened form: checked exactly here
// against round_f16(relu(f32(a) op f32(b))) computed on the host, through a second add whose f32
// output exposes every bit of the f16 intermediate. Predicted == simulated.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "compiler/compile.h"
#include "compiler/io_binding.h"
#include "compiler/ir/dtype.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"
#include "tests/support/issued_count.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::random_f16;

TEST_CASE("f16 direct arith: Relu(A op B) into f16 is one op.f16 + relu.f16 per vector, bit-exact", "[eltwise][f16]") {
  const int64_t R = 48, C = 700;  // 3 vectors a row, the last one partial
  for (ir::OpKind k : {ir::OpKind::Add, ir::OpKind::Sub, ir::OpKind::Mul}) {
    Opcode opc = k == ir::OpKind::Add ? Opcode::Add : k == ir::OpKind::Sub ? Opcode::Sub : Opcode::Mul;
    INFO("op " << static_cast<int>(opc));
    ir::Graph g;
    g.name = "f16_direct";
    const ir::TensorId a = g.add_input("A", ir::DType::F16, {R, C});
    const ir::TensorId b = g.add_input("B", ir::DType::F16, {R, C});
    const ir::TensorId w = g.add_input("W", ir::DType::F16, {R, C});
    const ir::TensorId s = g.add_tensor("S", ir::DType::F16, {R, C});
    const ir::TensorId z = g.add_tensor("Z", ir::DType::F16, {R, C});
    const ir::TensorId out = g.add_tensor("OUT", ir::DType::F32, {R, C});
    g.add_op(make_op(k, "op", {a, b}, {s}));
    g.add_op(make_op(ir::OpKind::Relu, "relu", {s}, {z}));
    g.add_op(make_op(ir::OpKind::Add, "expose", {z, w}, {out}));  // f32: every bit of Z shows
    g.mark_output(out);
    // Magnitudes spread over several binades so sums and products round in f16.
    const std::vector<float> va = random_f16(R * C, -60.f, 60.f, 11), vb = random_f16(R * C, -3.f, 3.f, 12),
                             vw = random_f16(R * C, -1.f, 1.f, 13);
    auto cfg = default_chip_config();
    const CompileResult cr = compile(g, *cfg, CompileOptions{});
    const uint64_t vectors = static_cast<uint64_t>(R) * 3;
    const DType f16 = DType::F16;
    auto of = [&](Opcode o, DType t) {
      return lpu::test::issued_count(cr.program, [&](const Instr& in) { return in.op == o && in.dtype() == t; });
    };
    CHECK(of(opc, f16) == vectors);
    CHECK(of(Opcode::Relu, f16) == vectors);
    CHECK(of(Opcode::Relu, DType::F32) == 0);
    // Widening: only the expose add's two operands (Z and W), none for A and B; no f32 -> f16.
    CHECK(of(Opcode::Cvt, f16) == 2 * vectors);
    CHECK(lpu::test::issued_count(cr.program, [](const Instr& in) {
            return in.op == Opcode::Cvt && in.dtype2() == DType::F16;
          }) == 0);
    sim::SimOptions so;
    so.mode = sim::Mode::Functional;
    bind_input(cr.program, "A", f16_bytes(va), &so.inputs);
    bind_input(cr.program, "B", f16_bytes(vb), &so.inputs);
    bind_input(cr.program, "W", f16_bytes(vw), &so.inputs);
    const sim::SimResult r = sim::simulate(cr.program, *cfg, so);
    CHECK(r.cycles == cr.program.predicted_cycles);
    const std::vector<uint8_t> bytes = gather_output(cr.program, "OUT", r.outputs);
    REQUIRE(bytes.size() == static_cast<size_t>(R * C) * 4);
    int64_t mismatches = 0, rounded = 0;
    for (int64_t i = 0; i < R * C; ++i) {
      const float x = va[static_cast<size_t>(i)], y = vb[static_cast<size_t>(i)];
      const float exact = opc == Opcode::Add ? x + y : opc == Opcode::Sub ? x - y : x * y;  // f32
      const float zz = ir::round_f16(exact > 0.f ? exact : 0.f);
      rounded += zz != (exact > 0.f ? exact : 0.f) ? 1 : 0;
      const float want = zz + vw[static_cast<size_t>(i)];
      float got;
      std::memcpy(&got, &bytes[static_cast<size_t>(i) * 4], 4);
      mismatches += std::memcmp(&got, &want, 4) != 0 ? 1 : 0;
    }
    CHECK(mismatches == 0);
    CHECK(rounded > R * C / 10);  // the data exercises the f16 rounding
  }
}
