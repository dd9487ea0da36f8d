// lpusim ISA: enums and the decoded instruction, all expanded from the .def tables in this folder.
// Contract: this header (and the .def files) is the only definition of what an instruction is.
// Compiler, assembler and simulator include it; none of them re-declares opcodes or fields.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lpu {

// ---- units and slices ------------------------------------------------------------------------
enum class Unit : uint8_t { ICU, MEM, VXM, MXM, SXM, C2C };
constexpr int kNumUnits = 6;
std::string_view unit_name(Unit u);

// ---- element types. Lane i of a vector holds element i; a type of B bytes travels as a stream
// group of B adjacent streams (byte plane b on stream base+b, little-endian). Base must be a
// multiple of B.
enum class DType : uint8_t { I8 = 0, I16 = 1, I32 = 2, F16 = 3, F32 = 4 };
constexpr int kNumDTypes = 5;
int dtype_bytes(DType t);                         // 1, 2, 4, 2, 4
bool dtype_is_float(DType t);
std::string_view dtype_name(DType t);             // "i8", "i16", "i32", "f16", "f32"
std::optional<DType> dtype_from_name(std::string_view s);

// ---- streams. A stream reference is 6 bits: bit 5 = direction (0 east, 1 west), bits 4:0 index.
// Text form: "E5" (eastward stream 5), "W12".
enum class Dir : uint8_t { East = 0, West = 1 };
struct StreamRef {
  Dir dir = Dir::East;
  uint8_t index = 0;
  uint32_t encode() const { return (static_cast<uint32_t>(dir) << 5) | index; }
  static StreamRef decode(uint32_t v) { return {static_cast<Dir>((v >> 5) & 1), static_cast<uint8_t>(v & 31)}; }
  bool operator==(const StreamRef& o) const { return dir == o.dir && index == o.index; }
};
std::string stream_name(StreamRef s);
std::optional<StreamRef> stream_from_name(std::string_view s);

// ---- opcodes, formats, fields, scheduling classes, energy events ------------------------------
enum class Opcode : uint8_t {
#define LPU_OP(Id, mn, unit, fmt, sched, step, syn, doc) Id,
#include "isa/opcodes.def"
#undef LPU_OP
};
constexpr int kNumOpcodes = 0
#define LPU_OP(Id, mn, unit, fmt, sched, step, syn, doc) +1
#include "isa/opcodes.def"
#undef LPU_OP
    ;

enum class Format : uint8_t {
#define LPU_FORMAT(F) F,
#define LPU_FIELD(F, Fld, lo, w)
#include "isa/formats.def"
#undef LPU_FORMAT
#undef LPU_FIELD
};
constexpr int kNumFormats = 0
#define LPU_FORMAT(F) +1
#define LPU_FIELD(F, Fld, lo, w)
#include "isa/formats.def"
#undef LPU_FORMAT
#undef LPU_FIELD
    ;

// Every operand field an instruction can carry. Values are stored raw (as encoded).
enum class Field : uint8_t { DType, DType2, Dst, SrcA, SrcB, SrcC, Addr, Imm, SImm, FImm, Count, Stride,
                             Plane, AccFlag, Row, Link, None };
constexpr int kNumFields = static_cast<int>(Field::None);
std::string_view field_name(Field f);  // the placeholder name used in syntax strings: "src_a", ...

enum class SchedClass : uint8_t {
#define LPU_SCHED(Id, key, res, doc) Id,
#include "isa/sched_classes.def"
#undef LPU_SCHED
};
constexpr int kNumSchedClasses = 0
#define LPU_SCHED(Id, key, res, doc) +1
#include "isa/sched_classes.def"
#undef LPU_SCHED
    ;

enum class Resource : uint8_t { Queue, Sram, MxmLw, MxmIw, MxmAbc, MxmAcc, LinkTx, LinkRx };

