#!/usr/bin/env bash
# gpu-bundle.sh - carry what the GPU checks of `usher serve` need to a GPU
# machine that cannot fetch anything and takes at most 64 MiB per transfer
# (the lent device machines: docs/gpu-check.md).
#
#   scripts/gpu-bundle.sh make OUT    (here, on Debian 12 with network)
#       builds usher (build/), fetches ONNX Runtime's CUDA provider
#       (scripts/deps.sh --gpu: npm, pinned sha256), and writes
#       OUT/usher-gpu.tar.xz.NN, parts of at most PART_MIB (default 50) MiB,
#       and OUT/SHA256SUMS. The archive holds:
#         bin/usher            this build
#         lib/                 its shared libraries other than glibc's
#                              (libmicrohttpd, gnutls, glpk, yaml, ...)
#         ort/                 libonnxruntime.so 1.29 and its CUDA and
#                              shared providers (CUDA 13 build, 230 MB)
#         repo/                the example repository (wakeword-hello, ocr-cls)
#         plan-mps.yaml        both models on GPU 0, shares 30 % and 70 %
#         check.sh             the checks (docs/gpu-check.md)
#   scripts/gpu-bundle.sh join DIR DEST    (there)
#       checks DIR's parts against SHA256SUMS, unpacks them into DEST.
#
# The parts travel one per call (each call's working tree is limited), into
# an ignored folder that stays on the machine while it is held.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}
part_mib=${PART_MIB:-50}

case "$cmd" in
make)
    out=${2:?usage: gpu-bundle.sh make OUT}
    scripts/deps.sh --gpu
    make build >/dev/null
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/bin" "$stage/lib" "$stage/ort"
    cp build/usher "$stage/bin/"
    # every library the binary loads but glibc's own (the target has a newer glibc)
    ldd build/usher | awk '/=> \// { print $3 }' |
        grep -vE '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*)\.so' |
        while read -r l; do cp -L "$l" "$stage/lib/"; done
    cpu=.deps/npm/com.github.asus4.onnxruntime/package/Plugins/Linux/x64
    gpu=.deps/npm/com.github.asus4.onnxruntime.linux-x64-gpu/package/Plugins/Linux/x64
    cp "$cpu/libonnxruntime.so" "$gpu/libonnxruntime_providers_cuda.so" \
        "$gpu/libonnxruntime_providers_shared.so" "$stage/ort/"
    scripts/example-repo.sh "$stage/all" >/dev/null
    mkdir -p "$stage/repo"
    cp -r "$stage/all/wakeword-hello" "$stage/all/ocr-cls" "$stage/repo/"
    rm -rf "$stage/all"
    cat >"$stage/plan-mps.yaml" <<'EOF'
# two models on GPU 0 with compute shares (docs/gpu-check.md); the same file
# serves for MPS (--gpu-share mps) and green contexts (--gpu-share sm)
schema_version: 1
gpus:
  - type: h100-sxm
    replicas:
      - {model: wakeword-hello, batch: 1, share: 30}
      - {model: ocr-cls, batch: 8, share: 70}
EOF
    cp scripts/gpu-check.sh "$stage/check.sh"
    mkdir -p "$out"
    rm -f "$out"/usher-gpu.tar.xz.* "$out/SHA256SUMS"
    tar -C "$stage" -cf - . | xz -T0 -6 | split -b "${part_mib}M" -d - "$out/usher-gpu.tar.xz."
    (cd "$out" && sha256sum usher-gpu.tar.xz.* >SHA256SUMS)
    ls -l "$out"
    ;;
join)
    dir=${2:?usage: gpu-bundle.sh join DIR DEST}
    dest=${3:?usage: gpu-bundle.sh join DIR DEST}
    (cd "$dir" && sha256sum -c --quiet SHA256SUMS)
    mkdir -p "$dest"
    cat "$dir"/usher-gpu.tar.xz.* | xz -d | tar -C "$dest" -xf -
    echo "gpu-bundle: unpacked into $dest; next: $dest/check.sh"
    ;;
*)
    echo "usage: scripts/gpu-bundle.sh make OUT | join DIR DEST" >&2
    exit 2
    ;;
esac
