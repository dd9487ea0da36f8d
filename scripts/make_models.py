#!/usr/bin/env python3
"""Makes the small ONNX test models under workloads/models/ (torch export, opset 13, fixed seed).

Each model gets workloads/models/<name>/model.onnx and test_data_set_0/{input_0.pb,output_0.pb}
(the ONNX backend-test layout) holding a random input and torch's fp32 output for it.
Run with Debian's python3 (packages python3-torch python3-onnx python3-numpy):
    /usr/bin/python3 scripts/make_models.py [out_dir]
Never run at build or test time; the outputs are committed.
    /usr/bin/python3 scripts/make_models.py --resnet50 OUT.onnx
writes a torchvision-layout ResNet-50 with random weights (~100 MB, not committed; bench/bench_models
generates it into its build directory) and resnet50_test_data_set_0/ beside it.
"""
import math
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper
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

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        return torch.relu(self.bn3(self.conv3(y)) + idt)


class ResNet50(nn.Module):
    """torchvision.models.resnet50 layout (torchvision is not installed; written out here), random weights."""

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


def export_resnet50(path):
    """Writes ResNet-50 (batch 1, 3x224x224) to `path` (~100 MB; generated, never committed)."""
    torch.manual_seed(2000)
    model = ResNet50()
    randomize_bn(model)
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, (x,), path, opset_version=OPSET, input_names=["input"], output_names=["output"],
                      do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    # An ONNX test-data set next to it (for `lpusim check PATH DIR`): the input and torch's output.
    d = os.path.join(os.path.dirname(os.path.abspath(path)), "resnet50_test_data_set_0")
    os.makedirs(d, exist_ok=True)
    with torch.no_grad():
        y = model(x)
    for fname, arr, tname in (("input_0.pb", x, "input"), ("output_0.pb", y, "output")):
        with open(os.path.join(d, fname), "wb") as f:
            f.write(numpy_helper.from_array(arr.numpy().astype(np.float32), tname).SerializeToString())
    print(f"resnet50: {os.path.getsize(path)} bytes -> {path}, test data in {d}")


MODELS = [
    ("mlp", MLP, (1, 784)),
    ("cnn", SmallCNN, (1, 1, 28, 28)),
    ("gpt_block", GPTBlock, (1, 16, 64)),
    ("encoder_layer", EncoderLayer, (1, 16, 64)),
]


def randomize_bn(m):
    """Gives BatchNorm layers non-trivial running statistics so folding them is actually tested."""
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--resnet50":
        export_resnet50(sys.argv[2])
        return
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "workloads", "models")
    for i, (name, cls, shape) in enumerate(MODELS):
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
        torch.onnx.export(model, (x,), path, opset_version=OPSET, input_names=["input"],
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
