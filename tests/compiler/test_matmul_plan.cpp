// The matmul kernel's work plan (compiler/backend/matmul_kernel.h, "Row blocks and K-split"):
// checked on compiled programs by counting the MXM instructions each plane received, with the
// values against a reference and predicted == simulated.
//   - a product with one weight tile and a tall M deals its row blocks evenly over all planes;
//   - an install-heavy conv (196 output pixels, 9 tap tiles of 256 weight rows) splits its k-tiles
//     over the planes (each weight row loaded once) instead of cutting its rows into blocks that
//     every plane would install all 9 tiles for; its int8 epilogue (scale and bias rows shared by
//     the rows that meet at the VXM on one cycle) stays within the int8 bound.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <utility>

#include "compiler/compile.h"
#include "compiler/passes/schedule.h"
#include "isa/chip_config.h"
#include "compiler/llm/llm_config.h"
#include "compiler/llm/segments.h"
#include "sim/simulator.h"
#include "system/llm_system.h"
#include "tests/support/calibrated_int8_piece.h"
#include "tests/support/f16_data.h"
#include "tests/support/gemm_check.h"
#include "tests/support/int8_nchw_run.h"
#include "tests/support/int8_verdicts.h"
#include "tests/support/llm_workloads.h"
#include "tests/support/ir_build.h"
#include "tests/support/per_plane_count.h"

using namespace lpu;
using namespace lpu::compiler;
using lpu::test::f16_bytes;
using lpu::test::per_plane;
using lpu::test::random_f16;

namespace {

// Two 1x1 convs on an [1, C, H, W] f16 input: "pre" (C -> C, no bias) writes X0, "a" (C -> N with
// bias) reads it and is the output Ya (f32). Weights uniform in +-1/sqrt(C), bias +-0.3, from seeds
// seed, seed + 1, seed + 2.
ir::Graph two_1x1_convs(const std::string& name, int64_t C, int64_t N, int64_t H, int64_t W, uint32_t seed) {
  ir::Graph g;
  g.name = name;
  auto conv = [&](const std::string& n, std::vector<ir::TensorId> ins, ir::TensorId y) {
    g.add_op(make_op(ir::OpKind::Conv, n, std::move(ins), {y},
                     {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"strides", std::vector<int64_t>{1, 1}},
                      {"dilations", std::vector<int64_t>{1, 1}}, {"pads", std::vector<int64_t>{0, 0, 0, 0}},
                      {"group", int64_t{1}}}));
  };
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {1, C, H, W});
  const ir::TensorId x0 = g.add_tensor("X0", ir::DType::F16, {1, C, H, W});
  const float s = 1.f / std::sqrt(static_cast<float>(C));
  conv("pre", {x, g.add_constant("W0", ir::DType::F16, {C, C, 1, 1}, f16_bytes(random_f16(C * C, -s, s, seed)))}, x0);
  const ir::TensorId ya = g.add_tensor("Ya", ir::DType::F32, {1, N, H, W});
  conv("a",
       {x0, g.add_constant("Wa", ir::DType::F16, {N, C, 1, 1}, f16_bytes(random_f16(N * C, -s, s, seed + 1))),
        g.add_constant("Ba", ir::DType::F16, {N}, f16_bytes(random_f16(N, -0.3f, 0.3f, seed + 2)))},
       ya);
  g.mark_output(ya);
  return g;
}

}  // namespace

// The cycles step `name` adds to the program's end (as bench_prefill --steps prints them).
static uint64_t added_cycles(const std::vector<StepSpan>& spans, const std::string& name) {
  uint64_t prev = 0, added = 0;
  for (const StepSpan& sp : spans) {
    if (sp.name == name) added = sp.end_after - prev;
    prev = std::max(prev, sp.end_after);
  }
  return added;
}

