#!/usr/bin/env python3
"""test_serve_control.py MODE HTTP_PORT GRPC_PORT PROTO_DIR TMP - model control against a
running `usher serve` (tests/test_serve_control.sh starts it; TMP/repo holds 'a' and 'b',
MLPs x[N,16] FP32 -> y[N,4], and 'broken', random bytes).

MODE none: load and unload are refused, over HTTP (503) and gRPC (UNAVAILABLE), with
Triton's text. MODE explicit (started with --load-model a): the index, loads and unloads
over both protocols, a broken model's load, a new version picked up by a load, and
unload/load cycles of 'b' under traffic from several client threads with the ledger
checked. Prints "ok NAME" or "FAIL NAME: why"; exits 1 on any failure.
"""
import json
import os
import shutil
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_client as sc  # noqa: E402
from serve_client import check  # noqa: E402

MODE = sys.argv[1]
HTTP = "http://127.0.0.1:%s" % sys.argv[2]
TARGET = "127.0.0.1:%s" % sys.argv[3]
PROTO_DIR = sys.argv[4]
TMP = sys.argv[5]
TRITON_NONE = "explicit model load / unload is not allowed if polling is enabled"


pb, pbg = sc.grpc_stubs(PROTO_DIR, os.path.join(TMP, "stubs"))
stub = pbg.GRPCInferenceServiceStub(sc.grpc_channel(TARGET))
http = sc.Http(HTTP, timeout=120)


def err_text(body):
    try:
        return json.loads(body).get("error", "")
    except ValueError:
        return ""


def index_http():
    return sc.repository_index(http)


def index_grpc():
    r = stub.RepositoryIndex(pb.RepositoryIndexRequest(), timeout=30)
    return {m.name: (m.state, m.reason, m.version) for m in r.models}


def grpc_control(load, name):
    try:
        if load:
            stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=name), timeout=180)
        else:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=name),
                                       timeout=180)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


BODY = sc.INFER_BODY


def stats(model):
    return sc.model_stats(http, model)


if MODE == "none":
    for verb in ("load", "unload"):
        st, body = http("POST", "/v2/repository/models/a/%s" % verb, b"")
        check("none_http_" + verb, st == 503 and err_text(body) == TRITON_NONE, (st, body))
        code, det = grpc_control(verb == "load", "a")
        check("none_grpc_" + verb, code == grpc.StatusCode.UNAVAILABLE and det == TRITON_NONE,
              (code, det))
    check("none_a_ready", http("GET", "/v2/models/a/ready")[0] == 200)
    sc.finish()

# ---- explicit, started with --load-model a ----
ix = index_http()
check("start_index", ix.get("a", ("",))[0] == "READY" and
      ix.get("b", ("",))[:2] == ("UNAVAILABLE", "unloaded") and
      ix.get("broken", ("",))[:2] == ("UNAVAILABLE", "unloaded"), ix)
check("start_server_ready", http("GET", "/v2/health/ready")[0] == 200,
      "models unloaded on purpose must not make the server unready")
st, body = http("POST", "/v2/models/b/infer", BODY)
check("unloaded_infer_503", st == 503 and "unloaded" in err_text(body), (st, body))
check("grpc_index_agrees_start", index_grpc() == ix, (index_grpc(), ix))

# load over HTTP
st, body = http("POST", "/v2/repository/models/b/load", b"")
check("http_load", st == 200, (st, body))
check("loaded_ready", http("GET", "/v2/models/b/ready")[0] == 200)
st, body = http("POST", "/v2/models/b/infer", BODY)
check("loaded_infer", st == 200, (st, body))

# a broken model: UNAVAILABLE with its reason, over both protocols, the same text
st, body = http("POST", "/v2/repository/models/broken/load", b"")
msg = err_text(body)
check("broken_load_400", st == 400 and msg.startswith("load failed for model 'broken': "),
      (st, body))
ix = index_http()
reason = ix.get("broken", ("", "", ""))[1]
check("broken_index_reason", ix.get("broken", ("",))[0] == "UNAVAILABLE" and reason and
      reason != "unloaded" and reason in msg, (ix.get("broken"), msg))
