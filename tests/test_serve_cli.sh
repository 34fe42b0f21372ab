#!/usr/bin/env bash
# test_serve_cli.sh [SECONDS] - `usher serve` and `usher load` as processes:
# usage errors, a bad model at start-up (FAULT-8), config.pbtxt's queue delay,
# a plan file and SIGHUP, the plan's per-replica predicted batch latencies
# (alone, co-located) and the observed one in /metrics, the GPU interference
# check's no-GPU exit and CPU dry run, overload (3x capacity: every request answered
# exactly once with 200 or 503, goodput >= 90% of the goodput at capacity measured
# before and after it, admitted p99 within the SLO), recovery after a slowdown, and
# SIGTERM under load (FAULT-7: exit 0, queued work answered, no worker left behind).
#
# The model is a synthetic MLP (tests/make_mlp.py: x[N,16] -> 256 layers of
# 1024x1024): a small request and a large compute, so the model, not the
# HTTP path or the load generator, is the bottleneck even on 2 cores.
# Capacity is measured in the run: the goodput when offered what the
# server's own plan prints (measured at start-up, a core per replica).
# SECONDS (default 4) is each load phase; scripts/overload.sh runs it long.
# Run it pinned to one core and beside a CPU hog too (README, Tests).
set -uo pipefail
usher=${USHER_BIN:?run through ctest (or scripts/overload.sh)}
secs=${1:-${OVERLOAD_SECONDS:-4}}
py=/usr/bin/python3
export TESTS_DIR=$(cd "$(dirname "$0")" && pwd) # binom.py, for the checks below
. "$(dirname "$0")/serve_lib.sh"
json() { # json FILE EXPR: a field of usher load's --json summary
    $py -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

# ---- usage and start-up errors ---------------------------------------------------
"$usher" serve >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--repo is required" "$tmp/out" && ok serve_usage || fail "serve_usage: exit $rc"
"$usher" serve --repo "$tmp/nonexistent" >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "nonexistent" "$tmp/out" && ok serve_no_repo || fail "serve_no_repo: exit $rc"
"$usher" serve --repo "$tmp" --http-port 70000 >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--http-port" "$tmp/out" && ok serve_bad_port || fail "serve_bad_port: exit $rc"
"$usher" load --url http://127.0.0.1:1 >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] && ok load_usage || fail "load_usage: exit $rc"

# FAULT-8: a model that does not load is UNAVAILABLE; the server lives, ready is 400
mkdir -p "$tmp/bad/broken/1" "$tmp/bad/mlp/1"
head -c 1000 /dev/urandom >"$tmp/bad/broken/1/model.onnx"
$py "$(dirname "$0")/make_mlp.py" "$tmp/bad/mlp/1/model.onnx" 2 64
if start_server "$tmp/bad" && wait_ready mlp; then
    grep -q "broken .*UNAVAILABLE" "$tmp/serve.log" && ok bad_model_unavailable ||
        fail "bad_model_unavailable: $(cat "$tmp/serve.log")"
    live=$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/live")
    ready=$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/ready")
    mready=$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/models/mlp/ready")
    [ "$live $ready $mready" = "200 400 200" ] && ok bad_model_health ||
        fail "bad_model_health: live $live ready $ready mlp $mready"
    kill -TERM "$srv"
    wait "$srv"
    rc=$?
    srv=
    [ $rc -eq 0 ] && ok bad_model_exit || fail "bad_model_exit: $rc"
else
    fail "bad_model_start"
fi

# ---- the access log, as JSON lines ---------------------------------------------------
if start_server "$tmp/bad" --log-level info --log-format json && wait_ready mlp; then
    curl -s -o /dev/null "$url/v2/models/mlp/ready"
    curl -s -o /dev/null "$url/v2/models/bad%0aname"
    kill -TERM "$srv"
    wait "$srv"
    srv=
    $py - "$tmp/serve.log" <<'PY' && ok access_log_json || fail "access_log_json: $(tail -5 "$tmp/serve.log")"
import json, sys
events = []
for line in open(sys.argv[1]):
    if line.startswith("{"):
        events.append(json.loads(line))  # every JSON line parses
req = [e for e in events if e.get("event") == "request"]
assert any(e["path"] == "/v2/models/mlp/ready" and e["status"] == "200" for e in req), req
assert any(e["path"] == "/v2/models/bad\nname" and e["status"] == "400" for e in req), req
assert all(e["level"] in ("error", "warn", "info", "debug") and e["time"].endswith("Z") for e in events)
PY
else
    fail "access_log_start"
fi

# ---- config.pbtxt's max_queue_delay_microseconds, with Triton's meaning --------------
# Two copies of a small batchable model, one with a 5,000 us queue delay and one with 0;
# 20 sequential requests each. A lone request waits the delay for company when asked to
# (mean queue time >= 5 ms), and leaves at once when the delay is 0 (it used to wait for
# company until close to its deadline either way).
for d in 0 5000; do
    mkdir -p "$tmp/delay/d$d/1"
    cp "$tmp/bad/mlp/1/model.onnx" "$tmp/delay/d$d/1/"
    printf 'max_batch_size: 8\ndynamic_batching { max_queue_delay_microseconds: %d }\n' "$d" \
        >"$tmp/delay/d$d/config.pbtxt"
done
printf '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,16],"data":[%s]}]}' \
    "$(seq -s, 1 16)" >"$tmp/x1.json"
if start_server "$tmp/delay" && wait_ready d0 && wait_ready d5000; then
    for d in 0 5000; do
        for _ in $(seq 20); do
            curl -s -o /dev/null -w '%{http_code}\n' -d @"$tmp/x1.json" "$url/v2/models/d$d/infer"
        done >"$tmp/codes$d"
    done
    curl -s "$url/metrics" >"$tmp/md"
    $py - "$tmp/md" "$tmp/codes0" "$tmp/codes5000" <<'PY' && ok max_queue_delay_honoured || fail max_queue_delay_honoured
import sys
q, n = {}, {}
for line in open(sys.argv[1]):
    if line.startswith("usher_queue_seconds_total{"):
        q[line.split('"')[1]] = float(line.split()[-1])
    if line.startswith("usher_requests_total{") and 'outcome="success"' in line:
        n[line.split('"')[1]] = int(line.split()[-1])
codes = [open(f).read().split() for f in sys.argv[2:]]
m0, m5 = 1e3 * q["d0"] / max(n["d0"], 1), 1e3 * q["d5000"] / max(n["d5000"], 1)
print("    mean queue time of a lone request: %.2f ms with max_queue_delay 0, %.2f ms with "
      "5000 us" % (m0, m5))
ok = all(c == "200" for cs in codes for c in cs) and n["d0"] == 20 and n["d5000"] == 20
sys.exit(0 if ok and m5 >= 5.0 and m0 < 5.0 else 1)
PY
    kill -TERM "$srv"
    wait "$srv"
    srv=
else
    fail "max_queue_delay_start: $(cat "$tmp/serve.log")"
fi

# ---- a plan file, then a new one applied with SIGHUP while serving ---------------------
rm -rf "$tmp/bad/broken"
plan() { # plan N: N replicas of mlp on the plan's first GPU, half of it each
    local r='{"model": "mlp", "batch": 4, "share": 50}' reps=
    for _ in $(seq "$1"); do reps="${reps:+$reps, }$r"; done
    printf '{"schema_version": 1, "gpus": [{"type": "a100-80gb", "node": "n0", "replicas": [%s]}]}\n' \
        "$reps" >"$tmp/plan.json"
}
plan 2
if start_server "$tmp/bad" --plan "$tmp/plan.json" && wait_ready mlp; then
    awk '$1 == "mlp" && $3 == 2 && $5 == 4 { ok = 1 } END { exit !ok }' "$tmp/serve.log" &&
        grep -q "placed by the plan file" "$tmp/serve.log" && ok plan_file_applied ||
        fail "plan_file_applied: $(cat "$tmp/serve.log")"
    plan 3
    kill -HUP "$srv"
    for _ in $(seq 300); do grep -q "switched to the new plan" "$tmp/serve.log" && break; sleep 0.1; done
    grep -q "1 model switched" "$tmp/serve.log" &&
        awk '$1 == "mlp" && $3 == 3 { ok = 1 } END { exit !ok }' "$tmp/serve.log" &&
        ok plan_file_sighup || fail "plan_file_sighup: $(cat "$tmp/serve.log")"
    r=$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/models/mlp/ready")
    [ "$r" = 200 ] && ok plan_file_ready || fail "plan_file_ready: $r"
    echo '{"schema_version": 1, "gpus": [{"type": "a100-80gb", "replicas": [{"model": "mlp", "batch": 0}]}]}' >"$tmp/plan.json"
    kill -HUP "$srv"
    for _ in $(seq 100); do grep -q "batch" "$tmp/serve.log" && grep -q "0 models switched" "$tmp/serve.log" && break; sleep 0.1; done
    grep -q "gpus\[0\].replicas\[0\].batch" "$tmp/serve.log" && ok plan_file_bad_kept ||
        fail "plan_file_bad_kept: $(cat "$tmp/serve.log")"
    kill -TERM "$srv"
    wait "$srv"
    srv=
else
    fail "plan_file_start"
fi

# ---- per replica: the plan's predicted batch latency (alone, co-located), the observed ----
# One mlp replica planned at batch 4 on the plan's GPU 0 (run on the CPU here). Five
# sequential 4-row requests are five runs of the planned size, three 1-row ones are not
# counted. A plan without latency_colocated_ms has no co-located gauge; SIGHUP with the
# field adds it (the runtime stays: only a prediction changed), a new placement (a second
# replica on GPU 1) restarts the workers and labels each replica with its GPU, and a plan
# without the field again removes it.
rplan() { # rplan 'REPLICA, ...' ['REPLICA, ...']: gpus[0] and gpus[1] of a100-80gb
    local g="{\"type\": \"a100-80gb\", \"replicas\": [$1]}"
    [ -n "${2:-}" ] && g="$g, {\"type\": \"a100-80gb\", \"replicas\": [$2]}"
    printf '{"schema_version": 1, "gpus": [%s]}\n' "$g" >"$tmp/plan.json"
}
sighup_wait() { # SIGHUP, then wait until the server says how many models it switched
    local n
    n=$(grep -c "switched to the new plan" "$tmp/serve.log")
    kill -HUP "$srv"
    for _ in $(seq 300); do
        [ "$(grep -c "switched to the new plan" "$tmp/serve.log")" -gt "$n" ] && return 0
        sleep 0.1
    done
    return 1
}
# mcheck NAME PYTHON: scrape /metrics; PYTHON (a boolean expression) sees s(NAME), the
# samples of a metric as {frozenset of label pairs: value}, and L(**labels), that key
mcheck() {
    curl -s "$url/metrics" >"$tmp/mr"
    $py - "$tmp/mr" "$2" <<'PY' && ok "$1" || { fail "$1"; grep '^usher_replica_' "$tmp/mr"; }
import re, sys
samples = {}
for line in open(sys.argv[1]):
    m = re.match(r'^(\w+)\{([^}]*)\} (\S+)$', line.strip())
    if m:
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        samples.setdefault(m.group(1), {})[labels] = float(m.group(3))
s = lambda name: samples.get(name, {})
L = lambda **kw: frozenset(kw.items())
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)
PY
}
printf '{"inputs":[{"name":"x","datatype":"FP32","shape":[4,16],"data":[%s]}]}' \
    "$(seq -s, 1 64)" >"$tmp/x4.json"