TEST_CASE("matmul plan: one weight tile and a tall M are dealt evenly over all planes, exact int8", "[matmul]") {
  // M = 8200 needs 5 blocks of <= acc_rows / 2 rows; 5 blocks over 4 planes would leave one plane
  // with two (3,280 rows), 8 blocks of 1,025 rows give every plane 2,050.
  auto cfg = default_chip_config();
  const int64_t M = 8200, K = 147, N = 64;
  const CompileResult r = lpu::test::check_gemm_values(M, K, N, Precision::INT8, 41);
  const auto abc = per_plane(r.program, Opcode::Abc);
  const size_t planes = cfg->slices_of(SliceKind::MXM).size() * cfg->mxm_planes;
  REQUIRE(abc.size() == planes);
  int64_t total = 0, most = 0;
  for (const auto& kv : abc) {
    total += kv.second;
    most = std::max(most, kv.second);
  }
  CHECK(total == M);  // one k-tile: one abc per row
  CHECK(most <= (M + static_cast<int64_t>(planes) - 1) / static_cast<int64_t>(planes));
}

TEST_CASE("matmul plan: an install-heavy int8 conv splits its k-tiles over the planes (each weight row loaded once)",
          "[matmul][conv][int8]") {
  // X [1, 256, 14, 14] -> pre (1x1, fp16) -> a (3x3, pad 1, 256 -> 256, bias, int8): a's taps are
  // read in place, 9 k-tiles of 256 weight rows, one column tile, 196 output rows.
  const int64_t C = 256, H = 14, W = 14;
  ir::Graph g;
  g.name = "ksplit_conv";
  auto conv = [&](const std::string& n, std::vector<ir::TensorId> ins, ir::TensorId y, int64_t k, int64_t p) {
    g.add_op(make_op(ir::OpKind::Conv, n, std::move(ins), {y},
                     {{"kernel_shape", std::vector<int64_t>{k, k}}, {"strides", std::vector<int64_t>{1, 1}},
                      {"dilations", std::vector<int64_t>{1, 1}}, {"pads", std::vector<int64_t>{p, p, p, p}},
                      {"group", int64_t{1}}}));
  };
  auto weight = [&](const std::string& n, int64_t k, uint32_t seed) {
    const float s = 1.f / std::sqrt(static_cast<float>(C * k * k));
    return g.add_constant(n, ir::DType::F16, {C, C, k, k}, f16_bytes(random_f16(C * C * k * k, -s, s, seed)));
  };
  const ir::TensorId x = g.add_input("X", ir::DType::F16, {1, C, H, W});
  const ir::TensorId x0 = g.add_tensor("X0", ir::DType::F16, {1, C, H, W});
  conv("pre", {x, weight("W0", 1, 51)}, x0, 1, 0);
  const ir::TensorId ya = g.add_tensor("Ya", ir::DType::F32, {1, C, H, W});
  const ir::TensorId ba = g.add_constant("Ba", ir::DType::F16, {C}, f16_bytes(random_f16(C, -0.3f, 0.3f, 52)));
  conv("a", {x0, weight("Wa", 3, 53), ba}, ya, 3, 1);
  g.mark_output(ya);

  // X0's i8 copy as a step of its own between pre and a (fuse_copies off): a's planes then all
  // start from the copy's end; fused into pre's epilogue (the default), pre's planes free later
  // than the others and the balanced cut below gives them fewer tiles.
  const lpu::test::Int8NchwRun t = lpu::test::run_int8_nchw(g, C, H, W, 54, 55, "pre", false);
  lpu::test::require_int8_steps_ok(t.check, 1);
  // Only a runs int8: its weight rows are the i8 lw's. 9 tap tiles x 256 rows, each loaded once.
  const auto lw = per_plane(t.cr.program, Opcode::LoadW, static_cast<int>(DType::I8));
  int64_t lw_total = 0, lw_most = 0;
  for (const auto& kv : lw) {
    lw_total += kv.second;
    lw_most = std::max(lw_most, kv.second);
  }
  CHECK(lw_total == 9 * C);
  // The busiest plane installs ceil(9 / 4) = 3 tiles (a row cut would give every plane all 9).
  CHECK(lw_most <= 3 * C);
  // Each tile streams all 196 rows once: 9 x 196 abc in all, at most 3 tiles' worth on a plane.
  const auto abc = per_plane(t.cr.program, Opcode::Abc, static_cast<int>(DType::I8));
  int64_t abc_total = 0, abc_most = 0;
  for (const auto& kv : abc) {
    abc_total += kv.second;
    abc_most = std::max(abc_most, kv.second);
  }
  CHECK(abc_total == 9 * H * W);
  CHECK(abc_most <= 3 * H * W);
  // Session 9: the balanced (install-bound) cut also takes such layers (196 abc rows per tile <=
  // 256 loaded rows), so all 4 planes install tap tiles (3, 2, 2, 2 or as their free cycles say);
  // the earlier K-split (G = 3) left one plane idle.
  CHECK(abc.size() == 4);
  const uint64_t a_cycles = added_cycles(t.cr.spans, "a");
  INFO("conv a adds " << a_cycles << " cycles; program " << t.cr.program.predicted_cycles);
  CHECK(a_cycles > 0);
  CHECK(a_cycles <= 840);  // 828 (852 with the K-split plan)
}

