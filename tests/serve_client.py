"""serve_client.py - what the Python clients of the serving tests share (test_serve_poll.py,
test_serve_control.py, test_serve_grpc.py, test_serve_grpc_stream.py, test_serve_hostile.py).

Why one module: each test had its own copy of the ok/fail/check reporter, the urllib HTTP
call, the model-stats and repository-index look-ups, the gRPC stub compilation and the
client threads whose counts are reconciled with the server's ledger; the copies had begun
to drift (timeouts, headers). The tests import it with their own directory on sys.path
(set from their __file__), so they run from any working directory with /usr/bin/python3.
grpc and grpc_tools are imported only by the gRPC helpers, so the HTTP-only tests need
nothing beyond the standard library.

Every helper prints what the copies printed: "ok   NAME" / "FAIL NAME: why" lines, and
"FAIL protoc" (the gRPC test with the exit status) when the stubs do not compile.
"""
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

_fails = 0


def ok(name):
    print("ok   " + name, flush=True)


def fail(name, why):
    global _fails
    _fails += 1
    print("FAIL %s: %s" % (name, why), flush=True)


def check(name, cond, why=""):
    if cond:
        ok(name)
    else:
        fail(name, why)


def failures():
    """how many fail() calls so far"""
    return _fails


def finish():
    """exit 1 when anything failed, 0 otherwise"""
    sys.exit(1 if _fails else 0)


# ---- HTTP ----
class Http:
    """http(method, path, body=None, timeout=None) -> (status, body bytes) against BASE
    ("http://127.0.0.1:PORT"); an HTTP error status is an answer, not an exception. With
    json_type, a request with a body says Content-Type: application/json."""

    def __init__(self, base, timeout=60, json_type=False):
        self.base = base
        self.timeout = timeout
        self.json_type = json_type

    def __call__(self, method, path, body=None, timeout=None):
        req = urllib.request.Request(self.base + path, data=body, method=method)
        if self.json_type and body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def model_stats(http, model):
    """the model's entry of /v2/models/MODEL/stats, None when that is not 200"""
    st, body = http("GET", "/v2/models/%s/stats" % model)
    return json.loads(body)["model_stats"][0] if st == 200 else None


def repository_index(http):
    """{name: (state, reason, version)} from POST /v2/repository/index, {} when not 200"""
    st, body = http("POST", "/v2/repository/index", b"{}")
    return {m["name"]: (m["state"], m.get("reason", ""), m.get("version", ""))
            for m in json.loads(body)} if st == 200 else {}


INFER_BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                                     "data": [0.5] * 16}]}).encode()


# ---- client threads and the ledger ----
class Traffic:
    """one thread per entry of models, each sending body to its model's infer until stop(),
    counting every answer by status in seen[model]; a request that gets no answer at all
    goes to errors. on_answer(model, status, body) runs under the lock after the count;
    pause(status) is the seconds to sleep after an answer."""

    def __init__(self, http, models, body=INFER_BODY, timeout=60, on_answer=None,
                 pause=lambda st: 0):
        self.http, self.body, self.timeout = http, body, timeout
        self.on_answer, self.pause = on_answer, pause
        self.seen = {m: {} for m in sorted(set(models))}
        self.lock = threading.Lock()
        self.errors = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(m,)) for m in models]

    def count(self, model, st):
        with self.lock:
            self.seen[model][st] = self.seen[model].get(st, 0) + 1

    def _client(self, model):
        while not self.stopping.is_set():
            try:
                st, body = self.http("POST", "/v2/models/%s/infer" % model, self.body,
                                     timeout=self.timeout)
            except Exception as e:  # no answer at all: the ledger is broken
                with self.lock:
                    self.errors.append("%s: %r" % (model, e))
                continue
            with self.lock:
                self.seen[model][st] = self.seen[model].get(st, 0) + 1
                if self.on_answer:
                    self.on_answer(model, st, body)
            p = self.pause(st)
            if p:
                time.sleep(p)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()


def settled_stats(http, models, idle):
    """{model: stats} once every model of idle has nothing in flight (at most 100 tries
    0.1 s apart; the last look otherwise)"""
    for _ in range(100):
        after = {m: model_stats(http, m) for m in models}
        if all(after[m]["in_flight"] == 0 for m in idle):
            break
        time.sleep(0.1)
    return after


def check_ledger(before, after, seen):
    """ledger_MODEL: the server's outcomes of each model of seen grew by what its clients
    saw (every answer counted once, the successes as the 200s), across unloads and reloads"""
    for m in seen:
        n_client = sum(seen[m].values())
        o0, o1 = before[m]["outcomes"], after[m]["outcomes"]
        d = {k: o1[k] - o0[k] for k in o1}
        check("ledger_%s" % m, sum(d.values()) == n_client and d["success"] == seen[m].get(200, 0),
              (d, seen[m]))


# ---- gRPC ----
def grpc_stubs(proto_dir, out, show_rc=False):
    """(grpc_service_pb2, grpc_service_pb2_grpc) compiled by grpc_tools from
    PROTO_DIR/grpc_service.proto into OUT, as a client of the protocol would make them;
    prints "FAIL protoc" (": RC" with show_rc) and exits 1 when protoc fails"""
    from grpc_tools import protoc
    os.makedirs(out, exist_ok=True)
    rc = protoc.main(["protoc", "-I" + proto_dir, "--python_out=" + out,
                      "--grpc_python_out=" + out, os.path.join(proto_dir, "grpc_service.proto")])
    if rc != 0:
        print("FAIL protoc: %d" % rc if show_rc else "FAIL protoc")
        sys.exit(1)
    sys.path.insert(0, out)
    import grpc_service_pb2
    import grpc_service_pb2_grpc
    return grpc_service_pb2, grpc_service_pb2_grpc


def grpc_channel(target, max_message=None):
    """an insecure channel to TARGET ("127.0.0.1:PORT"); max_message sets both message limits"""
    import grpc
    opts = None
    if max_message is not None:
        opts = [("grpc.max_send_message_length", max_message),
                ("grpc.max_receive_message_length", max_message)]
    return grpc.insecure_channel(target, options=opts)
