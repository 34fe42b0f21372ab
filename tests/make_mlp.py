"""make_mlp.py OUT.onnx [LAYERS] [WIDTH] - a compute-heavy model with a small
input, for the overload and drain tests (tests/test_serve_cli.sh): x[N,16] ->
MatMul to WIDTH -> LAYERS x (MatMul WIDTHxWIDTH, Relu) -> MatMul to 4 -> y[N,4].
One WIDTHxWIDTH weight is shared by every layer, so the file stays small
while each row costs LAYERS x WIDTH^2 multiply-adds. Run with /usr/bin/python3
(Debian's python3-onnx)."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 16
width = int(sys.argv[3]) if len(sys.argv) > 3 else 512
rng = np.random.default_rng(7)
w_in = numpy_helper.from_array((rng.standard_normal((16, width)) / 4).astype(np.float32), "w_in")
w = numpy_helper.from_array((rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32), "w")
w_out = numpy_helper.from_array((rng.standard_normal((width, 4)) / np.sqrt(width)).astype(np.float32), "w_out")
nodes = [helper.make_node("MatMul", ["x", "w_in"], ["h0"])]
for i in range(layers):
    nodes.append(helper.make_node("MatMul", [f"h{i}", "w"], [f"m{i}"]))
    nodes.append(helper.make_node("Relu", [f"m{i}"], [f"h{i + 1}"]))
nodes.append(helper.make_node("MatMul", [f"h{layers}", "w_out"], ["y"]))
g = helper.make_graph(nodes, "mlp",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
                      [w_in, w, w_out])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="usher-tests")
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, out)
