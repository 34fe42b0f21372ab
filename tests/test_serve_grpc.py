#!/usr/bin/env python3
"""test_serve_grpc.py HTTP_PORT GRPC_PORT PROTO_DIR TMP - a real gRPC client (grpcio,
stubs compiled here from PROTO_DIR/grpc_service.proto by grpc_tools) against a running
`usher serve --grpc-port` (tests/test_serve_grpc.sh starts it with a 1 MiB message
limit, a model 'mlp' (x[N,16] FP32 -> y[N,4]) and a model 'broken' that does not load).

Every method is called; metadata, inference answers (typed contents and
raw_input_contents), statistics and the repository index are compared with the HTTP
front end's for the same input; error codes and texts (unknown model, wrong datatype,
short raw contents, a too-large message, admission's refusal) are compared with the HTTP
answers' where HTTP has the same case; malformed protobuf bytes (hand-made and 3,000
mutants of a valid request) each get a gRPC status, never a crash; the ledger of the
HTTP statistics counts the gRPC refusals. Prints "ok NAME" or "FAIL NAME: why"; exits 1
on any failure.
"""
import concurrent.futures
import json
import os
import random
import struct
import sys

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_client as sc  # noqa: E402
from serve_client import check, fail  # noqa: E402

HTTP = "http://127.0.0.1:%s" % sys.argv[1]
TARGET = "127.0.0.1:%s" % sys.argv[2]
PROTO_DIR = sys.argv[3]
TMP = sys.argv[4]


# ---- stubs from the .proto, as a client of the protocol would make them ----
pb, pbg = sc.grpc_stubs(PROTO_DIR, os.path.join(TMP, "stubs"), show_rc=True)
ch = sc.grpc_channel(TARGET, max_message=8 << 20)
stub = pbg.GRPCInferenceServiceStub(ch)
http = sc.Http(HTTP, timeout=30, json_type=True)


def http_json(method, path, body=None):
    st, b = http(method, path, body)
    return st, json.loads(b) if b else None


def call(fn, req, timeout=30):
    """(response, code, details)"""
    try:
        return fn(req, timeout=timeout), grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return None, e.code(), e.details()


X = [float(i) / 8 - 1 for i in range(16)]

# ---- health and server metadata ----
r, code, _ = call(stub.ServerLive, pb.ServerLiveRequest())
check("server_live", code == grpc.StatusCode.OK and r.live, code)
r, code, _ = call(stub.ServerReady, pb.ServerReadyRequest())
st, _ = http("GET", "/v2/health/ready")
# 'broken' never loads: the server is not ready, over either protocol
check("server_ready_as_http", code == grpc.StatusCode.OK and r.ready == (st == 200),
      "%s %s http %d" % (code, r, st))
r, code, _ = call(stub.ServerMetadata, pb.ServerMetadataRequest())
_, hm = http_json("GET", "/v2")
check("server_metadata", code == grpc.StatusCode.OK and r.name == "usher" and
      r.version == hm["version"] and "statistics" in r.extensions, "%s %s" % (code, r))

# ---- model readiness and metadata ----
r, code, _ = call(stub.ModelReady, pb.ModelReadyRequest(name="mlp"))
check("model_ready", code == grpc.StatusCode.OK and r.ready, code)
r, code, _ = call(stub.ModelReady, pb.ModelReadyRequest(name="broken"))
check("model_ready_broken_false", code == grpc.StatusCode.OK and not r.ready, code)
r, code, _ = call(stub.ModelReady, pb.ModelReadyRequest(name="mlp", version="1"))
check("model_ready_version", code == grpc.StatusCode.OK and r.ready, code)
_, code, det = call(stub.ModelReady, pb.ModelReadyRequest(name="mlp", version="7"))
check("model_ready_wrong_version", code == grpc.StatusCode.NOT_FOUND and "version 7" in det,
      "%s %s" % (code, det))
_, code, det = call(stub.ModelReady, pb.ModelReadyRequest(name="nope"))
st, hb = http_json("GET", "/v2/models/nope/ready")
check("model_ready_unknown_not_found", code == grpc.StatusCode.NOT_FOUND and
      det == "Request for unknown model: 'nope' is not found" and st == 404 and
      hb["error"] == det, "%s %r / http %d %r" % (code, det, st, hb))