rplan '{"model": "mlp", "batch": 4, "share": 60, "latency_ms": 2.5}'
if start_server "$tmp/bad" --plan "$tmp/plan.json" && wait_ready mlp; then
    for _ in 1 2 3; do
        curl -s -o /dev/null -w '%{http_code}\n' -d @"$tmp/x1.json" "$url/v2/models/mlp/infer"
    done >"$tmp/codes1"
    for _ in 1 2 3 4 5; do
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -d @"$tmp/x4.json" "$url/v2/models/mlp/infer"
    done >"$tmp/codes4"
    tmax=$(awk '$1 == 200 { n++; if ($2 > t) t = $2 } END { print n == 5 ? t : -1 }' "$tmp/codes4")
    [ "$(sort -u "$tmp/codes1")" = 200 ] || fail "replica_metrics: 1-row requests: $(cat "$tmp/codes1")"
    k0='L(model="mlp", replica="0", gpu="0", device="cpu", batch="4")'
    mcheck replica_predicted_alone "s('usher_replica_batch_latency_predicted_seconds') == {$k0: 0.0025}"
    mcheck replica_no_colocated_without_field \
        "'usher_replica_batch_latency_predicted_colocated_seconds' not in samples and $k0 in s('usher_replica_batch_latency_predicted_seconds')"
    mcheck replica_observed_planned_batch \
        "s('usher_replica_batch_duration_seconds_count') == {$k0: 5} and
         0 < s('usher_replica_batch_latency_observed_seconds')[$k0] <= $tmax and
         abs(s('usher_replica_batch_latency_observed_seconds')[$k0] - s('usher_replica_batch_duration_seconds_sum')[$k0] / 5) < 1e-6"
    grep -q "^# TYPE usher_replica_batch_latency_predicted_colocated_seconds gauge" "$tmp/mr" &&
        ok replica_colocated_declared || fail replica_colocated_declared
    # the field added: the gauge appears, the runtime (and its counts) stay
    rplan '{"model": "mlp", "batch": 4, "share": 60, "latency_ms": 2.5, "latency_colocated_ms": 3.125}'
    sighup_wait && grep -q "0 models switched" "$tmp/serve.log" ||
        fail "replica_colocated_reload: $(tail -5 "$tmp/serve.log")"
    mcheck replica_colocated_after_reload \
        "s('usher_replica_batch_latency_predicted_colocated_seconds') == {$k0: 0.003125} and
         s('usher_replica_batch_latency_predicted_seconds') == {$k0: 0.0025} and
         s('usher_replica_batch_duration_seconds_count') == {$k0: 5}"
    # a second replica on GPU 1, without the field: new workers, each replica its own labels
    rplan '{"model": "mlp", "batch": 4, "share": 50, "latency_ms": 2.5, "latency_colocated_ms": 3.5}' \
        '{"model": "mlp", "batch": 4, "share": 100, "latency_ms": 2}'
    sighup_wait && grep -q "1 model switched" "$tmp/serve.log" ||
        fail "replica_placement_reload: $(tail -5 "$tmp/serve.log")"
    k1='L(model="mlp", replica="1", gpu="1", device="cpu", batch="4")'
    mcheck replica_labels_per_gpu \
        "s('usher_replica_batch_latency_predicted_colocated_seconds') == {$k0: 0.0035} and
         s('usher_replica_batch_latency_predicted_seconds') == {$k0: 0.0025, $k1: 0.002} and
         s('usher_replica_batch_duration_seconds_count') == {$k0: 0, $k1: 0} and
         'usher_replica_batch_latency_observed_seconds' not in samples"
    # the field gone again: so is the gauge
    rplan '{"model": "mlp", "batch": 4, "share": 50, "latency_ms": 2.5}' \
        '{"model": "mlp", "batch": 4, "share": 100, "latency_ms": 2}'
    sighup_wait || fail "replica_colocated_removed: no reload"
    mcheck replica_colocated_removed \
        "'usher_replica_batch_latency_predicted_colocated_seconds' not in samples and
         s('usher_replica_batch_latency_predicted_seconds') == {$k0: 0.0025, $k1: 0.002}"
    kill -TERM "$srv"
    wait "$srv"
    srv=
