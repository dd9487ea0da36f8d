// The committed attention models through the CLI: `lpusim check MODEL DATASET_DIR` compiles
// workloads/models/{gpt_block,encoder_layer} (heads split by Split/Slice + Reshape + Transpose,
// batched Q . K^T and P . V, causal mask by Where, heads merged by Transpose + Reshape into the
// output projection), checks simulated == predicted cycles and every stored step against the
// reference recomputed from the chip's own inputs (per-step check) on its ONNX test data; exit 0.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <string>

#include "tests/support/cli.h"
#include "tests/support/process.h"

namespace {

void check_model(const std::string& name) {
  const std::string dir = std::string(LPU_SOURCE_DIR) + "/workloads/models/" + name + "/";
  char tmpl[] = "/tmp/lpusim_attn_XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const ProcessResult r = run_process(lpusim_exe(), {"check", dir + "model.onnx", dir + "test_data_set_0"},
                                      std::string(tmpl) + "/out.txt", std::chrono::seconds(120), Stderr::ToOutput);
  INFO(r.output);
  CHECK(!r.timed_out);
  CHECK(r.status == 0);
  CHECK(r.output.find("(match)") != std::string::npos);
  CHECK(r.output.find("(matches prediction)") != std::string::npos);
  CHECK(r.output.find("-> ok") != std::string::npos);
  CHECK(r.output.find("check passed") != std::string::npos);
  // Every IR op whose output the chip stores (Q . K^T of the head views, softmax, P . V, the merge
  // into the output projection, ...) recomputed from the chip's own inputs, within its local bound
  // (compiler/reference/step_check.h): mixed-up heads, a lost mask or a wrong transpose fail the step.
  CHECK(r.output.find("IR ops have their output on the chip; all within their local bounds") != std::string::npos);
}

}  // namespace

TEST_CASE("attention models: gpt_block compiles, predicted == simulated, check passes on its test data") {
  check_model("gpt_block");
}

TEST_CASE("attention models: encoder_layer compiles, predicted == simulated, check passes on its test data") {
  check_model("encoder_layer");
}
