#!/usr/bin/env bash
# test_nodes.sh - node-aware planning and the multi-node round trip (issue 18; docs/deploy.md,
# docs/plan-input.md "Nodes and spread").
#
# A 4-node x 8-GPU cluster of two GPU types (A100 80GB on node-a and node-b, V100 16GB on node-c
# and node-d) declared with nodes: (labels, racks, zones) is planned by `usher plan` for five
# small synthetic models (tests/make_mlp.py) asking for spread: node (the file's default), rack
# or zone. The entries' prices make the cheapest placement put every model on node-a, so that
# only anti-affinity brings the other nodes in:
#   plan      every model has replicas in two failure domains of its level at least; all four
#             nodes hold replicas; the table says how many replicas spread added; without
#             spread the same workload sits on one node; a re-plan of the same inputs keeps
#             every replica (node, type, index); a re-plan without node-a keeps the other
#             nodes' replicas and every model still spans two nodes; the exact policy and
#             clusters that cannot honour spread are refused with the reason;
#   export    `usher export k8s` of the plan: one Deployment per node holding exactly the
#             plan's models of the node (labels), a Service per model, the ServiceMonitor
#             (--service-monitor); validated offline when the Kubernetes validator is there
#             (tests/k8s_validate.mjs; else said and skipped);
#   serve     each node's slice served by its own `usher serve --plan P --node NAME` on this
#             machine's CPU: a load run of 8 requests per model, sent round robin to the nodes
#             holding it (as a Service would), all answered 200; every other node answers 404;
#             /v2/models/M/ready is 200 exactly where the plan put M; each process runs exactly
#             the replicas the plan gave its node (/metrics);
#   ready     a node whose model X cannot load reports X not ready, its other model ready,
#             and its pod's readinessProbe (/v2/health/ready) failing; X and Y are answered
#             by other nodes meanwhile;
#   failure   killing any one node's process (SIGKILL, each in turn, restarted after) leaves
#             every model answered by another node.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
src=${USHER_SOURCE_DIR:?run through ctest}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
"$py" -c 'import onnx' 2>/dev/null || { echo "FAIL: python3-onnx is missing (scripts/deps.sh)"; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl is missing (scripts/deps.sh)"; exit 1; }
tmp=$(mktemp -d)
declare -A pid url
cleanup() {
    for q in "${pid[@]}"; do kill -9 "$q" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
nodes="node-a node-b node-c node-d"
models="big-a big-b small-a small-b small-c"

# ---- the models: a repository of five MLPs, and a request for each -------------------
for spec in "big-a 32 512" "big-b 32 512" "small-a 2 64" "small-b 2 64" "small-c 2 64"; do
    set -- $spec
    mkdir -p "$tmp/repo/$1/1"
    "$py" "$src/tests/make_mlp.py" "$tmp/repo/$1/1/model.onnx" "$2" "$3" >/dev/null ||
        { echo "FAIL: make_mlp.py $spec"; exit 1; }
done
"$py" -c 'import json; print(json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16],
    "data": [round(0.05 * i, 2) for i in range(16)]}]}))' >"$tmp/req.json"

cat >"$tmp/cluster.yaml" <<'EOF'
objective: min-cost
nodes:
  - {name: node-a, rack: r1, zone: z1, labels: {usher.dev/pool: a100, topology.kubernetes.io/zone: z1}}
  - {name: node-b, rack: r2, zone: z1, labels: {usher.dev/pool: a100, topology.kubernetes.io/zone: z1}}
  - {name: node-c, rack: r1, zone: z1, labels: {usher.dev/pool: v100, topology.kubernetes.io/zone: z1}}
  - {name: node-d, rack: r2, zone: z2, labels: {usher.dev/pool: v100, topology.kubernetes.io/zone: z2}}
gpus:
  - {type: a100-80gb, count: 8, node: node-a, price_per_hour: 1.0}
  - {type: a100-80gb, count: 8, node: node-b, price_per_hour: 2.0}
  - {type: v100-16gb, count: 8, node: node-c, price_per_hour: 1.5}
  - {type: v100-16gb, count: 8, node: node-d, price_per_hour: 2.5}
