#!/usr/bin/env bash
# test_plan_groups.sh - merge groups chosen by the planner, end to end (issue 15 item 5;
# docs/merge.md "Merge groups in the plan"). tests/test_plan_groups.c tests the pieces.
#
#   - `usher plan` on the 4 fine-tuned variants of scripts/make_finetuned.py (python3-torch,
#     real SGD steps) beside resnet18 (zoo, graph-only) and mlp_c (tests/make_merge_models.py,
#     another graph): plan.json names one merge group of exactly the 4 variants, costs less
#     than `--merge off` with every rate served, and the table names the group;
#   - `usher plan --policy gpulet` (a baseline) writes no group unless --merge on;
#   - `usher plan --replan plan.json` keeps the group (no replica started or stopped);
#   - `usher serve --plan plan.json` on a repository of the variants and mlp_c (no
#     merge_group in any usher.yaml) serves the plan's group as one merged worker: the log
#     names it, /metrics counts its runs, and every member answers as the same model served
#     alone by a second server (tests/test_serve_merge.py compare: seeded random inputs of 1
#     and 3 rows and the task's real samples, within 1e-5 x the output's scale);
#   - on a cluster with nodes: `usher export k8s` writes a Service per member (none for the
#     group) and the node's slice keeps the group; `usher serve --node` forms it and its
#     members answer as alone; `usher export triton` refuses a plan with groups;
#   - a plan whose group is malformed (one member; a member not in models[]) is refused by
#     `usher serve --plan`, naming the field.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
src=${USHER_SOURCE_DIR:?run through ctest}
py=/usr/bin/python3
client=$src/tests/test_serve_merge.py
. "$src/tests/serve_lib.sh"

ft=${USHER_TEST_FT:-}
if [ -z "$ft" ]; then
    ft=$tmp/ft
    $py "$src/scripts/make_finetuned.py" "$ft" 4 >"$tmp/ft.log" 2>&1 ||
        { echo "FAIL make_finetuned.py: $(tail -5 "$tmp/ft.log")"; exit 1; }
fi
$py "$src/tests/make_merge_models.py" "$tmp/mm" >/dev/null || { echo "FAIL make_merge_models.py"; exit 1; }
V="variant0 variant1 variant2 variant3"

# ---- the plan ----------------------------------------------------------------------------
{
    echo "models:"
    for v in $V; do echo "  - {name: $v, model: $ft/$v.onnx, rate: 2000, slo_ms: 20}"; done
    echo "  - {name: resnet18, model: $src/models/zoo/resnet18.onnx, rate: 1300, slo_ms: 50}"
    echo "  - {name: mlp_c, model: $tmp/mm/mlp_c.onnx, rate: 100, slo_ms: 20}"
} >"$tmp/workload.yaml"
printf 'gpus:\n  - {type: t4, max: 64}\n' >"$tmp/cluster.yaml"
"$usher" plan --workload "$tmp/workload.yaml" --cluster "$tmp/cluster.yaml" -o "$tmp/plan.json" \
    >"$tmp/plan.txt" 2>&1 || fail "usher plan: $(cat "$tmp/plan.txt")"
"$usher" plan --workload "$tmp/workload.yaml" --cluster "$tmp/cluster.yaml" --merge off \
    -o "$tmp/alone.json" >"$tmp/alone.txt" 2>&1 || fail "usher plan --merge off: $(cat "$tmp/alone.txt")"
check=$($py - "$tmp/plan.json" "$tmp/alone.json" <<'EOF'
import json, sys
on, off = (json.load(open(f)) for f in sys.argv[1:3])
g = on.get("merge_groups", [])
bad = []
if len(g) != 1 or g[0]["members"] != ["variant0", "variant1", "variant2", "variant3"]:
    bad.append("groups %s" % g)
if "merge_groups" in off:
    bad.append("--merge off wrote groups")
for p in (on, off):
    if not p["feasible"] or any(m["goodput"] < m["rate"] * (1 - 1e-6) for m in p["models"]):
        bad.append("a rate unserved in %s" % p["models"])
if [m["name"] for m in on["models"]] != [m["name"] for m in off["models"]]:
    bad.append("models[] differ")
if not on["totals"]["cost_per_hour"] < off["totals"]["cost_per_hour"]:
    bad.append("not cheaper")
reps = [r for gp in on["gpus"] for r in gp["replicas"]]
if not any(r["model"] == g[0]["name"] for r in reps if g) or any(r["model"].startswith("variant") for r in reps):
    bad.append("replicas %s" % [r["model"] for r in reps])
print("; ".join(bad) if bad else "merged: %d GPUs, $%.3f/h; alone: %d GPUs, $%.3f/h; %s %s" % (
    on["totals"]["gpus"], on["totals"]["cost_per_hour"], off["totals"]["gpus"],
    off["totals"]["cost_per_hour"], g[0]["name"], g[0]["kind"]))
sys.exit(1 if bad else 0)
EOF
) && ok "plan: $check" || fail "plan: $check"
grep -q "merge group merge-1 (shared" "$tmp/plan.txt" && ok "the table names the group" ||
    fail "table: $(head -5 "$tmp/plan.txt")"
