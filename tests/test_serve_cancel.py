#!/usr/bin/env python3
"""test_serve_cancel.py PORT - HTTP cancel on disconnect (RELIABILITY.md INPUT-7c,
docs/serve.md "Cancel on disconnect") against the server tests/test_serve_cancel.sh started:
model 'slow' (tests/make_mlp.py, max_batch 1, one replica, SLO 60 s) and 'mlp'.

One replica runs one request at a time, so a queue is built on purpose: "keeper" clients
(their count sized from a request's measured time, so that they keep the replica busy for
about 3 s whatever the CPU) fill it, then clients that go away while their request waits
behind them:
  - rst: closes with SO_LINGER 0 (RST),
  - fin: close() (FIN; the server's interim 100 makes its kernel answer RST),
  - pipelined: three requests in one write, then close(): the server reads one request at a
    time, so one is received (and cancelled) and two never are,
  - killed: a child process that sent its request, killed with SIGKILL (Triton's crashing
    client),
and clients that stay:
  - half-closed HTTP/1.1: shutdown(SHUT_WR) after its request, then reads: an interim
    "100 Continue" and its 200 with outputs,
  - half-closed HTTP/1.0: the same; no interim answer (never sent to HTTP/1.0), its 200.
Checked once nothing is in flight: every request of a client that went was cancelled
(outcome 'cancelled', usher_http_responses_total code 499) and none ran (execution_count
grew by the keepers and the two half-closed requests only); received = the requests read
(the two pipelined never read not among them); the ledger received == outcomes; the keepers
all 200 without an interim answer; the server live, later requests served, no connection
left open. Prints "ok NAME" / "FAIL NAME: why"; exits 1 on any failure.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_client as sc  # noqa: E402
from serve_client import check, fail  # noqa: E402

PORT = int(sys.argv[1])
BASE = "http://127.0.0.1:%d" % PORT
http = sc.Http(BASE)
BODY = sc.INFER_BODY


def request_bytes(model="slow", version="1.1", close=False):
    return ("POST /v2/models/%s/infer HTTP/%s\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n%s\r\n" % (model, version, len(BODY),
                                              "Connection: close\r\n" if close else "")
            ).encode() + BODY


def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def responses(data):
    """the answers in data, interim ones included: [(status, body)]"""
    out = []
    while b"\r\n\r\n" in data:
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            break
        n = 0
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            if k.strip().lower() == "content-length":
                n = int(v.strip())
        out.append((status, rest[:n]))
        data = rest[n:]
    return out


def read_until_closed(s, timeout=60):
    s.settimeout(timeout)
    data = b""
    end = time.time() + timeout
    while time.time() < end:
        try:
            d = s.recv(65536)
        except (socket.timeout, OSError):
            break
        if not d:
            break
        data += d
    return data


def read_answer(s, timeout=60):
    """one final answer on a kept-alive connection: [(status, body)], interim ones first"""
    s.settimeout(timeout)
    data = b""
    end = time.time() + timeout
    while time.time() < end:
        got = responses(data)
        if got and got[-1][0] >= 200:
            return got
        try:
            d = s.recv(65536)
        except (socket.timeout, OSError):
            break
        if not d:
            break
        data += d
    return responses(data)


def metric(name, labels):
    with urllib.request.urlopen(BASE + "/metrics", timeout=30) as r:
        text = r.read().decode()
    total = 0.0
    for ln in text.splitlines():
        if ln.startswith(name + "{") and all(l in ln for l in labels):
            total += float(ln.split()[-1])
        elif ln == name or ln.startswith(name + " "):
            total += float(ln.split()[-1])
    return total


def received():
    return metric("usher_requests_received_total", ['model="slow"'])


def code499():
    return metric("usher_http_responses_total", ['model="slow"', 'code="499"'])


def wait_received(target, timeout=20):
    end = time.time() + timeout
    while received() < target and time.time() < end:
        time.sleep(0.01)
    return received() >= target


def settled(timeout=120):
    end = time.time() + timeout
    while True:
        h = sc.model_stats(http, "slow")
        if h["in_flight"] == 0 or time.time() > end:
            return h
        time.sleep(0.05)


# ---- a request's time on this machine: the keepers are sized by it ----
for _ in range(600):
    st, _ = http("GET", "/v2/models/slow/ready")
    if st == 200:
        break
    time.sleep(0.1)
times = []
for _ in range(3):
    t = time.time()
    st, body = http("POST", "/v2/models/slow/infer", BODY)
    times.append(time.time() - t)
    if st != 200:
        fail("warm", "%d %r" % (st, body[:200]))
        sc.finish()
t_req = min(times)
K = max(6, min(100, int(3.0 / max(t_req, 1e-3)) + 1))
print("     a request of 'slow' takes %.0f ms here: %d keepers" % (t_req * 1e3, K), flush=True)

h0, rx0, c0 = settled(), received(), code499()

# ---- the keepers: one connection each, one request, its answer read ----
keeper_answers = [None] * K


def keeper(i):
    s = connect()
    try:
        s.sendall(request_bytes(close=True))
        keeper_answers[i] = responses(read_until_closed(s, 120))
    finally:
        s.close()


keepers = [threading.Thread(target=keeper, args=(i,)) for i in range(K)]
for t in keepers:
    t.start()
if not wait_received(rx0 + K):
    fail("keepers_queued", "received %d of %d" % (received() - rx0, K))

# ---- the clients that go away, and the half-closed ones, queued behind the keepers ----
rst = [connect() for _ in range(3)]
fin = [connect() for _ in range(3)]
pipe = connect()
half11, half10 = connect(), connect()
for s in rst + fin:
    s.sendall(request_bytes())
pipe.sendall(request_bytes() * 3)
half11.sendall(request_bytes())
half11.shutdown(socket.SHUT_WR)
half10.sendall(request_bytes(version="1.0"))
half10.shutdown(socket.SHUT_WR)
child = subprocess.Popen([sys.executable, "-c", """
import socket, sys, time
s = socket.create_connection(("127.0.0.1", %d))
s.sendall(sys.stdin.buffer.read())
print("sent", flush=True)
time.sleep(600)
""" % PORT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
child.stdin.write(request_bytes())
child.stdin.close()
child.stdout.readline()
GONE = 3 + 3 + 1 + 1  # requests received whose clients go
STAY = 2
queued = wait_received(rx0 + K + GONE + STAY)
busy = sc.model_stats(http, "slow")
check("all_queued_before_the_clients_go", queued and busy["in_flight"] >= GONE + STAY,
      "received %d of %d, in flight %d" % (received() - rx0, K + GONE + STAY, busy["in_flight"]))
for s in rst:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
for s in fin:
    s.close()
pipe.close()
child.send_signal(signal.SIGKILL)
child.wait()
t_gone = time.time()

# the half-closed clients read their answers (after the keepers')
half_answers = {}


def half_reader(name, s):
    half_answers[name] = responses(read_until_closed(s, 120))
    s.close()


readers = [threading.Thread(target=half_reader, args=("1.1", half11)),
           threading.Thread(target=half_reader, args=("1.0", half10))]
for t in readers:
    t.start()

# cancelled while the keepers still run: dropped from the queue within the sweeper's second
end = time.time() + 10
while time.time() < end:
    if sc.model_stats(http, "slow")["outcomes"]["cancelled"] - h0["outcomes"]["cancelled"] >= GONE:
        break
    time.sleep(0.02)
print("     the %d requests cancelled %.2f s after their clients went" % (
    GONE, time.time() - t_gone), flush=True)

for t in keepers + readers:
    t.join()
h1, rx1, c1 = settled(), received(), code499()
d = {k: h1["outcomes"][k] - h0["outcomes"][k] for k in h1["outcomes"]}
ran = h1["execution_count"] - h0["execution_count"]
check("gone_clients_cancelled", d["cancelled"] == GONE,
      "%d cancelled of %d (outcomes %s)" % (d["cancelled"], GONE, d))
check("cancelled_never_ran", ran == K + STAY and d["success"] == K + STAY,
      "%d batches ran, %d successes; %d keepers + %d half-closed" % (ran, d["success"], K, STAY))
check("received_once_each", rx1 - rx0 == K + GONE + STAY,
      "%d received, %d expected (the 2 pipelined requests never read are not)" % (
          rx1 - rx0, K + GONE + STAY))
check("ledger_balanced", h1["in_flight"] == 0 and sum(d.values()) == rx1 - rx0,
      "in flight %d, outcomes %s, received %d" % (h1["in_flight"], d, rx1 - rx0))
check("metric_499_counts_cancelled", c1 - c0 == GONE, "499: %d, cancelled %d" % (c1 - c0, GONE))
kept = [a for a in keeper_answers if a]
check("keepers_answered_200", len(kept) == K and all(
    len(a) == 1 and a[0][0] == 200 and b'"outputs"' in a[0][1] for a in kept),
      [a and [x[0] for x in a] for a in keeper_answers])
a11 = half_answers.get("1.1", [])
check("half_closed_http11_answered", [x[0] for x in a11] == [100, 200] and
      b'"outputs"' in a11[-1][1], [(x[0], x[1][:80]) for x in a11])
a10 = half_answers.get("1.0", [])
check("half_closed_http10_answered", [x[0] for x in a10] == [200] and
      b'"outputs"' in a10[-1][1], [(x[0], x[1][:80]) for x in a10])

# ---- the server is live and serves on; every connection of the clients that went is closed
st, _ = http("GET", "/v2/health/live")
st2, body = http("POST", "/v2/models/slow/infer", BODY)
st3, body3 = http("POST", "/v2/models/mlp/infer",
                  json.dumps({"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                                          "data": [0.5] * 16}]}).encode())
check("live_after", st == 200 and st2 == 200 and st3 == 200 and b'"outputs"' in body,
      "live %d, slow %d, mlp %d" % (st, st2, st3))
end = time.time() + 5
n_open = metric("usher_http_connections", [])  # the scrape's own connection among them
while n_open > 1 and time.time() < end:
    time.sleep(0.05)
    n_open = metric("usher_http_connections", [])
check("no_connection_left", n_open <= 1, "%d open besides the scrape" % (n_open - 1))

# ---- a kept-alive client that half-closes after two requests gets both answers ----
s = connect()
s.sendall(request_bytes(model="mlp") * 2)
s.shutdown(socket.SHUT_WR)
got = responses(read_until_closed(s, 30))
s.close()
finals = [x for x in got if x[0] >= 200]
check("half_closed_pipelined_both_answered", len(finals) == 2 and all(
    x[0] == 200 and b'"outputs"' in x[1] for x in finals) and
      all(x[0] in (100, 200) for x in got), [x[0] for x in got])

# ---- a normal kept-alive client never sees an interim answer ----
s = connect()
seen = []
for _ in range(3):
    s.sendall(request_bytes(model="mlp"))
    seen += read_answer(s, 30)
s.close()
check("keep_alive_no_interim", [x[0] for x in seen] == [200, 200, 200], [x[0] for x in seen])
sc.finish()
