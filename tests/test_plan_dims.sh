#!/usr/bin/env bash
# test_plan_dims.sh [zoo|npm] - workload.yaml `dims`: a model's dynamic dims bound for
# planning (docs/plan-input.md, "Dynamic dims").
#
# zoo (ctest test_plan_dims): bert-base of models/zoo (named dim seq, default 128)
#   - seq 32 < 128 < 384 < 512: the planned cost never falls and rises from 32 to 512, and
#     the fastest replica's batch latency rises with seq; in every policy the plan at seq 384
#     costs more than at seq 32 (exact: at a rate it can solve);
#   - seq: 128 plans exactly as no dims (the file's recorded default), and plan.json's
#     models[].dims says what was assumed ({"seq": 384}); a plan without dims has none;
#   - a re-plan of the seq-32 plan at seq 512 re-profiles: it costs what a fresh plan costs;
#   - usher simulate binds them: the seq-384 plan simulated at seq 384 is slower than at 128;
#   - bad entries refused, exit 1, each naming the field: an unknown dim (naming the model's
#     dims), a value out of range, a quoted number, a non-map, the batch dim given a number,
#     more than 16 entries, a name with a space.
# npm (ctest test_plan_dims_npm; exit 77, skipped, without scripts/deps.sh's models)
#   - Silero VAD v5 + v6: inputs input [input:0,input:1] and state [2,state:1,128], dims
#     unnamed in the files (usher inspect: input:1, state:1): without dims the plan is
#     refused naming the dim and how to bind it; with dims {input:1: 512, state:1: batch}
#     it plans and plan.json records them;
#   - --merge auto on one T4 at 1,000,000 req/s each (max-goodput): the two (one graph)
#     form a merge group, which serves more than --merge off; the group's re-plan keeps it;
#   - usher simulate runs the group with the members' dims bound in the merged graph;
#   - members binding input:1 differently (512, 256) form no group, the note says why.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
src=${USHER_SOURCE_DIR:?run through ctest}
mode=${1:-zoo}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }

# jv FILE EXPR: print the python expression over plan.json r
jv() {
    $py - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))
PY
}
# check FILE EXPR: exit 0 when the expression over r holds
check() { [ "$(jv "$1" "$2")" = True ]; }

cat >"$tmp/elastic.yaml" <<EOF
gpus:
  - {type: t4, max: 64}
  - {type: a100-80gb, max: 16}
EOF
cat >"$tmp/small.yaml" <<EOF
gpus:
  - {type: t4, max: 12}
EOF

if [ "$mode" = zoo ]; then
    bert=$src/models/zoo/bert-base.onnx
    # wl FILE RATE DIMS-LINE
    wl() {
        printf 'models:\n  - name: bert\n    model: %s\n    rate: %s\n    slo_ms: 200\n%s' \
            "$bert" "$2" "$3" >"$1"
    }
    prev=0
    for s in 32 128 384 512; do
        wl "$tmp/w$s.yaml" 400 "    dims: {seq: $s}
"
        "$usher" plan --workload "$tmp/w$s.yaml" --cluster "$tmp/elastic.yaml" -o "$tmp/p$s.json" \
            >/dev/null 2>"$tmp/err" || fail "seq_$s: plan failed: $(cat "$tmp/err")"
    done
    c32=$(jv "$tmp/p32.json" 'r["totals"]["cost_per_hour"]')
    c128=$(jv "$tmp/p128.json" 'r["totals"]["cost_per_hour"]')
    c384=$(jv "$tmp/p384.json" 'r["totals"]["cost_per_hour"]')
    c512=$(jv "$tmp/p512.json" 'r["totals"]["cost_per_hour"]')
    # the fastest batch-1-or-more replica latency planned, per batch size: min over replicas
    lat() { jv "$1" 'min(x["latency_ms"] / x["batch"] for g in r["gpus"] for x in g["replicas"])'; }
    l32=$(lat "$tmp/p32.json") l512=$(lat "$tmp/p512.json")
    if $py -c "import sys; c=[float(x) for x in sys.argv[1:5]]; l=[float(x) for x in sys.argv[5:]]; sys.exit(0 if c==sorted(c) and c[3] > c[0] and l[1] > l[0] else 1)" \
        "$c32" "$c128" "$c384" "$c512" "$l32" "$l512"; then
        ok "bert_seq_monotone: \$/h at seq 32, 128, 384, 512: $c32, $c128, $c384, $c512; ms per row $l32 -> $l512"
    else
        fail "bert_seq_monotone: \$/h $c32, $c128, $c384, $c512; ms per row $l32 -> $l512"
    fi
    # every policy binds the dims (exact at a rate small enough for it)
    for pol in usher shepherd gpulet alpaserve triton static-mps exact; do
        rate=400
        [ $pol = exact ] && rate=60
        wl "$tmp/a.yaml" $rate "    dims: {seq: 32}
