#!/usr/bin/env bash
# test_cli.sh - the usher command as users meet it: exit codes, messages,
# --json output (parsed with Python's json module), convert round trips.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
src=${USHER_SOURCE_DIR:?run through ctest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # check NAME EXPECTED_RC COMMAND... ; output in $tmp/out
    local name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>&1
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL $name: exit $rc, expected $want"; sed 's/^/    /' "$tmp/out" | head -20
        fails=$((fails + 1))
    else
        echo "ok   $name"
    fi
}
contains() { # contains NAME TEXT
    if ! grep -qF -- "$2" "$tmp/out"; then
        echo "FAIL $1: output lacks '$2'"; sed 's/^/    /' "$tmp/out" | head -20
        fails=$((fails + 1))
    fi
}
zoo=$src/models/zoo

check help 0 "$usher" --help;                         contains help "inspect"
check version 0 "$usher" --version;                   contains version "usher 0."
check no_args 2 "$usher"
check unknown_verb 2 "$usher" frobnicate;            contains unknown_verb "unknown command 'frobnicate'"
check inspect_help 0 "$usher" inspect --help;         contains inspect_help "--batch N"
check inspect_no_model 2 "$usher" inspect
check bad_batch 2 "$usher" inspect "$zoo/resnet18.onnx" --batch 0
check bad_batch_text 2 "$usher" inspect "$zoo/resnet18.onnx" --batch 12abc
check bad_dim_form 2 "$usher" inspect "$zoo/resnet18.onnx" --dim batch
check unknown_dim 1 "$usher" inspect "$zoo/resnet18.onnx" --dim nope=3
contains unknown_dim "no dimension named 'nope'"
check missing_file 1 "$usher" inspect "$tmp/missing.onnx"; contains missing_file "missing.onnx: cannot open"
printf 'not a model' >"$tmp/junk.onnx"
check junk_file 1 "$usher" inspect "$tmp/junk.onnx";   contains junk_file "junk.onnx: "
check unsupported_op 3 "$usher" inspect "$src/fuzz/corpus/custom_op.onnx"
contains unsupported_op "unsupported node"
contains unsupported_op "com.example.FusedThing"
check report 0 "$usher" inspect "$zoo/resnet50.onnx" --batch 8
contains report "[batch,3,224,224]  ->  [8,3,224,224]"
contains report "25,530,472"
contains report "problems     none"
check seq_default 0 "$usher" inspect "$zoo/bert-base.onnx" --batch 2
contains seq_default "dynamic dims batch, seq (default 128)"
contains seq_default "[batch,seq]  ->  [2,128]"
check seq_set 0 "$usher" inspect "$zoo/bert-base.onnx" --batch 2 --dim seq=384
contains seq_set "[batch,seq]  ->  [2,384]"
contains seq_set "last_hidden_state  float32  [2,384,768]"
check est_seq 0 "$usher" estimate "$zoo/bert-base.onnx" --gpu a100-80gb --graph-only --dim seq=384
check table 0 "$usher" inspect "$zoo/resnet18.onnx" "$zoo/bert-base.onnx"
contains table "bert-base.onnx"

check json 0 "$usher" inspect "$zoo/bert-base.onnx" --batch 4 --json
/usr/bin/python3 - "$tmp/out" <<'PY' || fails=$((fails + 1))
import json, sys
r = json.load(open(sys.argv[1]))
need = ["model", "opset", "params", "weight_bytes", "macs", "flops", "activation_bytes",
        "peak_activation_bytes", "inputs", "outputs", "ops", "problems", "symbols", "graph_only",
        "exact"]