EOF
cat >"$tmp/workload.yaml" <<'EOF'
spread: node
models:
  - {name: big-a, model: repo/big-a/1/model.onnx, rate: 2000, slo_ms: 20}
  - {name: big-b, model: repo/big-b/1/model.onnx, rate: 2000, slo_ms: 20, spread: rack}
  - {name: small-a, model: repo/small-a/1/model.onnx, rate: 100, slo_ms: 20}
  - {name: small-b, model: repo/small-b/1/model.onnx, rate: 100, slo_ms: 20, spread: rack}
  - {name: small-c, model: repo/small-c/1/model.onnx, rate: 100, slo_ms: 20, spread: zone}
EOF
grep -v '^spread:' "$tmp/workload.yaml" | sed 's/, spread: [a-z]*//' >"$tmp/workload-nospread.yaml"
(echo "spread: node"; cat "$tmp/workload-nospread.yaml") >"$tmp/workload-node.yaml"

# ---- plan ----------------------------------------------------------------------------------
# spread.py PLAN CLUSTER: every model's replicas over two domains of its level; prints the
# nodes used and each node's models
cat >"$tmp/spread.py" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
nodes = {n["name"]: n for n in p.get("nodes", [])}
level = {m["name"]: m.get("spread") for m in p["models"]}
doms, held = {}, {}
for g in p["gpus"]:
    for r in g["replicas"]:
        lv = level[r["model"]]
        d = g["node"] if lv == "node" else nodes[g["node"]][lv] if lv else g["node"]
        doms.setdefault(r["model"], set()).add(d)
        held.setdefault(g["node"], set()).add(r["model"])
bad = [m for m in level if level[m] and len(doms.get(m, ())) < 2]
for m in sorted(doms):
    print("%s %s: %s" % (m, level[m], " ".join(sorted(doms[m]))))
print("nodes used:", " ".join(sorted(held)))
sys.exit(1 if bad else 0)
PY
(cd "$tmp" && "$usher" plan --workload workload.yaml --cluster cluster.yaml -o plan.json >plan.txt 2>&1)
rc=$?
if [ $rc = 0 ] && "$py" "$tmp/spread.py" "$tmp/plan.json" >"$tmp/spread.out"; then
    ok "plan: every model over two domains of its level ($(tr '\n' ';' <"$tmp/spread.out"))"
else
    cat "$tmp/plan.txt" "$tmp/spread.out"; fail "plan with spread: exit $rc"
fi
grep -q "^nodes used: node-a node-b node-c node-d$" "$tmp/spread.out" &&
    ok "plan: all four nodes hold replicas" || fail "plan: not every node used: $(tail -1 "$tmp/spread.out")"
grep -Eq "^spread: [0-9]+ replicas? added" "$tmp/plan.txt" &&
    ok "plan: $(grep '^spread:' "$tmp/plan.txt")" || fail "plan: no spread line in the table"
"$py" - "$tmp/plan.json" <<'PY' && ok "plan.json: models[].spread and nodes (labels, racks, zones) as declared" || fail "plan.json: spread or nodes"
import json, sys
p = json.load(open(sys.argv[1]))
assert [m.get("spread") for m in p["models"]] == ["node", "rack", "node", "rack", "zone"], p["models"]
n = {x["name"]: x for x in p["nodes"]}
assert n["node-d"] == {"name": "node-d", "rack": "r2", "zone": "z2",
                       "labels": {"topology.kubernetes.io/zone": "z2", "usher.dev/pool": "v100"}}, n
PY
(cd "$tmp" && "$usher" plan --workload workload-nospread.yaml --cluster cluster.yaml -o plan0.json >/dev/null 2>&1)
if "$py" "$tmp/spread.py" "$tmp/plan0.json" | grep -q "^nodes used: node-a$" &&
   ! grep -q '"spread"' "$tmp/plan0.json"; then
    ok "plan without spread: every model on node-a alone (the cheapest); no spread in plan.json"
else
    fail "plan without spread: $("$py" "$tmp/spread.py" "$tmp/plan0.json" | tail -1)"
fi
# re-plan of the same inputs: nothing moves
(cd "$tmp" && "$usher" plan --workload workload.yaml --cluster cluster.yaml --replan plan.json \
    -o plan-same.json >/dev/null 2>&1)
