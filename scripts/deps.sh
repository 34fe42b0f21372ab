#!/usr/bin/env bash
# deps.sh - install what usher needs on Debian 12, idempotently.
#
#   1. Debian packages: installed with apt-get only when one is missing
#      (needs root; otherwise prints the command to run). A fresh Debian 12
#      needs only git, make and ca-certificates before the first `make`
#      (README.md); everything else the build, the tests and the benchmarks
#      call is in APT_PKGS (npm from Debian when there is none on the PATH).
#   2. npm tarballs listed in scripts/npm.lock: fetched with `npm pack`
#      (no install scripts run), checked against the pinned sha256, cached in
#      .deps/npm/ and unpacked beside (.deps/npm/<name>/package/...).
#      With --gpu, also those of scripts/npm-gpu.lock (ONNX Runtime's CUDA
#      provider, 179 MB; only scripts/gpu.sh asks for it).
#
# Usage: scripts/deps.sh [--no-npm | --gpu]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# procps: pgrep (tests/test_serve_cli.sh looks for orphan workers); python3-numpy:
# tests/check_normal_floats.py (python3-onnx depends on it too); make: for a
# machine where this script was run by hand before the first `make`;
# chromium and fonts-dejavu-core: tests/test_sim_html.sh opens usher simulate's HTML
# report in a real headless browser and checks what it renders (the font so that the
# plots' text has glyphs on a bare machine); protobuf-compiler, python3-protobuf and
# python3-yaml: tests/test_export.sh parses the Triton configs usher export writes
# against tests/triton_model_config.proto and reads its Kubernetes manifests;
# python3-torch and python3-torchvision: scripts/make_finetuned.py trains the fine-tuned
# variants that tests/test_merge.sh and bench_merge merge; libgrpc-dev and pkg-config:
# usher serve --grpc-port (gRPC's C core, found with pkg-config); python3-grpcio and
# python3-grpc-tools: tests/test_serve_grpc.sh's client (stubs compiled from the .proto);
# time (GNU time, /usr/bin/time -v): tools/experiments/scale_scenario.py and
# tests/test_sim_scale.sh measure each plan's and simulation's CPU time and peak RSS
APT_PKGS=(cmake ninja-build make gcc clang libclang-rt-14-dev protobuf-c-compiler libyaml-dev libglpk-dev
          libmicrohttpd-dev zlib1g-dev libprotobuf-c-dev libonnx-dev python3 python3-onnx python3-numpy
          ca-certificates curl wrk procps chromium fonts-dejavu-core
          protobuf-compiler python3-protobuf python3-yaml python3-torch python3-torchvision
          libgrpc-dev pkg-config python3-grpcio python3-grpc-tools time)

missing=()
# npm may come from elsewhere (NodeSource); Debian's only when there is none
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
for p in "${APT_PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    echo "deps: installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: not root; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${1:-}" = "--no-npm" ] && exit 0
locks=(scripts/npm.lock)
[ "${1:-}" = "--gpu" ] && locks+=(scripts/npm-gpu.lock)

cache="$root/.deps/npm"
mkdir -p "$cache"
while read -r spec sha _; do
    case "$spec" in ''|'#'*) continue ;; esac
    name=${spec%@*}
    version=${spec##*@}
    base=$(echo "${name#@}" | tr '/' '-')
    tgz="$cache/$base-$version.tgz"
    dir="$cache/$base"
    if [ -f "$tgz" ] && echo "$sha  $tgz" | sha256sum -c --quiet - 2>/dev/null; then
        [ -f "$dir/.version" ] && [ "$(cat "$dir/.version")" = "$version" ] && continue
    else
        rm -f "$tgz"
        echo "deps: fetching $spec"
        tmp=$(mktemp -d)
        # --loglevel=error, not --silent: --silent hides npm's own error too, and
        # a fetch that fails (no route to the registry: about 70 s of retries)
        # then said nothing. stderr is kept and shown when the fetch fails.
        t0=$SECONDS
        if ! (cd "$tmp" && npm pack "$spec" --loglevel=error >"$tmp/out" 2>"$tmp/err"); then
            echo "deps: npm pack $name@$version failed after $((SECONDS - t0)) s" \
                 "(registry $(npm config get registry 2>/dev/null || echo '?')); npm said:" >&2
            if [ -s "$tmp/err" ]; then
                sed 's/^/    /' "$tmp/err" >&2
            else
                echo "    (nothing on stderr; its output: $(cat "$tmp/out"))" >&2
            fi
            rm -rf "$tmp"
            exit 1
        fi
        files=("$tmp"/*.tgz)
        if [ "${#files[@]}" -ne 1 ] || [ ! -f "${files[0]}" ]; then
            echo "deps: npm pack $name@$version made no single tarball; npm said:" >&2
            sed 's/^/    /' "$tmp/out" "$tmp/err" >&2
            rm -rf "$tmp"
            exit 1
        fi
        mv "${files[0]}" "$tgz"
        rm -rf "$tmp"
        if ! echo "$sha  $tgz" | sha256sum -c --quiet - ; then
            echo "deps: $spec: sha256 mismatch (expected $sha); refusing it" >&2
            rm -f "$tgz"
            exit 1
        fi
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    # ONNX Runtime's package carries every platform (385 MB unpacked): keep
    # the licence, the C headers and the linux-x64 libraries
    members=()
    case "$name" in
        com.github.asus4.onnxruntime)
            members=(--wildcards 'package/LICENSE' 'package/ThirdPartyNotices.txt'
                     'package/Plugins/Linux/x64/*.so'
                     'package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers/*') ;;
        com.github.asus4.onnxruntime.linux-x64-gpu)
            members=(--wildcards 'package/Plugins/Linux/x64/libonnxruntime_providers_*.so') ;;
    esac
    tar -xzf "$tgz" -C "$dir" --no-same-owner --no-same-permissions "${members[@]}"
    echo "$version" > "$dir/.version"
done < <(cat "${locks[@]}")

# a node_modules tree over the unpacked packages (one version of each), so that
# Node.js resolves the Kubernetes validator's imports (tests/test_export.sh):
# .deps/node_modules/<name> -> ../npm/<base>/package
mods="$root/.deps/node_modules"
mkdir -p "$mods"
while read -r spec _; do
    case "$spec" in ''|'#'*) continue ;; esac
    name=${spec%@*}
    base=$(echo "${name#@}" | tr '/' '-')
    [ -d "$cache/$base/package" ] || continue
    case "$name" in @*/*) mkdir -p "$mods/${name%/*}"; rel="../../npm/$base/package" ;;
                    *) rel="../npm/$base/package" ;; esac
    ln -sfn "$rel" "$mods/$name"
done < <(cat "${locks[@]}")