else
    fail "replica_metrics_start"
fi

# ---- the GPU interference check (scripts/gpu-check-interference.sh) without a GPU ------
# With an nvidia-smi that finds no GPU it stops at once, exit 2, saying nothing was
# measured; its CPU dry run goes through every other step (a plan with usher interfere's
# predictions, warm-up, three load phases, the per-replica scrapes) in a few seconds.
gcheck=$(dirname "$0")/../scripts/gpu-check-interference.sh
mkdir -p "$tmp/fakebin"
printf '#!/bin/sh\necho "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver." >&2\nexit 9\n' \
    >"$tmp/fakebin/nvidia-smi"
chmod +x "$tmp/fakebin/nvidia-smi"
PATH=$tmp/fakebin:$PATH USHER=$usher OUT=$tmp/gi "$gcheck" >"$tmp/gi.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "no GPU here" "$tmp/gi.out" && grep -q "nothing was measured" "$tmp/gi.out" &&
    grep -q "NOT MEASURED" "$tmp/gi/results.md" && ok gpu_interference_no_gpu ||
    fail "gpu_interference_no_gpu: exit $rc: $(cat "$tmp/gi.out")"
USHER=$usher OUT=$tmp/gd SECS=1 SHARES=50:50 BATCH=1 "$gcheck" --cpu-dry-run >"$tmp/gd.out" 2>&1
rc=$?
[ $rc -eq 0 ] && $py - "$tmp/gd/results.csv" <<'PY' && ok gpu_interference_dry_run || fail "gpu_interference_dry_run: exit $rc: $(cat "$tmp/gd.out")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 4, rows
assert {(r["model"], r["phase"]) for r in rows} == {(m, p) for m in ("resnet18", "squeezenet") for p in ("alone", "together")}, rows
for r in rows:
    assert r["mode"] == "cpu-dry-run" and r["gpu_type"] == "h100-sxm", r
    assert int(r["runs"]) > 0 and float(r["observed_ms"]) > 0 and 0 < float(r["loaded"]) <= 1.05, r
    assert 0 < float(r["predicted_alone_ms"]) <= float(r["predicted_colocated_ms"]), r
