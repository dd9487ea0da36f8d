#!/usr/bin/env python3
"""Makes the small ONNX test models under workloads/models/ (torch export, opset 13, fixed seed).

Each model gets workloads/models/<name>/model.onnx and test_data_set_0/{input_0.pb,output_0.pb}
(the ONNX backend-test layout) holding a random input and torch's fp32 output for it.
Run with Debian's python3 (packages python3-torch python3-onnx python3-numpy; python3-torchvision for --resnet50):
    /usr/bin/python3 scripts/make_models.py [out_dir] [--only NAME]
Never run at build or test time; the outputs are committed.
    /usr/bin/python3 scripts/make_models.py --resnet50 OUT.onnx
writes torchvision.models.resnet50(weights=None) with random weights (~100 MB, not committed;
bench/bench_models generates it into its build directory); without python3-torchvision, the same
layout written out below (it says so).
    /usr/bin/python3 scripts/make_models.py --mobilenet-v2 OUT.onnx
    /usr/bin/python3 scripts/make_models.py --mobilenet-v3-small OUT.onnx
write torchvision's MobileNetV2 / MobileNetV3-small (random weights, batch 1, 3x224x224), with
<OUT stem>_test_data_set_0/ beside each.
    /usr/bin/python3 scripts/make_models.py --bert-base OUT.onnx
    /usr/bin/python3 scripts/make_models.py --bert-base-encoder OUT.onnx
write BERT-base (sequence 128, batch 1, random weights; ~440 MB / ~340 MB): the whole model
(inputs input_ids and token_type_ids, int64 [1, 128]; embedding lookups are ONNX Gather), or the
12-layer encoder stack alone (input = the embeddings' output, float [1, 128, 768]; no Gather).
Each generated model gets <OUT stem>_test_data_set_0/ beside it (inputs and torch's fp32 output).
    /usr/bin/python3 scripts/make_models.py --layernorm ROWS K OUT.onnx
writes ONE LayerNormalization node (opset 17) over f16 x [ROWS, K], scale 1 and bias 0 (a timing
probe: `lpusim compile OUT.onnx --asm OUT.asm`; docs/ROADMAP.md's LayerNorm figures use 128 768).
"""
import math
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

OPSET = 13


class MLP(nn.Module):
    """784-512-256-10 multilayer perceptron with ReLU."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class SmallCNN(nn.Module):
    """Conv+BN+ReLU+MaxPool, a strided depthwise conv, AvgPool, dilated conv, global pool, FC."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
        self.b2 = nn.BatchNorm2d(8)
        self.c3 = nn.Conv2d(8, 16, 3, padding=2, dilation=2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.b1(self.c1(x))), 2)        # 8x14x14
        x = torch.relu(self.b2(self.c2(x)))                                       # 8x7x7
        x = nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)  # 8x7x7
        x = torch.sigmoid(self.c3(x))                                             # 16x7x7
        x = nn.functional.adaptive_avg_pool2d(x, 1)                               # 16x1x1
        return self.fc(torch.flatten(x, 1))


class GPTBlock(nn.Module):
    """Pre-LN GPT block: causal multi-head self-attention and a GELU MLP, with residuals."""

    def __init__(self, d=64, heads=4, seq=16):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.register_buffer("mask", torch.tril(torch.ones(seq, seq)).view(1, 1, seq, seq))

    def forward(self, x):
        B, T, C = x.size()
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, T, h, C // h).transpose(1, 2)
        k = k.view(B, T, h, C // h).transpose(1, 2)
        v = v.view(B, T, h, C // h).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.proj(y)
        return x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))


class EncoderLayer(nn.Module):
    """torch.nn.TransformerEncoderLayer (post-LN, ReLU FFN), batch-first, eval mode."""

    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, dropout=0.0,
                                                batch_first=True)

    def forward(self, x):
        return self.layer(x)


