"""test_serve_merge.py - the client side of tests/test_serve_merge.sh (standard library
and numpy only; run with /usr/bin/python3).

  compare URL_A URL_B LEDGER MODEL... [--shape IN=D0xD1] [--value IN=V] [--data IN=FILE]
          [--rows R] [--rounds N] [--tol T]
      Sends the same requests (seeded random floats in [-1, 1), integers from --value, and
      rows of FILE: raw float32 of IN's shape) to each MODEL on server A (its merge group)
      and on server B (the models served separately), and compares every output: same
      name, datatype and shape, and max |a - b| <= T x max |b| (T default 1e-5; an all-zero
      output must match exactly). Also compares the models' metadata (inputs and outputs:
      names, datatypes, shapes). Counts what A answered in LEDGER (JSON, per model).
  mixed URL LEDGER MODEL... [--threads T] [--requests N] [--shape ...] [--value ...]
      T threads each send N requests, cycling over the models (each thread starts at
      another one), on keep-alive connections; counts what came back in LEDGER.
  verify URL_A URL_B LEDGER MARKER MODEL... [--threads T] [--requests N] [--rows R]
      As mixed, but every request has its own seeded random input, and every 200 from A
      is checked against B's answer to the same input (--tol, as compare): "wrong" counts
      those that differ. A 500 whose error says the worker was lost counts as "lost" (a
      replica's worker killed under it); any other status is a failure. Each thread sends
      until the file MARKER exists (at most 120 s), then N more: those count apart
      ("ok_after": answered 200 after it). Prints one JSON line; exit 1 on a wrong answer,
      another status, or no MARKER.
Exit 1 with "FAIL ..." lines on a difference.
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

import numpy as np

DT = {"FP32": np.float32, "INT64": np.int64, "INT32": np.int32, "FP64": np.float64}


def opts(argv):
    o = {"shape": {}, "value": {}, "data": {}, "rows": 1, "rounds": 2, "tol": 1e-5,
         "threads": 8, "requests": 25}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            k, v = a[2:], argv[i + 1]
            i += 2
            if k in ("shape", "value", "data"):
                name, val = v.split("=", 1)
                o[k][name] = ([int(d) for d in val.split("x")] if k == "shape" else
                              int(val) if k == "value" else val)
            else:
                o[k] = float(v) if k == "tol" else int(v)
        else:
            pos.append(a)
            i += 1
    return o, pos


class Conn:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.c.request(method, path, body=data,
                       headers={"Content-Type": "application/json"} if data else {})
        r = self.c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw) if raw else {}
        except ValueError:
            return r.status, {"raw": raw[:200].decode(errors="replace")}


def meta(conn, model):
    st, m = conn.req("GET", "/v2/models/" + model)
    if st != 200:
        raise SystemExit("FAIL metadata of %s: %d %s" % (model, st, m))
    return m


def make_inputs(m, o, rng, rows, data_rows=None):
    ins = []
    for i in m["inputs"]:
        name, dt = i["name"], i["datatype"]
        shape = list(o["shape"].get(name, i["shape"]))
        if name in o["value"]:
            arr = np.full(shape if shape else [], o["value"][name], dtype=DT[dt])
        else:
            shape = [rows if (d < 0 and k == 0) else (d if d >= 0 else 2)
                     for k, d in enumerate(shape)]
            if data_rows is not None and name in data_rows:
                arr = data_rows[name].reshape(shape)
            elif dt.startswith("FP"):
                arr = rng.uniform(-1, 1, size=shape).astype(DT[dt])
            else:
                arr = rng.integers(0, 4, size=shape).astype(DT[dt])
        ins.append({"name": name, "datatype": dt, "shape": list(arr.shape),
                    "data": arr.reshape(-1).tolist()})
    return {"inputs": ins}


def note(ledger, model, status):
    d = ledger.setdefault(model, {"sent": 0, "ok": 0, "other": 0})
    d["sent"] += 1
    d["ok" if status == 200 else "other"] += 1


def load_ledger(path):
    return json.load(open(path)) if os.path.exists(path) else {}


def compare(argv):
    o, pos = opts(argv)
    url_a, url_b, lpath, models = pos[0], pos[1], pos[2], pos[3:]
    a, b = Conn(url_a), Conn(url_b)
    ledger = load_ledger(lpath)
    fails, checked, worst = 0, 0, 0.0
    for model in models:
        ma, mb = meta(a, model), meta(b, model)
        for side in ("inputs", "outputs"):
            if [(x["name"], x["datatype"], x["shape"]) for x in ma[side]] != \
               [(x["name"], x["datatype"], x["shape"]) for x in mb[side]]:
                print("FAIL %s: %s differ: %s vs %s" % (model, side, ma[side], mb[side]))
                fails += 1
        sets = []
        for r in range(o["rounds"]):
            sets.append((np.random.default_rng(1000 + r), o["rows"] if r % 2 == 0 else
                         max(1, o["rows"] + 2) if mb["inputs"][0]["shape"][:1] == [-1] else 1,
                         None))
        for name, path in o["data"].items():
            raw = np.fromfile(path, dtype=np.float32)
            shp = [d for d in meta(b, model)["inputs"][0]["shape"][1:]]
            per = int(np.prod(shp))
            n = raw.size // per
            for k in range(n):  # each real row alone, then all of them in one request
                sets.append((None, 1, {name: raw[k * per:(k + 1) * per]}))
            sets.append((None, n, {name: raw[:n * per]}))
        for rng, rows, data in sets:
            body = make_inputs(mb, o, rng or np.random.default_rng(7), rows, data)
            sa, ra = a.req("POST", "/v2/models/%s/infer" % model, body)
            note(ledger, model, sa)
            sb, rb = b.req("POST", "/v2/models/%s/infer" % model, body)
            if sa != 200 or sb != 200:
                print("FAIL %s: status %d (group) and %d (alone): %s %s" %
                      (model, sa, sb, str(ra)[:300], str(rb)[:300]))
                fails += 1
                continue
            oa = {x["name"]: x for x in ra["outputs"]}
            for xb in rb["outputs"]:
                xa = oa.get(xb["name"])
                if not xa or xa["datatype"] != xb["datatype"] or xa["shape"] != xb["shape"]:
                    print("FAIL %s output %s: %s vs %s" % (model, xb["name"],
                          xa and (xa["datatype"], xa["shape"]), (xb["datatype"], xb["shape"])))
                    fails += 1
                    continue
                va = np.array(xa["data"], dtype=np.float64)
                vb = np.array(xb["data"], dtype=np.float64)
                scale = float(np.max(np.abs(vb))) if vb.size else 0.0
                err = float(np.max(np.abs(va - vb))) if vb.size else 0.0
                checked += 1
                if scale > 0:
                    worst = max(worst, err / scale)
                if err > o["tol"] * scale:
                    print("FAIL %s output %s (rows %d): max abs error %g, allowed %g" %
                          (model, xb["name"], rows, err, o["tol"] * scale))
                    fails += 1
    json.dump(ledger, open(lpath, "w"))
    print("compared %d outputs of %d models, worst error %.3g x scale" %
          (checked, len(models), worst))
    return 1 if fails or not checked else 0


def mixed(argv):
    o, pos = opts(argv)
    url, lpath, models = pos[0], pos[1], pos[2:]
    ledger = load_ledger(lpath)
    c0 = Conn(url)
    metas = {m: meta(c0, m) for m in models}
    bodies = {m: make_inputs(metas[m], o, np.random.default_rng(5), o["rows"])
              for m in models}
    lock = threading.Lock()

    def worker(t):
        c = Conn(url)
        for k in range(o["requests"]):
            m = models[(t + k) % len(models)]
            st, _ = c.req("POST", "/v2/models/%s/infer" % m, bodies[m])
            with lock:
                note(ledger, m, st)

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(o["threads"])]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    json.dump(ledger, open(lpath, "w"))
    print(json.dumps(ledger))
    return 0


def verify(argv):
    o, pos = opts(argv)
    url_a, url_b, lpath, marker, models = pos[0], pos[1], pos[2], pos[3], pos[4:]
    ledger = load_ledger(lpath)
    c0 = Conn(url_b)
    metas = {m: meta(c0, m) for m in models}
    lock = threading.Lock()
    tally = {"sent": 0, "ok": 0, "lost": 0, "wrong": 0, "other": 0, "ok_after": 0,
             "lost_by_model": {m: 0 for m in models}}
    notes = []

    give_up = time.monotonic() + 120

    def worker(t):
        a, b = Conn(url_a), Conn(url_b)
        k, left = 0, o["requests"]
        while left > 0:
            after = os.path.exists(marker)
            if after:
                left -= 1
            elif time.monotonic() > give_up:
                with lock:
                    notes.append("no %s after 120 s" % marker)
                    tally["other"] += 1
                return
            k += 1
            m = models[(t + k) % len(models)]
            body = make_inputs(metas[m], o, np.random.default_rng(100000 * (t + 1) + k),
                               o["rows"])
            sa, ra = a.req("POST", "/v2/models/%s/infer" % m, body)
            res = "ok"
            if sa == 200:
                sb, rb = b.req("POST", "/v2/models/%s/infer" % m, body)
                oa = {x["name"]: x for x in ra.get("outputs", [])}
                for xb in rb.get("outputs", []) if sb == 200 else []:
                    xa = oa.get(xb["name"])
                    va = np.array(xa["data"] if xa else [], dtype=np.float64)
                    vb = np.array(xb["data"], dtype=np.float64)
                    scale = float(np.max(np.abs(vb))) if vb.size else 0.0
                    if va.shape != vb.shape or (vb.size and
                                                np.max(np.abs(va - vb)) > o["tol"] * scale):
                        res = "wrong"
                if sb != 200:
                    res = "other"
                    with lock:
                        notes.append("B answered %d for %s" % (sb, m))
            elif sa == 500 and "lost" in str(ra.get("error", "")):
                res = "lost"
            else:
                res = "other"
                with lock:
                    notes.append("%s: %d %s" % (m, sa, str(ra)[:200]))
            with lock:
                note(ledger, m, sa)
                tally["sent"] += 1
                tally[res] += 1
                if res == "lost":
                    tally["lost_by_model"][m] += 1
                if res == "ok" and after:
                    tally["ok_after"] += 1

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(o["threads"])]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    json.dump(ledger, open(lpath, "w"))
    for n in notes[:10]:
        print("FAIL", n)
    print(json.dumps(tally))
    return 1 if tally["wrong"] or tally["other"] else 0


if __name__ == "__main__":
    sys.exit({"compare": compare, "mixed": mixed, "verify": verify}[sys.argv[1]](sys.argv[2:]))
