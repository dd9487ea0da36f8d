// validate_program: structural checks of a Program against a ChipConfig (indices, unit kinds,
// field domains, data/tensor placement, link wiring). Shared by the .lpu loader path and the
// assembler, which passes source lines so errors read "<file>:<line>: ...".
#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "isa/asm_internal.h"
#include "isa/program_io.h"

namespace lpu {

namespace detail {

std::string queue_label(const ChipConfig& cfg, uint16_t slice, uint8_t queue) {
  if (slice < cfg.slices.size()) return fmt::format("{}.{}", cfg.slices[slice].name, queue);
  return fmt::format("slice#{}.{}", slice, queue);
}

namespace {

// Names written into assembly as one token: printable ASCII without space or ; , = [ ].
bool is_token(const std::string& s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F || c == ';' || c == ',' || c == '=' || c == '[' || c == ']') return false;
  }
  return true;
}

class Checker {
 public:
  Checker(const Program& p, const ChipConfig& cfg, const std::string& src, const ProgramLines* lines)
      : p_(p), cfg_(cfg), src_(src), lines_(lines) {}

  void run() {
    check_header();
    check_maps();
    for (uint32_t c = 0; c < p_.chips.size(); ++c) check_chip(c);
    check_data();
    check_tensors();
    check_links();
  }

 private:
  [[noreturn]] void fail(uint32_t line, const std::string& msg) const {
    if (line > 0) throw InputError(fmt::format("{}:{}: {}", src_, line, msg));
    throw InputError(fmt::format("{}: {}", src_, msg));
  }
  static uint32_t line_of(const std::vector<uint32_t>* v, size_t i) {
    return (v && i < v->size()) ? (*v)[i] : 0;
  }
  uint32_t instr_line(size_t c, size_t q, size_t i) const {
    if (!lines_ || !lines_->instr) return 0;
    const auto& l = lines_->instr->lines;
    if (c < l.size() && q < l[c].size() && i < l[c][q].size()) return l[c][q][i];
    return 0;
  }
  const std::vector<uint32_t>* item_lines(std::vector<uint32_t> ProgramLines::*m) const {
    return lines_ ? &(lines_->*m) : nullptr;
  }
  bool is_mem(uint32_t slice) const { return slice < cfg_.slices.size() && cfg_.slices[slice].kind == SliceKind::MEM; }
  std::string slice_text(uint32_t slice) const {
    return slice < cfg_.slices.size() ? cfg_.slices[slice].name : fmt::format("#{}", slice);
  }

  void check_header() {
    const uint32_t line = lines_ ? lines_->chips : 0;
    if (p_.num_chips < 1) fail(line, "num_chips is 0; a program needs at least 1 chip");
    if (p_.chips.size() != p_.num_chips)
      fail(line, fmt::format("num_chips is {} but the program has code for {} chips (they must be equal)", p_.num_chips,
                             p_.chips.size()));
    if (!is_token(p_.config_name))
      fail(lines_ ? lines_->config : 0, fmt::format("config name '{}' must be printable ASCII without spaces or ; , = [ ]", p_.config_name));
    if (!is_token(p_.work_unit))
      fail(lines_ ? lines_->work : 0, fmt::format("work unit '{}' must be printable ASCII without spaces or ; , = [ ]", p_.work_unit));
  }

  void check_maps() {
    const uint32_t lanes = cfg_.vector_bytes();
    for (size_t m = 0; m < p_.maps.size(); ++m) {
      const uint32_t line = line_of(item_lines(&ProgramLines::maps), m);
      const auto& map = p_.maps[m];
      if (map.size() != lanes)
        fail(line, fmt::format("map {} has {} entries; a map needs exactly {} (one per lane)", m, map.size(), lanes));
      for (size_t e = 0; e < map.size(); ++e)
        if (map[e] >= lanes && map[e] != 0xFFFF)
          fail(line, fmt::format("map {} entry {} is {}; allowed: a source lane 0..{} or 65535 (zero)", m, e, map[e], lanes - 1));
    }
  }

