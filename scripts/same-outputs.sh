#!/usr/bin/env bash
# Same outputs before and after a change to the inference pipeline:
#   scripts/same-outputs.sh BASE_REV
# builds risk-infer at BASE_REV and from the working tree, runs both on the fixtures with
# the same model file (BASE_REV's models/default.onnx, so that a new default model landing
# meanwhile changes nothing) over option sets that together reach every stage (tiling and
# blending, the CRF over several CRF tiles, probabilities and uncertainty, the decision
# rule, shards and their mosaic), and compares every output file byte for byte. One line
# per case; exit 1 on any difference or failed run.
#
# The only bytes masked before the comparison are the run's UTC time, which every output
# carries in its metadata (TIFFTAG_DATETIME and RISK_CREATED_UTC, both fixed-width); the
# paths in the provenance (input, model) are the same for both runs, and the outputs are
# written under relative names from a folder per case, so they hold no other difference.
#
# The working tree's binary is built in this checkout's target folder (debug profile).
# BASE_REV is exported with `git archive` into the cache folder and built there with its
# own cargo target folder, so that it never waits on nor disturbs this checkout's builds
# (a new cache's target starts as a copy of this checkout's compiled dependencies); its
# binary is kept per commit and reused.
#
# Environment: SAME_OUTPUTS_DIR (default out/same-outputs) the cache; KEEP=1 keeps the
# work folder (else removed when everything matches).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'same-outputs: %s\n' "$*" >&2; }
fail() {
    printf 'same-outputs: error: %s\n' "$*" >&2
    exit 2
}

