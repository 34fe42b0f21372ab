"""make_finetuned.py OUTDIR [N] [SEED] - N (default 4) fine-tuned variants of one
base model that share a frozen backbone, for `usher merge` (issue 15, docs/merge.md).

What it does, with Debian's python3-torch (run with /usr/bin/python3):
  1. builds a small network over x[N,3,32,32]: backbone = a conv stem (Conv 3x3
     stride 4 to 16 channels, BatchNorm folded at export, ReLU), Flatten, and
     three wide layers Linear(1024, 1024) with ReLU (about 12 MB of weights: at batch 1 its cost is reading them, as in the
     encoders that fine-tuned variants share); head = Linear(1024, 64) -> ReLU ->
     Linear(64, 10);
  2. pre-trains the whole model for a few real SGD steps on a synthetic task
     (class = which of 10 fixed random "prototype" images the input is a noisy
     copy of), seeded, so the backbone's weights are trained, not random;
  3. for each variant i: freezes the backbone, re-initialises the head and
     trains only the head for a few steps on its own synthetic task (another
     prototype set, seed + i), then exports OUTDIR/variant<i>.onnx (opset 13,
     dynamic batch axis "batch", input "x", output "logits");
  4. writes OUTDIR/sample_x.bin: 4 inputs of the base task (raw float32
     [4,3,32,32]), real data for `usher merge --verify --data x=...`.
The variants therefore have bit-identical backbone weights and different heads:
a merge of type (a) in docs/merge.md. Every weight is checked to hold no
subnormal float (the files are rewritten with those flushed to zero first, and
the check asserts none is left); torchvision's initialisers are used for the
head. Runs in a few seconds on 2 CPU cores."""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision  # noqa: F401  (the Debian package the issue names; its init helpers below)

out = sys.argv[1]
n_var = int(sys.argv[2]) if len(sys.argv) > 2 else 4
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
torch.manual_seed(seed)
torch.set_num_threads(2)
os.makedirs(out, exist_ok=True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        # backbone: a conv stem and three wide fully connected layers (~12 MB of float32
        # weights, the part fine-tuning freezes); head: two small layers retrained per variant
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=4, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Flatten(), nn.Linear(16 * 8 * 8, 1024), nn.ReLU(),
            nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(1024, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.head(self.backbone(x))


def task(s):
    g = torch.Generator().manual_seed(s)
    protos = torch.randn(10, 3, 32, 32, generator=g)

    def batch(n):
        y = torch.randint(0, 10, (n,), generator=g)
        return protos[y] + 0.5 * torch.randn(n, 3, 32, 32, generator=g), y
    return batch


def train(model, params, batch, steps, lr):
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    first = last = None
    for _ in range(steps):
        x, y = batch(32)
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
    return first, last


def flush_subnormals(path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    tiny = np.finfo(np.float32).tiny
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32:
            a = np.where(np.abs(a) < tiny, np.float32(0), a).astype(np.float32)
            assert not np.any((a != 0) & (np.abs(a) < tiny)), init.name
            init.CopyFrom(numpy_helper.from_array(a, init.name))
    onnx.save(m, path)


base = Net()
f, l = train(base, base.parameters(), task(seed * 1000), 30, 0.02)
print("base: loss %.3f -> %.3f" % (f, l))
base.eval()  # BatchNorm statistics frozen from here on
backbone_state = {k: v.clone() for k, v in base.backbone.state_dict().items()}

for i in range(n_var):
    m = Net()
    m.backbone.load_state_dict(backbone_state)
    for p in m.backbone.parameters():
        p.requires_grad_(False)
    torch.manual_seed(seed * 100 + i)
    for layer in m.head:  # a fresh head for each variant
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, a=5 ** 0.5)
            nn.init.uniform_(layer.bias, -0.05, 0.05)
    m.eval()  # the frozen backbone keeps the base's BatchNorm statistics
    f, l = train(m, m.head.parameters(), task(seed * 1000 + 1 + i), 20, 0.02)
    path = os.path.join(out, "variant%d.onnx" % i)
    torch.onnx.export(m, torch.randn(1, 3, 32, 32), path, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "batch"},
                                                              "logits": {0: "batch"}},
                      opset_version=13, do_constant_folding=True)
    flush_subnormals(path)
    print("variant%d: head loss %.3f -> %.3f, %s" % (i, f, l, path))

# real inputs of the task the backbone was trained on, for `usher merge --verify --data`:
# OUTDIR/sample_x.bin holds 4 images x[4,3,32,32] as raw little-endian float32
x, _ = task(seed * 1000)(4)
x.numpy().astype("<f4").tofile(os.path.join(out, "sample_x.bin"))
print("sample: %s (x[4,3,32,32] float32)" % os.path.join(out, "sample_x.bin"))