cat >"$tmp/place.py" <<'PY'
import json, sys
def place(f, skip=None):
    p = json.load(open(f))
    # a replica's place: node, GPU type and index, model (a re-plan may re-size its batch
    # when its load changes: kept, reconfigured)
    return sorted((g["node"], g["type"], g["index"], r["model"])
                  for g in p["gpus"] for r in g["replicas"] if g["node"] != skip)
a, b = place(sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else None), place(sys.argv[2])
kept = len(set(a) & set(b))
print("%d of %d kept" % (kept, len(a)))
sys.exit(0 if kept == len(a) else 1)
PY
"$py" "$tmp/place.py" "$tmp/plan.json" "$tmp/plan-same.json" >"$tmp/place.out" &&
    ok "re-plan of the same inputs: every replica kept on its node, GPU type and index ($(cat "$tmp/place.out"))" ||
    fail "re-plan of the same inputs moved replicas: $(cat "$tmp/place.out")"
# rates cut: the replicas that hold the spread are not surplus - nothing stops or starts
sed 's/rate: 2000/rate: 800/; s/rate: 100,/rate: 30,/' "$tmp/workload.yaml" >"$tmp/workload-low.yaml"
(cd "$tmp" && "$usher" plan --workload workload-low.yaml --cluster cluster.yaml --replan plan.json \
    -o plan-low.json >plan-low.txt 2>&1)
if grep -Eq "^re-plan from plan.json: 0 replicas started \(new, moved or restarted\), 0 of [0-9]+ stopped" "$tmp/plan-low.txt" &&
   "$py" "$tmp/place.py" "$tmp/plan.json" "$tmp/plan-low.json" >"$tmp/place.out" &&
   "$py" "$tmp/spread.py" "$tmp/plan-low.json" >/dev/null; then
    ok "re-plan at lower rates: nothing stopped or started, still spread ($(cat "$tmp/place.out"))"
else
    cat "$tmp/plan-low.txt"; fail "re-plan at lower rates moved the spread"
fi
# node-a lost: removed from cluster.yaml
grep -v "node-a" "$tmp/cluster.yaml" >"$tmp/cluster-no-a.yaml"
(cd "$tmp" && "$usher" plan --workload workload.yaml --cluster cluster-no-a.yaml --replan plan.json \
    -o plan-no-a.json >plan-no-a.txt 2>&1)
if "$py" "$tmp/spread.py" "$tmp/plan-no-a.json" >"$tmp/spread-no-a.out" &&
   "$py" "$tmp/place.py" "$tmp/plan.json" "$tmp/plan-no-a.json" node-a >"$tmp/place.out"; then
    ok "re-plan without node-a: every model still over two domains; the other nodes' replicas kept ($(cat "$tmp/place.out"))"
else
    cat "$tmp/plan-no-a.txt" "$tmp/spread-no-a.out" "$tmp/place.out"; fail "re-plan without node-a"
