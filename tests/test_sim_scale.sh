#!/usr/bin/env bash
# test_sim_scale.sh - tools/experiments/scale_scenario.py, the script behind
# experiment (c) of docs/simulator.md (issue 14: goodput at 1,000-6,000 GPUs),
# at a size a test can afford:
#   - with one copy of each zoo model at (a)'s 8,000 req/s it writes
#     experiment (a)'s workload (elastic_scenario.py's): the same models,
#     SLOs and rates (to 1e-12), each name with '-0';
#   - with more models than the zoo's 20: copies named by rank, Zipf(0.9)
#     rates by rank summing to the offered total, the cluster of N V100s;
#   - a run of two sizes and two policies gives a row per size and policy
#     (and per size bench_sim_bound's upper bound, which no plan exceeds),
#     each with the plan's and the simulation's figures as their own files
#     hold them, and a second run in another folder writes the same plans
#     and simulation reports, byte for byte (but the plans' two wall-clock
#     fields).
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
src=${USHER_SOURCE_DIR:?run through ctest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
    echo "FAIL $*"
    fails=$((fails + 1))
}
py=python3
scale=$src/tools/experiments/scale_scenario.py
zoo=$src/models/zoo

$py "$src/tools/experiments/elastic_scenario.py" "$usher" "$zoo" "$tmp/a" 8000 ||
    fail "elastic_scenario.py"
$py "$scale" "$usher" "$zoo" "$tmp/c20" --gpus 24 --models-per-gpu 0 --per-gpu 333.33333333333333 \
    --inputs-only || fail "scale_scenario.py --inputs-only (20 models)"
$py "$scale" "$usher" "$zoo" "$tmp/c50" --gpus 50 --models-per-gpu 1 --per-gpu 100 \
    --inputs-only || fail "scale_scenario.py --inputs-only (50 models)"
$py - "$tmp" <<'PY' || fail "the written inputs"
import re, sys
tmp = sys.argv[1]
def models(p):
    t = open(p).read()
    return list(zip(re.findall(r"- name: (\S+)", t), re.findall(r"rate: (\S+)", t),
                    re.findall(r"slo_ms: (\S+)", t), re.findall(r"model: (\S+)", t)))
a = {n: (float(r), s, m) for n, r, s, m in models(tmp + "/a/workload.yaml")}
c = models(tmp + "/c20/24/workload.yaml")
assert len(a) == 20 and len(c) == 20, (len(a), len(c))
for n, r, s, m in c:
    assert n.endswith("-0"), n
    ra, sa, ma = a[n[:-2]]
    assert abs(float(r) - ra) <= 1e-12 * ra, (n, r, ra)
    assert s == sa and m == ma, (n, s, sa, m, ma)
c = models(tmp + "/c50/50/workload.yaml")
assert len(c) == 50, len(c)
names = [n for n, _, _, _ in c]
assert len(set(names)) == 50
assert sum(n.endswith("-2") for n in names) == 10, names
rates = [float(r) for _, r, _, _ in c]
assert abs(sum(rates) - 5000) < 1e-6, sum(rates)
for i in range(49):
    want = ((i + 2) / (i + 1)) ** 0.9
    assert abs(rates[i] / rates[i + 1] - want) < 1e-9, (i, rates[i], rates[i + 1])
# copy 1 of a model is rank r + 20: the same zoo model and SLO as rank r
for i in range(30):
    assert names[i + 20].rsplit("-", 1)[0] == names[i].rsplit("-", 1)[0]
    assert c[i + 20][2] == c[i][2] and c[i + 20][3] == c[i][3]
cl = open(tmp + "/c50/50/cluster.yaml").read()
assert "objective: max-goodput" in cl and "count: 50" in cl and "v100-16gb" in cl, cl
PY

bound=$(dirname "$usher")/bench/bench_sim_bound
[ -x "$bound" ] || fail "$bound is not built (ninja bench_sim_bound)"
run() {
    $py "$scale" "$usher" "$zoo" "$1" --gpus 24,48 --models-per-gpu 1 --per-gpu 3000 \
        --duration 0.5 --policies usher,shepherd --bound "$bound" >"$1.table" 2>"$1.log"
}
run "$tmp/r1" || { fail "scale_scenario.py run 1"; cat "$tmp/r1.log"; }
run "$tmp/r2" || { fail "scale_scenario.py run 2"; cat "$tmp/r2.log"; }
$py - "$tmp/r1" <<'PY' || fail "run 1's results"
import json, sys
d = sys.argv[1]
rows = json.load(open(d + "/results.json"))["rows"]
assert [(r["gpus"], r["policy"]) for r in rows] == \
    [(24, "bound"), (24, "usher"), (24, "shepherd"),
     (48, "bound"), (48, "usher"), (48, "shepherd")], rows
bound = {r["gpus"]: r["planned_goodput"] for r in rows if r["policy"] == "bound"}
rows = [r for r in rows if r["policy"] != "bound"]
for r in rows:
    # no plan promises more than the bound (bench_sim_bound.c), and the bound is not vacuous
    assert r["planned_goodput"] <= bound[r["gpus"]] * (1 + 1e-9), (r, bound)
    assert bound[r["gpus"]] < r["offered"], bound
    assert "error" not in r, r
    n = r["gpus"]
    p = json.load(open("%s/%d/%s.plan.json" % (d, n, r["policy"])))
    s = json.load(open("%s/%d/%s.sim.json" % (d, n, r["policy"])))
    assert r["models"] == n and len(s["models"]) == n, (r, len(s["models"]))
    assert r["offered"] == 3000 * n
    assert r["gpus_used"] == p["totals"]["gpus"] <= n, r
    assert r["planned_goodput"] == p["totals"]["goodput"]
    assert r["requests"] == s["requests"] == sum(m["requests"] for m in s["models"])
    assert r["goodput"] == s["goodput"] and 0 < r["goodput"] <= r["requests"] / 0.5, r
    # 0.5 s of Poisson arrivals at 3,000 n req/s (overload): within 5 standard deviations
    assert abs(r["requests"] - 1500 * n) < 5 * (1500 * n) ** 0.5, r
    assert r["plan_s"] > 0 and r["sim_cpu_s"] > 0 and r["sim_rss_mb"] > 0, r
t = open(d + ".table").read().splitlines()
assert len(t) == 4 and t[2].startswith("| 24 (24, 72,000) |") and t[3].startswith("| 48 (48, 144,000) |"), t
assert t[0].endswith("| bound on planned goodput |") and t[2].count("|") == 5, t
PY
for f in 24/usher.plan.json 24/usher.sim.json 48/shepherd.plan.json 48/shepherd.sim.json; do
    # the files name their inputs: compared with the folder's name taken out, and
    # without plan.json's two wall-clock fields
    strip='/"profile_seconds"/d;/"plan_seconds"/d'
    if ! cmp -s <(sed "s#$tmp/r1#D#g;$strip" "$tmp/r1/$f") <(sed "s#$tmp/r2#D#g;$strip" "$tmp/r2/$f"); then
        fail "$f differs between two runs of the same arguments"
    fi
done
if [ "$fails" -ne 0 ]; then
    echo "$fails failure(s)"
    exit 1
fi
echo "test_sim_scale: all passed"
