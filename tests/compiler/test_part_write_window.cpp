// Each row block ("part") of a placed tensor carries its own first write cycle
// (TensorPart::write_not_before): the SRAM allocator may give one part the space of a tensor that
// is still read until a late cycle and another part space that is free from the start, and the
// kernels let a row's write wait only for its own part's space. A tensor-wide bound made every row
// wait for the latest part (BERT-base's P.V normalize waited ~800 cycles for one part's space).
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "compiler/passes/sram_alloc.h"
#include "compiler/passes/tiling.h"
#include "isa/chip_config.h"

using namespace lpu;
using namespace lpu::compiler;

TEST_CASE("tiling: each part of a tensor may be written from its own space's free cycle", "[compiler][tiling]") {
  auto cfg = default_chip_config();
  SramAllocator a(*cfg);
  // Addresses [0, 64) of every MEM slice taken; every other one freed after a read at cycle 1000.
  const std::vector<int> mem = cfg->slices_of(SliceKind::MEM);
  std::vector<uint16_t> sl;
  uint32_t addr = 0;
  uint64_t nb = 0;
  std::vector<char> freed(cfg->slices.size(), 0);
  for (size_t i = 0; i < mem.size(); ++i) {
    const int id = a.alloc("old" + std::to_string(i), 1, 64, &sl, &addr, &nb);
    REQUIRE(addr == 0);
    if (sl[0] % 2 == 0) {
      a.release(id, 1000);
      freed[sl[0]] = 1;
    }
  }
  // An i8 [512, 320] tensor: row blocks of 64 rows (64 vectors, one slice each).
  TilingOptions opt;
  const PlacedTensor t = place_tensor(a, "new", DType::I8, {512, 320}, opt, nullptr);
  REQUIRE(t.parts.size() == 8u);
  size_t late = 0, early = 0;
  uint64_t latest = 0;
  for (const TensorPart& p : t.parts) {
    REQUIRE(p.slices.size() == 1u);
    if (p.addr == 0) {  // a freed old tensor's space: writes land after its last read
      CHECK(freed[p.slices[0]]);
      CHECK(p.write_not_before == 1001u);
      ++late;
    } else {  // past the live old tensor: free from the start
      CHECK(p.addr == 64u);
      CHECK(p.write_not_before == 0u);
      ++early;
    }
    latest = std::max(latest, p.write_not_before);
    for (int64_t r = p.row0; r < p.row0 + p.rows; ++r) CHECK(t.write_not_before_row(r) == p.write_not_before);
  }
  CHECK(late > 0);
  CHECK(early > 0);
  CHECK(t.write_not_before == latest);
}

TEST_CASE("sram allocator: with a write hint it takes space free by then, else the space free first",
          "[compiler][tiling]") {
  auto cfg = default_chip_config();
  const std::vector<int> mem = cfg->slices_of(SliceKind::MEM);
  std::vector<uint16_t> sl;
  uint32_t addr = 0;
  uint64_t nb = 0;
  {  // [0, 64) of every slice: held by reads until 999 (every other slice) or live. A hint of 0
     // skips the held ranges for space past the live tensors, free from the start.
    SramAllocator a(*cfg);
    for (size_t i = 0; i < mem.size(); ++i) {
      const int id = a.alloc("old" + std::to_string(i), 1, 64, &sl, &addr, &nb);
      if (i % 2 == 0) a.release(id, 999);
    }
    a.set_write_hint(0);
    for (int k = 0; k < 8; ++k) {
      a.alloc("new" + std::to_string(k), 1, 64, &sl, &addr, &nb);
      CHECK(nb == 0u);
      CHECK(addr == 64u);
    }
    a.set_write_hint(UINT64_MAX);  // no hint: the lowest fitting address, held or not
    a.alloc("any", 1, 64, &sl, &addr, &nb);
    CHECK(addr == 0u);
    CHECK(nb == 1000u);
  }
  {  // Every slice full; two freed, read until 499 and 299: nothing is free by a hint of 100, so
     // the range free first is taken.
    SramAllocator a(*cfg);
    std::vector<int> ids;
    for (size_t i = 0; i < mem.size(); ++i)
      ids.push_back(a.alloc("full" + std::to_string(i), 1, cfg->sram_addresses, &sl, &addr, &nb));
    a.release(ids[3], 499);
    a.release(ids[7], 299);
    a.set_write_hint(100);
    a.alloc("new", 1, 64, &sl, &addr, &nb);
    CHECK(nb == 300u);
  }
}