missing = [k for k in need if k not in r]
assert not missing, missing
assert r["exact"] and r["graph_only"] and not r["problems"], r
assert r["inputs"][0]["shape"] == "[4,128]" and r["inputs"][0]["declared"] == "[batch,seq]"
assert r["dim_defaults"] == {"seq": 128}, r["dim_defaults"]
assert abs(r["macs"] - 4 * 11174215680) < 1e6, r["macs"]
assert sum(o["count"] for o in r["ops"]) == r["nodes"]
print("ok   json_fields")
PY
check json_lines 0 "$usher" inspect "$zoo/resnet18.onnx" "$zoo/squeezenet.onnx" --json
/usr/bin/python3 -c "import json,sys; rows=[json.loads(l) for l in open(sys.argv[1])]; assert len(rows)==2" "$tmp/out" \
    && echo "ok   json_lines_parse" || { echo "FAIL json_lines_parse"; fails=$((fails + 1)); }
check value_binding 0 "$usher" inspect "$src/fuzz/corpus/control_flow.onnx" --value flag=1
check value_not_input 1 "$usher" inspect "$src/fuzz/corpus/control_flow.onnx" --value nope=1

check convert_fill 0 "$usher" convert "$zoo/resnet18.onnx" "$tmp/r18.onnx" --fill-random 7
check inspect_filled 0 "$usher" inspect "$tmp/r18.onnx"
contains inspect_filled "46.7 MB of weights)"
check convert_strip 0 "$usher" convert "$tmp/r18.onnx" "$tmp/r18s.onnx" --strip
check inspect_stripped 0 "$usher" inspect "$tmp/r18s.onnx"; contains inspect_stripped "graph-only"
check convert_ext 0 "$usher" convert "$tmp/r18.onnx" "$tmp/r18e.onnx" --external-data r18e.bin
check inspect_ext 0 "$usher" inspect "$tmp/r18e.onnx"
check convert_exclusive 2 "$usher" convert a b --strip --fill-random 1
check convert_bad_ext 1 "$usher" convert "$tmp/r18.onnx" "$tmp/x.onnx" --external-data ../x.bin
contains convert_bad_ext "plain file name"
[ -e "$tmp/x.onnx" ] && { echo "FAIL convert_bad_ext left a file"; fails=$((fails + 1)); }

# usher estimate / calibrate
check est_help 0 "$usher" estimate --help;            contains est_help "--share PCT"
check est_list 0 "$usher" estimate --list-gpus;       contains est_list "a100-80gb:3g.40gb"
check est_table 0 "$usher" estimate "$zoo/resnet50.onnx" --gpu a100-80gb,t4 --batch 1,8 --share 50,100
contains est_table "uncalibrated defaults"; contains est_table "calibration for a100-80gb: built-in defaults"
check est_json 0 "$usher" estimate "$zoo/bert-base.onnx" --gpu a100-80gb:3g.40gb --batch 1,4 \
      --share 30,100 --precision fp16 --json --framework pytorch-eager
/usr/bin/python3 - "$tmp/out" <<'PY' || fails=$((fails + 1))
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert len(rows) == 4, len(rows)
need = ["model", "gpu", "batch", "share", "latency_ms", "creq_pct", "mreq_pct", "mreq_mb",
        "bandwidth_gbs", "energy_j"]
for r in rows:
    missing = [k for k in need if k not in r]
    assert not missing, missing
    assert 0 < r["creq_pct"] <= 100 and r["latency_ms"] > 0 and r["calibrated"], r
    assert r["calibration_row"].startswith(
        "[a100-80gb pytorch-eager], the MIG instance's parent GPU"), r
    assert r["calibration_borrowed"] is False, r