r, code, _ = call(stub.ModelMetadata, pb.ModelMetadataRequest(name="mlp"))
_, hm = http_json("GET", "/v2/models/mlp")
if code != grpc.StatusCode.OK:
    fail("model_metadata", code)
else:
    g = {"name": r.name, "versions": list(r.versions), "platform": r.platform,
         "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                    for t in r.inputs],
         "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                     for t in r.outputs]}
    h = {k: hm[k] for k in ("name", "versions", "platform", "inputs", "outputs")}
    check("model_metadata_as_http", g == h, "grpc %s / http %s" % (g, h))
# ModelConfig: the same document as GET .../config (protobuf's JSON mapping of the message,
# default values included, is the form Triton's /config uses)
from google.protobuf import json_format  # noqa: E402
r, code, det = call(stub.ModelConfig, pb.ModelConfigRequest(name="mlp"))
st, hc = http_json("GET", "/v2/models/mlp/config")
if code != grpc.StatusCode.OK or st != 200:
    fail("model_config", "%s %s / http %d" % (code, det, st))
else:
    g = json_format.MessageToDict(r.config, preserving_proto_field_name=True,
                                  including_default_value_fields=True)
    check("model_config_as_http", g == hc, "grpc %s / http %s" % (g, hc))
_, code, det = call(stub.ModelConfig, pb.ModelConfigRequest(name="broken"))
st, hb = http_json("GET", "/v2/models/broken/config")
check("model_config_broken_as_http", code == grpc.StatusCode.INVALID_ARGUMENT and st == 400 and
      hb["error"] == det, "%s %r / http %d %r" % (code, det, st, hb))
_, code, _ = call(stub.ModelConfig, pb.ModelConfigRequest(name="nope"))
check("model_config_unknown", code == grpc.StatusCode.NOT_FOUND, code)
_, code, det = call(stub.ModelMetadata, pb.ModelMetadataRequest(name="broken"))
check("model_metadata_broken_unavailable", code == grpc.StatusCode.UNAVAILABLE and
      "broken" in det, "%s %s" % (code, det))


# ---- inference ----
def typed_req(x=X, rows=1, model="mlp", dt="FP32", rid="", **kw):
    t = pb.ModelInferRequest.InferInputTensor(name="x", datatype=dt, shape=[rows, 16])
    t.contents.fp32_contents.extend(x * rows)
    return pb.ModelInferRequest(model_name=model, id=rid, inputs=[t], **kw)


def raw_req(x=X, rows=1, model="mlp", raw=None):
    t = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[rows, 16])
    data = struct.pack("<%df" % (16 * rows), *(x * rows)) if raw is None else raw
    return pb.ModelInferRequest(model_name=model, inputs=[t], raw_input_contents=[data])


