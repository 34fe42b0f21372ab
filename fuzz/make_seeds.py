#!/usr/bin/python3
"""make_seeds.py - regenerate the seed corpus of the ONNX loader fuzz target.

Run by developers (CI uses the committed files): /usr/bin/python3 fuzz/make_seeds.py
Needs Debian's python3-onnx. Each seed is a small, valid ONNX model that
exercises one part of the loader: every way a tensor can hold data, subgraphs
reading outer values, symbolic shapes, opset-dependent operator forms, and
things usher must refuse cleanly (external data from memory, custom ops).
"""
import os
import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
rng = np.random.default_rng(7)


def save(name, graph, opset=17, **kw):
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], producer_name="seed", **kw)
    m.ir_version = 8
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(m.SerializeToString())


def w(name, *shape):
    return nh.from_array(rng.standard_normal(shape).astype(np.float32), name)


def i64(name, vals):
    return nh.from_array(np.array(vals, dtype=np.int64), name)


os.makedirs(OUT, exist_ok=True)

# 1. a small CNN with raw_data weights
save("tiny_cnn", h.make_graph(
    [h.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
     h.make_node("Relu", ["c"], ["r"]),
     h.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
     h.make_node("Flatten", ["p"], ["f"]),
     h.make_node("Gemm", ["f", "w2"], ["y"], transB=1)],
    "tiny", [h.make_tensor_value_info("x", T.FLOAT, ["N", 3, 8, 8])],
    [h.make_tensor_value_info("y", T.FLOAT, ["N", 10])],
    [w("w1", 4, 3, 3, 3), w("b1", 4), w("w2", 10, 64)]))

# 2. typed data fields instead of raw_data
t_f = h.make_tensor("tf", T.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0])
t_i = h.make_tensor("ti", T.INT64, [2], [2, 2])
t_h = h.make_tensor("th", T.FLOAT16, [2], np.array([1, 2], np.float16).view(np.uint16).tolist())
t_d = h.make_tensor("td", T.DOUBLE, [1], [0.5])
t_b = h.make_tensor("tb", T.BOOL, [2], [1, 0])
save("typed_fields", h.make_graph(
    [h.make_node("Reshape", ["x", "ti"], ["r"]),
     h.make_node("Add", ["r", "tf"], ["y"])],
    "typed", [h.make_tensor_value_info("x", T.FLOAT, [4])],
    [h.make_tensor_value_info("y", T.FLOAT, [2, 2])], [t_f, t_i, t_h, t_d, t_b]))

# 3. every Constant form
save("constants", h.make_graph(
    [h.make_node("Constant", [], ["a"], value=w("v", 3)),
     h.make_node("Constant", [], ["b"], value_float=2.0),
     h.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0, 3.0]),
     h.make_node("Constant", [], ["d"], value_int=3),
     h.make_node("Constant", [], ["e"], value_ints=[1, 3]),
     h.make_node("Mul", ["a", "b"], ["ab"]),
     h.make_node("Add", ["ab", "c"], ["abc"]),
     h.make_node("Reshape", ["abc", "e"], ["y"])],
    "consts", [], [h.make_tensor_value_info("y", T.FLOAT, [1, 3])]))

# 4. If and Loop whose bodies read outer values
then_g = h.make_graph([h.make_node("Relu", ["x"], ["t"])], "then", [],
                      [h.make_tensor_value_info("t", T.FLOAT, None)])
else_g = h.make_graph([h.make_node("Neg", ["x"], ["e"])], "else", [],
                      [h.make_tensor_value_info("e", T.FLOAT, None)])
body = h.make_graph(
    [h.make_node("Identity", ["cond"], ["cond_out"]),
     h.make_node("Add", ["v", "x"], ["v_out"]),
     h.make_node("Identity", ["v"], ["scan"])],
    "body", [h.make_tensor_value_info("i", T.INT64, []), h.make_tensor_value_info("cond", T.BOOL, []),
             h.make_tensor_value_info("v", T.FLOAT, None)],
    [h.make_tensor_value_info("cond_out", T.BOOL, []), h.make_tensor_value_info("v_out", T.FLOAT, None),
     h.make_tensor_value_info("scan", T.FLOAT, None)])
save("control_flow", h.make_graph(
    [h.make_node("If", ["flag"], ["o"], then_branch=then_g, else_branch=else_g),
     h.make_node("Loop", ["trips", "", "o"], ["vf", "scans"], body=body)],
    "cf", [h.make_tensor_value_info("x", T.FLOAT, ["B", 4]), h.make_tensor_value_info("flag", T.BOOL, [])],
    [h.make_tensor_value_info("vf", T.FLOAT, None), h.make_tensor_value_info("scans", T.FLOAT, None)],
    [i64("trips", 3)]))

# 5. shape arithmetic on a symbolic batch
save("shape_chain", h.make_graph(
    [h.make_node("Shape", ["x"], ["s"]),
     h.make_node("Gather", ["s", "zero"], ["b"], axis=0),
     h.make_node("Concat", ["b", "rest"], ["tgt"], axis=0),
     h.make_node("Reshape", ["x", "tgt"], ["r"]),
     h.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3]),
     h.make_node("MatMul", ["t", "t2"], ["m"]),
     h.make_node("Softmax", ["m"], ["y"], axis=-1)],
    "chain", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 16, 32]),
              h.make_tensor_value_info("t2", T.FLOAT, ["batch", 4, 8, 16])],
    [h.make_tensor_value_info("y", T.FLOAT, None)],
    [i64("zero", [0]), i64("rest", [16, 4, 8])]))