"
        wl "$tmp/b.yaml" $rate "    dims: {seq: 384}
"
        "$usher" plan --workload "$tmp/a.yaml" --cluster "$tmp/elastic.yaml" --policy $pol \
            -o "$tmp/a.json" >/dev/null 2>&1
        ra=$?
        "$usher" plan --workload "$tmp/b.yaml" --cluster "$tmp/elastic.yaml" --policy $pol \
            -o "$tmp/b.json" >/dev/null 2>&1
        rb=$?
        # exit 3: a plan that leaves some rate unserved (static-mps halves): compare what is
        # served per $/h instead
        if [ $ra -le 3 ] && [ $rb -le 3 ] && [ -s "$tmp/a.json" ] && [ -s "$tmp/b.json" ]; then
            ca=$(jv "$tmp/a.json" 'r["totals"]["cost_per_hour"] / max(r["totals"]["goodput"], 1e-9)')
            cb=$(jv "$tmp/b.json" 'r["totals"]["cost_per_hour"] / max(r["totals"]["goodput"], 1e-9)')
            if $py -c "import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)" "$ca" "$cb"; then
                ok "policy_$pol: \$/h per req/s at seq 32 $ca < at seq 384 $cb"
            else
                fail "policy_$pol: \$/h per req/s at seq 32 $ca, at seq 384 $cb"
            fi
        else
            fail "policy_$pol: exit $ra / $rb"
        fi
        rm -f "$tmp/a.json" "$tmp/b.json"
    done
    # seq 128 is the recorded default: the same plan as no dims; plan.json says what was assumed
    wl "$tmp/none.yaml" 400 ""
    "$usher" plan --workload "$tmp/none.yaml" --cluster "$tmp/elastic.yaml" -o "$tmp/none.json" \
        >/dev/null 2>&1
    same=$($py - "$tmp/none.json" "$tmp/p128.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
print(a["gpus"] == b["gpus"] and a["totals"] == b["totals"])
PY
)
    if [ "$same" = True ] && check "$tmp/p384.json" 'r["models"][0]["dims"] == {"seq": 384}' &&
        check "$tmp/none.json" '"dims" not in r["models"][0]'; then
        ok "default_and_plan_json: seq 128 plans as no dims; plan.json models[].dims {\"seq\": 384}"
    else
        fail "default_and_plan_json: same=$same; $(jv "$tmp/p384.json" 'r["models"]')"
    fi
    # a re-plan at another seq re-profiles
    "$usher" plan --workload "$tmp/w512.yaml" --cluster "$tmp/elastic.yaml" --replan "$tmp/p32.json" \
        -o "$tmp/re.json" >/dev/null 2>&1
    cre=$(jv "$tmp/re.json" 'r["totals"]["cost_per_hour"]' 2>/dev/null)
    if $py -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) * 0.99 else 1)" "${cre:-0}" "$c512" &&
        check "$tmp/re.json" 'r["models"][0]["dims"] == {"seq": 512}'; then
        ok "replan: the seq-32 plan re-planned at seq 512 costs \$$cre/h (a fresh plan \$$c512/h)"
    else
        fail "replan: \$${cre:-?}/h against \$$c512/h"
    fi
    # usher simulate binds the dims too: the seq-384 plan simulated with its workload is
    # slower than the same plan simulated with a workload at the default (seq 128)
    "$usher" simulate --plan "$tmp/p384.json" --workload "$tmp/w384.yaml" --duration 5 --json \
        >"$tmp/s384.json" 2>/dev/null
    "$usher" simulate --plan "$tmp/p384.json" --workload "$tmp/none.yaml" --duration 5 --json \
        >"$tmp/s128.json" 2>/dev/null
    m384=$(jv "$tmp/s384.json" 'r["models"][0]["mean_ms"]' 2>/dev/null)
    m128=$(jv "$tmp/s128.json" 'r["models"][0]["mean_ms"]' 2>/dev/null)
    if $py -c "import sys; sys.exit(0 if float(sys.argv[1]) > 1.5 * float(sys.argv[2]) else 1)" "${m384:-0}" "${m128:-1}"; then
        ok "simulate_binds_dims: the seq-384 plan simulated at seq 384: mean $m384 ms, at the default 128: $m128 ms"
    else
        fail "simulate_binds_dims: mean ${m384:-?} ms at 384, ${m128:-?} ms at 128"
    fi
    # refusals: exit 1, the field named
    refuse() {
        local name=$1 dims=$2 pat=$3
        wl "$tmp/r.yaml" 100 "    dims: $dims
"
        "$usher" plan --workload "$tmp/r.yaml" --cluster "$tmp/small.yaml" >"$tmp/out" 2>"$tmp/err"
        local rc=$?
        if [ $rc -eq 1 ] && grep -q -- "$pat" "$tmp/err" && [ ! -s "$tmp/out" ]; then
            ok "refused_$name: $(head -c 220 "$tmp/err")"
        else
            fail "refused_$name: exit $rc, $(cat "$tmp/err") (wanted $pat)"
        fi
    }
    refuse unknown_dim "{seqq: 64}" "field 'models\[0\].dims.seqq': model 'bert' has no dynamic dim 'seqq' (its dynamic dims: batch, seq)"
    refuse zero "{seq: 0}" "r.yaml:6: field 'models\[0\].dims.seq': model 'bert': an integer from 1 to 16777216, or batch"
    refuse too_large "{seq: 16777217}" "field 'models\[0\].dims.seq': model 'bert': an integer from 1 to 16777216"
    refuse quoted "{seq: '64'}" "field 'models\[0\].dims.seq': model 'bert': an integer"
    refuse float "{seq: 64.5}" "field 'models\[0\].dims.seq': model 'bert': an integer"
    refuse not_a_map "[seq]" "field 'models\[0\].dims': expected a map"
    refuse batch_dim "{batch: 4}" "field 'models\[0\].dims.batch': model 'bert': 'batch' is the first dim of input 'input_ids'"
    refuse space "{a b: 3}" "field 'models\[0\].dims': model 'bert': a dim's name is 1 to 255 printable characters"
    refuse too_many "{a0: 1, a1: 1, a2: 1, a3: 1, a4: 1, a5: 1, a6: 1, a7: 1, a8: 1, a9: 1, b0: 1, b1: 1, b2: 1, b3: 1, b4: 1, b5: 1, b6: 1}" \
        "field 'models\[0\].dims': model 'bert': at most 16 dims, not 17"
    echo "test_plan_dims zoo: $fails failure(s)"
    [ $fails -eq 0 ]
    exit
