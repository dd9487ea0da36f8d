// Assembler: assembly text (docs/assembly.md) -> Program. Operands are parsed generically from the
// syntax templates of isa/opcodes.def; the finished program goes through validate_program with
// the source line of every item, so every error reads "<file>:<line>: <message>".
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "isa/asm.h"
#include "isa/asm_internal.h"
#include "isa/program_io.h"

namespace lpu {

namespace detail {

std::vector<uint8_t> fill_bytes(uint64_t seed, size_t n) {
  std::vector<uint8_t> out(n);
  uint64_t state = seed;
  for (size_t i = 0; i < n; i += 8) {
    state += 0x9E3779B97F4A7C15ull;  // splitmix64
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (size_t k = 0; k < 8 && i + k < n; ++k) out[i + k] = static_cast<uint8_t>(z >> (8 * k));
  }
  return out;
}

}  // namespace detail

namespace {

// `text` with control and non-ASCII bytes shown as \xNN, so an error message never carries them raw.
std::string printable(std::string_view text) {
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7F) out += fmt::format("\\x{:02x}", c);
    else out += ch;
  }
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_space(s[j])) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Candidates nearest to a misspelt name, comma-separated in table order: those that extend it
// (for names of 2+ characters), else those at the smallest edit distance if it is at most
// max(1, min(2, length / 3)). At most 5; empty if nothing is close.
std::string close_matches(std::string_view bad, const std::vector<std::string_view>& names) {
  const size_t limit = std::max<size_t>(1, std::min<size_t>(2, bad.size() / 3));
  std::vector<std::string_view> prefixed, nearest;
  size_t best = limit + 1;
  for (std::string_view n : names) {
    if (bad.size() >= 2 && n.size() > bad.size() && n.substr(0, bad.size()) == bad) prefixed.push_back(n);
    const size_t d = edit_distance(bad, n);
    if (d < best) {
      best = d;
      nearest.clear();
    }
    if (d == best) nearest.push_back(n);
  }
  const std::vector<std::string_view>& pick = prefixed.empty() ? nearest : prefixed;
  std::string out;
  for (size_t i = 0; i < pick.size() && i < 5; ++i) out += fmt::format("{}{}", i ? ", " : "", pick[i]);
  return out;
}