  void check_chip(uint32_t c) {
    const ChipCode& chip = p_.chips[c];
    for (size_t q = 0; q < chip.queues.size(); ++q) {
      const QueueCode& qc = chip.queues[q];
      const uint32_t first_line = instr_line(c, q, 0);
      if (qc.slice >= cfg_.slices.size())
        fail(first_line, fmt::format("chip {}, queue entry {}: slice index {} is out of range; config {} has slices 0..{}", c, q,
                                     qc.slice, cfg_.name, cfg_.slices.size() - 1));
      const SliceSpec& s = cfg_.slices[qc.slice];
      if (qc.queue >= s.queues)
        fail(first_line, fmt::format("chip {}, queue {}: slice {} has queues 0..{}", c, queue_label(cfg_, qc.slice, qc.queue),
                                     s.name, s.queues - 1));
      if (q > 0) {
        const QueueCode& prev = chip.queues[q - 1];
        if (std::make_pair(prev.slice, prev.queue) >= std::make_pair(qc.slice, qc.queue))
          fail(first_line, fmt::format("chip {}: queue {} follows queue {}; queues must be sorted by (slice, queue) and appear once",
                                       c, queue_label(cfg_, qc.slice, qc.queue), queue_label(cfg_, prev.slice, prev.queue)));
      }
      for (size_t i = 0; i < qc.code.size(); ++i) check_instr(c, q, i);
    }
  }

  void check_instr(uint32_t c, size_t q, size_t i) {
    const QueueCode& qc = p_.chips[c].queues[q];
    const Instr& in = qc.code[i];
    const uint32_t line = instr_line(c, q, i);
    auto bad = [&](const std::string& msg) {
      std::string text = static_cast<int>(in.op) < kNumOpcodes && validate_fields(in).empty() ? format_instr(in) : "?";
      fail(line, fmt::format("chip {}, queue {}, instruction {} ({}): {}", c, queue_label(cfg_, qc.slice, qc.queue), i, text, msg));
    };
    if (static_cast<int>(in.op) >= kNumOpcodes) bad(fmt::format("unknown opcode {}", static_cast<int>(in.op)));
    const std::string ferr = validate_fields(in);
    if (!ferr.empty()) bad(ferr);
    const OpInfo& oi = op_info(in.op);
    const SliceSpec& s = cfg_.slices[qc.slice];
    if (oi.unit != Unit::ICU && oi.unit != slice_unit(s.kind))
      bad(fmt::format("{} is a {} instruction but slice {} is a {} slice", oi.mnemonic, unit_name(oi.unit), s.name,
                      slice_kind_name(s.kind)));
    const uint32_t used = oi.used_fields;
    auto uses = [&](Field f) { return (used >> static_cast<int>(f)) & 1u; };
    for (Field f : {Field::Dst, Field::SrcA, Field::SrcB, Field::SrcC}) {
      if (!uses(f)) continue;
      const StreamRef sr = StreamRef::decode(in.get(f));
      const int g = stream_group_size(in, f);
      if (sr.index + static_cast<uint32_t>(g) > cfg_.streams_per_direction)
        bad(fmt::format("{} {} with a {}-stream group needs streams up to {}, but the chip has {} per direction", field_name(f),
                        stream_name(sr), g, sr.index + g - 1, cfg_.streams_per_direction));
    }
    if (uses(Field::Addr) && in.get(Field::Addr) >= cfg_.sram_addresses)
      bad(fmt::format("addr {} is out of range; MEM slices have addresses 0..{}", in.get(Field::Addr), cfg_.sram_addresses - 1));
    if (uses(Field::Plane) && in.get(Field::Plane) >= cfg_.mxm_planes)
      bad(fmt::format("plane {} is out of range; MXM slices have planes 0..{}", in.get(Field::Plane), cfg_.mxm_planes - 1));
    if (uses(Field::Row)) {
      const uint32_t lim = row_limit(in);
      if (in.get(Field::Row) >= lim) bad(fmt::format("row {} is out of range; {} rows are 0..{}", in.get(Field::Row), row_kind(in), lim - 1));
    }
    if (uses(Field::Link) && in.get(Field::Link) >= cfg_.c2c_links)
      bad(fmt::format("link {} is out of range; the chip has links 0..{}", in.get(Field::Link), cfg_.c2c_links - 1));
    if (oi.sched == SchedClass::SxmPermute && in.get(Field::Imm) >= p_.maps.size())
      bad(fmt::format("map m{} is not defined; the program has {} maps", in.get(Field::Imm), p_.maps.size()));
    if (in.op == Opcode::InstWT && !cfg_.mxm_transposed_install)
      bad(fmt::format("iwt needs the transposed install, which chip config '{}' does not have "
                      "(mxm.transposed_install: false); allowed: iw",
                      cfg_.name));
    if (in.op == Opcode::Fma && !cfg_.vxm_fma)
      bad(fmt::format("fma needs the fused multiply-add, which chip config '{}' does not have "
                      "(vxm.fused_multiply_add: false); allowed: mul then add",
                      cfg_.name));
    if (in.op == Opcode::Repeat) {
      if (i == 0) bad("repeat must follow a non-ICU instruction, but it is the first instruction of its queue");
      const Instr& x = qc.code[i - 1];
      const OpInfo& xi = op_info(x.op);
      if (xi.unit == Unit::ICU)
        bad(fmt::format("repeat must follow a non-ICU instruction, but it follows {}", xi.mnemonic));
      const uint64_t last = static_cast<uint64_t>(x.get(xi.step)) + in.get(Field::Count);
      if (xi.step == Field::Addr && last >= cfg_.sram_addresses)
        bad(fmt::format("repeating {} steps addr up to {}; MEM slices have addresses 0..{}", format_instr(x), last,
                        cfg_.sram_addresses - 1));
      if (xi.step == Field::Row && last >= row_limit(x))
        bad(fmt::format("repeating {} steps row up to {}; {} rows are 0..{}", format_instr(x), last, row_kind(x), row_limit(x) - 1));
    }
  }