PY

# ---- overload ----------------------------------------------------------------------
mkdir -p "$tmp/repo/mlp/1"
$py "$(dirname "$0")/make_mlp.py" "$tmp/repo/mlp/1/model.onnx" 256 1024
printf 'max_batch_size: 32\n' >"$tmp/repo/mlp/config.pbtxt"
printf 'slo_ms: 100\nrate: 100\nmax_batch: 2\n' >"$tmp/repo/mlp/usher.yaml"
printf '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,16],"data":[%s]}]}' \
    "$(seq -s, 1 16)" >"$tmp/x.json"
start_server "$tmp/repo" && wait_ready mlp || { fail "overload: the server did not start"; exit 1; }
cap=$(awk '$1 == "mlp" { printf "%d", $7 }' "$tmp/serve.log")
[ "${cap:-0}" -gt 0 ] || { fail "overload: no capacity in the plan"; cat "$tmp/serve.log"; exit 1; }
load() { # load RATE OUT.json [ARGS]
    local rate=$1 out=$2
    shift 2
    "$usher" load --url "$url" --model "mlp:$rate" --input "$tmp/x.json" --duration "${dur:-$secs}" \
        --slo-ms 100 --seed 7 --json "$@" >"$out" 2>"$tmp/load.err"
}
# the capacity is what this run measures: the goodput when offered the plan's capacity
# (the plan assumes its replicas have a core each; pinned to one core, or beside a CPU
# hog, the machine carries less, and 3x means 3x what it carries)
load "$cap" "$tmp/at.json"
rc1=$?
g1=$(json "$tmp/at.json" 'd["goodput"]')
# a machine that carries little (pinned, beside a hog) answers few requests in SECONDS:
# both phases then run long enough for about 400 answers at capacity (at most 20 s), so
# that Poisson noise and one unlucky run do not decide the comparison
dur=$(awk -v g="$g1" -v s="$secs" 'BEGIN { t = int(400 / (g > 1 ? g : 1)) + 1; if (t > 20) t = 20; print (t > s ? t : s) }')
if [ "$dur" -gt "$secs" ]; then
    echo "  goodput at capacity $g1/s in $secs s: both phases again for $dur s"
    sleep 2.5
    load "$cap" "$tmp/at.json"
    rc1=$?
    g1=$(json "$tmp/at.json" 'd["goodput"]')
