#!/usr/bin/env bash
# test_serve_models.sh - models whose input zeros cannot profile still come up
# READY (issue 10): `usher serve` on a repository of
#   audio        an audio front end, audio[1,N], that needs N >= 400
#                (tests/make_audio.py); no config.pbtxt, no sample: profiled
#                with random floats after N = 1 and 64 fail, at N = 512
#   audio-cfg    the same with config.pbtxt fixing N = 480
#   audio-max    the same with usher.yaml max_dims bounding N to 450
#   audio-long   the same needing N >= 20000: no size tried runs, so it is
#                served unprofiled (latency learned from its first requests)
#   text         text STRING [batch] -> Cast to INT64 -> x 2
#                (tests/make_strmodel.py): profiled with strings "1"
#   text-sample  the same with a sample request of two strings, replicated
#                to every batch size profiled
#   text-badsample  the same with a sample that does not parse as numbers:
#                served unprofiled, with usher.yaml's max_batch and replicas
# Each must be READY, answer correctly (the audio outputs checked against
# numpy), and the plan printout must say how it was profiled.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
. "$here/serve_lib.sh"

repo=$tmp/repo
models="audio audio-cfg audio-max audio-long text text-sample text-badsample"
for m in $models; do mkdir -p "$repo/$m/1"; done
for m in audio audio-cfg audio-max; do $py "$here/make_audio.py" "$repo/$m/1/model.onnx"; done
$py "$here/make_audio.py" "$repo/audio-long/1/model.onnx" 20000 160 8
$py "$here/make_strmodel.py" "$repo/text/1/model.onnx"
cp "$repo/text/1/model.onnx" "$repo/text-sample/1/model.onnx"
cp "$repo/text/1/model.onnx" "$repo/text-badsample/1/model.onnx"
printf 'max_batch_size: 0\ninput [ { name: "audio", data_type: TYPE_FP32, dims: [ 1, 480 ] } ]\n' \
    >"$repo/audio-cfg/config.pbtxt"
printf 'max_dims:\n  audio: [1, 450]\n' >"$repo/audio-max/usher.yaml"
printf 'sample: sample.json\n' >"$repo/text-sample/usher.yaml"
printf '{"inputs":[{"name":"text","datatype":"BYTES","shape":[2],"data":["7","8"]}]}' \
    >"$repo/text-sample/sample.json"
printf 'sample: sample.json\nmax_batch: 8\nreplicas: 2\n' >"$repo/text-badsample/usher.yaml"
printf '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["seven"]}]}' \
    >"$repo/text-badsample/sample.json"

start_server "$repo" || { echo "FAIL the server did not start"; exit 1; }
wait_ready && ready=200 || ready=$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/ready")
cat "$tmp/serve.log"

# ---- every model READY, none UNAVAILABLE ---------------------------------------------
[ "$ready" = 200 ] && ok all_ready || fail "all_ready: /v2/health/ready $ready"
curl -s -X POST "$url/v2/repository/index" >"$tmp/index.json"
$py - "$tmp/index.json" $models <<'PY' && ok index_ready || fail "index_ready: $(cat "$tmp/index.json")"
import json, sys
idx = {m["name"]: m["state"] for m in json.load(open(sys.argv[1]))}
assert all(idx.get(m) == "READY" for m in sys.argv[2:]), idx
PY

# ---- the plan printout says how each was profiled ---------------------------------------
row() { awk -v m="$1" '$1 == m' "$tmp/serve.log"; }
row audio | grep -q 'profiled with random inputs; dynamic dims audio\[1\] = 512 (1, 64 failed)' &&
    ok plan_audio || fail "plan_audio: $(row audio)"
row audio-cfg | grep -q 'profiled with random inputs; from config.pbtxt: audio\[1\] = 480' &&
    ok plan_audio_config || fail "plan_audio_config: $(row audio-cfg)"
row audio-max | grep -q 'dynamic dims audio\[1\] = 450 (its max_dims) (1, 64 failed)' &&
    ok plan_audio_max_dims || fail "plan_audio_max_dims: $(row audio-max)"