fi
# refusals
refuse() { # LABEL REGEX CLUSTER WORKLOAD [ARGS]
    local label=$1 re=$2 c=$3 w=$4
    shift 4
    (cd "$tmp" && "$usher" plan --workload "$w" --cluster "$c" -o refused.json "$@" >/dev/null 2>refused.err)
    local rc=$?
    if [ "$rc" = 1 ] && grep -Eq "$re" "$tmp/refused.err"; then
        ok "$label: $(head -1 "$tmp/refused.err")"
    else
        fail "$label: exit $rc, '$(cat "$tmp/refused.err")' (want 1 and /$re/)"
    fi
}
refuse "exact refuses spread" "policy 'exact' does not honour spread" cluster.yaml workload.yaml --policy exact
printf 'gpus:\n  - {type: a100-80gb, count: 8, node: node-a}\n' >"$tmp/one-node.yaml"
refuse "one node" "spread: node, but every GPU of one-node.yaml is in node 'node-a'" one-node.yaml workload.yaml
sed 's/, rack: r2//' "$tmp/cluster.yaml" >"$tmp/no-rack.yaml"
refuse "a node without a rack" "spread: rack, but node 'node-b' .* declares no rack" no-rack.yaml workload.yaml
printf 'gpus:\n  - {type: a100-80gb, count: 8}\n  - {type: v100-16gb, count: 8}\n' >"$tmp/no-nodes.yaml"
refuse "GPUs without nodes" "spread: node, but GPU entry 'a100-80gb' of no-nodes.yaml .* has no node" no-nodes.yaml workload.yaml
printf 'nodes:\n  - {name: n1}\n  - {name: n2}\ngpus:\n  - {type: a100-80gb, count: 1, node: n1}\n  - {type: a100-80gb, count: 0, node: n2}\n' >"$tmp/full.yaml"
refuse "no room on another node" "no GPU of full.yaml outside it can take one" full.yaml workload-node.yaml
sed 's/node: node-d,/node: node-e,/' "$tmp/cluster.yaml" >"$tmp/undeclared.yaml"
refuse "an undeclared node" "field 'gpus\[3\].node': node 'node-e' is not declared" undeclared.yaml workload-nospread.yaml
sed 's#usher.dev/pool: a100#usher.dev/pool: "a 100"#' "$tmp/cluster.yaml" >"$tmp/bad-label.yaml"
refuse "a bad label value" "field 'nodes\[0\].labels.usher.dev/pool': a label value" bad-label.yaml workload-nospread.yaml
sed 's/^spread: node/spread: host/' "$tmp/workload.yaml" >"$tmp/bad-spread.yaml"
refuse "a bad spread" "field 'spread': none, node, rack or zone, not 'host'" cluster.yaml bad-spread.yaml

# ---- export --------------------------------------------------------------------------------
(cd "$tmp" && "$usher" export k8s --plan plan.json --cluster cluster.yaml --service-monitor -o k8s \
    >/dev/null 2>"$tmp/export.err") || { cat "$tmp/export.err"; fail "export k8s"; }
"$py" - "$tmp/plan.json" "$tmp/k8s" <<'PY' >"$tmp/export.out" 2>&1 && ok "export: $(cat "$tmp/export.out")" || { cat "$tmp/export.out"; fail "export: manifests against the plan"; }
import json, os, sys, yaml
p = json.load(open(sys.argv[1]))
held = {}
for g in p["gpus"]:
    for r in g["replicas"]:
        held.setdefault(g["node"], set()).add(r["model"])
docs = []
for f in sorted(os.listdir(sys.argv[2])):
    docs += [d for d in yaml.safe_load_all(open(os.path.join(sys.argv[2], f))) if d]
deps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
assert sorted(deps) == ["usher-" + n for n in sorted(held)], sorted(deps)
for n, ms in held.items():
    labels = deps["usher-" + n]["spec"]["template"]["metadata"]["labels"]
    got = {k.split("/", 1)[1] for k, v in labels.items() if k.startswith("model.usher.dev/")}
    assert got == ms, (n, got, ms)
svcs = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Service" and
              d["metadata"]["name"].startswith("usher-model-"))
assert svcs == sorted("usher-model-" + m for m in {m for s in held.values() for m in s}), svcs
# the readiness probe: the one model's own readiness for a pod holding one, every model's
# (/v2/health/ready) for a pod holding several; written for the serve checks below
with open(os.path.join(os.path.dirname(sys.argv[2]), "probes"), "w") as pf:
    for n, ms in sorted(held.items()):
        path = deps["usher-" + n]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
        want = "/v2/models/%s/ready" % next(iter(ms)) if len(ms) == 1 else "/v2/health/ready"
        assert path == want, (n, path, want)
        pf.write("%s %s\n" % (n, path))
sm = [d for d in docs if d["kind"] == "ServiceMonitor"]
assert len(sm) == 1 and sm[0]["apiVersion"] == "monitoring.coreos.com/v1", sm
print("%d Deployments, each labelled with exactly its node's models; %d Services; a ServiceMonitor"
      % (len(deps), len(svcs)))
PY
# --pin-by labels: each Deployment's nodeSelector is its node's labels from cluster.yaml
(cd "$tmp" && "$usher" export k8s --plan plan.json --pin-by labels -o k8s-labels \
    >/dev/null 2>"$tmp/export.err") || { cat "$tmp/export.err"; fail "export k8s --pin-by labels"; }
