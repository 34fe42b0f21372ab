#!/usr/bin/env bash
# http_compare.sh BASE_BUILD NEW_BUILD [ROUNDS] - the HTTP layer of two builds side
# by side (issue 17: libmicrohttpd, the base, against usher's own http.c), in one run
# on one machine, alternating A B A B so that drift and other load hit both:
#   1. bench_serve latency (the server in-process; wakeword-hello, one request at a
#      time, ROUNDS rounds of 200 per path): p50 of a binary inference, a JSON one and
#      GET /v2/health/live, and the added p50 over the direct ONNX Runtime call;
#   2. wrk -t2 -c16 for WRK_S s (default 5) on GET /v2/health/live and on the binary
#      inference: requests/s answered 200 (wrk shares the cores with the server).
# Prints one line per run (REPEATS pairs, default 3) and the new/base ratios of the
# medians.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench/http_compare.sh BASE_BUILD NEW_BUILD [ROUNDS]}
new=${2:?usage: bench/http_compare.sh BASE_BUILD NEW_BUILD [ROUNDS]}
rounds=${3:-5}
wrk_s=${WRK_S:-5}
out=bench/out/http_compare
mkdir -p "$out"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(uname -r)"
scripts/example-repo.sh "$out/example" >/dev/null
rm -rf "$out/only"
mkdir -p "$out/only"
cp -r "$out/example/wakeword-hello" "$out/only/"
hello=$out/only/wakeword-hello
hdr=$("$new/bench/bench_serve" body "$hello/1/model.onnx" "$out/hello.bin" | awk '{print $NF}')
cat >"$out/post.lua" <<'LUA'
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = os.getenv("IHCL")
LUA
latency() { # BUILD TAG
    "$1/bench/bench_serve" latency "$out/only" wakeword-hello --rounds "$rounds" --block 200 \
        --exe "$1/usher" >"$out/lat.$2.txt" 2>&1
    awk -F'|' -v tag="$2" '
        function first(k, v) { if (!(k in seen)) { seen[k] = 1; val[k] = v + 0 } }
        $2 ~ /served, binary/ { first("b", $4) } $2 ~ /served, JSON/ { first("j", $4) }
        $2 ~ /GET/ { first("g", $4) } $2 ~ /direct/ { first("d", $4) }
        END { printf "latency %-5s binary p50 %.1f us, JSON p50 %.1f us, GET live p50 %.1f us, direct be_run %.1f us\n", tag, val["b"], val["j"], val["g"], val["d"] }' \
        "$out/lat.$2.txt"
}
pid=
stop() { [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" || true; pid=; }; }
trap stop EXIT
rps() { # BUILD TAG
    "$1/usher" serve --repo "$out/only" --http-port 0 --quiet >"$out/serve.$2.log" 2>&1 &
    pid=$!
    local url=
    for _ in $(seq 300); do
        url=$(grep -o 'http://[0-9.]*:[0-9]*' "$out/serve.$2.log" | head -1 || true)
        [ -n "$url" ] && curl -sf "$url/v2/health/ready" >/dev/null && break
        sleep 0.2
    done
    local live inf
    live=$(wrk -t2 -c16 -d"${wrk_s}s" "$url/v2/health/live" | awk '/^Requests\/sec/ {print $2}')
    inf=$(BODY=$out/hello.bin IHCL=$hdr wrk -t2 -c16 -d"${wrk_s}s" -s "$out/post.lua" \
        "$url/v2/models/wakeword-hello/infer" | awk '/^Requests\/sec/ {print $2}')
    stop
    echo "rps     $2 GET live $live/s, binary inference $inf/s"
}
for i in $(seq "${REPEATS:-3}"); do
    latency "$base" base
    latency "$new" new
    rps "$base" base
    rps "$new" new
done | tee "$out/summary.txt"
awk '
    function med(a, n,    i, j, t, c) {
        for (i = 1; i <= n; i++) c[i] = a[i]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (c[j] < c[i]) { t = c[i]; c[i] = c[j]; c[j] = t }
        return n % 2 ? c[(n + 1) / 2] : (c[n / 2] + c[n / 2 + 1]) / 2
    }
    /^latency base/ { nb++; bb[nb] = $5; bj[nb] = $9; bg[nb] = $14 }
    /^latency new/  { nn++; nbi[nn] = $5; nj[nn] = $9; ng[nn] = $14 }
    /^rps +base/ { rb++; bl[rb] = $5 + 0; bi[rb] = $8 + 0 }
    /^rps +new/  { rn++; nl[rn] = $5 + 0; ni[rn] = $8 + 0 }
    END {
        printf "new/base: binary p50 %.2f, JSON p50 %.2f, GET live p50 %.2f; requests/s GET live %.2f, binary inference %.2f\n",
            med(nbi, nn) / med(bb, nb), med(nj, nn) / med(bj, nb), med(ng, nn) / med(bg, nb),
            med(nl, rn) / med(bl, rb), med(ni, rn) / med(bi, rb)
    }' "$out/summary.txt"
