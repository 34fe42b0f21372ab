#!/usr/bin/env python3
"""test_serve_grpc_stream.py HTTP_PORT GRPC_PORT PROTO_DIR TMP - ModelStreamInfer with a real
gRPC client (grpcio, stubs compiled from PROTO_DIR/grpc_service.proto) against the server that
tests/test_serve_grpc.sh started: models 'mlp' (x[N,16] FP32 -> y[N,4]), 'slow' (155 ms a row
on the 2-core Xeon VM, max_batch 1, SLO 5 s) and 'broken'.

Cases: N requests on one stream, each answered once with its id, outputs equal to ModelInfer's
for the same input; errors in the middle (unknown model, short raw contents, an undecodable
message) answered as error_message with the request's id while the stream goes on and ends OK;
more requests than the stream's in-flight bound (reading pauses, nothing lost); an empty
stream; a client cancel mid-stream, a stream deadline and unary ModelInfer calls cancelled
while queued (cancel on disconnect), each followed by a live check, the cancelled requests
counted 'cancelled' and never run, and the ledger reconciled
(received == sum of outcomes, nothing in flight) for every model; batch_stats over gRPC
equal to HTTP's and adding up to execution_count. Prints "ok NAME" or
"FAIL NAME: why"; exits 1 on any failure.
"""
import json
import os
import struct
import sys
import threading
import time
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_client as sc  # noqa: E402
from serve_client import check, fail  # noqa: E402

HTTP = "http://127.0.0.1:%s" % sys.argv[1]
TARGET = "127.0.0.1:%s" % sys.argv[2]
PROTO_DIR = sys.argv[3]
TMP = sys.argv[4]


pb, pbg = sc.grpc_stubs(PROTO_DIR, os.path.join(TMP, "stubs_stream"))
ch = sc.grpc_channel(TARGET)
stub = pbg.GRPCInferenceServiceStub(ch)


def stats(model):
    with urllib.request.urlopen(HTTP + "/v2/models/%s/stats" % model, timeout=30) as r:
        return json.loads(r.read())["model_stats"][0]


def req(i, model="mlp", raw=None, rows=1):
    x = [float((i * 7 + k) % 13) / 4 - 1.5 for k in range(16)]
    t = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[rows, 16])
    if i % 2 and raw is None:
        t.contents.fp32_contents.extend(x * rows)
        return pb.ModelInferRequest(model_name=model, id="r%d" % i, inputs=[t])
    data = struct.pack("<%df" % (16 * rows), *(x * rows)) if raw is None else raw
    return pb.ModelInferRequest(model_name=model, id="r%d" % i, inputs=[t],
                                raw_input_contents=[data])


def y_of(resp):
    o = resp.outputs[0]
    return o.name, list(o.shape), resp.raw_output_contents[0]


def stream(reqs, timeout=60):
    """(responses, final code, details)"""
    got = []
    try:
        for r in stub.ModelStreamInfer(iter(reqs), timeout=timeout):
            got.append(r)
        return got, grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return got, e.code(), e.details()


def received(model):
    with urllib.request.urlopen(HTTP + "/metrics", timeout=30) as r:
        m = r.read().decode()
    rx = [ln for ln in m.splitlines() if ln.startswith("usher_requests_received_total") and
          'model="%s"' % model in ln]
    return float(rx[0].split()[-1]) if rx else -1


def settled(model, before_received=None, wait=10.0):
    """the model's stats once nothing is in flight (or after wait s)"""
    end = time.time() + wait
    while True:
        h = stats(model)
        if h["in_flight"] == 0 or time.time() > end:
            return h
        time.sleep(0.05)


# ---- N requests on one stream, answers equal to ModelInfer's ----
N = 64
unary = {}
for i in range(N):
    r = stub.ModelInfer(req(i), timeout=30)
    unary["r%d" % i] = y_of(r)
got, code, det = stream([req(i) for i in range(N)])
ids = [r.infer_response.id for r in got]
errs = [r.error_message for r in got if r.error_message]
check("stream_n_answers", code == grpc.StatusCode.OK and sorted(ids) == sorted(unary) and
      len(ids) == N and not errs, "%s %r: %d answers, errors %s" % (code, det, len(ids), errs[:3]))
same = all(y_of(r.infer_response) == unary[r.infer_response.id] for r in got
           if r.infer_response.id in unary)
check("stream_answers_equal_model_infer", same and len(got) == N, "differ")
check("stream_answers_name_model", all(r.infer_response.model_name == "mlp" and
                                       r.infer_response.model_version == "1" for r in got), "")

# ---- errors in the middle do not end the stream ----
bad_msg = req(2)
bad_msg.inputs[0].shape[:] = [1, 15]  # 16 floats for 15: the size does not match the shape
mixed = [req(0), req(1, model="nope"), req(2), req(3, raw=b"\0" * 60), req(4), bad_msg, req(6)]
got, code, det = stream(mixed)
by_id = {}
for r in got:
    by_id.setdefault(r.infer_response.id, []).append(r)