by = {(r["batch"], r["share"]): r for r in rows}
assert by[(1, 30)]["latency_ms"] >= by[(1, 100)]["latency_ms"]
assert by[(4, 100)]["latency_ms"] >= by[(1, 100)]["latency_ms"]
assert by[(4, 100)]["mreq_mb"] > by[(1, 100)]["mreq_mb"]
print("ok   est_json_fields")
PY
check est_bad_gpu 1 "$usher" estimate "$zoo/resnet50.onnx" --gpu a100-90gb
contains est_bad_gpu "a100-80gb"
check est_bad_share 2 "$usher" estimate "$zoo/resnet50.onnx" --gpu t4 --share 0
check est_bad_batch 2 "$usher" estimate "$zoo/resnet50.onnx" --gpu t4 --batch 1,x
check est_bad_prec 2 "$usher" estimate "$zoo/resnet50.onnx" --gpu t4 --precision fp8
check est_kernels 0 "$usher" estimate "$zoo/vgg19.onnx" --gpu a100-80gb --graph-only --kernels --top 3
contains est_kernels "gemv"; contains est_kernels "by kind"
check est_bad_top 2 "$usher" estimate "$zoo/vgg19.onnx" --gpu a100-80gb --kernels --top 0
check est_not_cuda 1 "$usher" estimate "$zoo/resnet50.onnx" --gpu mi300x
contains est_not_cuda "not an NVIDIA CUDA GPU"
check est_unbound 1 "$usher" estimate "$src/.deps/npm/ricky0123-vad-web/package/dist/silero_vad_v5.onnx" --gpu t4
contains est_unbound "input:1"
printf '[t4 x]\nnonsense = 1\n' >"$tmp/cal.txt"
check est_bad_cal 1 "$usher" estimate "$zoo/resnet50.onnx" --gpu t4 --calibration "$tmp/cal.txt"
contains est_bad_cal "cal.txt:2: unknown key 'nonsense'"
# usher interfere (issue 12): co-located latencies, one JSON object per replica
check if_help 0 "$usher" interfere --help;            contains if_help "MODEL:BATCH:SHARE"
check if_json 0 "$usher" interfere --gpu v100-32gb --framework tensorrt \
      "$zoo/resnet50.onnx:2:80" "$zoo/alexnet.onnx:2:20" --json
/usr/bin/python3 - "$tmp/out" <<'PY' || fails=$((fails + 1))
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert len(rows) == 2, len(rows)
for r in rows:
    for k in ["model", "batch", "share", "latency_alone_ms", "latency_colocated_ms", "slowdown"]:
        assert k in r, k
    assert r["latency_colocated_ms"] > r["latency_alone_ms"] > 0, r
    assert abs(r["slowdown"] - r["latency_colocated_ms"] / r["latency_alone_ms"]) < 1e-3, r
assert rows[0]["batch"] == 2 and rows[0]["share"] == 80 and rows[1]["share"] == 20
print("ok   if_json_fields")
PY
check if_mig 0 "$usher" interfere --gpu a100-80gb:1g.10gb --framework pytorch-eager \
      "$zoo/vgg19.onnx:128:100" "$zoo/vgg19.onnx:128:100"
contains if_mig "SMs time-sliced"
check if_bad_spec 2 "$usher" interfere --gpu t4 "$zoo/resnet50.onnx:4"
contains if_bad_spec "MODEL:BATCH:SHARE"
check if_bad_share 2 "$usher" interfere --gpu t4 "$zoo/resnet50.onnx:4:0"
check if_bad_gpu 1 "$usher" interfere --gpu t5 "$zoo/resnet50.onnx:4:50"
contains if_bad_gpu "t4"
check if_no_model 1 "$usher" interfere --gpu t4 "$tmp/none.onnx:4:50"
contains if_no_model "replica 1"
check if_fit_missing 1 "$usher" interfere --fit "$tmp/none.csv"
# without a GPU (CI), calibrate must say so and fail cleanly; with one it must succeed
if "$usher" calibrate -o "$tmp/measured.txt" >"$tmp/out" 2>&1; then
    check est_measured 0 "$usher" estimate "$zoo/resnet50.onnx" --gpu "$(sed -n 's/^\[\([^ ]*\) .*/\1/p' "$tmp/measured.txt" | head -1)" --calibration "$tmp/measured.txt"
else
    contains calibrate_no_gpu "no GPU"
fi

