#!/usr/bin/env bash
# test_sim_vs_serve.sh - issue 14's validation: the live server and the simulator,
# given the same plan and the same recorded arrivals on a CPU model, agree on
# goodput and p99 (docs/simulator.md, "The simulator against the live server").
#
#  1. A synthetic MLP (tests/make_mlp.py, 384 layers of 512x512: about 3.4 ms a
#     row on one core, 4.4 ms for 4) is served by `usher serve`, planned by
#     the server itself from usher.yaml: one replica, batch 4, SLO 50 ms. Its
#     printed plan, written as plan.json, is the simulator's plan.
#  2. The server's batch latency per batch size 1..4 is measured on the server:
#     100 sequential requests of b rows each (the sizes interleaved in blocks
#     of 10), the worker round trip from /metrics (usher_compute_seconds_total
#     over successes); the client round trip minus it is the HTTP overhead the
#     simulator does not model.
#  3. Arrivals: Poisson at RATE_FRACTION (default 0.6) of the plan's capacity
#     (batch 4 / its latency), seeded, DURATION (20) s, written as 'time_s
#     model' lines. `usher load --arrivals trace:FILE` sends exactly them; its
#     JSON gives goodput and the p99 latency (from each request's scheduled
#     time to its answer).
#  4. `usher simulate --arrivals-file FILE --profile prof.csv` runs the same
#     plan on the same arrivals, the profile being the measured latencies
#     scaled by the server's own compute time under this load over the
#     simulator's (the runs are slower under load on 2 cores than one at a
#     time: twice, until the simulator's compute per request is the server's).
#  5. Goodput within GOODPUT_TOL (5%); p99 within P99_TOL (25%; 50% in a sanitizer
#     build, below) or P99_ABS_MS
#     (2 ms), whichever is larger, the simulator's p99 plus the HTTP overhead
#     against usher load's. The same comparison with the profile 2x and 0.5x
#     off must fail (the tolerance can fail), or the test fails.
#
# The server and the load generator run under SCHED_FIFO (chrt -f 10) when this
# user may (root), else nice -10 when it may, else at normal priority: other
# work on a 2-core machine otherwise decides the tail (the generator falls
# behind its schedule by milliseconds and runs take 2-3x as long). A run the
# generator could not keep (usher load's behind_schedule: its lag p99 over
# 1 ms) measures the machine, not the server: it is run again with other
# arrivals, up to 3 times; when none was on schedule the test is skipped
# (exit 77) saying so. A run that disagrees while the server shed more than 1%
# of the arrivals by its observed scale (its runs were slower than measured for
# a while: the machine slowed, which the simulator's fixed profile cannot show;
# seen on a CI machine) is run again too, up to 3 runs in all, and fails when
# every run did so: at 0.6 of capacity a server shedding run after run is the
# server's fault. Otherwise the first run on schedule decides.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
src=${USHER_SOURCE_DIR:?run through ctest}
bin=$usher
py=/usr/bin/python3
. "$src/tests/serve_lib.sh"
dur=${DURATION:-20}
frac=${RATE_FRACTION:-0.6}
gtol=${GOODPUT_TOL:-0.05}
ptol=${P99_TOL:-0.25}
# A sanitizer build's server is slowed unevenly (its HTTP front end and allocations 2-3x,
# with a longer tail: the HTTP overhead measured 0.47 ms against 0.19 ms), which the
# simulator is not meant to model: there the p99 tolerance is 50% (an ASan run of the
# final commit measured -30.4%, goodput +0.6%). The controls must still fail.
if [ -z "${P99_TOL:-}" ] && ldd "$usher" 2>/dev/null | grep -q 'libasan'; then
    ptol=0.5
    echo "  a sanitizer build: p99 tolerance 50%"
fi
pabs=${P99_ABS_MS:-2}
slo=50

# ---- priority: the server (its workers inherit it) and the generator -----------------
prio=
if chrt -f 10 true 2>/dev/null; then
    prio="chrt -f 10"
elif [ "$(nice -n -10 nice 2>/dev/null)" = -10 ]; then
    prio="nice -n -10"
fi
printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$prio" "$bin" >"$tmp/usher-prio"
chmod +x "$tmp/usher-prio"
usher=$tmp/usher-prio # start_server runs "$usher" serve
echo "  priority of the server and the generator: ${prio:-normal}"

