// Tests of the assembler and disassembler (isa/asm.h): every opcode and the sample programs in
// tests/data/asm round-trip text <-> Program byte for byte, the normal form is a fixed point,
// operands print/parse from the opcodes.def templates, and bad sources fail with pinned messages.
#include <catch2/catch.hpp>

#include "tests/support/cli.h"

#include "tests/support/files.h"

#include <cfloat>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "isa/program_io.h"

using namespace lpu;

namespace {

std::vector<std::string> sample_files() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(std::string(LPU_SOURCE_DIR) + "/tests/data/asm"))
    if (e.path().extension() == ".s") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// One instance of every opcode, spread over both chips and over slices of the right kind, with
// every program-level field (maps, links, data, tensors, prediction, work) set to something.
Program every_opcode_program(const ChipConfig& cfg) {
  Program p;
  p.config_name = cfg.name;
  p.num_chips = 2;
  p.chips.resize(2);
  const uint32_t lanes = cfg.vector_bytes();
  for (int m = 0; m < 3; ++m) {
    std::vector<uint16_t> map(lanes);
    for (uint32_t i = 0; i < lanes; ++i)
      map[i] = m == 0 ? static_cast<uint16_t>(i) : m == 1 ? static_cast<uint16_t>(lanes - 1 - i) : (i % 3 == 0 ? 0xFFFF : 5);
    p.maps.push_back(map);
  }
  std::map<std::pair<uint16_t, uint8_t>, QueueCode> queues[2];
  auto slice_of = [&](Unit u, int k) -> uint16_t {
    for (SliceKind kind : {SliceKind::MEM, SliceKind::VXM, SliceKind::MXM, SliceKind::SXM, SliceKind::C2C})
      if (slice_unit(kind) == u) {
        const std::vector<int> s = cfg.slices_of(kind);
        return static_cast<uint16_t>(s[static_cast<size_t>(k) % s.size()]);
      }
    return static_cast<uint16_t>(cfg.slices_of(SliceKind::VXM)[0]);  // ICU ops: any queue
  };
  std::pair<uint16_t, uint8_t> read_queue{};
  for (int k = 0; k < kNumOpcodes; ++k) {
    const Opcode op = static_cast<Opcode>(k);
    if (op == Opcode::Repeat) continue;  // placed right after the read below
    const OpInfo& oi = op_info(op);
    Instr in = make_instr(op);
    auto uses = [&](Field f) { return (oi.used_fields >> static_cast<int>(f)) & 1u; };
    if (uses(Field::Dst)) in.set(Field::Dst, StreamRef{Dir::West, 16}.encode());
    if (uses(Field::SrcA)) in.set(Field::SrcA, StreamRef{Dir::East, 0}.encode());
    if (uses(Field::SrcB)) in.set(Field::SrcB, StreamRef{Dir::West, 0}.encode());
    if (uses(Field::SrcC)) in.set(Field::SrcC, StreamRef{Dir::East, 16}.encode());
    if (uses(Field::Addr)) in.set(Field::Addr, 100u + static_cast<uint32_t>(k));
    if (uses(Field::Imm)) in.set(Field::Imm, oi.unit == Unit::SXM ? static_cast<uint32_t>(k % 3) : static_cast<uint32_t>(k + 1));
    if (uses(Field::SImm)) in.set(Field::SImm, static_cast<uint16_t>(-(k + 1)));
    if (uses(Field::FImm)) in.set(Field::FImm, float_bits(-1.5f * static_cast<float>(k) + 0.1f));
    if (uses(Field::Plane)) in.set(Field::Plane, 1);
    if (uses(Field::AccFlag)) in.set(Field::AccFlag, 1);
    if (uses(Field::Row)) in.set(Field::Row, 7);
    if (uses(Field::Link)) in.set(Field::Link, 9);
    if (uses(Field::DType2)) in.set(Field::DType2, static_cast<uint32_t>(DType::F32));
    if (uses(Field::DType)) {  // vary the type: the first one from k on that validate_fields accepts
      for (int d = 0; d < kNumDTypes; ++d) {
        in.set(Field::DType, static_cast<uint32_t>((k + d) % kNumDTypes));
        if (validate_fields(in).empty()) break;
      }
    }
    REQUIRE(validate_fields(in) == "");
    const uint16_t slice = slice_of(oi.unit, k);
    const auto key = std::make_pair(slice, static_cast<uint8_t>(static_cast<uint32_t>(k) % cfg.slices[slice].queues));
    QueueCode& q = queues[k % 2][key];
    q.slice = key.first;
    q.queue = key.second;
    q.code.push_back(in);
    if (op == Opcode::Read) {
      read_queue = key;
      Instr rep = make_instr(Opcode::Repeat);
      rep.set(Field::Count, 3);
      rep.set(Field::Stride, 2);
      q.code.push_back(rep);
    }
  }
  for (int c = 0; c < 2; ++c)
    for (auto& [key, q] : queues[c]) p.chips[static_cast<size_t>(c)].queues.push_back(q);
  (void)read_queue;
  const uint16_t mem0 = static_cast<uint16_t>(cfg.slices_of(SliceKind::MEM)[0]);
  const uint16_t mem1 = static_cast<uint16_t>(cfg.slices_of(SliceKind::MEM)[1]);
  DataBlob b;
  b.chip = 1;
  b.slice = mem0;
  b.addr = 40;
  for (uint32_t i = 0; i < 2 * lanes; ++i) b.bytes.push_back(static_cast<uint8_t>(i * 7 + 3));
  p.data.push_back(b);
  TensorDesc t;
  t.name = "x/in:0";
  t.role = TensorRole::Input;
  t.dtype = DType::I16;
  t.shape = {2, 3, 400};
  t.chip = 0;
  t.slices = {mem1, mem0};
  t.addr = 500;
  p.tensors.push_back(t);
  t.name = "y";
  t.role = TensorRole::Output;
  t.dtype = DType::F32;
  t.shape = {};
  t.chip = 1;
  t.slices = {static_cast<uint16_t>(cfg.slices_of(SliceKind::MEM)[5]), static_cast<uint16_t>(cfg.slices_of(SliceKind::MEM)[6]),
              static_cast<uint16_t>(cfg.slices_of(SliceKind::MEM)[7]), static_cast<uint16_t>(cfg.slices_of(SliceKind::MEM)[8])};
  t.addr = 0;
  p.tensors.push_back(t);
  p.links.push_back({0, 1, 1, 2});
  p.links.push_back({1, 15, 0, 0});
  p.predicted_cycles = 12345;
  p.work_items = 7;
  p.work_unit = "tokens";
  return p;
}

