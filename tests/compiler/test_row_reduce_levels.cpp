// Reductions over ROW axes (passes/lower_norm.cpp combine_rows): VXM passes of up to 16 row-mapped
// terms each (an op on the first two, a binary post op per further term); more terms are cut into
// strided chains of ceil(sqrt(n)) terms whose partials the next level combines (one pass per term
// until session 22: 767 serial passes for 768 rows). Checked: the number of passes, values against
// the reference interpreter and predicted == simulated (check_chip_against_reference) for every
// kind, with an uneven last group (sums read the zero row, max / min repeat a term of the group).
#include <catch2/catch.hpp>

#include "compiler/passes/lowering.h"
#include "tests/support/chip_check.h"
#include "tests/support/f16_data.h"
#include "tests/support/ir_build.h"

using namespace lpu;
using namespace lpu::compiler;
using ir::OpKind;

TEST_CASE("row reductions: levels of strided chains for many terms, every kind on the chip", "[reduce]") {
  struct C { ir::Shape xs; std::vector<int64_t> axes; ir::Shape ys; size_t passes; };
  // 100 rows: 10 chains of 10, then one pass of 10; 18 rows: chains of 5 (4 chains, the last of 3
  // terms), then one of 4; 12 rows (x 8 lanes): one pass; two row axes of 40 x 3 = 120 terms:
  // 11 chains of 11 (the last of 10), then one of 11.
  const C cases[] = {{{100, 40}, {0}, {1, 40}, 2},
                     {{18, 24}, {0}, {1, 24}, 2},
                     {{12, 8}, {0}, {1, 8}, 1},
                     {{40, 3, 8}, {0, 1}, {1, 1, 8}, 2}};
  uint32_t seed = 11;
  for (OpKind k : {OpKind::ReduceSum, OpKind::ReduceMax, OpKind::ReduceMin}) {
    for (const C& c : cases) {
      INFO(ir::op_kind_name(k) << " of " << ir::shape_str(c.xs) << " over " << ir::shape_str(c.axes));
      const ir::Graph g = unary_graph(k, c.xs, {{"axes", c.axes}, {"keepdims", int64_t{1}}}, c.ys);
      const LoweredModel lm = lower_graph(g);
      CHECK(lm.eltwise.size() == c.passes);
      // Every pass's chain: at most 16 terms, each read by the op or a binary post op of the kind.
      for (const LoweredEltwise& E : lm.eltwise) {
        CHECK(E.operands.size() <= 16);
        CHECK(E.post.size() + 2 == E.operands.size());
      }
      lpu::test::check_chip_against_reference(g, {lpu::test::random_f16(ir::num_elements(c.xs), -2, 2, seed++)});
    }
  }
}