[ $# -eq 1 ] || fail "usage: scripts/same-outputs.sh BASE_REV"
base=$(git rev-parse --verify --quiet "$1^{commit}") || fail "$1: not a commit of this repository"
short=$(git rev-parse --short "$base")

[ -n "${ORT_DYLIB_PATH:-}" ] || { [ -f .deps/env.sh ] && source .deps/env.sh; }
[ -n "${ORT_DYLIB_PATH:-}" ] || fail "ORT_DYLIB_PATH unset: run scripts/setup.sh and source .deps/env.sh"

cache="${SAME_OUTPUTS_DIR:-$root/out/same-outputs}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

say "building risk-infer from the working tree"
cargo build -q -p risk-inference --bin risk-infer || fail "the working tree's build failed"
new_bin="$root/target/debug/risk-infer"

# The base binary: built once per commit. A new cache's target folder starts as a copy of
# this checkout's compiled dependencies (cp -a keeps their times, so cargo finds them
# fresh and compiles only the workspace's crates at BASE_REV).
base_bin="$cache/bin/$base/risk-infer"
if [ ! -x "$base_bin" ]; then
    if [ ! -d "$cache/target/debug/deps" ] && [ -d "$root/target/debug/deps" ]; then
        say "seeding $cache/target with this checkout's compiled dependencies"
        mkdir -p "$cache/target/debug"
        cp -a "$root/target/debug/.fingerprint" "$root/target/debug/build" "$root/target/debug/deps" \
            "$cache/target/debug/"
    fi
    say "building risk-infer at $short (first time for this commit; cargo output in $cache/build.log)"
    rm -rf "$cache/src"
    mkdir -p "$cache/src" "$(dirname "$base_bin")"
    git archive "$base" | tar -x -C "$cache/src"
    (cd "$cache/src" && CARGO_TARGET_DIR="$cache/target" cargo build --locked -p risk-inference \
        --bin risk-infer) >"$cache/build.log" 2>&1 || fail "the build at $short failed: see $cache/build.log"
    cp "$cache/target/debug/risk-infer" "$base_bin.part"
    mv "$base_bin.part" "$base_bin"
fi

work="$(mktemp -d -t same-outputs.XXXXXX)"
model="$work/model-$short.onnx"
git show "$base:models/default.onnx" >"$model" || fail "$short has no models/default.onnx"

fixtures="$root/fixtures"
differ=0
cases=0
start_s=$SECONDS

# run SIDE BIN CASE COMMAND...: runs each COMMAND (a `;`-free argument list, `--` between
# commands) in $work/SIDE/CASE with BIN; the log goes beside, not into the compared folder.
run_side() {
    local side="$1" bin="$2" name="$3"
    shift 3
    local dir="$work/$side/$name" log="$work/$side/$name.log" args=()
    mkdir -p "$dir"
    for a in "$@" --; do
        if [ "$a" = -- ]; then
            (cd "$dir" && nice -n 10 "$bin" "${args[@]}") >>"$log" 2>&1 || {
                printf '%s: risk-infer %s failed:\n' "$side" "${args[*]}" >>"$work/$name.why"
                tail -n 5 "$log" >>"$work/$name.why"
                return 1
            }
            args=()
        else
            args+=("$a")
        fi
    done
}

# compare CASE: every file of both sides' folders, the time bytes masked.
compare() {
    python3 - "$work/base/$1" "$work/new/$1" <<'EOF'
import os, re, sys
base, new = sys.argv[1], sys.argv[2]
# TIFFTAG_DATETIME (2026:12:06 21:52:45) and RISK_CREATED_UTC (2026-12-06T21:52:45Z).
when = re.compile(rb"\d{4}:\d\d:\d\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
def masked(path):
    with open(path, "rb") as f:
        return when.sub(lambda m: b"#" * len(m.group()), f.read())
names = sorted(set(os.listdir(base)) | set(os.listdir(new)))
bad = []
total = 0
for n in names:
    a, b = os.path.join(base, n), os.path.join(new, n)
    if not os.path.exists(a) or not os.path.exists(b):
        bad.append(f"{n} only {'before' if os.path.exists(a) else 'after'}")
        continue
    x, y = masked(a), masked(b)
    total += len(x)
    if x != y:
        at = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
        bad.append(f"{n} differs ({len(x)} vs {len(y)} bytes, first at byte {at})")
if bad:
    print("DIFFERENT: " + "; ".join(bad))
    sys.exit(1)
print(f"identical: {len(names)} file(s), {total} bytes ({', '.join(names)})")
EOF
}

# check CASE COMMAND...: runs COMMAND with both binaries and compares what they wrote.
check() {
    local name="$1" line
    shift
    cases=$((cases + 1))
    if run_side base "$base_bin" "$name" "$@" && run_side new "$new_bin" "$name" "$@"; then
        if line=$(compare "$name"); then
            printf '%-16s %s\n' "$name" "$line"
            return
        fi
        printf '%-16s %s\n' "$name" "$line"
    else
        printf '%-16s FAILED: %s\n' "$name" "$(tr '\n' ' ' <"$work/$name.why")"
    fi
    differ=$((differ + 1))
}

m=(-m "$model")
s512="$fixtures/scene512.tif"
s700="$fixtures/scene700x433.tif"
nir="$fixtures/scene256_nir_u16.tif"

say "base $short ($base_bin) vs the working tree ($new_bin); model: $short:models/default.onnx"
# The model pass alone, each fixture (one tile at the model's tile size).
check plain-512 "$s512" "${m[@]}" -o risk.tif --crf off
check plain-700 "$s700" "${m[@]}" -o risk.tif --crf off
check plain-nir "$nir" "${m[@]}" -o risk.tif --crf off
# Several tiles blended, probabilities and uncertainty of the blend (u8 and f32).
check tiles-700 "$s700" "${m[@]}" -o risk.tif --crf off --tile 128 --overlap 32 \
    --probs probs.tif --uncertainty unc.tif --uncertainty-type u8
check tiles-512-f32 "$s512" "${m[@]}" -o risk.tif --crf off --tile 192 --overlap 48 \
    --probs probs.tif --probs-type f32 --decision argmax
# The CRF: the model's own setting, enhanced with probabilities and uncertainty, one
# CRF tile and several (a small CRF tile and halo), on 8-bit and 16-bit colour bands.
check crf-model-512 "$s512" "${m[@]}" -o risk.tif
check crf-enh-700 "$s700" "${m[@]}" -o risk.tif --crf enhanced --probs probs.tif --uncertainty unc.tif
check crf-tiles-700 "$s700" "${m[@]}" -o risk.tif --crf default --crf-tile 320 --crf-halo 64 \
    --crf-compat ordinal --tile 256 --overlap 64 --probs probs.tif
check crf-nir "$nir" "${m[@]}" -o risk.tif --crf enhanced --crf-tile 200 --crf-halo 48 --uncertainty unc.tif
# The decision rule on the CRF's marginals: argmax against the model's rule.
check argmax-nir "$nir" "${m[@]}" -o risk.tif --decision argmax --crf enhanced --probs probs.tif
# Several views (an ensemble of one model twice): the mutual information band.
check views-nir "$nir" "${m[@]}" "${m[@]}" -o risk.tif --crf off --uncertainty unc.tif \
    --tile 128 --overlap 32
# Shards of one raster and their mosaic, with the CRF (its rows reach past each shard's).
check shards-700 "$s700" "${m[@]}" -o part.0.tif --shard 0/2 --crf default --probs probs.0.tif -- \
    "$s700" "${m[@]}" -o part.1.tif --shard 1/2 --crf default --probs probs.1.tif -- \
    mosaic part.0.tif part.1.tif -o risk.tif -- \
    mosaic probs.0.tif probs.1.tif -o probs.tif

if [ "$differ" -gt 0 ] || [ "${KEEP:-0}" = 1 ]; then
    say "$cases case(s), $differ different or failed, in $((SECONDS - start_s)) s (outputs kept: $work)"
else
    say "$cases case(s), all identical, in $((SECONDS - start_s)) s"
    rm -rf "$work"
fi
[ "$differ" -eq 0 ]