// The rows of a tile stream in any order (matmul_kernel.h): four planes each multiplying all 128
// rows of X (one 320-row k-tile, one column tile per plane) read X from its two row blocks (two
// SRAM slices, one read each per cycle) while the first rows' results drain to Y (two row blocks
// of 4 byte-plane slices, one write each per cycle); an abc whose row's read cannot be placed on
// a cycle takes another of the tile's next rows instead of waiting. Exact int8 values, predicted ==
// simulated, and the cycles against the previous kernel's (rows in a fixed order): 1,061; now 748.
TEST_CASE("matmul plan: rows of a tile stream in any order, so planes sharing X slices do not wait for each other",
          "[matmul][int8]") {
  const CompileResult r = lpu::test::check_gemm_values(128, 320, 1280, Precision::INT8, 43);
  INFO("predicted " << r.program.predicted_cycles);
  CHECK(r.program.predicted_cycles <= 850);
}

// Epilogue rows per column tile (passes/schedule.cpp, MatmulSpec::scale): an int8 1x1 conv of 196
// pixels, 256 -> 1,024 channels (4 column tiles, one per plane, like ResNet-50's stage-3 conv3)
// drains 4 x 196 rows through the VXM epilogue. With its scale and bias as [1, N] rows (4 column
// tiles at 4 addresses of one slice group, one read per cycle) the planes' drains took turns, one
// output row per cycle for the chip; with one row block per column tile they fetch on one cycle.
// Conv a's step: 870 cycles with the [1, N] rows, 460 now.
TEST_CASE("matmul plan: a multi-tile int8 conv's epilogue rows are stored per column tile, so its planes drain together",
          "[matmul][conv][int8]") {
  const int64_t C = 256, H = 14, W = 14;
  const ir::Graph g = two_1x1_convs("wide_1x1", C, 1024, H, W, 61);
  const lpu::test::Int8NchwRun t = lpu::test::run_int8_nchw(g, C, H, W, 64, 65, "pre");
  lpu::test::require_int8_steps_ok(t.check, 1);
  const uint64_t a_cycles = added_cycles(t.cr.spans, "a");
  INFO("conv a adds " << a_cycles << " cycles; program " << t.cr.program.predicted_cycles);
  CHECK(a_cycles > 0);
  CHECK(a_cycles <= 700);
}

