// Tests of the binary .lpu format and validate_program (isa/program_io.h): byte-exact round trip,
// every kind of damage (truncation at every offset, flipped bytes, wrong magic/version, empty file,
// huge counts behind a valid checksum, undecodable words) refused with InputError, file errors, and
// validate_program's pinned messages.
#include <catch2/catch.hpp>

#include "tests/support/files.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "isa/asm.h"
#include "isa/chip_config.h"
#include "isa/crc32.h"
#include "isa/program_io.h"

using namespace lpu;

namespace {

Program sample(const std::string& name) {
  const std::string path = std::string(LPU_SOURCE_DIR) + "/tests/data/asm/" + name;
  return assemble(read_text(path), path, *default_chip_config());
}

std::string load_error(const std::vector<uint8_t>& bytes) {
  try {
    deserialize_program(bytes, "p.lpu");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

void put_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}
// Recomputes the trailing CRC so that a deliberately damaged payload reaches the field checks.
void reseal(std::vector<uint8_t>& b) { put_u32(b, b.size() - 4, crc32(b.data(), b.size() - 4)); }

std::string validate_error(const Program& p, const ChipConfig& cfg) {
  try {
    validate_program(p, cfg, "v.lpu");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("prog: crc32 gives the standard check value") {
  const char* s = "123456789";
  CHECK(crc32(reinterpret_cast<const uint8_t*>(s), 9) == 0xCBF43926u);
  CHECK(crc32(reinterpret_cast<const uint8_t*>(s) + 4, 5, crc32(reinterpret_cast<const uint8_t*>(s), 4)) == 0xCBF43926u);
  CHECK(crc32(nullptr, 0) == 0u);
}

TEST_CASE("prog: binary layout of a small program is as documented") {
  const Program p = sample("add_vectors.s");
  const std::vector<uint8_t> b = serialize_program(p);
  REQUIRE(b.size() > 20);
  CHECK(std::string(b.begin(), b.begin() + 4) == "LPUP");
  CHECK(b[4] == kProgramVersion);
  uint64_t payload = 0;
  for (int i = 0; i < 8; ++i) payload |= static_cast<uint64_t>(b[8 + static_cast<size_t>(i)]) << (8 * i);
  CHECK(payload + 20 == b.size());
  // payload starts with the config name as u32 length + bytes, then num_chips
  CHECK(b[16] == 6);
  CHECK(std::string(b.begin() + 20, b.begin() + 26) == "tsp-v1");
  CHECK(b[26] == 1);
  uint32_t crc = 0;
  for (int i = 0; i < 4; ++i) crc |= static_cast<uint32_t>(b[b.size() - 4 + static_cast<size_t>(i)]) << (8 * i);
  CHECK(crc == crc32(b.data(), b.size() - 4));
  // deterministic: same program, same bytes
  CHECK(serialize_program(sample("add_vectors.s")) == b);
}

TEST_CASE("prog: binary round trip is byte-exact for every sample") {
  for (const char* name : {"add_vectors.s", "matvec_i8.s", "sxm_sync.s", "two_chips.s"}) {
    INFO(name);
    const std::vector<uint8_t> b = serialize_program(sample(name));
    CHECK(serialize_program(deserialize_program(b, name)) == b);
  }
}

TEST_CASE("prog: truncation at every byte offset is refused") {
  const std::vector<uint8_t> b = serialize_program(sample("two_chips.s"));
  for (size_t n = 0; n < b.size(); ++n) {
    INFO("truncated to " << n << " of " << b.size() << " bytes");
    const std::vector<uint8_t> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string err = load_error(cut);
    CHECK(err.rfind("p.lpu: ", 0) == 0);
    CHECK(err != "(no error)");
  }
  CHECK(load_error({}) == "p.lpu: empty file: expected an lpusim program starting with magic \"LPUP\"");
  CHECK(load_error(std::vector<uint8_t>(b.begin(), b.begin() + 10)) ==
        "p.lpu: truncated: file is 10 bytes, shorter than the 20-byte header and checksum");
  CHECK(load_error(std::vector<uint8_t>(b.begin(), b.end() - 1)) ==
        fmt::format("p.lpu: truncated: header declares a {}-byte payload but the file has room for only {} ({} bytes in all)",
                    b.size() - 20, b.size() - 21, b.size() - 1));
}

TEST_CASE("prog: every flipped byte is refused, payload damage by the checksum") {
  const std::vector<uint8_t> b = serialize_program(sample("two_chips.s"));
  for (size_t at = 0; at < b.size(); ++at) {
    std::vector<uint8_t> d = b;
    d[at] ^= 0x10;
    INFO("byte " << at);
    const std::string err = load_error(d);
    CHECK(err.rfind("p.lpu: ", 0) == 0);
    if (at >= 16) CHECK(err.find("bad checksum") != std::string::npos);
  }
  std::vector<uint8_t> d = b;
  d[30] ^= 0xFF;
  CHECK(load_error(d) == fmt::format("p.lpu: bad checksum: stored CRC-32 0x{:08x}, computed 0x{:08x} (file is damaged)",
                                     crc32(b.data(), b.size() - 4), crc32(d.data(), d.size() - 4)));
}

TEST_CASE("prog: wrong magic, wrong version and trailing bytes are refused") {
  std::vector<uint8_t> b = serialize_program(sample("add_vectors.s"));
  std::vector<uint8_t> m = b;
  m[0] = 'X';
  CHECK(load_error(m) == "p.lpu: wrong magic: first bytes are 0x58505550, an lpusim program starts with \"LPUP\" (0x4c505550)");
  CHECK(load_error({'L', 'P'}) == "p.lpu: truncated: file is 2 bytes, shorter than the 20-byte header and checksum");
  CHECK(load_error({'{', '\n'}) == "p.lpu: wrong magic: first bytes are 0x7b0a, an lpusim program starts with \"LPUP\" (0x4c505550)");
  std::vector<uint8_t> v = b;
  put_u32(v, 4, 2);
  reseal(v);
  CHECK(load_error(v) == "p.lpu: wrong version: file has format version 2, this lpusim reads version 1");
  std::vector<uint8_t> t = b;
  t.insert(t.end() - 4, uint8_t{0});
  reseal(t);
  CHECK(load_error(t) == "p.lpu: trailing bytes: header declares a " + std::to_string(b.size() - 20) +
                             "-byte payload, file is 1 bytes longer than that");
  std::vector<uint8_t> e = b;  // an extra byte inside a payload declared one byte longer
  e.insert(e.end() - 4, uint8_t{0});
  put_u64(e, 8, b.size() - 19);
  reseal(e);
  CHECK(load_error(e) == fmt::format("p.lpu: payload has 1 unread bytes at offset {} after the last field", b.size() - 4));
}

TEST_CASE("prog: huge counts behind a valid checksum are refused before allocating") {
  Program p;
  p.config_name = "c";
  p.chips.resize(1);
  QueueCode q;
  q.slice = 2;
  q.code.push_back(make_instr(Opcode::Sync));
  p.chips[0].queues.push_back(q);
  const std::vector<uint8_t> b = serialize_program(p);
  // payload: name len @16, 'c' @20, num_chips @21, chip count @25, queue count @29,
  // slice @33, queue @35, instruction count @36, word @40, data blob count @48, ...
  REQUIRE(b.size() == 88);
  auto patched = [&](size_t at, uint32_t v) {
    std::vector<uint8_t> d = b;
    put_u32(d, at, v);
    reseal(d);
    return load_error(d);
  };
  CHECK(patched(16, 0xFFFFFFFFu) ==
        "p.lpu: bad count: config name length = 4294967295 at offset 16 needs at least 4294967295 bytes but only " +
            std::to_string(b.size() - 24) + " remain in the payload");
  CHECK(patched(25, 0xFFFFFFFFu).find("p.lpu: bad count: chip count = 4294967295 at offset 25 needs at least 17179869180 bytes") == 0);
  CHECK(patched(29, 1000000u).find("p.lpu: bad count: chip 0 queue count = 1000000 at offset 29") == 0);
  CHECK(patched(36, 0x20000000u).find("p.lpu: bad count: chip 0 queue entry 0 instruction count = 536870912 at offset 36") == 0);
  CHECK(patched(48, 7u).find("p.lpu: bad count: data blob count = 7 at offset 48") == 0);
  // a count that fits the remaining bytes but misreads what follows: still an InputError
  CHECK(patched(25, 2u).rfind("p.lpu: ", 0) == 0);
  std::vector<uint8_t> d = b;
  put_u64(d, 40, 0xFF00000000000000ull);
  reseal(d);
  CHECK(load_error(d) ==
        "p.lpu: undecodable instruction: chip 0 queue entry 0 instruction 0 at offset 40: unknown opcode 255 in word 0xff00000000000000");
  put_u64(d, 40, (static_cast<uint64_t>(Opcode::Sync) << 56) | 1);
  reseal(d);
  CHECK(load_error(d) ==
        "p.lpu: undecodable instruction: chip 0 queue entry 0 instruction 0 at offset 40: sync: reserved bits set in word "
        "0x0200000000000001 (mask 0x0000000000000001)");
}

TEST_CASE("prog: serializing an invalid instruction is refused with its location") {
  Program p;
  p.chips.resize(1);
  QueueCode q;
  q.slice = 3;
  q.code.push_back(make_instr(Opcode::Sync));
  q.code.push_back(make_instr(Opcode::Nop));  // nop 0 is not an instruction
  p.chips[0].queues.push_back(q);
  try {
    serialize_program(p);
    FAIL("no error");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) == "serialize_program: chip 0, queue entry 0 (slice 3 queue 0), instruction 1: encode: nop: count must be >= 1");
  }
}

TEST_CASE("prog: tensor role and dtype codes are checked on load") {
  Program p;
  p.config_name = "c";
  p.chips.resize(1);
  TensorDesc t;
  t.name = "x";
  t.shape = {3};
  t.slices = {5};
  p.tensors.push_back(t);
  const std::vector<uint8_t> b = serialize_program(p);
  // payload: name 16..20, num_chips 21, chip count 25, queue count 29, data count 33, tensor count 37,
  // tensor name 41..45, role 46, dtype 47
  std::vector<uint8_t> r = b;
  r[46] = 2;
  reseal(r);
  CHECK(load_error(r) == "p.lpu: tensor 0 role at offset 46: value 2 is not 0 (input) or 1 (output)");
  std::vector<uint8_t> d = b;
  d[47] = 9;
  reseal(d);
  CHECK(load_error(d) == "p.lpu: tensor 0 dtype at offset 47: code 9 is not one of 0..4 (i8,i16,i32,f16,f32)");
}

TEST_CASE("prog: program files are written and read back, bad paths are named") {
  const Program p = sample("sxm_sync.s");
  const std::string dir = std::string(LPU_BINARY_DIR) + "/test_program_io";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/sxm_sync.lpu";
  write_program_file(p, path);
  CHECK(serialize_program(read_program_file(path)) == serialize_program(p));
  const std::string missing = dir + "/no/such/dir/x.lpu";
  try {
    write_program_file(p, missing);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == missing + ": cannot open for writing: No such file or directory");
  }
  try {
    read_program_file(dir + "/missing.lpu");
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == dir + "/missing.lpu: cannot open for reading: No such file or directory");
  }
  try {
    read_program_file(dir);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == dir + ": is a directory, not a program file");
  }
}