once = sorted(by_id) == ["r0", "r1", "r2", "r3", "r4", "r6"] and \
    all(len(v) == 1 for k, v in by_id.items() if k != "r2") and len(by_id.get("r2", [])) == 2
check("stream_error_mid_all_answered", code == grpc.StatusCode.OK and len(got) == 7 and once,
      "%s %r %s" % (code, det, [(r.infer_response.id, r.error_message[:40]) for r in got]))
e1 = by_id.get("r1", [None])[0]
check("stream_error_unknown_model", e1 is not None and
      "Request for unknown model: 'nope' is not found" in e1.error_message and
      not e1.infer_response.outputs, e1)
e3 = by_id.get("r3", [None])[0]
check("stream_error_short_raw", e3 is not None and
      "raw_input_contents[0] is 60 bytes" in e3.error_message, e3)
oks = [r for r in got if not r.error_message]
check("stream_error_others_ok", len(oks) == 4 and all(
    y_of(r.infer_response) == unary[r.infer_response.id] for r in oks), len(oks))

# ---- more requests than the in-flight bound (32): reading pauses, nothing is lost ----
M = 400
t0 = time.time()
got, code, det = stream([req(i % N) for i in range(M)], timeout=120)
check("stream_flow_control_all_answered", code == grpc.StatusCode.OK and len(got) == M and
      not any(r.error_message for r in got),
      "%s %r: %d of %d answers, %d errors" % (code, det, len(got), M,
                                              sum(1 for r in got if r.error_message)))
print("     %d requests on one stream in %.2f s" % (M, time.time() - t0), flush=True)

# ---- an empty stream ends OK ----
got, code, det = stream([])
check("stream_empty", code == grpc.StatusCode.OK and not got, "%s %r %d" % (code, det, len(got)))

# ---- a message that is not a ModelInferRequest: an error answer, the stream goes on ----
raw_stream = ch.stream_stream("/inference.GRPCInferenceService/ModelStreamInfer",
                              request_serializer=lambda b: b,
                              response_deserializer=pb.ModelStreamInferResponse.FromString)
try:
    got = list(raw_stream(iter([b"\x0a\x7fmlp", req(0).SerializeToString()]), timeout=30))
    code = grpc.StatusCode.OK
except grpc.RpcError as e:
    got, code = [], e.code()
check("stream_malformed_message", code == grpc.StatusCode.OK and len(got) == 2 and
      got[0].error_message and not got[1].error_message, "%s %s" % (code, got))

# ---- a message over the limit (1 MiB here) ends the stream RESOURCE_EXHAUSTED: gRPC's core
# refuses it before it is read whole; the server stays live ----
big = req(1, raw=b"\0" * (2 << 20))
got, code, det = stream([req(0), big, req(2)])
check("stream_message_too_large", code == grpc.StatusCode.RESOURCE_EXHAUSTED and len(got) <= 1,
      "%s %r, %d answers" % (code, det, len(got)))
r = stub.ModelInfer(req(0), timeout=30)
check("live_after_stream_too_large", r.outputs and r.outputs[0].name, "")

# ---- the client cancels mid-stream: queued requests are cancelled, never run ----
ready = False
for _ in range(1200):
    try:
        ready = stub.ModelReady(pb.ModelReadyRequest(name="slow"), timeout=5).ready
    except grpc.RpcError:
        pass
    if ready:
        break
    time.sleep(0.1)
if not ready:
    fail("stream_cancel", "model 'slow' never became ready")
