#!/usr/bin/env bash
# test_serve_merge.sh [ft|npm] - `usher serve` with merge groups (issue 15 item 4,
# docs/serve.md "Merge groups"). Two servers on the same models: A with `merge_group`
# in the members' usher.yaml (one merged graph, one worker), B without (each model
# alone); tests/test_serve_merge.py sends both the same requests.
#
# ft (ctest test_serve_merge): the 4 fine-tuned variants of scripts/make_finetuned.py
# (python3-torch, real SGD steps; a shared-backbone merge):
#   - A logs no fallback, /metrics shows the group, every member's metadata (inputs,
#     outputs, names, shapes) is what B shows;
#   - every output of every member equals B's within 1e-5 x the output's scale, for
#     seeded random inputs of 1 and 3 rows and the task's real samples (sample_x.bin: each
#     row alone and the 4 in one request);
#   - mixed traffic (8 client threads over the 4 members): runs of the group served
#     requests of two or more members (usher_merge_group_mixed_batches_total > 0);
#   - per-member counters reconcile with what the client saw: received, successes and
#     Triton's statistics (/v2/models/M/stats) per member equal the client's counts;
#   - a stacked group (usher.yaml merge_kind: stacked; two MLPs of one graph, every weight
#     different, a batch dim: mlp_a and mlp_c of tests/make_merge_models.py): members answer
#     as alone with 1 and 3 rows, the other member padded with filler rows to the same rows
#     (usher_merge_group_filler_rows_total > 0);
#   - a group whose verification fails (two MLPs one ulp apart, tests/make_merge_models.py,
#     with merge_tolerance 1e-9 below their 1.3e-7 x scale difference) is not used: a
#     warning names it and the reason, its members are served separately and answer.
# reload (ctest test_serve_merge_reload): config.pbtxt instance_group as replicas (Triton's
#   meaning), and plan changes (SIGHUP) applied to a merge group:
#   - a member whose instance_group is 1 x 2 GPUs listed (none here: on the CPU) makes the
#     group 2 workers; the other member's usher.yaml replicas: 1 wins over its count of 3;
#     a plain model with 2 KIND_CPU + 1 KIND_GPU runs 3 workers; the config endpoint of each
#     says what runs;
#   - usher.yaml replicas changed and SIGHUP under mixed load: the group goes 2 -> 1 -> 2
#     workers, every request answered 200, the ledger per member reconciles, the new
#     replicas both run batches; a new SLO on both members switches the group's runtime
#     with its run counters carried over; a member's batch change is refused (logged, the
#     same workers serve on);
#   - with --plan: the plan's group 2 -> 1 replica by SIGHUP under load (ledger); a plan
#     dropping the group (its members alone) refused, the group kept; a plan placing a
#     member alone as well as in its group refused at SIGHUP and at start, naming both.
# replicas (ctest test_serve_merge_replicas): a group served by 2 replicas, each its own
#   worker and session of the one merged file (two MLPs sharing an 8-layer backbone, their
#   heads different, generated below: a shared merge whose runs take milliseconds):
#   - usher.yaml replicas: 2 on the members: the log says 2 workers, 2 worker processes of
#     the merged file run, usher_model_replicas_ready is 2 for each member;
#   - each member answers as when served alone (server B), for 1 and 3 rows;
#   - under concurrent mixed traffic both replicas run batches (usher_replica_batches_total
#     of replica 0 and 1 > 0), runs serve both members, and the ledger reconciles per member;
#   - one replica's worker killed (SIGKILL) under load: every 200 answer is still right
#     (checked against B), the only other answers are 500s naming the lost worker, counted
#     as worker_crash per member, the group keeps answering after the kill (200s sent after
#     it), usher_replica_worker_deaths_total counts 1, and the replica comes back (2 ready,
#     a new worker process);
#   - usher serve --plan with a plan.json whose merge group has 2 replicas (no merge_group in
#     usher.yaml, replicas: 1 there) serves the group with 2 workers, both running batches,
#     members answering as alone.
# npm (ctest test_serve_merge_npm; exit 77, skipped, without scripts/deps.sh's models):
#   Silero VAD v5 + v6 (side-by-side; input 1x512, sr 16000 as merge_shape/merge_value)
#   and the openWakeWord pair hello_deepa_old + namaste_deepa (stacked or side-by-side),
#   each member equal to its separate serving, and mixed traffic batched together.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
src=${USHER_SOURCE_DIR:?run through ctest}
mode=${1:-ft}
py=/usr/bin/python3
client=$src/tests/test_serve_merge.py
. "$src/tests/serve_lib.sh"

# model DIR NAME FILE YAML-LINES...
model() {
    local dir=$1 name=$2 file=$3
    shift 3
    mkdir -p "$dir/$name/1"
    cp "$file" "$dir/$name/1/model.onnx"
    printf '%s\n' "replicas: 1" "threads: 1" "$@" >"$dir/$name/usher.yaml"
}