// A one-column-tile int8 layer (64 -> 64 1x1 conv, 784 pixels) drains its 784 rows on all planes at
// once; each row's epilogue reads the scale and bias rows at the VXM (shared only by rows meeting
// there on one cycle). Stored once, the scale row's four slices served a read on nearly every drain
// cycle and starved the X reads of any activation row block on those slices (ResNet-50 stage 1: one
// plane's k-tile waited ~1,370 cycles). They are stored as 4 copies in their own row blocks, and
// the fetch of cycle T tries copy T % 4 first: checked here by counting the program's reads of each
// copy (every copy serves >= 10 % of the fetches), with the int8 step exact.
TEST_CASE("matmul plan: a one-tile int8 conv's epilogue rows are stored as 4 copies whose fetches take turns",
          "[matmul][conv][int8]") {
  const int64_t C = 64, H = 28, W = 28;
  const ir::Graph g = two_1x1_convs("narrow_1x1", C, 64, H, W, 71);
  const lpu::test::Int8NchwRun t = lpu::test::run_int8_nchw(g, C, H, W, 74, 75, "pre");
  lpu::test::require_int8_steps_ok(t.check, 1);
  // The scale copies: memory-map entries "a.scale..." (name, slices, first..last address).
  const auto cfg = default_chip_config();
  std::map<std::string, int> slice_of_name;
  for (size_t i = 0; i < cfg->slices.size(); ++i) slice_of_name[cfg->slices[i].name] = static_cast<int>(i);
  struct Copy { std::vector<int> slices; uint32_t addr; int64_t reads = 0; };
  std::vector<Copy> copies;
  std::istringstream map(t.cr.memory_map);
  for (std::string line; std::getline(map, line);) {
    if (line.rfind("a.scale", 0) != 0) continue;
    std::istringstream ls(line);
    std::string name, sl, range;
    ls >> name >> sl >> range;
    Copy c;
    std::istringstream ss(sl);
    for (std::string one; std::getline(ss, one, ',');) c.slices.push_back(slice_of_name.at(one));
    c.addr = static_cast<uint32_t>(std::stoul(range.substr(0, range.find(".."))));
    copies.push_back(c);
  }
  INFO(t.cr.memory_map);
  REQUIRE(copies.size() == 4);
  for (size_t i = 0; i < copies.size(); ++i)
    for (size_t j = i + 1; j < copies.size(); ++j)
      CHECK(std::find(copies[j].slices.begin(), copies[j].slices.end(), copies[i].slices[0]) == copies[j].slices.end());
  int64_t total = 0;
  for (const QueueCode& q : t.cr.program.chips[0].queues)
    for (const auto& ti : replay_queue(q.code)) {
      const Instr& in = ti.second;
      if (in.op != Opcode::Read) continue;
      for (Copy& c : copies)
        if (c.slices[0] == q.slice && in.get(Field::Addr) == c.addr) {
          ++c.reads;
          ++total;
        }
    }
  std::string shares;
  for (const Copy& c : copies) shares += " " + std::to_string(c.reads);
  INFO("scale fetches per copy:" << shares << " of " << total);
  CHECK(total > 0);
  for (const Copy& c : copies) CHECK(c.reads * 10 >= total);
}

// BERT-base and one of its prefill pieces (128 tokens unless given) as lpusim validate compiles
// them (int8, o_proj reading P.V through the Cast view).
static llm::LlmConfig bert_base() { return test::workload_llm("bert-base"); }
static llm::SegmentSpec bert_prefill(llm::SegmentKind kind, int64_t tokens = 128) {
  return test::validate_prefill_segment(kind, tokens);
}