fi
sleep 2.5 # the observed scale and margin forget the phase before (a 2 s window)
curl -s "$url/metrics" >"$tmp/m0"
# 3x the capacity: of the plan's, or of the goodput measured if larger. Never 3x the
# goodput alone: beside a CPU hog the machine carries a fifth of the plan's capacity, and
# 3x that offered less than the capacity phase did (to a model that then refuses what
# would queue, fewer arrivals find a replica free: less goodput at "3x" than at 1x)
load "$(awk -v g="$g1" -v c="$cap" 'BEGIN { m = g > c ? g : c; r = int(3 * m); print r < 3 ? 3 : r }')" \
    "$tmp/over.json" --ledger "$tmp/over.ledger"
rc3=$?
curl -s "$url/metrics" >"$tmp/m1"
# the capacity measured again after the 3x phase: the 3x goodput is compared with the mean
# of the phases either side of it, so that a machine whose spare CPU drifts (a CPU hog
# beside the test, other tests) does not decide the comparison; the threshold stays 90%
sleep 2.5
load "$cap" "$tmp/at2.json"
rc2=$?
dur=
g1b=$(json "$tmp/at2.json" 'd["goodput"]')
g1a=$g1
g1=$(awk -v a="$g1a" -v b="$g1b" 'BEGIN { printf "%.2f", (a + b) / 2 }')
g3=$(json "$tmp/over.json" 'd["goodput"]')
p99=$(json "$tmp/over.json" 'd["latency_ms"]["p99"]')
echo "  capacity $cap/s (the plan); goodput at it $g1a/s before and $g1b/s after the 3x phase" \
    "(mean $g1/s: the capacity measured), at 3x capacity $g3/s;" \
    "admitted p99 at 3x $p99 ms (SLO 100);" \
    "3x answers: $(json "$tmp/over.json" 'd["status"]')"
