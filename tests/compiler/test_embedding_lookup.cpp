// Embedding lookup: Gather of a constant [V, D] table with runtime indices (a graph input), run on
// the chip by MEM `gather` instructions whose lane offsets the host writes (lookup_index_bytes,
// docs/compiler.md "Other forms"). Each graph is compiled for tsp-v1 and simulated in timing and
// functional mode (both must take exactly the predicted cycles); a table row is copied exactly as
// the fp16 model holds it (values rounded to f16, stored f32 for a graph output).
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "compiler/compile.h"
#include "compiler/ir/dtype.h"
#include "compiler/io_binding.h"
#include "compiler/passes/lowering.h"
#include "isa/chip_config.h"
#include "sim/simulator.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"
#include "tests/support/lookup_run.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::LookupRun;
using lpu::test::random_f16;

namespace {

// tsp-v1 (tests/support/lookup_run.h).
LookupRun run_lookup(const ir::Graph& g, const std::vector<int64_t>& ids) {
  return lpu::test::run_lookup(g, *default_chip_config(), ids);
}

// table[ids] row by row (negative ids from the end).
std::vector<float> expected(const std::vector<float>& table, int64_t V, int64_t D, const std::vector<int64_t>& ids) {
  std::vector<float> want;
  for (int64_t id : ids) {
    const int64_t r = id < 0 ? id + V : id;
    want.insert(want.end(), table.begin() + r * D, table.begin() + (r + 1) * D);
  }
  return want;
}

ir::Graph lookup_graph(int64_t V, int64_t D, const ir::Shape& ids_shape, const std::vector<float>& table,
                       ir::DType ids_type = ir::DType::I64) {
  ir::Graph g;
  g.name = "embed";
  const ir::TensorId ids = g.add_input("ids", ids_type, ids_shape);
  const ir::TensorId w = g.add_constant_floats("table", {V, D}, table);
  ir::Shape ys = ids_shape;
  ys.push_back(D);
  const ir::TensorId y = g.add_tensor("y", ir::DType::F32, ys);
  g.add_op(make_op(ir::OpKind::Gather, "embed", {w, ids}, {y}, {{"axis", int64_t{0}}}));
  g.mark_output(y);
  return g;
}

}  // namespace

TEST_CASE("embedding lookup: runtime ids (repeats, first/last row, negative) copy table rows exactly") {
  struct C { int64_t V, D; ir::Shape ids_shape; };
  // D below a vector, D > 320 and not a multiple of it (3 vectors per row), D a whole vector, 2-D
  // ids, and 300 ids (ids and output stored as row blocks, "Row rotation").
  for (const C& c : {C{50, 16, {9}}, C{40, 700, {2, 3}}, C{300, 320, {5}}, C{500, 640, {300}}}) {
    INFO("V " << c.V << " D " << c.D << " ids " << ir::shape_str(c.ids_shape));
    // f32 table values that are not f16-representable: the chip holds them rounded to f16.
    std::vector<float> table(static_cast<size_t>(c.V * c.D)), t16(table.size());
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-3.f, 3.f);
    for (float& v : table) v = u(rng);
    for (size_t k = 0; k < table.size(); ++k) t16[k] = ir::round_f16(table[k]);
    const int64_t T = ir::num_elements(c.ids_shape);
    std::vector<int64_t> ids{0, c.V - 1, 3, 3, -1, -c.V};
    std::uniform_int_distribution<int64_t> pick(0, c.V - 1);
    while (static_cast<int64_t>(ids.size()) < T) ids.push_back(pick(rng));
    ids.resize(static_cast<size_t>(T));
    const LookupRun r = run_lookup(lookup_graph(c.V, c.D, c.ids_shape, table), ids);
    CHECK(r.y == expected(t16, c.V, c.D, ids));
    // Per token and vector of the row one gather per byte plane (f32: 4).
    CHECK(r.stats.writes == static_cast<uint64_t>(T * ((c.D + 319) / 320) * 4));
  }
}

