// CLI tests of `lpusim check MODEL DATASET_DIR...`: passes (end-to-end fp16 bound and per-step check)
// on the MLP and CNN examples' ONNX test data, exits 1
// when an expected output is corrupted beyond the fp16 bound, exits 2 on a missing directory or a
// tensor whose shape does not match the model (message naming the file and tensor).
#include <catch2/catch.hpp>

#include "tests/support/cli.h"
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "compiler/frontends/onnx_import.h"

namespace {

struct Run {
  int status = -1;
  std::string out;  // stdout and stderr
};

Run run_lpusim(const std::string& args, const std::string& tmp) {
  const std::string exe = lpusim_exe();
  const std::string log = tmp + "/log.txt";
  const int raw = std::system(("'" + exe + "' " + args + " >'" + log + "' 2>&1").c_str());
  Run r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  std::ifstream f(log);
  std::stringstream ss;
  ss << f.rdbuf();
  r.out = ss.str();
  return r;
}

std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
  REQUIRE(f.flush());
}

std::string make_tmp() {
  char tmpl[] = "/tmp/lpusim_check_XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

const std::string kMlp = std::string(LPU_SOURCE_DIR) + "/workloads/models/mlp/";

}  // namespace

TEST_CASE("check cli: MLP model passes on its ONNX test data within the fp16 bound") {
  const std::string tmp = make_tmp();
  const Run r = run_lpusim("check '" + kMlp + "model.onnx' '" + kMlp + "test_data_set_0'", tmp);
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("match") != std::string::npos);
  CHECK(r.out.find("output '") != std::string::npos);
  CHECK(r.out.find("max abs err") != std::string::npos);
  CHECK(r.out.find("max rel err") != std::string::npos);
  CHECK(r.out.find("-> ok") != std::string::npos);
  CHECK(r.out.find("check passed") != std::string::npos);
  CHECK(r.out.find("per-step check: 3 of 5 IR ops have their output on the chip; all within their local bounds") !=
        std::string::npos);
}

TEST_CASE("check cli: CNN model passes the per-step check on its ONNX test data") {
  const std::string dir = std::string(LPU_SOURCE_DIR) + "/workloads/models/cnn/";
  const std::string tmp = make_tmp();
  const Run r = run_lpusim("check '" + dir + "model.onnx' '" + dir + "test_data_set_0'", tmp);
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("per-step program (every intermediate kept): simulated") != std::string::npos);
  CHECK(r.out.find("max abs difference from the dataset's fp32 output") != std::string::npos);
  CHECK(r.out.find("all within their local bounds; worst step") != std::string::npos);
  CHECK(r.out.find("check passed") != std::string::npos);
}

TEST_CASE("check cli: MobileNet-style block (activation chains on conv layouts) passes, fp16 and int8") {
  // workloads/models/mobile_block: ReLU6 (Clip), HardSwish, LeakyReLU, PReLU, ELU, Softplus on conv
  // activations, LogSoftmax (frontends/onnx_activations.h). Its 16-channel 16 x 16 tensors have
  // C == H == W, whose conv layout the per-step check must take from the lowering, not the shape;
  // the Softplus before the global pool leaves pad lanes the pool reads cleared; its
  // squeeze-and-excitation scale is a [N, C, 1, 1] activation broadcast over the pixels.
  const std::string dir = std::string(LPU_SOURCE_DIR) + "/workloads/models/mobile_block/";
  const std::string tmp = make_tmp();
  for (const std::string prec : {"fp16", "int8"}) {
    const Run r = run_lpusim(
        "check --precision " + prec + " '" + dir + "model.onnx' '" + dir + "test_data_set_0'", tmp);
    INFO(prec << "\n" << r.out);
    CHECK(r.status == 0);
    CHECK(r.out.find("all within their local bounds") != std::string::npos);
    CHECK(r.out.find("check passed") != std::string::npos);
  }
}

TEST_CASE("check cli: corrupted expected output fails with exit 1") {
  const std::string tmp = make_tmp();
  const std::string ds = tmp + "/bad_set";
  REQUIRE(mkdir(ds.c_str(), 0755) == 0);
  write_file(ds + "/input_0.pb", read_file(kMlp + "test_data_set_0/input_0.pb"));
  // The expected output is a TensorProto whose raw_data (f32 values) ends the file: add 1000 to the
  // last value (beyond both bounds, the loose documented one being ~400 here), and make sure that is
  // all that changed.
  std::string pb = read_file(kMlp + "test_data_set_0/output_0.pb");
  REQUIRE(pb.size() >= 4);
  float last;
  std::memcpy(&last, pb.data() + pb.size() - 4, 4);
  const float bumped = last + 1000.0f;
  std::memcpy(&pb[pb.size() - 4], &bumped, 4);
  write_file(ds + "/output_0.pb", pb);
  const lpu::ref::Value orig = lpu::frontend::load_onnx_tensor_file(kMlp + "test_data_set_0/output_0.pb");
  const lpu::ref::Value bad = lpu::frontend::load_onnx_tensor_file(ds + "/output_0.pb");
  REQUIRE(orig.f.size() == bad.f.size());
  REQUIRE(bad.f.back() == bumped);
  for (size_t i = 0; i + 1 < orig.f.size(); ++i) REQUIRE(orig.f[i] == bad.f[i]);

  // The good set still passes next to the bad one; the command as a whole fails.
  const Run r = run_lpusim("check '" + kMlp + "model.onnx' '" + kMlp + "test_data_set_0' '" + ds + "'", tmp);
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(r.out.find("-> ok") != std::string::npos);
  CHECK(r.out.find("1 outside bound -> FAIL") != std::string::npos);
  CHECK(r.out.find("check FAILED") != std::string::npos);
}

TEST_CASE("check cli: missing dataset dir or mismatched tensor shape is bad input (exit 2)") {
  const std::string tmp = make_tmp();
  const Run missing = run_lpusim("check '" + kMlp + "model.onnx' '" + tmp + "/no_such_dir'", tmp);
  INFO(missing.out);
  CHECK(missing.status == 2);
  CHECK(missing.out.find("no_such_dir") != std::string::npos);

  // output_0.pb holding the input tensor: wrong shape, named with file, tensor, expected and got.
  const std::string ds = tmp + "/shape_set";
  REQUIRE(mkdir(ds.c_str(), 0755) == 0);
  write_file(ds + "/input_0.pb", read_file(kMlp + "test_data_set_0/input_0.pb"));
  write_file(ds + "/output_0.pb", read_file(kMlp + "test_data_set_0/input_0.pb"));
  const Run shape = run_lpusim("check '" + kMlp + "model.onnx' '" + ds + "'", tmp);
  INFO(shape.out);
  CHECK(shape.status == 2);
  CHECK(shape.out.find("shape_set/output_0.pb") != std::string::npos);
  CHECK(shape.out.find("expected f32 [1,10]") != std::string::npos);

  // A dataset missing its expected output file.
  const std::string nd = tmp + "/no_output";
  REQUIRE(mkdir(nd.c_str(), 0755) == 0);
  write_file(nd + "/input_0.pb", read_file(kMlp + "test_data_set_0/input_0.pb"));
  const Run nofile = run_lpusim("check '" + kMlp + "model.onnx' '" + nd + "'", tmp);
  INFO(nofile.out);
  CHECK(nofile.status == 2);
  CHECK(nofile.out.find("no_output/output_0.pb: missing") != std::string::npos);
}
