// Tests of the ISA tables and the 64-bit encoding: formats are consistent (no overlapping fields,
// opcode byte untouched), syntax fields exist in their format, random valid instructions of every
// opcode round-trip, and decode rejects unknown opcodes, reserved bits and bad dtype codes.
#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "isa/isa.h"

using namespace lpu;

namespace {

constexpr uint64_t kOpcodeMask = 0xFFull << 56;

uint64_t field_mask(const FieldLayout& l) { return ((l.width >= 64) ? ~0ull : ((1ull << l.width) - 1)) << l.lo; }

bool uses(const OpInfo& oi, Field f) { return oi.used_fields & (1u << static_cast<int>(f)); }

// Bits of the word that carry a field the opcode uses (plus the opcode byte).
uint64_t used_mask(const OpInfo& oi) {
  uint64_t m = kOpcodeMask;
  const FormatInfo& fi = format_info(oi.format);
  for (int k = 0; k < fi.num_fields; ++k)
    if (uses(oi, fi.fields[k].field)) m |= field_mask(fi.fields[k]);
  return m;
}

// Random field values for `op`, biased towards edge values and aligned stream groups so that a
// good share passes validate_fields; the caller keeps only the valid ones.
Instr random_instr(Opcode op, std::mt19937_64& rng) {
  const OpInfo& oi = op_info(op);
  const FormatInfo& fi = format_info(oi.format);
  Instr in = make_instr(op);
  for (int k = 0; k < fi.num_fields; ++k) {
    const FieldLayout& l = fi.fields[k];
    if (!uses(oi, l.field)) continue;
    const uint64_t max = (l.width >= 32) ? 0xFFFFFFFFull : ((1ull << l.width) - 1);
    uint64_t v = rng();
    switch (rng() % 8) {
      case 0: v = max; break;
      case 1: v = 1; break;
      case 2: v = 0; break;
      default: v &= max; break;
    }
    if (l.field == Field::DType || l.field == Field::DType2) v = rng() % kNumDTypes;
    if (l.field == Field::Dst || l.field == Field::SrcA || l.field == Field::SrcB || l.field == Field::SrcC) {
      static constexpr uint32_t kAlign[] = {0, 1, 3, 15};
      v = (rng() % 2) << 5 | ((rng() % 32) & ~kAlign[rng() % 4]);
    }
    in.set(l.field, static_cast<uint32_t>(v));
  }
  return in;
}

// `count` distinct-seeded valid random instructions of `op` (fails if the generator cannot find them).
std::vector<Instr> valid_instrs(Opcode op, int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Instr> out;
  for (int tries = 0; tries < count * 200 && static_cast<int>(out.size()) < count; ++tries) {
    Instr in = random_instr(op, rng);
    if (validate_fields(in).empty()) out.push_back(in);
  }
  return out;
}

}  // namespace

TEST_CASE("encoding: format fields do not overlap and leave the opcode byte alone") {
  for (int f = 0; f < kNumFormats; ++f) {
    const FormatInfo& fi = format_info(static_cast<Format>(f));
    INFO("format " << fi.name);
    CHECK(fi.format == static_cast<Format>(f));
    uint64_t seen = kOpcodeMask;
    std::set<Field> fields;
    for (int k = 0; k < fi.num_fields; ++k) {
      const FieldLayout& l = fi.fields[k];
      INFO("field " << field_name(l.field));
      CHECK(l.width >= 1);
      CHECK(l.lo + l.width <= 56);       // never reaches bits [63:56]
      CHECK((seen & field_mask(l)) == 0);  // no overlap with the opcode or an earlier field
      CHECK(fields.insert(l.field).second);
      CHECK(fi.find(l.field).has_value());
      seen |= field_mask(l);
    }
  }
  CHECK(kNumOpcodes <= 256);
}

