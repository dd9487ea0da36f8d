// Expands the .def tables into lookup arrays; implements encode/decode/validate_fields.
#include "isa/isa.h"

#include <cstring>
#include <fmt/format.h>

namespace lpu {

namespace {

constexpr std::string_view kFieldNames[kNumFields] = {
    "dtype", "dtype2", "dst", "src_a", "src_b", "src_c", "addr", "imm", "simm", "fimm",
    "count", "stride", "plane", "acc", "row", "link"};

// Fields named in a syntax string: every "{name}" placeholder.
constexpr uint32_t fields_in_syntax(std::string_view syn) {
  uint32_t mask = 0;
  for (size_t i = 0; i < syn.size(); ++i) {
    if (syn[i] != '{') continue;
    size_t j = syn.find('}', i);
    std::string_view name = syn.substr(i + 1, j - i - 1);
    for (int k = 0; k < kNumFields; ++k)
      if (kFieldNames[k] == name) mask |= 1u << k;
    i = j;
  }
  return mask;
}

const OpInfo kOps[] = {
#define LPU_OP(Id, mn, unit, fmt, sched, step, syn, doc)                                          \
  {Opcode::Id, mn, Unit::unit, Format::fmt, SchedClass::sched, Field::step, syn, doc, fields_in_syntax(syn)},
#include "isa/opcodes.def"
#undef LPU_OP
};

FormatInfo make_formats_entry(Format f, std::string_view name) {
  FormatInfo fi{};
  fi.format = f;
  fi.name = name;
  fi.num_fields = 0;
  return fi;
}

struct FormatTable {
  FormatInfo formats[kNumFormats];
  FormatTable() {
#define LPU_FORMAT(F) formats[static_cast<int>(Format::F)] = make_formats_entry(Format::F, #F);
#define LPU_FIELD(F, Fld, lo, w)                                                                  \
  {                                                                                               \
    FormatInfo& fi = formats[static_cast<int>(Format::F)];                                        \
    fi.fields[fi.num_fields++] = FieldLayout{Field::Fld, lo, w};                                  \
  }
#include "isa/formats.def"
#undef LPU_FORMAT
#undef LPU_FIELD
  }
};
const FormatTable& format_table() {
  static const FormatTable t;
  return t;
}

const SchedInfo kSched[] = {
#define LPU_SCHED(Id, key, res, doc) {SchedClass::Id, key, Resource::res, doc},
#include "isa/sched_classes.def"
#undef LPU_SCHED
};

const EnergyInfo kEnergy[] = {
#define LPU_ENERGY(Id, key, unit, doc) {EnergyEvent::Id, key, unit, doc},
#include "isa/energy_events.def"
#undef LPU_ENERGY
};

constexpr uint32_t bit(Field f) { return 1u << static_cast<int>(f); }

}  // namespace

std::string_view unit_name(Unit u) {
  switch (u) {
    case Unit::ICU: return "ICU";
    case Unit::MEM: return "MEM";
    case Unit::VXM: return "VXM";
    case Unit::MXM: return "MXM";
    case Unit::SXM: return "SXM";
    case Unit::C2C: return "C2C";
  }
  throw std::logic_error("unit_name: bad unit");
}

int dtype_bytes(DType t) {
  switch (t) {
    case DType::I8: return 1;
    case DType::I16: return 2;
    case DType::I32: return 4;
    case DType::F16: return 2;
    case DType::F32: return 4;
  }
  throw std::logic_error("dtype_bytes: bad dtype");
}

bool dtype_is_float(DType t) { return t == DType::F16 || t == DType::F32; }

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::I8: return "i8";
    case DType::I16: return "i16";
    case DType::I32: return "i32";
    case DType::F16: return "f16";
    case DType::F32: return "f32";
  }
  throw std::logic_error("dtype_name: bad dtype");
}

std::optional<DType> dtype_from_name(std::string_view s) {
  for (int i = 0; i < kNumDTypes; ++i)
    if (dtype_name(static_cast<DType>(i)) == s) return static_cast<DType>(i);
  return std::nullopt;
}