fi

# ---- npm: Silero VAD v5 + v6 -----------------------------------------------------------
deps=${USHER_TEST_DEPS:-$src/.deps/npm}
vad=$deps/ricky0123-vad-web/package/dist
for f in "$vad/silero_vad_v5.onnx" "$vad/silero_vad_v6.onnx"; do
    if [ ! -f "$f" ]; then
        echo "SKIP: $f is not there: the npm models were not fetched (run scripts/deps.sh)"
        exit 77
    fi
done
# vads FILE RATE DIMS5 DIMS6 (a DIMS of "" leaves dims out)
vads() {
    {
        echo "models:"
        echo "  - {name: vad5, model: $vad/silero_vad_v5.onnx, rate: $2, slo_ms: 20${3:+, dims: $3}}"
        echo "  - {name: vad6, model: $vad/silero_vad_v6.onnx, rate: $2, slo_ms: 20${4:+, dims: $4}}"
    } >"$1"
}
cat >"$tmp/t4.yaml" <<EOF
objective: max-goodput
gpus:
  - {type: t4, count: 1}
EOF
D='{input:1: 512, state:1: batch}'
vads "$tmp/none.yaml" 2000 "" ""
"$usher" plan --workload "$tmp/none.yaml" --cluster "$tmp/small.yaml" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "models\[0\] 'vad5': dynamic dim 'input:1' (axis 1 of input 'input' \[input:0,input:1\]) is not bound: give its value in the model's 'dims' (dims: {input:1: N}" "$tmp/err"; then
    ok "silero_without_dims: $(cat "$tmp/err")"
else
    fail "silero_without_dims: exit $rc, $(cat "$tmp/err")"