else:
    h0, rx0 = settled("slow"), received("slow")
    K = 12
    call_ = stub.ModelStreamInfer(iter([req(i, model="slow") for i in range(K)]), timeout=60)
    first = None
    try:
        first = next(call_)
    except grpc.RpcError as e:
        first = e
    call_.cancel()
    h1, rx1 = settled("slow"), received("slow")
    ran = h1["execution_count"] - h0["execution_count"]
    cancelled = h1["outcomes"]["cancelled"] - h0["outcomes"]["cancelled"]
    answered = sum(h1["outcomes"].values()) - sum(h0["outcomes"].values())
    # the first answer may be admission's refusal; those the server had not read yet when the
    # cancel came were never received
    check("stream_cancel_queued_dropped",
          isinstance(first, pb.ModelStreamInferResponse) and cancelled >= 1 and ran < K and
          h1["in_flight"] == 0 and answered == rx1 - rx0 and answered <= K,
          "first %s; %d ran, %d cancelled, %d answered, %d received of %d, in flight %d" % (
              first, ran, cancelled, answered, rx1 - rx0, K, h1["in_flight"]))
    r = stub.ModelInfer(req(0), timeout=30)
    check("live_after_stream_cancel", r.outputs and r.outputs[0].name, "")

    # ---- the stream's deadline passes mid-stream, the client still sending: the server ends
    # the stream (each request's own timeout is what is left of it: admission refuses what
    # cannot end in time, answered as errors) ----
    def slow_then_idle():
        for i in range(4):
            yield req(i, model="slow")
        time.sleep(1.5)

    h0 = settled("slow")
    got, code, det = stream(slow_then_idle(), timeout=0.6)
    h1 = settled("slow")
    answered = sum(h1["outcomes"].values()) - sum(h0["outcomes"].values())
    check("stream_deadline", code == grpc.StatusCode.DEADLINE_EXCEEDED and len(got) <= 4 and
          h1["in_flight"] == 0 and answered == 4,
          "%s %r, %d answers before it; %d of 4 answered in the ledger, in flight %d" % (
              code, det, len(got), answered, h1["in_flight"]))
    r = stub.ModelInfer(req(1), timeout=30)
    check("live_after_stream_deadline", r.outputs and r.outputs[0].name, "")

    # ---- unary ModelInfer: calls cancelled by their client while queued are dropped ----
    h0, rx0 = settled("slow"), received("slow")
    futs = [stub.ModelInfer.future(req(i, model="slow"), timeout=60) for i in range(8)]
    end = time.time() + 5  # until the server holds several of them (one runs, the rest wait)
    while stats("slow")["in_flight"] < 3 and time.time() < end:
        time.sleep(0.005)
    for f in futs[1:]:
        f.cancel()
    try:
        futs[0].result()
        first_ok = True
    except grpc.RpcError as e:
        first_ok = e.code() == grpc.StatusCode.UNAVAILABLE  # admission may refuse it
    h1, rx1 = settled("slow"), received("slow")
    ran = h1["execution_count"] - h0["execution_count"]
    cancelled = h1["outcomes"]["cancelled"] - h0["outcomes"]["cancelled"]
    answered = sum(h1["outcomes"].values()) - sum(h0["outcomes"].values())
    check("unary_cancel_queued_dropped", first_ok and cancelled >= 1 and ran < 8 and
          h1["in_flight"] == 0 and answered == rx1 - rx0,
          "%d ran, %d cancelled, %d answered, %d received, in flight %d" % (
              ran, cancelled, answered, rx1 - rx0, h1["in_flight"]))
    r = stub.ModelInfer(req(1), timeout=30)
    check("live_after_unary_cancel", r.outputs and r.outputs[0].name, "")

# ---- a cancel while many streams run at once, then the ledger of every model ----
threads = []
for k in range(8):
    def run(k=k):
        c = stub.ModelStreamInfer(iter([req(i) for i in range(50)]), timeout=60)
        try:
            for j, _ in enumerate(c):
                if k % 2 and j == 5:
                    c.cancel()
        except grpc.RpcError:
            pass
    threads.append(threading.Thread(target=run))
for t in threads:
    t.start()
for t in threads:
    t.join()
for model in ("mlp", "slow"):
    h = settled(model)
    oc = h["outcomes"]
    rx = received(model)
    check("stream_ledger_" + model, h["in_flight"] == 0 and rx == sum(oc.values()),
          "received %s, outcomes %s, in flight %d" % (rx, oc, h["in_flight"]))
# ---- batch_stats (Triton's schema): the runtime's runs by batch size, the same over both ----
h = settled("mlp")
g = stub.ModelStatistics(pb.ModelStatisticsRequest(name="mlp"), timeout=10).model_stats[0]
gb = sorted((b.batch_size, b.compute_infer.count, b.compute_infer.ns) for b in g.batch_stats)
hb = sorted((b["batch_size"], b["compute_infer"]["count"], b["compute_infer"]["ns"])
            for b in h["batch_stats"])
check("batch_stats_grpc_as_http", gb == hb and gb, "grpc %s / http %s" % (gb, hb))
# every batch of mlp succeeded: the runs by size add up to execution_count, the rows to at
# least the successful requests (one row each here), each size's time positive
check("batch_stats_add_up", sum(n for _, n, _ in hb) == h["execution_count"] and
      sum(k * n for k, n, _ in hb) >= h["inference_count"] and all(t > 0 for _, _, t in hb),
      "%s, execution_count %d, inference_count %d" % (hb, h["execution_count"],
                                                       h["inference_count"]))
print("     mlp batch sizes run: %s" % {k: n for k, n, _ in hb}, flush=True)
r = stub.ServerLive(pb.ServerLiveRequest(), timeout=10)
check("live_at_end", r.live, "")
print("%d failed" % sc.failures() if sc.failures() else "all stream cases passed", flush=True)
sc.finish()
