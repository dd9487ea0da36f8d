#!/usr/bin/env python3
# Writes fold_bomb.txtpb (too long to keep by hand): three constant vectors of N floats broadcast by
# two Adds into an [N, N, N] constant, which the importer would fold at import -- a 48 KB file
# asking for N^3 = 6.4e10 elements (about 1 TB while folding). Encode as the other sources:
#   python3 fold_bomb.py > /tmp/fold_bomb.txtpb
#   protoc --encode=onnx.ModelProto -I/usr/include onnx/onnx.proto < /tmp/fold_bomb.txtpb > ../inputs/fold_bomb.onnx
N = 4000
vals = " ".join("float_data: 1" for _ in range(N))


def init(name, dims):
    return 'initializer { name: "%s" data_type: 1 %s %s }' % (name, " ".join("dims: %d" % d for d in dims), vals)


print('''ir_version: 8
opset_import { domain: "" version: 13 }
graph { name: "g"
  node { input: "a" input: "b" output: "ab" name: "add1" op_type: "Add" }
  node { input: "ab" input: "c" output: "abc" name: "add2" op_type: "Add" }
  node { input: "x" input: "abc" output: "y" name: "add3" op_type: "Add" }
  %s
  %s
  %s
  input { name: "x" type { tensor_type { elem_type: 1 shape { dim { dim_value: 1 } } } } }
  output { name: "y" type { tensor_type { elem_type: 1 shape { dim { dim_value: %d } dim { dim_value: %d } dim { dim_value: %d } } } } }
}''' % (init("a", [N, 1]), init("b", [1, N]), init("c", [N, 1, 1]), N, N, N))
