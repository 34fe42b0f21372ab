"""make_merge_models.py OUTDIR - small ONNX models for tests/test_merge.sh and
tests/test_merge.c (issue 15). Run with /usr/bin/python3 (Debian's python3-onnx).

  mlp_a.onnx, mlp_b.onnx  x[batch,16] -> MatMul W1 -> Add b1 -> Relu -> MatMul W2 -> y[batch,4]
                          (opset 13); b's weights are a's with every other element one ulp up where that is <= 9.9e-8 relative:
                          equal within the default 1e-7, not bit-identical
  mlp_c.onnx              the same graph, every weight different (seed 2)
  mlp_int.onnx            the same graph with input x int32 then Cast (different input type)
  mlp_op11.onnx           mlp_a at opset 11 (mismatched opset)
  mlp_p0..2.onnx          mlp_a with W2's output columns 1 and 3 different per model (case c:
                          partly common weights)
  cycle.onnx              two nodes reading each other's output
  custom.onnx             a node of domain com.example (unsupported operator)
  conv_a.onnx, conv_b.onnx  x[1,3,8,8] -> Conv(4, 3x3, pad 1) -> BatchNorm -> Relu -> MaxPool 2
                          -> Flatten -> Gemm(transB) -> Softmax: same shapes, different weights
                          (the stacked kind: grouped Conv, batched MatMul)
Weights are drawn in [0.05, 1) with a random sign, so none is subnormal."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def w(rng, *shape):
    a = rng.uniform(0.05, 1.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return (a / np.sqrt(shape[0])).astype(np.float32)


def mlp(path, ws, opset=13, in_type=TensorProto.FLOAT):
    w1, b1, w2 = ws
    nodes = []
    x = "x"
    if in_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        x = "xf"
    nodes += [helper.make_node("MatMul", [x, "W1"], ["h"]),
              helper.make_node("Add", ["h", "b1"], ["hb"]),
              helper.make_node("Relu", ["hb"], ["r"]),
              helper.make_node("MatMul", ["r", "W2"], ["y"])]
    g = helper.make_graph(nodes, "mlp",
                          [helper.make_tensor_value_info("x", in_type, ["batch", 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
                          [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(b1, "b1"),
                           numpy_helper.from_array(w2, "W2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    onnx.save(m, os.path.join(out, path))


rng = np.random.default_rng(1)
a = [w(rng, 16, 32), w(rng, 32), w(rng, 32, 4)]


def nudge(t):
    # one ulp up where that is at most 9.9e-8 relative (mantissa >= 1.2), every other element
    m = np.abs(t) / np.exp2(np.floor(np.log2(np.abs(t))))
    pick = (m >= 1.2) & (np.arange(t.size).reshape(t.shape) % 2 == 0)
    return np.where(pick, np.nextafter(t, np.float32(np.inf)), t).astype(np.float32)


b = [nudge(t) for t in a]
assert any(not np.array_equal(x, y) for x, y in zip(a, b)), "the noise must change some bits"
c = [w(np.random.default_rng(2), 16, 32), w(np.random.default_rng(3), 32),
     w(np.random.default_rng(4), 32, 4)]
mlp("mlp_a.onnx", a)
mlp("mlp_b.onnx", b)
mlp("mlp_c.onnx", c)
mlp("mlp_int.onnx", a, in_type=TensorProto.INT32)
mlp("mlp_op11.onnx", a, opset=11)
# partly common: W1 and b1 as mlp_a's, W2's output columns 0 and 2 common, 1 and 3 per model
for i in range(3):
    w2 = a[2].copy()
    own = w(np.random.default_rng(20 + i), 32, 4)
    w2[:, 1] = own[:, 1]
    w2[:, 3] = own[:, 3]
    mlp("mlp_p%d.onnx" % i, [a[0], a[1], w2])

g = helper.make_graph([helper.make_node("Add", ["x", "t2"], ["t1"], name="first"),
                       helper.make_node("Relu", ["t1"], ["t2"], name="second")], "cycle",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                      [helper.make_tensor_value_info("t2", TensorProto.FLOAT, ["batch", 16])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 7
onnx.save(m, os.path.join(out, "cycle.onnx"))

g = helper.make_graph([helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example",
                                        name="custom_op")], "custom",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                        helper.make_opsetid("com.example", 1)])
m.ir_version = 7
onnx.save(m, os.path.join(out, "custom.onnx"))


def conv(path, seed):
    r = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(w(r, 4, 3, 3, 3), "cw"),
             numpy_helper.from_array(w(r, 4), "cb"),
             numpy_helper.from_array(np.abs(w(r, 4)) + 0.5, "scale"),
             numpy_helper.from_array(w(r, 4), "bias"),
             numpy_helper.from_array(w(r, 4), "mean"),
             numpy_helper.from_array(np.abs(w(r, 4)) + 0.5, "var"),
             numpy_helper.from_array(w(r, 5, 64), "gw"),
             numpy_helper.from_array(w(r, 5), "gb")]
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1],
                              kernel_shape=[3, 3]),
             helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["n"]),
             helper.make_node("Relu", ["n"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "gw", "gb"], ["g"], transB=1),
             helper.make_node("Softmax", ["g"], ["y"], axis=-1)]
    g = helper.make_graph(nodes, "conv",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.save(m, os.path.join(out, path))


conv("conv_a.onnx", 11)
conv("conv_b.onnx", 12)