TEST_CASE("prog: damaged files in tests/data/bad_programs fail with pinned messages") {
  const std::map<std::string, std::string> want = {
      {"bad_opcode.lpu",
       "undecodable instruction: chip 0 queue entry 0 instruction 0 at offset 45: unknown opcode 238 in word 0xee00000000000000"},
      {"empty.lpu", "empty file: expected an lpusim program starting with magic \"LPUP\""},
      {"flipped_byte.lpu", "bad checksum: stored CRC-32 0xc0977d65, computed 0xc99c13fd (file is damaged)"},
      {"huge_chip_count.lpu",
       "bad count: chip count = 4294967295 at offset 30 needs at least 17179869180 bytes but only 252 remain in the payload"},
      {"text_not_binary.lpu", "wrong magic: first bytes are 0x2e636869, an lpusim program starts with \"LPUP\" (0x4c505550)"},
      {"truncated_half.lpu", "truncated: header declares a 270-byte payload but the file has room for only 125 (145 bytes in all)"},
      {"version_99.lpu", "wrong version: file has format version 99, this lpusim reads version 1"},
  };
  size_t seen = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(LPU_SOURCE_DIR) + "/tests/data/bad_programs")) {
    if (e.path().extension() != ".lpu") continue;
    const std::string path = e.path().string();
    INFO(path);
    ++seen;
    const auto it = want.find(e.path().filename().string());
    REQUIRE(it != want.end());  // every damaged file has its message pinned here
    try {
      read_program_file(path);
      FAIL("no error");
    } catch (const InputError& err) {
      CHECK(std::string(err.what()) == path + ": " + it->second);
    }
  }
  CHECK(seen == want.size());
}

