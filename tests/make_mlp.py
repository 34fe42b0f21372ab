"""make_mlp.py OUT.onnx [LAYERS] [WIDTH] - a compute-heavy model with a small
input, for the overload and drain tests (tests/test_serve_cli.sh): x[N,16] ->
MatMul to WIDTH -> LAYERS x (MatMul WIDTHxWIDTH, Add b, Relu) -> MatMul to 4
-> y[N,4]. One WIDTHxWIDTH weight and one bias are shared by every layer, so
the file stays small while each row costs LAYERS x WIDTH^2 multiply-adds.
Run with /usr/bin/python3 (Debian's python3-onnx).

The activations must stay normal floats at every depth: a run whose values
decay into subnormals takes 2-3x longer on Intel CPUs (microcode assists),
so the model would be slower for some inputs than for the one it was
profiled with. Without a bias, h -> relu(h W) with W ~ N(0, 1/WIDTH) halves
the activations' variance at every layer, and 256 layers reach the
subnormal range (issue 10). Here W is scaled to a spectral norm of 1/2 and
every layer adds a positive bias b in [0.1, 1): relu is 1-Lipschitz, so the
layer map h -> relu(h W + b) is a contraction and every input converges to
one fixed point h* with entries of b's scale (no layer can explode), and
h W + b cannot fall to 0 from b > 0 (no layer can vanish). The price: after
a few tens of layers the output no longer depends on the input. That does
not matter to the tests, which need the compute, not the answer.
tests/check_normal_floats.py evaluates the graph in numpy and checks it."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GAIN = 0.5  # spectral norm of the shared layer weight

out = sys.argv[1]
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 16
width = int(sys.argv[3]) if len(sys.argv) > 3 else 512
rng = np.random.default_rng(7)
w_in = numpy_helper.from_array((rng.standard_normal((16, width)) / 4).astype(np.float32), "w_in")
g = rng.standard_normal((width, width))
w = numpy_helper.from_array((g * (GAIN / np.linalg.norm(g, 2))).astype(np.float32), "w")
b = numpy_helper.from_array(rng.uniform(0.1, 1.0, width).astype(np.float32), "b")
w_out = numpy_helper.from_array((rng.standard_normal((width, 4)) / np.sqrt(width)).astype(np.float32), "w_out")
nodes = [helper.make_node("MatMul", ["x", "w_in"], ["h0"])]
for i in range(layers):
    nodes.append(helper.make_node("MatMul", [f"h{i}", "w"], [f"m{i}"]))
    nodes.append(helper.make_node("Add", [f"m{i}", "b"], [f"a{i}"]))
    nodes.append(helper.make_node("Relu", [f"a{i}"], [f"h{i + 1}"]))
nodes.append(helper.make_node("MatMul", [f"h{layers}", "w_out"], ["y"]))
graph = helper.make_graph(nodes, "mlp",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
                          [w_in, w, b, w_out])
m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="usher-tests")
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, out)