fi
vads "$tmp/half.yaml" 2000 "{input:1: 512}" "$D"
"$usher" plan --workload "$tmp/half.yaml" --cluster "$tmp/small.yaml" >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "dynamic dim 'state:1' (axis 1 of input 'state' \[2,state:1,128\]) is not bound" "$tmp/err" &&
    grep -q "state:1: batch when it follows the batch" "$tmp/err"; then
    ok "silero_state_unbound: refused naming state:1"
else
    fail "silero_state_unbound: exit $rc, $(cat "$tmp/err")"
fi
vads "$tmp/dims.yaml" 2000 "$D" "$D"
if "$usher" plan --workload "$tmp/dims.yaml" --cluster "$tmp/small.yaml" -o "$tmp/p.json" >/dev/null 2>"$tmp/err" &&
    check "$tmp/p.json" 'r["totals"]["unserved"] == 0 and all(m["dims"] == {"input:1": 512, "state:1": "batch"} for m in r["models"])'; then
    ok "silero_with_dims: planned, $(jv "$tmp/p.json" 'r["totals"]["gpus"]') GPU(s), plan.json dims $(jv "$tmp/p.json" 'r["models"][0]["dims"]')"
else
    fail "silero_with_dims: $(cat "$tmp/err")"
fi
# the merge group: one T4 cannot serve 2 x 1,000,000 req/s; one merged run serves both
vads "$tmp/big.yaml" 1000000 "$D" "$D"
"$usher" plan --workload "$tmp/big.yaml" --cluster "$tmp/t4.yaml" --merge off -o "$tmp/off.json" \
    >/dev/null 2>&1
"$usher" plan --workload "$tmp/big.yaml" --cluster "$tmp/t4.yaml" --merge auto -o "$tmp/auto.json" \
    >"$tmp/out" 2>&1
goff=$(jv "$tmp/off.json" 'r["totals"]["goodput"]' 2>/dev/null)
gauto=$(jv "$tmp/auto.json" 'r["totals"]["goodput"]' 2>/dev/null)
if check "$tmp/auto.json" 'len(r.get("merge_groups", [])) == 1 and sorted(r["merge_groups"][0]["members"]) == ["vad5", "vad6"] and any(x["model"] == r["merge_groups"][0]["name"] for g in r["gpus"] for x in g["replicas"])' &&
    $py -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$gauto" "$goff"; then
    ok "silero_merge_group: $(jv "$tmp/auto.json" 'r["merge_groups"][0]["kind"]') group of vad5 + vad6 serves $gauto req/s, $goff without it"
else
    fail "silero_merge_group: goodput $gauto vs $goff; $(head -5 "$tmp/out")"
fi
"$usher" plan --workload "$tmp/big.yaml" --cluster "$tmp/t4.yaml" --replan "$tmp/auto.json" \
    -o "$tmp/re.json" >/dev/null 2>&1
if check "$tmp/re.json" 'len(r.get("merge_groups", [])) == 1'; then
    ok "silero_merge_replan: the re-plan keeps the group"
else
    fail "silero_merge_replan: $(jv "$tmp/re.json" 'r.get("merge_groups")' 2>&1)"
fi
# the simulator runs the group with the members' dims bound in the merged graph
if "$usher" simulate --plan "$tmp/auto.json" --workload "$tmp/big.yaml" --duration 0.2 --json \
    >"$tmp/sim.json" 2>"$tmp/err" && check "$tmp/sim.json" 'r["served"] > 0 and all(m["served"] > 0 for m in r["models"])'; then
    ok "silero_merge_simulated: $(jv "$tmp/sim.json" 'r["served"]') requests served in the simulated group"
else
    fail "silero_merge_simulated: $(cat "$tmp/err")"
fi
vads "$tmp/differ.yaml" 1000000 "$D" "{input:1: 256, state:1: batch}"
"$usher" plan --workload "$tmp/differ.yaml" --cluster "$tmp/t4.yaml" --merge auto -o "$tmp/d.json" \
    >/dev/null 2>&1
if check "$tmp/d.json" '"merge_groups" not in r and "bind dim '"'"'input:1'"'"' differently (vad5: 512, vad6: 256)" in r["note"]'; then
    ok "silero_dims_differ: no group; note: $(jv "$tmp/d.json" 'r["note"]')"
else
    fail "silero_dims_differ: $(jv "$tmp/d.json" '(r.get("merge_groups"), r["note"])' 2>&1)"
fi
echo "test_plan_dims npm: $fails failure(s)"
[ $fails -eq 0 ]
