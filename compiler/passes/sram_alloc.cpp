// SRAM allocator: common-address first fit over groups of MEM slices, rotating over hemispheres.
#include "compiler/passes/sram_alloc.h"

#include <algorithm>
#include <fmt/format.h>

namespace lpu::compiler {

SramAllocator::SramAllocator(const ChipConfig& cfg) : cfg_(cfg), sides_(2), holes_(cfg.slices.size()), cursor_(2, 0) {
  int vxm = -1;
  for (const SliceSpec& s : cfg.slices)
    if (s.kind == SliceKind::VXM) vxm = static_cast<int>(s.position);
  // West side listed nearest-the-VXM first, then east side nearest first.
  for (int i : cfg.slices_of(SliceKind::MEM)) {
    const bool west = static_cast<int>(cfg.slices[static_cast<size_t>(i)].position) < vxm;
    sides_[west ? 0 : 1].push_back(i);
    holes_[static_cast<size_t>(i)].push_back({0, cfg.sram_addresses, 0});
  }
  std::reverse(sides_[0].begin(), sides_[0].end());
  if (sides_[0].empty()) sides_.erase(sides_.begin());
  if (!sides_.empty() && sides_.back().empty()) sides_.pop_back();
  cursor_.assign(sides_.size(), 0);
}

bool SramAllocator::try_group(const std::vector<int>& group, uint32_t vectors, uint32_t* addr, uint64_t* avail,
                              uint64_t ready_by) const {
  bool found = false;
  // Candidate addresses: every hole start in the group; the lowest one all slices cover wins.
  std::vector<uint32_t> cands;
  for (int s : group)
    for (const Hole& h : holes_[static_cast<size_t>(s)]) cands.push_back(h.addr);
  std::sort(cands.begin(), cands.end());
  for (uint32_t a : cands) {
    uint64_t av = 0;
    bool ok = true;
    for (int s : group) {
      bool covered = false;
      for (const Hole& h : holes_[static_cast<size_t>(s)]) {
        if (h.addr <= a && uint64_t{a} + vectors <= uint64_t{h.addr} + h.len) {
          covered = true;
          av = std::max(av, h.avail);
          break;
        }
      }
      if (!covered) { ok = false; break; }
    }
    if (ok && (!found || av < *avail)) {
      *addr = a;
      *avail = av;
      found = true;
      if (av <= ready_by) return true;
    }
  }
  return found;
}

void SramAllocator::carve(int slice, uint32_t addr, uint32_t len) {
  auto& hs = holes_[static_cast<size_t>(slice)];
  for (size_t i = 0; i < hs.size(); ++i) {
    Hole h = hs[i];
    if (h.addr <= addr && addr + len <= h.addr + h.len) {
      hs.erase(hs.begin() + static_cast<long>(i));
      std::vector<Hole> add;
      if (addr > h.addr) add.push_back({h.addr, addr - h.addr, h.avail});
      if (addr + len < h.addr + h.len) add.push_back({addr + len, h.addr + h.len - addr - len, h.avail});
      hs.insert(hs.begin() + static_cast<long>(i), add.begin(), add.end());
      return;
    }
  }
  throw std::logic_error("SramAllocator::carve: range not free");
}

int SramAllocator::alloc(const std::string& name, uint32_t planes, uint32_t vectors,
                         std::vector<uint16_t>* slices, uint32_t* addr, uint64_t* not_before) {
  if (vectors == 0) vectors = 1;
  // The first group (rotating from each side's cursor, sides alternating) with a range free by the
  // hint; if none, the group whose range is free first (the first of those on a tie). Without a
  // hint (UINT64_MAX) that is the first group that fits, at its lowest address.
  const uint64_t ready_by = hint_;
  bool found = false;
  size_t best_side = 0, best_shift = 0;
  uint32_t best_a = 0;
  uint64_t best_av = 0;
  for (size_t attempt = 0; attempt < sides_.size() && !(found && best_av <= ready_by); ++attempt) {
    const size_t side = (next_side_ + attempt) % sides_.size();
    const auto& list = sides_[side];
    if (list.size() < planes) continue;
    for (size_t shift = 0; shift < list.size(); ++shift) {
      std::vector<int> group;
      for (uint32_t b = 0; b < planes; ++b) group.push_back(list[(cursor_[side] + shift + b) % list.size()]);
      uint32_t a = 0;
      uint64_t av = 0;
      if (!try_group(group, vectors, &a, &av, ready_by)) continue;
      if (!found || av < best_av) {
        found = true;
        best_side = side;
        best_shift = shift;
        best_a = a;
        best_av = av;
      }
      if (av <= ready_by) break;
    }
  }
  if (found) {
    const auto& list = sides_[best_side];
    std::vector<int> group;
    for (uint32_t b = 0; b < planes; ++b) group.push_back(list[(cursor_[best_side] + best_shift + b) % list.size()]);
    for (int s : group) carve(s, best_a, vectors);
    cursor_[best_side] = static_cast<uint32_t>((cursor_[best_side] + best_shift + planes) % list.size());
    next_side_ = static_cast<uint32_t>((best_side + 1) % sides_.size());
    slices->assign(group.begin(), group.end());
    *addr = best_a;
    *not_before = best_av;
    entries_.push_back({name, *slices, best_a, vectors, best_av, false});
    return static_cast<int>(entries_.size() - 1);
  }
  // Name the largest live allocations so the user knows what takes the space.
  std::vector<const MemoryMapEntry*> live;
  for (const auto& e : entries_)
    if (!e.freed) live.push_back(&e);
  std::stable_sort(live.begin(), live.end(), [](const MemoryMapEntry* a, const MemoryMapEntry* b) {
    return uint64_t{a->vectors} * a->slices.size() > uint64_t{b->vectors} * b->slices.size();
  });
  std::string big;
  for (size_t i = 0; i < live.size() && i < 3; ++i)
    big += fmt::format("{}'{}' ({} B)", i ? ", " : "", live[i]->name,
                       uint64_t{live[i]->vectors} * live[i]->slices.size() * cfg_.vector_bytes());
  throw InputError(fmt::format(
      "chip '{}': tensor '{}' ({} B: {} vectors in each of {} slices) does not fit in SRAM: {} B free in "
      "total, at most {} vectors per slice ({} addresses); largest live tensors: {}",
      cfg_.name, name, uint64_t{vectors} * planes * cfg_.vector_bytes(), vectors, planes,
      free_vectors() * cfg_.vector_bytes(), cfg_.sram_addresses, cfg_.sram_addresses, big.empty() ? "none" : big));
}

void SramAllocator::rollback(const Mark& m) {
  if (m.entries > entries_.size() || m.holes.size() != holes_.size() || m.cursor.size() != cursor_.size())
    throw std::logic_error("SramAllocator::rollback: a mark of another allocator or state");
  holes_ = m.holes;
  cursor_ = m.cursor;
  next_side_ = m.next_side;
  entries_.resize(m.entries);
}

void SramAllocator::release(int id, uint64_t last_use) {
  MemoryMapEntry& e = entries_.at(static_cast<size_t>(id));
  if (e.freed) return;
  e.freed = true;
  for (uint16_t s : e.slices) {
    auto& hs = holes_[s];
    hs.push_back({e.addr, e.vectors, last_use + 1});
    std::sort(hs.begin(), hs.end(), [](const Hole& a, const Hole& b) { return a.addr < b.addr; });
    // Merge neighbours; the merged hole is available once both parts are.
    std::vector<Hole> merged;
    for (const Hole& h : hs) {
      if (!merged.empty() && merged.back().addr + merged.back().len == h.addr) {
        merged.back().len += h.len;
        merged.back().avail = std::max(merged.back().avail, h.avail);
      } else {
        merged.push_back(h);
      }
    }
    hs = std::move(merged);
  }
}

uint64_t SramAllocator::free_vectors() const {
  uint64_t n = 0;
  for (const auto& hs : holes_)
    for (const Hole& h : hs) n += h.len;
  return n;
}

std::string SramAllocator::format_map() const {
  std::string out = fmt::format("# SRAM map of chip '{}': {} MEM slices x {} addresses x {} B\n", cfg_.name,
                                cfg_.slices_of(SliceKind::MEM).size(), cfg_.sram_addresses, cfg_.vector_bytes());
  out += "# name  slices(plane0..)  addr  vectors/plane  bytes  free-from-cycle  status\n";
  for (const auto& e : entries_) {
    std::string sl;
    for (size_t i = 0; i < e.slices.size(); ++i)
      sl += (i ? "," : "") + cfg_.slices[e.slices[i]].name;
    out += fmt::format("{}  {}  {}..{}  {}  {}  {}  {}\n", e.name, sl, e.addr, e.addr + e.vectors - 1, e.vectors,
                       uint64_t{e.vectors} * e.slices.size() * cfg_.vector_bytes(), e.from_cycle,
                       e.freed ? "reused-after" : "live");
  }
  return out;
}

}  // namespace lpu::compiler