# 6. external data (refused when loading from memory, contained when from a file)
ext = w("ext_w", 4, 4)
onnx.external_data_helper.set_external_data(ext, "weights.bin", offset=0, length=64)
ext.ClearField("raw_data")
ext.data_location = T.EXTERNAL
save("external_ref", h.make_graph(
    [h.make_node("MatMul", ["x", "ext_w"], ["y"])], "ext",
    [h.make_tensor_value_info("x", T.FLOAT, [1, 4])], [h.make_tensor_value_info("y", T.FLOAT, [1, 4])],
    [ext]))

# 7. operators usher does not know, in another domain
m7 = h.make_graph([h.make_node("FusedThing", ["x"], ["y"], domain="com.example"),
                   h.make_node("Relu", ["y"], ["z"])], "custom",
                  [h.make_tensor_value_info("x", T.FLOAT, [2])], [h.make_tensor_value_info("z", T.FLOAT, None)])
m = h.make_model(m7, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.example", 1)])
m.ir_version = 8
open(os.path.join(OUT, "custom_op.onnx"), "wb").write(m.SerializeToString())

# 8. recurrent layers
save("rnn", h.make_graph(
    [h.make_node("LSTM", ["x", "lw", "lr", "lb"], ["y", "yh", "yc"], hidden_size=8, direction="bidirectional"),
     h.make_node("GRU", ["x", "gw", "gr"], ["gy", "gyh"], hidden_size=8)],
    "rnn", [h.make_tensor_value_info("x", T.FLOAT, ["seq", "batch", 5])],
    [h.make_tensor_value_info("y", T.FLOAT, None), h.make_tensor_value_info("gy", T.FLOAT, None)],
    [w("lw", 2, 32, 5), w("lr", 2, 32, 8), w("lb", 2, 64), w("gw", 1, 24, 5), w("gr", 1, 24, 8)]))

# 9. opset-11 forms: Resize with scales, Pad with an input, Slice with inputs, Split/Squeeze attrs
save("opset11", h.make_graph(
    [h.make_node("Resize", ["x", "roi", "scales"], ["up"], mode="nearest"),
     h.make_node("Pad", ["up", "pads"], ["pd"]),
     h.make_node("Slice", ["pd", "st", "en", "ax"], ["sl"]),
     h.make_node("Split", ["sl"], ["s0", "s1"], axis=1, split=[1, 1]),
     h.make_node("Squeeze", ["s0"], ["sq"], axes=[1]),
     h.make_node("ReduceMean", ["sq"], ["y"], axes=[1], keepdims=0)],
    "o11", [h.make_tensor_value_info("x", T.FLOAT, [1, 2, "H", "W"])],
    [h.make_tensor_value_info("y", T.FLOAT, None)],
    [nh.from_array(np.array([], np.float32), "roi"), nh.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
     i64("pads", [0, 0, 1, 1, 0, 0, 1, 1]), i64("st", [0]), i64("en", [-1]), i64("ax", [3])]), opset=11)

# 10. a graph-only model: weights declared, data stripped, flagged in metadata
g10 = h.make_graph([h.make_node("Conv", ["x", "wg"], ["y"])], "go",
                   [h.make_tensor_value_info("x", T.FLOAT, ["N", 8, 16, 16])],
                   [h.make_tensor_value_info("y", T.FLOAT, None)],
                   [w("wg", 16, 8, 3, 3)])
g10.initializer[0].ClearField("raw_data")
m10 = h.make_model(g10, opset_imports=[h.make_opsetid("", 17)])
m10.ir_version = 8
h.set_model_props(m10, {"usher.graph_only": "1"})
open(os.path.join(OUT, "graph_only.onnx"), "wb").write(m10.SerializeToString())

# 11. normalisation, attention-style ops and odd shapes
save("transformer_bits", h.make_graph(
    [h.make_node("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, epsilon=1e-5),
     h.make_node("MatMul", ["ln", "wq"], ["q"]),
     h.make_node("Erf", ["q"], ["e"]),
     h.make_node("Where", ["mask", "e", "q"], ["wh"]),
     h.make_node("Expand", ["wh", "eshape"], ["ex"]),
     h.make_node("Range", ["r0", "r1", "r2"], ["rg"]),
     h.make_node("ConstantOfShape", ["eshape"], ["zeros"]),
     h.make_node("TopK", ["ex", "k"], ["tv", "ti"], axis=-1),
     h.make_node("Einsum", ["q", "wq"], ["es"], equation="bsd,de->bse")],
    "tb", [h.make_tensor_value_info("x", T.FLOAT, ["b", "s", 8]),
           h.make_tensor_value_info("mask", T.BOOL, [1, 1, 8])],
    [h.make_tensor_value_info("tv", T.FLOAT, None)],
    [w("g", 8), w("b", 8), w("wq", 8, 8), i64("eshape", [2, 3, 8]), i64("r0", 0), i64("r1", 5), i64("r2", 1),
     i64("k", [2])]))
# 12. zero-size tensors: an empty batch of features
save("zero_size", h.make_graph(
    [h.make_node("Relu", ["x"], ["r"]), h.make_node("MatMul", ["r", "wz"], ["y"])], "zero",
    [h.make_tensor_value_info("x", T.FLOAT, ["N", 0])], [h.make_tensor_value_info("y", T.FLOAT, None)],
    [nh.from_array(np.zeros((0, 4), np.float32), "wz")]))
print("seeds in", OUT, sorted(os.listdir(OUT)))
