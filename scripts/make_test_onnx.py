#!/usr/bin/env python3
"""Makes the small hand-built ONNX files the front-end tests read.

tests/data/bad_onnx/*.onnx     files the importer must reject with a precise InputError
tests/data/onnx_import/<name>/ good graphs exercising folding and opset variants, with
                               test_data_set_0/{input_0.pb,output_0.pb} computed by numpy in float64
Run with Debian's python3 (python3-onnx, python3-numpy): /usr/bin/python3 scripts/make_test_onnx.py
Outputs are deterministic and committed; never run at build or test time.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BAD = os.path.join(ROOT, "tests", "data", "bad_onnx")
GOOD = os.path.join(ROOT, "tests", "data", "onnx_import")


def model(nodes, inputs, outputs, inits=(), opset=13, name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_test_onnx")
    m.ir_version = 8
    return m


def vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def save(m, path):
    with open(path, "wb") as f:
        f.write(m.SerializeToString())


def write_bad():
    os.makedirs(BAD, exist_ok=True)
    relu = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [2, 3])], [vi("y", [2, 3])])
    data = relu.SerializeToString()
    with open(os.path.join(BAD, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(BAD, "not_protobuf.onnx"), "wb") as f:
        f.write(b"this is a text file, not an ONNX model\n")
    open(os.path.join(BAD, "empty.onnx"), "wb").close()
    # cyclic: a -> b -> a
    save(model([helper.make_node("Relu", ["b"], ["a"], name="r1"), helper.make_node("Relu", ["a"], ["b"], name="r2")],
               [vi("x", [2])], [vi("b", [2])]), os.path.join(BAD, "cyclic.onnx"))
    save(model([helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], [vi("x", [2, 3])], [vi("y", [2, 4])]),
         os.path.join(BAD, "missing_initializer.onnx"))
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", ["batch", 3])], [vi("y", ["batch", 3])]),
         os.path.join(BAD, "symbolic_dim.onnx"))
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [0, 3])], [vi("y", [0, 3])]),
         os.path.join(BAD, "zero_dim.onnx"))
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [-2, 3])], [vi("y", [-2, 3])]),
         os.path.join(BAD, "negative_dim.onnx"))
    save(model([helper.make_node("Add", ["x", "x", "x"], ["y"], name="add3")], [vi("x", [2])], [vi("y", [2])]),
         os.path.join(BAD, "wrong_arity.onnx"))
    save(model([helper.make_node("Hardmax", ["x"], ["y"], name="hm")], [vi("x", [2, 3])], [vi("y", [2, 3])]),
         os.path.join(BAD, "unsupported_op.onnx"))
    bn_inits = [numpy_helper.from_array(np.ones((2,), np.float32), n) for n in ("s", "b", "m", "v")]
    save(model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], name="bn",
                                 training_mode=1)],
               [vi("x", [1, 2, 3, 3])], [vi("y", [1, 2, 3, 3]), vi("rm", [2]), vi("rv", [2])], inits=bn_inits, opset=15),
         os.path.join(BAD, "unsupported_attr_value.onnx"))
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [2], TensorProto.DOUBLE)],
               [vi("y", [2], TensorProto.DOUBLE)]), os.path.join(BAD, "unsupported_dtype.onnx"))
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [2])], [vi("y", [2])], opset=5),
         os.path.join(BAD, "opset_too_old.onnx"))
    save(model([helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape")], [vi("x", [2, 3]), vi("s", [2], TensorProto.INT64)],
               [vi("y", [3, 2])]), os.path.join(BAD, "reshape_shape_not_constant.onnx"))
    save(model([helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], [vi("x", [2, 3])], [vi("y", [2, 5])],
               inits=[numpy_helper.from_array(np.ones((4, 5), np.float32), "W")]), os.path.join(BAD, "matmul_mismatch.onnx"))
    ext = numpy_helper.from_array(np.ones((3,), np.float32), "b")
    ext.ClearField("raw_data")
    ext.data_location = TensorProto.EXTERNAL
    ext.external_data.add(key="location", value="weights.bin")
    save(model([helper.make_node("Add", ["x", "b"], ["y"], name="add")], [vi("x", [3])], [vi("y", [3])], inits=[ext]),
         os.path.join(BAD, "external_data.onnx"))
    save(model([helper.make_node("Slice", ["x", "st", "en"], ["y"], name="slice")], [vi("x", [4])], [vi("y", ["n"])],
               inits=[numpy_helper.from_array(np.array([3], np.int64), "st"), numpy_helper.from_array(np.array([1], np.int64), "en")]),
         os.path.join(BAD, "empty_slice.onnx"))


def write_case(name, m, inputs, outputs):
    d = os.path.join(GOOD, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    onnx.checker.check_model(m)
    save(m, os.path.join(d, "model.onnx"))
    for i, a in enumerate(inputs):
        with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, m.graph.input[i].name).SerializeToString())
    for i, a in enumerate(outputs):
        with open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a.astype(np.float32), m.graph.output[i].name).SerializeToString())


def write_good():
    rng = np.random.default_rng(7)
    # Reshape whose shape is computed: Shape -> Gather -> Unsqueeze -> Concat, plus Identity/Dropout.
    c = lambda n, v: numpy_helper.from_array(np.array(v, np.int64), n)
    nodes = [
        helper.make_node("Identity", ["x"], ["xi"], name="ident"),
        helper.make_node("Shape", ["xi"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["newshape"], name="concat", axis=0),
        helper.make_node("Reshape", ["xi", "newshape"], ["r"], name="reshape"),
        helper.make_node("Dropout", ["r"], ["rd"], name="dropout"),
        helper.make_node("Relu", ["rd"], ["y"], name="relu"),
    ]
    m = model(nodes, [vi("x", [2, 3, 4])], [vi("y", [2, 12])],
              inits=[c("zero", 0), c("ax0", [0]), c("minus1", [-1])], name="shape_fold")
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    write_case("shape_fold", m, [x], [np.maximum(x.reshape(2, 12), 0)])

    # Conv -> BatchNormalization -> Relu (BN folds into the conv).
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32) * 0.3
    b = rng.standard_normal(4).astype(np.float32) * 0.1
    sc, bi = rng.uniform(0.5, 1.5, 4).astype(np.float32), rng.uniform(-0.2, 0.2, 4).astype(np.float32)
    mu, var = rng.uniform(-0.5, 0.5, 4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)
    f = lambda n, a: numpy_helper.from_array(a, n)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "sc", "bi", "mu", "var"], ["bn"], name="bn", epsilon=1e-5),
             helper.make_node("Relu", ["bn"], ["y"], name="relu")]
    m = model(nodes, [vi("x", [1, 2, 5, 5])], [vi("y", [1, 4, 5, 5])],
              inits=[f("w", w), f("b", b), f("sc", sc), f("bi", bi), f("mu", mu), f("var", var)], name="bn_fold")
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((1, 4, 5, 5))
    for o in range(4):
        for i in range(5):
            for j in range(5):
                conv[0, o, i, j] = np.sum(xp[0, :, i:i + 3, j:j + 3] * w[o]) + b[o]
    s = (sc / np.sqrt(var.astype(np.float64) + 1e-5))[None, :, None, None]
    y = np.maximum((conv - mu[None, :, None, None]) * s + bi[None, :, None, None], 0)
    write_case("bn_fold", m, [x], [y])

    # Opset 11 forms: axes/split as attributes, Softmax coerced to 2-D.
    nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], name="unsq", axes=[0]),
             helper.make_node("Squeeze", ["u"], ["s"], name="sq", axes=[0]),
             helper.make_node("Split", ["s"], ["a", "b"], name="split", axis=2, split=[1, 3]),
             helper.make_node("ReduceSum", ["a"], ["ra"], name="rsum", axes=[2], keepdims=1),
             helper.make_node("Softmax", ["b"], ["sb"], name="softmax", axis=1),
             helper.make_node("Mul", ["sb", "ra"], ["y"], name="mul")]
    m = model(nodes, [vi("x", [2, 3, 4])], [vi("y", [2, 3, 3])], opset=11, name="opset11")
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    a, bb = x[:, :, :1].astype(np.float64), x[:, :, 1:].astype(np.float64)
    e = np.exp(bb - bb.reshape(2, 9).max(axis=1)[:, None, None])
    sm = e / e.reshape(2, 9).sum(axis=1)[:, None, None]
    write_case("opset11", m, [x], [sm * a.sum(axis=2, keepdims=True)])


if __name__ == "__main__":
    write_bad()
    write_good()
    print("wrote", BAD, "and", GOOD, file=sys.stderr)
