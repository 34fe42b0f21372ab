#!/usr/bin/env bash
# throughput-table.sh [USHER] [GPU...] - achieved TFLOP/s of every zoo model at
# batch 1 and 64, predicted by `usher estimate`, beside each GPU's peak; prints
# the markdown table of docs/throughput.md (paste it there to refresh the doc).
# Default GPUs: a100-80gb h100-sxm. Precision fp32, engine onnxruntime-cuda
# (the estimator's defaults). The ratio column compares each model's batch-1
# TFLOP/s with ResNet-50's on the same GPU (issue 16 asks that no model over
# 10 GFLOPs falls below 1/3 without an explanation in docs/throughput.md).
set -euo pipefail
cd "$(dirname "$0")/.."
usher=${1:-build/usher}
shift || true
gpus=("$@")
[ ${#gpus[@]} -gt 0 ] || gpus=(a100-80gb h100-sxm)
for g in "${gpus[@]}"; do
    for m in models/zoo/*.onnx; do
        "$usher" estimate "$m" --gpu "$g" --batch 1,64 --graph-only --json 2>/dev/null ||
            echo "{\"model\":\"$m\",\"gpu\":\"$g\",\"error\":true}"
    done
done | python3 -c "$(cat <<'PY'
import json, sys, csv, os
rows = [json.loads(l) for l in sys.stdin if l.strip()]
peak = {}
with open("data/gpus.csv") as f:
    for r in csv.DictReader(f):
        peak[r["key"]] = r
by, order = {}, []
for r in rows:
    if r.get("error"):
        continue
    name = os.path.basename(r["model"]).replace(".onnx", "")
    by[(name, r["gpu"], r["batch"])] = r
    if r["gpu"] not in order:
        order.append(r["gpu"])
models = sorted({m for (m, _, _) in by})
def tf(r):
    return r["gflops"] / r["latency_ms"] if r and r["latency_ms"] > 0 else 0.0
hdr, sep = "| model | GFLOP (b1) |", "|---|---:|"
for g in order:
    hdr += f" {g} b1 ms | b1 TFLOP/s | b64 TFLOP/s | b1 / ResNet-50 b1 |"
    sep += "---:|---:|---:|---:|"
print(hdr)
print(sep)
for m in models:
    first = next((by[(m, g, 1)] for g in order if (m, g, 1) in by), None)
    line = f"| {m} | {first['gflops']:.2f} |" if first else f"| {m} | ? |"
    for g in order:
        r1, r64, ref = by.get((m, g, 1)), by.get((m, g, 64)), by.get(("resnet50", g, 1))
        if not r1:
            line += " error | | | |"
            continue
        ratio = tf(r1) / tf(ref) if tf(ref) > 0 else 0
        flag = " **< 1/3**" if r1["gflops"] > 10 and ratio < 1 / 3 else ""
        line += f" {r1['latency_ms']:.3f} | {tf(r1):.2f} | {tf(r64):.2f} | {ratio:.2f}{flag} |"
    print(line)
print()
for g in order:
    p = peak.get(g, {})
    print(f"Peaks, {g}: FP32 SIMT {p.get('fp32_tflops', '?')} TFLOP/s, FP16 tensor "
          f"{p.get('fp16_tensor_tflops', '?')} TFLOP/s dense, DRAM {p.get('mem_bw_gbs', '?')} GB/s.")
PY
)"