  uint32_t row_limit(const Instr& in) const {
    return in.op == Opcode::LoadW ? std::min(cfg_.vector_bytes(), 65536u) : cfg_.mxm_acc_rows;
  }
  static const char* row_kind(const Instr& in) { return in.op == Opcode::LoadW ? "weight" : "accumulator"; }

  void check_data() {
    const uint32_t vb = cfg_.vector_bytes();
    // (chip, slice) -> [(first addr, end addr, blob index)] to find overlaps.
    std::map<std::pair<uint32_t, uint32_t>, std::vector<std::array<uint64_t, 3>>> spans;
    for (size_t k = 0; k < p_.data.size(); ++k) {
      const DataBlob& b = p_.data[k];
      const uint32_t line = line_of(item_lines(&ProgramLines::data), k);
      if (b.chip >= p_.num_chips) fail(line, fmt::format("data blob {}: chip {} is out of range; the program has chips 0..{}", k, b.chip, p_.num_chips - 1));
      if (!is_mem(b.slice))
        fail(line, fmt::format("data blob {}: slice {} is not a MEM slice (data can only be placed in SRAM)", k, slice_text(b.slice)));
      if (b.bytes.empty() || b.bytes.size() % vb != 0)
        fail(line, fmt::format("data blob {}: {} bytes is not a whole number (>= 1) of {}-byte vectors", k, b.bytes.size(), vb));
      const uint64_t end = static_cast<uint64_t>(b.addr) + b.bytes.size() / vb;
      if (end > cfg_.sram_addresses)
        fail(line, fmt::format("data blob {}: addresses {}..{} exceed the slice's 0..{}", k, b.addr, end - 1, cfg_.sram_addresses - 1));
      spans[{b.chip, b.slice}].push_back({b.addr, end, k});
    }
    for (auto& [key, v] : spans) {
      std::sort(v.begin(), v.end());
      for (size_t j = 1; j < v.size(); ++j)
        if (v[j][0] < v[j - 1][1]) {
          const size_t k = std::max(v[j][2], v[j - 1][2]);
          fail(line_of(item_lines(&ProgramLines::data), k),
               fmt::format("data blob {} overlaps data blob {} in chip {} slice {} at address {}", k, std::min(v[j][2], v[j - 1][2]),
                           key.first, slice_text(key.second), v[j][0]));
        }
    }
  }