row text | grep -q 'profiled with synthetic inputs (strings "1")' &&
    ok plan_text || fail "plan_text: $(row text)"
# the sample's two strings replicated: batches past 2 were measured
row text-sample | awk '/profiled with the sample request/ && $5 > 2 { ok = 1 } END { exit !ok }' &&
    ok plan_text_sample || fail "plan_text_sample: $(row text-sample)"
# served unprofiled: no latency, no capacity, the backend's reason, and a warning
row audio-long | awk '$6 == "-" && $7 == "-" &&
                      /not profiled: .*Conv.*; latency learned from its first requests/ { ok = 1 }
                      END { exit !ok }' &&
    grep -q "warn: model 'audio-long': not profiled" "$tmp/serve.log" &&
    ok plan_audio_long_unprofiled || fail "plan_audio_long_unprofiled: $(row audio-long)"
# a sample the model refuses: unprofiled, usher.yaml's replicas (2) and max_batch (8)
row text-badsample | awk '$3 == 2 && $5 == 8 && $6 == "-" &&
                          /not profiled: the sample request failed: .*Cast/ { ok = 1 }
                          END { exit !ok }' &&
    ok plan_text_badsample || fail "plan_text_badsample: $(row text-badsample)"
! grep -q UNAVAILABLE "$tmp/serve.log" && ok no_unavailable || fail "no_unavailable"

# ---- answers -----------------------------------------------------------------------------
r=$(curl -s "$url/v2/models/text/infer" \
    -d '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["21"]}]}')
echo "$r" | grep -q '"data":\[42\]' && ok text_answers_42 || fail "text_answers_42: $r"
r=$(curl -s "$url/v2/models/text-sample/infer" \
    -d '{"inputs":[{"name":"text","datatype":"BYTES","shape":[3],"data":["1","-5","100"]}]}')
echo "$r" | grep -q '"data":\[2,-10,200\]' && ok text_sample_answers ||
    fail "text_sample_answers: $r"
r=$(curl -s "$url/v2/models/text-badsample/infer" \
    -d '{"inputs":[{"name":"text","datatype":"BYTES","shape":[2],"data":["4","5"]}]}')
echo "$r" | grep -q '"data":\[8,10\]' && ok text_badsample_answers ||
    fail "text_badsample_answers: $r"

# audio: a [1,N] request, the output checked against numpy's convolution
check_audio() { # check_audio MODEL N WINDOW
    $py - "$url" "$1" "$2" "$3" "$here" <<'PY'
import json, subprocess, sys
import numpy as np
url, model, here = sys.argv[1], sys.argv[2], sys.argv[5]
n, window = int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, here)
from make_audio import weights
w, b = weights(window, 8)
x = (0.5 * np.sin(np.arange(n) * 0.01) + 0.1 * np.cos(np.arange(n) * 0.37)).astype(np.float32)
body = json.dumps({"inputs": [{"name": "audio", "datatype": "FP32", "shape": [1, n],
                               "data": [float(v) for v in x]}]})
r = subprocess.run(["curl", "-s", f"{url}/v2/models/{model}/infer", "-H",
                    "Content-Type: application/json", "--data-binary", "@-"],
                   input=body.encode(), capture_output=True, check=True)
out = json.loads(r.stdout)
frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), window)[::160]
want = (frames @ w[:, 0, :].T.astype(np.float64) + b).mean(axis=0)
y = np.array(out["outputs"][0]["data"], dtype=np.float64)
assert out["outputs"][0]["shape"] == [1, 8], out
assert np.allclose(y, want, rtol=1e-4, atol=1e-5), (y, want)
print(f"  {model} [1,{n}]: {np.round(y, 5).tolist()}")
PY
}
check_audio audio 16000 400 && ok audio_answers || fail "audio_answers"
check_audio audio-max 450 400 && ok audio_max_answers || fail "audio_max_answers"
check_audio audio-long 20000 20000 && ok audio_long_answers || fail "audio_long_answers"