def y_of(resp):
    o = resp.outputs[0]
    return o.name, o.datatype, list(o.shape), list(struct.unpack("<%df" % (len(
        resp.raw_output_contents[0]) // 4), resp.raw_output_contents[0]))


body = json.dumps({"id": "h1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                                           "data": X}]}).encode()
st, hj = http_json("POST", "/v2/models/mlp/infer", body)
hy = hj["outputs"][0] if st == 200 else None
for name, req in (("typed", typed_req(rid="g1")), ("raw", raw_req())):
    r, code, det = call(stub.ModelInfer, req)
    if code != grpc.StatusCode.OK or hy is None:
        fail("infer_" + name, "%s %s / http %d" % (code, det, st))
        continue
    n, dt, shape, y = y_of(r)
    same = (n == hy["name"] and dt == hy["datatype"] and shape == hy["shape"] and
            len(y) == len(hy["data"]) and
            all(abs(a - b) <= 1e-5 * max(1.0, abs(b)) for a, b in zip(y, hy["data"])))
    check("infer_%s_as_http" % name, same and r.model_name == "mlp" and r.model_version == "1",
          "grpc %s %s %s %s / http %s" % (n, dt, shape, y, hy))
r, code, _ = call(stub.ModelInfer, typed_req(rid="abc-42"))
check("infer_echoes_id", code == grpc.StatusCode.OK and r.id == "abc-42", code)
# a batch of 3 rows in one request
r, code, det = call(stub.ModelInfer, raw_req(rows=3))
check("infer_batch_rows", code == grpc.StatusCode.OK and list(r.outputs[0].shape) == [3, 4] and
      len(r.raw_output_contents[0]) == 48, "%s %s" % (code, det))
# an output asked for by name; one the model does not have
req = typed_req()
req.outputs.add(name="y")
r, code, _ = call(stub.ModelInfer, req)
check("infer_named_output", code == grpc.StatusCode.OK and len(r.outputs) == 1, code)
req = typed_req()
req.outputs.add(name="zz")
_, code, det = call(stub.ModelInfer, req)
check("infer_unknown_output", code == grpc.StatusCode.INVALID_ARGUMENT and "'zz'" in det,
      "%s %s" % (code, det))
# 32 at once on one channel (HTTP/2 streams), all answered and right
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    res = list(ex.map(lambda i: call(stub.ModelInfer, raw_req()), range(32)))
okays = [r for r, c, _ in res if c == grpc.StatusCode.OK]
check("infer_concurrent", len(okays) == 32 and all(
    abs(a - b) <= 1e-5 * max(1.0, abs(b)) for r in okays for a, b in zip(y_of(r)[3], hy["data"])),
    "%d of 32: %s" % (len(okays), set(str(c) for _, c, _ in res)))


# ---- errors: code and text, against HTTP's answer to the same input ----
def http_err(doc):
    st, b = http("POST", "/v2/models/%s/infer" % doc.pop("_model", "mlp"),
                 json.dumps(doc).encode())
    try:
        return st, json.loads(b)["error"]
    except Exception:
        return st, b


invalid = 0  # inference requests to mlp refused as invalid before the runtime, over gRPC


def expect(name, req, want_code, want_in=None, http_doc=None, http_status=None, count=True):
    global invalid
    _, code, det = call(stub.ModelInfer, req)
    good = code == want_code and (want_in is None or want_in in det)
    why = "%s %r" % (code, det)
    if http_doc is not None:
        st, herr = http_err(http_doc)
        good = good and st == http_status and herr == det
        why += " / http %s %r" % (st, herr)
    check(name, good, why)
    if count and req.model_name == "mlp":
        invalid += 1


xs = [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": X}]
expect("unknown_model", typed_req(model="nope"), grpc.StatusCode.NOT_FOUND,
       "Request for unknown model: 'nope' is not found",
       {"_model": "nope", "inputs": xs}, 404, count=False)
t = pb.ModelInferRequest.InferInputTensor(name="x", datatype="INT32", shape=[1, 16])
t.contents.int_contents.extend(range(16))
expect("wrong_datatype", pb.ModelInferRequest(model_name="mlp", inputs=[t]),
       grpc.StatusCode.INVALID_ARGUMENT, "x",
       {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1, 16], "data": list(range(16))}]},
       400)
t = pb.ModelInferRequest.InferInputTensor(name="z", datatype="FP32", shape=[1, 16])
t.contents.fp32_contents.extend(X)
expect("unexpected_input_as_triton", pb.ModelInferRequest(model_name="mlp", inputs=[t]),
       grpc.StatusCode.INVALID_ARGUMENT, "unexpected inference input 'z' for model 'mlp'",
       {"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 16], "data": X}]}, 400)
expect("short_raw_input_contents", raw_req(raw=b"\0" * 60), grpc.StatusCode.INVALID_ARGUMENT,
       "raw_input_contents[0] is 60 bytes")
expect("typed_count_mismatch", typed_req(x=X[:15]), grpc.StatusCode.INVALID_ARGUMENT,
       "fp32_contents has 15 values")
req = raw_req()
req.inputs[0].contents.fp32_contents.extend(X)
expect("raw_and_typed_both", req, grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents")
req = raw_req()
req.raw_input_contents.append(b"1234")
expect("raw_count_mismatch", req, grpc.StatusCode.INVALID_ARGUMENT, "2 entries for 1 inputs")
t = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, -16])
expect("negative_dim", pb.ModelInferRequest(model_name="mlp", inputs=[t]),
       grpc.StatusCode.INVALID_ARGUMENT, "shape[1]")
t = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP77", shape=[1, 16])
expect("unknown_datatype", pb.ModelInferRequest(model_name="mlp", inputs=[t]),
       grpc.StatusCode.INVALID_ARGUMENT, "unknown datatype")
t = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1 << 40, 1 << 40])
expect("huge_shape", pb.ModelInferRequest(model_name="mlp", inputs=[t]),
       grpc.StatusCode.RESOURCE_EXHAUSTED)
expect("no_inputs", pb.ModelInferRequest(model_name="mlp"), grpc.StatusCode.INVALID_ARGUMENT,
       "inputs")
t = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 16])
t.parameters["shared_memory_region"].string_param = "r0"
expect("shared_memory_unimplemented", pb.ModelInferRequest(model_name="mlp", inputs=[t]),
       grpc.StatusCode.UNIMPLEMENTED, "shared memory")