# ---- usher plan --------------------------------------------------------------
ex=$src/examples
check plan_help 0 "$usher" plan --help;              contains plan_help "--workload FILE"
check plan_policies 0 "$usher" plan --list-policies; contains plan_policies "exact"
check plan_no_args 2 "$usher" plan
check plan_bad_moves 2 "$usher" plan --workload "$ex/workload.yaml" --cluster "$ex/cluster-elastic.yaml" --max-moves 3
check plan_elastic 0 "$usher" plan --workload "$ex/workload.yaml" --cluster "$ex/cluster-elastic.yaml" -o "$tmp/plan.json"
contains plan_elastic "every SLO met"
contains plan_elastic "resnet50"
/usr/bin/python3 - "$tmp/plan.json" <<'PY' || fails=$((fails + 1))
import json, sys
p = json.load(open(sys.argv[1]))
assert p["schema_version"] == 1 and p["policy"] == "usher" and p["feasible"], p
for k in ["gpus", "cost_per_hour", "goodput", "compute_utilisation_pct", "energy_kwh_per_hour"]:
    assert k in p["totals"], k
assert len(p["gpus"]) == p["totals"]["gpus"]
served = {}
for g in p["gpus"]:
    assert g["compute_pct"] <= 100 + 1e-6 and g["memory_pct"] <= 100 + 1e-6, g
    assert abs(sum(r["share"] for r in g["replicas"]) - g["compute_pct"]) < 1e-3, g
    for r in g["replicas"]:
        for k in ["model", "batch", "share", "memory_mb", "latency_ms", "throughput", "load", "group"]:
            assert k in r, k
        assert r["load"] <= r["throughput"] * (1 + 1e-5), r
        served[r["model"]] = served.get(r["model"], 0) + r["load"]
for m in p["models"]:
    assert abs(served[m["name"]] - m["rate"]) <= 1e-4 * m["rate"] + 1e-3, (m, served[m["name"]])
    assert 2 * max(r["latency_ms"] for g in p["gpus"] for r in g["replicas"] if r["model"] == m["name"]) <= m["slo_ms"] * (1 + 1e-5)