# start A and B; sets urlA, urlB, srvA, srvB
start_both() {
    start_server "$1" || { fail "server A does not start"; return 1; }
    urlA=$url srvA=$srv
    cp "$tmp/serve.log" "$tmp/serveA.log"
    start_server "$2" || { fail "server B does not start"; return 1; }
    urlB=$url srvB=$srv
    srv=$srvA # serve_lib's cleanup kills one; B is killed below
    wait_ready || { fail "server A not ready"; return 1; }
    url=$urlB wait_ready || { fail "server B not ready"; return 1; }
    url=$urlA
}
stop_both() {
    kill "$srvA" "$srvB" 2>/dev/null
    wait "$srvA" "$srvB" 2>/dev/null
    cp "$tmp/serve.log" "$tmp/serveA_final.log" 2>/dev/null
}

# metric NAME{LABELS} from server A
metric() { curl -s "$urlA/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }

# ledger_check LEDGER MODEL...: /metrics and /stats per member equal the client's counts
ledger_check() {
    local ledger=$1
    shift
    local bad=0
    for m in "$@"; do
        local sent okc rec suc st
        sent=$($py -c "import json,sys; print(json.load(open('$ledger'))['$m']['sent'])")
        okc=$($py -c "import json,sys; print(json.load(open('$ledger'))['$m']['ok'])")
        rec=$(metric "usher_requests_received_total{model=\"$m\"}")
        suc=$(metric "usher_requests_total{model=\"$m\",outcome=\"success\"}")
        st=$(curl -s "$urlA/v2/models/$m/stats" |
            $py -c "import json,sys; print(json.load(sys.stdin)['model_stats'][0]['inference_stats']['success']['count'])")
        if [ "$sent" != "$rec" ] || [ "$okc" != "$suc" ] || [ "$okc" != "$st" ]; then
            fail "ledger $m: client sent $sent, $okc answered 200; server received $rec, $suc successes, stats $st"
            bad=1
        fi
    done
    [ $bad -eq 0 ] && ok "ledger: per-member received, successes and /stats equal the client's counts ($*)"
}

# replica_metric NAME MODEL REPLICA: a per-replica counter of server A
replica_metric() {
    curl -s "$urlA/metrics" | awk -v n="$1" -v m="model=\"$2\"" -v r="replica=\"$3\"" \
        'index($1, n "{") == 1 && index($1, m) && index($1, r) { print $2 }'
}
# group_workers FILE-PATTERN: the pids of the workers running the merged file
group_workers() { pgrep -f "worker.*$1" | sort | tr '\n' ' '; }

# make_deep DIR: two MLPs sharing an 8-layer backbone (below), deep_a.onnx and deep_b.onnx
make_deep() {
    # two MLPs sharing an 8-layer backbone (x[batch,16] -> 512 wide, one weight and bias
    # per layer, spectral norm 0.9 and a positive bias: activations stay normal floats),
    # each with its own head 512 -> 4
    $py - "$1" <<'PY' || { echo "FAIL: generating the models"; exit 1; }
import os, sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
out, W, L = sys.argv[1], 512, 8
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
w_in = (rng.standard_normal((16, W)) / 4).astype(np.float32)
g = rng.standard_normal((W, W))
w = (g * (0.9 / np.linalg.norm(g, 2))).astype(np.float32)
b = rng.uniform(0.1, 1.0, W).astype(np.float32)
for name, seed in (("deep_a", 1), ("deep_b", 2)):
    head = (np.random.default_rng(seed).standard_normal((W, 4)) / np.sqrt(W)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w_in, "w_in"), (w, "w"), (b, "b"), (head, "w_out"))]
    nodes = [helper.make_node("MatMul", ["x", "w_in"], ["h0"])]
    for i in range(L):
        nodes += [helper.make_node("MatMul", ["h%d" % i, "w"], ["m%d" % i]),
                  helper.make_node("Add", ["m%d" % i, "b"], ["a%d" % i]),
                  helper.make_node("Relu", ["a%d" % i], ["h%d" % (i + 1)])]
    nodes.append(helper.make_node("MatMul", ["h%d" % L, "w_out"], ["y"]))
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, name + ".onnx"))
PY
}

