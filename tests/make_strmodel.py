"""make_strmodel.py OUT.onnx - a model whose input is text, for the profiling
tests (tests/test_serve_models.sh): text STRING [batch] -> Cast to INT64 ->
Mul by 2 -> y INT64 [batch]. The leading dim is a batch dim (the model
batches). An empty string does not parse as a number (ORT's Cast fails), so
it cannot be profiled with empty strings. Run with /usr/bin/python3
(Debian's python3-onnx)."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

two = numpy_helper.from_array(np.array([2], dtype=np.int64), "two")
nodes = [helper.make_node("Cast", ["text"], ["n"], to=TensorProto.INT64),
         helper.make_node("Mul", ["n", "two"], ["y"])]
g = helper.make_graph(nodes, "text_times_two",
                      [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
                      [helper.make_tensor_value_info("y", TensorProto.INT64, ["batch"])], [two])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="usher-tests")
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
