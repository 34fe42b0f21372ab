"""check_normal_floats.py [--usher BIN --source DIR] - the models the tests
generate keep every value a normal float (issue 10).

A float32 value v with 0 < |v| < 2^-126 (1.17549435e-38) is subnormal; on
Intel CPUs arithmetic on subnormals takes microcode assists, and a model
whose activations decay into them runs 2-3x slower than for an input whose
activations do not, which breaks any latency measured on another input.

The graphs are evaluated here in numpy, in float32, node by node (the
operators are implemented below, nothing from ONNX Runtime), and every
weight, input, intermediate and output is checked: no subnormal, nothing
infinite or NaN. Models:

  - tests/make_mlp.py at 256 layers x 1024 (the overload test's) and at
    2 x 64 (the bad-model test's), for the inputs x = 1..16 (the overload
    test's request), zeros, and random rows in [-1, 1];
  - with --usher, resnet18 of the zoo given random weights by
    `usher convert --fill-random 1` (test_backend, test_runtime,
    test_worker and bench_ort run it), for random images in [-1, 1] and
    zeros.

Exit 0 when every value is normal (or 0), 1 otherwise; each offending
tensor is named. A self-test first runs a graph made to decay into
subnormals and requires the check to catch it. Run with /usr/bin/python3 (Debian's python3-onnx)."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

TINY = np.float32(1.17549435e-38)  # the smallest normal float32


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv(x, w, b, a):
    if a.get("group", 1) != 1 or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("Conv: only group 1 and explicit pads")
    n, c, h, wd = x.shape
    m, _, kh, kw = w.shape
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh:i * dh + sh * oh:sh, j * dw:j * dw + sw * ow:sw]
    y = cols.reshape(n, c * kh * kw, oh * ow).transpose(0, 2, 1) @ w.reshape(m, -1).T
    y = y.transpose(0, 2, 1).reshape(n, m, oh, ow).astype(np.float32)
    if b is not None:
        y = y + b.reshape(1, m, 1, 1)
    return y


def maxpool(x, a):
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    if a.get("ceil_mode", 0) or a.get("dilations", [1, 1]) != [1, 1]:
        raise NotImplementedError("MaxPool: ceil_mode or dilations")
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=-np.inf)
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    y = np.full((n, c, oh, ow), -np.inf, dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            y = np.maximum(y, xp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw])
    return y


def gemm(a_, b_, c_, a):
    if a.get("transA", 0):
        a_ = a_.T
    if a.get("transB", 0):
        b_ = b_.T
    y = np.float32(a.get("alpha", 1.0)) * (a_ @ b_)
    if c_ is not None:
        y = y + np.float32(a.get("beta", 1.0)) * c_
    return y


def run_node(node, ins):
    a = attrs(node)
    op = node.op_type
    if op == "MatMul":
        return ins[0] @ ins[1]
    if op == "Add":
        return ins[0] + ins[1]
    if op == "Relu":
        return np.maximum(ins[0], np.float32(0))
    if op == "Conv":
        return conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
    if op == "MaxPool":
        return maxpool(ins[0], a)
    if op == "GlobalAveragePool":
        return ins[0].mean(axis=tuple(range(2, ins[0].ndim)), keepdims=True, dtype=np.float32)
    if op == "Flatten":
        ax = a.get("axis", 1)
        return ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
    if op == "Gemm":
        return gemm(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
    raise NotImplementedError(f"operator {op}")


def bad_values(v):
    """(subnormal count, non-finite count) of a float32 array"""
    v = np.asarray(v)
    if v.dtype != np.float32:
        return 0, 0
    mag = np.abs(v)
    return int(np.count_nonzero((mag > 0) & (mag < TINY))), int(np.count_nonzero(~np.isfinite(v)))


def check(model, feeds, label):
    """evaluate model on feeds (name -> array); returns the list of problems"""
    g = model.graph
    env = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    problems = []

    def look(name, v, what):
        sub, nonfin = bad_values(v)
        if sub or nonfin:
            nz = np.abs(v[np.isfinite(v) & (v != 0)])
            problems.append(f"{label}: {what} {name}: {sub} subnormal, {nonfin} not finite of {v.size}"
                            f" (smallest nonzero |v| {nz.min() if nz.size else 0:.3e})")

    for name, v in env.items():
        look(name, v, "weight")
    for name, v in feeds.items():
        env[name] = v.astype(np.float32)
        look(name, env[name], "input")
    smallest = np.inf
    for node in g.node:
        outs = run_node(node, [env[i] if i else None for i in node.input])
        outs = outs if isinstance(outs, tuple) else (outs,)
        for name, v in zip(node.output, outs):
            v = np.asarray(v, dtype=np.float32)
            env[name] = v
            look(name, v, f"{node.op_type} output")
            nz = np.abs(v[(v != 0) & np.isfinite(v)])
            if nz.size:
                smallest = min(smallest, float(nz.min()))
    outs = [env[o.name] for o in g.output]
    print(f"  {label}: {len(g.node)} nodes, smallest nonzero |value| {smallest:.3e},"
          f" output |y| in [{min(float(np.abs(o).min()) for o in outs):.3e},"
          f" {max(float(np.abs(o).max()) for o in outs):.3e}]: "
          + ("ok" if not problems else f"{len(problems)} tensors not normal"))
    return problems


def decaying_model():
    """x[1,16] -> 70 x MatMul by I/4: 16 x 4^-70 = 2^-136 is subnormal, so the check must say so"""
    from onnx import TensorProto, helper
    w = numpy_helper.from_array(np.eye(16, dtype=np.float32) / 4, "w")
    nodes = [helper.make_node("MatMul", [f"h{i}", "w"], [f"h{i + 1}"]) for i in range(70)]
    g = helper.make_graph(nodes, "decay", [helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("h70", TensorProto.FLOAT, [1, 16])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--usher", help="the usher binary, to make resnet18 with --fill-random 1")
    ap.add_argument("--source", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                    help="the source tree (for models/zoo/resnet18.onnx)")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(10)
    # the check itself: a graph known to decay into subnormals must be caught
    if not check(decaying_model(), {"h0": np.full((1, 16), 16, np.float32)}, "self-test, decaying on purpose"):
        print("FAIL the self-test: a graph that decays into subnormals was not caught")
        return 1
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for layers, width in ((256, 1024), (2, 64)):
            path = os.path.join(tmp, f"mlp-{layers}x{width}.onnx")
            subprocess.run([sys.executable, os.path.join(here, "make_mlp.py"), path, str(layers), str(width)],
                           check=True)
            model = onnx.load(path)
            inputs = {
                "x = 1..16": np.arange(1, 17, dtype=np.float32).reshape(1, 16),
                "zeros": np.zeros((1, 16), np.float32),
                "random in [-1, 1], 8 rows": rng.uniform(-1, 1, (8, 16)).astype(np.float32),
            }
            for what, x in inputs.items():
                problems += check(model, {"x": x}, f"make_mlp {layers}x{width}, {what}")
        if args.usher:
            path = os.path.join(tmp, "resnet18-random.onnx")
            subprocess.run([args.usher, "convert", os.path.join(args.source, "models/zoo/resnet18.onnx"), path,
                            "--fill-random", "1"], check=True, stdout=subprocess.DEVNULL)
            model = onnx.load(path)
            for what, x in (("random in [-1, 1]", rng.uniform(-1, 1, (1, 3, 224, 224))),
                            ("zeros", np.zeros((1, 3, 224, 224)))):
                problems += check(model, {"input": x.astype(np.float32)},
                                  f"resnet18 --fill-random 1, {what}")
    for p in problems:
        print("FAIL", p)
    print("all values normal" if not problems else f"{len(problems)} tensors with subnormal or non-finite values")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