if [ "$mode" = replicas ]; then
    make_deep "$tmp/deep"
    D="deep_a deep_b"
    export USHER_LOG=info # the group's and its workers' start-up lines
    for side in A B; do
        for d in $D; do
            if [ $side = A ]; then
                model "$tmp/A" "$d" "$tmp/deep/$d.onnx" "max_batch: 8" "slo_ms: 10000" \
                    "merge_group: g"
                sed -i 's/^replicas: 1$/replicas: 2/' "$tmp/A/$d/usher.yaml"
            else
                model "$tmp/B" "$d" "$tmp/deep/$d.onnx" "max_batch: 8" "slo_ms: 10000"
            fi
        done
    done
    start_both "$tmp/A" "$tmp/B" || exit 1
    if grep -q "merge group 'g': .* served by 2 workers" "$tmp/serveA.log" &&
        ! grep -q "not used" "$tmp/serveA.log"; then
        ok "group g formed: $(grep -o "merge group 'g': .*" "$tmp/serveA.log" | head -c 200)"
    else
        fail "group g: $(cat "$tmp/serveA.log")"
    fi
    pids0=$(group_workers "usher-group-g-$srvA\\.onnx")
    ready=$(metric 'usher_model_replicas_ready{model="deep_a"}')/$(metric 'usher_model_replicas_ready{model="deep_b"}')
    [ "$(echo $pids0 | wc -w)" = 2 ] && [ "$ready" = 2/2 ] &&
        ok "2 worker processes run the merged file ($pids0), replicas ready $ready" ||
        fail "workers of the merged file: '$pids0', replicas ready $ready"
    $py "$client" compare "$urlA" "$urlB" "$tmp/ledger.json" $D --rounds 4 >"$tmp/c.out" 2>&1 &&
        ok "members answer as alone: $(tail -1 "$tmp/c.out")" || fail "compare: $(cat "$tmp/c.out")"
    $py "$client" mixed "$urlA" "$tmp/ledger.json" $D --threads 8 --requests 40 --rows 2 \
        >"$tmp/m.out" 2>&1 || fail "mixed: $(cat "$tmp/m.out")"
    r0=$(replica_metric usher_replica_batches_total deep_a 0)
    r1=$(replica_metric usher_replica_batches_total deep_a 1)
    runs=$(metric 'usher_merge_group_batches_total{group="g"}')
    mixed=$(metric 'usher_merge_group_mixed_batches_total{group="g"}')
    [ "${r0:-0}" -gt 0 ] && [ "${r1:-0}" -gt 0 ] && [ $((r0 + r1)) = "${runs:-x}" ] &&
        ok "both replicas ran batches under mixed load: $r0 and $r1 of the group's $runs runs ($mixed for both members)" ||
        fail "replica batches: '$r0' and '$r1', group runs '$runs' ($(curl -s "$urlA/metrics" | grep -E 'replica_batches|merge_group'))"
    ledger_check "$tmp/ledger.json" $D

    # one replica's worker killed under load
    # (the client sends until the kill, then 40 more requests per thread)
    victim=${pids0%% *}
    rm -f "$tmp/killed"
    $py "$client" verify "$urlA" "$urlB" "$tmp/ledger.json" "$tmp/killed" $D --threads 6 \
        --requests 40 --rows 2 >"$tmp/v.out" 2>&1 &
    vp=$!
    sleep 1
    kill -9 "$victim"
    touch "$tmp/killed"
    wait $vp
    vrc=$?
    res=$(tail -1 "$tmp/v.out")
    lostc=$($py -c "import json,sys; print(json.loads(sys.argv[1])['lost'])" "$res" 2>/dev/null)
    after=$($py -c "import json,sys; print(json.loads(sys.argv[1])['ok_after'])" "$res" 2>/dev/null)
    [ $vrc -eq 0 ] && [ "${after:-0}" -gt 0 ] &&
        ok "worker $victim killed under load: no wrong answer, ${lostc:-?} lost with it (500), ${after} answered 200 after the kill: $res" ||
        fail "kill under load (exit $vrc): $(cat "$tmp/v.out")"
    crash=0
    for d in $D; do
        c=$(metric "usher_requests_total{model=\"$d\",outcome=\"worker_crash\"}")
        crash=$((crash + ${c:-0}))
    done
    [ "$crash" = "${lostc:-x}" ] &&
        ok "the server counts the client's lost answers: $crash worker_crash" ||
        fail "after the kill: server worker_crash $crash, client lost '$lostc'"
    ledger_check "$tmp/ledger.json" $D
    back=
    for _ in $(seq 300); do # an idle worker's death is seen at its next heartbeat (1 s)
        pids1=$(group_workers "usher-group-g-$srvA\\.onnx")
        d0=$(replica_metric usher_replica_worker_deaths_total deep_a 0)
        d1=$(replica_metric usher_replica_worker_deaths_total deep_a 1)
        [ $((${d0:-0} + ${d1:-0})) = 1 ] &&
            [ "$(metric 'usher_model_replicas_ready{model="deep_a"}')" = 2 ] &&
            [ "$(echo $pids1 | wc -w)" = 2 ] && ! echo " $pids1 " | grep -q " $victim " &&
            { back=1; break; }
        sleep 0.1
    done
    [ -n "$back" ] &&
        ok "the replica came back: workers $pids1 (was $pids0), 2 ready, worker deaths by replica $d0 and $d1" ||
        fail "no replacement worker: workers '$pids1', deaths '$d0' '$d1', ready $(metric 'usher_model_replicas_ready{model="deep_a"}')"
    kill "$srvA" 2>/dev/null
    wait "$srvA" 2>/dev/null

    # a plan.json whose merge group has 2 replicas (none of it in usher.yaml)
    for d in $D; do model "$tmp/C" "$d" "$tmp/deep/$d.onnx" "max_batch: 8" "slo_ms: 10000"; done
    cat >"$tmp/plan.json" <<'JSON'
{"schema_version": 1, "models": [{"name": "deep_a", "rate": 100, "slo_ms": 10000},
                                 {"name": "deep_b", "rate": 100, "slo_ms": 10000}],
 "merge_groups": [{"name": "g2", "kind": "shared", "members": ["deep_a", "deep_b"]}],
 "gpus": [{"type": "t4", "replicas": [{"model": "g2", "batch": 4, "share": 50},
                                      {"model": "g2", "batch": 4, "share": 50}]}]}
