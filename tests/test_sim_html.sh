#!/usr/bin/env bash
# test_sim_html.sh - usher simulate's HTML report and SVG plots as a browser
# shows them (issue 14: "open the HTML report in a real headless browser").
#
# A plan of two zoo models on two GPUs (its file name full of markup
# characters) is simulated with a time series and a load sweep into
# --html and --svg-dir; the page must be the same bytes twice and hold no
# script or external reference. Then Debian's chromium, headless, loads it:
#   --dump-dom   every expected <svg> is in the DOM with its lines (paths of
#                2+ points), heat-map cells of several colours, axis and
#                legend text, and the plan's name shown as text, not markup;
#   --screenshot the page and one standalone .svg: decoded here (zlib and
#                struct, no imaging library) and counted: enough non-white
#                pixels, the palette's model colours (lines) and viridis
#                (the heat map) present, in the plots' part of the page.
# Then usher compare's page (two policies, gamma arrivals): chromium's DOM holds per
# policy a latency CDF with both models' lines and a GPU heat map of several colours.
# Exit 77 (ctest: skipped), saying so, only when chromium is not installed
# (scripts/deps.sh installs it); everything before the browser still runs.
set -uo pipefail
usher=${USHER_BIN:?run through ctest}
src=${USHER_SOURCE_DIR:?run through ctest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fails=0
fail() {
    echo "FAIL $*"
    fails=$((fails + 1))
}
ok() { echo "ok   $*"; }

zoo=$src/models/zoo
cat > w.yaml <<EOF
models:
  - name: resnet18
    model: $zoo/resnet18.onnx
    rate: 300
    slo_ms: 40
  - name: mobilenet-v2
    model: $zoo/mobilenet-v2.onnx
    rate: 600
    slo_ms: 30
EOF
plan="plan <&'\">.json"
cat > "$plan" <<'EOF'
{"schema_version": 1, "gpus": [
 {"type": "t4", "price_per_hour": 0.5, "replicas": [
  {"model": "resnet18", "batch": 4, "share": 50},
  {"model": "mobilenet-v2", "batch": 8, "share": 50}]},
 {"type": "v100-16gb", "price_per_hour": 2.5, "replicas": [
  {"model": "mobilenet-v2", "batch": 8, "share": 60}]}]}
EOF

sim() { "$usher" simulate --plan "$plan" --workload w.yaml --duration 10 --quiet "$@"; }

if sim --sweep 0.5,1,2,3 --html r.html --svg-dir svg > out.txt 2> err.txt; then
    ok "simulate --html --svg-dir --sweep"
else
    fail "simulate --html: exit $?"; sed 's/^/    /' err.txt
fi
grep -q "load sweep" out.txt && grep -q "requests per second" out.txt ||
    fail "the table and the sweep's table on stdout"
sim --sweep 0.5,1,2,3 --html r2.html > /dev/null 2>&1
cmp -s r.html r2.html && ok "the same seed gives the same page" || fail "two runs, two pages"
for f in latency-cdf gpu-utilisation goodput-time sweep-goodput sweep-attainment; do
    [ -s "svg/$f.svg" ] && head -c 5 "svg/$f.svg" | grep -q '<?xml' || fail "svg/$f.svg missing"
done
if grep -qiE '<script|src=|@import|<link' r.html; then fail "the page loads something"; fi
[ "$(grep -o 'http' r.html | wc -l)" = "$(grep -o 'xmlns="http://www.w3.org/2000/svg"' r.html | wc -l)" ] ||
    fail "a URL other than the SVG namespace in the page"
# with --json: {"report": ..., "sweep": [...]}, valid JSON, the runs in order
sim --sweep 1,2 --json --interval 1 > sweep.json 2> /dev/null
python3 - sweep.json <<'EOF' || fail "--sweep --json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["report"]["rate_scale"] == 1 and [r["rate_scale"] for r in d["sweep"]] == [1, 2], d.keys()
assert "gpus" in d["report"]["series"], "the per-GPU series"
EOF
# without --sweep and --interval: a series chosen for the plots, no sweep section
sim --html plain.html > /dev/null 2>&1 || fail "--html alone"
grep -q 'id="gpu-utilisation"' plain.html && ! grep -q 'id="sweep"' plain.html ||
    fail "--html alone: the heat map without a sweep"
# usage and write errors
sim --sweep 0,1 > /dev/null 2> e.txt; [ $? = 2 ] && grep -q "rate scales" e.txt || fail "--sweep 0"
sim --sweep 1,x > /dev/null 2> e.txt; [ $? = 2 ] || fail "--sweep 1,x"
sim --html nodir/r.html > /dev/null 2> e.txt; [ $? = 1 ] && grep -q "nodir/r.html" e.txt ||
    fail "--html into a missing directory: exit 1 naming it"
: > afile
sim --svg-dir afile > /dev/null 2> e.txt; [ $? = 1 ] && grep -q "afile" e.txt ||
    fail "--svg-dir onto a file"

chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
    echo "SKIP: no chromium on this machine (scripts/deps.sh installs Debian's); the page was"
    echo "      checked as text only, not rendered"
    [ "$fails" = 0 ] || exit 1
    exit 77
fi
browse() {
    HOME=$tmp timeout 120 "$chromium" --headless --disable-gpu --no-sandbox --hide-scrollbars \
        --user-data-dir="$tmp/profile" --no-first-run --disable-extensions "$@" 2>> chromium.log
}
browse --dump-dom "file://$tmp/r.html" > dom.html || fail "chromium --dump-dom: exit $?"
browse --window-size=1280,4400 --screenshot="$tmp/page.png" "file://$tmp/r.html" > /dev/null ||
    fail "chromium --screenshot of the page"
browse --window-size=800,420 --screenshot="$tmp/cdf.png" "file://$tmp/svg/latency-cdf.svg" \
    > /dev/null || fail "chromium --screenshot of latency-cdf.svg"
for f in dom.html page.png cdf.png; do
    [ -s "$f" ] || { fail "chromium wrote no $f"; tail -5 chromium.log | sed 's/^/    /'; }
done
if [ -s dom.html ] && [ -s page.png ] && [ -s cdf.png ]; then
    if python3 - dom.html page.png cdf.png "$plan" <<'EOF'; then
import struct, sys, zlib
from html.parser import HTMLParser

problems = []

# ---- the DOM chromium built -------------------------------------------------------
class Dom(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.svgs, self.cur, self.text, self.scripts = {}, None, [], 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'script':
            self.scripts += 1
        if tag == 'svg':
            self.cur = self.svgs.setdefault(a.get('id'), {'paths': [], 'rects': [], 'text': []})
        elif self.cur is not None and tag == 'path' and a.get('class') == 'series':
            self.cur['paths'].append(a.get('d', ''))
        elif self.cur is not None and tag == 'rect':
            self.cur['rects'].append(a.get('fill', ''))
    def handle_endtag(self, tag):
        if tag == 'svg':
            self.cur = None
    def handle_data(self, data):
        (self.cur['text'] if self.cur is not None else self.text).append(data)

dom = Dom()
dom.feed(open(sys.argv[1], encoding='utf-8').read())
want = {'latency-cdf': 2, 'goodput-time': 3, 'sweep-goodput': 4, 'sweep-attainment': 3,
        'gpu-utilisation': 0}
for sid, lines in want.items():
    s = dom.svgs.get(sid)
    if s is None:
        problems.append('no <svg id="%s"> in the DOM' % sid)
        continue
    full = [d for d in s['paths'] if d.count('L') >= 1 and d.startswith('M')]
    if len(s['paths']) != lines or len(full) != lines:
        problems.append('%s: %d series paths, %d with 2+ points, expected %d'
                        % (sid, len(s['paths']), len(full), lines))
    words = ' '.join(s['text'])
    if len(s['text']) < 10:
        problems.append('%s: only %d text nodes (axes, ticks, legend)' % (sid, len(s['text'])))
    for w in {'latency-cdf': ['resnet18', 'mobilenet-v2', 'latency (ms, log scale)'],
              'gpu-utilisation': ['gpu 0 t4', 'gpu 1 v100-16gb', 'time (s)', '100%'],
              'goodput-time': ['all models', 'time (s)'],
              'sweep-goodput': ['offered (ideal)', 'offered load (requests/s)'],
              'sweep-attainment': ['all models']}[sid]:
        if w not in words:
            problems.append('%s: no text %r' % (sid, w))
heat = dom.svgs.get('gpu-utilisation', {'rects': []})['rects']
cells = [f for f in heat if f.startswith('#') and f != '#ffffff']
if len(cells) != 2 * 100 or len(set(cells)) < 3:
    problems.append('heat map: %d cells of %d colours (expected 2 GPUs x 100 intervals, varied)'
                    % (len(cells), len(set(cells))))
if dom.scripts:
    problems.append('%d <script> elements' % dom.scripts)
if sys.argv[4] not in ' '.join(dom.text):
    problems.append('the plan name %r is not shown as text' % sys.argv[4])

# ---- the screenshots --------------------------------------------------------------
def read_png(path):
    d = open(path, 'rb').read()
    if d[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError(path + ': not a PNG')
    i, idat = 8, []
    while i < len(d):
        n, = struct.unpack('>I', d[i:i + 4])
        t, c = d[i + 4:i + 8], d[i + 8:i + 8 + n]
        i += 12 + n
        if t == b'IHDR':
            w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', c)
        elif t == b'IDAT':
            idat.append(c)
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError('%s: PNG of depth %d, colour type %d' % (path, depth, ctype))
    ch = 3 if ctype == 2 else 4
    raw, stride, pos = zlib.decompress(b''.join(idat)), w * ch, 0
    prev, rows = bytearray(stride), []
    for _ in range(h):  # undo each row's filter (PNG spec, section 9)
        f, cur = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        if f == 1:
            for k in range(ch, stride):
                cur[k] = (cur[k] + cur[k - ch]) & 255
        elif f == 2:
            cur = bytearray((x + y) & 255 for x, y in zip(cur, prev))
        elif f == 3:
            for k in range(stride):
                cur[k] = (cur[k] + (((cur[k - ch] if k >= ch else 0) + prev[k]) >> 1)) & 255
        elif f == 4:
            for k in range(stride):
                a, c = (cur[k - ch], prev[k - ch]) if k >= ch else (0, 0)
                b = prev[k]
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[k] = (cur[k] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(cur)
        prev = cur
    return w, h, ch, rows

def near(px, rgb, tol=40):
    return all(abs(a - b) <= tol for a, b in zip(px, rgb))

PALETTE = [(0x4e, 0x79, 0xa7), (0xf2, 0x8e, 0x2b)]  # the two models' lines
VIRIDIS = [(68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140),
           (40, 174, 128), (94, 201, 98), (173, 220, 48), (253, 231, 37)]  # the heat map
def census(path):  # every other pixel of every other row
    w, h, ch, rows = read_png(path)
    ink = model = heat = 0
    for y in range(0, h, 2):
        r = rows[y]
        for x in range(0, w * ch, 2 * ch):
            px = (r[x], r[x + 1], r[x + 2])
            if min(px) < 235:
                ink += 1
                if near(px, PALETTE[0]) or near(px, PALETTE[1]):
                    model += 1
                elif any(near(px, v, 20) for v in VIRIDIS):
                    heat += 1
    return w, h, ink, model, heat

w, h, ink, model, heat = census(sys.argv[2])
print('page %dx%d: %.1f%% of the pixels inked, %d in the models\' colours, %d in the heat map\'s'
      ' (a quarter of the pixels sampled)' % (w, h, 400.0 * ink / (w * h), model, heat))
if ink < 0.02 * w * h / 4:
    problems.append('the page screenshot is nearly blank (%d inked pixels)' % ink)
if model < 500:
    problems.append('the page shows few line pixels (%d)' % model)
if heat < 2000:
    problems.append('the page shows little of the heat map (%d pixels)' % heat)
w, h, ink, model, heat = census(sys.argv[3])
print('latency-cdf.svg %dx%d: %.1f%% inked, %d in the models\' colours'
      % (w, h, 400.0 * ink / (w * h), model))
if ink < 0.02 * w * h / 4 or model < 80:
    problems.append('the standalone latency-cdf.svg renders nearly blank')
for p in problems:
    print('FAIL', p)
sys.exit(1 if problems else 0)
EOF
        ok "chromium renders every plot (DOM and screenshots)"
    else
        fail "what chromium rendered"
    fi
fi
# usher compare's page: per policy a latency CDF and a GPU heat map, as chromium builds them
cat > c.yaml <<'EOF'
objective: min-cost
gpus:
  - type: t4
    max: 16
EOF
if "$usher" compare --workload w.yaml --cluster c.yaml --policies usher,shepherd --duration 10 \
        --arrivals gamma:2 --quiet --html cmp.html > /dev/null 2> e.txt; then
    browse --dump-dom "file://$tmp/cmp.html" > cmp-dom.html || fail "chromium --dump-dom cmp.html"
    if python3 - cmp-dom.html <<'EOF'; then
from html.parser import HTMLParser
import sys
class Dom(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.svgs, self.cur = {}, None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'svg':
            self.cur = self.svgs.setdefault(a.get('id'), {'paths': 0, 'cells': set(), 'text': []})
        elif self.cur is not None and tag == 'path' and a.get('class') == 'series':
            self.cur['paths'] += 'L' in a.get('d', '')
        elif self.cur is not None and tag == 'rect' and a.get('fill', '').startswith('#'):
            self.cur['cells'].add(a['fill'])
    def handle_endtag(self, tag):
        if tag == 'svg':
            self.cur = None
    def handle_data(self, data):
        if self.cur is not None:
            self.cur['text'].append(data)
d = Dom()
d.feed(open(sys.argv[1], encoding='utf-8').read())
bad = []
for p, name in enumerate(['usher', 'shepherd']):
    c, g = d.svgs.get('latency-cdf-%d' % p), d.svgs.get('gpu-utilisation-%d' % p)
    if not c or c['paths'] != 2 or name + ': latency CDF per model' not in ' '.join(c['text']):
        bad.append('latency-cdf-%d: %r' % (p, c and (c['paths'], c['text'][:3])))
    if not g or len(g['cells']) < 4 or 'time (s)' not in ' '.join(g['text']):
        bad.append('gpu-utilisation-%d: %r' % (p, g and len(g['cells'])))
for b in bad:
    print('FAIL', b)
sys.exit(1 if bad else 0)
EOF
        ok "chromium renders compare's per-policy plots"
    else
        fail "compare's page as chromium built it"
    fi
else
    fail "usher compare --html: exit $?"; sed 's/^/    /' e.txt
fi
if [ "$fails" != 0 ]; then
    echo "$fails failed"
    exit 1
fi
echo "all passed"
