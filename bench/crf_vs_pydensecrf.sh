#!/usr/bin/env bash
# Dense CRF benchmark, side by side in one run: pydensecrf (bench/reference/crf_harness.py
# run) and risk-crf on the same 2048x2048 scene, enhanced preset.
# Reports wall time, the ratio, label agreement and max |Q diff| (crf_harness.py compare),
# peak RSS (/usr/bin/time -v) and bytes per pixel of both; then the tiled path of risk-crf
# on an 8192x8192 scene (default tile 8192, so one tile; and --tile 4096: 4 tiles).
#
# Usage (workspace root): bash bench/crf_vs_pydensecrf.sh [OUT_DIR]   (SIZE=2048 BIG=8192)
# Needs: the bench venv (.deps/bench-venv, made here by bench/reference/setup.sh on first
# use) and a release build of risk-crf (built here). Timings depend on machine load: run on an idle machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/out/crf_bench}"
size="${SIZE:-2048}"
big="${BIG:-8192}"
venv="${BENCH_VENV:-$root/.deps/bench-venv}"
py="$venv/bin/python"
ref="$root/bench/reference/crf_harness.py"
mkdir -p "$out"
bash "$root/bench/reference/setup.sh" bench "$venv"
[ -f "$root/.deps/env.sh" ] && source "$root/.deps/env.sh"
crf="${RISK_CRF:-}"   # RISK_CRF=path/to/risk-crf skips the build
if [ -z "$crf" ]; then
    (cd "$root" && cargo build --release -p risk-inference --bin risk-crf >/dev/null)
    crf="${CARGO_TARGET_DIR:-$root/target}/release/risk-crf"
fi

# field NAME FILE: value of a /usr/bin/time -v field
field() { grep -F "$1" "$2" | awk -F': ' '{print $2}'; }
secs() { awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }' <<<"$1"; }

scene="$out/sc$size"
[ -f "$scene/prob.npy" ] || "$py" "$ref" scene --size "$size" --seed 1 --out "$scene" >/dev/null
echo "== $size x $size, enhanced, $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v "$py" "$ref" run --in "$scene" --params enhanced --out "$out/py$size" --no-unary \
    >"$out/py$size.json" 2>"$out/py$size.time"
RISK_CRF_TIMING=1 /usr/bin/time -v "$crf" --img "$scene/img.npy" --prob "$scene/prob.npy" \
    --preset enhanced -o "$out/rs$size" >"$out/rs$size.json" 2>"$out/rs$size.time"
"$py" "$ref" compare --ref "$out/py$size" --labels "$out/rs$size/labels.npy" --q "$out/rs$size/Q.npy" \
    >"$out/compare$size.txt" || true
py_wall=$(secs "$(field 'Elapsed (wall clock)' "$out/py$size.time")")
rs_wall=$(secs "$(field 'Elapsed (wall clock)' "$out/rs$size.time")")
py_rss=$(field 'Maximum resident set size' "$out/py$size.time")
rs_rss=$(field 'Maximum resident set size' "$out/rs$size.time")
px=$((size * size))
awk -v pw="$py_wall" -v rw="$rs_wall" -v pr="$py_rss" -v rr="$rs_rss" -v px="$px" 'BEGIN {
    printf "pydensecrf: wall %.2f s, peak RSS %.0f MiB, %.0f bytes/pixel\n", pw, pr/1024, pr*1024/px
    printf "risk-crf:   wall %.2f s, peak RSS %.0f MiB, %.0f bytes/pixel\n", rw, rr/1024, rr*1024/px
    printf "speed-up:   %.1fx\n", pw/rw }'
grep -E "label agreement|Q diff" "$out/compare$size.txt"
grep "risk-crf timing" "$out/rs$size.time" || true
echo "pydensecrf split: $(grep -o '"seconds": {[^}]*}' "$out/py$size.json")"

# Tiled path on a large scene (risk-crf only: pydensecrf would need about 16 GiB).
if [ "$big" -gt 0 ]; then
    scene="$out/sc$big"
    [ -f "$scene/prob.npy" ] || "$py" "$ref" scene --size "$big" --seed 1 --out "$scene" >/dev/null
    for tile in ${TILES:-8192 4096}; do
        /usr/bin/time -v "$crf" --img "$scene/img.npy" --prob "$scene/prob.npy" --preset enhanced \
            --tile "$tile" -o "$out/rs$big-t$tile" >"$out/rs$big-t$tile.json" 2>"$out/rs$big-t$tile.time"
        w=$(secs "$(field 'Elapsed (wall clock)' "$out/rs$big-t$tile.time")")
        r=$(field 'Maximum resident set size' "$out/rs$big-t$tile.time")
        awk -v w="$w" -v r="$r" -v px=$((big * big)) -v t="$tile" -v n="$big" 'BEGIN {
            printf "risk-crf %dx%d --tile %d: wall %.1f s, peak RSS %.0f MiB, %.0f bytes/pixel\n", n, n, t, w, r/1024, r*1024/px }'
        grep -o '"tiles": [0-9]*, .*"total_s": [0-9.]*' "$out/rs$big-t$tile.json"
    done
fi
