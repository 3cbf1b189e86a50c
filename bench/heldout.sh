#!/usr/bin/env bash
# A model's quality on held-out generated scenes: for each seed, `risk-train synth` makes
# the scene (cached), `risk-infer` writes float32 probabilities (CRF off unless CRF= names a
# preset: then they are its marginals; the given tile / overlap), and `risk-eval --probs`
# scores them twice: by the argmax and by the model's
# decision rule (`risk.decision`). Prints one markdown row per seed and decision, then the
# means, beside SPEC's targets, plus the model time per megapixel of each run.
#
#   bench/heldout.sh MODEL [OUT_DIR]
#     env: SEEDS="401 402 403 404 405 406"  SIZE=2048  GENERATOR=v2
#          TILE= OVERLAP= (default: the model's own)  THREADS=2  CRF=off
#          EXTRA="--crf-compat ordinal" (more risk-infer arguments)  TAG= (file-name tag)
#
# Seeds 401-412 are the held-out seeds of bench/README.md: nothing is trained, validated
# or tuned on them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="${1:?usage: bench/heldout.sh MODEL [OUT_DIR]}"
out="${2:-$root/out/heldout-v2}"
SEEDS="${SEEDS:-401 402 403 404 405 406}" SIZE="${SIZE:-2048}" GENERATOR="${GENERATOR:-v2}"
THREADS="${THREADS:-2}" CRF="${CRF:-off}"
bin="${BIN:-$root/target/release}"
mkdir -p "$out"
tiling=()
[ -n "${TILE:-}" ] && tiling+=(--tile "$TILE")
[ -n "${OVERLAP:-}" ] && tiling+=(--overlap "$OVERLAP")
# shellcheck disable=SC2206
tiling+=(${EXTRA:-})
tag="t${TILE:-model}-o${OVERLAP:-model}-crf$CRF${TAG:-}"

metric() { # metrics.json -> kappa P(1) R(2) rho Medium-predicted-share
    python3 - "$1" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
c = {k["class"]: k for k in m["classes"]}
pred = sum(k["predicted"] for k in m["classes"])
print(f'{m["cohen_kappa"]:.4f} {c[1]["precision"]:.4f} {c[2]["recall"]:.4f} {m["spearman_rho"]:.4f} {c[1]["predicted"] / pred:.4f} {c[1]["support"] / max(1, sum(k["support"] for k in m["classes"])):.4f}')
EOF
}

echo "held-out $GENERATOR scenes ${SIZE}^2, model $(basename "$model"), tiling ${tiling[*]:-the model default}, CRF $CRF ${EXTRA:-}, threads $THREADS"
echo
echo "| seed | decision | kappa | class-1 precision | class-2 recall | rho | Medium predicted | Medium in truth | model s/MP |"
echo "|---|---|---|---|---|---|---|---|---|"
rows=()
for s in $SEEDS; do
    scene="$out/s$s.tif" labels="$out/s${s}_labels.tif"
    [ -f "$scene" ] || "$bin/risk-train" synth --generator "$GENERATOR" --width "$SIZE" --height "$SIZE" \
        --seed "$s" --image "$scene" --labels "$labels" >/dev/null
    probs="$out/p$s-$tag.tif"
    log=$("$bin/risk-infer" "$scene" -m "$model" -o "$out/c$s-$tag.tif" --probs "$probs" --probs-type f32 \
        --crf "$CRF" --threads "$THREADS" "${tiling[@]}" 2>&1 | grep -- ' -> ' | tail -n 1 || true)
    model_s=$(grep -o 'model [0-9.]* s' <<<"$log" | awk '{ print $2 }' || true)
    mp=$(awk -v t="${model_s:-0}" -v n="$SIZE" 'BEGIN { printf "%.3f", t / (n * n / 1e6) }')
    for d in argmax rule; do
        args=(--probs "$probs" --truth "$labels" -o "$out/e$s-$tag-$d")
        [ "$d" = rule ] && args+=(--decision-model "$model")
        rm -rf "$out/e$s-$tag-$d"
        "$bin/risk-eval" "${args[@]}" >/dev/null
        read -r k p1 r2 rho med truth < <(metric "$out/e$s-$tag-$d/metrics.json")
        echo "| $s | $d | $k | $p1 | $r2 | $rho | $med | $truth | $mp |"
        rows+=("$d $k $p1 $r2 $rho $med $truth $mp")
    done
done
printf '%s\n' "${rows[@]}" > "$out/rows-$tag.txt"
python3 - "$out/rows-$tag.txt" <<'EOF'
import statistics as st
import sys

by = {}
for line in open(sys.argv[1]):
    f = line.split()
    by.setdefault(f[0], []).append([float(x) for x in f[1:]])
for d, v in by.items():
    cols = list(zip(*v))
    cells = " | ".join(f"{st.mean(c):.4f} +- {st.pstdev(c):.4f}" for c in cols[:6])
    print(f"| mean | {d} | {cells} | {st.mean(cols[6]):.3f} |")
EOF
echo "| target | | >= 0.48 | >= 0.22 | >= 0.93 | >= 0.58 | | | |"
