#!/usr/bin/env bash
# test_sim_groups.sh - usher simulate and usher compare on a plan with a merge group, end to
# end (issue 15 item 5, issue 14; docs/simulator.md "Merge groups"). tests/test_sim_groups.c
# tests the engine's pieces by hand.
#
#   - the 4 fine-tuned variants of scripts/make_finetuned.py (python3-torch, real SGD steps;
#     USHER_TEST_FT=DIR reuses a folder of them) at 2,000 req/s each beside resnet18 and
#     mlp_c, planned by `usher plan` (merge auto: one group of the 4) and with --merge off;
#   - both simulated on the same arrivals (same seed): the grouped plan serves every
#     member's rate within its SLO (>= 99% each), names merge-1 for each variant and runs
#     merged batches (most of them mixed); the figures of both (GPUs, $/h, goodput, p99)
#     are printed; the grouped plan's JSON is the same bytes on a second run;
#   - a plan whose group names a model the workload lacks is refused, naming the group and
#     the model; a plan with a group and a measured --profile table is refused;
#   - usher compare (merge auto by default) keeps USHER's group and says so, the baseline
#     plans alone; --merge off plans USHER alone; re-planning in the loop keeps the group.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
src=${USHER_SOURCE_DIR:?run through ctest}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }

ft=${USHER_TEST_FT:-}
if [ -z "$ft" ]; then
    ft=$tmp/ft
    $py "$src/scripts/make_finetuned.py" "$ft" 4 >"$tmp/ft.log" 2>&1 ||
        { echo "FAIL make_finetuned.py: $(tail -5 "$tmp/ft.log")"; exit 1; }
fi
$py "$src/tests/make_merge_models.py" "$tmp/mm" >/dev/null || { echo "FAIL make_merge_models.py"; exit 1; }
V="variant0 variant1 variant2 variant3"

# block style: usher compare --loads and the re-plans rewrite the rates
{
    echo "models:"
    for v in $V; do printf '  - name: %s\n    model: %s\n    rate: 2000\n    slo_ms: 20\n' "$v" "$ft/$v.onnx"; done
    printf '  - name: resnet18\n    model: %s\n    rate: 1300\n    slo_ms: 50\n' "$src/models/zoo/resnet18.onnx"
    printf '  - name: mlp_c\n    model: %s\n    rate: 100\n    slo_ms: 20\n' "$tmp/mm/mlp_c.onnx"
} >"$tmp/workload.yaml"
printf 'gpus:\n  - {type: t4, max: 64}\n' >"$tmp/cluster.yaml"
"$usher" plan --workload "$tmp/workload.yaml" --cluster "$tmp/cluster.yaml" -o "$tmp/plan.json" \
    --quiet >"$tmp/plan.txt" 2>&1 || { echo "FAIL usher plan: $(cat "$tmp/plan.txt")"; exit 1; }
"$usher" plan --workload "$tmp/workload.yaml" --cluster "$tmp/cluster.yaml" --merge off \
    -o "$tmp/alone.json" --quiet >"$tmp/alone.txt" 2>&1 ||
    { echo "FAIL usher plan --merge off: $(cat "$tmp/alone.txt")"; exit 1; }
grep -q '"merge_groups"' "$tmp/plan.json" && ! grep -q '"merge_groups"' "$tmp/alone.json" &&
    ok "plans: one with merge_groups, one without" || fail "plans: $(grep -c merge_groups "$tmp/plan.json" "$tmp/alone.json")"

sim() { "$usher" simulate --workload "$tmp/workload.yaml" --duration 10 --seed 5 --quiet --json "$@"; }
sim --plan "$tmp/plan.json" >"$tmp/g.json" 2>"$tmp/g.err" || fail "simulate grouped: $(cat "$tmp/g.err")"
sim --plan "$tmp/plan.json" >"$tmp/g2.json" 2>&1
sim --plan "$tmp/alone.json" >"$tmp/a.json" 2>"$tmp/a.err" || fail "simulate alone: $(cat "$tmp/a.err")"
cmp -s "$tmp/g.json" "$tmp/g2.json" && ok "grouped: the same seed gives the same bytes" ||
    fail "grouped: two runs differ"
check=$($py - "$tmp/g.json" "$tmp/a.json" <<'EOF'
import json, sys
g, a = (json.load(open(f)) for f in sys.argv[1:3])
bad = []
members = ["variant0", "variant1", "variant2", "variant3"]
gm = {m["name"]: m for m in g["models"]}
for v in members:
    m = gm[v]
    if m.get("group") != "merge-1":
        bad.append("%s group %s" % (v, m.get("group")))
    if m["slo_attainment_pct"] < 99 or m["goodput"] < 0.97 * m["rate"]:
        bad.append("%s: %.2f%% in SLO, goodput %.1f of %.1f" % (v, m["slo_attainment_pct"], m["goodput"], m["rate"]))
for x in ("resnet18", "mlp_c"):
    if "group" in gm[x]:
        bad.append("%s has a group" % x)
    if gm[x]["slo_attainment_pct"] < 99:
        bad.append("%s: %.2f%% in SLO" % (x, gm[x]["slo_attainment_pct"]))
grp = g.get("merge_groups", [])
if len(grp) != 1 or grp[0]["members"] != members:
    bad.append("merge_groups %s" % grp)
else:
    x = grp[0]
    req = sum(gm[v]["served"] for v in members)
    # merged runs: fewer runs than requests, most of them carrying two members or more
    if not (0 < x["batches"] < req and x["mixed_batches"] > x["batches"] / 2 and x["mean_batch"] > 1):
        bad.append("runs %s for %d requests" % (x, req))
if "merge_groups" in a or any("group" in m for m in a["models"]):
    bad.append("the plan without groups reports one")
def figs(r, label):
    p99 = max(m["p99_ms"] for m in r["models"] if m["name"] in members)
    return "%s %d GPUs $%.3f/h goodput %.0f req/s (%.2f%% in SLO), variants' p99 %.3f ms" % (
        label, r["gpus_used"], r["cost_per_hour"], r["goodput"], r["slo_attainment_pct"], p99)
if g["gpus_used"] > a["gpus_used"]:
    bad.append("the group takes more GPUs")
if bad:
    print("; ".join(bad))
    sys.exit(1)
print(figs(g, "merged:") + "; " + figs(a, "alone:") + "; %d merged runs, %d mixed, %.2f rows a run" % (
    grp[0]["batches"], grp[0]["mixed_batches"], grp[0]["mean_batch"]))
EOF
) && ok "simulated on the same arrivals: $check" || fail "simulated: $check"

