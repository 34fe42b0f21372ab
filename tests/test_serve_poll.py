#!/usr/bin/env python3
"""test_serve_poll.py HTTP_PORT REPO LOG - model control's poll mode against a running
`usher serve --model-control-mode poll --repository-poll-secs 1` (tests/test_serve_poll.sh
starts it over REPO with 'a' and 'b', MLPs x[N,16] FP32 -> y[N,4], SLO 10 s; SPARE holds
model files to copy in; LOG is the server's output).

While client threads send requests to 'a' and 'b' the whole time, the repository changes
under the server: a directory added whole ('c') loads; one copied in two halves a poll apart
('d': a half-written file that stays unchanged over two scans) fails to load and loads once
the copy ends; one copied in two halves within a poll interval ('e') loads without a failed
try; 'b' gets a new version (2: a reload, the old runtime serving until the new one is
ready), a config.pbtxt (max_batch_size 2, seen in /config), then a broken version 3 (the
load fails, version 2 keeps serving); 'c' is removed (unloaded, its counters kept).
Explicit load / unload are refused with Triton's text. At the end no request to 'a' or 'b'
failed, and each model's ledger equals what its clients saw. Prints "ok NAME" or
"FAIL NAME: why"; exits 1 on any failure.
"""
import json
import os
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_client as sc  # noqa: E402
from serve_client import check  # noqa: E402

HTTP = "http://127.0.0.1:%s" % sys.argv[1]
REPO = sys.argv[2]
SPARE = sys.argv[3]
LOG = sys.argv[4]
TRITON_POLL = "explicit model load / unload is not allowed if polling is enabled"


http = sc.Http(HTTP, timeout=60)


def index():
    return sc.repository_index(http)


def stats(model):
    return sc.model_stats(http, model)


def wait_until(what, pred, timeout=90):
    """poll every 0.1 s until pred() is true; the last value when it never is"""
    end = time.time() + timeout
    v = pred()
    while not v and time.time() < end:
        time.sleep(0.1)
        v = pred()
    return v


BODY = sc.INFER_BODY