"$py" - "$tmp/k8s-labels" <<'PY' >"$tmp/export.out" 2>&1 && ok "export --pin-by labels: $(cat "$tmp/export.out")" || { cat "$tmp/export.out"; fail "export --pin-by labels"; }
import os, sys, yaml
want = {n: {"usher.dev/pool": "a100" if n in ("node-a", "node-b") else "v100",
            "topology.kubernetes.io/zone": "z2" if n == "node-d" else "z1"}
        for n in ("node-a", "node-b", "node-c", "node-d")}
seen = 0
for f in sorted(os.listdir(sys.argv[1])):
    for d in yaml.safe_load_all(open(os.path.join(sys.argv[1], f))):
        if d and d["kind"] == "Deployment":
            n = d["metadata"]["name"][len("usher-"):]
            assert d["spec"]["template"]["spec"]["nodeSelector"] == want[n], (n, d["spec"]["template"]["spec"])
            seen += 1
assert seen == 4
print("4 Deployments pinned by their node's labels")
PY
"$py" -c 'import json,sys; p=json.load(open(sys.argv[1])); del p["nodes"]; json.dump(p, open(sys.argv[2], "w"))' \
    "$tmp/plan0.json" "$tmp/plan0-nolabels.json"
if (cd "$tmp" && "$usher" export k8s --plan plan0-nolabels.json --pin-by labels -o k8s-l0 >/dev/null 2>"$tmp/export.err"); then
    fail "export --pin-by labels of a plan without node labels succeeded"
else
    grep -q "node 'node-a' has no labels in plan0-nolabels.json" "$tmp/export.err" &&
        ok "export --pin-by labels refused: $(cat "$tmp/export.err")" || fail "pin-by labels without labels: $(cat "$tmp/export.err")"
fi
mods=$src/.deps/node_modules
if command -v node >/dev/null 2>&1 && [ -f "$mods/kubernetes-models/package.json" ]; then
    if "$py" "$src/tests/export_check.py" yaml2json "$tmp/k8s" "$tmp/docs.json" >/dev/null &&
       node "$src/tests/k8s_validate.mjs" "$mods" "$tmp/docs.json" >"$tmp/validate.out" 2>&1 &&
       "$py" "$src/tests/export_check.py" yaml2json "$tmp/k8s-labels" "$tmp/docs2.json" >/dev/null &&
       node "$src/tests/k8s_validate.mjs" "$mods" "$tmp/docs2.json" >>"$tmp/validate.out" 2>&1; then
        ok "export: the manifests validate, ServiceMonitor included, and so do those pinned by labels ($(tail -1 "$tmp/validate.out"))"
    else
        cat "$tmp/validate.out"; fail "export: the manifests do not validate"
    fi
    # the validator must refuse broken ServiceMonitors: by the CRD's schema, and by selection
    for edit in 'sm["spec"]["endpoints"] = "metrics"' 'sm["spec"]["selector"]["matchLabels"] = {"usher.dev/metrics": "no"}' \
                'sm["spec"]["endpoints"][0]["port"] = "http-metrics"'; do
        "$py" - "$tmp/docs.json" "$tmp/broken.json" "$edit" <<'PY'
import json, sys
docs = json.load(open(sys.argv[1]))
sm = next(d["doc"] for d in docs if d["doc"]["kind"] == "ServiceMonitor")
exec(sys.argv[3])
json.dump(docs, open(sys.argv[2], "w"))
PY
        if node "$src/tests/k8s_validate.mjs" "$mods" "$tmp/broken.json" >"$tmp/broken.out" 2>&1; then
            fail "validator: a broken ServiceMonitor ($edit) passed"
        elif grep -q "ServiceMonitor usher: " "$tmp/broken.out"; then
            ok "validator: refuses a broken ServiceMonitor ($edit): $(grep ServiceMonitor "$tmp/broken.out" | head -1)"
        else
            cat "$tmp/broken.out"; fail "validator: a broken ServiceMonitor ($edit): not for its reason"
        fi
    done
else
    echo "skip: export: no Kubernetes validator (scripts/deps.sh); the manifests were checked against the plan only"