[ $rc1 -eq 0 ] && [ $rc3 -eq 0 ] && [ $rc2 -eq 0 ] && ok overload_exactly_once ||
    fail "overload_exactly_once: load exit $rc1 / $rc3 / $rc2: $(cat "$tmp/at.json" "$tmp/over.json" "$tmp/at2.json")"
$py - "$tmp/over.json" "$g1" "$tmp/m0" "$tmp/m1" "$tmp/over.ledger" <<'PY' && ok overload_targets || fail overload_targets
import json, os, sys
sys.path.insert(0, os.environ["TESTS_DIR"])
import binom
d = json.load(open(sys.argv[1])); g1 = float(sys.argv[2])
def buckets(path):  # the server's latency histogram of mlp's successes: le -> count
    out = {}
    for line in open(path):
        if line.startswith('usher_request_duration_seconds_bucket{model="mlp"'):
            le = line.split('le="')[1].split('"')[0]
            out[le] = int(line.split()[-1])
    return out
b0, b1 = buckets(sys.argv[3]), buckets(sys.argv[4])
n = b1["+Inf"] - b0["+Inf"]
within = b1["0.1"] - b0["0.1"]
print("    server side: %d of %d admitted answers within the 100 ms SLO (%.2f%%)"
      % (within, n, 100.0 * within / max(n, 1)))
st = d["status"]
bad = []
if d["answered"] != d["sent"] or d["missing"] or d["duplicates"] or not d["exactly_once"]:
    bad.append("not every request answered exactly once")
