#!/usr/bin/env python3
"""test_serve_hostile.py PORT PHASE - hostile HTTP against a running `usher serve`
(tests/test_serve_hostile.sh starts it), over raw sockets. PHASE:

  framing   conformance with raw requests (/config, Triton's error wording,
            Inference-Header-Content-Length: 0, gzip and deflate bodies and answers,
            a decompression bomb: 413), smuggling shapes (CL+TE both orders, duplicate and malformed CL,
            unknown TE, huge chunk sizes), slow headers and slow bodies (the
            server runs with --header-timeout 1 --body-timeout 2), NUL and
            invalid percent-encoding, invalid names on POST, a 70 KB URL; every
            refusal a JSON body and a closed connection, no smuggled request
            answered; then the ledgers of /metrics reconcile with what was sent
  slowloris 2,000 connections sending their headers a byte at a time (the
            server at its default limits), reconnecting when dropped, while a
            normal client sends requests one after the other: >= 99% of them
            answered within max(1 s, 10 x its p99 measured just before, in the
            same run)

Each case ends with a live check: the server still answers a normal inference.
Prints "ok NAME" or "FAIL NAME: why"; exits 1 on any failure.
"""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_client as sc  # noqa: E402
from serve_client import fail, ok  # noqa: E402

PORT = int(sys.argv[1])
PHASE = sys.argv[2]
INFER = b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1,16],"data":[' + \
    b",".join(b"1" for _ in range(16)) + b"]}]}"
sent_mlp_infer = 0  # requests to /v2/models/mlp/infer that the server answered


def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_all(s, timeout):
    """everything until the server closes (or timeout): (bytes, closed)"""
    s.settimeout(timeout)
    data = b""
    end = time.time() + timeout
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            return data, False
        except OSError:
            return data, True
        if not d:
            return data, True
        data += d
    return data, False


def parse(data):
    """the first response: (status, headers dict, body), or (0, {}, b"")"""
    if b"\r\n\r\n" not in data:
        return 0, {}, b""
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    h = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        h[k.strip().lower()] = v.strip()
    n = int(h.get("content-length", "0"))
    return status, h, rest[:n]


def raw(data, timeout=5.0):
    """send data on a fresh connection; (status, headers, body, all bytes, closed, seconds)"""
    t = time.time()
    s = connect()
    try:
        s.sendall(data)
    except OSError:
        pass
    got, closed = read_all(s, timeout)
    s.close()
    st, h, body = parse(got)
    return st, h, body, got, closed, time.time() - t


def trickle(first, byte, tries):
    """send first, then byte every 0.3 s (at most tries times) until the server answers or
    closes, and read 2 s more: (status, body, seconds from the connect)"""
    t = time.time()
    s = connect()
    s.sendall(first)
    got = b""
    for i in range(tries):
        try:
            s.sendall(byte)
        except OSError:
            break
        g, closed = read_all(s, 0.3)
        got += g
        if got or closed:
            break
    g, _ = read_all(s, 2)
    got += g
    s.close()
    st, h, body = parse(got)
    return st, body, time.time() - t


def request(method, path, body=b"", headers=""):
    return raw(("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n"
                % (method, path, len(body), headers)).encode() + body)


def json_error(body):
    try:
        return isinstance(json.loads(body)["error"], str)
    except Exception:
        return False


def live(name):
    global sent_mlp_infer
    st, _, _, _, _, _ = request("GET", "/v2/health/live")
    st2, _, body, _, _, _ = request("POST", "/v2/models/mlp/infer", INFER)
    sent_mlp_infer += 1
    if st != 200 or st2 != 200 or b'"outputs"' not in body:
        fail(name + "_live", "live %d, infer %d %r" % (st, st2, body[:200]))
        return False
    return True


def refused(name, data, status, within=3.0, mlp_infer=True):
    """data gets `status` with a JSON error body, the connection closed, and nothing else
    answered on it (no smuggled request), within `within` seconds"""
    global sent_mlp_infer
    st, h, body, got, closed, secs = raw(data, timeout=within + 2)
    if mlp_infer and st:
        sent_mlp_infer += 1
    why = []
    if st != status:
        why.append("status %d, want %d" % (st, status))
    if st and not json_error(body):
        why.append("body not JSON {error}: %r" % body[:120])
    if st and h.get("content-type", "") != "application/json":
        why.append("content-type %r" % h.get("content-type"))
    if not closed:
        why.append("connection left open")
    if got.count(b"HTTP/1.1 ") > 1:
        why.append("a second (smuggled) request was answered")
    if secs > within:
        why.append("took %.1f s" % secs)
    if why:
        fail(name, "; ".join(why))
    elif live(name):
        ok("%s (%d in %.2f s)" % (name, st, secs))


def metrics():
    st, _, body, _, _, _ = request("GET", "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return out


def protocol():
    """Triton/KServe conformance with raw requests: /config, Triton's error wording,
    Inference-Header-Content-Length: 0, gzip and deflate bodies and answers, a bomb"""
    global sent_mlp_infer
    import gzip
    import zlib
    st, h, body, _, _, _ = request("GET", "/v2/models/mlp/config")
    st2, _, body2, _, _, _ = request("GET", "/v2/models/mlp/versions/1/config")
    try:
        c = json.loads(body)
        good = (st == 200 and st2 == 200 and json.loads(body2) == c and c["name"] == "mlp"
                and c["max_batch_size"] >= 1 and c["input"][0]["name"] == "x"
                and c["input"][0]["data_type"] == "TYPE_FP32" and c["input"][0]["dims"] == ["16"]
                and c["output"][0]["dims"] == ["4"] and c["platform"] == "onnxruntime_onnx"
                and c["instance_group"][0]["count"] >= 1)
    except Exception as e:
        good = False
    if good:
        ok("config (max_batch_size %d, dims %s)" % (c["max_batch_size"], c["input"][0]["dims"]))
    else:
        fail("config", "%d %r / %d" % (st, body[:300], st2))
    st, h, body, _, _, _ = request("GET", "/v2")
    if st == 200 and "model_configuration" in json.loads(body).get("extensions", []):
        ok("server_metadata_lists_model_configuration")
    else:
        fail("server_metadata_lists_model_configuration", "%d %r" % (st, body[:200]))
    for path, code in (("/v2/systemsharedmemory/status", 404), ("/v2/models/mlp/generate", 404),
                       ("/v2/repository/models/mlp/load", 503)):
        st, h, body, _, _, _ = request("POST", path, b"{}")
        if st == code and json_error(body):
            ok("endpoint_table %s (%d)" % (path, st))
        else:
            fail("endpoint_table " + path, "%d %r" % (st, body[:200]))
    for path, want in (("/v2/models/nope/ready", "Request for unknown model: 'nope' is not found"),
                       ("/v2/models/mlp/versions/2/config",
                        "Request for unknown model: 'mlp' version 2 is not found")):
        st, h, body, _, _, _ = request("GET", path)
        if st == 404 and json_error(body) and json.loads(body)["error"] == want:
            ok("triton_wording " + path)
        else:
            fail("triton_wording " + path, "%d %r" % (st, body))
    # Triton's wording for the common inference errors, usher's detail after it
    one = '{"name":"%s","datatype":"FP32","shape":[1,16],"data":[' + ",".join("1" for _ in range(16)) + "]}"
    for body, want in (('{"inputs":[%s]}' % (one % "z"), "unexpected inference input 'z' for model 'mlp'"),
                       ('{"inputs":[%s,%s]}' % (one % "x", one % "y"),
                        "expected 1 inputs but got 2 inputs for model 'mlp'")):
        st, h, b, _, _, _ = request("POST", "/v2/models/mlp/infer", body.encode())
        sent_mlp_infer += 1
        if st == 400 and json_error(b) and json.loads(b)["error"].startswith(want):
            ok("triton_wording " + want[:30])
        else:
            fail("triton_wording " + want[:30], "%d %r" % (st, b[:200]))
    plain = request("POST", "/v2/models/mlp/infer", INFER)
    sent_mlp_infer += 1
    want = json.loads(plain[2])["outputs"]

    def same(st, h, body, name):
        try:
            got = json.loads(body)["outputs"]
        except Exception:
            got = None
        if st == 200 and got == want:
            ok(name)
        else:
            fail(name, "%d %r %r" % (st, h, body[:200]))
    st, h, body, _, _, _ = request("POST", "/v2/models/mlp/infer", INFER,
                                   "Inference-Header-Content-Length: 0\r\n")
    sent_mlp_infer += 1
    same(st, h, body, "ihcl_0")
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    for name, enc, data in (("gzip", "gzip", gzip.compress(INFER)),
                            ("deflate", "deflate", zlib.compress(INFER)),
                            ("deflate_raw", "deflate", raw_deflate.compress(INFER) + raw_deflate.flush())):
        st, h, body, _, _, _ = request("POST", "/v2/models/mlp/infer", data,
                                       "Content-Encoding: %s\r\n" % enc)
        sent_mlp_infer += 1
        same(st, h, body, "request_" + name)
    for enc, dec in (("gzip", gzip.decompress), ("deflate", zlib.decompress)):
        st, h, body, _, _, _ = request("POST", "/v2/models/mlp/infer", INFER,
                                       "Accept-Encoding: %s\r\n" % enc)
        sent_mlp_infer += 1
        if h.get("content-encoding") != enc:
            fail("answer_" + enc, "Content-Encoding %r" % h.get("content-encoding"))
        else:
            same(st, h, dec(body), "answer_" + enc)
    # statistics in Triton's schema
    st, h, body, _, _, _ = request("GET", "/v2/models/mlp/stats")
    try:
        ms = json.loads(body)["model_stats"][0]
        ist = ms["inference_stats"]
        good = (st == 200 and ms["last_inference"] > 1.7e12 and isinstance(ms["batch_stats"], list)
                and all(ist[k]["count"] >= 1 and ist[k]["ns"] > 0
                        for k in ("success", "compute_input", "compute_infer", "compute_output"))
                and ist["cache_hit"] == {"count": 0, "ns": 0} and ist["cache_miss"]["count"] == 0)
    except Exception:
        good = False
    if good:
        ok("statistics_triton_schema")
    else:
        fail("statistics_triton_schema", "%d %r" % (st, body[:600]))
    # a decompression bomb: 100 MB of zeros in ~100 KB, over the 64 MiB body limit: 413
    bomb = gzip.compress(b"\0" * 100000000, 9)
    t = time.time()
    st, h, body, _, _, _ = request("POST", "/v2/models/mlp/infer", bomb, "Content-Encoding: gzip\r\n")
    sent_mlp_infer += 1
    if st == 413 and json_error(body) and live("bomb"):
        ok("gzip_bomb_413 (%d bytes, %.2f s)" % (len(bomb), time.time() - t))
    elif st != 413:
        fail("gzip_bomb_413", "%d %r" % (st, body[:200]))
    for name, hdr, data, code in (("corrupt_gzip", "gzip", gzip.compress(INFER)[:-8] + b"xxxxxxxx", 400),
                                  ("unknown_coding", "br", INFER, 415)):
        st, h, body, _, _, _ = request("POST", "/v2/models/mlp/infer", data,
                                       "Content-Encoding: %s\r\n" % hdr)
        sent_mlp_infer += 1
        if st == code and json_error(body):
            ok("%s (%d)" % (name, st))
        else:
            fail(name, "%d %r" % (st, body[:200]))


def framing():
    P = b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\n"
    smuggled = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    refused("cl_then_te", P + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400)
    refused("te_then_cl", P + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, 400)
    refused("cl_differing", P + b"Content-Length: 4\r\nContent-Length: 45\r\n\r\nabcd" + smuggled, 400)
    refused("cl_duplicate", P + b"Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd" + smuggled, 400)
    refused("cl_space_before_colon", P + b"Content-Length : 4\r\n\r\nabcd" + smuggled, 400)
    refused("cl_negative", P + b"Content-Length: -1\r\n\r\n", 400)
    refused("cl_not_a_number", P + b"Content-Length: 4x\r\n\r\nabcd", 400)
    refused("cl_list", P + b"Content-Length: 4, 4\r\n\r\nabcd", 400)
    refused("te_gzip_chunked", P + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled, 400, within=1.0)
    refused("te_xchunked", P + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled, 400, within=1.0)
    refused("te_twice", P + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, within=1.0)
    refused("chunk_size_huge", P + b"Transfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nabc", 413, within=1.0)
    refused("chunk_size_17_digits", P + b"Transfer-Encoding: chunked\r\n\r\n1000000000000000a\r\n", 400, within=1.0)
    refused("chunk_no_crlf", P + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n", 400, within=1.0)
    # (its head never parses, so it names no model: not in mlp's ledger)
    refused("bare_lf", P.replace(b"\r\n", b"\n") + b"Content-Length: 0\n\n", 400, within=1.0,
            mlp_infer=False)
    refused("obs_fold", P + b"X-a: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n", 400, within=1.0)
    # slow headers: a byte every 0.3 s never completes them; 408 at the 1 s header timeout
    st, body, secs = trickle(b"GET /v2/health/live HTTP/1.1\r\n", b"X", 20)
    if st == 408 and json_error(body) and 0.8 <= secs <= 3.5:
        if live("slow_headers"):
            ok("slow_headers (408 after %.1f s)" % secs)
    else:
        fail("slow_headers", "status %d after %.1f s, body %r" % (st, secs, body[:100]))
    # slow body: 10 of 100 bytes, then a byte every 0.3 s; 408 at the 2 s body timeout
    global sent_mlp_infer
    st, body, secs = trickle(P + b"Content-Length: 100\r\n\r\n0123456789", b"x", 30)
    if st:
        sent_mlp_infer += 1
    if st == 408 and json_error(body) and 1.8 <= secs <= 4.5:
        if live("slow_body"):
            ok("slow_body (408 after %.1f s)" % secs)
    else:
        fail("slow_body", "status %d after %.1f s, body %r" % (st, secs, body[:100]))
    # paths
    G = "GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
    refused("path_nul", (G % "/v2/models/mlp%00/../../etc/ready").encode(), 400, mlp_infer=False)
    refused("path_nul_infer", b"POST /v2/models/mlp%00/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400, mlp_infer=False)
    refused("path_bad_percent", (G % "/v2/models/ml%zzp/ready").encode(), 400, mlp_infer=False)
    refused("path_truncated_percent", (G % "/v2/models/mlp/ready%4").encode(), 400, mlp_infer=False)
    refused("raw_nul_in_head", b"GET /v2/models/mlp\x00/ready HTTP/1.1\r\nHost: x\r\n\r\n", 400, mlp_infer=False)
    st, h, body, _, _, _ = request("POST", "/v2/models/%2e%2e/infer", b"{}")
    if st == 400 and json_error(body) and live("post_invalid_name"):
        ok("post_invalid_name (400)")
    elif st != 400:
        fail("post_invalid_name", "status %d %r" % (st, body[:100]))
    refused("url_70kb", ("GET /v2/" + "a" * 70000 + " HTTP/1.1\r\nHost: x\r\n\r\n").encode(), 414, mlp_infer=False)
    refused("head_over_32kb", ("GET /v2/health/live HTTP/1.1\r\n" + "X-a: %s\r\n" % ("b" * 8000) * 5 + "\r\n").encode(), 431, mlp_infer=False)
    # a 404 and a 405 are JSON too
    st, h, body, _, _, _ = request("GET", "/nowhere")
    st2, h2, body2, _, _, _ = request("GET", "/v2/models/mlp/infer")
    if st == 404 and json_error(body) and st2 == 405 and json_error(body2):
        ok("404_405_json")
    else:
        fail("404_405_json", "%d %r, %d %r" % (st, body, st2, body2))
    sent_mlp_infer += 1  # the GET on mlp's inference route is in its ledger (invalid)
    # keep-alive and pipelining still work: two requests in one write, two answers
    s = connect()
    s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got, closed = read_all(s, 3)
    s.close()
    if got.count(b"HTTP/1.1 200") == 2 and closed:
        ok("pipelined_keepalive")
    else:
        fail("pipelined_keepalive", repr(got[:300]))
    protocol()
    # a model that did not load: its "not ready" 503s are in its ledger too
    for i in range(3):
        st, h, body, _, _, _ = request("POST", "/v2/models/broken/infer", INFER)
        if st != 503 or not json_error(body) or h.get("retry-after") != "1":
            fail("not_ready_503", "status %d %r" % (st, body[:120]))
    # the ledgers: every inference request to mlp is counted once, by outcome, refusals
    # by the HTTP layer included; every HTTP answer is counted by code
    time.sleep(0.2)
    m = metrics()
    rec = m.get('usher_requests_received_total{model="mlp"}', -1)
    outs = sum(v for k, v in m.items() if k.startswith('usher_requests_total{model="mlp"'))
    infl = m.get('usher_requests_in_flight{model="mlp"}', -1)
    if rec == outs + infl and rec == sent_mlp_infer:
        ok("ledger_model (received %d = outcomes %d + in flight %d = sent %d)"
           % (rec, outs, infl, sent_mlp_infer))
    else:
        fail("ledger_model", "received %s, outcomes %s, in flight %s, sent %d"
             % (rec, outs, infl, sent_mlp_infer))
    b_rec = m.get('usher_requests_received_total{model="broken"}', -1)
    b_un = m.get('usher_requests_total{model="broken",outcome="unavailable"}', -1)
    if b_rec == 3 and b_un == 3:
        ok("ledger_not_ready (3 x 503 received and counted unavailable)")
    else:
        fail("ledger_not_ready", "received %s, unavailable %s, want 3 and 3" % (b_rec, b_un))
    http = m.get("usher_http_requests_total", -1)
    codes = sum(v for k, v in m.items() if k.startswith("usher_http_responses_total{"))
    if http == codes and http > 0:
        ok("ledger_http (%d answers = sum by code)" % http)
    else:
        fail("ledger_http", "requests %s, by code %s" % (http, codes))


def one_normal():
    """one inference on a fresh connection: seconds, or None when not answered"""
    t = time.time()
    try:
        s = connect()
        s.settimeout(5)
        s.sendall(("POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n" % len(INFER)).encode() + INFER)
        got, _ = read_all(s, 5)
        s.close()
    except OSError:
        return None
    return time.time() - t if parse(got)[0] == 200 else None


def slowloris():
    base = []
    for _ in range(100):
        base.append(one_normal())
    if None in base:
        fail("slowloris_baseline", "%d of 100 unanswered before the attack" % base.count(None))
        return
    base.sort()
    p99 = base[98]
    limit = max(1.0, 10 * p99)
    stop = threading.Event()
    conns = []
    opened = [0]
    lock = threading.Lock()

    def attacker():
        # 2,000 connections, each sends a partial head then a byte per second; a dropped
        # one is opened again
        while len(conns) < 2000 and not stop.is_set():
            try:
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", PORT))
                conns.append([s, 0])
                opened[0] += 1
            except OSError:
                time.sleep(0.01)
        while not stop.is_set():
            t = time.time()
            for c in conns:
                if stop.is_set():
                    break
                try:
                    c[0].send(b"GET /v2/health/live HTTP/1.1\r\n" if c[1] == 0 else b"X")
                    c[1] += 1
                except OSError:
                    try:
                        c[0].close()
                        s = socket.socket()
                        s.setblocking(False)
                        s.connect_ex(("127.0.0.1", PORT))
                        c[0], c[1] = s, 0
                        opened[0] += 1
                    except OSError:
                        pass
            time.sleep(max(0.0, 1.0 - (time.time() - t)))

    th = threading.Thread(target=attacker, daemon=True)
    th.start()
    while len(conns) < 2000 and th.is_alive():
        time.sleep(0.05)
    time.sleep(0.5)
    lat = []
    end = time.time() + 4
    while time.time() < end:
        lat.append(one_normal())
    stop.set()
    th.join()
    for c in conns:
        c[0].close()
    good = sum(1 for x in lat if x is not None and x <= limit)
    share = good / len(lat)
    worst = max((x for x in lat if x is not None), default=-1)
    msg = ("%d of %d answered within %.2f s (%.1f%%; before the attack p99 %.1f ms; worst %.3f s; "
           "%d attacker connections opened)" % (good, len(lat), limit, 100 * share, p99 * 1000,
                                                 worst, opened[0]))
    if share >= 0.99 and len(lat) >= 20:
        ok("slowloris_2000: " + msg)
    else:
        fail("slowloris_2000", msg)
    time.sleep(0.5)
    if live("slowloris"):
        m = metrics()
        ok("slowloris_metrics: evicted %d, refused %d" % (
            m.get('usher_http_connections_closed_total{reason="evicted"}', -1),
            m.get('usher_http_connections_closed_total{reason="refused"}', -1)))


if PHASE == "framing":
    framing()
elif PHASE == "slowloris":
    slowloris()
sc.finish()