fi

# ---- serve: each node's slice in its own process ---------------------------------------
holds() { # NODE -> the models the plan put on it
    "$py" -c 'import json,sys; print(" ".join(sorted({r["model"] for g in json.load(open(sys.argv[1]))["gpus"] if g["node"]==sys.argv[2] for r in g["replicas"]})))' "$tmp/plan.json" "$1"
}
replicas_of() { # NODE -> how many replicas the plan put on it
    "$py" -c 'import json,sys; print(sum(len(g["replicas"]) for g in json.load(open(sys.argv[1]))["gpus"] if g["node"]==sys.argv[2]))' "$tmp/plan.json" "$1"
}
start() { # NODE [REPO [READY-CODE]]: wait for /v2/health/ready to answer READY-CODE (200)
    rm -f "$tmp/serve-$1.log"
    TMPDIR=$tmp "$usher" serve --repo "${2:-$tmp/repo}" --plan "$tmp/plan.json" --node "$1" --http-port 0 \
        --cpus 1 >"$tmp/serve-$1.log" 2>&1 &
    pid[$1]=$!
    disown "${pid[$1]}"
    url[$1]=
    for _ in $(seq 600); do
        url[$1]=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/serve-$1.log" 2>/dev/null)
        [ -n "${url[$1]}" ] && break
        kill -0 "${pid[$1]}" 2>/dev/null || break
        sleep 0.1
    done
    local code=
    for _ in $(seq 1800); do
        code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "${url[$1]}/v2/health/ready")
        [ "$code" = "${3:-200}" ] && return 0
        kill -0 "${pid[$1]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "  $1: url '${url[$1]}', last ready answer '$code'; its log:"
    sed 's/^/    /' "$tmp/serve-$1.log" | tail -20
    return 1
}
infer() { # NODE MODEL -> HTTP status
    curl -s -m 20 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$tmp/req.json" "${url[$1]}/v2/models/$2/infer"
}
up=1
for n in $nodes; do
    start "$n" || { fail "serve: usher serve --node $n did not become ready"; up=0; }