TEST_CASE("prog: validate_program names chip, queue, instruction and the rule") {
  const auto base = default_chip_config();
  const ChipConfig& cfg = *base;
  const Program good = sample("sxm_sync.s");
  REQUIRE(validate_error(good, cfg) == "(no error)");
  const int vxm = cfg.slice_index("VXM");
  const int mem = cfg.slice_index("MEM_E0");
  auto queue_of = [&](Program& p, int slice, int q) -> QueueCode& {
    for (QueueCode& qc : p.chips[0].queues)
      if (qc.slice == slice && qc.queue == q) return qc;
    FAIL("queue not found");
    return p.chips[0].queues[0];
  };
  const std::vector<std::pair<std::function<void(Program&)>, std::string>> cases = {
      {[](Program& p) { p.num_chips = 2; }, "v.lpu: num_chips is 2 but the program has code for 1 chips (they must be equal)"},
      {[](Program& p) { p.chips[0].queues[0].slice = 999; },
       "v.lpu: chip 0, queue entry 0: slice index 999 is out of range; config tsp-v1 has slices 0..93"},
      {[&](Program& p) { queue_of(p, vxm, 1).queue = 20; }, "v.lpu: chip 0, queue VXM.20: slice VXM has queues 0..15"},
      {[&](Program& p) { std::swap(p.chips[0].queues[0], p.chips[0].queues[1]); },
       "v.lpu: chip 0: queue VXM.0 follows queue VXM.1; queues must be sorted by (slice, queue) and appear once"},
      {[&](Program& p) { queue_of(p, mem, 0).code[0].set(Field::Addr, 8192); },
       "v.lpu: chip 0, queue MEM_E0.0, instruction 0 (read 8192, W0): addr 8192 is out of range; MEM slices have addresses 0..8191"},
      {[&](Program& p) { queue_of(p, vxm, 1).code.push_back(queue_of(p, mem, 0).code[0]); },
       "v.lpu: chip 0, queue VXM.1, instruction 2 (read 0, W0): read is a MEM instruction but slice VXM is a VXM slice"},
      {[&](Program& p) {
         Instr r = make_instr(Opcode::Repeat);
         r.set(Field::Count, 1);
         r.set(Field::Stride, 1);
         queue_of(p, vxm, 1).code.push_back(r);
         queue_of(p, vxm, 1).code.push_back(r);
       },
       "v.lpu: chip 0, queue VXM.1, instruction 3 (repeat 1, 1): repeat must follow a non-ICU instruction, but it follows repeat"},
      {[&](Program& p) {
         Instr r = make_instr(Opcode::Repeat);
         r.set(Field::Count, 1);
         r.set(Field::Stride, 1);
         queue_of(p, vxm, 1).code.insert(queue_of(p, vxm, 1).code.begin() + 1, r);
       },
       "v.lpu: chip 0, queue VXM.1, instruction 1 (repeat 1, 1): repeat must follow a non-ICU instruction, but it follows nop"},
      {[](Program& p) { p.maps[0][7] = 320; }, "v.lpu: map 0 entry 7 is 320; allowed: a source lane 0..319 or 65535 (zero)"},
      {[](Program& p) { p.maps[0].pop_back(); }, "v.lpu: map 0 has 319 entries; a map needs exactly 320 (one per lane)"},
      {[](Program& p) { p.data[0].slice = 0; }, "v.lpu: data blob 0: slice MXM_W is not a MEM slice (data can only be placed in SRAM)"},
      {[](Program& p) { p.data[0].bytes.pop_back(); }, "v.lpu: data blob 0: 319 bytes is not a whole number (>= 1) of 320-byte vectors"},
      {[](Program& p) { p.data[0].addr = 8192; }, "v.lpu: data blob 0: addresses 8192..8192 exceed the slice's 0..8191"},
      {[](Program& p) { p.data[1].addr = 8191; }, "v.lpu: data blob 1: addresses 8191..8192 exceed the slice's 0..8191"},
      {[](Program& p) { p.data[1].addr = 0; }, "v.lpu: data blob 1 overlaps data blob 0 in chip 0 slice MEM_E1 at address 1"},
      {[](Program& p) { p.data[0].chip = 1; }, "v.lpu: data blob 0: chip 1 is out of range; the program has chips 0..0"},
      {[](Program& p) { p.tensors[1].slices[3] = p.tensors[1].slices[0]; }, "v.lpu: tensor 1 'y': slice MEM_E43 is listed twice"},
      {[](Program& p) { p.tensors[1].name = "x"; }, "v.lpu: tensor 1 'x': name is used by an earlier tensor"},
      {[](Program& p) { p.tensors[0].name = "a b"; },
       "v.lpu: tensor 0 'a b': name must be non-empty printable ASCII without spaces or ; , = [ ]"},
      {[](Program& p) { p.tensors[0].shape = {0, 320}; }, "v.lpu: tensor 0 'x': dimension 0 is 0; allowed 1..2^40"},
      {[](Program& p) { p.tensors[0].addr = 8000; p.tensors[0].shape = {200, 321}; },
       "v.lpu: tensor 0 'x': 400 vectors at addr 8000 exceed the slice's addresses 0..8191"},
      {[](Program& p) { p.links.push_back({0, 16, 0, 1}); }, "v.lpu: link 0: link 16 is out of range; chips have links 0..15"},
      {[](Program& p) { p.links.push_back({0, 1, 0, 1}); }, "v.lpu: link 0: both ends are chip 0 link 1"},
      {[](Program& p) { p.work_unit = "two words"; }, "v.lpu: work unit 'two words' must be printable ASCII without spaces or ; , = [ ]"},
  };
  for (const auto& [mutate, want] : cases) {
    Program p = good;
    mutate(p);
    CHECK(validate_error(p, cfg) == want);
  }
}

