// Embedding lookup into a table bigger than one MEM slice (docs/compiler.md "Other forms"): the
// table is cut by row ranges (io_binding.h: lookup_part_rows), every part is gathered for every
// token with the host-written per-part offsets (ids outside a part read its all-zero row), and the
// partial rows are summed as integers on the VXM, which copies the one non-zero part bit for bit.
// Each graph is compiled, simulated in timing and functional mode (both must take exactly the
// predicted cycles) and compared with the table rows exactly.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "compiler/compile.h"
#include "compiler/ir/dtype.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lowering.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/ir_build.h"
#include "tests/support/lookup_run.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::LookupRun;

namespace {

ir::Graph lookup_graph(int64_t V, int64_t D, int64_t T, const std::vector<float>& table) {
  ir::Graph g;
  g.name = "embed_split";
  const ir::TensorId ids = g.add_input("ids", ir::DType::I64, {T});
  const ir::TensorId w = g.add_constant_floats("table", {V, D}, table);
  const ir::TensorId y = g.add_tensor("y", ir::DType::F32, {T, D});
  g.add_op(make_op(ir::OpKind::Gather, "embed", {w, ids}, {y}, {{"axis", int64_t{0}}}));
  g.mark_output(y);
  return g;
}

// Table values: f16-representable, distinct per row (row r, column k), some -0 (a bit pattern an
// f16 add would turn into +0: the integer sum must keep it).
std::vector<float> make_table(int64_t V, int64_t D, uint32_t seed) {
  std::vector<float> t(static_cast<size_t>(V * D));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(-2048, 2048);
  for (float& v : t) v = static_cast<float>(u(rng)) / 64.f;
  for (size_t k = 0; k < t.size(); k += 97) t[k] = -0.f;
  return t;
}

// Ids: first and last row of every part (both signs of indexing for the table's ends), repeats,
// then random ids, T in all.
std::vector<int64_t> make_ids(int64_t V, int64_t part_rows, int64_t T, uint32_t seed) {
  std::vector<int64_t> ids;
  for (int64_t r0 = 0; r0 < V; r0 += part_rows) {
    ids.push_back(r0);
    ids.push_back(std::min(V, r0 + part_rows) - 1);
  }
  ids.push_back(-1);
  ids.push_back(-V);
  ids.push_back(ids[1]);
  ids.push_back(ids[1]);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, V - 1);
  while (static_cast<int64_t>(ids.size()) < T) ids.push_back(pick(rng));
  REQUIRE(static_cast<int64_t>(ids.size()) == T);
  return ids;
}