  void check_tensors() {
    std::set<std::string> names;
    for (size_t k = 0; k < p_.tensors.size(); ++k) {
      const TensorDesc& t = p_.tensors[k];
      const uint32_t line = line_of(item_lines(&ProgramLines::tensors), k);
      const std::string who = fmt::format("tensor {} '{}'", k, t.name);
      if (t.name.empty() || !is_token(t.name))
        fail(line, fmt::format("{}: name must be non-empty printable ASCII without spaces or ; , = [ ]", who));
      if (!names.insert(t.name).second) fail(line, fmt::format("{}: name is used by an earlier tensor", who));
      if (static_cast<int>(t.dtype) >= kNumDTypes) fail(line, fmt::format("{}: dtype code {} is not i8,i16,i32,f16,f32", who, static_cast<int>(t.dtype)));
      if (t.role != TensorRole::Input && t.role != TensorRole::Output) fail(line, fmt::format("{}: role is not input or output", who));
      if (t.chip >= p_.num_chips) fail(line, fmt::format("{}: chip {} is out of range; the program has chips 0..{}", who, t.chip, p_.num_chips - 1));
      const size_t nb = static_cast<size_t>(dtype_bytes(t.dtype));
      if (t.slices.size() != nb)
        fail(line, fmt::format("{}: {} needs {} slices (one per byte plane) but {} are given", who, dtype_name(t.dtype), nb, t.slices.size()));
      for (size_t s = 0; s < t.slices.size(); ++s) {
        if (!is_mem(t.slices[s])) fail(line, fmt::format("{}: slice {} is not a MEM slice", who, slice_text(t.slices[s])));
        for (size_t s2 = 0; s2 < s; ++s2)
          if (t.slices[s2] == t.slices[s]) fail(line, fmt::format("{}: slice {} is listed twice", who, slice_text(t.slices[s])));
      }
      // Vectors: rows x ceil(inner / lanes), guarding against overflow with a cap of 2^40.
      const uint64_t cap = uint64_t{1} << 40;
      uint64_t rows = 1, inner = 1;
      for (size_t d = 0; d < t.shape.size(); ++d) {
        const int64_t v = t.shape[d];
        if (v < 1 || static_cast<uint64_t>(v) > cap) fail(line, fmt::format("{}: dimension {} is {}; allowed 1..2^40", who, d, v));
        if (d + 1 == t.shape.size()) inner = static_cast<uint64_t>(v);
        else {
          rows *= static_cast<uint64_t>(v);
          if (rows > cap) fail(line, fmt::format("{}: shape has more than 2^40 rows", who));
        }
      }
      const uint64_t lanes = cfg_.vector_bytes();
      const uint64_t nvec = rows * ((inner + lanes - 1) / lanes);
      if (t.addr + nvec > cfg_.sram_addresses)
        fail(line, fmt::format("{}: {} vectors at addr {} exceed the slice's addresses 0..{}", who, nvec, t.addr, cfg_.sram_addresses - 1));
    }
  }

  void check_links() {
    std::map<std::pair<uint32_t, uint32_t>, size_t> used;
    for (size_t k = 0; k < p_.links.size(); ++k) {
      const LinkDesc& l = p_.links[k];
      const uint32_t line = line_of(item_lines(&ProgramLines::links), k);
      for (auto [chip, link] : {std::make_pair(l.chip_a, l.link_a), std::make_pair(l.chip_b, l.link_b)}) {
        if (chip >= p_.num_chips) fail(line, fmt::format("link {}: chip {} is out of range; the program has chips 0..{}", k, chip, p_.num_chips - 1));
        if (link >= cfg_.c2c_links) fail(line, fmt::format("link {}: link {} is out of range; chips have links 0..{}", k, link, cfg_.c2c_links - 1));
        auto [it, fresh] = used.emplace(std::make_pair(chip, link), k);
        if (!fresh && it->second == k) fail(line, fmt::format("link {}: both ends are chip {} link {}", k, chip, link));
        if (!fresh) fail(line, fmt::format("link {}: chip {} link {} is already wired by link {}", k, chip, link, it->second));
      }
    }
  }

  const Program& p_;
  const ChipConfig& cfg_;
  const std::string& src_;
  const ProgramLines* lines_;
};

}  // namespace

void validate_program_lines(const Program& p, const ChipConfig& cfg, const std::string& source, const ProgramLines* lines) {
  Checker(p, cfg, source, lines).run();
}

}  // namespace detail

void validate_program(const Program& p, const ChipConfig& cfg, const std::string& source_name) {
  detail::validate_program_lines(p, cfg, source_name, nullptr);
}

}  // namespace lpu