class MobileBlock(nn.Module):
    """MobileNet-style layers on 4-D conv activations, for the activations written as IR chains
    (compiler/frontends/onnx_activations.h): ReLU6 (Clip), an inverted residual (1x1 expand,
    depthwise 3x3 + Hardswish, a squeeze-and-excitation scale as MobileNetV3's, 1x1 project,
    residual Add), LeakyReLU, PReLU per channel, ELU, Softplus, global pool, FC and LogSoftmax.
    Exported at opset 14 (its HardSwish node)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(16, 64, 1), nn.BatchNorm2d(64), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.BatchNorm2d(64), nn.Hardswish())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(64, 16, 1), nn.ReLU(), nn.Conv2d(16, 64, 1),
                                nn.Hardsigmoid())
        self.project = nn.Sequential(nn.Conv2d(64, 16, 1), nn.BatchNorm2d(16))
        self.head = nn.Sequential(nn.LeakyReLU(0.1), nn.Conv2d(16, 32, 1), nn.PReLU(32), nn.Conv2d(32, 32, 1),
                                  nn.ELU(), nn.Softplus())
        self.fc = nn.Linear(32, 10)
        with torch.no_grad():  # PReLU's slopes differ per channel (torch starts them all at 0.25)
            self.head[2].weight.uniform_(0.05, 0.5)

    def forward(self, x):
        s = self.stem(x)                                                          # 16x16x16
        d = self.dw(self.expand(s))                                               # 64x16x16
        y = self.head(s + self.project(d * self.se(d)))                           # 32x16x16
        y = nn.functional.adaptive_avg_pool2d(y, 1)                               # 32x1x1
        return torch.log_softmax(self.fc(torch.flatten(y, 1)), dim=1)


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck (v1.5: the stride sits on the 3x3 conv)."""

    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):  # in torchvision's order, so both export the same node sequence
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        idt = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + idt)


class ResNet50(nn.Module):
    """torchvision.models.resnet50 layout written out (used only when torchvision is missing), random weights."""

    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, cin = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for b in range(blocks):
                layers.append(Bottleneck(cin, width, stride if b == 0 else 1))
                cin = width * 4
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, classes)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = nn.functional.adaptive_avg_pool2d(self.layers(x), 1)
        return self.fc(torch.flatten(x, 1))


def write_test_data(path, inputs, outputs):
    """Writes <path stem>_test_data_set_0/{input_N,output_N}.pb beside `path` (for `lpusim check PATH DIR`).

    inputs/outputs: lists of (ONNX value name, tensor); float tensors are stored as float32."""
    stem = os.path.splitext(os.path.basename(path))[0]
    d = os.path.join(os.path.dirname(os.path.abspath(path)), stem + "_test_data_set_0")
    os.makedirs(d, exist_ok=True)
    for prefix, pairs in (("input", inputs), ("output", outputs)):
        for i, (name, t) in enumerate(pairs):
            arr = t.detach().numpy()
            if arr.dtype.kind == "f":
                arr = arr.astype(np.float32)
            with open(os.path.join(d, f"{prefix}_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(arr, name).SerializeToString())
    return d


def resnet50_model():
    """torchvision.models.resnet50(weights=None) if torchvision is installed, else the written-out copy."""
    try:
        import torchvision
    except ImportError:
        print("resnet50: torchvision is not installed (Debian python3-torchvision); "
              "using the hand-written copy of its layout")
        return ResNet50(), "hand-written torchvision layout"
    return torchvision.models.resnet50(weights=None), f"torchvision {torchvision.__version__}"


def export_resnet50(path):
    """Writes ResNet-50 (batch 1, 3x224x224) to `path` (~100 MB; generated, never committed)."""
    torch.manual_seed(2000)
    model, origin = resnet50_model()
    randomize_bn(model)
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, (x,), path, opset_version=OPSET, input_names=["input"], output_names=["output"],
                      do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    with torch.no_grad():
        y = model(x)
    d = write_test_data(path, [("input", x)], [("output", y)])
    print(f"resnet50 ({origin}): {os.path.getsize(path)} bytes -> {path}, test data in {d}")


def export_mobilenet(name, path):
    """Writes torchvision's MobileNetV2 or MobileNetV3-small (random weights, batch 1, 3x224x224;
    ~14 / ~10 MB; generated, never committed): ReLU6 (Clip), depthwise convs, Hardswish and
    squeeze-and-excitation (V3, opset 14 for its HardSwish / HardSigmoid nodes)."""
    import torchvision
    torch.manual_seed(2100)
    v3 = name == "mobilenet-v3-small"
    model = torchvision.models.mobilenet_v3_small(weights=None) if v3 else torchvision.models.mobilenet_v2(weights=None)
    randomize_bn(model)
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, (x,), path, opset_version=14 if v3 else OPSET, input_names=["input"],
                      output_names=["output"], do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE)
    with torch.no_grad():
        y = model(x)
    d = write_test_data(path, [("input", x)], [("output", y)])
    print(f"{name}: {os.path.getsize(path)} bytes -> {path}, test data in {d}")


class BertConfig:
    """BERT-base: 12 layers, hidden 768, 12 heads, FFN 3072, vocabulary 30522, 512 positions, 2 token types."""
    layers, hidden, heads, ffn, vocab, positions, type_vocab, eps = 12, 768, 12, 3072, 30522, 512, 2, 1e-12


class BertEmbeddings(nn.Module):
    """word + position + token-type embeddings, then LayerNorm (as in BERT)."""

    def __init__(self, c, seq):
        super().__init__()
        self.seq = seq
        self.word = nn.Embedding(c.vocab, c.hidden)
        self.position = nn.Embedding(c.positions, c.hidden)
        self.token_type = nn.Embedding(c.type_vocab, c.hidden)
        self.ln = nn.LayerNorm(c.hidden, eps=c.eps)
        self.register_buffer("position_ids", torch.arange(seq).view(1, seq))

    def forward(self, input_ids, token_type_ids):
        e = self.word(input_ids) + self.position(self.position_ids) + self.token_type(token_type_ids)
        return self.ln(e)


class BertLayer(nn.Module):
    """Post-LN BERT layer: self-attention (separate Q/K/V projections, no mask) and a GELU (erf) FFN."""

    def __init__(self, c, seq):
        super().__init__()
        self.seq, self.heads, self.dh = seq, c.heads, c.hidden // c.heads
        self.q = nn.Linear(c.hidden, c.hidden)
        self.k = nn.Linear(c.hidden, c.hidden)
        self.v = nn.Linear(c.hidden, c.hidden)
        self.o = nn.Linear(c.hidden, c.hidden)
        self.ln1 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.fc1 = nn.Linear(c.hidden, c.ffn)
        self.fc2 = nn.Linear(c.ffn, c.hidden)
        self.ln2 = nn.LayerNorm(c.hidden, eps=c.eps)

    def split(self, t):  # [1, S, H*D] -> [1, H, S, D]; literal sizes so the export has constant shapes
        return t.view(1, self.seq, self.heads, self.dh).permute(0, 2, 1, 3)

    def forward(self, x):
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        att = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(self.dh), dim=-1)
        ctx = (att @ v).permute(0, 2, 1, 3).reshape(1, self.seq, self.heads * self.dh)
        x = self.ln1(x + self.o(ctx))
        return self.ln2(x + self.fc2(nn.functional.gelu(self.fc1(x))))