"$usher" plan --workload "$tmp/workload.yaml" --cluster "$tmp/cluster.yaml" --policy gpulet \
    -o "$tmp/g.json" --quiet >/dev/null 2>&1
"$usher" plan --workload "$tmp/workload.yaml" --cluster "$tmp/cluster.yaml" --policy gpulet \
    --merge on -o "$tmp/g2.json" --quiet >/dev/null 2>&1
if ! grep -q merge_groups "$tmp/g.json" && grep -q merge_groups "$tmp/g2.json"; then
    ok "baseline gpulet: no group unless --merge on"
else
    fail "baseline gpulet: groups $(grep -c merge_groups "$tmp/g.json") without, $(grep -c merge_groups "$tmp/g2.json") with --merge on"
fi

# re-planning keeps the running plan's group: nothing restarts at the same rates
"$usher" plan --workload "$tmp/workload.yaml" --cluster "$tmp/cluster.yaml" --replan "$tmp/plan.json" \
    -o "$tmp/re.json" >"$tmp/re.txt" 2>&1 || fail "replan: $(cat "$tmp/re.txt")"
re=$($py -c "
import json, sys
p = json.load(open('$tmp/re.json'))
g = p.get('merge_groups', [])
print('%s started %d stopped %d' % (g[0]['name'] if g else 'no group', p['replan']['started'], p['replan']['stopped']))
sys.exit(0 if g and g[0]['members'] == ['variant0', 'variant1', 'variant2', 'variant3'] and p['replan']['started'] == 0 and p['replan']['stopped'] == 0 and p['feasible'] else 1)") &&
    ok "replan keeps the group: $re" || fail "replan: $re"

# ---- serving the plan's group ------------------------------------------------------------
model() {
    local dir=$1 name=$2 file=$3
    mkdir -p "$dir/$name/1"
    cp "$file" "$dir/$name/1/model.onnx"
    printf '%s\n' "replicas: 1" "threads: 1" "max_batch: 8" >"$dir/$name/usher.yaml"
}
for side in A B; do
    for v in $V; do model "$tmp/$side" "$v" "$ft/$v.onnx"; done
    model "$tmp/$side" mlp_c "$tmp/mm/mlp_c.onnx"
done
start_server "$tmp/A" --plan "$tmp/plan.json" || { fail "server A (--plan) does not start"; exit 1; }
urlA=$url srvA=$srv
url=$urlA wait_ready || fail "server A not ready: $(cat "$tmp/serve.log")"
cp "$tmp/serve.log" "$tmp/serveA.log" # the groups are formed before the models are ready
start_server "$tmp/B" || { fail "server B does not start"; kill "$srvA"; exit 1; }
urlB=$url srvB=$srv
srv=$srvA
url=$urlB wait_ready || fail "server B not ready"
! grep -q "not used\|warn" "$tmp/serveA.log" && ok "serve --plan: merge-1 formed from the plan, no warning" ||
    fail "serve --plan: $(cat "$tmp/serveA.log")"
$py "$client" compare "$urlA" "$urlB" "$tmp/ledger.json" $V --data "x=$ft/sample_x.bin" \
    --rounds 2 >"$tmp/c.out" 2>&1 && ok "members answer as alone: $(tail -1 "$tmp/c.out")" ||
    fail "compare: $(tail -20 "$tmp/c.out")"
$py "$client" compare "$urlA" "$urlB" "$tmp/ledger_mlp.json" mlp_c --rounds 2 >"$tmp/c2.out" 2>&1 &&
    ok "mlp_c (not merged) answers as alone: $(tail -1 "$tmp/c2.out")" ||
    fail "compare mlp_c: $(tail -20 "$tmp/c2.out")"
$py "$client" mixed "$urlA" "$tmp/ledger.json" $V --threads 8 --requests 10 >"$tmp/m.out" 2>&1 ||
    fail "mixed: $(cat "$tmp/m.out")"
runs=$(curl -s "$urlA/metrics" | awk '$1 == "usher_merge_group_batches_total{group=\"merge-1\"}" { print $2 }')
mixed=$(curl -s "$urlA/metrics" | awk '$1 == "usher_merge_group_mixed_batches_total{group=\"merge-1\"}" { print $2 }')
[ "${runs:-0}" -gt 0 ] && ok "/metrics: merge-1 ran $runs batches (${mixed:-0} of them for two members or more)" ||
    fail "/metrics: no merge-1 runs ($(curl -s "$urlA/metrics" | grep merge_group | head -5))"
kill "$srvA" 2>/dev/null
wait "$srvA" 2>/dev/null
srv=

# ---- a node's slice: export k8s and usher serve --node ----------------------------------------
printf 'nodes:\n  - {name: node-a}\ngpus:\n  - {type: t4, max: 8, node: node-a}\n' >"$tmp/cn.yaml"
"$usher" plan --workload "$tmp/workload.yaml" --cluster "$tmp/cn.yaml" -o "$tmp/pn.json" --quiet \
    >/dev/null 2>&1
if grep -q merge_groups "$tmp/pn.json" &&
    "$usher" export k8s --plan "$tmp/pn.json" -o "$tmp/k8s" >"$tmp/k8s.log" 2>&1 &&
    [ -f "$tmp/k8s/service-variant0.yaml" ] && [ -f "$tmp/k8s/service-variant3.yaml" ] &&
    ! ls "$tmp/k8s" | grep -q merge && grep -q '"merge_groups"' "$tmp/k8s/node-node-a.yaml"; then
    ok "export k8s: a Service per member, none for the group; the node's slice names the group"
else
    fail "export k8s: $(cat "$tmp/k8s.log"; ls "$tmp/k8s")"
fi
"$usher" export triton --plan "$tmp/pn.json" --repo "$tmp/A" --node node-a -o "$tmp/tr" \
    >"$tmp/tr.log" 2>&1 && fail "export triton exported a merge group" ||
    { grep -q "Triton cannot serve a merged group" "$tmp/tr.log" &&
        ok "export triton refuses the group: $(grep -o "names merge groups.*" "$tmp/tr.log" | head -c 100)" || fail "export triton: $(cat "$tmp/tr.log")"; }
# the node's repository: A's models, and resnet18 (graph-only in the plan) as an MLP
cp -r "$tmp/A" "$tmp/C" && model "$tmp/C" resnet18 "$tmp/mm/mlp_c.onnx"
if start_server "$tmp/C" --plan "$tmp/pn.json" --node node-a && wait_ready; then
    runs0=$(curl -s "$url/metrics" | grep -c 'usher_merge_group_batches_total{group="merge-1"}')
    $py "$client" compare "$url" "$urlB" "$tmp/ledger_node.json" $V --rounds 1 >"$tmp/cn.out" 2>&1 &&
        [ "$runs0" -gt 0 ] && ! grep -q "not used" "$tmp/serve.log" &&
        ok "serve --node: the slice's group formed, members answer as alone: $(tail -1 "$tmp/cn.out")" ||
        fail "serve --node: $(tail -5 "$tmp/cn.out"; cat "$tmp/serve.log")"
else
    fail "serve --node does not start: $(cat "$tmp/serve.log")"
fi
kill "$srv" "$srvB" 2>/dev/null
wait "$srv" "$srvB" 2>/dev/null
srv=

# ---- malformed groups ---------------------------------------------------------------------
bad_plan() { # bad_plan NAME PYTHON-EDIT FIELD
    $py - "$tmp/plan.json" "$tmp/$1.json" "$2" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
g = p["merge_groups"][0]
exec(sys.argv[3])
json.dump(p, open(sys.argv[2], "w"))
EOF
    "$usher" serve --repo "$tmp/A" --http-port 0 --plan "$tmp/$1.json" >"$tmp/$1.log" 2>&1 &
    local pid=$!
    for _ in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $pid 2>/dev/null; then
        kill -9 $pid
        fail "$1: served a malformed plan"
        return
    fi
    wait $pid
    local rc=$?
    [ $rc -ne 0 ] && grep -q "$3" "$tmp/$1.log" && ok "$1 refused: $(grep -o "field '[^']*'.*" "$tmp/$1.log" | head -1)" ||
        fail "$1: exit $rc, $(cat "$tmp/$1.log")"
}
bad_plan one_member 'g["members"] = g["members"][:1]' "field 'merge_groups\[0\].members': 2 to 16"
bad_plan unknown_member 'g["members"][2] = "nobody"' "field 'merge_groups\[0\].members\[2\]'"
bad_plan bad_kind 'g["kind"] = "glued"' "field 'merge_groups\[0\].kind'"
echo "test_plan_groups: $fails failure(s)"
[ $fails -eq 0 ]