JSON
    if start_server "$tmp/C" --plan "$tmp/plan.json" && wait_ready; then
        urlA=$url srvA=$srv
        pc=$(group_workers "usher-group-g2-$srvA\\.onnx")
        grep -q "merge group 'g2': .* served by 2 workers" "$tmp/serve.log" &&
            [ "$(echo $pc | wc -w)" = 2 ] && ! grep -q "not used" "$tmp/serve.log" &&
            ok "serve --plan: the plan's group of 2 replicas runs 2 workers ($pc)" ||
            fail "serve --plan: workers '$pc': $(cat "$tmp/serve.log")"
        $py "$client" compare "$urlA" "$urlB" "$tmp/ledger_c.json" $D --rounds 2 >"$tmp/c.out" 2>&1 &&
            ok "serve --plan: members answer as alone: $(tail -1 "$tmp/c.out")" ||
            fail "serve --plan compare: $(cat "$tmp/c.out")"
        $py "$client" mixed "$urlA" "$tmp/ledger_c.json" $D --threads 8 --requests 30 --rows 2 \
            >"$tmp/m.out" 2>&1 || fail "serve --plan mixed: $(cat "$tmp/m.out")"
        r0=$(replica_metric usher_replica_batches_total deep_b 0)
        r1=$(replica_metric usher_replica_batches_total deep_b 1)
        [ "${r0:-0}" -gt 0 ] && [ "${r1:-0}" -gt 0 ] &&
            ok "serve --plan: both replicas ran batches ($r0, $r1)" ||
            fail "serve --plan: replica batches '$r0', '$r1'"
        ledger_check "$tmp/ledger_c.json" $D
    else
        fail "serve --plan does not start: $(cat "$tmp/serve.log")"
    fi
    kill "$srvA" "$srvB" 2>/dev/null
    wait "$srvA" "$srvB" 2>/dev/null
    srv=
    echo "test_serve_merge replicas: $fails failure(s)"
    [ $fails -eq 0 ]
    exit
fi

# ig_count MODEL: the instance_group count server A's config endpoint reports
ig_count() {
    curl -s "$urlA/v2/models/$1/config" |
        $py -c "import json,sys; print(sum(int(g['count']) for g in json.load(sys.stdin)['instance_group']))"
}
# hup N: SIGHUP to server A, then wait (at most 60 s) until it has answered N SIGHUPs
hup() {
    kill -HUP "$srvA"
    for _ in $(seq 600); do
        [ "$(grep -c -E '[0-9]+ models? switched to the new plan' "$tmp/serve.log")" -ge "$1" ] &&
            return 0
        sleep 0.1
    done
    return 1
}
# workers_are N PATTERN: at most 20 s until exactly N workers run PATTERN; their pids
workers_are() {
    local w
    for _ in $(seq 200); do
        w=$(group_workers "$2")
        [ "$(echo $w | wc -w)" = "$1" ] && { echo "$w"; return 0; }
        sleep 0.1
    done
    echo "$w"
    return 1
}
# under_load LEDGER: mixed traffic to the group's members in the background, each answer
# checked against server B's, from before a plan change until after it (all_ok ends it);
# sets lp (the client's pid)
under_load() {
    rm -f "$tmp/changed"
    $py "$client" verify "$urlA" "$urlB" "$1" "$tmp/changed" $D --threads 4 --requests 20 \
        --rows 2 >"$tmp/m.out" 2>&1 &
    lp=$!
    sleep 0.5
}
# all_ok LEDGER WHAT: the change is over: the client sends 20 more per thread and stops;
# every request it sent was answered 200 and right, and the ledger reconciles
all_ok() {
    touch "$tmp/changed"
    wait "$lp" || fail "$2: client: $(cat "$tmp/m.out")"
    local bad
    bad=$($py -c "import json; l=json.load(open('$1')); print(' '.join('%s:%s/%s' % (m, l[m]['ok'], l[m]['sent']) for m in l if l[m]['ok'] != l[m]['sent']))")
    [ -z "$bad" ] && ok "$2: every request answered 200 across the change ($(tail -1 "$tmp/m.out"))" ||
        fail "$2: requests not answered 200 (ok/sent): $bad"
    ledger_check "$1" $D
}