// Per k-tile plane starts (matmul_decompose.cpp, balanced plan): the GELU passes write their output
// vector column by column, so the second matmul's planes that take the early k-tiles are counted
// free as those columns land instead of when the whole of X is nearly in. BERT-base's int8 FFN
// piece (as bench_prefill compiles it): MatMul_8 issues abc on more than one k-tile before the
// GELU pass's last vector lands (184 abc; 128, one k-tile, with the whole-X start) and ends at
// 7,500 (7,793). (Since session 10 the GELU is one pass, named for its first op Mul_3, not Mul_7:
// 292 abc before it ends, MatMul_8 ends at 6,895.)
TEST_CASE("matmul plan: a consumer matmul issues abc on early k-tiles before the producer's last vector lands",
          "[matmul][int8]") {
  auto cfg = default_chip_config();
  const llm::LlmConfig m = bert_base();
  llm::SegmentSpec spec = bert_prefill(llm::SegmentKind::Ffn);
  const CompileResult r = compile(llm::build_segment(m, spec, 0), *cfg, system::piece_compile_options(llm::WeightPrecision::INT8));
  std::map<std::string, StepSpan> span;
  for (const StepSpan& s : r.spans) {
    UNSCOPED_INFO("step " << s.name << " " << s.kind << " " << s.start << ".." << s.end_after);
    span[s.name] = s;
  }
  REQUIRE(span.count("MatMul_1") == 1);
  REQUIRE(span.count("Mul_3") == 1);
  REQUIRE(span.count("MatMul_8") == 1);
  // Any abc after MatMul_1's last instruction is MatMul_8's.
  uint64_t first_abc = UINT64_MAX, early = 0;
  for (const QueueCode& q : r.program.chips[0].queues)
    for (const auto& ti : replay_queue(q.code))
      if (ti.second.op == Opcode::Abc && ti.first > span["MatMul_1"].end_after) {
        first_abc = std::min(first_abc, ti.first);
        early += ti.first < span["Mul_3"].end_after ? 1 : 0;
      }
  INFO("MatMul_8 first abc " << first_abc << ", abc before Mul_3 ends " << early << ", predicted " << r.program.predicted_cycles);
  CHECK(first_abc < span["Mul_3"].end_after);
  CHECK(early > 128);  // more than one k-tile of the 128 rows: 184 now, 128 with the whole-X start
  CHECK(span["MatMul_8"].end_after <= 7500);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(r.program, *cfg, so).cycles == r.program.predicted_cycles);
}

// X of an install-bound layer with several column tiles is read by every plane (each holds its own
// column tiles, all of X's rows), so passes/schedule.cpp stores it in at least one row block per
// plane (32-row blocks for 128 rows; was 64: two slices, one read each per cycle, for four planes:
// MatMul_1's abc searched 3,547 plane-cycles for a free X read port, now ~1,000), and its Y too.
// BERT-base's int8 pieces: MatMul_1 ends at 4,297 (4,620 before), the FFN piece 7,221 (7,610
// before, 7,321 with the X blocks alone), the attention piece of layers 1+ (it starts with a
// LayerNorm, system/llm_system.cpp) 11,338 (11,711 before; layer 0's, which moves with SRAM
// allocation noise, 10,201 vs 10,157). Predicted == simulated for the FFN piece is checked by the
// test above.
TEST_CASE("matmul plan: the X and Y of a wide install-bound layer have a row block per plane", "[matmul][int8][heavy]") {
  auto cfg = default_chip_config();
  const llm::LlmConfig m = bert_base();
  llm::SegmentSpec spec = bert_prefill(llm::SegmentKind::Ffn);
  const CompileResult r = compile(llm::build_segment(m, spec, 0), *cfg, system::piece_compile_options(llm::WeightPrecision::INT8));
  uint64_t mm1_end = 0;
  for (const StepSpan& s : r.spans)
    if (s.name == "MatMul_1") mm1_end = s.end_after;
  INFO("MatMul_1 ends " << mm1_end << ", predicted " << r.program.predicted_cycles);
  CHECK(mm1_end > 0);
  CHECK(mm1_end <= 4400);
  CHECK(r.program.predicted_cycles <= 7260);
  spec.kind = llm::SegmentKind::Attention;
  const CompileResult ra = compile(llm::build_segment(m, spec, 1), *cfg, system::piece_compile_options(llm::WeightPrecision::INT8));
  INFO("attention piece of layers 1+ " << ra.program.predicted_cycles);
  CHECK(ra.program.predicted_cycles <= 11500);
}

