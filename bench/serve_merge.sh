#!/usr/bin/env bash
# serve_merge.sh USHER FT_DIR [RATE_PER_MODEL] [DURATION_S] [ROUNDS] - served throughput of
# the 4 fine-tuned variants of scripts/make_finetuned.py (FT_DIR: variant0..3.onnx), as one
# merge group (A: merge_group in usher.yaml, one merged graph, one worker) against the 4
# models served separately (B: one worker each), same total work: `usher load` offers the
# same Poisson arrivals (RATE_PER_MODEL requests/s to each variant, default 1250, the same
# seed) to A and to B, alternately, ROUNDS times (default 3). Both servers run all along
# with the same plan objectives (1 replica, 1 thread per model, batch 8, SLO 100 ms; the
# group's worker gets the members' 4 threads, at most the cores). Prints per run the
# answers per second (200s), the goodput (answers within the SLO per second) and the CPU
# time the server and its workers spent per 1,000 answers (utime + stime from /proc, the
# server process and its children), then the medians and the ratios A / B. On a shared,
# loaded machine the first two swing with what else runs (a saturated server's queue
# collapses its goodput); the CPU time per answer is the steadier measure of how much
# work one answer costs, hence of the throughput the cores allow.
# docs/serve.md "Merge groups" has the figures.
# With B_REPLICAS=N in the environment, B is the same merge group served by N replicas
# (usher.yaml replicas: N on each member: N workers of the merged graph, the members' threads
# shared among them, at most the cores / N each) instead of the separate models: A's one
# worker against B's N on the same cores.
# SERVER_CPUS and LOAD_CPUS (taskset lists, e.g. 1 and 0) pin the servers (workers included)
# and the load generator apart, so that a saturated generator does not take the servers'
# cores: the served throughput is then the server's, not what the generator keeps up with.
set -uo pipefail
usher=${1:?usage: serve_merge.sh USHER FT_DIR [RATE] [DURATION] [ROUNDS]}
ft=${2:?FT_DIR}
rate=${3:-1250}
dur=${4:-8}
rounds=${5:-3}
brep=${B_REPLICAS:-}
py=/usr/bin/python3
tmp=$(mktemp -d)
pids=
trap 'kill $pids 2>/dev/null; rm -rf "$tmp"' EXIT
for side in A B; do
    for i in 0 1 2 3; do
        mkdir -p "$tmp/$side/variant$i/1"
        cp "$ft/variant$i.onnx" "$tmp/$side/variant$i/1/model.onnx"
        printf 'replicas: %s\nthreads: 1\nmax_batch: 8\nslo_ms: 100\n%s\n' \
            "$([ $side = B ] && [ -n "$brep" ] && echo "$brep" || echo 1)" \
            "$([ $side = A ] || [ -n "$brep" ] && echo 'merge_group: ft')" >"$tmp/$side/variant$i/usher.yaml"
    done
    ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} "$usher" serve --repo "$tmp/$side" --http-port 0 \
        >"$tmp/$side.log" 2>&1 &
    pids="$pids $!"
    eval "pid$side=$!"
done
for side in A B; do
    for _ in $(seq 600); do
        grep -q "listening on" "$tmp/$side.log" && break
        sleep 0.1
    done
    eval "url$side=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/$side.log")"
done
for side in A B; do
    u=$(eval echo "\$url$side")
    for _ in $(seq 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$u/v2/health/ready")" = 200 ] && break
        sleep 0.1
    done
done
grep -q "not used" "$tmp/A.log" "$tmp/B.log" && { echo "a group fell back: $(cat "$tmp/A.log" "$tmp/B.log")"; exit 1; }
echo "offered: $rate requests/s to each of 4 variants, ${dur} s, Poisson, seed 7; A = merge group, B = ${brep:+the group with $brep replicas}${brep:-separate}"
: >"$tmp/res"
# cpu_ticks PID: utime + stime of PID and its child processes (the workers), clock ticks
cpu_ticks() {
    local t=0 p
    for p in $1 $(pgrep -P "$1"); do
        [ -r /proc/$p/stat ] && t=$((t + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' /proc/$p/stat)))
    done
    echo $t
}
hz=$(getconf CLK_TCK)
for r in $(seq "$rounds"); do
    for side in A B; do
        u=$(eval echo "\$url$side")
        p=$(eval echo "\$pid$side")
        c0=$(cpu_ticks "$p")
        ${LOAD_CPUS:+taskset -c "$LOAD_CPUS"} "$usher" load --url "$u" --model variant0 --model variant1 --model variant2 \
            --model variant3 --rate "$rate" --duration "$dur" --seed 7 --json 2>/dev/null |
            tail -1 >"$tmp/r.json"
        c1=$(cpu_ticks "$p")
        $py -c "
import json, sys
r = json.load(open('$tmp/r.json'))
ok = r['status']['200'] / r['duration_s']
cpu = ($c1 - $c0) / $hz
print('$side', '$r', '%.1f' % ok, '%.1f' % r['goodput'], r['latency_ms']['p50'], r['latency_ms']['p99'],
      '%.3f' % (cpu * 1000 / max(1, r['status']['200'])))
" | tee -a "$tmp/res" | awk '{ printf "round %s %s: %8s answers/s %8s goodput/s  p50 %s ms  p99 %s ms  %s cpu-s/1000 answers\n", $2, $1, $3, $4, $5, $6, $7 }'
    done
done
$py - "$tmp/res" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {s: [statistics.median(float(r[k]) for r in rows if r[0] == s) for k in (2, 3, 6)]
       for s in "AB"}
print("median answers/s: A %.1f, B %.1f -> %.2fx" % (med["A"][0], med["B"][0], med["A"][0] / med["B"][0]))
print("median goodput/s: A %.1f, B %.1f -> %.2fx" % (med["A"][1], med["B"][1], med["A"][1] / max(med["B"][1], 1e-9)))
print("median cpu-s per 1000 answers: A %.3f, B %.3f -> B / A %.2fx" %
      (med["A"][2], med["B"][2], med["B"][2] / med["A"][2]))
PY
curl -s "$urlA/metrics" | grep -E '^usher_merge_group_.*\{group="ft"\}'