print("ok   plan_json_fields")
PY
check plan_stdout 0 "$usher" plan --workload "$ex/workload.yaml" --cluster "$ex/cluster-elastic.yaml" -o -
contains plan_stdout '"schema_version": 1'
check plan_replan_same 0 "$usher" plan --workload "$ex/workload.yaml" --cluster "$ex/cluster-elastic.yaml" --replan "$tmp/plan.json"
contains plan_replan_same "0 replicas started"
# GPU 0 of every entry lost: the running plan's GPUs there are placed again, the rest kept
printf 'objective: min-cost\ngpus:\n  - {type: a100-80gb, max: 64, price_per_hour: 4.10, lost: [0]}\n  - {type: v100-16gb, max: 64, lost: [0]}\n  - {type: t4, max: 32, lost: [0]}\n' >"$tmp/lost.yaml"
check plan_replan_lost 0 "$usher" plan --workload "$ex/workload.yaml" --cluster "$tmp/lost.yaml" --replan "$tmp/plan.json" -o -
contains plan_replan_lost '"index": 1'
contains plan_replan_lost '"lost_gpus": '
check plan_replan_lost_table 0 "$usher" plan --workload "$ex/workload.yaml" --cluster "$tmp/lost.yaml" --replan "$tmp/plan.json"
contains plan_replan_lost_table "lost: "
check plan_compare 0 "$usher" plan --workload "$ex/workload.yaml" --cluster "$ex/cluster-elastic.yaml" --compare
contains plan_compare "gpulet"
contains plan_compare "exact"
# a fixed cluster too small: the plan, then the unserved rate per model, exit 3
printf 'objective: max-goodput\ngpus:\n  - type: t4\n    count: 1\n' >"$tmp/small.yaml"
check plan_too_small 3 "$usher" plan --workload "$ex/workload.yaml" --cluster "$tmp/small.yaml"
contains plan_too_small "unserved:"
contains plan_too_small "mobilenet-v2"
# bad input: file, line and field
printf 'gpus:\n  - type: a100\n' >"$tmp/badtype.yaml"
check plan_bad_type 1 "$usher" plan --workload "$ex/workload.yaml" --cluster "$tmp/badtype.yaml"
contains plan_bad_type "badtype.yaml:2: field 'gpus[0].type'"
printf 'gpus: [t4\n' >"$tmp/malformed.yaml"
check plan_malformed 1 "$usher" plan --workload "$ex/workload.yaml" --cluster "$tmp/malformed.yaml"
contains plan_malformed "malformed.yaml:"
printf 'models:\n  - name: a\n    model: %s\n    rate: -1\n    slo_ms: 50\n' "$zoo/resnet18.onnx" >"$tmp/neg.yaml"
check plan_negative_rate 1 "$usher" plan --workload "$tmp/neg.yaml" --cluster "$ex/cluster-elastic.yaml"
contains plan_negative_rate "neg.yaml:4: field 'models[0].rate'"
printf 'models:\n  - name: a\n    model: %s\n    rate: 10\n    slo_ms: 0.2\n' "$zoo/resnet18.onnx" >"$tmp/slo.yaml"
check plan_slo 1 "$usher" plan --workload "$tmp/slo.yaml" --cluster "$ex/cluster-elastic.yaml"
contains plan_slo "model 'a' cannot meet 0.2 ms"
contains plan_slo "the fastest is"
# prices: a type without one is an error; a price of 0 is planned, never a signal
printf 'gpus:\n  - type: t4\n    max: 8\n  - type: a30\n    max: 4\n' >"$tmp/noprice.yaml"
check plan_no_price 1 "$usher" plan --workload "$ex/workload.yaml" --cluster "$tmp/noprice.yaml"
contains plan_no_price "noprice.yaml:4: gpus[1]: GPU type 'a30' has no price"
printf 'models:\n  - name: a\n    model: %s\n    rate: 300\n    slo_ms: 50\n  - name: b\n    model: %s\n    rate: 0\n    slo_ms: 30\n' "$zoo/resnet50.onnx" "$zoo/resnet18.onnx" >"$tmp/small_w.yaml"
printf 'gpus:\n  - type: a100-80gb\n    max: 4\n    price_per_hour: 0\n  - type: t4\n    max: 4\n' >"$tmp/free.yaml"
printf 'gpus:\n  - type: a30\n    max: 2\n    price_per_hour: 0\n  - type: t4\n    max: 4\n    price_per_hour: 0\n' >"$tmp/allfree.yaml"
printf 'objective: max-goodput\ngpus:\n  - type: a100-80gb\n    count: 1\n    price_per_hour: 0\n  - type: t4\n    count: 0\n' >"$tmp/freefixed.yaml"
for c in free allfree freefixed; do
    for w in "$tmp/small_w.yaml" "$ex/workload.yaml"; do
        for a in "--policy usher" "--policy exact" "--compare"; do
            "$usher" plan --workload "$w" --cluster "$tmp/$c.yaml" $a >"$tmp/out" 2>&1
            rc=$?
            if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ] && ! { [ "$rc" -eq 1 ] && grep -q "for small instances" "$tmp/out"; }; then
                echo "FAIL plan_price0 $c $(basename "$w") $a: exit $rc"; sed 's/^/    /' "$tmp/out" | head -20
                fails=$((fails + 1))
            fi
        done
    done
done
echo "ok   plan_price0"
check plan_price0_exact 0 "$usher" plan --workload "$tmp/small_w.yaml" --cluster "$tmp/free.yaml" --policy exact
contains plan_price0_exact '$0.00/h'
check plan_bad_policy 1 "$usher" plan --workload "$ex/workload.yaml" --cluster "$ex/cluster-elastic.yaml" --policy magic
contains plan_bad_policy "unknown policy 'magic'"

