#!/usr/bin/env bash
# tour.sh USHER - a tour of the offline tools (`make tour`): inspect every
# model of the zoo at batch 1 and at batch 8, one model in detail, estimate
# two models on a few GPU types, then plan the example workload on an
# elastic and on a fixed cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
usher=${1:-build/usher}
echo "usher $("$usher" --version | cut -d' ' -f2): the model zoo at batch 1"
"$usher" inspect models/zoo/*.onnx --batch 1
echo
echo "... and at batch 8"
"$usher" inspect models/zoo/*.onnx --batch 8
echo
"$usher" inspect models/zoo/resnet50.onnx --batch 8
echo
echo "ResNet-50 and BERT-base on three GPU types, batch 1 and 32, half and whole GPU:"
"$usher" estimate models/zoo/resnet50.onnx --gpu t4,a100-80gb,h100-sxm --batch 1,32 --share 50,100
"$usher" estimate models/zoo/bert-base.onnx --gpu a100-80gb:3g.40gb,a100-80gb --batch 1,32 \
    --share 100 --precision fp16
echo
echo "The example workload (examples/workload.yaml) on an elastic cluster of A100, V100 and T4:"
"$usher" plan --workload examples/workload.yaml --cluster examples/cluster-elastic.yaml \
    -o build/plan-elastic.json
echo
echo "... every policy on it:"
"$usher" plan --workload examples/workload.yaml --cluster examples/cluster-elastic.yaml --compare
echo
echo "... and on a fixed cluster of two A100 and two V100:"
"$usher" plan --workload examples/workload.yaml --cluster examples/cluster-fixed.yaml --quiet \
    -o build/plan-fixed.json && echo "plan written to build/plan-fixed.json"