// Field-by-field equality (independent of the serializer), with a message naming the difference.
std::string program_difference(const Program& a, const Program& b) {
  if (a.config_name != b.config_name) return "config_name";
  if (a.num_chips != b.num_chips || a.chips.size() != b.chips.size()) return "chips";
  for (size_t c = 0; c < a.chips.size(); ++c) {
    if (a.chips[c].queues.size() != b.chips[c].queues.size()) return "queue count of chip " + std::to_string(c);
    for (size_t q = 0; q < a.chips[c].queues.size(); ++q) {
      const QueueCode &x = a.chips[c].queues[q], &y = b.chips[c].queues[q];
      if (x.slice != y.slice || x.queue != y.queue || !(x.code == y.code))
        return "chip " + std::to_string(c) + " queue entry " + std::to_string(q);
    }
  }
  if (a.data.size() != b.data.size()) return "data count";
  for (size_t i = 0; i < a.data.size(); ++i)
    if (a.data[i].chip != b.data[i].chip || a.data[i].slice != b.data[i].slice || a.data[i].addr != b.data[i].addr ||
        a.data[i].bytes != b.data[i].bytes)
      return "data blob " + std::to_string(i);
  if (a.tensors.size() != b.tensors.size()) return "tensor count";
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const TensorDesc &x = a.tensors[i], &y = b.tensors[i];
    if (x.name != y.name || x.role != y.role || x.dtype != y.dtype || x.shape != y.shape || x.chip != y.chip ||
        x.slices != y.slices || x.addr != y.addr)
      return "tensor " + std::to_string(i);
  }
  if (a.links.size() != b.links.size()) return "link count";
  for (size_t i = 0; i < a.links.size(); ++i)
    if (a.links[i].chip_a != b.links[i].chip_a || a.links[i].link_a != b.links[i].link_a || a.links[i].chip_b != b.links[i].chip_b ||
        a.links[i].link_b != b.links[i].link_b)
      return "link " + std::to_string(i);
  if (a.maps != b.maps) return "maps";
  if (a.predicted_cycles != b.predicted_cycles) return "predicted_cycles";
  if (a.work_items != b.work_items || a.work_unit != b.work_unit) return "work";
  return "";
}

