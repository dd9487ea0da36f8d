// `lpusim check/compile --precision int8` on the committed MLP (docs/compiler.md "Precision", int8
// models): check calibrates on the checked dataset and passes with every layer within the int8
// bound; compile without --calibrate is refused with a message naming the option; with it, it
// compiles and says how many layers are int8.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <string>

#include "tests/support/cli.h"
#include "tests/support/process.h"

namespace {

std::string tmp_dir() {
  char tmpl[] = "/tmp/lpusim_int8_XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

const std::string kDir = std::string(LPU_SOURCE_DIR) + "/workloads/models/mlp/";

}  // namespace

TEST_CASE("int8 cli: check --precision int8 passes on the MLP, every layer within the int8 bound", "[int8]") {
  const std::string t = tmp_dir();
  const ProcessResult r = run_process(lpusim_exe(), {"check", kDir + "model.onnx", kDir + "test_data_set_0",
                                                     "--precision", "int8"},
                                      t + "/out.txt", std::chrono::seconds(60), Stderr::ToOutput);
  INFO(r.output);
  CHECK(!r.timed_out);
  CHECK(r.status == 0);
  CHECK(r.output.find("(match)") != std::string::npos);
  CHECK(r.output.find("(matches prediction)") != std::string::npos);
  CHECK(r.output.find("int8 layer '") != std::string::npos);
  CHECK(r.output.find("outside the int8 bound -> FAIL") == std::string::npos);
  CHECK(r.output.find("check passed") != std::string::npos);
}

TEST_CASE("int8 cli: compile --precision int8 needs --calibrate", "[int8]") {
  const std::string t = tmp_dir();
  const ProcessResult no = run_process(lpusim_exe(), {"compile", kDir + "model.onnx", "--precision", "int8", "-o",
                                                      t + "/a.lpu"},
                                       t + "/no.txt", std::chrono::seconds(60), Stderr::ToOutput);
  INFO(no.output);
  CHECK(no.status != 0);
  CHECK(no.output.find("--calibrate") != std::string::npos);
  const ProcessResult yes = run_process(lpusim_exe(), {"compile", kDir + "model.onnx", "--precision", "int8",
                                                       "--calibrate", kDir + "test_data_set_0", "-o", t + "/a.lpu"},
                                        t + "/yes.txt", std::chrono::seconds(60), Stderr::ToOutput);
  INFO(yes.output);
  CHECK(yes.status == 0);
  CHECK(yes.output.find("precision int8: 3 of 3 dense layers int8") != std::string::npos);
}

// Models beyond dense chains (attention, LayerNorm, residuals: quantized copies, row-mapped and
// viewed int8 layers): the per-step int8 check of compiler/reference/int8_step_check.h.
TEST_CASE("int8 cli: check --precision int8 passes step by step on encoder_layer and gpt_block", "[int8]") {
  const std::string t = tmp_dir();
  for (const char* m : {"encoder_layer", "gpt_block"}) {
    const std::string d = std::string(LPU_SOURCE_DIR) + "/workloads/models/" + m + "/";
    const ProcessResult r = run_process(lpusim_exe(), {"check", d + "model.onnx", d + "test_data_set_0", "--precision",
                                                       "int8", "--calibrate", d + "test_data_set_0"},
                                        t + "/" + m + ".txt", std::chrono::seconds(60), Stderr::ToOutput);
    INFO(r.output);
    CHECK(!r.timed_out);
    CHECK(r.status == 0);
    CHECK(r.output.find("(match)") != std::string::npos);
    CHECK(r.output.find("int8 layer '") != std::string::npos);
    CHECK(r.output.find("all within their local bounds") != std::string::npos);
    CHECK(r.output.find("int8 layers within the int8 bound -> ok") != std::string::npos);
    CHECK(r.output.find("-> FAIL") == std::string::npos);
    CHECK(r.output.find("check passed") != std::string::npos);
  }
}