# ---- usher compare (issue 14): plan with several policies, simulate each on the same arrivals
cw="--workload $ex/workload.yaml --cluster $ex/cluster-elastic.yaml"
check cmp_help 0 "$usher" compare --help;             contains cmp_help "--policies A,B,..."
check cmp_no_args 2 "$usher" compare
check cmp_bad_policy 2 "$usher" compare $cw --policies usher,magic
contains cmp_bad_policy "unknown policy 'magic'; policies: usher, shepherd"
contains cmp_bad_policy "exact"
check cmp_bad_loads 2 "$usher" compare $cw --loads 1,x
check cmp_table 0 "$usher" compare $cw --policies usher,shepherd,triton --duration 5
contains cmp_table "worst p99"
contains cmp_table "cheapest that serves the offered 6100 req/s"
# a cluster too small for the rates: the plan leaves rate unserved and is marked, never
# ranked as the cheaper one
printf 'gpus:\n  - type: t4\n    count: 1\n' >"$tmp/one_t4.yaml"
check cmp_short 0 "$usher" compare --workload "$ex/workload.yaml" --cluster "$tmp/one_t4.yaml" \
    --policies usher,shepherd --duration 5
contains cmp_short "SHORT: the plan leaves"
check cmp_json 0 "$usher" compare $cw --policies usher,shepherd,triton --duration 5 --seed 3 --json
cp "$tmp/out" "$tmp/cmp1.json"
check cmp_json_again 0 "$usher" compare $cw --policies usher,shepherd,triton --duration 5 --seed 3 --json
if cmp -s "$tmp/out" "$tmp/cmp1.json"; then echo "ok   cmp_same_seed_same_bytes"; else
    echo "FAIL cmp_same_seed_same_bytes"; diff "$tmp/out" "$tmp/cmp1.json" | head; fails=$((fails + 1)); fi
"$usher" compare $cw --policies usher,shepherd,triton --duration 5 --seed 4 --json >"$tmp/cmp4.json" 2>&1
if cmp -s "$tmp/cmp4.json" "$tmp/cmp1.json"; then
    echo "FAIL cmp_other_seed: seed 4 gave seed 3's bytes"; fails=$((fails + 1)); fi
/usr/bin/python3 - "$tmp/cmp1.json" <<'PY' || fails=$((fails + 1))
import json, sys
r = json.load(open(sys.argv[1]))
assert r["seed"] == 3 and r["duration_s"] == 5, r
ps = r["policies"]
assert [p["policy"] for p in ps] == ["usher", "shepherd", "triton"], ps
for p in ps:
    assert p["ok"] is True, p
    for k in ["gpus", "cost_per_hour", "planned_goodput", "goodput", "slo_attainment_pct",
              "worst_p99_ms", "offered", "requests", "serves_offered_load", "feasible"]:
        assert k in p, (p["policy"], k)
    assert abs(p["offered"] - 6100) < 1e-6, p
    assert len(p["models"]) == 7, p
    for m in p["models"]:
        for k in ["name", "rate", "replicas", "planned_goodput", "goodput",
                  "slo_attainment_pct", "mean_ms", "p50_ms", "p99_ms"]:
            assert k in m, (p["policy"], k)
    assert abs(sum(m["goodput"] for m in p["models"]) - p["goodput"]) < 1e-6 * p["goodput"] + 1e-9
# the same arrivals: every plan saw the same requests
assert len({p["requests"] for p in ps}) == 1, [p["requests"] for p in ps]
# a plan serves the offered load when it plans every rate and the simulation finds 99%
# of requests within their SLO; usher's plan must (its queueing rule caps every replica's
# load for that), the baselines are only checked for consistency
for p in ps:
    serves = p["feasible"] and p["slo_attainment_pct"] >= 99.0
    assert p["serves_offered_load"] == serves, p
assert ps[0]["serves_offered_load"], ps[0]
print("ok   cmp_json_fields")
PY
check cmp_loads 0 "$usher" compare $cw --policies usher,shepherd --duration 2 --loads 0.5,1,2 --json --html "$tmp/cmp.html"
/usr/bin/python3 - "$tmp/out" "$tmp/cmp.html" <<'PY' || fails=$((fails + 1))
import json, sys
r = json.load(open(sys.argv[1]))
ls = r["loads"]
assert [l["scale"] for l in ls] == [0.5, 1, 2], ls
for l in ls:
    for p in l["policies"]:
        assert p["ok"] and abs(p["offered"] - 6100 * l["scale"]) < 1e-6, p