code, det = grpc_control(True, "broken")
check("broken_grpc_same", code == grpc.StatusCode.INVALID_ARGUMENT and det == msg, (code, det))
check("broken_leaves_others", http("GET", "/v2/models/b/ready")[0] == 200)

# unknown and invalid names
st, body = http("POST", "/v2/repository/models/nope/load", b"")
check("unknown_load_400", st == 400 and "failed to load 'nope'" in err_text(body), (st, body))
code, det = grpc_control(True, "nope")
check("unknown_grpc", code == grpc.StatusCode.INVALID_ARGUMENT and det == err_text(body),
      (code, det))
st, body = http("POST", "/v2/repository/models/a%01b/load", b"")
check("bad_name_400", st == 400, (st, body))
st, body = http("GET", "/v2/repository/models/b/load")
check("get_is_405", st == 405, (st, body))

# unload over gRPC: HTTP sees it
code, det = grpc_control(False, "b")
check("grpc_unload", code == grpc.StatusCode.OK, (code, det))
ix = index_http()
check("grpc_unload_seen_http", ix.get("b", ("",))[:2] == ("UNAVAILABLE", "unloaded"), ix)
check("grpc_index_agrees", index_grpc() == ix, (index_grpc(), ix))
code, det = grpc_control(False, "b")
check("unload_twice_ok", code == grpc.StatusCode.OK, (code, det))
# a load re-reads the directory: a new version appears
os.makedirs(os.path.join(TMP, "repo", "b", "2"), exist_ok=True)
shutil.copy(os.path.join(TMP, "repo", "b", "1", "model.onnx"),
            os.path.join(TMP, "repo", "b", "2", "model.onnx"))
code, det = grpc_control(True, "b")
check("grpc_load", code == grpc.StatusCode.OK, (code, det))
ix = index_http()
check("load_rereads_version", ix.get("b") == ("READY", "", "2"), ix.get("b"))
st, body = http("POST", "/v2/models/b/infer", BODY)
check("new_version_answers", st == 200 and json.loads(body).get("model_version") == "2",
      (st, body))
# a reload while loaded: it keeps serving (READY) and stays so
st, body = http("POST", "/v2/repository/models/b/load", b"")
check("reload_loaded", st == 200 and index_http().get("b", ("",))[0] == "READY", (st, body))

# ---- a model directory added after start loads: the model table grows ----
os.makedirs(os.path.join(TMP, "repo", "late", "1"), exist_ok=True)
shutil.copy(os.path.join(TMP, "repo", "a", "1", "model.onnx"),
            os.path.join(TMP, "repo", "late", "1", "model.onnx"))
st, body = http("POST", "/v2/repository/models/late/load", b"")
check("added_dir_loads", st == 200, (st, body))
ix = index_http()
check("added_dir_index", ix.get("late") == ("READY", "", "1"), ix.get("late"))
check("added_dir_grpc_index", index_grpc().get("late") == ix.get("late"), index_grpc())
st, body = http("POST", "/v2/models/late/infer", BODY)
check("added_dir_answers", st == 200, (st, body))
sl = stats("late")
check("added_dir_stats", sl and sl["outcomes"]["success"] == 1, sl)


# the table grows while readers walk it: loads of new directories with /metrics, statistics
# and the index read over HTTP and gRPC all the while (every answer whole and well-formed)
NEW = ["grow%d" % i for i in range(4)]
for name in NEW:
    os.makedirs(os.path.join(TMP, "repo", name, "1"), exist_ok=True)
    shutil.copy(os.path.join(TMP, "repo", "a", "1", "model.onnx"),
                os.path.join(TMP, "repo", name, "1", "model.onnx"))
reader_stop = threading.Event()
reader_bad = []
reader_n = [0]