# one oversized request does not pin the model (issue 10): its cost counts its length,
# so it is refused at once when it cannot make the SLO, or runs without moving the
# prediction for normal requests; either way normal requests are then admitted and
# served as before (it used to drive the latency scale to its cap: 503s for 20 s)
$py - "$url" <<'PY' && ok oversized_request_does_not_pin || fail oversized_request_does_not_pin
import json, sys, time, urllib.request, urllib.error
url = sys.argv[1] + "/v2/models/audio/infer"
def infer(n, timeout_us=0, model_url=url, body=None):
    params = ',"parameters":{"timeout":%d}' % timeout_us if timeout_us else ""
    body = body or '{"inputs":[{"name":"audio","datatype":"FP32","shape":[1,%d],"data":[%s]}]%s}' % (
        n, ",".join(["0.25"] * n), params)
    t = time.monotonic()
    try:
        with urllib.request.urlopen(urllib.request.Request(model_url, body.encode()), timeout=60) as r:
            code, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        code, text = e.code, e.read().decode()
    return code, text, (time.monotonic() - t) * 1e3
def scale():
    with urllib.request.urlopen(sys.argv[1] + "/metrics") as r:
        for line in r.read().decode().splitlines():
            if line.startswith('usher_batch_latency_scale{model="audio"}'):
                return float(line.split()[-1])
before = [infer(16000)[0] for _ in range(20)]
s0 = scale()
# 30 s of audio runs (its cost predicts it); 250 s of audio with a 1 ms timeout cannot make
# it on any CPU (80 M multiply-adds; its 36 MB body alone takes longer to decode): refused,
# naming why (test_runtime's serve_cost_counts_every_dim checks the cost itself)
big = [infer(480000), infer(4000000, 1000)]
after = [infer(16000)[0] for _ in range(20)]
s1 = scale()
# a tiny model meets a 1 ms timeout on an idle server (it used to get 503 every time)
text_url = sys.argv[1] + "/v2/models/text/infer"
text_body = '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["21"]}]%s}'
def served_ns():  # the server's own time for the text model's answered requests, and their count
    with urllib.request.urlopen(sys.argv[1] + "/v2/models/text/stats") as r:
        s = json.loads(r.read())["model_stats"][0]["inference_stats"]["success"]
    return s["ns"], s["count"]
ns0, n0 = served_ns()
untimed = [infer(0, 0, text_url, text_body % "")[0] for _ in range(20)]
ns1, n1 = served_ns()
mean_us = (ns1 - ns0) / max(1, n1 - n0) / 1e3
tiny = [infer(0, 1000, text_url, text_body % ',"parameters":{"timeout":1000}')[0]
        for _ in range(20)]
print("  audio: 20 normal requests %s; [1,480000] %d in %.0f ms; [1,4000000] with a 1 ms timeout "
      "%d in %.1f ms (%s); then 20 normal %s; scale %.2f -> %.2f; text with a 1 ms timeout %s" % (
          sorted(set(before)), big[0][0], big[0][2], big[1][0], big[1][2],
          json.loads(big[1][1]).get("error", "answered")[:100], sorted(set(after)), s0, s1,
          "%d of 20 answered (without one, the server took %.0f us a request)" % (
              tiny.count(200), mean_us)))
# the 30 s clip may be refused too where decoding its body eats the SLO (a sanitizer
# build); what matters is what follows it
# the tiny model's 1 ms: before issue 10 every one got 503, idle or not. Where this run
# measured the server's own time at under a tenth of 1 ms (idle: ~25 us on the Intel Xeon
# VM), most must be answered. On a machine busy beside the test (two CPU hogs: 276 us, and
# 1 or 7 of 20 answered) the observed slowdown makes refusing right, and the count is only
# printed
want = 15 if mean_us < 100 else 0
ok = all(c == 200 for c in before + after + untimed) and big[0][0] in (200, 503)
ok = ok and tiny.count(200) >= want and all(c in (200, 503) for c in tiny)
ok = ok and big[1][0] == 503 and "deadline cannot be met" in big[1][1]
sys.exit(0 if ok else 1)
PY

kill -TERM "$srv"
wait "$srv"
rc=$?
srv=
[ $rc -eq 0 ] && ok exit_0 || fail "exit_0: $rc"
echo "$fails failure(s)"
[ "$fails" -eq 0 ]