// The plan choice by trial (matmul_kernel.h): BERT-base's FFN at 192 tokens. Its MatMul_1 (192 rows,
// 768 x 3072 int8: 5,760 abc rows against 7,680 loaded weight rows) is install-heavy but not
// install-bound (192 abc rows a tile > half of 320), so the balanced cut and the row cut are both
// scheduled: the row cut's results land first (MatMul_1 adds 2,982 cycles, 3,224 balanced) and it
// is kept; the piece takes 9,584 cycles (10,717 with the balanced cut, more than the 256-token
// piece's 9,519). At 128 tokens nothing changes (install-bound: the balanced cut alone).
TEST_CASE("matmul plan: where only the install-heavy rule picks the balanced cut, the plan whose results land first is kept",
          "[matmul][int8]") {
  auto cfg = default_chip_config();
  CompileOptions co = system::piece_compile_options(llm::WeightPrecision::INT8);
  co.tune_part_rows.clear();  // the default layout (64-row parts), where the figures above were measured
  const CompileResult r = compile(llm::build_segment(bert_base(), bert_prefill(llm::SegmentKind::Ffn, 192), 0), *cfg, co);
  const uint64_t mm1 = added_cycles(r.spans, "MatMul_1");
  INFO("MatMul_1 adds " << mm1 << ", piece " << r.program.predicted_cycles);
  CHECK(mm1 < 3100);
  CHECK(r.program.predicted_cycles < 10000);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(r.program, *cfg, so).cycles == r.program.predicted_cycles);
}

// Layout tuning (CompileOptions::tune_part_rows): the model is scheduled once per port-split part
// size and the shortest program kept. BERT-base's FFN piece at 192 tokens: 9,584 cycles with the
// 64-row parts alone, 8,022 with 32-row parts; the tuning gives the smallest of its candidates, and
// the kept program simulates to its prediction.
TEST_CASE("layout tuning: the program with the fewest predicted cycles over the part sizes tried is kept",
          "[matmul][int8][heavy]") {
  auto cfg = default_chip_config();
  const ir::Graph g = llm::build_segment(bert_base(), bert_prefill(llm::SegmentKind::Ffn, 192), 0);
  auto compiled = [&](int64_t part_rows, std::vector<int64_t> further) {
    CompileOptions co = system::piece_compile_options(llm::WeightPrecision::INT8);
    co.tiling.port_split_min_part_rows = part_rows;
    co.tune_part_rows = std::move(further);
    return compile(g, *cfg, co);
  };
  const CompileOptions defaults;
  std::vector<int64_t> tried = {defaults.tiling.port_split_min_part_rows};
  tried.insert(tried.end(), defaults.tune_part_rows.begin(), defaults.tune_part_rows.end());
  REQUIRE(tried.size() >= 2);
  uint64_t best = UINT64_MAX, p64 = 0;  // p64: the tiling's own 64-row parts, the untuned compile
  for (int64_t p : tried) {
    const uint64_t c = compiled(p, {}).program.predicted_cycles;
    UNSCOPED_INFO(p << "-row parts: " << c);
    best = std::min(best, c);
    if (p == 64) p64 = c;
  }
  REQUIRE(p64 > 0);
  const CompileResult tuned = compiled(defaults.tiling.port_split_min_part_rows, defaults.tune_part_rows);
  INFO("tuned " << tuned.program.predicted_cycles);
  CHECK(tuned.program.predicted_cycles == best);
  CHECK(best < p64);  // the layouts differ here, so the choice is exercised
  CHECK(tuned.program.predicted_cycles < 9000);
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(tuned.program, *cfg, so).cycles == tuned.program.predicted_cycles);
}

// SRAM entries holding the FFN's up projection (MatMul_1) scale rows: one [1, N] row, or one row
// block per MXM plane (TilingOptions::spread_epilogue_rows).
static int scale_blocks(const CompileResult& r) {
  std::istringstream in(r.memory_map);
  int n = 0;
  for (std::string line; std::getline(in, line);)
    if (line.rfind("MatMul_1.scale", 0) == 0) ++n;
  return n;
}