class BertEncoder(nn.Module):
    def __init__(self, c, seq):
        super().__init__()
        self.layers = nn.ModuleList([BertLayer(c, seq) for _ in range(c.layers)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class BertBase(nn.Module):
    """BERT-base without pooler: (input_ids, token_type_ids) -> last hidden state [1, seq, 768]."""

    def __init__(self, c, seq):
        super().__init__()
        self.embeddings = BertEmbeddings(c, seq)
        self.encoder = BertEncoder(c, seq)

    def forward(self, input_ids, token_type_ids):
        return self.encoder(self.embeddings(input_ids, token_type_ids))


def init_bert(model):
    """BERT's initialization (weights N(0, 0.02)) with non-trivial biases and LayerNorm affines."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.Linear, nn.Embedding)):
                mod.weight.normal_(0.0, 0.02)
            if isinstance(mod, nn.Linear):
                mod.bias.uniform_(-0.05, 0.05)
            if isinstance(mod, nn.LayerNorm):
                mod.weight.uniform_(0.8, 1.2)
                mod.bias.uniform_(-0.1, 0.1)


BERT_OPSET = 17  # the highest the importer accepts; exports LayerNorm as one LayerNormalization node


def export_bert(path, encoder_only, seq=128):
    """Writes BERT-base (batch 1, sequence `seq`) or its encoder stack alone to `path`, with test data."""
    torch.manual_seed(3000)
    c = BertConfig()
    full = BertBase(c, seq)
    init_bert(full)
    full.eval()
    input_ids = torch.randint(0, c.vocab, (1, seq), dtype=torch.int64)
    token_type_ids = torch.cat([torch.zeros(1, seq // 2, dtype=torch.int64),
                                torch.ones(1, seq - seq // 2, dtype=torch.int64)], dim=1)
    with torch.no_grad():
        emb = full.embeddings(input_ids, token_type_ids)
        y = full.encoder(emb)
    if encoder_only:
        model, args, names, inputs = full.encoder, (emb,), ["embeddings"], [("embeddings", emb)]
    else:
        model, args, names = full, (input_ids, token_type_ids), ["input_ids", "token_type_ids"]
        inputs = [("input_ids", input_ids), ("token_type_ids", token_type_ids)]
    torch.onnx.export(model, args, path, opset_version=BERT_OPSET, input_names=names,
                      output_names=["last_hidden_state"], do_constant_folding=True)
    onnx.checker.check_model(path)
    d = write_test_data(path, inputs, [("last_hidden_state", y)])
    what = "bert-base encoder stack" if encoder_only else "bert-base"
    print(f"{what} (sequence {seq}, opset {BERT_OPSET}): {os.path.getsize(path)} bytes -> {path}, test data in {d}")


MODELS = [
    ("mlp", MLP, (1, 784)),
    ("cnn", SmallCNN, (1, 1, 28, 28)),
    ("gpt_block", GPTBlock, (1, 16, 64)),
    ("encoder_layer", EncoderLayer, (1, 16, 64)),
    ("mobile_block", MobileBlock, (1, 3, 32, 32)),
]
MODEL_OPSET = {"mobile_block": 14}  # others: OPSET


def randomize_bn(m):
    """Gives BatchNorm layers non-trivial running statistics so folding them is actually tested."""
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)


def export_layernorm(rows, k, path):
    """One LayerNormalization node over the last axis of f16 x [rows, k] (opset 17, epsilon 1e-5)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [rows, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [rows, k])
    scale = numpy_helper.from_array(np.ones(k, np.float16), "scale")
    bias = numpy_helper.from_array(np.zeros(k, np.float16), "bias")
    node = helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y"], axis=-1, epsilon=1e-5)
    graph = helper.make_graph([node], "layernorm", [x], [y], [scale, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    print(f"{path}: LayerNormalization over f16 [{rows}, {k}]")


def main():
    only = None
    if "--only" in sys.argv:
        k = sys.argv.index("--only")
        if k + 1 >= len(sys.argv) or sys.argv[k + 1] not in [m[0] for m in MODELS]:
            sys.exit(f"make_models.py: --only needs one of: {', '.join(m[0] for m in MODELS)}")
        only = sys.argv[k + 1]
        del sys.argv[k:k + 2]
    if len(sys.argv) == 5 and sys.argv[1] == "--layernorm":
        export_layernorm(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--resnet50":
        export_resnet50(sys.argv[2])
        return
    if len(sys.argv) == 3 and sys.argv[1] in ("--mobilenet-v2", "--mobilenet-v3-small"):
        export_mobilenet(sys.argv[1][2:], sys.argv[2])
        return
    if len(sys.argv) == 3 and sys.argv[1] in ("--bert-base", "--bert-base-encoder"):
        export_bert(sys.argv[2], encoder_only=sys.argv[1] == "--bert-base-encoder")
        return
    if len(sys.argv) > 1 and sys.argv[1].startswith("--"):
        sys.exit(f"make_models.py: unknown option {sys.argv[1]}; see the usage at the top of this file")
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "workloads", "models")
    for i, (name, cls, shape) in enumerate(MODELS):
        if only is not None and name != only:
            continue
        torch.manual_seed(1000 + i)
        model = cls()
        randomize_bn(model)
        model.eval()
        x = torch.randn(*shape)
        with torch.no_grad():
            y = model(x)
        d = os.path.join(out_dir, name)
        os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
        path = os.path.join(d, "model.onnx")
        # PRESERVE keeps BatchNormalization nodes (EVAL would fuse them into Conv in torch) and
        # no constant folding: the importer's own folding is what these models exercise.
        torch.onnx.export(model, (x,), path, opset_version=MODEL_OPSET.get(name, OPSET), input_names=["input"],
                          output_names=["output"], do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE)
        onnx.checker.check_model(onnx.load(path))
        for fname, arr, tname in (("input_0.pb", x, "input"), ("output_0.pb", y, "output")):
            t = numpy_helper.from_array(arr.numpy().astype(np.float32), tname)
            with open(os.path.join(d, "test_data_set_0", fname), "wb") as f:
                f.write(t.SerializeToString())
        print(f"{name}: {os.path.getsize(path)} bytes, input {tuple(x.shape)}, output {tuple(y.shape)}")


if __name__ == "__main__":
    main()