if [ "$mode" = reload ]; then
    # issue 10/15: instance_group as replicas (a plain model, a group's member), and plan
    # changes (SIGHUP) resizing a merge group under load, with no request lost
    make_deep "$tmp/deep"
    D="deep_a deep_b"
    export USHER_LOG=info
    for d in $D; do
        mkdir -p "$tmp/A/$d/1"
        cp "$tmp/deep/$d.onnx" "$tmp/A/$d/1/model.onnx"
        printf '%s\n' "threads: 1" "max_batch: 8" "slo_ms: 10000" "merge_group: g" \
            >"$tmp/A/$d/usher.yaml"
    done
    # deep_a: 1 instance on each of 2 GPUs (none here: they run on the CPU) = 2 replicas;
    # deep_b: usher.yaml's replicas: 1 wins over its instance_group of 3
    printf 'instance_group [ { count: 1, kind: KIND_GPU, gpus: [ 0, 1 ] } ]\n' \
        >"$tmp/A/deep_a/config.pbtxt"
    printf 'instance_group [ { count: 3, kind: KIND_CPU } ]\n' >"$tmp/A/deep_b/config.pbtxt"
    echo "replicas: 1" >>"$tmp/A/deep_b/usher.yaml"
    # solo, alone: 2 on the CPU and 1 KIND_GPU (one device's worth here) = 3 replicas
    mkdir -p "$tmp/A/solo/1"
    cp "$tmp/deep/deep_a.onnx" "$tmp/A/solo/1/model.onnx"
    printf '%s\n' "threads: 1" "max_batch: 8" "slo_ms: 10000" "rate: 1" >"$tmp/A/solo/usher.yaml"
    printf 'instance_group [ { count: 2, kind: KIND_CPU }, { kind: KIND_GPU } ]\n' \
        >"$tmp/A/solo/config.pbtxt"
    for d in $D; do model "$tmp/B" "$d" "$tmp/deep/$d.onnx" "max_batch: 8" "slo_ms: 10000"; done
    # B first, its log moved aside (its descriptor follows the file): serve.log is A's alone,
    # SIGHUPs and all
    start_server "$tmp/B" && wait_ready || { fail "server B does not start"; exit 1; }
    urlB=$url srvB=$srv
    mv "$tmp/serve.log" "$tmp/serveB.log"
    start_server "$tmp/A" && wait_ready || { fail "server A does not start"; exit 1; }
    urlA=$url srvA=$srv
    gfile="usher-group-g-$srvA\\.onnx"
    w=$(workers_are 2 "$gfile")
    grep -q "merge group 'g': .* served by 2 workers" "$tmp/serve.log" &&
        [ "$(ig_count deep_a)/$(ig_count deep_b)" = 2/2 ] && [ -n "$w" ] &&
        ok "instance_group: the group runs deep_a's 2 (1 x 2 GPUs listed) on 2 workers ($w); config says 2 for both members" ||
        fail "instance_group of a member: workers '$w', config $(ig_count deep_a)/$(ig_count deep_b): $(grep "merge group" "$tmp/serve.log")"
    sw=$(workers_are 3 "$tmp/A/solo/1/model.onnx")
    [ $? = 0 ] && [ "$(ig_count solo)" = 3 ] &&
        [ "$(metric 'usher_model_replicas_ready{model="solo"}')" = 3 ] &&
        ok "instance_group: solo runs 2 KIND_CPU + 1 KIND_GPU = 3 workers ($sw), config and replicas ready say 3" ||
        fail "instance_group of solo: workers '$sw', config $(ig_count solo), ready $(metric 'usher_model_replicas_ready{model="solo"}')"
    $py "$client" compare "$urlA" "$urlB" "$tmp/ledger.json" $D --rounds 2 >"$tmp/c.out" 2>&1 &&
        ok "members answer as alone: $(tail -1 "$tmp/c.out")" || fail "compare: $(cat "$tmp/c.out")"

    # SIGHUP under load: usher.yaml replicas: 1 on deep_a (over its instance_group) -> 1 worker
    echo "replicas: 1" >>"$tmp/A/deep_a/usher.yaml"
    under_load "$tmp/ledger.json"
    hup 1 || fail "SIGHUP 1 not answered: $(tail -5 "$tmp/serve.log")"
    all_ok "$tmp/ledger.json" "group 2 -> 1 replica under load"
    w1=$(workers_are 1 "$gfile") && [ "$(ig_count deep_a)/$(ig_count deep_b)" = 1/1 ] &&
        grep -q "merge group 'g': switched to the new plan: 1 worker of" "$tmp/serve.log" &&
        [ "$(metric 'usher_model_replicas_ready{model="deep_b"}')" = 1 ] &&
        ok "SIGHUP: the group went to 1 worker ($w1, was $w); config and replicas ready say 1: $(grep -o "merge group 'g': switched.*" "$tmp/serve.log" | head -1)" ||
        fail "SIGHUP 1: workers '$w1', config $(ig_count deep_a)/$(ig_count deep_b): $(grep "merge group" "$tmp/serve.log")"
    # and back to 2 (replicas: 2 on deep_b), under load
    sed -i 's/^replicas: 1$/replicas: 2/' "$tmp/A/deep_b/usher.yaml"
    under_load "$tmp/ledger.json"
    hup 2 || fail "SIGHUP 2 not answered"
    all_ok "$tmp/ledger.json" "group 1 -> 2 replicas under load"
    w2=$(workers_are 2 "$gfile") && [ "$(ig_count deep_a)/$(ig_count deep_b)" = 2/2 ] &&
        ok "SIGHUP: the group went to 2 workers ($w2)" ||
        fail "SIGHUP 2: workers '$w2', config $(ig_count deep_a)/$(ig_count deep_b)"
    $py "$client" mixed "$urlA" "$tmp/ledger.json" $D --threads 8 --requests 30 --rows 2 \
        >"$tmp/m.out" 2>&1 || fail "mixed: $(cat "$tmp/m.out")"
    r0=$(replica_metric usher_replica_batches_total deep_a 0)
    r1=$(replica_metric usher_replica_batches_total deep_a 1)
    [ "${r0:-0}" -gt 0 ] && [ "${r1:-0}" -gt 0 ] &&
        ok "both new replicas ran batches ($r0, $r1)" || fail "new replicas' batches: '$r0' '$r1'"
    # a switch with no request meanwhile (a new deadline: both members' SLO): the group's
    # run counters carry over, as the members' do
    g0=$(metric 'usher_merge_group_batches_total{group="g"}')
    sed -i 's/^slo_ms: 10000$/slo_ms: 9000/' "$tmp/A/deep_a/usher.yaml" "$tmp/A/deep_b/usher.yaml"
    hup 3 || fail "SIGHUP 3 not answered"
    g1=$(metric 'usher_merge_group_batches_total{group="g"}')
    grep -q "usher serve: 2 models switched to the new plan" "$tmp/serve.log" &&
        [ "${g0:-0}" -gt 0 ] && [ "$g1" = "$g0" ] &&
        ok "a new SLO switches the group's runtime (2 members switched); its $g1 runs carry over" ||
        fail "SLO switch: group runs $g0 before, $g1 after: $(grep "switched" "$tmp/serve.log")"
    ledger_check "$tmp/ledger.json" $D
    w2=$(workers_are 2 "$gfile") || fail "after the SLO switch: workers '$w2'"
    # a member's batch changes: refused with the reason, the group serving as it was
    sed -i 's/^max_batch: 8$/max_batch: 4/' "$tmp/A/deep_b/usher.yaml"
    under_load "$tmp/ledger.json"
    hup 4 || fail "SIGHUP 4 not answered"
    all_ok "$tmp/ledger.json" "a refused change under load"
    w3=$(workers_are 2 "$gfile")
    grep -q "merge group 'g': the new plan is not applied: its rows per run would change (12, was 16" "$tmp/serve.log" &&
        [ "$w3" = "$w2" ] && grep -q "usher serve: the new plan was not applied to merge group 'g'" "$tmp/serve.log" &&
        ok "a member's batch change is refused with the reason; the same 2 workers serve ($w3)" ||
        fail "refused change: workers '$w3' (were '$w2'): $(grep -E "merge group|not applied" "$tmp/serve.log")"
    kill "$srvA" 2>/dev/null
    wait "$srvA" 2>/dev/null
    cp "$tmp/serve.log" "$tmp/serveA_final.log"

    # the plan file's group: 2 replicas, then 1 by SIGHUP; a change of members refused; a
    # plan placing a member alone too refused, at SIGHUP and at start
    for d in $D; do model "$tmp/C" "$d" "$tmp/deep/$d.onnx" "max_batch: 8" "slo_ms: 10000"; done
    plan() { # plan REPLICAS-OF-g2 [EXTRA-REPLICA-JSON]
        local reps="" k
        for k in $(seq "$1"); do reps="$reps${reps:+, }{\"model\": \"g2\", \"batch\": 4, \"share\": 50}"; done
        cat >"$tmp/plan.json" <<JSON
{"schema_version": 1, "models": [{"name": "deep_a", "rate": 100, "slo_ms": 10000},
                                 {"name": "deep_b", "rate": 100, "slo_ms": 10000}],
 "merge_groups": [{"name": "g2", "kind": "shared", "members": ["deep_a", "deep_b"]}],
 "gpus": [{"type": "t4", "replicas": [$reps${2:+, $2}]}]}
JSON
    }
    plan 2
    if start_server "$tmp/C" --plan "$tmp/plan.json" && wait_ready; then
        urlA=$url srvA=$srv
        gfile="usher-group-g2-$srvA\\.onnx"
        w=$(workers_are 2 "$gfile") && ok "serve --plan: group g2 on 2 workers ($w)" ||
            fail "serve --plan: workers '$w'"
        plan 1
        under_load "$tmp/ledger_c.json"
        hup 1 || fail "plan SIGHUP 1 not answered"
        all_ok "$tmp/ledger_c.json" "plan file: group 2 -> 1 replica under load"
        w1=$(workers_are 1 "$gfile") && [ "$(ig_count deep_a)" = 1 ] &&
            ok "plan file SIGHUP: g2 went to 1 worker ($w1)" ||
            fail "plan file SIGHUP: workers '$w1', config $(ig_count deep_a)"
        # the members change: the group is dropped from the plan, its members placed alone
        cat >"$tmp/plan.json" <<'JSON'
{"schema_version": 1, "models": [{"name": "deep_a", "rate": 100, "slo_ms": 10000},
                                 {"name": "deep_b", "rate": 100, "slo_ms": 10000}],
 "gpus": [{"type": "t4", "replicas": [{"model": "deep_a", "batch": 4, "share": 50},
                                      {"model": "deep_b", "batch": 4, "share": 50}]}]}