# ---- the model, its repository, the server -------------------------------------------------
mkdir -p "$tmp/repo/mlp/1"
$py "$src/tests/make_mlp.py" "$tmp/repo/mlp/1/model.onnx" 384 512 || { echo "FAIL: make_mlp.py"; exit 1; }
printf 'max_batch_size: 8\n' >"$tmp/repo/mlp/config.pbtxt"
printf 'slo_ms: %s\nrate: 400\nreplicas: 1\nmax_batch: 4\n' "$slo" >"$tmp/repo/mlp/usher.yaml"
start_server "$tmp/repo" || { echo "FAIL: the server did not listen"; exit 1; }
wait_ready mlp || { echo "FAIL: mlp not ready"; cat "$tmp/serve.log"; exit 1; }
sed -n '/^model /,/^mlp /p' "$tmp/serve.log"
# the server's plan: one replica of batch 4 (usher.yaml); the simulator's plan.json says the same
awk '$1 == "mlp" && $3 == 1 && $5 == 4 { ok = 1 } END { exit !ok }' "$tmp/serve.log" ||
    { echo "FAIL: the server did not plan one replica of batch 4"; cat "$tmp/serve.log"; exit 1; }
printf '{"schema_version": 1, "gpus": [{"type": "cpu", "replicas": [{"model": "mlp", "batch": 4, "share": 100}]}]}\n' \
    >"$tmp/plan.json"
printf 'models:\n  - name: mlp\n    model: repo/mlp/1/model.onnx\n    rate: 400\n    slo_ms: %s\n' "$slo" \
    >"$tmp/w.yaml"
printf '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,16],"data":[%s]}]}' "$(seq -s, 1 16)" \
    >"$tmp/x1.json"