// table[ids] row by row (negative ids from the end), compared bit for bit (-0 included).
void check_rows(const std::vector<float>& y, const std::vector<float>& table, int64_t V, int64_t D,
                const std::vector<int64_t>& ids) {
  REQUIRE(y.size() == ids.size() * static_cast<size_t>(D));
  size_t bad = 0;
  for (size_t k = 0; k < ids.size(); ++k) {
    const int64_t r = ids[k] < 0 ? ids[k] + V : ids[k];
    bad += std::memcmp(y.data() + k * static_cast<size_t>(D), table.data() + r * D, static_cast<size_t>(D) * 4) != 0;
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("embedding split: part layout follows the slice size") {
  // tsp-v1: 8192 addresses per slice. One part while V * vpr fits, else parts of at most
  // 8192 / vpr - 1 rows (one zero row each), balanced.
  CHECK(lookup_part_rows(8192, 320, 320, 8192) == 8192);
  CHECK(lookup_part_rows(2730, 700, 320, 8192) == 2730);  // 8190 addresses: fits
  CHECK(lookup_part_rows(2731, 700, 320, 8192) == 1366);  // 2 parts of 1366 + zero row
  CHECK(lookup_part_rows(6000, 700, 320, 8192) == 2000);  // cap 2729: 3 parts
  CHECK(lookup_part_rows(30522, 768, 320, 8192) == 2544);  // BERT-base words: 12 parts, 7635 addresses each
  // A gather's offset is int16: parts never reach past 32768 addresses, even on bigger slices.
  CHECK(lookup_part_rows(20000, 320, 320, 65536) == 20000);
  CHECK(lookup_part_rows(40000, 320, 320, 65536) == 20000);
  CHECK_THROWS_WITH(lookup_part_rows(3, 320 * 5000, 320, 8192),
                    Catch::Contains("lookup table [3, 1600000]") && Catch::Contains("needs 10000 addresses") &&
                        Catch::Contains("holds 8192"));
  // Host offsets of a 3-part table [10, 320] (parts of 4, 4, 2 rows + a zero row each), part-major
  // rows p * ids + k: id 5 is row 1 of part 1, id 9 row 1 of part 2; other parts read their zero
  // rows (local rows 4, 4 and 2).
  const std::vector<uint8_t> b = lookup_index_bytes("ids", {5, 9}, 10, 320, 320, 4);
  REQUIRE(b.size() == 3 * 2 * 320 * 2);
  auto off = [&](size_t row, size_t lane) { return b[(row * 320 + lane) * 2] | b[(row * 320 + lane) * 2 + 1] << 8; };
  CHECK(off(0, 0) == 4);  // part 0: id 5, id 9
  CHECK(off(1, 0) == 4);
  CHECK(off(2, 0) == 1);  // part 1
  CHECK(off(2, 319) == 1);
  CHECK(off(3, 7) == 4);
  CHECK(off(4, 0) == 2);  // part 2
  CHECK(off(5, 0) == 1);
}

TEST_CASE("embedding split: a 3-part table on tsp-v1 (D = 700, 3 vectors a row) copies rows exactly") {
  // 6000 rows x 3 vectors = 18000 addresses > 8192: parts of 2000 rows (6003 addresses each).
  const int64_t V = 6000, D = 700, T = 24;
  auto cfg = default_chip_config();
  const int64_t pr = lookup_part_rows(V, D, cfg->vector_bytes(), cfg->sram_addresses);
  REQUIRE((V + pr - 1) / pr == 3);
  const std::vector<float> table = make_table(V, D, 3);
  const std::vector<int64_t> ids = make_ids(V, pr, T, 5);
  const LookupRun r = lpu::test::run_lookup(lookup_graph(V, D, T, table), *cfg, ids);
  check_rows(r.y, table, V, D, ids);
  // Per token and vector: 3 gathers per byte plane (f32 output: 4 planes) written as partials, and
  // the combine's write.
  CHECK(r.stats.writes == static_cast<uint64_t>(T * 3 * 4 * (3 + 1)));
}

TEST_CASE("embedding split: 4 parts on a small-slice chip, 150 ids (row blocks), f16 table feeding a Mul") {
  // A chip whose slices hold 512 vectors: a [1000, 330] table (2 vectors a row) needs 2000
  // addresses, cut into 4 parts of 250 rows (+ a zero row: 502 addresses). The ids and the lookup's result are stored as row
  // blocks (>= 128 rows); the lookup feeds another op, so the table is f16 and the combine adds i16.
  const int64_t V = 1000, D = 330, T = 150;
  auto cfg = std::make_shared<ChipConfig>(*default_chip_config());
  cfg->sram_addresses = 512;
  const int64_t pr = lookup_part_rows(V, D, cfg->vector_bytes(), cfg->sram_addresses);
  REQUIRE(pr == 250);
  const std::vector<float> table = make_table(V, D, 9);
  ir::Graph g;
  g.name = "embed_split_mul";
  const ir::TensorId ids = g.add_input("ids", ir::DType::I64, {T});
  const ir::TensorId w = g.add_constant_floats("table", {V, D}, table);
  const ir::TensorId e = g.add_tensor("e", ir::DType::F32, {T, D});
  g.add_op(make_op(ir::OpKind::Gather, "embed", {w, ids}, {e}, {{"axis", int64_t{0}}}));
  const ir::TensorId two = g.add_constant_floats("two", {1}, {2.f});
  const ir::TensorId y = g.add_tensor("y", ir::DType::F32, {T, D});
  g.add_op(make_op(ir::OpKind::Mul, "scale", {e, two}, {y}));
  g.mark_output(y);
  const std::vector<int64_t> a = make_ids(V, pr, T, 13);
  const LookupRun ra = lpu::test::run_lookup(g, *cfg, a);
  std::vector<float> doubled = table;
  for (float& v : doubled) v *= 2.f;  // exact: f16 values within range, -0 stays -0
  check_rows(ra.y, doubled, V, D, a);
  // The schedule is static: other ids take the same cycles.
  std::vector<int64_t> b(a.rbegin(), a.rend());
  const LookupRun rb = lpu::test::run_lookup(g, *cfg, b);
  CHECK(rb.cycles == ra.cycles);
  check_rows(rb.y, doubled, V, D, b);
}

TEST_CASE("embedding split: out-of-range ids are refused with the input, value and range") {
  CHECK_THROWS_WITH(lookup_index_bytes("input_ids", {0, 6000}, 6000, 700, 320, 2000),
                    Catch::Contains("input 'input_ids': index 6000 at position 1") &&
                        Catch::Contains("allowed -6000..5999"));
  CHECK_THROWS_WITH(lookup_index_bytes("input_ids", {5, -6001}, 6000, 700, 320, 2000),
                    Catch::Contains("index -6001 at position 1"));
  // A program compiled for a split table takes only the split layout of the ids.
  auto cfg = std::make_shared<ChipConfig>(*default_chip_config());
  cfg->sram_addresses = 512;
  const std::vector<float> table = make_table(1000, 330, 1);
  const CompileResult cr = compile(lookup_graph(1000, 330, 4, table), *cfg, CompileOptions{});
  std::map<std::string, std::vector<uint8_t>> inputs;
  CHECK_THROWS_WITH(bind_input(cr.program, "ids", lookup_index_bytes("ids", {1, 2, 3, 4}, 1000, 330, 320), &inputs),
                    Catch::Contains("input 'ids': 2560 bytes given, the program's tensor holds 10240 bytes"));
}