JSON
        hup 2 || fail "plan SIGHUP 2 not answered"
        grep -q "merge group 'g2': the new plan is not applied: its members would change (model 'deep_a' leaves it)" "$tmp/serve.log" &&
            [ "$(workers_are 1 "$gfile")" = "$w1" ] &&
            ok "a plan that drops the group is refused with the reason; g2 serves on as it was" ||
            fail "members change: $(grep -E "g2|not applied" "$tmp/serve.log")"
        # a member placed alone as well as in its group
        plan 1 '{"model": "deep_b", "batch": 4, "share": 50}'
        hup 3 || fail "plan SIGHUP 3 not answered"
        grep -q "field 'gpus\[0\].replicas\[1\].model': 'deep_b' is a member of merge group 'g2' (merge_groups\[0\]) and is placed alone too" "$tmp/serve.log" &&
            [ "$(workers_are 1 "$gfile")" = "$w1" ] &&
            ok "a plan placing a member alone too is refused at SIGHUP: $(grep -o "'deep_b' is a member.*" "$tmp/serve.log" | head -1 | cut -c1-90)" ||
            fail "member alone and grouped at SIGHUP: $(tail -5 "$tmp/serve.log")"
        $py "$client" compare "$urlA" "$urlB" "$tmp/ledger_c.json" $D --rounds 1 >"$tmp/c.out" 2>&1 &&
            ok "after the refused plans the members still answer as alone" ||
            fail "compare after refusals: $(cat "$tmp/c.out")"
        ledger_check "$tmp/ledger_c.json" $D
        kill "$srvA" 2>/dev/null
        wait "$srvA" 2>/dev/null
        cp "$tmp/serve.log" "$tmp/serveC_final.log"
        if start_server "$tmp/C" --plan "$tmp/plan.json"; then
            fail "serve --plan with a member placed alone too started"
            kill "$srv" 2>/dev/null
        else
            grep -q "'deep_b' is a member of merge group 'g2'" "$tmp/serve.log" &&
                ok "serve --plan refuses it at start: $(grep -o "plan.json:[0-9]*: .*" "$tmp/serve.log" | head -1 | cut -c1-120)" ||
                fail "start with a member alone too: $(cat "$tmp/serve.log")"
        fi
    else
        fail "serve --plan does not start: $(cat "$tmp/serve.log")"
    fi
    kill "$srvA" "$srvB" 2>/dev/null
    wait "$srvA" "$srvB" 2>/dev/null
    srv=
    # the sanitizers' reports (an ASan build), from the servers' stops included
    grep -h -E "Sanitizer|runtime error" "$tmp/serveA_final.log" "$tmp/serveC_final.log" \
        "$tmp/serve.log" 2>/dev/null | head -5 |
        grep . && fail "sanitizer reports in the servers' logs" ||
        ok "no sanitizer report in the servers' logs"
    echo "test_serve_merge reload: $fails failure(s)"
    [ $fails -eq 0 ]
    exit
