// Binary .lpu program files (serialize / deserialize / read / write) and validate_program.
// Byte layout: docs/program-format.md. Every reader path is bounds-checked and throws InputError.
#include "isa/program_io.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "isa/asm_internal.h"
#include "isa/crc32.h"

namespace lpu {

namespace {

constexpr char kMagic[4] = {'L', 'P', 'U', 'P'};
constexpr size_t kHeaderBytes = 16;   // magic, version, payload length
constexpr size_t kTrailerBytes = 4;   // CRC-32

// ---- writing ---------------------------------------------------------------------------------
class Writer {
 public:
  std::vector<uint8_t> out;
  void u8(uint8_t v) { out.push_back(v); }
  void u16(uint16_t v) { le(v, 2); }
  void u32(uint32_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void i64(int64_t v) { le(static_cast<uint64_t>(v), 8); }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
  }
  void count(size_t n, const char* what) {
    if (n > 0xFFFFFFFFu) throw std::length_error(fmt::format("serialize_program: {} count {} exceeds 2^32-1", what, n));
    u32(static_cast<uint32_t>(n));
  }

 private:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
};

void write_payload(Writer& w, const Program& p) {
  w.str(p.config_name);
  w.u32(p.num_chips);
  w.count(p.chips.size(), "chip");
  for (size_t c = 0; c < p.chips.size(); ++c) {
    const ChipCode& chip = p.chips[c];
    w.count(chip.queues.size(), "queue");
    for (size_t q = 0; q < chip.queues.size(); ++q) {
      const QueueCode& qc = chip.queues[q];
      w.u16(qc.slice);
      w.u8(qc.queue);
      w.count(qc.code.size(), "instruction");
      for (size_t i = 0; i < qc.code.size(); ++i) {
        try {
          w.u64(encode(qc.code[i]));  // encode validates the fields
        } catch (const std::invalid_argument& e) {
          throw std::invalid_argument(fmt::format("serialize_program: chip {}, queue entry {} (slice {} queue {}), instruction {}: {}",
                                                  c, q, qc.slice, qc.queue, i, e.what()));
        }
      }
    }
  }
  w.count(p.data.size(), "data blob");
  for (const DataBlob& b : p.data) {
    w.u32(b.chip);
    w.u16(b.slice);
    w.u32(b.addr);
    w.count(b.bytes.size(), "data byte");
    w.out.insert(w.out.end(), b.bytes.begin(), b.bytes.end());
  }
  w.count(p.tensors.size(), "tensor");
  for (const TensorDesc& t : p.tensors) {
    w.str(t.name);
    w.u8(static_cast<uint8_t>(t.role));
    w.u8(static_cast<uint8_t>(t.dtype));
    w.count(t.shape.size(), "tensor dimension");
    for (int64_t d : t.shape) w.i64(d);
    w.u32(t.chip);
    w.count(t.slices.size(), "tensor slice");
    for (uint16_t s : t.slices) w.u16(s);
    w.u32(t.addr);
  }
  w.count(p.links.size(), "link");
  for (const LinkDesc& l : p.links) {
    w.u32(l.chip_a);
    w.u32(l.link_a);
    w.u32(l.chip_b);
    w.u32(l.link_b);
  }
  w.count(p.maps.size(), "map");
  for (const auto& m : p.maps) {
    w.count(m.size(), "map entry");
    for (uint16_t v : m) w.u16(v);
  }
  w.u64(p.predicted_cycles);
  w.u64(p.work_items);
  w.str(p.work_unit);
}

// ---- reading ---------------------------------------------------------------------------------
// Where the reader is, e.g. {"chip", 0, "queue entry", 3} = "chip 0 queue entry 3"; formatted only
// when an error is reported, so reading allocates nothing per field.
struct Ctx {
  const char* a = nullptr;
  size_t i = 0;
  const char* b = nullptr;
  size_t j = 0;
  std::string text() const {
    if (!a) return "";
    return b ? fmt::format("{} {} {} {} ", a, i, b, j) : fmt::format("{} {} ", a, i);
  }
};

// Bounds-checked little-endian reader over [pos, end) of a buffer; every failure names the file,
// the item being read (context + field) and its offset.
class Reader {
 public:
  Reader(const std::vector<uint8_t>& b, size_t pos, size_t end, const std::string& src)
      : b_(b), pos_(pos), end_(end), src_(src) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return end_ - pos_; }
  void at(Ctx c) { ctx_ = c; }
  std::string where() const { return ctx_.text(); }

  uint8_t u8(const char* what) { return static_cast<uint8_t>(le(1, what)); }
  uint16_t u16(const char* what) { return static_cast<uint16_t>(le(2, what)); }
  uint32_t u32(const char* what) { return static_cast<uint32_t>(le(4, what)); }
  uint64_t u64(const char* what) { return le(8, what); }