# re-planned at each load: more load, no fewer GPUs
for i in range(2):
    g = [l["policies"][i]["gpus"] for l in ls]
    assert g == sorted(g) and g[0] < g[2], g
# the scale-1 entry is the table's run
assert ls[1]["policies"][0]["goodput"] == r["policies"][0]["goodput"]
h = open(sys.argv[2]).read()
# the three load plots, and per policy its latency CDF and GPU heat map
assert h.startswith("<!DOCTYPE html>") and h.count("<svg") == 3 + 2 * 2, h.count("<svg")
for i in range(2):
    assert 'id="latency-cdf-%d"' % i in h and 'id="gpu-utilisation-%d"' % i in h, i
for s in ["Cost against load", "GPUs against load", "Simulated goodput against offered load",
          "<table>", "shepherd"]:
    assert s in h, s
assert "<script" not in h and "http://" not in h.replace("http://www.w3.org", "")
print("ok   cmp_loads_html")
PY
printf 'models:\n  - name: a\n    model: %s\n    rate: 10\n    slo_ms: 0.2\n' "$zoo/resnet50.onnx" >"$tmp/cmp_slo.yaml"
check cmp_all_fail 1 "$usher" compare --workload "$tmp/cmp_slo.yaml" --cluster "$ex/cluster-elastic.yaml" --policies usher,shepherd
contains cmp_all_fail "usher       failed: plan:"
contains cmp_all_fail "shepherd    failed: plan:"
contains cmp_all_fail "no policy's plan serves"

# max-goodput on a fixed cluster too small for both rates serves the denser model's rate
# first: resnet18 yields ~4x resnet101's requests per V100, and USHER used to give the two
# models 125 GPUs each (194,639 of 274,594 req/s, gpulet 242,445) - placement alternated
# its two replica lists whatever each served per GPU
printf 'models:\n  - name: r18\n    model: %s\n    rate: 222357\n    slo_ms: 3.9\n  - name: r101\n    model: %s\n    rate: 52237\n    slo_ms: 21.36\n' \
    "$zoo/resnet18.onnx" "$zoo/resnet101.onnx" >"$tmp/mg_w.yaml"
printf 'objective: max-goodput\ngpus:\n  - type: v100-16gb\n    count: 250\n' >"$tmp/mg_c.yaml"
for pol in usher gpulet; do
    "$usher" plan --workload "$tmp/mg_w.yaml" --cluster "$tmp/mg_c.yaml" --policy $pol --quiet \
        -o "$tmp/mg_$pol.json" >/dev/null 2>&1
done
/usr/bin/python3 - "$tmp/mg_usher.json" "$tmp/mg_gpulet.json" <<'PY' || fails=$((fails + 1))
import json, sys
u, g = (json.load(open(f)) for f in sys.argv[1:3])
su, sg = (sum(m["goodput"] for m in d["models"]) for d in (u, g))
print("  250 V100s, resnet18 + resnet101: usher %.0f req/s, gpulet %.0f" % (su, sg))
assert su >= 0.98 * sg, ("FAIL plan_max_goodput_densest_first", su, sg)
print("ok   plan_max_goodput_densest_first")
PY

# output into a special file (a FIFO here; /dev/null in real use) goes into it: renaming a
# temporary over it replaced /dev/null with a regular file when run as root
mkfifo "$tmp/plan.fifo"
timeout 20 cat "$tmp/plan.fifo" >"$tmp/fifo.out" & # (a writer that never opens it: 20 s, then the check fails)
catpid=$!
check plan_into_fifo 0 "$usher" plan --workload "$ex/workload.yaml" --cluster "$ex/cluster-elastic.yaml" \
    --quiet -o "$tmp/plan.fifo"
wait "$catpid"
if [ -p "$tmp/plan.fifo" ] && grep -q '"schema_version"' "$tmp/fifo.out"; then
    echo "ok   plan_into_fifo_kept"
else
    echo "FAIL plan_into_fifo_kept: the FIFO was replaced or got nothing"; fails=$((fails + 1))
fi

echo "$fails failure(s)"
exit $((fails > 0))
