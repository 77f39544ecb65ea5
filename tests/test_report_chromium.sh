#!/bin/sh
# test_report_chromium.sh - `emerge report`'s index.html rendered by headless
# Chromium: the page loads from file:// with no console message at all (it
# has no script, so any message is an error), the DOM holds every inline
# SVG figure, and the screenshot is not blank (decoded by a small PNG
# reader below: many colours, a fair share of non-white pixels).
#
# Installs nothing: chromium is in TEST_PKGS (tools/deps.sh). Without it
# the test prints SKIP, or FAIL under CI=true. Before trusting the console
# check, a page with a planted console.error must be caught by it.
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
ci=0
case "${CI:-}" in true|1) ci=1 ;; esac

skip() {
    if [ $ci = 1 ]; then echo "FAIL report_chromium: $1 (CI=true)"; exit 1; fi
    echo "SKIP report_chromium: $1"
    exit 0
}

if [ ! -x "$BIN" ]; then
    echo "FAIL report_chromium: no emerge binary at $BIN"
    exit 1
fi
chrome=""
for c in chromium chromium-browser; do
    command -v "$c" >/dev/null 2>&1 && { chrome=$c; break; }
done
[ -n "$chrome" ] || skip "chromium is not installed (apt-get install chromium)"
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
command -v gnuplot >/dev/null 2>&1 || skip "gnuplot is not installed (figures)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A private copy: a rebuild of the binary mid-test must not break a run.
cp "$BIN" "$tmp/emerge" && BIN="$tmp/emerge"

# render PAGE PNG LOG [DOM]: headless screenshot, browser log in LOG.
render() {
    timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d "$tmp/profile.XXXXXX")" \
        --enable-logging=stderr --v=0 --window-size=1200,2000 \
        --screenshot="$2" "file://$1" >"$3" 2>&1
}

# The console check must see a planted error first.
printf '<!DOCTYPE html><html><body><p>x</p><script>console.error("planted-%s");</script></body></html>' \
    console >"$tmp/planted.html"
render "$tmp/planted.html" "$tmp/planted.png" "$tmp/planted.log"
if ! grep -q 'CONSOLE.*planted-console' "$tmp/planted.log"; then
    echo "FAIL report_chromium_console_probe: a planted console.error was not seen in the browser log"
    tail -5 "$tmp/planted.log"
    exit 1
fi
echo "PASS report_chromium_console_probe"

"$BIN" sweep --tasks tests/data/tasks/sweep-arith.yaml,tests/data/tasks/sweep-mc.yaml \
    --models tests/data/families/synthetic.yaml --variants standard,cot \
    --db "$tmp/runs.sqlite" --quiet 2>"$tmp/sweep.err"
# sweep-mc has no cot variant: named, exit 1 (incomplete), the rest stored.
[ $? -eq 1 ] ||
    { echo "FAIL report_chromium: sweep: $(tail -2 "$tmp/sweep.err")"; exit 1; }
"$BIN" report --db "$tmp/runs.sqlite" --out "$tmp/rep" >"$tmp/report.out" 2>&1 ||
    { echo "FAIL report_chromium: emerge report: $(tail -2 "$tmp/report.out")"; exit 1; }
page="$tmp/rep/index.html"

render "$page" "$tmp/shot.png" "$tmp/chrome.log"
if [ ! -s "$tmp/shot.png" ]; then
    echo "FAIL report_chromium_render: no screenshot: $(grep -v dbus "$tmp/chrome.log" | tail -3)"
    exit 1
fi
echo "PASS report_chromium_render"

if grep -q ':CONSOLE' "$tmp/chrome.log"; then
    echo "FAIL report_chromium_console: $(grep ':CONSOLE' "$tmp/chrome.log" | head -3)"
else
    echo "PASS report_chromium_console"
fi

timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --user-data-dir="$(mktemp -d "$tmp/profile.XXXXXX")" \
    --dump-dom "file://$page" >"$tmp/dom.html" 2>/dev/null
nsvg=$(grep -o '<svg' "$tmp/dom.html" | wc -l)
if [ "$nsvg" -eq 6 ] && grep -q 'id="scaling"' "$tmp/dom.html"; then
    echo "PASS report_chromium_dom"
else
    echo "FAIL report_chromium_dom: $nsvg inline SVG figures in the DOM (expected 6)"
fi

cat >"$tmp/pngstat.py" <<'EOF'
# Decodes an 8-bit RGB/RGBA PNG (all five filters) and prints
# "W H COLOURS NONWHITE_FRACTION".
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
if data[:8] != b'\x89PNG\r\n\x1a\n':
    sys.exit('not a PNG')
pos, idat = 8, b''
while pos < len(data):
    n, typ = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if typ == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    elif typ == b'IDAT':
        idat += body
    pos += 12 + n
if depth != 8 or ctype not in (2, 6):
    sys.exit('unexpected PNG format %d/%d' % (depth, ctype))
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
colours, nonwhite = set(), 0
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    if f == 1:
        for i in range(bpp, stride):
            line[i] = (line[i] + line[i - bpp]) & 255
    elif f == 2:
        line = bytearray((a + b) & 255 for a, b in zip(line, prev))
    elif f == 3:
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
    elif f == 4:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else
                                  b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        px = bytes(line[x:x + 3])
        colours.add(px)
        nonwhite += px != b'\xff\xff\xff'
    prev = line
print(w, h, len(colours), '%.4f' % (nonwhite / float(w * h)))
EOF
stat=$(python3 "$tmp/pngstat.py" "$tmp/shot.png" 2>&1)
set -- $stat
if [ $# -eq 4 ] && [ "$1" = 1200 ] && [ "$2" = 2000 ] && [ "$3" -ge 50 ] &&
   awk -v f="$4" 'BEGIN { exit !(f >= 0.02) }'; then
    echo "PASS report_chromium_not_blank"
else
    echo "FAIL report_chromium_not_blank: screenshot $stat (want 1200x2000, >= 50 colours, >= 2% non-white)"
fi
# The same reader calls a blank page blank.
printf '<!DOCTYPE html><html><body></body></html>' >"$tmp/blank.html"
render "$tmp/blank.html" "$tmp/blank.png" "$tmp/blank.log"
stat=$(python3 "$tmp/pngstat.py" "$tmp/blank.png" 2>&1)
set -- $stat
if [ $# -eq 4 ] && [ "$3" -lt 50 ]; then
    echo "PASS report_chromium_blank_probe"
else
    echo "FAIL report_chromium_blank_probe: a blank page gave $stat"
fi