req = typed_req()
req.parameters["timeout"].string_param = "soon"
expect("timeout_parameter_type", req, grpc.StatusCode.INVALID_ARGUMENT, "timeout")
# over the message limit (1 MiB): the gRPC core refuses it before usher reads it
_, code, det = call(stub.ModelInfer, raw_req(raw=b"\0" * (2 << 20)))
check("too_large_message", code == grpc.StatusCode.RESOURCE_EXHAUSTED, "%s %s" % (code, det))
# a gzip-compressed message: a valid one is answered; a bomb (4 MiB of zeros in a few KB)
# is held to the limit once decompressed
try:
    r = stub.ModelInfer(raw_req(), timeout=30, compression=grpc.Compression.Gzip)
    check("compressed_message", list(r.outputs[0].shape) == [1, 4], r)
except grpc.RpcError as e:
    fail("compressed_message", "%s %s" % (e.code(), e.details()))
try:
    stub.ModelInfer(raw_req(raw=b"\0" * (4 << 20)), timeout=30,
                    compression=grpc.Compression.Gzip)
    fail("compressed_bomb", "answered")
except grpc.RpcError as e:
    check("compressed_bomb", e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED,
          "%s %s" % (e.code(), e.details()))
# version
r, code, _ = call(stub.ModelInfer, pb.ModelInferRequest(model_name="mlp", model_version="1",
                                                        inputs=typed_req().inputs))
check("infer_version_1", code == grpc.StatusCode.OK, code)
expect("infer_wrong_version", pb.ModelInferRequest(model_name="mlp", model_version="9",
                                                   inputs=typed_req().inputs),
       grpc.StatusCode.NOT_FOUND, "version 9")
# a model that never loaded: UNAVAILABLE, as HTTP's 503, same text
req = typed_req(model="broken")
_, code, det = call(stub.ModelInfer, req)
st, herr = http_err({"_model": "broken", "inputs": xs})
check("not_ready_unavailable_as_http_503", code == grpc.StatusCode.UNAVAILABLE and st == 503 and
      herr == det, "%s %r / http %d %r" % (code, det, st, herr))
# admission: a deadline (the request's timeout parameter, 1 us) that cannot be met is
# refused by the runtime: UNAVAILABLE with the HTTP 503's text
req = typed_req()
req.parameters["timeout"].int64_param = 1
_, code, det = call(stub.ModelInfer, req)
st, herr = http_err({"inputs": xs, "parameters": {"timeout": 1}})
check("admission_refusal_unavailable_as_http_503", code == grpc.StatusCode.UNAVAILABLE and
      st == 503 and herr == det, "%s %r / http %d %r" % (code, det, st, herr))
# a client deadline: the answer comes by then, whatever it is (DEADLINE_EXCEEDED, or
# UNAVAILABLE when the server's admission sees it cannot be met)
_, code, det = call(stub.ModelInfer, typed_req(), timeout=0.0005)
check("client_deadline", code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE,
                                  grpc.StatusCode.OK), "%s %s" % (code, det))
# a call that never sends its message (a client-streaming call whose iterator waits): the
# server cancels it after its read timeout (--body-timeout 2), DEADLINE_EXCEEDED with why
import threading  # noqa: E402
import time  # noqa: E402
release = threading.Event()


def silent():
    release.wait(20)
    return
    yield  # noqa: unreachable: a generator that yields nothing


stream = ch.stream_unary("/inference.GRPCInferenceService/ModelInfer",
                         request_serializer=lambda b: b, response_deserializer=lambda b: b)