done
if [ "$up" = 1 ]; then
    bad=0
    # the load run: 8 requests per model, round robin over the nodes holding it
    declare -A answered
    for m in $models; do
        at=()
        for n in $nodes; do case " $(holds "$n") " in *" $m "*) at+=("$n") ;; esac; done
        for i in $(seq 0 7); do
            n=${at[$((i % ${#at[@]}))]}
            code=$(infer "$n" "$m")
            [ "$code" = 200 ] && answered[$n]=$((${answered[$n]:-0} + 1)) ||
                { bad=$((bad + 1)); echo "  $m on $n: $code"; }
        done
    done
    [ "$bad" = 0 ] && ok "load run: 40 requests (8 per model, round robin over the nodes holding it) all answered; per node: $(for n in $nodes; do printf '%s %s ' "$n" "${answered[$n]:-0}"; done)" ||
        fail "load run: $bad requests not answered 200"
    # placement: each node serves exactly the plan's models, with the plan's replicas
    bad=0
    for n in $nodes; do
        h=" $(holds "$n") "
        for m in $models; do
            code=$(infer "$n" "$m")
            ready=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "${url[$n]}/v2/models/$m/ready")
            case "$h" in
                *" $m "*) [ "$code" = 200 ] && [ "$ready" = 200 ] || { bad=$((bad + 1)); echo "  $n $m: infer $code, ready $ready"; } ;;
                *) [ "$code" = 404 ] && [ "$ready" = 404 ] || { bad=$((bad + 1)); echo "  $n $m (not its model): infer $code, ready $ready"; } ;;
            esac
        done
        reps=$(curl -s -m 20 "${url[$n]}/metrics" | grep -c '^usher_replica_batch_duration_seconds_count{')
        [ "$reps" = "$(replicas_of "$n")" ] || { bad=$((bad + 1)); echo "  $n: $reps replicas in /metrics, the plan gives it $(replicas_of "$n")"; }
    done
    # the readiness probe each node's Deployment carries answers 200 on its running server
    while read -r n path; do
        code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "${url[$n]}$path")
        [ "$code" = 200 ] || { bad=$((bad + 1)); echo "  $n: its readinessProbe $path answers $code"; }
    done <"$tmp/probes"
    [ "$bad" = 0 ] && ok "placement: every node answers (200, ready) exactly the models the plan put on it, 404 for the others, runs the plan's replicas, and its Deployment's readinessProbe ($(tr '\n' ';' <"$tmp/probes")) answers 200 ($(for n in $nodes; do printf '%s %s; ' "$n" "$(replicas_of "$n")"; done))" ||
        fail "placement: $bad mismatches"
    # readiness per model: a node whose model X cannot load (its file broken in a copy of the
    # repository) reports X not ready and its other model Y ready; the node's readiness
    # (/v2/health/ready, its pod's readinessProbe) fails, so its pod leaves X's and Y's
    # Services, and both are still answered by other nodes (spread)
    read -r rn _ < <(grep " /v2/health/ready$" "$tmp/probes")
    set -- $(holds "$rn")
    rx=$1 ry=$2
    kill -9 "${pid[$rn]}" 2>/dev/null
    for _ in $(seq 100); do kill -0 "${pid[$rn]}" 2>/dev/null || break; sleep 0.05; done
    cp -r "$tmp/repo" "$tmp/repo-broken"
    head -c 3000 /dev/urandom >"$tmp/repo-broken/$rx/1/model.onnx"
    if start "$rn" "$tmp/repo-broken" 400; then
        # /v2/health/ready is 400 while loading too: wait for Y to be ready, then look
        for _ in $(seq 600); do
            cy=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "${url[$rn]}/v2/models/$ry/ready")
            [ "$cy" = 200 ] && break
            sleep 0.1
        done
        cx=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "${url[$rn]}/v2/models/$rx/ready")
        ch=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "${url[$rn]}/v2/health/ready")
        others=0
        for m in "$rx" "$ry"; do
            for n in $nodes; do
                [ "$n" = "$rn" ] && continue
                case " $(holds "$n") " in *" $m "*) [ "$(infer "$n" "$m")" = 200 ] && { others=$((others + 1)); break; } ;; esac
            done
        done
        [ "$cx" = 400 ] && [ "$cy" = 200 ] && [ "$ch" = 400 ] && [ "$others" = 2 ] &&
            ok "readiness per model: $rn with $rx broken: $rx not ready (400), $ry ready (200), the node's readinessProbe /v2/health/ready 400 (its pod leaves both Services), both answered by other nodes" ||
            fail "readiness per model on $rn: $rx ready $cx, $ry ready $cy, node ready $ch, answered elsewhere $others of 2"
    else
        fail "readiness per model: $rn on the broken repository did not come up with /v2/health/ready 400"
    fi
    kill -9 "${pid[$rn]}" 2>/dev/null
    for _ in $(seq 100); do kill -0 "${pid[$rn]}" 2>/dev/null || break; sleep 0.05; done
    start "$rn" || fail "readiness per model: $rn did not come back"
    # anti-affinity: losing any one node leaves every model served
    for k in $nodes; do
        kill -9 "${pid[$k]}" 2>/dev/null
        for _ in $(seq 100); do kill -0 "${pid[$k]}" 2>/dev/null || break; sleep 0.05; done
        missing=
        for m in $models; do
            served=0
            for n in $nodes; do
                [ "$n" = "$k" ] && continue
                case " $(holds "$n") " in *" $m "*) [ "$(infer "$n" "$m")" = 200 ] && served=1 ;; esac
            done
            [ "$served" = 1 ] || missing="$missing $m"
        done
        [ -z "$missing" ] && ok "failure: $k's process killed: every model still answered by another node" ||
            fail "failure: $k killed: not answered:$missing"
        start "$k" || fail "failure: $k did not come back"
    done
    for q in "${pid[@]}"; do kill "$q" 2>/dev/null; done
    for q in "${pid[@]}"; do
        for _ in $(seq 200); do kill -0 "$q" 2>/dev/null || break; sleep 0.05; done
    done
fi

[ "$fails" = 0 ] && echo "test_nodes: all passed" || echo "test_nodes: $fails failure(s)"
[ "$fails" = 0 ]