def copy_in(name, src_file, version="1", halves_apart=None):
    """a model directory appears: written whole, or its file in two halves with a pause"""
    d = os.path.join(REPO, name, version)
    os.makedirs(d, exist_ok=True)
    data = open(src_file, "rb").read()
    path = os.path.join(d, "model.onnx")
    if halves_apart is None:
        with open(path, "wb") as f:
            f.write(data)
        return
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
        f.flush()
        time.sleep(halves_apart)
        f.write(data[len(data) // 2:])


# ---- clients on a and b for the whole test ----
before = {m: stats(m) for m in ("a", "b")}
versions_b = {}


def b_version(model, st, body):
    """b's answers by model_version (called under the traffic's lock)"""
    if model == "b" and st == 200:
        v = json.loads(body).get("model_version")
        versions_b[v] = versions_b.get(v, 0) + 1


traffic = sc.Traffic(http, ("a", "b", "b"), BODY, on_answer=b_version, pause=lambda st: 0.002)
seen, errors = traffic.seen, traffic.errors


def infer_counted(model):
    """a request of the test's own to a busy model: in its ledger as the clients' are"""
    st, body = http("POST", "/v2/models/%s/infer" % model, BODY)
    traffic.count(model, st)
    return st, body


traffic.start()

# explicit control is refused in poll mode, with Triton's text
for verb in ("load", "unload"):
    st, body = http("POST", "/v2/repository/models/a/%s" % verb, b"")
    check("poll_refuses_" + verb, st == 503 and json.loads(body).get("error") == TRITON_POLL,
          (st, body))

# a directory added whole loads
t0 = time.time()
copy_in("c", os.path.join(SPARE, "small.onnx"))
ix = wait_until("c", lambda: index().get("c", ("",))[0] == "READY" and index())
check("added_loads", ix and ix.get("c", ("",))[0] == "READY", index().get("c"))
print("     (an added directory served after %.1f s, polling every 1 s)" % (time.time() - t0))
for _ in range(3):
    http("POST", "/v2/models/c/infer", BODY)
st, body = http("POST", "/v2/models/c/infer", BODY)
check("added_answers", st == 200, (st, body))

# a copy whose half-written file stays unchanged over two scans: the load fails (ONNX Runtime
# refuses the file), the model is UNAVAILABLE with the reason; the copy's end retries it
writer = threading.Thread(target=copy_in, args=("d", os.path.join(SPARE, "small.onnx")),
                          kwargs={"halves_apart": 4.0})
writer.start()
ix = wait_until("d failed", lambda: index().get("d", ("", ""))[1] not in ("", "loading") and
                index(), timeout=60)
dstate = (ix or {}).get("d", ("", "", ""))
check("half_written_refused", dstate[0] == "UNAVAILABLE" and dstate[1] != "unloaded",
      dstate)
writer.join()
ix = wait_until("d", lambda: index().get("d", ("",))[0] == "READY" and index())
check("half_written_retried", ix and ix.get("d", ("",))[0] == "READY", index().get("d"))
# a copy in two halves within a poll interval: loaded once whole, no failed try
writer = threading.Thread(target=copy_in, args=("e", os.path.join(SPARE, "small.onnx")),
                          kwargs={"halves_apart": 0.2})
writer.start()
writer.join()
ix = wait_until("e", lambda: index().get("e", ("",))[0] == "READY" and index())
log = open(LOG, errors="replace").read()
check("quick_copy_loads_once", ix and ix.get("e", ("",))[0] == "READY" and
      "model 'e' failed to load" not in log, (index().get("e"),
                                               [l for l in log.splitlines() if "'e'" in l]))

# b changes: a new version reloads it, the old one serving meanwhile
copy_in("b", os.path.join(SPARE, "small.onnx"), version="2")
ix = wait_until("b v2", lambda: index().get("b", ("", "", ""))[2] == "2" and index())
check("new_version_reloads", ix and ix.get("b") == ("READY", "", "2"), index().get("b"))
st, body = infer_counted("b")
check("new_version_answers", st == 200 and json.loads(body).get("model_version") == "2",
      (st, body))
# a config.pbtxt appears: max_batch_size 2, as /config shows after the reload
with open(os.path.join(REPO, "b", "config.pbtxt"), "w") as f:
    f.write('max_batch_size: 2\ninput [ { name: "x" data_type: TYPE_FP32 dims: [ 16 ] } ]\n')


def b_config():
    st, body = http("GET", "/v2/models/b/config")
    return json.loads(body).get("max_batch_size") if st == 200 else None


check("config_change_reloads", wait_until("b config", lambda: b_config() == 2), b_config())
# a broken version 3: the load fails, version 2 keeps serving
os.makedirs(os.path.join(REPO, "b", "3"))
with open(os.path.join(REPO, "b", "3", "model.onnx"), "wb") as f:
    f.write(os.urandom(1000))
log_has = lambda: "model 'b' failed to load" in open(LOG, errors="replace").read()
check("broken_version_fails", wait_until("b broken", log_has, timeout=60),
      "no failed load of b in the log")
time.sleep(1.5)  # a further scan: not retried, still version 2
st, body = infer_counted("b")
check("broken_version_keeps_old", st == 200 and json.loads(body).get("model_version") == "2" and
      index().get("b") == ("READY", "", "2"), (st, body, index().get("b")))
check("broken_not_retried", open(LOG, errors="replace").read().count(
    "model 'b' failed to load") == 1, "retried without a change")

# c removed: unloaded, its counters kept
c_before = stats("c")
shutil.rmtree(os.path.join(REPO, "c"))
ix = wait_until("c gone", lambda: index().get("c", ("", ""))[:2] == ("UNAVAILABLE", "unloaded")
                and index())
check("removed_unloads", ix and ix.get("c", ("", ""))[:2] == ("UNAVAILABLE", "unloaded"),
      index().get("c"))
st, body = http("POST", "/v2/models/c/infer", BODY)
check("removed_infer_503", st == 503, (st, body))
c_after = stats("c")
check("removed_keeps_stats", c_after and c_after["outcomes"]["success"] ==
      c_before["outcomes"]["success"] >= 4, (c_before, c_after))
check("server_ready_after_remove", http("GET", "/v2/health/ready")[0] == 200)

time.sleep(0.3)
traffic.stop()
check("every_request_answered", not errors, errors[:5])
check("a_never_failed", set(seen["a"]) == {200}, seen["a"])
check("b_never_failed", set(seen["b"]) == {200} and versions_b.get("2", 0) > 0, seen["b"])
print("     (clients saw a %s, b %s, b's versions %s)" % (seen["a"], seen["b"], versions_b))
after = sc.settled_stats(http, ("a", "b"), idle=("a", "b"))
sc.check_ledger(before, after, seen)
sc.finish()