TEST_CASE("encoding: every opcode's syntax fields exist in its format and are wide enough") {
  for (int i = 0; i < kNumOpcodes; ++i) {
    const OpInfo& oi = op_info(static_cast<Opcode>(i));
    INFO("opcode " << oi.mnemonic);
    CHECK(oi.op == static_cast<Opcode>(i));
    const FormatInfo& fi = format_info(oi.format);
    for (int k = 0; k < kNumFields; ++k) {
      const Field f = static_cast<Field>(k);
      if (!uses(oi, f)) continue;
      INFO("field " << field_name(f));
      REQUIRE(fi.find(f).has_value());
      if (f == Field::DType || f == Field::DType2) CHECK(fi.find(f)->width >= 3);  // 5 dtype codes
      if (f == Field::Dst || f == Field::SrcA || f == Field::SrcB || f == Field::SrcC) CHECK(fi.find(f)->width == 6);
    }
    // The repeat step field is an operand of the opcode.
    if (oi.step != Field::None) CHECK(uses(oi, oi.step));
    // Every "{name}" in the syntax is a known field.
    for (size_t p = oi.syntax.find('{'); p != std::string_view::npos; p = oi.syntax.find('{', p + 1)) {
      const size_t q = oi.syntax.find('}', p);
      REQUIRE(q != std::string_view::npos);
      const std::string_view name = oi.syntax.substr(p + 1, q - p - 1);
      bool known = false;
      for (int k = 0; k < kNumFields; ++k) known = known || field_name(static_cast<Field>(k)) == name;
      CHECK(known);
    }
  }
}

TEST_CASE("encoding: random valid instructions of every opcode round-trip") {
  int total = 0;
  for (int i = 0; i < kNumOpcodes; ++i) {
    const Opcode op = static_cast<Opcode>(i);
    const OpInfo& oi = op_info(op);
    INFO("opcode " << oi.mnemonic);
    const std::vector<Instr> instrs = valid_instrs(op, 300, 0x5eed0000u + i);
    CHECK(instrs.size() == 300u);  // (opcodes without operands repeat their one valid instruction)
    const FormatInfo& fi = format_info(oi.format);
    for (const Instr& in : instrs) {
      const uint64_t w = encode(in);
      CHECK((w >> 56) == static_cast<uint64_t>(i));
      CHECK((w & ~used_mask(oi)) == 0);
      // each field sits at its documented bits
      for (int k = 0; k < fi.num_fields; ++k) {
        const FieldLayout& l = fi.fields[k];
        const uint64_t v = (w & field_mask(l)) >> l.lo;
        CHECK(v == (uses(oi, l.field) ? in.get(l.field) : 0u));
      }
      const DecodeResult d = decode(w);
      REQUIRE(d.ok);
      CHECK(d.error.empty());
      CHECK(d.instr == in);
      CHECK(encode(d.instr) == w);
      ++total;
    }
  }
  CHECK(total == 300 * kNumOpcodes);
}

TEST_CASE("encoding: decode rejects unknown opcodes") {
  for (uint64_t opc = kNumOpcodes; opc < 256; ++opc) {
    const DecodeResult d = decode(opc << 56 | 0x1234);
    CHECK_FALSE(d.ok);
    CHECK_THAT(d.error, Catch::Matchers::Contains("unknown opcode " + std::to_string(opc)));
  }
}

TEST_CASE("encoding: decode rejects reserved bits for every opcode") {
  int rejected = 0;
  for (int i = 0; i < kNumOpcodes; ++i) {
    const Opcode op = static_cast<Opcode>(i);
    const OpInfo& oi = op_info(op);
    INFO("opcode " << oi.mnemonic);
    const std::vector<Instr> base = valid_instrs(op, 1, 77 + i);
    REQUIRE(base.size() == 1);
    const uint64_t w = encode(base[0]);
    const uint64_t reserved = ~used_mask(oi);
    for (int b = 0; b < 56; ++b) {
      if (!(reserved >> b & 1)) continue;
      const DecodeResult d = decode(w | (1ull << b));
      CHECK_FALSE(d.ok);
      CHECK_THAT(d.error, Catch::Matchers::Contains("reserved bits"));
      ++rejected;
    }
  }
  CHECK(rejected > 0);
}