TEST_CASE("prog: validate_program checks field domains against the chip config") {
  ChipConfig small = *default_chip_config();
  small.streams_per_direction = 16;
  small.mxm_planes = 1;
  small.mxm_acc_rows = 100;
  small.c2c_links = 4;
  const std::string src =
      ".chips 2\n.link 0:3 1:3\n.chip 0\n.queue MXM_W.0\n lw.f16 p0, E0, r319\n abc.i8 p0, E0, r99+\n"
      ".queue SXM_W.0\n transpose.i8 E0 -> W0\n.queue C2C.0\n send l3, E15\n";
  const Program ok = assemble(src, "s.s", small);
  CHECK(validate_error(ok, small) == "(no error)");
  auto err_with = [&](const std::function<void(Program&)>& f) {
    Program p = ok;
    f(p);
    return validate_error(p, small);
  };
  CHECK(err_with([](Program& p) { p.chips[0].queues[1].code[0].set(Field::Dst, StreamRef{Dir::West, 16}.encode()); }) ==
        "v.lpu: chip 0, queue SXM_W.0, instruction 0 (transpose.i8 E0 -> W16): dst W16 with a 16-stream group needs streams up to 31, "
        "but the chip has 16 per direction");
  CHECK(err_with([](Program& p) { p.chips[0].queues[0].code[0].set(Field::Plane, 1); }) ==
        "v.lpu: chip 0, queue MXM_W.0, instruction 0 (lw.f16 p1, E0, r319): plane 1 is out of range; MXM slices have planes 0..0");
  CHECK(err_with([](Program& p) { p.chips[0].queues[0].code[0].set(Field::Row, 320); }) ==
        "v.lpu: chip 0, queue MXM_W.0, instruction 0 (lw.f16 p0, E0, r320): row 320 is out of range; weight rows are 0..319");
  CHECK(err_with([](Program& p) { p.chips[0].queues[0].code[1].set(Field::Row, 100); }) ==
        "v.lpu: chip 0, queue MXM_W.0, instruction 1 (abc.i8 p0, E0, r100+): row 100 is out of range; accumulator rows are 0..99");
  CHECK(err_with([](Program& p) { p.chips[0].queues[2].code[0].set(Field::Link, 4); }) ==
        "v.lpu: chip 0, queue C2C.0, instruction 0 (send l4, E15): link 4 is out of range; the chip has links 0..3");
  CHECK(err_with([](Program& p) { p.links[0].chip_b = 2; }) == "v.lpu: link 0: chip 2 is out of range; the program has chips 0..1");
  CHECK(err_with([](Program& p) {
          Instr r = make_instr(Opcode::Repeat);
          r.set(Field::Count, 1);
          r.set(Field::Stride, 1);
          p.chips[0].queues[0].code.insert(p.chips[0].queues[0].code.begin() + 1, r);
        }) == "v.lpu: chip 0, queue MXM_W.0, instruction 1 (repeat 1, 1): repeating lw.f16 p0, E0, r319 steps row up to 320; weight "
              "rows are 0..319");
  CHECK(err_with([](Program& p) { p.chips.pop_back(); }) ==
        "v.lpu: num_chips is 2 but the program has code for 1 chips (they must be equal)");
}
