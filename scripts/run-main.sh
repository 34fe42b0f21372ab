#!/usr/bin/env bash
# run-main.sh USHER - the main job until the server exists: inspect every
# model of the zoo at batch 1 and at batch 8, then one model in detail.
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
