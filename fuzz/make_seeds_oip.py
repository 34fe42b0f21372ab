#!/usr/bin/python3
"""make_seeds_oip.py - regenerate fuzz/corpus-oip, the seeds of the OIP request fuzz target.

Run by developers (CI uses the committed files): python3 fuzz/make_seeds_oip.py
Plain Python 3, no packages. Each seed is one inference request body behind
the mode byte that fuzz/fuzz_oip.c reads first:
  bits 0-1  0: no Inference-Header-Content-Length (the body is JSON)
            1: 2 bytes (little-endian) of header length, then the body
            2: the header length is the whole body
            3: 8 bytes (little-endian) of header length (any value), then the body
  bit 2     tight limits (body 4 KiB, depth 6, 32 elements, 128 bytes per tensor)
  bit 3     flip binary_data_output before the response is written
Names say what a seed is for: ok-* are accepted by the default limits,
bad-* are refused, tight-* use the tight limits. tests/test_oip.c replays
them all and checks that each ok-/bad- seed is accepted/refused.
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-oip")
TIGHT, FLIP = 4, 8


def js(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def save(name, mode, body, tail=b"", hl=None):
    """mode: the framing (0-3) plus flags; hl overrides the header length of modes 1 and 3."""
    framing = mode & 3
    if framing == 1:
        pre = struct.pack("<H", len(body) if hl is None else hl)
    elif framing == 3:
        pre = struct.pack("<Q", len(body) if hl is None else hl)
    else:
        pre = b""
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([mode]) + pre + body + tail)


def inp(name, dt, shape, data=None, **params):
    d = {"name": name, "datatype": dt, "shape": shape}
    if data is not None:
        d["data"] = data
    if params:
        d["parameters"] = params
    return d


def req(*inputs, **top):
    r = dict(top)
    r["inputs"] = list(inputs)
    return r


def bytes_el(*items):
    return b"".join(struct.pack("<I", len(x)) + x for x in items)


os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    os.remove(os.path.join(OUT, f))

# ---- accepted: every datatype, JSON form ------------------------------------------
save("ok-fp32-flat", 0, js(req(inp("x", "FP32", [1, 3], [1.5, -2, 3e-3]), id="42",
                               model_name="m", outputs=[{"name": "x"}])))
save("ok-fp32-nested", 0, js(req(inp("x", "FP32", [2, 3], [[1, 2, 3], [4, 5.25, -6]]))))
save("ok-bool", 0, js(req(inp("b", "BOOL", [2, 2], [[True, False], [False, True]]))))
save("ok-uint8", 0, js(req(inp("u", "UINT8", [4], [0, 1, 254, 255]))))
save("ok-uint16", 0, js(req(inp("u", "UINT16", [3], [0, 256, 65535]))))
save("ok-uint32", 0, js(req(inp("u", "UINT32", [2], [0, 4294967295]))))
save("ok-uint64", 0, js(req(inp("u", "UINT64", [3], [0, 9223372036854775808,
                                                       18446744073709551615]))))
save("ok-int8", 0, js(req(inp("i", "INT8", [3], [-128, 0, 127]))))
save("ok-int16", 0, js(req(inp("i", "INT16", [3], [-32768, -1, 32767]))))
save("ok-int32", 0, js(req(inp("i", "INT32", [2], [-2147483648, 2147483647]))))
save("ok-int64", 0, js(req(inp("i", "INT64", [2], [-9223372036854775808,
                                                     9223372036854775807]))))
save("ok-fp16", 0, js(req(inp("h", "FP16", [6], [0, -0.0, 65504, 6e-8, 1.0009765625, -2.5e-5]))))
save("ok-fp64", 0, js(req(inp("d", "FP64", [4], [1e308, 5e-324, -0.0, 0.1]))))
save("ok-bf16", 0, js(req(inp("h", "BF16", [3], [1, 3.3895313892515355e38, -1e-40]))))
save("ok-bytes", 0, b'{"inputs":[{"name":"s","datatype":"BYTES","shape":[4],'
     b'"data":["", "abc", "\\u00e9\\ud83d\\ude00", "nul\\u0000inside"]}]}')
save("ok-all-types", 0, js(req(
    inp("a", "BOOL", [1], [True]), inp("b", "UINT8", [1], [7]), inp("c", "UINT16", [1], [7]),
    inp("d", "UINT32", [1], [7]), inp("e", "UINT64", [1], [7]), inp("f", "INT8", [1], [-7]),
    inp("g", "INT16", [1], [-7]), inp("h", "INT32", [1], [-7]), inp("i", "INT64", [1], [-7]),
    inp("j", "FP16", [1], [0.5]), inp("k", "FP32", [1], [0.5]), inp("l", "FP64", [1], [0.5]),
    inp("m", "BF16", [1], [0.5]), inp("n", "BYTES", [1], ["seven"]), id="all")))

# ---- accepted: shapes, parameters, ids ------------------------------------------------
save("ok-rank0", 0, js(req(inp("s", "INT32", [], [5]))))
save("ok-rank16", 0, js(req(inp("r", "FP32", [1] * 15 + [2], [1, 2]))))
save("ok-zero-dim", 0, js(req(inp("z", "FP32", [0, 3], []), inp("y", "BYTES", [3, 0], [[], [], []]))))
save("ok-params", 0, js(req(inp("x", "INT64", [1], [1]), id="p-1",
                            parameters={"timeout": 50000, "binary_data_output": True,
                                        "priority": 1, "custom": {"a": [1, {"b": None}]}},
                            sequence_id=7)))
save("ok-unknown-keys", 0, js(req(dict(inp("x", "INT8", [1], [1]), extra=[{"k": "v"}]))))
save("ok-id-unicode", 0, b'{"id":"\\u00e9t\\u00e9 \\"q\\" \\\\","inputs":[{"name":"x",'
     b'"datatype":"UINT8","shape":[1],"data":[1]}]}')
save("ok-whitespace", 0, b' \t\r\n{ "inputs" : [ { "name" : "x" , "datatype" : "INT16" ,'
     b' "shape" : [ 2 ] , "data" : [ 1 , -1 ] } ] } \n')

# ---- accepted: binary tensor extension ------------------------------------------------
h = js(req(inp("x", "FP32", [2, 2], binary_data_size=16), id="bin",
           outputs=[{"name": "x", "parameters": {"binary_data": True}}]))
save("ok-bin-fp32-m1", 1, h, struct.pack("<4f", 1, 2, float("nan"), float("-inf")))
h = js(req(inp("x", "INT64", [3], binary_data_size=24)))
save("ok-bin-int64-m3", 3, h, struct.pack("<3q", -1, 0, 2**63 - 1))
h = js(req(inp("s", "BYTES", [3], binary_data_size=4 + 2 + 4 + 0 + 4 + 3),
           parameters={"binary_data_output": True}))
save("ok-bin-bytes-m1", 1, h, bytes_el(b"hi", b"", b"\xff\xfe\x00"))
h = js(req(inp("a", "FP16", [2], [1, 2]), inp("b", "UINT8", [3], binary_data_size=3),
           inp("c", "BOOL", [2], binary_data_size=2), inp("d", "FP64", [1], [2.5]),
           outputs=[{"name": "b", "parameters": {"binary_data": True}},
                    {"name": "d", "parameters": {"binary_data": False}}, {"name": "a"}]))
save("ok-bin-mixed-m1", 1, h, b"\x01\x02\x03" + b"\x01\x00")
save("ok-bin-none-m2", 2, js(req(inp("x", "UINT16", [2], [1, 2]))))
h = js(req(inp("z", "FP32", [0], binary_data_size=0), inp("y", "UINT32", [1], binary_data_size=4)))
save("ok-bin-zero-m3", 3, h, struct.pack("<I", 0xDEADBEEF))
h = js(req(inp("x", "FP16", [2], binary_data_size=4)))
save("ok-bin-fp16-inf-flip", 1 | FLIP, h, struct.pack("<2H", 0x7C00, 0x3C00))
save("ok-flip-json", 0 | FLIP, js(req(inp("x", "INT32", [2], [3, 4]),
                                      outputs=[{"name": "x"}])))

h = js(req(inp("s", "BYTES", [2, 1], binary_data_size=4 + 5 + 4 + 1), id="m3",
           outputs=[{"name": "s", "parameters": {"binary_data": False}}]))
save("ok-bin-bytes-m3", 3, h, bytes_el("h\u00e9!!".encode(), b"\x00"))
save("ok-m2-bytes-json", 2 | FLIP, js(req(inp("s", "BYTES", [1], ["x"]),
                                         parameters={"binary_data_output": True})))

# ---- accepted with tight limits --------------------------------------------------------
save("tight-ok-32-elements", TIGHT, js(req(inp("x", "UINT8", [32], list(range(32))))))
save("tight-ok-128-bytes", TIGHT, js(req(inp("x", "FP32", [4, 8], [0.25] * 32))))
save("tight-ok-bin", TIGHT | 1, js(req(inp("x", "INT64", [16], binary_data_size=128))),
     struct.pack("<16q", *range(16)))

save("tight-ok-m2", TIGHT | 2, js(req(inp("x", "BF16", [2, 2], [[1, 2], [3, 4]]), id="t2")))

# ---- refused: JSON ------------------------------------------------------------------------
save("bad-truncated", 0, js(req(inp("x", "FP32", [1, 3], [1, 2, 3])))[:-9])
save("bad-trailing", 0, js(req(inp("x", "FP32", [1], [1]))) + b" {}")
save("bad-deep-200", 0, b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":'
     + b"[" * 200 + b"1" + b"]" * 200 + b"}]}")
save("tight-bad-deep-7", TIGHT, b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1],'
     b'"data":[[[[[1]]]]]}]}')
save("bad-nan", 0, b'{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[NaN,1]}]}')
save("bad-infinity", 0, b'{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[1e400]}]}')
save("bad-dup-key", 0, b'{"inputs":[{"name":"x","name":"y","datatype":"FP32","shape":[1],'
     b'"data":[1]}]}')
save("bad-utf8-bytes", 0, b'{"inputs":[{"name":"s","datatype":"BYTES","shape":[1],'
     b'"data":["\xc0\x80"]}]}')
save("bad-root-array", 0, b'[{"inputs":[]}]')

# ---- refused: fields ----------------------------------------------------------------------
save("bad-no-inputs", 0, js({"id": "n", "outputs": []}))
save("bad-datatype", 0, js(req(inp("x", "FLOAT32", [1], [1]), id="dt")))
save("bad-datatype-number", 0, js(req(inp("x", 11, [1], [1]))))
save("bad-shape-string", 0, js(req(inp("x", "FP32", "x", [1]))))
save("bad-shape-negative", 0, js(req(inp("x", "FP32", [-5], [1]))))
save("bad-shape-fraction", 0, js(req(inp("x", "FP32", [1.5], [1]))))
save("bad-shape-overflow", 0, js(req(inp("x", "FP32", [16, 2**60 + 2], [1]))))
save("bad-shape-u64max", 0, js(req(inp("x", "FP32", [18446744073709551615], [1]))))
save("bad-shape-rank17", 0, js(req(inp("x", "FP32", [1] * 17, [1]))))
save("bad-count-mismatch", 0, js(req(inp("x", "FP32", [2, 2], [[1, 2], [3]]), id="cm")))
save("bad-dup-input", 0, js(req(inp("x", "FP32", [1], [1]), inp("x", "FP32", [1], [2]))))
save("bad-dup-output", 0, js(req(inp("x", "FP32", [1], [1]),
                                 outputs=[{"name": "y"}, {"name": "y"}])))
save("bad-int-fraction", 0, js(req(inp("x", "INT32", [1], [1.5]))))
save("bad-int8-range", 0, js(req(inp("x", "INT8", [2], [1, 128]))))
save("bad-uint8-negative", 0, js(req(inp("x", "UINT8", [1], [-1]))))
save("bad-uint64-range", 0, b'{"inputs":[{"name":"x","datatype":"UINT64","shape":[1],'
     b'"data":[18446744073709551616]}]}')
save("bad-fp32-range", 0, js(req(inp("x", "FP32", [1], [1e39]))))
save("bad-fp16-range", 0, js(req(inp("x", "FP16", [1], [65520]))))
save("bad-bool-number", 0, js(req(inp("x", "BOOL", [1], [1]))))
save("bad-bytes-number", 0, js(req(inp("x", "BYTES", [1], [1]))))
save("bad-data-object", 0, js(req(inp("x", "FP32", [1], [{"v": 1}]))))
save("bad-name-empty", 0, js(req(inp("", "FP32", [1], [1]))))
save("bad-name-control", 0, js(req(inp("a\nb", "FP32", [1], [1]))))
save("bad-name-long", 0, js(req(inp("n" * 128, "FP32", [1], [1]))))
save("bad-id-number", 0, js(req(inp("x", "FP32", [1], [1]), id=42)))
save("bad-id-long", 0, js(req(inp("x", "FP32", [1], [1]), id="i" * 300)))
save("bad-id-nul", 0, b'{"id":"a\\u0000b","inputs":[]}')
save("bad-timeout", 0, js(req(inp("x", "FP32", [1], [1]), id="t",
                              parameters={"timeout": -1})))
save("bad-binary-output-param", 0, js(req(inp("x", "FP32", [1], [1]),
                                          parameters={"binary_data_output": "yes"})))
save("bad-both-data", 1, js(req(inp("x", "FP32", [1], [1], binary_data_size=4))), b"\0" * 4)
save("bad-neither-data", 0, js(req(inp("x", "FP32", [1]))))
save("bad-65-inputs", 0, js(req(*[inp("x%d" % i, "UINT8", [1], [i]) for i in range(65)])))
save("bad-shm", 0, js(req(inp("x", "FP32", [1], shared_memory_region="r",
                              shared_memory_byte_size=4))))
save("bad-classification", 0, js(req(inp("x", "FP32", [1], [1]),
                                      outputs=[{"name": "y", "parameters": {"classification": 3}}])))
save("bad-output-binary-string", 0, js(req(inp("x", "FP32", [1], [1]),
                                           outputs=[{"name": "x",
                                                     "parameters": {"binary_data": 1}}])))

# ---- refused: binary framing ----------------------------------------------------------------
h = js(req(inp("x", "FP32", [2], binary_data_size=8), id="b0"))
save("bad-bin-no-header", 0, h + struct.pack("<2f", 1, 2))
save("bad-bin-size-shape", 1, js(req(inp("x", "FP32", [2], binary_data_size=6))), b"\0" * 6)
save("bad-bin-short-tail", 1, h, b"\0" * 7)
save("bad-bin-long-tail", 1, h, b"\0" * 9)
save("bad-bin-hl-past-body", 3, h, struct.pack("<2f", 1, 2), hl=2**64 - 1)
save("bad-bin-hl-cuts-json", 1, h, struct.pack("<2f", 1, 2), hl=len(h) - 3)
h = js(req(inp("s", "BYTES", [2], binary_data_size=10)))
save("bad-bin-bytes-prefix", 1, h, struct.pack("<I", 2) + b"ab" + struct.pack("<I", 9))
save("bad-bin-bool", 1, js(req(inp("b", "BOOL", [2], binary_data_size=2))), b"\x01\x02")
save("bad-bin-size-huge", 1, js(req(inp("a", "UINT8", [1], binary_data_size=2**64 - 1),
                                        inp("b", "UINT8", [1], binary_data_size=2))), b"\0" * 3)
save("bad-bin-shape-overflow", 1, js(req(inp("x", "FP64", [2**61], binary_data_size=8))), b"\0" * 8)

# ---- refused by the tight limits only -----------------------------------------------------
save("tight-bad-33-elements", TIGHT, js(req(inp("x", "UINT8", [33], list(range(33))))))
save("tight-bad-132-bytes", TIGHT, js(req(inp("x", "BYTES", [1], ["b" * 128]))))
save("tight-bad-body", TIGHT, js(req(inp("x", "UINT8", [1], [1]), id="i" * 250,
                                     pad=["p" * 200] * 20)))