def reader():
    while not reader_stop.is_set():
        try:
            st, body = http("GET", "/metrics")
            if st != 200 or b"usher_requests_received_total" not in body:
                reader_bad.append(("metrics", st))
            st, body = http("GET", "/v2/models/stats")
            names = [m["name"] for m in json.loads(body)["model_stats"]]
            if st != 200 or len(set(names)) != len(names) or "a" not in names:
                reader_bad.append(("stats", st, names))
            ix = index_http()
            if "a" not in ix:
                reader_bad.append(("index", ix))
            gi = index_grpc()
            if "a" not in gi:
                reader_bad.append(("grpc index", gi))
            stub.ModelStatistics(pb.ModelStatisticsRequest(), timeout=30)
            reader_n[0] += 1
        except Exception as e:  # noqa: BLE001 - any failure is a finding
            reader_bad.append(repr(e))


rth = [threading.Thread(target=reader) for _ in range(2)]
for t in rth:
    t.start()
grow_fail = []
for name in NEW:
    st, body = http("POST", "/v2/repository/models/%s/load" % name, b"")
    if st != 200:
        grow_fail.append((name, st, body))
time.sleep(0.2)
reader_stop.set()
for t in rth:
    t.join()
ix = index_http()
check("grow_loads", not grow_fail and all(ix.get(n, ("",))[0] == "READY" for n in NEW),
      (grow_fail, ix))
check("grow_readers_whole", not reader_bad and reader_n[0] > 0, (reader_n, reader_bad[:3]))
st, body = http("GET", "/metrics")
check("grow_in_metrics", all(('usher_requests_received_total{model="%s"}' % n).encode() in body
                             for n in NEW + ["late"]), "an added model missing in /metrics")
gs = {m.name for m in stub.ModelStatistics(pb.ModelStatisticsRequest(), timeout=30).model_stats}
check("grow_in_grpc_stats", set(NEW) <= gs, gs)


def max_batch(model):
    st, body = http("GET", "/v2/models/%s/config" % model)
    return json.loads(body).get("max_batch_size") if st == 200 else (st, body)


# a load's "config" parameter (Triton's JSON model configuration) replaces config.pbtxt
CFG = {"max_batch_size": 2, "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": ["16"]}]}
mb0 = max_batch("late")
st, body = http("POST", "/v2/repository/models/late/load",
                json.dumps({"parameters": {"config": json.dumps(CFG)}}).encode())
check("config_param_loads", st == 200, (st, body))
check("config_param_max_batch", mb0 != 2 and max_batch("late") == 2, (mb0, max_batch("late")))
BODY3 = json.dumps({"inputs": [{"name": "x", "shape": [3, 16], "datatype": "FP32",
                                "data": [0.5] * 48}]}).encode()
st, body = http("POST", "/v2/models/late/infer", BODY3)
check("config_param_enforced", st == 400, (st, body))
# a bad configuration names the field; the version loaded keeps serving as it was
for cfg, field in (('{"max_batch_size": "many"}', "field 'max_batch_size'"),
                   ('{"input": [{"name": "x", "dims": [16, 1.5]}]}', "field 'input[0].dims[1]'"),
                   ('{"input": [{"name": "x", "data_type": "float"}]}',
                    "field 'input[0].data_type'"),
                   ('[]', "expected a JSON object"), ('{"max_batch_size": 2', "not JSON")):
    st, body = http("POST", "/v2/repository/models/late/load",
                    json.dumps({"parameters": {"config": cfg}}).encode())
    msg = err_text(body)
    check("config_param_bad " + field, st == 400 and "parameters.config: " in msg and
          field in msg, (st, msg))
check("config_param_bad_keeps_old", max_batch("late") == 2 and
      http("POST", "/v2/models/late/infer", BODY)[0] == 200)
for body, what in ((b'{"parameters": {"config": 5}}', "field 'parameters.config'"),
                   (b'{"parameters": {"file:1/model.onnx": "AAAA"}}', "not supported"),
                   (b'{"parameters": {"colour": "red"}}', "unknown load parameter"),
                   (b'{"parameters": [1]}', "field 'parameters'"), (b'[', "load request body")):
    st, rb = http("POST", "/v2/repository/models/late/load", body)
    check("load_body_refused " + what, st == 400 and what in err_text(rb), (st, rb))