# ---- one comparison --------------------------------------------------------------------------
# attempt N: probe, arrivals, load, simulate, compare; exit status 0 agree, 1 disagree,
# 3 the generator fell behind (not a measurement of the server)
attempt() {
    local n=$1 d=$tmp/a$n
    mkdir -p "$d"
    # 2. the batch latencies per size, on the server
    $py - "$url" "$d" <<'PY' || return 1
import http.client, json, socket, statistics, sys, time, urllib.parse
url, d = sys.argv[1], sys.argv[2]
u = urllib.parse.urlsplit(url)
def conn():  # no Nagle: a request's header and body segments must not wait for an ACK
    h = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    h.connect()
    h.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return h
c, cm = conn(), conn()  # requests, /metrics
def get(path):
    cm.request("GET", path)
    r = cm.getresponse()
    return r.read().decode()
def metrics():
    comp = succ = 0.0
    for line in get("/metrics").splitlines():
        if line.startswith('usher_compute_seconds_total{model="mlp"'):
            comp = float(line.split()[-1])
        if line.startswith('usher_requests_total{model="mlp"') and 'outcome="success"' in line:
            succ = float(line.split()[-1])
    return comp, succ
# sizes interleaved in blocks of 10 requests, 10 rounds: a slow spell of the machine
# falls on every size alike (the level is set from the load run anyway, below)
bodies = {b: ('{"inputs":[{"name":"x","datatype":"FP32","shape":[%d,16],"data":[%s]}]}'
              % (b, ",".join(["0.5"] * 16 * b))).encode() for b in range(1, 5)}
def send(b):
    # a 503 (refused at admission: a slow spell raised the observed scale) ran nothing and
    # counts nowhere: sent again after a pause, 20 times at most
    for _ in range(20):
        c.request("POST", "/v2/models/mlp/infer", bodies[b])
        r = c.getresponse()
        r.read()
        if r.status == 200:
            return
        if r.status != 503:
            break
        time.sleep(0.3)
    sys.exit("probe: batch %d answered %d" % (b, r.status))
comp, succ = {b: 0.0 for b in bodies}, {b: 0.0 for b in bodies}
over = []  # per block: the client's round trip less the worker's, per request
for b in bodies:
    for _ in range(5):
        send(b)
for _ in range(10):
    for b in bodies:
        c0, s0 = metrics()
        t0 = time.perf_counter()
        for _ in range(10):
            send(b)
        t1 = time.perf_counter()
        c1, s1 = metrics()
        comp[b] += c1 - c0
        succ[b] += s1 - s0
        over.append(1e3 * ((t1 - t0) - (c1 - c0)) / (s1 - s0))
rows = [(b, 1e3 * comp[b] / succ[b]) for b in bodies]
over = statistics.median(over)
with open(d + "/probe.csv", "w") as f:
    f.write("model,batch,latency_ms\n")
    for b, ms in rows:
        f.write("mlp,%d,%.4f\n" % (b, ms))
json.dump({"overhead_ms": max(0.0, over), "latency_ms": dict(rows)},
          open(d + "/probe.json", "w"))
print("    measured on the server: batch latency " +
      ", ".join("%d: %.3f ms" % r for r in rows) + "; HTTP overhead %.3f ms" % over)
PY
    # 3. the arrivals: Poisson at frac of the plan's capacity (4 rows / latency(4))
    $py - "$d" "$frac" "$dur" "$((1000 + n))" <<'PY' || return 1
import json, random, sys
d, frac, dur, seed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
lat4 = json.load(open(d + "/probe.json"))["latency_ms"]["4"]
rate = frac * 4 / (lat4 / 1e3)
r = random.Random(seed)
t, n = r.expovariate(rate), 0
with open(d + "/arrivals.txt", "w") as f:
    f.write("# Poisson at %.1f/s (%.2f of the capacity %.1f/s) for %g s, seed %d: time_s model\n"
            % (rate, frac, 4 / (lat4 / 1e3), dur, seed))
    while t < dur:
        f.write("%.6f mlp\n" % t)
        n += 1
        t += r.expovariate(rate)
print("    arrivals: %d, Poisson at %.1f/s (%.2f of the plan's capacity %.1f/s), seed %d"
      % (n, rate, frac, 4 / (lat4 / 1e3), seed))
PY
    sleep 2.5 # the observed scale forgets the probe (a 2 s window)
    curl -s "$url/metrics" >"$d/m0"
    "$usher" load --url "$url" --model mlp --arrivals "trace:$d/arrivals.txt" --duration "$dur" \
        --slo-ms "$slo" --seed 7 --input "$tmp/x1.json" --json >"$d/load.json" 2>"$d/load.err"
    local rc=$?
    curl -s "$url/metrics" >"$d/m1"
    [ $rc -eq 0 ] || { echo "    usher load exit $rc: $(cat "$d/load.err")"; return 1; }
    # 4. and 5.: the simulator, the comparison, the controls
    $py - "$d" "$bin" "$dur" "$gtol" "$ptol" "$pabs" "$tmp" <<'PY'
import json, subprocess, sys
d, usher, dur, gtol, ptol, pabs, tmp = sys.argv[1:8]
gtol, ptol, pabs = float(gtol), float(ptol), float(pabs)
def metrics(path):
    out = {}
    for line in open(path):
        if 'model="mlp"' not in line or line.startswith("#") or "_bucket" in line:
            continue
        if "outcome=" in line and 'outcome="success"' not in line:
            continue
        out[line.split("{")[0]] = float(line.split()[-1])
    return out
m0, m1 = metrics(d + "/m0"), metrics(d + "/m1")
dm = {k: m1[k] - m0.get(k, 0) for k in m1}
L = json.load(open(d + "/load.json"))
probe = json.load(open(d + "/probe.json"))
over = probe["overhead_ms"]
ok_n = dm["usher_requests_total"]
live_compute = 1e3 * dm["usher_compute_seconds_total"] / max(ok_n, 1)
print("    server: %d answered 200, %d 503 (%d shed by scale); mean batch %.2f, %.3f ms of "
      "compute per request" % (L["status"]["200"], L["status"]["503"],
                               dm.get("usher_requests_shed_by_scale_total", 0),
                               dm["usher_batch_rows_total"] / max(dm["usher_batches_total"], 1),
                               live_compute))
rows = [l.strip().split(",") for l in open(d + "/probe.csv")][1:]
def simulate(f, tag):
    prof = "%s/prof-%s.csv" % (d, tag)
    with open(prof, "w") as o:
        o.write("model,batch,latency_ms\n")
        for m, b, ms in rows:
            o.write("%s,%s,%.5f\n" % (m, b, float(ms) * f))
    p = subprocess.run([usher, "simulate", "--plan", tmp + "/plan.json", "--workload",
                        tmp + "/w.yaml", "--profile", prof, "--arrivals-file",
                        d + "/arrivals.txt", "--duration", dur, "--json", "--quiet"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("usher simulate: " + p.stderr)
    s = json.loads(p.stdout)
    return s, s["models"][0]
# the profile's level: the server's compute per request under this load
f = 1.0
for it in range(2):
    s, m = simulate(f, "cal%d" % it)
    if it == 0:
        raw = (s["goodput"], m["p99_ms"] + over)
    f *= live_compute / (m["mean_ms"] - m["mean_queue_ms"])
s, m = simulate(f, "final")
if L["behind_schedule"]:
    print("    the generator fell behind its schedule (lag p99 %.2f ms > 1 ms): not a measurement "
          "of the server" % L["lag_ms"]["p99"])
    sys.exit(3)
def judge(s, m):
    g_live, g_sim = L["goodput"], s["goodput"]
    p_live, p_sim = L["latency_ms"]["p99"], m["p99_ms"] + over
    g_ok = abs(g_sim - g_live) <= gtol * g_live
    p_ok = abs(p_sim - p_live) <= max(ptol * p_live, pabs)
    return g_ok, p_ok, g_live, g_sim, p_live, p_sim
g_ok, p_ok, g_live, g_sim, p_live, p_sim = judge(s, m)
print("    profile: the measured latencies x %.3f (the server's %.3f ms of compute per request "
      "under load)" % (f, live_compute))
print("    goodput: server %.1f/s, simulator %.1f/s (%+.1f%%, tolerance %.0f%%)"
      % (g_live, g_sim, 100 * (g_sim - g_live) / g_live, 100 * gtol))
print("    p99: server %.2f ms, simulator %.2f ms (%.2f + the HTTP overhead %.2f; %+.1f%%, "
      "tolerance %.0f%% or %g ms)" % (p_live, p_sim, m["p99_ms"], over,
                                       100 * (p_sim - p_live) / p_live, 100 * ptol, pabs))
print("    (with the latencies as measured one request at a time, unscaled: goodput %.1f/s, "
      "p99 %.2f ms)" % raw)
print("    also: mean %.2f / %.2f ms, p50 %.2f / %.2f ms, mean batch %.2f / %.2f (server / "
      "simulator)" % (L["latency_ms"]["mean"], m["mean_ms"] + over, L["latency_ms"]["p50"],
                      m["p50_ms"] + over,
                      dm["usher_batch_rows_total"] / max(dm["usher_batches_total"], 1),
                      m["mean_batch"]))
# the controls: latencies 2x and 0.5x off must not pass
controls_fail = True
for k in (2.0, 0.5):
    cs, cm = simulate(f * k, "x%g" % k)
    cg, cp, _, cgs, _, cps = judge(cs, cm)
    print("    control, latencies x %g: goodput %.1f/s, p99 %.2f ms: %s" %
          (k, cgs, cps, "would pass: the tolerance cannot tell" if cg and cp else "fails, as it must"))
    controls_fail &= not (cg and cp)
with open(d + "/result.json", "w") as o:
    json.dump({"goodput_server": g_live, "goodput_sim": g_sim, "p99_server": p_live,
               "p99_sim": p_sim, "f": f}, o)
if not controls_fail:
    sys.exit(1)
if g_ok and p_ok:
    sys.exit(0)
shed = dm.get("usher_requests_shed_by_scale_total", 0)
n_arr = sum(1 for l in open(d + "/arrivals.txt") if not l.startswith("#"))
if shed > 0.01 * n_arr:
    print("    the server shed %d of %d arrivals (%.1f%%) by its observed scale: its runs were "
          "slower than measured for a while, which the simulator's fixed profile cannot show"
          % (shed, n_arr, 100.0 * shed / n_arr))
    sys.exit(4)
sys.exit(1)
PY
}

result=3
for n in 1 2 3; do
    echo "  run $n:"
    attempt "$n"
    result=$?
    [ $result -ne 3 ] && [ $result -ne 4 ] && break
done
kill -TERM "$srv"
wait "$srv"
srv=
case $result in
0) echo "ok   sim_vs_serve: goodput and p99 agree"; echo "all passed"; exit 0 ;;
3) echo "SKIP: the load generator fell behind its schedule in 3 runs: this machine is too busy to compare (see above)"; exit 77 ;;
4) echo "FAIL sim_vs_serve: 3 runs disagreed, each with the server shedding over 1% by its observed scale (at 0.6 of capacity)"; exit 1 ;;
*) echo "FAIL sim_vs_serve"; exit 1 ;;
esac
