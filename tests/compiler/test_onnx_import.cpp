// Tests of the ONNX front end: the shipped models import, constant shape subgraphs fold, BN folds
// into Conv, opset-11 forms import, and bad files give pinned InputError messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <string>

#include "compiler/frontends/onnx_import.h"
#include "compiler/reference/error_bound.h"
#include "compiler/reference/interpreter.h"
#include "isa/chip_config.h"

namespace ir = lpu::ir;
namespace ref = lpu::ref;
namespace frontend = lpu::frontend;
using lpu::InputError;
using lpu::ir::OpKind;

namespace {
std::string data(const std::string& rel) { return std::string(LPU_SOURCE_DIR) + "/tests/data/" + rel; }

int count_ops(const ir::Graph& g, OpKind k) {
  int n = 0;
  for (const auto& op : g.ops()) n += op.kind == k;
  return n;
}

// Runs tests/data/onnx_import/<name> and checks the output against numpy's float64 result, which
// stands for the exact value: |ref - exact| <= bound.
void check_against_numpy(const ir::Graph& g, const std::string& name) {
  const std::string d = data("onnx_import/" + name + "/test_data_set_0/");
  auto in = frontend::load_onnx_tensor_file(d + "input_0.pb");
  auto want = frontend::load_onnx_tensor_file(d + "output_0.pb");
  std::vector<ref::Value> bounds;
  auto got = ref::run_with_error_bound(g, {in}, &bounds);
  REQUIRE(got[0].shape == want.shape);
  for (int64_t k = 0; k < want.elements(); ++k) {
    INFO(name << " element " << k << ": got " << got[0].f[k] << " want " << want.f[k] << " bound " << bounds[0].f[k]);
    // numpy's expected value was rounded to fp32 when stored: half an fp32 ulp more.
    CHECK(std::fabs(got[0].f[k] - want.f[k]) <= bounds[0].f[k] + std::ldexp(std::fabs(want.f[k]), -24));
  }
}
}  // namespace

TEST_CASE("onnx: the shipped models import") {
  for (const std::string name : {"mlp", "cnn", "gpt_block", "encoder_layer", "mobile_block"}) {
    const auto g = frontend::import_onnx(std::string(LPU_SOURCE_DIR) + "/workloads/models/" + name + "/model.onnx");
    INFO(name << "\n" << g.to_text());
    CHECK(g.inputs().size() == 1);
    CHECK(g.outputs().size() == 1);
    CHECK(g.tensor(g.outputs()[0]).name == "output");
    // Nothing but compute is left: no op has only constant inputs.
    for (const auto& op : g.ops()) {
      bool all_const = true;
      for (auto t : op.inputs) all_const &= t == ir::kNoTensor || g.tensor(t).is_const;
      CHECK_FALSE(all_const);
    }
    CHECK(count_ops(g, OpKind::BatchNormalization) == 0);
  }
}

TEST_CASE("onnx: import is deterministic") {
  const std::string p = std::string(LPU_SOURCE_DIR) + "/workloads/models/gpt_block/model.onnx";
  CHECK(frontend::import_onnx(p).to_text() == frontend::import_onnx(p).to_text());
}

TEST_CASE("onnx: a Reshape whose shape comes from Shape-Gather-Unsqueeze-Concat is folded") {
  const auto g = frontend::import_onnx(data("onnx_import/shape_fold/model.onnx"));
  // Identity and Dropout vanish, the shape subgraph becomes the attribute [2,12].
  CHECK(g.to_text() ==
        "graph shape_fold\n"
        "input %x:f32[2,3,4]\n"
        "%r:f32[2,12] = Reshape(%x) {shape=[2,12]}  # reshape\n"
        "%y:f32[2,12] = Relu(%r)  # relu\n"
        "output %y:f32[2,12]\n");
  check_against_numpy(g, "shape_fold");
}

TEST_CASE("onnx: BatchNormalization folds into the preceding Conv") {
  const auto folded = frontend::import_onnx(data("onnx_import/bn_fold/model.onnx"));
  CHECK(count_ops(folded, OpKind::BatchNormalization) == 0);
  CHECK(count_ops(folded, OpKind::Conv) == 1);
  check_against_numpy(folded, "bn_fold");
  frontend::OnnxImportOptions o;
  o.fold_batchnorm = false;
  const auto kept = frontend::import_onnx(data("onnx_import/bn_fold/model.onnx"), o);
  CHECK(count_ops(kept, OpKind::BatchNormalization) == 1);
  check_against_numpy(kept, "bn_fold");
}

TEST_CASE("onnx: opset 11 forms (attribute axes, 2-D softmax) import") {
  const auto g = frontend::import_onnx(data("onnx_import/opset11/model.onnx"));
  check_against_numpy(g, "opset11");
  // Softmax over axis 1 of a rank-3 tensor in opset 11 means over the flattened [1,3) dims.
  CHECK(count_ops(g, OpKind::Softmax) == 1);
  for (const auto& op : g.ops())
    if (op.kind == OpKind::Softmax) CHECK(g.tensor(op.inputs[0]).shape == ir::Shape{2, 9});
}

TEST_CASE("onnx: symbolic dims can be given values") {
  frontend::OnnxImportOptions o;
  o.dim_values["batch"] = 4;
  const auto g = frontend::import_onnx(data("bad_onnx/symbolic_dim.onnx"), o);
  CHECK(g.tensor(g.inputs()[0]).shape == ir::Shape{4, 3});
}