TEST_CASE("embedding lookup: int32 ids, a lookup feeding another op (f16 table), timing independent of the ids") {
  const int64_t V = 64, D = 100;
  const std::vector<float> table = random_f16(V * D, -4, 4, 31);
  ir::Graph g;
  g.name = "embed_mul";
  const ir::TensorId ids = g.add_input("ids", ir::DType::I32, {4});
  const ir::TensorId w = g.add_constant_floats("table", {V, D}, table);
  const ir::TensorId e = g.add_tensor("e", ir::DType::F32, {4, D});
  g.add_op(make_op(ir::OpKind::Gather, "embed", {w, ids}, {e}, {{"axis", int64_t{0}}}));
  const ir::TensorId two = g.add_constant_floats("two", {1}, {2.f});
  const ir::TensorId y = g.add_tensor("y", ir::DType::F32, {4, D});
  g.add_op(make_op(ir::OpKind::Mul, "scale", {e, two}, {y}));
  g.mark_output(y);
  const std::vector<int64_t> a{63, 0, 5, 5}, b{1, 2, 3, 4};
  const LookupRun ra = run_lookup(g, a), rb = run_lookup(g, b);
  std::vector<float> want = expected(table, V, D, a);
  for (float& v : want) v *= 2.f;  // exact: the table values are f16, doubling keeps them f16
  CHECK(ra.y == want);
  CHECK(ra.cycles == rb.cycles);
}

TEST_CASE("embedding lookup: token embeddings feeding a projection MatMul (the usual first layer)") {
  // Small integers and halves: every product and f32 sum is exact, so the chip must match exactly.
  const int64_t V = 120, D = 96, N = 40, T = 5;
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> u(-4, 4);
  std::vector<float> table(static_cast<size_t>(V * D)), w(static_cast<size_t>(D * N));
  for (float& v : table) v = static_cast<float>(u(rng));
  for (float& v : w) v = static_cast<float>(u(rng)) * 0.5f;
  ir::Graph g;
  g.name = "embed_proj";
  const ir::TensorId ids = g.add_input("ids", ir::DType::I64, {T});
  const ir::TensorId tw = g.add_constant_floats("table", {V, D}, table);
  const ir::TensorId e = g.add_tensor("e", ir::DType::F32, {T, D});
  g.add_op(make_op(ir::OpKind::Gather, "embed", {tw, ids}, {e}, {{"axis", int64_t{0}}}));
  const ir::TensorId wt = g.add_constant_floats("W", {D, N}, w);
  const ir::TensorId y = g.add_tensor("y", ir::DType::F32, {T, N});
  g.add_op(make_op(ir::OpKind::MatMul, "proj", {e, wt}, {y}));
  g.mark_output(y);
  const std::vector<int64_t> id{V - 1, 0, 17, 17, 64};
  const LookupRun r = run_lookup(g, id);
  std::vector<float> want;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.f;
      for (int64_t k = 0; k < D; ++k)
        acc += table[static_cast<size_t>(id[static_cast<size_t>(t)] * D + k)] * w[static_cast<size_t>(k * N + n)];
      want.push_back(acc);
    }
  CHECK(r.y == want);
}

TEST_CASE("embedding lookup: out-of-range ids and oversized tables are refused with the numbers") {
  CHECK_THROWS_WITH(lookup_index_bytes("ids", {0, 50}, 50, 16, 320),
                    Catch::Contains("input 'ids': index 50 at position 1") && Catch::Contains("allowed -50..49"));
  CHECK_THROWS_WITH(lookup_index_bytes("ids", {-51}, 50, 16, 320), Catch::Contains("index -51"));
  // A table bigger than one MEM slice is split over slices: tests/compiler/test_embedding_split.cpp.
  // A runtime table is refused by the lowering, naming the data.
  ir::Graph g;
  g.name = "dyn";
  const ir::TensorId x = g.add_input("x", ir::DType::F16, {10, 8});
  const ir::TensorId ids = g.add_input("ids", ir::DType::I64, {3});
  const ir::TensorId y = g.add_tensor("y", ir::DType::F16, {3, 8});
  g.add_op(make_op(ir::OpKind::Gather, "g", {x, ids}, {y}, {{"axis", int64_t{0}}}));
  g.mark_output(y);
  CHECK_THROWS_WITH(lower_graph(g), Catch::Contains("data 'x' is not a constant"));
}