std::string stream_name(StreamRef s) {
  return fmt::format("{}{}", s.dir == Dir::East ? 'E' : 'W', s.index);
}

std::optional<StreamRef> stream_from_name(std::string_view s) {
  if (s.size() < 2 || s.size() > 3 || (s[0] != 'E' && s[0] != 'W')) return std::nullopt;
  int v = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  if (s.size() == 3 && s[1] == '0') return std::nullopt;  // no leading zeros: one spelling each
  if (v > 31) return std::nullopt;
  return StreamRef{s[0] == 'E' ? Dir::East : Dir::West, static_cast<uint8_t>(v)};
}

std::string_view field_name(Field f) {
  if (f == Field::None) return "none";
  return kFieldNames[static_cast<int>(f)];
}

const OpInfo& op_info(Opcode op) {
  auto i = static_cast<size_t>(op);
  if (i >= static_cast<size_t>(kNumOpcodes)) throw std::logic_error("op_info: bad opcode");
  return kOps[i];
}

std::optional<Opcode> opcode_from_mnemonic(std::string_view mnemonic) {
  for (const OpInfo& o : kOps)
    if (o.mnemonic == mnemonic) return o.op;
  return std::nullopt;
}

std::optional<FieldLayout> FormatInfo::find(Field f) const {
  for (int i = 0; i < num_fields; ++i)
    if (fields[i].field == f) return fields[i];
  return std::nullopt;
}

const FormatInfo& format_info(Format f) { return format_table().formats[static_cast<int>(f)]; }

const SchedInfo& sched_info(SchedClass c) { return kSched[static_cast<int>(c)]; }

std::optional<SchedClass> sched_from_key(std::string_view key) {
  for (const SchedInfo& s : kSched)
    if (s.key == key) return s.cls;
  return std::nullopt;
}

const EnergyInfo& energy_info(EnergyEvent e) { return kEnergy[static_cast<int>(e)]; }

std::optional<EnergyEvent> energy_from_key(std::string_view key) {
  for (const EnergyInfo& e : kEnergy)
    if (e.key == key) return e.ev;
  return std::nullopt;
}