t0 = time.time()
_, code, det = call(stream, silent(), timeout=15)
took = time.time() - t0
release.set()
check("silent_call_timed_out", code == grpc.StatusCode.DEADLINE_EXCEEDED and
      "did not arrive within 2000 ms" in det and 1.5 < took < 10,
      "%s %r after %.1f s" % (code, det, took))
# the client's deadline is the request's timeout: a call to the slow model with 10 ms left
# is refused by admission at once (UNAVAILABLE, "deadline cannot be met"), not run for a
# client that has given up (without the mapping it would run, and the client would see
# DEADLINE_EXCEEDED from its own timer)
slow_ready = False
for _ in range(1200):
    r, code, _ = call(stub.ModelReady, pb.ModelReadyRequest(name="slow"))
    if code == grpc.StatusCode.OK and r.ready:
        slow_ready = True
        break
    time.sleep(0.1)
if not slow_ready:
    fail("client_deadline_is_timeout", "model 'slow' never became ready")
else:
    _, code0, det0 = call(stub.ModelInfer, typed_req(model="slow"), timeout=30)  # one run
    _, hs0 = http_json("GET", "/v2/models/slow/stats")
    t0 = time.time()
    _, code, det = call(stub.ModelInfer, typed_req(model="slow"), timeout=0.01)
    took = time.time() - t0
    time.sleep(0.5)
    _, hs1 = http_json("GET", "/v2/models/slow/stats")
    ran = hs1["model_stats"][0]["execution_count"] - hs0["model_stats"][0]["execution_count"]
    check("client_deadline_is_timeout", code0 == grpc.StatusCode.OK and
          code == grpc.StatusCode.UNAVAILABLE and "deadline cannot be met" in det and ran == 0,
          "first call %s %r; %s %r after %.1f ms, %d runs" % (code0, det0, code, det,
                                                               took * 1000, ran))
# a method usher does not implement
unimpl = ch.unary_unary("/inference.GRPCInferenceService/SystemSharedMemoryStatus",
                        request_serializer=lambda b: b, response_deserializer=lambda b: b)
_, code, det = call(unimpl, b"")
check("unimplemented_method", code == grpc.StatusCode.UNIMPLEMENTED, "%s %s" % (code, det))

# ---- malformed protobuf bytes ----
raw_infer = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                           request_serializer=lambda b: b, response_deserializer=lambda b: b)
raw_meta = ch.unary_unary("/inference.GRPCInferenceService/ModelMetadata",
                          request_serializer=lambda b: b, response_deserializer=lambda b: b)
# a NUL inside the model name must not name 'mlp' (as %00 did on HTTP)
nul = pb.ModelMetadataRequest(name="mlp").SerializeToString().replace(b"mlp", b"ml\0")
nul2 = b"\x0a\x05mlp\x00x"
for name, fn, data in (("nul_in_name", raw_meta, nul2), ("nul_in_name_short", raw_meta, nul),
                       ("bad_utf8_name", raw_meta, b"\x0a\x03\xff\xfe\xfd"),
                       ("truncated_length", raw_infer, b"\x0a\x7fmlp"),
                       ("bad_varint", raw_infer, b"\x08" + b"\xff" * 11),
                       ("field_zero", raw_infer, b"\x00\x01"),
                       ("group_wire_type", raw_infer, b"\x0b\x0c"),
                       ("wrong_wire_type", raw_infer, b"\x0d\x00\x00\x00\x00")):
    _, code, det = call(fn, data)
    check("malformed_" + name, code == grpc.StatusCode.INVALID_ARGUMENT, "%s %r" % (code, det))
    if fn is raw_infer:
        pass  # not counted: no model was named
valid = raw_req().SerializeToString()
rng = random.Random(17)
codes = {}
for i in range(3000):
    b = bytearray(valid)
    for _ in range(rng.randint(1, 6)):
        k = rng.randrange(4)
        p = rng.randrange(len(b)) if b else 0
        if k == 0 and b:
            b[p] = rng.randrange(256)
        elif k == 1:
            b[p:p] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif k == 2 and b:
            del b[p:p + rng.randint(1, 8)]
        else:
            b = b[:p]
    _, code, det = call(raw_infer, bytes(b), timeout=10)
    codes[code] = codes.get(code, 0) + 1
