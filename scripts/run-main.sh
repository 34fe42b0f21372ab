#!/usr/bin/env bash
# run-main.sh USHER - the main job until the server exists: inspect every
# model of the zoo at batch 1 and at batch 8, one model in detail, then
# estimate two models on a few GPU types.
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