float Instr::fimm() const {
  uint32_t bits = get(Field::FImm);
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

Instr make_instr(Opcode op) {
  Instr i;
  i.op = op;
  return i;
}

Instr make_instr(Opcode op, DType dt) {
  Instr i = make_instr(op);
  i.set(Field::DType, static_cast<uint32_t>(dt));
  return i;
}

int stream_group_size(const Instr& in, Field f) {
  const OpInfo& oi = op_info(in.op);
  if ((in.op == Opcode::Gather || in.op == Opcode::Scatter) && f == Field::SrcA) return 2;
  if (in.op == Opcode::Cvt && f == Field::Dst) return dtype_bytes(in.dtype2());
  if (in.op == Opcode::Transpose) return 16;
  if (oi.unit == Unit::MEM || oi.unit == Unit::C2C) return 1;
  return (oi.used_fields & bit(Field::DType)) ? dtype_bytes(in.dtype()) : 1;
}

std::string validate_fields(const Instr& in) {
  if (static_cast<int>(in.op) >= kNumOpcodes) return fmt::format("unknown opcode {}", static_cast<int>(in.op));
  const OpInfo& oi = op_info(in.op);
  const FormatInfo& fi = format_info(oi.format);
  for (int k = 0; k < kNumFields; ++k) {
    const Field f = static_cast<Field>(k);
    const uint32_t v = in.f[k];
    const bool used = oi.used_fields & bit(f);
    if (!used) {
      if (v != 0) return fmt::format("{}: field '{}' is not used by this opcode but is {}", oi.mnemonic, field_name(f), v);
      continue;
    }
    auto lay = fi.find(f);
    if (!lay) return fmt::format("{}: format {} has no field '{}'", oi.mnemonic, fi.name, field_name(f));
    if (lay->width < 32 && (v >> lay->width) != 0)
      return fmt::format("{}: field '{}' = {} does not fit in {} bits", oi.mnemonic, field_name(f), v, lay->width);
  }
  const uint32_t u = oi.used_fields;
  if (u & bit(Field::DType)) {
    if (in.get(Field::DType) >= static_cast<uint32_t>(kNumDTypes))
      return fmt::format("{}: dtype code {} is not one of i8,i16,i32,f16,f32", oi.mnemonic, in.get(Field::DType));
  }
  if (u & bit(Field::DType2)) {
    if (in.get(Field::DType2) >= static_cast<uint32_t>(kNumDTypes))
      return fmt::format("{}: dtype2 code {} is not one of i8,i16,i32,f16,f32", oi.mnemonic, in.get(Field::DType2));
  }
  if (in.op == Opcode::Nop && in.get(Field::Imm) == 0) return "nop: count must be >= 1";
  if (in.op == Opcode::Repeat && (in.get(Field::Count) == 0 || in.get(Field::Stride) == 0))
    return "repeat: count and stride must be >= 1";
  // Stream-group alignment: a B-byte type uses streams base..base+B-1 with base % B == 0.
  for (Field sf : {Field::Dst, Field::SrcA, Field::SrcB, Field::SrcC}) {
    if (!(u & bit(sf))) continue;
    const int g = stream_group_size(in, sf);
    StreamRef s = StreamRef::decode(in.get(sf));
    if (s.index % g != 0)
      return fmt::format("{}: stream {} for '{}' must start a {}-stream group (index a multiple of {})",
                         oi.mnemonic, stream_name(s), field_name(sf), g, g);
  }
  // MXM dtype domains.
  if (in.op == Opcode::LoadW || in.op == Opcode::Abc) {
    if (in.dtype() != DType::I8 && in.dtype() != DType::F16)
      return fmt::format("{}: dtype must be i8 or f16, got {}", oi.mnemonic, dtype_name(in.dtype()));
  }
  if (in.op == Opcode::Acc) {
    if (in.dtype() != DType::I32 && in.dtype() != DType::F32)
      return fmt::format("acc: dtype must be i32 or f32, got {}", dtype_name(in.dtype()));
  }
  return {};
}

uint64_t encode(const Instr& in) {
  std::string err = validate_fields(in);
  if (!err.empty()) throw std::invalid_argument("encode: " + err);
  const OpInfo& oi = op_info(in.op);
  const FormatInfo& fi = format_info(oi.format);
  uint64_t w = static_cast<uint64_t>(in.op) << 56;
  for (int i = 0; i < fi.num_fields; ++i) {
    const FieldLayout& l = fi.fields[i];
    const uint64_t mask = (l.width == 64) ? ~0ull : ((1ull << l.width) - 1);
    w |= (static_cast<uint64_t>(in.get(l.field)) & mask) << l.lo;
  }
  return w;
}

DecodeResult decode(uint64_t word) {
  DecodeResult r{false, {}, {}};
  const uint32_t opc = static_cast<uint32_t>(word >> 56);
  if (opc >= static_cast<uint32_t>(kNumOpcodes)) {
    r.error = fmt::format("unknown opcode {} in word 0x{:016x}", opc, word);
    return r;
  }
  Instr in;
  in.op = static_cast<Opcode>(opc);
  const OpInfo& oi = op_info(in.op);
  const FormatInfo& fi = format_info(oi.format);
  uint64_t covered = 0xFFull << 56;
  for (int i = 0; i < fi.num_fields; ++i) {
    const FieldLayout& l = fi.fields[i];
    if (!(oi.used_fields & bit(l.field))) continue;
    const uint64_t mask = (1ull << l.width) - 1;
    in.set(l.field, static_cast<uint32_t>((word >> l.lo) & mask));
    covered |= mask << l.lo;
  }
  if (word & ~covered) {
    r.error = fmt::format("{}: reserved bits set in word 0x{:016x} (mask 0x{:016x})", oi.mnemonic, word, word & ~covered);
    return r;
  }
  std::string err = validate_fields(in);
  if (!err.empty()) {
    r.error = err;
    return r;
  }
  r.ok = true;
  r.instr = in;
  return r;
}

}  // namespace lpu