// Layout tuning also schedules each part size with spread epilogue rows (TilingOptions::
// spread_epilogue_rows, CompileOptions::tune_epilogue_rows). BERT-base's FFN piece at 128 tokens is
// install-bound, so its int8 products keep [1, N] scale rows by default, but it folds its
// LayerNorm: the up projection's drains wait for the `.sd` and then drain a backlog, which the
// per-plane rows can feed faster. Which layout wins is measured, not assumed: the tuned compile is
// the shorter of the two (session 36: 5,142 spread vs 5,199 cycles), and it simulates to its
// prediction.
TEST_CASE("layout tuning: spread epilogue rows are tried and the shorter program is kept", "[matmul][int8][heavy]") {
  auto cfg = default_chip_config();
  const ir::Graph g = llm::build_segment(bert_base(), bert_prefill(llm::SegmentKind::Ffn, 128), 0);
  auto compiled = [&](bool spread, bool tune) {
    CompileOptions co = system::piece_compile_options(llm::WeightPrecision::INT8);
    co.tiling.spread_epilogue_rows = spread;
    co.tune_epilogue_rows = tune;
    co.tune_whole_tiles = false;  // the refinements have their own tests (test_whole_tile_cut.cpp)
    co.tune_weight_groups.clear();
    return compile(g, *cfg, co);
  };
  const CompileResult plain = compiled(false, false), spread = compiled(true, false), tuned = compiled(false, true);
  INFO("plain " << plain.program.predicted_cycles << ", spread " << spread.program.predicted_cycles << ", tuned "
                << tuned.program.predicted_cycles);
  CHECK(scale_blocks(plain) == 1);
  CHECK(scale_blocks(spread) > 1);
  CHECK(spread.program.predicted_cycles != plain.program.predicted_cycles);  // the choice is exercised
  CHECK(tuned.program.predicted_cycles == std::min(plain.program.predicted_cycles, spread.program.predicted_cycles));
  CHECK(scale_blocks(tuned) == (spread.program.predicted_cycles < plain.program.predicted_cycles ? scale_blocks(spread) : 1));
  sim::SimOptions so;
  so.mode = sim::Mode::Timing;
  CHECK(sim::simulate(tuned.program, *cfg, so).cycles == tuned.program.predicted_cycles);
  // Which programs the tuning doubles: this one (int8 products of 128 rows), not one whose
  // products have fewer rows than port_split_min_rows (a decode piece's batch-1 rows keep [1, N],
  // which the LLM planner's piece_sram_need mirrors), and not an fp16 compile (no epilogue rows).
  REQUIRE(plain.quant);
  const LoweredModel lm = lower_graph(g, cfg->vector_bytes(), plain.lower);
  TilingOptions taller;
  taller.port_split_min_rows = 129;
  CHECK(epilogue_rows_spreadable(g, lm, *cfg, plain.quant.get(), TilingOptions{}));
  CHECK_FALSE(epilogue_rows_spreadable(g, lm, *cfg, plain.quant.get(), taller));
  CHECK_FALSE(epilogue_rows_spreadable(g, lm, *cfg, nullptr, TilingOptions{}));
}

// The spread rows carry the same values: a calibrated int8 FFN piece of BERT-base's shape (folded
// LayerNorm, install-bound products) compiled with them is within the int8 bound step by step.
// [heavy]: a full-size piece (the sanitized stage leaves it out; the per-tile epilogue rows it
// reads are those of every multi-tile int8 conv there).
TEST_CASE("layout tuning: a folded int8 FFN piece with spread epilogue rows is within the int8 bound",
          "[matmul][int8][heavy]") {
  const ir::Graph g = llm::build_segment(test::bert_like(12), test::prefill_segment(llm::SegmentKind::Ffn, 128, 23), 0);
  const test::CalibratedInt8Piece p = test::calibrated_int8_piece(g, 29, [](CompileOptions& co) {
    co.tiling.spread_epilogue_rows = true;
    co.tune_epilogue_rows = false;
    co.tune_part_rows.clear();  // one layout: the values, not the timing, are checked here
  });
  CHECK(p.r.cycles == p.cr.program.predicted_cycles);
  CHECK(scale_blocks(p.cr) > 1);
  REQUIRE(std::any_of(p.cr.quant->layers.begin(), p.cr.quant->layers.end(),
                      [](const LayerQuant& lq) { return lq.norm_fold >= 0; }));
  lpu::test::check_int8_steps_ok(p.check());
}