bad = {c: n for c, n in codes.items() if c not in (
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED)}
check("mutants_all_answered", not bad, "unexpected codes %s (all: %s)" % (bad, codes))
print("     mutants: %s" % {str(c): n for c, n in codes.items()}, flush=True)
r, code, _ = call(stub.ModelInfer, raw_req())
check("live_after_mutants", code == grpc.StatusCode.OK, code)

# ---- statistics, the repository index and the ledger ----
r, code, _ = call(stub.ModelStatistics, pb.ModelStatisticsRequest(name="mlp"))
_, hs = http_json("GET", "/v2/models/mlp/stats")
h = hs["model_stats"][0]
if code != grpc.StatusCode.OK or len(r.model_stats) != 1:
    fail("model_statistics", code)
else:
    g = r.model_stats[0]
    same = (g.name == h["name"] and g.version == h["version"] and
            g.inference_count == h["inference_count"] and
            g.execution_count == h["execution_count"] and
            g.inference_stats.success.count == h["inference_stats"]["success"]["count"] and
            g.inference_stats.fail.count == h["inference_stats"]["fail"]["count"] and
            g.last_inference == h["last_inference"])
    check("model_statistics_as_http", same, "grpc %s / http %s" % (g, h))
r, code, _ = call(stub.ModelStatistics, pb.ModelStatisticsRequest())
check("model_statistics_all", code == grpc.StatusCode.OK and
      sorted(m.name for m in r.model_stats) == ["broken", "mlp", "slow"], code)
_, code, _ = call(stub.ModelStatistics, pb.ModelStatisticsRequest(name="nope"))
check("model_statistics_unknown", code == grpc.StatusCode.NOT_FOUND, code)
# the ledger: every inference answered counted once, the gRPC refusals included
oc = h["outcomes"]
received = sum(oc.values()) + h["in_flight"]
check("ledger_counts_grpc_refusals", h["invalid"] >= invalid and oc["invalid"] >= invalid,
      "invalid %d, outcomes %s, expected >= %d gRPC refusals" % (h["invalid"], oc, invalid))
_, m = http("GET", "/metrics")
rx = [ln for ln in m.decode().splitlines() if ln.startswith("usher_requests_received_total") and
      'model="mlp"' in ln]
check("ledger_received_matches_metrics", rx and float(rx[0].split()[-1]) == received,
      "%s vs %d" % (rx, received))

# /metrics counts every gRPC answer by status, per model
def grpc_count(model, code):
    _, m = http("GET", "/metrics")
    key = 'usher_grpc_responses_total{model="%s",code="%s"}' % (model, code)
    for ln in m.decode().splitlines():
        if ln.startswith(key):
            return float(ln.split()[-1])
    return 0.0


before = (grpc_count("mlp", "OK"), grpc_count("mlp", "INVALID_ARGUMENT"), grpc_count("", "NOT_FOUND"))
call(stub.ModelInfer, raw_req())
call(stub.ModelInfer, raw_req(raw=b"\0" * 8))
call(stub.ModelInfer, raw_req(model="nope"))
after = (grpc_count("mlp", "OK"), grpc_count("mlp", "INVALID_ARGUMENT"), grpc_count("", "NOT_FOUND"))
check("metrics_grpc_responses", [a - b for a, b in zip(after, before)] == [1, 1, 1],
      "before %s after %s" % (before, after))
r, code, _ = call(stub.RepositoryIndex, pb.RepositoryIndexRequest())
_, hi = http_json("POST", "/v2/repository/index", b"{}")
g = sorted((m.name, m.version, m.state) for m in r.models) if r else None
h = sorted((m["name"], m.get("version", ""), m["state"]) for m in hi)
check("repository_index_as_http", code == grpc.StatusCode.OK and g == h, "%s / %s" % (g, h))
r, code, _ = call(stub.RepositoryIndex, pb.RepositoryIndexRequest(ready=True))
want = sorted(m["name"] for m in hi if m["state"] == "READY")
check("repository_index_ready_only", code == grpc.StatusCode.OK and "mlp" in want and
      sorted(m.name for m in r.models) == want, "%s %s / %s" % (code, r, want))

print("%d failed" % sc.failures() if sc.failures() else "all gRPC cases passed", flush=True)
sc.finish()
