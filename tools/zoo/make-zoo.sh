#!/usr/bin/env bash
# make-zoo.sh [USHER [NAME...]] - rebuild models/zoo/: export full-weight
# models with torch (tools/zoo/export_zoo.py, Debian python3-torch +
# python3-torchvision), then strip their weights with `usher convert --strip`
# so the committed files are graph-only (dims, graph and small constants kept;
# weights >= 4 KiB dropped).
# With NAMEs only those models are exported and stripped (the other committed
# files are left alone, byte for byte), e.g.
#   tools/zoo/make-zoo.sh build/usher densenet201 ssd300-resnet50
# Without NAMEs every model is exported and every file in $ZOO_FULL stripped.
# Then the rows of models/zoo/shapes.tsv (output shapes torch produces, which
# tests/test_zoo.c checks) are re-made for the same models (SKIP_SHAPES=1
# skips that).
# Developers run this; CI uses the committed files.
set -euo pipefail
cd "$(dirname "$0")/../.."
usher=${1:-build/usher}
shift || true
names=("$@")
full=${ZOO_FULL:-/tmp/zoo-full}
mkdir -p "$full" models/zoo
if [ -z "${SKIP_EXPORT:-}" ]; then
    /usr/bin/python3 tools/zoo/export_zoo.py "$full" "${names[@]}"
fi
if [ ${#names[@]} -gt 0 ]; then
    files=()
    for n in "${names[@]}"; do files+=("$full/$n.onnx"); done
else
    files=("$full"/*.onnx)
fi
for f in "${files[@]}"; do
    name=$(basename "$f")
    "$usher" convert "$f" "models/zoo/$name" --strip
    printf '%-24s %12s -> %8s bytes\n' "$name" "$(stat -c %s "$f")" "$(stat -c %s "models/zoo/$name")"
done
if [ -z "${SKIP_SHAPES:-}" ]; then
    /usr/bin/python3 tools/zoo/export_zoo.py --shapes models/zoo/shapes.tsv "${names[@]}"
fi