TEST_CASE("onnx: bad files give InputError naming the file and the problem") {
  struct Case { const char* file; const char* message; };
  const Case cases[] = {
      {"truncated.onnx",
       "truncated.onnx: not a valid ONNX protobuf (truncated or not an ONNX ModelProto; 45 bytes)"},
      {"not_protobuf.onnx",
       "not_protobuf.onnx: not a valid ONNX protobuf (truncated or not an ONNX ModelProto; 39 bytes)"},
      {"empty.onnx",
       "empty.onnx: file is empty; expected a serialized ONNX ModelProto"},
      {"cyclic.onnx",
       "cyclic.onnx: ONNX checker: Nodes in a graph must be topologically sorted, however input 'b' of node: name: r1 OpType: Relu is not output of any previous nodes."},
      {"missing_initializer.onnx",
       "missing_initializer.onnx: node 'mm' (MatMul) reads 'W', which is not a graph input, an initializer or any node's output (missing initializer?)"},
      {"symbolic_dim.onnx",
       "symbolic_dim.onnx: graph input 'x' dim 0 is symbolic 'batch'; lpusim needs static shapes (give a value for it, e.g. --dim batch=1, or re-export with fixed sizes)"},
      {"zero_dim.onnx",
       "zero_dim.onnx: graph input 'x' dim 0 is 0; every dim must be >= 1"},
      {"negative_dim.onnx",
       "negative_dim.onnx: graph input 'x' dim 0 is -2; every dim must be >= 1"},
      {"wrong_arity.onnx",
       "wrong_arity.onnx: ONNX checker: Node (add3) has input size 3 not in range [min=2, max=2]. ==> Context: Bad node spec for node. Name: add3 OpType: Add"},
      {"unsupported_op.onnx",
       "unsupported_op.onnx: node 'hm' (Hardmax, opset 13): op type is not supported; supported: Abs, Add, AveragePool, BatchNormalization, Cast, Celu, Clip, Concat, Constant, Conv, Div, Dropout, Elu, Equal, Erf, Exp, Flatten, Gather, Gemm, GlobalAveragePool, HardSigmoid, HardSwish, Identity, LayerNormalization, LeakyRelu, Log, LogSoftmax, MatMul, Max, MaxPool, Mean, Min, Mul, Neg, PRelu, Pow, Reciprocal, ReduceL1, ReduceL2, ReduceMax, ReduceMean, ReduceMin, ReduceSum, ReduceSumSquare, Relu, Reshape, Selu, Shape, Sigmoid, Slice, Softmax, Softplus, Softsign, Split, Sqrt, Squeeze, Sub, Sum, Tanh, Transpose, Unsqueeze, Where"},
      {"unsupported_attr_value.onnx",
       "unsupported_attr_value.onnx: node 'bn' (BatchNormalization, opset 15): training_mode=1 is not supported; only inference"},
      {"opset_too_old.onnx",
       "opset_too_old.onnx: default-domain opset 5 is not supported; allowed: 6..17 (re-export with opset_version in that range)"},
      {"unsupported_dtype.onnx",
       "unsupported_dtype.onnx: graph input 'x' has element type DOUBLE; supported: FLOAT, FLOAT16, INT8, INT32, INT64, BOOL"},
      {"reshape_shape_not_constant.onnx",
       "reshape_shape_not_constant.onnx: node 'reshape' (Reshape, opset 13): input 1 ('shape', tensor 's') must be a compile-time constant; it depends on graph inputs"},
      {"matmul_mismatch.onnx",
       "matmul_mismatch.onnx: ONNX shape inference: [ShapeInferenceError] Shape inference error(s): (op_type:MatMul, node name: mm): [ShapeInferenceError] Incompatible dimensions for matrix multiplication"},
      {"external_data.onnx",
       "external_data.onnx: ONNX checker: Data of TensorProto ( tensor name: b) should be stored in weights.bin, but it doesn't exist or is not accessible."},
      {"empty_slice.onnx",
       "empty_slice.onnx: node 'slice' (Slice, opset 13): slice of axis 0 (size 4) with start 3, end 1, step 1 is empty; empty tensors are not supported"},
      {"raw_data_short.onnx",  // found by fuzz_onnx_import: libonnx's shape inference read past raw_data
       "raw_data_short.onnx: tensor 'st' raw_data has 1 bytes; shape [1] of i64 needs 8"},
      {"does_not_exist.onnx",
       "does_not_exist.onnx: cannot open file"},
  };
  for (const auto& c : cases) {
    const std::string path = data(std::string("bad_onnx/") + c.file);
    std::string msg = "(no error)";
    try {
      frontend::import_onnx(path);
    } catch (const InputError& e) {
      msg = e.what();
    }
    // Messages name the file by the path given; compare without the source-dir prefix.
    const std::string prefix = data("bad_onnx/");
    if (msg.compare(0, prefix.size(), prefix) == 0) msg = msg.substr(prefix.size());
    CHECK(msg == c.message);
  }
  // A directory (e.g. a model's folder instead of its model.onnx) is named as such, with the file
  // it probably meant; before, it read as an empty file ("file is empty").
  const std::string dir = std::string(LPU_SOURCE_DIR) + "/workloads/models/mlp";
  std::string msg = "(no error)";
  try {
    frontend::import_onnx(dir);
  } catch (const InputError& e) {
    msg = e.what();
  }
  CHECK(msg == dir + ": is a directory; expected a file (did you mean " + dir + "/model.onnx?)");
}