if st["4xx"] or st["5xx"] or st["other"]:
    bad.append("answers other than 200 and 503: %s" % st)
if st["503"] == 0:
    bad.append("no 503 at 3x capacity: the overload did not happen")
if d["goodput"] < 0.9 * g1:
    bad.append("goodput %.1f/s < 90%% of %.1f/s" % (d["goodput"], g1))
# admitted p99 within the SLO, as the server measures it (from the request's
# arrival to its answer): at most 1% of its successes past the <= 100 ms bucket.
# The sample is small where the machine carries little (pinned, beside a hog:
# 200-500 successes), and a server whose late share is exactly 1% shows 3 or more
# late of 229 four times in ten. So the check is a one-sided binomial test: it
# fails when the sample shows a late share above 1% at 95% confidence (P(X >= late)
# < 5% for X ~ Binomial(n, 1%)): at 229 successes 6 late fail and 5 pass, at 2,000
# 29 fail; at 229 a late share of 3% fails seven times in ten, 5% 97 in 100
late = n - within
if n == 0 or binom.above(late, n, 0.01):
    bad.append("server-side: %d of %d within the SLO: the late share is above 1%% "
               "(binomial test, 95%%)" % (within, n))
# the client's view adds the loopback and this 2-core machine's scheduling of
# the generator itself: allowed 10% over, tested as above (ledger: latency in us)
ok200 = [float(l.split()[3]) for l in open(sys.argv[5]) if l.split()[4] == "200"]
slow = sum(1 for v in ok200 if v > 110e3)
if binom.above(slow, len(ok200), 0.01):
    bad.append("client-side: %d of %d admitted answers over 110 ms (p99 %.1f ms)"
               % (slow, len(ok200), d["latency_ms"]["p99"]))
for b in bad:
    print("   ", b)
sys.exit(1 if bad else 0)
PY

# ---- recovery from a slowdown (issue 10) ---------------------------------------------
# Evenly spaced requests (the recovery, not Poisson bursts, is under test: on one core,
# a burst that makes both replicas run at once teaches the scale a 2x slowdown) at a
# third of the goodput measured at capacity for 13 s; from 4 s to 7 s every mlp worker is
# paused two thirds of the time (SIGSTOP 20 ms, SIGCONT 10 ms: runs take ~3x longer), as a
# noisy neighbour or a throttled CPU would. Admission sheds what the slowdown makes late;
# 2 to 5 s after its end, the share of requests served within the SLO must be back to 95%
# of what it was before (it used to stay at 0: the scale that refused everything could
# not come down when nothing ran). Nothing lost: every request answered exactly once.
rrate=$(awk -v g="$g1" 'BEGIN { r = int(g / 3); print r < 5 ? 5 : r }')
sleep 2.5 # the 3x phase leaves the window first: the level before is the steady one
"$usher" load --url "$url" --model "mlp:$rrate" --input "$tmp/x.json" --duration 13 \
    --arrivals uniform --slo-ms 100 --seed 11 --json --ledger "$tmp/rec.ledger" >"$tmp/rec.json" 2>"$tmp/load.err" &
lp=$!
sleep 4
pids=$(pgrep -f "worker.*$tmp/repo/mlp" | tr '\n' ' ')
end=$(( $(date +%s%N) + 3000000000 ))
while [ "$(date +%s%N)" -lt "$end" ]; do
    kill -STOP $pids 2>/dev/null
    sleep 0.02
    kill -CONT $pids 2>/dev/null
    sleep 0.01
