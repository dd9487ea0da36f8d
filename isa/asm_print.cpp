// Disassembler: Program -> assembly text in normal form (docs/assembly.md), and format_instr,
// which prints one instruction generically from its opcodes.def syntax template.
#include <cstring>

#include <fmt/format.h>

#include "isa/asm.h"
#include "isa/asm_internal.h"
#include "isa/program_io.h"

namespace lpu {

namespace detail {

std::string format_fimm(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  if (v != v) return fmt::format("0x{:08x}", bits);  // NaN: raw bits keep the payload
  return fmt::format("{}", v);                        // shortest text that reads back exactly
}

}  // namespace detail

namespace {

std::optional<Field> field_from_name(std::string_view name) {
  for (int k = 0; k < kNumFields; ++k)
    if (field_name(static_cast<Field>(k)) == name) return static_cast<Field>(k);
  return std::nullopt;
}

void append_field(std::string& out, const Instr& in, Field f) {
  const uint32_t v = in.get(f);
  switch (f) {
    case Field::DType:
    case Field::DType2: out += dtype_name(static_cast<DType>(v)); return;
    case Field::Dst:
    case Field::SrcA:
    case Field::SrcB:
    case Field::SrcC: out += stream_name(StreamRef::decode(v)); return;
    case Field::SImm: out += fmt::format("{}", static_cast<int16_t>(v & 0xFFFF)); return;
    case Field::FImm: out += detail::format_fimm(v); return;
    case Field::AccFlag: if (v) out += '+'; return;
    case Field::Addr:
    case Field::Imm:
    case Field::Count:
    case Field::Stride:
    case Field::Plane:
    case Field::Row:
    case Field::Link: out += fmt::format("{}", v); return;
    case Field::None: break;
  }
  throw std::logic_error("format_instr: field without a text form");
}

// Issue-cycle annotation of every instruction of one queue, from the ICU rules of
// docs/architecture.md. After a sync the cursor is only known relative to the release.
std::vector<std::string> cycle_notes(const QueueCode& q) {
  std::vector<std::string> notes;
  notes.reserve(q.code.size());
  bool after_sync = false;
  uint64_t cursor = 0, last_issue = 0;
  auto at = [&](uint64_t c) { return after_sync ? fmt::format("@sync+{}", c) : fmt::format("@{}", c); };
  for (const Instr& in : q.code) {
    if (op_info(in.op).unit != Unit::ICU) {
      notes.push_back(at(cursor));
      last_issue = cursor;
      cursor += 1;
      continue;
    }
    switch (in.op) {
      case Opcode::Nop:
        notes.push_back(at(cursor));
        cursor += in.get(Field::Imm);
        break;
      case Opcode::Repeat: {
        const uint64_t n = in.get(Field::Count), d = in.get(Field::Stride);
        const uint64_t first = last_issue + d, last = last_issue + n * d;
        notes.push_back(n == 1 ? at(first) : at(first) + ".." + (after_sync ? fmt::format("sync+{}", last) : fmt::format("{}", last)));
        cursor = last + 1;
        break;
      }
      case Opcode::Sync:
        notes.push_back(at(cursor));
        after_sync = true;
        cursor = 0;
        break;
      case Opcode::Notify:
      case Opcode::Ifetch:
      case Opcode::Config:
        notes.push_back(at(cursor));
        cursor += 1;
        break;
      default: throw std::logic_error(fmt::format("disassemble: ICU opcode {} has no issue rule", op_info(in.op).mnemonic));
    }
  }
  return notes;
}

std::string slice_name(const ChipConfig& cfg, uint16_t s) { return cfg.slices.at(s).name; }

}  // namespace

std::string format_instr(const Instr& in) {
  const OpInfo& oi = op_info(in.op);
  std::string out(oi.mnemonic);
  const std::string_view syn = oi.syntax;
  if (!syn.empty() && syn[0] != '.') out += ' ';
  for (size_t i = 0; i < syn.size(); ++i) {
    if (syn[i] != '{') {
      out += syn[i];
      continue;
    }
    const size_t j = syn.find('}', i);
    const auto f = field_from_name(syn.substr(i + 1, j - i - 1));
    if (!f) throw std::logic_error(fmt::format("opcodes.def: {} names an unknown field in '{}'", oi.mnemonic, syn));
    append_field(out, in, *f);
    i = j;
  }
  return out;
}

std::string disassemble(const Program& p, const ChipConfig& cfg, const DisasmOptions& opt) {
  validate_program(p, cfg, "disassemble");
  std::string o;
  if (!p.config_name.empty()) o += fmt::format(".config {}\n", p.config_name);
  o += fmt::format(".chips {}\n", p.num_chips);
  if (p.predicted_cycles != 0) o += fmt::format(".predicted_cycles {}\n", p.predicted_cycles);
  if (p.work_items != 0 || !p.work_unit.empty())
    o += p.work_unit.empty() ? fmt::format(".work {}\n", p.work_items) : fmt::format(".work {} {}\n", p.work_items, p.work_unit);
  if (!p.links.empty()) o += '\n';
  for (const LinkDesc& l : p.links) o += fmt::format(".link {}:{} {}:{}\n", l.chip_a, l.link_a, l.chip_b, l.link_b);
  const size_t per_line = cfg.lanes_per_superlane > 0 ? cfg.lanes_per_superlane : 16;
  for (size_t m = 0; m < p.maps.size(); ++m) {
    o += fmt::format("\n.map {}\n", m);
    for (size_t e = 0; e < p.maps[m].size(); e += per_line) {
      o += "   ";
      for (size_t k = e; k < std::min(e + per_line, p.maps[m].size()); ++k) o += fmt::format(" {}", p.maps[m][k]);
      o += '\n';
    }
  }
  if (!p.tensors.empty()) o += '\n';
  for (const TensorDesc& t : p.tensors) {
    std::string shape, slices;
    for (size_t d = 0; d < t.shape.size(); ++d) shape += fmt::format("{}{}", d ? "," : "", t.shape[d]);
    for (size_t s = 0; s < t.slices.size(); ++s) slices += fmt::format("{}{}", s ? "," : "", slice_name(cfg, t.slices[s]));
    o += fmt::format(".tensor {} {} {} [{}] chip={} slices={} addr={}\n", t.role == TensorRole::Input ? "input" : "output",
                     t.name, dtype_name(t.dtype), shape, t.chip, slices, t.addr);
  }
  const size_t vb = cfg.vector_bytes();
  static const char* const kHex = "0123456789abcdef";
  for (const DataBlob& b : p.data) {
    o += fmt::format("\n.data chip={} slice={} addr={}\n", b.chip, slice_name(cfg, b.slice), b.addr);
    for (size_t v = 0; v < b.bytes.size(); v += vb) {
      o += "    ";
      for (size_t k = v; k < v + vb; ++k) {
        o += kHex[b.bytes[k] >> 4];
        o += kHex[b.bytes[k] & 15];
      }
      o += '\n';
    }
  }
  for (size_t c = 0; c < p.chips.size(); ++c) {
    o += fmt::format("\n.chip {}\n", c);
    bool first = true;
    for (const QueueCode& q : p.chips[c].queues) {
      if (!first) o += '\n';
      first = false;
      const SliceSpec& s = cfg.slices.at(q.slice);
      o += s.queues > 1 ? fmt::format(".queue {}.{}\n", s.name, q.queue) : fmt::format(".queue {}\n", s.name);
      const std::vector<std::string> notes = opt.cycle_comments ? cycle_notes(q) : std::vector<std::string>{};
      for (size_t i = 0; i < q.code.size(); ++i) {
        std::string line = "    " + format_instr(q.code[i]);
        if (opt.cycle_comments) {
          if (line.size() < 40) line.resize(40, ' ');
          else line += ' ';
          line += "; " + notes[i];
        }
        o += line;
        o += '\n';
      }
    }
  }
  return o;
}

}  // namespace lpu