# refused: a group naming a model the workload lacks; a group with a measured table
$py - "$tmp/plan.json" "$tmp/ghost.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
ghost = dict(p["models"][0]); ghost["name"] = "ghost"
p["models"].append(ghost)
p["merge_groups"][0]["members"].append("ghost")
json.dump(p, open(sys.argv[2], "w"), indent=1)
EOF
out=$(sim --plan "$tmp/ghost.json" 2>&1) && fail "a member not in the workload was simulated" ||
    { echo "$out" | grep -q "field 'merge_groups\[0\].members\[4\]': merge group 'merge-1' names model 'ghost', which is not in" &&
        ok "refused: $(echo "$out" | head -c 200)" || fail "ghost member: $out"; }
{
    echo "model,batch,latency_ms"
    for m in $V resnet18 mlp_c; do echo "$m,1,1"; echo "$m,64,5"; done
} >"$tmp/prof.csv"
out=$(sim --plan "$tmp/plan.json" --profile "$tmp/prof.csv" 2>&1) && fail "a group with a measured table was simulated" ||
    { echo "$out" | grep -q "merge group 'merge-1': no profile of merged graphs" &&
        ok "refused with --profile: $(echo "$out" | head -c 160)" || fail "--profile: $out"; }

# usher compare: USHER's plan keeps its group (merge auto), the baseline plans alone
"$usher" compare --workload "$tmp/workload.yaml" --cluster "$tmp/cluster.yaml" --policies usher,gpulet \
    --duration 5 --quiet --json >"$tmp/c.json" 2>"$tmp/c.err" || fail "compare: $(cat "$tmp/c.err")"
"$usher" compare --workload "$tmp/workload.yaml" --cluster "$tmp/cluster.yaml" --policies usher \
    --duration 5 --quiet --merge off --json >"$tmp/c_off.json" 2>"$tmp/c_off.err" ||
    fail "compare --merge off: $(cat "$tmp/c_off.err")"
check=$($py - "$tmp/c.json" "$tmp/c_off.json" <<'EOF'
import json, sys
c, off = (json.load(open(f)) for f in sys.argv[1:3])
u, g = c["policies"]
uo = off["policies"][0]
bad = []
if not all(m.get("group") == "merge-1" for m in u["models"][:4]):
    bad.append("usher's members: %s" % [m.get("group") for m in u["models"]])
if any("group" in m for m in g["models"]) or any("group" in m for m in uo["models"]):
    bad.append("a group in gpulet's or --merge off's")
if not (u["serves_offered_load"] and u["cost_per_hour"] < uo["cost_per_hour"]):
    bad.append("usher $%.3f/h serves %s, --merge off $%.3f/h" % (u["cost_per_hour"], u["serves_offered_load"], uo["cost_per_hour"]))
print("; ".join(bad) if bad else "usher %d GPUs $%.3f/h (group), --merge off %d GPUs $%.3f/h, gpulet %d GPUs $%.3f/h" % (
    u["gpus"], u["cost_per_hour"], uo["gpus"], uo["cost_per_hour"], g["gpus"], g["cost_per_hour"]))
sys.exit(1 if bad else 0)
EOF
) && ok "compare: $check" || fail "compare: $check"

"$usher" compare --workload "$tmp/workload.yaml" --cluster "$tmp/cluster.yaml" --merge maybe \
    >"$tmp/bad.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "usher compare: --merge is auto, on or off, not 'maybe'" "$tmp/bad.out" &&
    ok "compare --merge maybe: usage error" || fail "compare --merge maybe: exit $rc, $(cat "$tmp/bad.out")"

# re-planning in the loop keeps the group: nothing moves at the same rates
out=$("$usher" simulate --plan "$tmp/plan.json" --workload "$tmp/workload.yaml" --duration 6 --quiet \
    --replan-every 2 --cluster "$tmp/cluster.yaml" --json 2>&1)
echo "$out" | $py -c '
import json, sys
r = json.load(sys.stdin)
ch = r["replanning"]["changes"]
g = r.get("merge_groups", [])
ok = g and g[0]["name"] == "merge-1" and r["slo_attainment_pct"] >= 99 and len(ch) == 2 and \
    all(c["started"] == 0 and c["stopped"] == 0 for c in ch)
print("%d re-plans, %s started, group %s, %.2f%% in SLO" % (len(ch), [c["started"] for c in ch],
      g[0]["name"] if g else None, r["slo_attainment_pct"]))
sys.exit(0 if ok else 1)' >"$tmp/rp.txt" 2>&1 && ok "re-planning keeps the group: $(cat "$tmp/rp.txt")" ||
    fail "re-planning: $(cat "$tmp/rp.txt"; echo "$out" | head -5)"
exit $failed