fi

if [ "$mode" = npm ]; then
    deps=${USHER_TEST_DEPS:-$src/.deps/npm}
    vad=$deps/ricky0123-vad-web/package/dist
    oww=$deps/openwakeword-js/package/models
    for f in "$vad/silero_vad_v5.onnx" "$vad/silero_vad_v6.onnx" "$oww/hello_deepa_old.onnx" \
        "$oww/namaste_deepa.onnx"; do
        [ -f "$f" ] || { echo "SKIP: $f is not there (run scripts/deps.sh)"; exit 77; }
    done
    for side in A B; do
        g() { [ $side = A ] && echo "merge_group: $1"; }
        model "$tmp/$side" silero_v5 "$vad/silero_vad_v5.onnx" "$(g vad)" "merge_shape: input=1x512,state=2x1x128" "merge_value: sr=16000"
        model "$tmp/$side" silero_v6 "$vad/silero_vad_v6.onnx" "$(g vad)"
        model "$tmp/$side" hello_deepa_old "$oww/hello_deepa_old.onnx" "$(g oww)"
        model "$tmp/$side" namaste_deepa "$oww/namaste_deepa.onnx" "$(g oww)"
    done
    start_both "$tmp/A" "$tmp/B" || exit 1
    grep -q "not used" "$tmp/serveA.log" && fail "a group fell back: $(grep 'not used' "$tmp/serveA.log")"
    for grp in vad oww; do
        [ -n "$(metric "usher_merge_group_batches_total{group=\"$grp\"}")" ] &&
            ok "group $grp in use" || fail "group $grp not in /metrics: $(cat "$tmp/serveA.log")"
    done
    $py "$client" compare "$urlA" "$urlB" "$tmp/ledger.json" silero_v5 silero_v6 \
        --shape input=1x512 --shape state=2x1x128 --value sr=16000 --rounds 3 >"$tmp/c.out" 2>&1 &&
        ok "silero v5 + v6: $(tail -1 "$tmp/c.out")" || fail "silero: $(cat "$tmp/c.out")"
    $py "$client" compare "$urlA" "$urlB" "$tmp/ledger.json" hello_deepa_old namaste_deepa \
        --rounds 3 >"$tmp/c.out" 2>&1 &&
        ok "openwakeword pair: $(tail -1 "$tmp/c.out")" || fail "openwakeword: $(cat "$tmp/c.out")"
    before=$(metric 'usher_merge_group_mixed_batches_total{group="vad"}')
    $py "$client" mixed "$urlA" "$tmp/ledger.json" silero_v5 silero_v6 --shape input=1x512 \
        --shape state=2x1x128 --value sr=16000 --threads 6 --requests 20 >"$tmp/m.out" 2>&1 ||
        fail "mixed vad: $(cat "$tmp/m.out")"
    $py "$client" mixed "$urlA" "$tmp/ledger.json" hello_deepa_old namaste_deepa --threads 6 \
        --requests 20 >"$tmp/m2.out" 2>&1 || fail "mixed oww: $(cat "$tmp/m2.out")"
    for grp in vad oww; do
        mixed=$(metric "usher_merge_group_mixed_batches_total{group=\"$grp\"}")
        [ "${mixed:-0}" -gt 0 ] && ok "group $grp: $mixed runs served both members at once" ||
            fail "group $grp: no mixed run ($(curl -s "$urlA/metrics" | grep merge_group))"
    done
    ledger_check "$tmp/ledger.json" silero_v5 silero_v6 hello_deepa_old namaste_deepa
    stop_both
    echo "test_serve_merge npm: $fails failure(s)"
    [ $fails -eq 0 ]
    exit
fi

# ---- the fine-tuned variants ------------------------------------------------------------
ft=${USHER_TEST_FT:-}
if [ -z "$ft" ]; then
    ft=$tmp/ft
    $py "$src/scripts/make_finetuned.py" "$ft" 4 >"$tmp/ft.log" 2>&1 ||
        { echo "FAIL make_finetuned.py: $(tail -5 "$tmp/ft.log")"; exit 1; }
fi
$py "$src/tests/make_merge_models.py" "$tmp/mm" >/dev/null || { echo "FAIL make_merge_models.py"; exit 1; }
V="variant0 variant1 variant2 variant3"
for side in A B; do
    g() { [ $side = A ] && echo "merge_group: $1"; }
    for v in $V; do
        model "$tmp/$side" "$v" "$ft/$v.onnx" "max_batch: 8" "$(g ft)"
    done
    # two MLPs one ulp apart: verified to 1.3e-7 x scale, refused at 1e-9
    model "$tmp/$side" mlp_a "$tmp/mm/mlp_a.onnx" "$(g mlp)" "merge_tolerance: 1e-9"
    model "$tmp/$side" mlp_b "$tmp/mm/mlp_b.onnx" "$(g mlp)"
    # stacked (forced: the merger's timing would drop it for side-by-side on a slow CPU)
    model "$tmp/$side" st_a "$tmp/mm/mlp_a.onnx" "max_batch: 4" "$(g st)" "merge_kind: stacked"
    model "$tmp/$side" st_c "$tmp/mm/mlp_c.onnx" "max_batch: 4" "$(g st)"
done
start_both "$tmp/A" "$tmp/B" || exit 1
[ -n "$(metric 'usher_merge_group_batches_total{group="ft"}')" ] &&
    ! grep -q "merge group 'ft' not used" "$tmp/serveA.log" && ok "group ft merged and in use" ||
    fail "group ft: $(cat "$tmp/serveA.log")"
# the fallback: a warning naming the group and the verification, both members served alone
if grep -q "merge group 'mlp' not used: verification failed.*served separately" "$tmp/serveA.log" &&
    [ -z "$(metric 'usher_merge_group_batches_total{group="mlp"}')" ]; then
    $py "$client" compare "$urlA" "$urlB" "$tmp/ledger_mlp.json" mlp_a mlp_b >"$tmp/c.out" 2>&1 &&
        ok "failed verification: $(grep -o "merge group 'mlp' not used: [^;]*" "$tmp/serveA.log" | head -c 200); members served separately and answer as alone" ||
        fail "mlp fallback: $(cat "$tmp/c.out")"
else
    fail "mlp fallback: no warning or group in use: $(cat "$tmp/serveA.log")"
fi
if [ -n "$(metric 'usher_merge_group_batches_total{group="st"}')" ]; then
    $py "$client" compare "$urlA" "$urlB" "$tmp/ledger_st.json" st_a st_c --rounds 4 \
        >"$tmp/c.out" 2>&1 || fail "stacked: $(cat "$tmp/c.out")"
    $py "$client" mixed "$urlA" "$tmp/ledger_st.json" st_a st_c --threads 4 --requests 10 \
        >"$tmp/m.out" 2>&1 || fail "stacked mixed: $(cat "$tmp/m.out")"
    fill=$(metric 'usher_merge_group_filler_rows_total{group="st"}')
    [ "${fill:-0}" -gt 0 ] && ok "stacked group: members answer as alone ($(tail -1 "$tmp/c.out")), $fill filler rows padded the other member" ||
        fail "stacked group: no filler rows ($(curl -s "$urlA/metrics" | grep merge_group))"
    ledger_check "$tmp/ledger_st.json" st_a st_c
else
    fail "stacked group st not in use: $(cat "$tmp/serveA.log")"
fi
$py "$client" compare "$urlA" "$urlB" "$tmp/ledger.json" $V --data "x=$ft/sample_x.bin" \
    --rounds 4 >"$tmp/c.out" 2>&1 && ok "ft members answer as alone: $(tail -1 "$tmp/c.out")" ||
    fail "ft compare: $(cat "$tmp/c.out")"
$py "$client" mixed "$urlA" "$tmp/ledger.json" $V --threads 8 --requests 25 >"$tmp/m.out" 2>&1 ||
    fail "mixed: $(cat "$tmp/m.out")"
mixed=$(metric 'usher_merge_group_mixed_batches_total{group="ft"}')
runs=$(metric 'usher_merge_group_batches_total{group="ft"}')
[ "${mixed:-0}" -gt 0 ] && ok "mixed traffic: $mixed of $runs runs served two or more members" ||
    fail "mixed traffic: no run served two members ($(curl -s "$urlA/metrics" | grep merge_group))"
ledger_check "$tmp/ledger.json" $V
stop_both
echo "test_serve_merge: $fails failure(s)"
[ $fails -eq 0 ]