# a load without it reads the directory again: no config.pbtxt, the planned batch
st, body = http("POST", "/v2/repository/models/late/load", b"")
check("config_param_dropped", st == 200 and max_batch("late") == mb0, (st, max_batch("late")))

# ---- an unload answers the requests it finds queued and running, then frees ----
st, body = http("POST", "/v2/repository/models/slow/load", b"")
check("slow_load", st == 200, (st, body))
SLOW = json.dumps({"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                               "data": [0.5] * 16}]}).encode()
s0 = stats("slow")
results = []


def one():
    r = http("POST", "/v2/models/slow/infer", SLOW, timeout=60)[0]
    with threading.Lock():
        results.append(r)


ths = [threading.Thread(target=one) for _ in range(6)]
for t in ths:
    t.start()
inflight = 0
for _ in range(400):
    inflight = stats("slow")["in_flight"]
    if inflight >= 3:
        break
    time.sleep(0.005)
t0 = time.time()
st, body = http("POST", "/v2/repository/models/slow/unload", b"")
took = time.time() - t0
s1 = stats("slow")
for t in ths:
    t.join()
n200 = results.count(200)
# those in flight when the unload came were answered 200 (its SLO is 10 s: nothing expires),
# and the unload answered only once they were
check("unload_drains_in_flight", st == 200 and inflight > 0 and n200 >= inflight and
      set(results) <= {200, 503} and s1["in_flight"] == 0 and
      s1["outcomes"]["success"] - s0["outcomes"]["success"] == n200,
      "unload %d, %d in flight before it, answers %s, in flight after %d, took %.2f s" %
      (st, inflight, results, s1["in_flight"], took))
print("     (unload of slow with %d in flight: %.2f s)" % (inflight, took))
ix = index_http()
check("slow_unloaded", ix.get("slow", ("",))[:2] == ("UNAVAILABLE", "unloaded"), ix.get("slow"))

# ---- unload/load cycles of b under traffic; a is never touched ----
before = {m: stats(m) for m in ("a", "b")}
# after a 503, a little pause, as a client honouring Retry-After would
traffic = sc.Traffic(http, ("b", "b", "b", "a"), BODY, timeout=60,
                     pause=lambda st: 0.005 if st == 503 else 0)
seen, errors = traffic.seen, traffic.errors
traffic.start()
cycle_fail = []
for i in range(6):
    time.sleep(0.15)
    if i % 2:
        code, det = grpc_control(False, "b")
        if code != grpc.StatusCode.OK:
            cycle_fail.append(("grpc unload", code, det))
    else:
        st, body = http("POST", "/v2/repository/models/b/unload", b"")
        if st != 200:
            cycle_fail.append(("http unload", st, body))
    time.sleep(0.15)
    if i % 2:
        st, body = http("POST", "/v2/repository/models/b/load", b"")
        if st != 200:
            cycle_fail.append(("http load", st, body))
    else:
        code, det = grpc_control(True, "b")
        if code != grpc.StatusCode.OK:
            cycle_fail.append(("grpc load", code, det))
time.sleep(0.3)
traffic.stop()
check("cycles_all_answered", not cycle_fail, cycle_fail)
check("traffic_every_request_answered", not errors, errors[:5])
check("traffic_b_200_or_503", set(seen["b"]) <= {200, 503} and seen["b"].get(200, 0) > 0 and
      seen["b"].get(503, 0) > 0, seen["b"])
check("traffic_a_untouched", set(seen["a"]) == {200}, seen["a"])
print("     (6 unload/load cycles of b: clients saw a %s, b %s)" % (seen["a"], seen["b"]))
after = sc.settled_stats(http, ("a", "b"), idle=("b",))
# the server's ledger of the model equals what its clients saw, across the unloads
sc.check_ledger(before, after, seen)
check("b_ready_after", http("GET", "/v2/models/b/ready")[0] == 200)
sc.finish()