  // A count of items of at least `min_item_bytes` each: refused before any allocation when the
  // remaining payload cannot possibly hold that many.
  size_t count(const char* what, size_t min_item_bytes) {
    const size_t at = pos_;
    const uint64_t n = u32(what);
    if (n * min_item_bytes > remaining())
      throw InputError(fmt::format("{}: bad count: {}{} = {} at offset {} needs at least {} bytes but only {} remain in the payload",
                                   src_, where(), what, n, at, n * min_item_bytes, remaining()));
    return static_cast<size_t>(n);
  }

  // A u32 length and that many bytes; `length_what` names the length field.
  std::string str(const char* length_what) {
    const size_t n = count(length_what, 1);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }

  void bytes(std::vector<uint8_t>& out, size_t n) {  // n already checked by count()
    out.assign(b_.begin() + static_cast<std::ptrdiff_t>(pos_), b_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
  }

  [[noreturn]] void fail(size_t at, const std::string& what, const std::string& details) const {
    throw InputError(fmt::format("{}: {} at offset {}: {}", src_, what, at, details));
  }

 private:
  uint64_t le(size_t n, const char* what) {
    if (remaining() < n)
      throw InputError(fmt::format("{}: truncated payload: {}{} at offset {} needs {} bytes but only {} remain", src_, where(), what,
                                   pos_, n, remaining()));
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b_[pos_ + i]) << (8 * i);
    pos_ += n;
    return v;
  }

  const std::vector<uint8_t>& b_;
  size_t pos_, end_;
  const std::string& src_;
  Ctx ctx_;
};

uint64_t read_le(const std::vector<uint8_t>& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[at + static_cast<size_t>(i)]) << (8 * i);
  return v;
}

void read_payload(Reader& r, Program& p) {
  p.config_name = r.str("config name length");
  p.num_chips = r.u32("num_chips");
  const size_t nchips = r.count("chip count", 4);
  p.chips.resize(nchips);
  for (size_t c = 0; c < nchips; ++c) {
    r.at({"chip", c});
    const size_t nq = r.count("queue count", 7);
    p.chips[c].queues.resize(nq);
    for (size_t q = 0; q < nq; ++q) {
      QueueCode& qc = p.chips[c].queues[q];
      r.at({"chip", c, "queue entry", q});
      qc.slice = r.u16("slice");
      qc.queue = r.u8("queue");
      const size_t ni = r.count("instruction count", 8);
      qc.code.resize(ni);
      for (size_t i = 0; i < ni; ++i) {
        const size_t at = r.pos();
        const DecodeResult d = decode(r.u64("instruction word"));
        if (!d.ok) r.fail(at, fmt::format("undecodable instruction: {}instruction {}", r.where(), i), d.error);
        qc.code[i] = d.instr;
      }
    }
  }
  r.at({});
  const size_t nblobs = r.count("data blob count", 14);
  p.data.resize(nblobs);
  for (size_t k = 0; k < nblobs; ++k) {
    DataBlob& b = p.data[k];
    r.at({"data blob", k});
    b.chip = r.u32("chip");
    b.slice = r.u16("slice");
    b.addr = r.u32("addr");
    r.bytes(b.bytes, r.count("byte count", 1));
  }
  r.at({});
  const size_t ntensors = r.count("tensor count", 22);
  p.tensors.resize(ntensors);
  for (size_t k = 0; k < ntensors; ++k) {
    TensorDesc& t = p.tensors[k];
    r.at({"tensor", k});
    t.name = r.str("name length");
    size_t at = r.pos();
    const uint8_t role = r.u8("role");
    if (role > 1) r.fail(at, r.where() + "role", fmt::format("value {} is not 0 (input) or 1 (output)", role));
    t.role = static_cast<TensorRole>(role);
    at = r.pos();
    const uint8_t dt = r.u8("dtype");
    if (dt >= kNumDTypes)
      r.fail(at, r.where() + "dtype", fmt::format("code {} is not one of 0..{} (i8,i16,i32,f16,f32)", dt, kNumDTypes - 1));
    t.dtype = static_cast<DType>(dt);
    const size_t rank = r.count("rank", 8);
    t.shape.resize(rank);
    for (size_t d = 0; d < rank; ++d) t.shape[d] = static_cast<int64_t>(r.u64("dimension"));
    t.chip = r.u32("chip");
    const size_t ns = r.count("slice count", 2);
    t.slices.resize(ns);
    for (size_t s = 0; s < ns; ++s) t.slices[s] = r.u16("slice");
    t.addr = r.u32("addr");
  }
  r.at({});
  const size_t nlinks = r.count("link count", 16);
  p.links.resize(nlinks);
  for (size_t k = 0; k < nlinks; ++k) {
    r.at({"link", k});
    p.links[k].chip_a = r.u32("chip_a");
    p.links[k].link_a = r.u32("link_a");
    p.links[k].chip_b = r.u32("chip_b");
    p.links[k].link_b = r.u32("link_b");
  }
  r.at({});
  const size_t nmaps = r.count("map count", 4);
  p.maps.resize(nmaps);
  for (size_t k = 0; k < nmaps; ++k) {
    r.at({"map", k});
    const size_t n = r.count("entry count", 2);
    p.maps[k].resize(n);
    for (size_t e = 0; e < n; ++e) p.maps[k][e] = r.u16("entry");
  }
  r.at({});
  p.predicted_cycles = r.u64("predicted_cycles");
  p.work_items = r.u64("work_items");
  p.work_unit = r.str("work unit length");
}

}  // namespace