// Parses a whole integer literal: decimal or 0x-hex, optional leading '-'. nullopt if malformed or
// beyond 64 bits.
std::optional<int64_t> parse_int_literal(std::string_view s) {
  bool neg = false;
  if (!s.empty() && s[0] == '-') {
    neg = true;
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return std::nullopt;
    if (v > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) return std::nullopt;
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  if (neg) {
    if (v > uint64_t{1} << 63) return std::nullopt;
    return static_cast<int64_t>(0 - v);
  }
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(v);
}

struct QueueBuild {
  QueueCode qc;
  std::vector<uint32_t> lines;
  uint32_t decl_line = 0;
};

class Assembler {
 public:
  Assembler(const std::string& text, const std::string& src, const ChipConfig& cfg) : src_(src), cfg_(cfg) {
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + start, end - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      const size_t semi = line.find(';');
      if (semi != std::string_view::npos) line = line.substr(0, semi);
      lines_.push_back(trim(line));
      start = end + 1;
    }
  }

  Program run(SourceMap* map) {
    collect_symbols();
    for (size_t i = 0; i < lines_.size(); ++i) {
      line_ = static_cast<uint32_t>(i + 1);
      const std::string_view l = lines_[i];
      if (l.empty()) continue;
      if (l[0] == '.') {
        end_block();
        directive(l);
      } else {
        body_line(l);
      }
    }
    line_ = static_cast<uint32_t>(lines_.size());
    end_block();
    return finish(map);
  }

 private:
  enum class Mode { None, Data, Map, Queue };

  [[noreturn]] void fail(const std::string& msg) const { throw InputError(fmt::format("{}:{}: {}", src_, line_, msg)); }
  [[noreturn]] void fail_at(uint32_t line, const std::string& msg) const {
    throw InputError(fmt::format("{}:{}: {}", src_, line, msg));
  }

  // ---- symbols and numbers ----
  void collect_symbols() {
    for (size_t i = 0; i < lines_.size(); ++i) {
      line_ = static_cast<uint32_t>(i + 1);
      const auto t = split_ws(lines_[i]);
      if (t.empty() || t[0] != ".equ") continue;
      if (t.size() != 3) fail(".equ takes a name and a value: .equ NAME VALUE");
      const std::string name(t[1]);
      if (!is_ident_start(name[0]) || !std::all_of(name.begin(), name.end(), is_word))
        fail(fmt::format(".equ name '{}' must be a letter or _ followed by letters, digits or _", name));
      if (stream_from_name(name) || dtype_from_name(name))
        fail(fmt::format(".equ name '{}' would read as a stream or type name; choose another", name));
      if (auto it = sym_line_.find(name); it != sym_line_.end())
        fail(fmt::format(".equ {} is already defined at line {}", name, it->second));
      syms_[name] = value(t[1], t[2], std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
      sym_line_[name] = line_;
    }
  }

  // A number literal or a symbol defined by .equ, checked to lie in [lo, hi]; `what` names the
  // operand in messages.
  int64_t value(std::string_view what, std::string_view tok, int64_t lo, int64_t hi) const {
    std::optional<int64_t> v;
    if (!tok.empty() && is_ident_start(tok[0])) {
      auto it = syms_.find(std::string(tok));
      if (it == syms_.end()) fail(fmt::format("undefined symbol '{}' for {} (no .equ {} in this file)", tok, what, tok));
      v = it->second;
    } else {
      v = parse_int_literal(tok);
      if (!v) fail(fmt::format("expected a number (decimal or 0x-hex) or .equ symbol for {}, got '{}'", what, tok));
    }
    if (*v < lo || *v > hi) fail(fmt::format("{} = {} is out of range {}..{}", what, *v, lo, hi));
    return *v;
  }
  uint32_t u32v(std::string_view what, std::string_view tok, uint32_t hi = 0xFFFFFFFFu) const {
    return static_cast<uint32_t>(value(what, tok, 0, hi));
  }

  int slice_by_name(std::string_view name) const {
    const int s = cfg_.slice_index(name);
    if (s >= 0) return s;
    std::vector<std::string_view> names;
    for (const SliceSpec& sp : cfg_.slices) names.push_back(sp.name);
    const std::string close = close_matches(name, names);
    fail(fmt::format("unknown slice '{}' in config {}{}", name, cfg_.name,
                     close.empty() ? std::string(" (lpusim config show lists the floorplan)") : "; close matches: " + close));
  }

  // key=value arguments of a directive; every key must be in `allowed`, none repeated.
  std::map<std::string, std::string_view> kv_args(std::string_view dir, const std::vector<std::string_view>& toks, size_t from,
                                                   std::initializer_list<const char*> allowed) const {
    std::map<std::string, std::string_view> out;
    for (size_t i = from; i < toks.size(); ++i) {
      const size_t eq = toks[i].find('=');
      std::string allowed_list;
      for (const char* a : allowed) allowed_list += fmt::format("{}{}=", allowed_list.empty() ? "" : ", ", a);
      if (eq == std::string_view::npos) fail(fmt::format("{}: expected key=value, got '{}' (keys: {})", dir, toks[i], allowed_list));
      const std::string key(toks[i].substr(0, eq));
      if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }) == allowed.end())
        fail(fmt::format("{}: unknown key '{}' (keys: {})", dir, key, allowed_list));
      if (!out.emplace(key, toks[i].substr(eq + 1)).second) fail(fmt::format("{}: key '{}' given twice", dir, key));
    }
    return out;
  }
  std::string_view need(const std::map<std::string, std::string_view>& kv, std::string_view dir, const char* key) const {
    auto it = kv.find(key);
    if (it == kv.end()) fail(fmt::format("{}: missing {}=", dir, key));
    return it->second;
  }
  // chip= of .tensor/.data/.fill (default 0), checked against .chips so that nothing is built for
  // chips the program does not have.
  uint32_t chip_arg(const std::map<std::string, std::string_view>& kv) {
    auto it = kv.find("chip");
    const uint32_t c = it == kv.end() ? 0 : u32v("chip", it->second);
    if (c >= p_.num_chips) fail(fmt::format("chip={} is out of range; .chips {} allows 0..{}", c, p_.num_chips, p_.num_chips - 1));
    if (!chip_named_) chip_named_ = line_;
    return c;
  }
  // Initial SRAM bytes given so far per (chip, slice) may not exceed one slice: bounds what .fill
  // and .data allocate before validate_program reports the overlap.
  void add_sram_bytes(uint32_t chip, uint16_t slice, uint64_t n) {
    uint64_t& total = sram_bytes_[{chip, slice}];
    const uint64_t cap = static_cast<uint64_t>(cfg_.sram_addresses) * cfg_.vector_bytes();
    if (total + n > cap)
      fail(fmt::format("chip {} slice {}: .data/.fill give {} bytes in all, more than the slice holds ({} bytes)", chip,
                       cfg_.slices[slice].name, total + n, cap));
    total += n;
  }
  uint16_t mem_slice_arg(std::string_view dir, std::string_view name) const {
    const int s = slice_by_name(name);
    if (cfg_.slices[static_cast<size_t>(s)].kind != SliceKind::MEM)
      fail(fmt::format("{}: slice {} is a {} slice; data lives in MEM slices", dir, name,
                       slice_kind_name(cfg_.slices[static_cast<size_t>(s)].kind)));
    return static_cast<uint16_t>(s);
  }

  void once(const char* dir, uint32_t& seen) {
    if (seen) fail(fmt::format("{} given twice (first at line {})", dir, seen));
    seen = line_;
  }

  // ---- directives ----
  void directive(std::string_view l) {
    const auto t = split_ws(l);
    const std::string_view d = t[0];
    auto args = [&](size_t lo, size_t hi, const char* form) {
      if (t.size() - 1 < lo || t.size() - 1 > hi) fail(fmt::format("{}: wrong number of arguments; usage: {}", d, form));
    };
    if (d == ".equ") return;  // collected in the first pass
    if (d == ".config") {
      args(1, 1, ".config NAME");
      once(".config", pl_.config);
      p_.config_name = std::string(t[1]);
    } else if (d == ".chips") {
      args(1, 1, ".chips N");
      once(".chips", pl_.chips);
      if (chip_named_) fail(fmt::format(".chips must come before anything that names a chip (line {})", chip_named_));
      p_.num_chips = u32v("number of chips", t[1], 65536);
      if (p_.num_chips < 1) fail(".chips: a program needs at least 1 chip");
    } else if (d == ".predicted_cycles") {
      args(1, 1, ".predicted_cycles N");
      once(".predicted_cycles", seen_pred_);
      p_.predicted_cycles = static_cast<uint64_t>(value("predicted cycles", t[1], 0, std::numeric_limits<int64_t>::max()));
    } else if (d == ".work") {
      args(1, 2, ".work N [UNIT]");
      once(".work", pl_.work);
      p_.work_items = static_cast<uint64_t>(value("work items", t[1], 0, std::numeric_limits<int64_t>::max()));
      if (t.size() == 3) p_.work_unit = std::string(t[2]);
    } else if (d == ".link") {
      args(2, 2, ".link CHIP:LINK CHIP:LINK");
      LinkDesc ld;
      auto end = [&](std::string_view s, uint32_t& chip, uint32_t& link) {
        const size_t c = s.find(':');
        if (c == std::string_view::npos) fail(fmt::format(".link: expected CHIP:LINK, got '{}'", s));
        chip = u32v("link chip", s.substr(0, c));
        link = u32v("link number", s.substr(c + 1));
      };
      end(t[1], ld.chip_a, ld.link_a);
      end(t[2], ld.chip_b, ld.link_b);
      p_.links.push_back(ld);
      pl_.links.push_back(line_);
    } else if (d == ".map") {
      if (t.size() < 2) fail(".map: usage: .map ID [values...] (values may continue on the following lines)");
      const uint32_t id = u32v("map id", t[1]);
      if (id != p_.maps.size()) fail(fmt::format(".map: map ids must be 0, 1, 2, ... in order; expected {}, got {}", p_.maps.size(), id));
      p_.maps.emplace_back();
      pl_.maps.push_back(line_);
      mode_ = Mode::Map;
      for (size_t i = 2; i < t.size(); ++i) map_value(t[i]);
    } else if (d == ".tensor") {
      tensor(t);
    } else if (d == ".data") {
      const auto kv = kv_args(d, t, 1, {"chip", "slice", "addr"});
      DataBlob b;
      b.chip = chip_arg(kv);
      b.slice = mem_slice_arg(d, need(kv, d, "slice"));
      b.addr = u32v("addr", need(kv, d, "addr"));
      p_.data.push_back(std::move(b));
      pl_.data.push_back(line_);
      mode_ = Mode::Data;
    } else if (d == ".fill") {
      const auto kv = kv_args(d, t, 1, {"chip", "slice", "addr", "count", "seed"});
      DataBlob b;
      b.chip = chip_arg(kv);
      b.slice = mem_slice_arg(d, need(kv, d, "slice"));
      b.addr = u32v("addr", need(kv, d, "addr"));
      const uint64_t vb = cfg_.vector_bytes();
      const uint64_t count = static_cast<uint64_t>(value("count", need(kv, d, "count"), 1, std::numeric_limits<int64_t>::max()));
      if (count % vb != 0 || count / vb > cfg_.sram_addresses)
        fail(fmt::format(".fill: count={} must be a whole number of {}-byte vectors, at most {} (a whole slice)", count, vb,
                         vb * cfg_.sram_addresses));
      const uint64_t seed = static_cast<uint64_t>(value("seed", need(kv, d, "seed"), 0, std::numeric_limits<int64_t>::max()));
      add_sram_bytes(b.chip, b.slice, count);
      b.bytes = detail::fill_bytes(seed, static_cast<size_t>(count));
      p_.data.push_back(std::move(b));
      pl_.data.push_back(line_);
    } else if (d == ".chip") {
      args(1, 1, ".chip N");
      const uint32_t c = u32v("chip", t[1]);
      if (c >= p_.num_chips) fail(fmt::format(".chip {} is out of range; .chips {} allows 0..{}", c, p_.num_chips, p_.num_chips - 1));
      cur_chip_ = static_cast<int>(c);
      if (!chip_named_) chip_named_ = line_;
    } else if (d == ".queue") {
      args(1, 1, ".queue SLICE or .queue SLICE.Q");
      queue(t[1]);
    } else {
      fail(fmt::format("unknown directive '{}'; directives: .config .chips .predicted_cycles .work .equ .link .map .tensor .data "
                       ".fill .chip .queue",
                       d));
    }
  }

  void tensor(const std::vector<std::string_view>& t) {
    if (t.size() < 5) fail(".tensor: usage: .tensor input|output NAME DTYPE [d0,d1,...] chip=C slices=S0,S1,... addr=A");
    TensorDesc td;
    if (t[1] == "input") td.role = TensorRole::Input;
    else if (t[1] == "output") td.role = TensorRole::Output;
    else fail(fmt::format(".tensor: role '{}' must be input or output", t[1]));
    td.name = std::string(t[2]);
    auto dt = dtype_from_name(t[3]);
    if (!dt) fail(fmt::format(".tensor: dtype '{}' is not one of i8, i16, i32, f16, f32", t[3]));
    td.dtype = *dt;
    std::string_view sh = t[4];
    if (sh.size() < 2 || sh.front() != '[' || sh.back() != ']')
      fail(fmt::format(".tensor: shape '{}' must be written [d0,d1,...] without spaces", sh));
    sh = sh.substr(1, sh.size() - 2);
    while (!sh.empty()) {
      const size_t c = sh.find(',');
      td.shape.push_back(value("tensor dimension", sh.substr(0, c), 1, int64_t{1} << 40));
      if (c == std::string_view::npos) break;
      sh.remove_prefix(c + 1);
      if (sh.empty()) fail(".tensor: shape ends with ','");
    }
    const auto kv = kv_args(".tensor", t, 5, {"chip", "slices", "addr"});
    td.chip = chip_arg(kv);
    std::string_view ss = need(kv, ".tensor", "slices");
    while (true) {
      const size_t c = ss.find(',');
      td.slices.push_back(mem_slice_arg(".tensor", ss.substr(0, c)));
      if (c == std::string_view::npos) break;
      ss.remove_prefix(c + 1);
    }
    td.addr = u32v("addr", need(kv, ".tensor", "addr"));
    p_.tensors.push_back(std::move(td));
    pl_.tensors.push_back(line_);
  }

  void queue(std::string_view name) {
    int s = cfg_.slice_index(name);
    uint32_t q = 0;
    if (s < 0) {
      const size_t dot = name.rfind('.');
      if (dot == std::string_view::npos) s = slice_by_name(name);
      else {
        s = slice_by_name(name.substr(0, dot));
        q = u32v("queue index", name.substr(dot + 1));
      }
    }
    const SliceSpec& sp = cfg_.slices[static_cast<size_t>(s)];
    if (q >= sp.queues) fail(fmt::format("unknown queue {}.{}: slice {} has queues 0..{}", sp.name, q, sp.name, sp.queues - 1));
    const uint32_t chip = cur_chip_ < 0 ? 0 : static_cast<uint32_t>(cur_chip_);
    if (cur_chip_ < 0) cur_chip_ = 0;
    if (!chip_named_) chip_named_ = line_;
    auto& chip_queues = queues_[chip];
    auto [it, fresh] = chip_queues.emplace(std::make_pair(static_cast<uint16_t>(s), static_cast<uint8_t>(q)), QueueBuild{});
    if (!fresh)
      fail(fmt::format("duplicate .queue {} on chip {} (first at line {}); each queue's code must be in one block",
                       detail::queue_label(cfg_, static_cast<uint16_t>(s), static_cast<uint8_t>(q)), chip, it->second.decl_line));
    it->second.qc.slice = static_cast<uint16_t>(s);
    it->second.qc.queue = static_cast<uint8_t>(q);
    it->second.decl_line = line_;
    cur_queue_ = &it->second;
    mode_ = Mode::Queue;
  }

  // ---- block bodies ----
  void end_block() {
    if (mode_ == Mode::Map && p_.maps.back().size() != cfg_.vector_bytes())
      fail_at(pl_.maps.back(), fmt::format(".map {} has {} values; a map needs exactly {} (one per lane)", p_.maps.size() - 1,
                                           p_.maps.back().size(), cfg_.vector_bytes()));
    mode_ = Mode::None;
    cur_queue_ = nullptr;
  }

  void map_value(std::string_view tok) {
    if (p_.maps.back().size() >= cfg_.vector_bytes())
      fail(fmt::format(".map {}: more than {} values (one per lane)", p_.maps.size() - 1, cfg_.vector_bytes()));
    p_.maps.back().push_back(static_cast<uint16_t>(u32v("map entry", tok, 0xFFFF)));
  }

  void body_line(std::string_view l) {
    switch (mode_) {
      case Mode::Map:
        for (std::string_view tok : split_ws(l)) map_value(tok);
        return;
      case Mode::Data: data_line(l); return;
      case Mode::Queue: instruction(l); return;
      case Mode::None: break;
    }
    fail(fmt::format("'{}' is outside any block: instructions go after a .queue directive (and .chip), vector data after .data, "
                     "map values after .map",
                     printable(l)));
  }

  void data_line(std::string_view l) {
    const size_t want = 2 * static_cast<size_t>(cfg_.vector_bytes());
    auto hexval = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    for (size_t i = 0; i < l.size(); ++i)
      if (hexval(l[i]) < 0)
        fail(fmt::format(".data: expected hex digits, found '{}' at column {}; each line is one vector of {} hex digits", l[i],
                         i + 1, want));
    if (l.size() != want)
      fail(fmt::format(".data: line has {} hex digits; a vector needs exactly {} (2 per lane, {} lanes)", l.size(), want,
                       cfg_.vector_bytes()));
    std::vector<uint8_t>& bytes = p_.data.back().bytes;
    add_sram_bytes(p_.data.back().chip, p_.data.back().slice, cfg_.vector_bytes());
    for (size_t i = 0; i < l.size(); i += 2) bytes.push_back(static_cast<uint8_t>(hexval(l[i]) * 16 + hexval(l[i + 1])));
  }

  // ---- instructions ----
  void instruction(std::string_view l) {
    size_t e = 0;
    while (e < l.size() && is_word(l[e])) ++e;
    const std::string_view mn = l.substr(0, e);
    if (mn.empty()) fail(fmt::format("expected an instruction mnemonic, got '{}'", l));
    const auto op = opcode_from_mnemonic(mn);
    if (!op) fail(unknown_mnemonic(mn));
    const OpInfo& oi = op_info(*op);
    Instr in = make_instr(*op);
    parse_operands(oi, l.substr(e), in);
    const std::string err = validate_fields(in);
    if (!err.empty()) fail(err);
    cur_queue_->qc.code.push_back(in);
    cur_queue_->lines.push_back(line_);
  }

  std::string unknown_mnemonic(std::string_view mn) const {
    std::vector<std::string_view> names;
    for (int k = 0; k < kNumOpcodes; ++k) names.push_back(op_info(static_cast<Opcode>(k)).mnemonic);
    const std::string list = close_matches(mn, names);
    if (list.empty()) return fmt::format("unknown mnemonic '{}' (lpusim isa lists the instruction set)", mn);
    return fmt::format("unknown mnemonic '{}'; close matches: {}", mn, list);
  }

  // Matches `rest` (the text after the mnemonic) against the opcode's syntax template: a space in
  // the template matches any run of blanks (or none), a ',' may be preceded by blanks, other
  // literal text must match exactly, and each {field} placeholder reads one operand.
  void parse_operands(const OpInfo& oi, std::string_view rest, Instr& in) const {
    const std::string_view syn = oi.syntax;
    size_t p = 0;
    auto skip = [&] {
      while (p < rest.size() && is_space(rest[p])) ++p;
    };
    auto found = [&]() -> std::string {
      const std::string_view left = trim(rest.substr(p));
      return left.empty() ? std::string("end of line") : fmt::format("'{}'", left);
    };
    if (!syn.empty() && syn[0] != '.') skip();
    for (size_t i = 0; i < syn.size(); ++i) {
      const char c = syn[i];
      if (is_space(c)) {
        skip();
        continue;
      }
      if (c != '{') {
        if (c == ',') skip();
        if (p >= rest.size() || rest[p] != c) fail(fmt::format("{}: expected '{}' but found {} ({})", oi.mnemonic, c, found(), usage(oi)));
        ++p;
        continue;
      }
      const size_t j = syn.find('}', i);
      const std::string_view fname = syn.substr(i + 1, j - i - 1);
      i = j;
      Field f = Field::None;
      for (int k = 0; k < kNumFields; ++k)
        if (field_name(static_cast<Field>(k)) == fname) f = static_cast<Field>(k);
      if (f == Field::AccFlag) {
        if (p < rest.size() && rest[p] == '+') {
          in.set(f, 1);
          ++p;
        }
        continue;
      }
      // One operand token: word characters, plus '-' for simm, and '.', '+', '-' inside fimm.
      const size_t b = p;
      if ((f == Field::SImm || f == Field::FImm) && p < rest.size() && rest[p] == '-') ++p;
      while (p < rest.size() &&
             (is_word(rest[p]) || (f == Field::FImm && (rest[p] == '.' || ((rest[p] == '+' || rest[p] == '-') && p > b &&
                                                                             (rest[p - 1] == 'e' || rest[p - 1] == 'E'))))))
        ++p;
      const std::string_view tok = rest.substr(b, p - b);
      if (tok.empty()) {
        p = b;
        fail(fmt::format("{}: expected {} but found {} ({})", oi.mnemonic, field_expectation(f), found(), usage(oi)));
      }
      in.set(f, operand(oi, f, tok));
    }
    skip();
    if (p < rest.size()) fail(fmt::format("{}: unexpected text '{}' after the operands ({})", oi.mnemonic, rest.substr(p), usage(oi)));
  }

  // "syntax: add.{dtype} {src_a}, {src_b} -> {dst}", quoted in operand errors.
  static std::string usage(const OpInfo& oi) {
    const std::string_view syn = oi.syntax;
    return fmt::format("syntax: {}{}{}", oi.mnemonic, (!syn.empty() && syn[0] != '.') ? " " : "", syn);
  }

  static std::string field_expectation(Field f) {
    switch (f) {
      case Field::DType:
      case Field::DType2: return fmt::format("a type (i8, i16, i32, f16, f32) for {}", field_name(f));
      case Field::Dst:
      case Field::SrcA:
      case Field::SrcB:
      case Field::SrcC: return fmt::format("a stream (E0..E31 or W0..W31) for {}", field_name(f));
      case Field::FImm: return "a float literal (or 0x + 8 hex digits of raw bits) for fimm";
      default: return fmt::format("a number for {}", field_name(f));
    }
  }

  uint32_t operand(const OpInfo& oi, Field f, std::string_view tok) const {
    switch (f) {
      case Field::DType:
      case Field::DType2: {
        auto dt = dtype_from_name(tok);
        if (!dt) fail(fmt::format("{}: expected {}, got '{}' ({})", oi.mnemonic, field_expectation(f), tok, usage(oi)));
        return static_cast<uint32_t>(*dt);
      }
      case Field::Dst:
      case Field::SrcA:
      case Field::SrcB:
      case Field::SrcC: {
        auto s = stream_from_name(tok);
        if (!s) fail(fmt::format("{}: expected {}, got '{}' ({})", oi.mnemonic, field_expectation(f), tok, usage(oi)));
        return s->encode();
      }
      case Field::SImm:
        return static_cast<uint32_t>(static_cast<uint16_t>(static_cast<int16_t>(value("simm", tok, -32768, 32767))));
      case Field::FImm: return fimm(tok, oi);
      case Field::Addr:
      case Field::Imm:
      case Field::Count:
      case Field::Stride:
      case Field::Plane:
      case Field::Row:
      case Field::Link: {
        const auto lay = format_info(oi.format).find(f);
        const uint32_t hi = lay->width >= 32 ? 0xFFFFFFFFu : static_cast<uint32_t>((uint64_t{1} << lay->width) - 1);
        return u32v(field_name(f), tok, hi);
      }
      case Field::AccFlag:
      case Field::None: break;
    }
    throw std::logic_error("assembler: field without a text form");
  }

  uint32_t fimm(std::string_view tok, const OpInfo& oi) const {
    if (tok.size() > 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X')) return u32v("fimm bits", tok);
    if (is_ident_start(tok[0]) && tok != "inf" && tok != "nan") {
      const int64_t v = value("fimm", tok, -(int64_t{1} << 24), int64_t{1} << 24);  // exactly representable
      const float fv = static_cast<float>(v);
      uint32_t bits;
      std::memcpy(&bits, &fv, sizeof bits);
      return bits;
    }
    const std::string s(tok);
    char* end = nullptr;
    errno = 0;
    const float fv = std::strtof(s.c_str(), &end);
    if (end != s.c_str() + s.size() || s == "nan" || s == "-nan" || s == "+nan")
      fail(fmt::format("{}: expected a float literal for fimm, got '{}' ({}; NaN is written as raw bits, e.g. 0x7fc00000)", oi.mnemonic,
                       tok, usage(oi)));
    if (errno == ERANGE && std::isinf(fv))
      fail(fmt::format("{}: fimm {} overflows fp32 (largest finite 3.4028235e+38; write inf for infinity)", oi.mnemonic, tok));
    uint32_t bits;
    std::memcpy(&bits, &fv, sizeof bits);
    return bits;
  }

  // ---- finish ----
  Program finish(SourceMap* map) {
    p_.chips.assign(p_.num_chips, ChipCode{});
    SourceMap sm;
    sm.file = src_;
    sm.lines.assign(p_.num_chips, {});
    for (auto& [chip, qs] : queues_) {
      if (chip >= p_.num_chips)
        fail_at(qs.begin()->second.decl_line, fmt::format("chip {} is out of range; .chips {} allows 0..{}", chip, p_.num_chips, p_.num_chips - 1));
      for (auto& [key, qb] : qs) {
        p_.chips[chip].queues.push_back(std::move(qb.qc));
        sm.lines[chip].push_back(std::move(qb.lines));
      }
    }
    pl_.instr = &sm;
    detail::validate_program_lines(p_, cfg_, src_, &pl_);
    if (map) *map = std::move(sm);
    return std::move(p_);
  }

  const std::string& src_;
  const ChipConfig& cfg_;
  std::vector<std::string_view> lines_;
  uint32_t line_ = 0;
  std::map<std::string, int64_t> syms_;
  std::map<std::string, uint32_t> sym_line_;
  Program p_;
  detail::ProgramLines pl_;
  uint32_t seen_pred_ = 0;
  Mode mode_ = Mode::None;
  int cur_chip_ = -1;
  uint32_t chip_named_ = 0;  // first line that named a chip (.chip, .queue, chip=); .chips must precede it
  std::map<std::pair<uint32_t, uint16_t>, uint64_t> sram_bytes_;
  QueueBuild* cur_queue_ = nullptr;
  std::map<uint32_t, std::map<std::pair<uint16_t, uint8_t>, QueueBuild>> queues_;
};

}  // namespace

Program assemble(const std::string& text, const std::string& source_name, const ChipConfig& cfg, SourceMap* map) {
  return Assembler(text, source_name, cfg).run(map);
}

}  // namespace lpu