TEST_CASE("encoding: decode rejects bad dtype codes and invalid field domains") {
  int checked = 0;
  for (int i = 0; i < kNumOpcodes; ++i) {
    const Opcode op = static_cast<Opcode>(i);
    const OpInfo& oi = op_info(op);
    INFO("opcode " << oi.mnemonic);
    for (Field f : {Field::DType, Field::DType2}) {
      if (!uses(oi, f)) continue;
      const std::vector<Instr> base = valid_instrs(op, 1, 99 + i);
      REQUIRE(base.size() == 1);
      const FieldLayout l = *format_info(oi.format).find(f);
      for (uint64_t code = kNumDTypes; code < (1ull << l.width); ++code) {
        const uint64_t w = (encode(base[0]) & ~field_mask(l)) | code << l.lo;
        const DecodeResult d = decode(w);
        CHECK_FALSE(d.ok);
        CHECK_THAT(d.error, Catch::Matchers::Contains(std::string(field_name(f)) + " code " + std::to_string(code)));
        ++checked;
      }
    }
  }
  CHECK(checked > 0);
  // nop 0 and repeat with a zero count are not instructions
  CHECK_FALSE(decode(static_cast<uint64_t>(Opcode::Nop) << 56).ok);
  CHECK_FALSE(decode(static_cast<uint64_t>(Opcode::Repeat) << 56 | 1).ok);
  CHECK_FALSE(decode(static_cast<uint64_t>(Opcode::Repeat) << 56 | 1ull << 24).ok);
  // encode refuses invalid instructions instead of producing a word
  Instr bad = make_instr(Opcode::Nop);
  CHECK_THROWS_AS(encode(bad), std::invalid_argument);
  Instr unused = make_instr(Opcode::Sync);
  unused.set(Field::Addr, 5);
  CHECK_THROWS_AS(encode(unused), std::invalid_argument);
}

TEST_CASE("encoding: mnemonics are unique and opcode_from_mnemonic inverts op_info") {
  std::set<std::string_view> seen;
  for (int i = 0; i < kNumOpcodes; ++i) {
    const OpInfo& oi = op_info(static_cast<Opcode>(i));
    CHECK(seen.insert(oi.mnemonic).second);
    REQUIRE(opcode_from_mnemonic(oi.mnemonic).has_value());
    CHECK(*opcode_from_mnemonic(oi.mnemonic) == oi.op);
    CHECK(!oi.doc.empty());
  }
  CHECK_FALSE(opcode_from_mnemonic("madd").has_value());
  CHECK_FALSE(opcode_from_mnemonic("").has_value());
  CHECK_FALSE(opcode_from_mnemonic("ADD").has_value());
  // the other tables are keyed uniquely too
  for (int c = 0; c < kNumSchedClasses; ++c) {
    const SchedInfo& si = sched_info(static_cast<SchedClass>(c));
    CHECK(si.cls == static_cast<SchedClass>(c));
    REQUIRE(sched_from_key(si.key).has_value());
    CHECK(*sched_from_key(si.key) == si.cls);
  }
  for (int e = 0; e < kNumEnergyEvents; ++e) {
    const EnergyInfo& ei = energy_info(static_cast<EnergyEvent>(e));
    CHECK(ei.ev == static_cast<EnergyEvent>(e));
    REQUIRE(energy_from_key(ei.key).has_value());
    CHECK(*energy_from_key(ei.key) == ei.ev);
  }
  CHECK_FALSE(sched_from_key("vxm_fma").has_value());
  CHECK_FALSE(energy_from_key("static_power_w").has_value());
  for (int d = 0; d < kNumDTypes; ++d) CHECK(dtype_from_name(dtype_name(static_cast<DType>(d))) == static_cast<DType>(d));
}