enum class EnergyEvent : uint8_t {
#define LPU_ENERGY(Id, key, unit, doc) Id,
#include "isa/energy_events.def"
#undef LPU_ENERGY
};
constexpr int kNumEnergyEvents = 0
#define LPU_ENERGY(Id, key, unit, doc) +1
#include "isa/energy_events.def"
#undef LPU_ENERGY
    ;

// Static facts about one opcode (a row of opcodes.def).
struct OpInfo {
  Opcode op;
  std::string_view mnemonic;
  Unit unit;
  Format format;
  SchedClass sched;
  Field step;            // field stepped by `repeat`, Field::None if nothing steps
  std::string_view syntax;
  std::string_view doc;
  uint32_t used_fields;  // bit mask (1u << Field) of fields named in syntax
};
const OpInfo& op_info(Opcode op);
std::optional<Opcode> opcode_from_mnemonic(std::string_view mnemonic);

struct FieldLayout { Field field; uint8_t lo; uint8_t width; };
struct FormatInfo {
  Format format;
  std::string_view name;
  FieldLayout fields[8];
  int num_fields;
  std::optional<FieldLayout> find(Field f) const;
};
const FormatInfo& format_info(Format f);

struct SchedInfo { SchedClass cls; std::string_view key; Resource resource; std::string_view doc; };
const SchedInfo& sched_info(SchedClass c);
std::optional<SchedClass> sched_from_key(std::string_view key);

struct EnergyInfo { EnergyEvent ev; std::string_view key; std::string_view unit; std::string_view doc; };
const EnergyInfo& energy_info(EnergyEvent e);
std::optional<EnergyEvent> energy_from_key(std::string_view key);

// ---- the decoded instruction -------------------------------------------------------------------
struct Instr {
  Opcode op = Opcode::Nop;
  std::array<uint32_t, kNumFields> f{};  // raw field values; only op_info(op).used_fields may be non-zero

  uint32_t get(Field x) const { return f[static_cast<int>(x)]; }
  void set(Field x, uint32_t v) { f[static_cast<int>(x)] = v; }
  DType dtype() const { return static_cast<DType>(get(Field::DType)); }
  DType dtype2() const { return static_cast<DType>(get(Field::DType2)); }
  StreamRef dst() const { return StreamRef::decode(get(Field::Dst)); }
  StreamRef src_a() const { return StreamRef::decode(get(Field::SrcA)); }
  StreamRef src_b() const { return StreamRef::decode(get(Field::SrcB)); }
  StreamRef src_c() const { return StreamRef::decode(get(Field::SrcC)); }
  int32_t simm() const { return static_cast<int16_t>(get(Field::SImm) & 0xFFFF); }
  float fimm() const;
  bool operator==(const Instr& o) const { return op == o.op && f == o.f; }
};

// Builders that keep call sites short in the compiler and in tests.
Instr make_instr(Opcode op);
Instr make_instr(Opcode op, DType dt);  // with its dtype field set (a typed unit's instruction)
inline Instr& with(Instr& i, Field x, uint32_t v) { i.set(x, v); return i; }

// ---- encoding ----------------------------------------------------------------------------------
// encode() requires a valid instruction (see validate_fields); decode() returns an error message
// for unknown opcodes, reserved bits set, or field values out of their domain.
uint64_t encode(const Instr& in);
struct DecodeResult { bool ok; Instr instr; std::string error; };
DecodeResult decode(uint64_t word);
// Number of adjacent streams the stream operand `f` of `in` occupies (1, 2, 4 or 16): the dtype's
// byte count for typed units, dtype2 for cvt's destination, 16 for transpose, 2 for the int16 index
// pair of gather/scatter, 1 for MEM/C2C data. The base index must be a multiple of it.
int stream_group_size(const Instr& in, Field f);
// Checks field domains that the bit widths alone do not: dtype values, nop/repeat counts >= 1,
// stream-group alignment, fields not used by the opcode being zero. Empty string = valid.
std::string validate_fields(const Instr& in);

}  // namespace lpu