done
kill -CONT $pids 2>/dev/null
curl -s "$url/metrics" >"$tmp/m2"
wait "$lp"
rcr=$?
$py - "$tmp/rec.json" "$tmp/rec.ledger" "$tmp/m2" <<'PY' && ok recovery_after_slowdown || fail recovery_after_slowdown
import json, os, sys
sys.path.insert(0, os.environ["TESTS_DIR"])
import binom
d = json.load(open(sys.argv[1]))
rows = [l.split() for l in open(sys.argv[2])]
def share(lo, hi):  # requests scheduled in [lo, hi) s: sent, and served within the SLO
    w = [r for r in rows if lo * 1e6 <= float(r[2]) < hi * 1e6]
    good = [r for r in w if r[4] == "200" and 0 <= float(r[3]) <= 100e3]
    return len(w), len(good)
m = {l.split("{")[0]: l.split()[-1] for l in open(sys.argv[3]) if 'model="mlp"' in l}
nb, gb = share(0.5, 4)
ns, gs = share(4.5, 7)
na, ga = share(9, 12)
fb, fs, fa = gb / max(nb, 1), gs / max(ns, 1), ga / max(na, 1)
print("    within the SLO: before %d/%d (%.0f%%), during the slowdown %d/%d (%.0f%%), "
      "2-5 s after it %d/%d (%.0f%%); during it: scale %s, shedding %s, %s shed by scale, "
      "%s probes" % (gb, nb, 100 * fb, gs, ns, 100 * fs, ga, na, 100 * fa,
                     m.get("usher_batch_latency_scale"), m.get("usher_model_shedding"),
                     m.get("usher_requests_shed_by_scale_total"), m.get("usher_admission_probes_total")))
bad = []
if d["answered"] != d["sent"] or d["missing"] or d["duplicates"] or not d["exactly_once"]:
    bad.append("not every request answered exactly once: %s" % d["status"])
if nb < 5 or na < 5:
    bad.append("too few requests in a window")
# back to 95% of the level before: a one-sided binomial test, as the overload's p99 (15
# to 45 requests a window: at 15 of 15 before, 13 of 15 after pass and 12 fail; stuck
# refusing, 0 of 15, fails at any size)
if binom.below(ga, na, 0.95 * fb):
    bad.append("not recovered: %d of %d (%.0f%%) within the SLO after, %.0f%% before"
               % (ga, na, 100 * fa, 100 * fb))
for b in bad:
    print("   ", b)
sys.exit(1 if bad else 0)
PY
[ $rcr -eq 0 ] || fail "recovery: usher load exit $rcr"

# ---- SIGTERM under load (FAULT-7) --------------------------------------------------
load "$cap" "$tmp/term.json" --ledger "$tmp/ledger" &
lp=$!
sleep "$(awk -v s="$secs" 'BEGIN { print s / 2 }')"
t0=$(date +%s%N)
kill -TERM "$srv"
r=$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/ready")
wait "$srv"
rc=$?
t1=$(date +%s%N)
srv=
wait "$lp"
echo "  SIGTERM: exit $rc after $(( (t1 - t0) / 1000000 )) ms; ready right after: $r;" \
    "answers: $(awk '{ n[$5]++ } END { for (k in n) printf "%s %d  ", k, n[k] }' "$tmp/ledger")"
[ $rc -eq 0 ] && ok sigterm_exit_0 || fail "sigterm_exit_0: $rc"
case $r in 400|000) ok sigterm_not_ready ;; *) fail "sigterm_not_ready: $r" ;; esac
# every request sent before the stop was answered (200 or 503); after it, the
# connection is refused (failed) and nothing is left hanging (no timeout)
awk '$5 != 200 && $5 != 503 && $5 != "failed" && $5 != "unsent" { bad++ } END { exit bad > 0 }' \
    "$tmp/ledger" && ok sigterm_answers || fail "sigterm_answers: $(awk '{print $5}' "$tmp/ledger" | sort | uniq -c)"
grep -q " 200$" "$tmp/ledger" && ok sigterm_served_before || fail sigterm_served_before
if pgrep -f "worker.*$tmp/repo" >/dev/null; then fail "sigterm_no_orphan_worker"; else ok sigterm_no_orphan_worker; fi

grep -i "warn\|error" "$tmp/serve.log" | head -20
[ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
exit $((fails > 0))