std::vector<uint8_t> serialize_program(const Program& p) {
  Writer w;
  // A capacity hint, not the exact size (undercounting only costs a regrow): the instructions and
  // the data blobs, which are tens of MB for an LLM piece, plus slack for the rest.
  size_t size = 4096;
  for (const ChipCode& chip : p.chips)
    for (const QueueCode& qc : chip.queues) size += 8 + 8 * qc.code.size();
  for (const DataBlob& b : p.data) size += 14 + b.bytes.size();
  w.out.reserve(size);
  w.out.insert(w.out.end(), kMagic, kMagic + 4);
  w.u32(kProgramVersion);
  w.u64(0);  // payload length, patched below
  write_payload(w, p);
  const uint64_t payload = w.out.size() - kHeaderBytes;
  for (int i = 0; i < 8; ++i) w.out[8 + static_cast<size_t>(i)] = static_cast<uint8_t>(payload >> (8 * i));
  w.u32(crc32(w.out.data(), w.out.size()));
  return std::move(w.out);
}

Program deserialize_program(const std::vector<uint8_t>& b, const std::string& src) {
  const size_t n = b.size();
  if (n == 0) throw InputError(fmt::format("{}: empty file: expected an lpusim program starting with magic \"LPUP\"", src));
  const size_t nm = std::min<size_t>(n, 4);
  if (std::memcmp(b.data(), kMagic, nm) != 0) {
    std::string got;
    for (size_t i = 0; i < nm; ++i) got += fmt::format("{:02x}", b[i]);
    throw InputError(fmt::format("{}: wrong magic: first bytes are 0x{}, an lpusim program starts with \"LPUP\" (0x4c505550)", src, got));
  }
  if (n < kHeaderBytes + kTrailerBytes)
    throw InputError(fmt::format("{}: truncated: file is {} bytes, shorter than the {}-byte header and checksum", src, n,
                                 kHeaderBytes + kTrailerBytes));
  const uint32_t version = static_cast<uint32_t>(read_le(b, 4, 4));
  if (version != kProgramVersion)
    throw InputError(fmt::format("{}: wrong version: file has format version {}, this lpusim reads version {}", src, version,
                                 kProgramVersion));
  const uint64_t payload = read_le(b, 8, 8);
  const size_t room = n - kHeaderBytes - kTrailerBytes;
  if (payload > room)
    throw InputError(fmt::format("{}: truncated: header declares a {}-byte payload but the file has room for only {} ({} bytes in all)",
                                 src, payload, room, n));
  if (payload < room)
    throw InputError(fmt::format("{}: trailing bytes: header declares a {}-byte payload, file is {} bytes longer than that", src,
                                 payload, room - payload));
  const uint32_t stored = static_cast<uint32_t>(read_le(b, n - 4, 4));
  const uint32_t computed = crc32(b.data(), n - 4);
  if (stored != computed)
    throw InputError(fmt::format("{}: bad checksum: stored CRC-32 0x{:08x}, computed 0x{:08x} (file is damaged)", src, stored,
                                 computed));
  Program p;
  Reader r(b, kHeaderBytes, n - kTrailerBytes, src);
  read_payload(r, p);
  if (r.remaining() != 0)
    throw InputError(fmt::format("{}: payload has {} unread bytes at offset {} after the last field", src, r.remaining(), r.pos()));
  return p;
}

void write_program_file(const Program& p, const std::string& path) {
  const std::vector<uint8_t> bytes = serialize_program(p);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw InputError(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno)));
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) throw InputError(fmt::format("{}: write failed ({} bytes)", path, bytes.size()));
}

Program read_program_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw InputError(fmt::format("{}: is a directory, not a program file", path));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(fmt::format("{}: cannot open for reading: {}", path, std::strerror(errno)));
  std::vector<uint8_t> bytes;
  try {
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  } catch (const std::exception& e) {
    throw InputError(fmt::format("{}: read failed: {}", path, e.what()));
  }
  if (f.bad()) throw InputError(fmt::format("{}: read failed", path));
  return deserialize_program(bytes, path);
}

}  // namespace lpu