std::string assemble_error(const std::string& text, const ChipConfig& cfg) {
  try {
    assemble(text, "t.s", cfg);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("asm: a program with every opcode round-trips through text and binary") {
  const auto cfg = default_chip_config();
  const Program p = every_opcode_program(*cfg);
  int seen[kNumOpcodes] = {};
  for (const ChipCode& c : p.chips)
    for (const QueueCode& q : c.queues)
      for (const Instr& in : q.code) seen[static_cast<int>(in.op)]++;
  for (int k = 0; k < kNumOpcodes; ++k) CHECK(seen[k] == 1);
  validate_program(p, *cfg, "every-opcode");

  const std::string text = disassemble(p, *cfg);
  const Program back = assemble(text, "every.s", *cfg);
  CHECK(program_difference(p, back) == "");
  CHECK(serialize_program(back) == serialize_program(p));
  CHECK(disassemble(back, *cfg) == text);

  const Program bin = deserialize_program(serialize_program(p), "every.lpu");
  CHECK(program_difference(p, bin) == "");
  CHECK(serialize_program(bin) == serialize_program(p));

  DisasmOptions plain;
  plain.cycle_comments = false;
  const std::string text2 = disassemble(p, *cfg, plain);
  CHECK(text2.find("; @") == std::string::npos);
  CHECK(program_difference(p, assemble(text2, "every2.s", *cfg)) == "");
}

TEST_CASE("asm: sample programs round-trip and their normal form is a fixed point") {
  const auto cfg = default_chip_config();
  const std::vector<std::string> files = sample_files();
  REQUIRE(files.size() >= 4);
  for (const std::string& f : files) {
    INFO(f);
    const Program p = assemble(read_text(f), f, *cfg);
    const std::vector<uint8_t> bytes = serialize_program(p);
    const std::string normal = disassemble(p, *cfg);
    const Program p2 = assemble(normal, "normal.s", *cfg);
    CHECK(serialize_program(p2) == bytes);
    CHECK(disassemble(p2, *cfg) == normal);
    CHECK(disassemble(deserialize_program(bytes, "x.lpu"), *cfg) == normal);
  }
}

TEST_CASE("asm: format_instr prints operands from the syntax templates") {
  auto S = [](Dir d, int i) { return StreamRef{d, static_cast<uint8_t>(i)}.encode(); };
  Instr a = make_instr(Opcode::Add);
  with(with(with(with(a, Field::DType, static_cast<uint32_t>(DType::F32)), Field::SrcA, S(Dir::East, 0)), Field::SrcB, S(Dir::West, 4)),
       Field::Dst, S(Dir::East, 8));
  CHECK(format_instr(a) == "add.f32 E0, W4 -> E8");
  Instr c = make_instr(Opcode::Cvt);
  with(with(with(with(c, Field::DType, static_cast<uint32_t>(DType::I8)), Field::SrcA, S(Dir::West, 3)), Field::DType2,
            static_cast<uint32_t>(DType::F16)),
       Field::Dst, S(Dir::East, 30));
  CHECK(format_instr(c) == "cvt.i8 W3 -> .f16 E30");
  Instr abc = make_instr(Opcode::Abc);
  with(with(with(with(abc, Field::DType, static_cast<uint32_t>(DType::F16)), Field::Plane, 1), Field::SrcA, S(Dir::West, 2)),
       Field::Row, 4095);
  CHECK(format_instr(abc) == "abc.f16 p1, W2, r4095");
  abc.set(Field::AccFlag, 1);
  CHECK(format_instr(abc) == "abc.f16 p1, W2, r4095+");
  Instr sh = make_instr(Opcode::Shift);
  with(with(with(sh, Field::SrcA, S(Dir::East, 1)), Field::SImm, static_cast<uint16_t>(-17)), Field::Dst, S(Dir::West, 31));
  CHECK(format_instr(sh) == "shift.i8 E1, -17 -> W31");
  Instr mi = make_instr(Opcode::MulImm);
  with(with(with(with(mi, Field::DType, static_cast<uint32_t>(DType::F32)), Field::SrcA, S(Dir::East, 4)), Field::FImm, float_bits(0.1f)),
       Field::Dst, S(Dir::East, 8));
  CHECK(format_instr(mi) == "muli.f32 E4, 0.1 -> E8");
  Instr pm = make_instr(Opcode::Permute);
  with(with(with(pm, Field::SrcA, S(Dir::East, 5)), Field::Imm, 2), Field::Dst, S(Dir::East, 6));
  CHECK(format_instr(pm) == "permute.i8 E5, m2 -> E6");
  Instr sd = make_instr(Opcode::Send);
  with(with(sd, Field::Link, 15), Field::SrcA, S(Dir::West, 7));
  CHECK(format_instr(sd) == "send l15, W7");
  Instr rp = make_instr(Opcode::Repeat);
  with(with(rp, Field::Count, 319), Field::Stride, 1);
  CHECK(format_instr(rp) == "repeat 319, 1");
  CHECK(format_instr(make_instr(Opcode::Sync)) == "sync");
  Instr sc = make_instr(Opcode::Scatter);
  with(with(with(sc, Field::SrcB, S(Dir::West, 9)), Field::SrcA, S(Dir::East, 2)), Field::Addr, 65535);
  CHECK(format_instr(sc) == "scatter W9, E2, 65535");
}

TEST_CASE("asm: fimm values round-trip bit for bit, including NaN payloads") {
  const auto cfg = default_chip_config();
  const uint32_t cases[] = {float_bits(0.1f), float_bits(-0.0f), float_bits(0.0f), float_bits(FLT_MAX), float_bits(-FLT_MAX),
                            float_bits(FLT_MIN), 0x00000001u /* smallest denormal */, float_bits(1.0f / 3.0f), 0x7f800000u,
                            0xff800000u, 0x7fc00000u, 0x7fc00001u, 0xffc00000u, 0x7f800001u, float_bits(16777217.0f),
                            float_bits(123456789.0f)};
  for (uint32_t bits : cases) {
    Instr in = make_instr(Opcode::AddImm);
    with(with(with(in, Field::DType, static_cast<uint32_t>(DType::F32)), Field::FImm, bits), Field::Dst, StreamRef{Dir::East, 4}.encode());
    const std::string text = format_instr(in);
    INFO(text);
    const Program p = assemble(".queue VXM.0\n    " + text + "\n", "f.s", *cfg);
    REQUIRE(p.chips[0].queues[0].code.size() == 1);
    CHECK(p.chips[0].queues[0].code[0].get(Field::FImm) == bits);
  }
  const Program q = assemble(".equ K 3\n.queue VXM.0\n muli.f32 E0, K -> E4\n muli.f32 E0, 0x40400000 -> E4\n addi.f32 E0,1e+10->E4\n",
                             "f.s", *cfg);
  CHECK(q.chips[0].queues[0].code[0].get(Field::FImm) == float_bits(3.0f));
  CHECK(q.chips[0].queues[0].code[1].get(Field::FImm) == float_bits(3.0f));
  CHECK(q.chips[0].queues[0].code[2].get(Field::FImm) == float_bits(1e10f));
}

TEST_CASE("asm: .fill is splitmix64 and normalizes to .data") {
  const auto cfg = default_chip_config();
  const Program p = assemble(".fill chip=0 slice=MEM_W5 addr=3 count=640 seed=0\n", "fill.s", *cfg);
  REQUIRE(p.data.size() == 1);
  const DataBlob& b = p.data[0];
  CHECK(b.addr == 3);
  CHECK(b.slice == cfg->slice_index("MEM_W5"));
  REQUIRE(b.bytes.size() == 640);
  // splitmix64 with seed 0: first outputs 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4 (reference values).
  const uint8_t first16[16] = {0xaf, 0xcd, 0x1d, 0x7b, 0x39, 0xa8, 0x20, 0xe2, 0xf4, 0x65, 0xb9, 0xa1, 0x6a, 0x9e, 0x78, 0x6e};
  for (int i = 0; i < 16; ++i) CHECK(b.bytes[static_cast<size_t>(i)] == first16[i]);
  const std::string text = disassemble(p, *cfg);
  CHECK(text.find(".fill") == std::string::npos);
  CHECK(text.find(".data chip=0 slice=MEM_W5 addr=3\n    afcd1d7b39a820e2f465b9a16a9e786e") != std::string::npos);
  CHECK(serialize_program(assemble(text, "n.s", *cfg)) == serialize_program(p));
  const Program seven = assemble(".fill slice=MEM_W5 addr=3 count=640 seed=7\n", "fill.s", *cfg);
  CHECK(seven.data[0].bytes != b.bytes);
}

TEST_CASE("asm: source map records the line of every instruction") {
  const auto cfg = default_chip_config();
  SourceMap sm;
  const std::string src = ".chips 1\n.chip 0\n.queue VXM.1\n  nop 2\n\n  add.i8 E0, W1 -> E2 ; x\n  repeat 2, 1\n.queue MEM_E0\n  read 1, E0\n";
  const Program p = assemble(src, "map.s", *cfg, &sm);
  CHECK(sm.file == "map.s");
  REQUIRE(sm.lines.size() == 1);
  REQUIRE(sm.lines[0].size() == 2);
  // queues are sorted by slice index: VXM (position 46) before MEM_E0 (47)
  CHECK(cfg->slices[p.chips[0].queues[0].slice].name == "VXM");
  CHECK(sm.lines[0][0] == std::vector<uint32_t>{4, 6, 7});
  CHECK(sm.lines[0][1] == std::vector<uint32_t>{9});
}

TEST_CASE("asm: cycle comments follow the ICU issue rules") {
  const auto cfg = default_chip_config();
  const std::string src =
      ".queue VXM.2\n nop 3\n add.i8 E0, W1 -> E2\n repeat 4, 5\n notify\n mov.i8 E0 -> E1\n repeat 1, 2\n"
      " sync\n nop 2\n relu.i8 E0 -> E1\n repeat 2, 3\n ifetch 1\n";
  const std::string want =
      ".chips 1\n\n.chip 0\n.queue VXM.2\n"
      "    nop 3                               ; @0\n"
      "    add.i8 E0, W1 -> E2                 ; @3\n"
      "    repeat 4, 5                         ; @8..23\n"
      "    notify                              ; @24\n"
      "    mov.i8 E0 -> E1                     ; @25\n"
      "    repeat 1, 2                         ; @27\n"
      "    sync                                ; @28\n"
      "    nop 2                               ; @sync+0\n"
      "    relu.i8 E0 -> E1                    ; @sync+2\n"
      "    repeat 2, 3                         ; @sync+5..sync+8\n"
      "    ifetch 1                            ; @sync+9\n";
  CHECK(disassemble(assemble(src, "c.s", *cfg), *cfg) == want);
}

TEST_CASE("asm: bad sources fail with pinned messages and line numbers") {
  const auto cfg = default_chip_config();
  const std::pair<std::string, std::string> cases[] = {
      {".queue VXM.0\n  ad.i8 E0, W1 -> E2\n", "t.s:2: unknown mnemonic 'ad'; close matches: add, addi"},
      {".queue VXM.0\n  add.i8 E0, X1 -> E2\n",
       "t.s:2: add: expected a stream (E0..E31 or W0..W31) for src_b, got 'X1' (syntax: add.{dtype} {src_a}, {src_b} -> {dst})"},
      {".queue VXM.0\n  add E0, W1 -> E2\n",
       "t.s:2: add: expected '.' but found 'E0, W1 -> E2' (syntax: add.{dtype} {src_a}, {src_b} -> {dst})"},
      {".queue VXM.0\n  add.i7 E0, W1 -> E2\n",
       "t.s:2: add: expected a type (i8, i16, i32, f16, f32) for dtype, got 'i7' (syntax: add.{dtype} {src_a}, {src_b} -> {dst})"},
      {".queue MEM_E0\n  read 70000, E0\n", "t.s:2: addr = 70000 is out of range 0..65535"},
      {".queue MEM_E0\n  read 9000, E0\n",
       "t.s:2: chip 0, queue MEM_E0.0, instruction 0 (read 9000, E0): addr 9000 is out of range; MEM slices have addresses 0..8191"},
      {"\n.queue MEM_Q0\n", "t.s:2: unknown slice 'MEM_Q0' in config tsp-v1; close matches: MEM_W0, MEM_E0"},
      {".queue VXM.16\n", "t.s:1: unknown queue VXM.16: slice VXM has queues 0..15"},
      {".queue MEM_E0\n  read ADDR, E0\n", "t.s:2: undefined symbol 'ADDR' for addr (no .equ ADDR in this file)"},
      {".queue VXM.3\n nop 1\n.queue VXM.3\n", "t.s:3: duplicate .queue VXM.3 on chip 0 (first at line 1); each queue's code must be in one block"},
      {".chip 0\n  nop 1\n",
       "t.s:2: 'nop 1' is outside any block: instructions go after a .queue directive (and .chip), vector data after .data, map values "
       "after .map"},
      {".queue VXM.0\n  add.i16 E1, W2 -> E4\n", "t.s:2: add: stream E1 for 'src_a' must start a 2-stream group (index a multiple of 2)"},
      {".queue VXM.0\n  nop 0\n", "t.s:2: nop: count must be >= 1"},
      {".queue VXM.0\n  read 1, E0\n",
       "t.s:2: chip 0, queue VXM.0, instruction 0 (read 1, E0): read is a MEM instruction but slice VXM is a VXM slice"},
      {".queue VXM.0\n  repeat 2, 1\n",
       "t.s:2: chip 0, queue VXM.0, instruction 0 (repeat 2, 1): repeat must follow a non-ICU instruction, but it is the first "
       "instruction of its queue"},
      {".queue VXM.0\n  add.i8 E0, W1 -> E2 extra\n",
       "t.s:2: add: unexpected text 'extra' after the operands (syntax: add.{dtype} {src_a}, {src_b} -> {dst})"},
      {".data chip=0 slice=MEM_W5 addr=0\n    00ff\n", "t.s:2: .data: line has 4 hex digits; a vector needs exactly 640 (2 per lane, 320 lanes)"},
      {".data chip=0 slice=VXM addr=0\n", "t.s:1: .data: slice VXM is a VXM slice; data lives in MEM slices"},
      {".map 0 1 2 3\n.chips 1\n", "t.s:1: .map 0 has 3 values; a map needs exactly 320 (one per lane)"},
      {".chips 2\n.link 0:3 1:3\n.link 1:3 0:4\n", "t.s:3: link 1: chip 1 link 3 is already wired by link 0"},
      {".tensor input x i16 [4,320] chip=0 slices=MEM_E0 addr=0\n",
       "t.s:1: tensor 0 'x': i16 needs 2 slices (one per byte plane) but 1 are given"},
      {".tensor input x i8 [9000,320] chip=0 slices=MEM_E0 addr=0\n",
       "t.s:1: tensor 0 'x': 9000 vectors at addr 0 exceed the slice's addresses 0..8191"},
      {".chips 1\n.chip 1\n", "t.s:2: .chip 1 is out of range; .chips 1 allows 0..0"},
      {".queue VXM.0\n.chips 2\n", "t.s:2: .chips must come before anything that names a chip (line 1)"},
      {".fill chip=1 slice=MEM_E0 addr=0 count=320 seed=1\n", "t.s:1: chip=1 is out of range; .chips 1 allows 0..0"},
      {".fill slice=MEM_E0 addr=0 count=2621440 seed=1\n.fill slice=MEM_E0 addr=0 count=320 seed=2\n",
       "t.s:2: chip 0 slice MEM_E0: .data/.fill give 2621760 bytes in all, more than the slice holds (2621440 bytes)"},
      {".fill slice=MEM_E0 addr=0 count=640 seed=1\n.fill slice=MEM_E0 addr=1 count=320 seed=2\n",
       "t.s:2: data blob 1 overlaps data blob 0 in chip 0 slice MEM_E0 at address 1"},
      {".queue SXM_W.0\n  permute.i8 E0, m0 -> E1\n",
       "t.s:2: chip 0, queue SXM_W.0, instruction 0 (permute.i8 E0, m0 -> E1): map m0 is not defined; the program has 0 maps"},
      {".equ A 1\n.equ A 2\n", "t.s:2: .equ A is already defined at line 1"},
      {".bogus 1\n",
       "t.s:1: unknown directive '.bogus'; directives: .config .chips .predicted_cycles .work .equ .link .map .tensor .data .fill .chip "
       ".queue"},
      {".queue SXM_E.0\n  shift.i8 E0, 40000 -> E1\n", "t.s:2: simm = 40000 is out of range -32768..32767"},
      {".chips 1\n.work 3 a=b\n", "t.s:2: work unit 'a=b' must be printable ASCII without spaces or ; , = [ ]"},
      {".queue VXM.0\n  +1\n", "t.s:2: expected an instruction mnemonic, got '+1'"},
      {".queue MXM_W.0\n  lw.i32 p0, E0, r1\n", "t.s:2: lw: dtype must be i8 or f16, got i32"},
      {".queue MXM_W.0\n  acc.i32 p0, r1 -> E2\n", "t.s:2: acc: stream E2 for 'dst' must start a 4-stream group (index a multiple of 4)"},
      {".queue MEM_E0\n  read 8190, E0\n  repeat 4, 1\n",
       "t.s:3: chip 0, queue MEM_E0.0, instruction 1 (repeat 4, 1): repeating read 8190, E0 steps addr up to 8194; MEM slices have "
       "addresses 0..8191"},
  };
  for (const auto& [src, want] : cases) {
    INFO(src);
    CHECK(assemble_error(src, *cfg) == want);
  }
}

TEST_CASE("asm: lpusim asm and disasm on the command line") {
  const std::string exe = lpusim_exe();
  REQUIRE(std::filesystem::exists(exe));
  const std::string dir = std::string(LPU_BINARY_DIR) + "/test_asm_cli";
  std::filesystem::create_directories(dir);
  auto run = [](const std::string& cmd, std::string& out) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    out.clear();
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  const std::string bad = dir + "/bad.s";
  {
    std::ofstream f(bad);
    f << ".chips 1\n.queue VXM.0\n    nop 2\n    frobnicate E0\n";
  }
  std::string out;
  CHECK(run("'" + exe + "' asm '" + bad + "' -o '" + dir + "/bad.lpu'", out) == 2);
  CHECK(out == "lpusim: error: " + bad + ":4: unknown mnemonic 'frobnicate' (lpusim isa lists the instruction set)\n");
  CHECK_FALSE(std::filesystem::exists(dir + "/bad.lpu"));

  const std::string src = std::string(LPU_SOURCE_DIR) + "/tests/data/asm/add_vectors.s";
  const std::string lpu = dir + "/add.lpu";
  CHECK(run("'" + exe + "' asm '" + src + "' -o '" + lpu + "'", out) == 0);
  const auto cfg = default_chip_config();
  const Program p = assemble(read_text(src), src, *cfg);
  CHECK(read_program_file(lpu).predicted_cycles == 38);
  CHECK(run("'" + exe + "' disasm '" + lpu + "'", out) == 0);
  CHECK(out == disassemble(p, *cfg));
  DisasmOptions plain;
  plain.cycle_comments = false;
  CHECK(run("'" + exe + "' disasm --no-cycles '" + lpu + "'", out) == 0);
  CHECK(out == disassemble(p, *cfg, plain));
  CHECK(run("'" + exe + "' disasm '" + src + "'", out) == 2);
  CHECK(out.find("lpusim: error: " + src + ": wrong magic") == 0);
}
