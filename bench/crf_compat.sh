#!/usr/bin/env bash
# The dense CRF's label compatibility on held-out generated scenes: CRF off, Potts and
# ordinal (--crf-compat), with the default (V2) and enhanced (V2.5) presets, the classes by
# the model's decision rule and by the argmax; scored with risk-eval against each scene's
# labels. Prints a markdown table (kappa, class-1 precision, class-2 recall, rho, Medium
# share of the prediction) per seed and the mean over the seeds.
#
#   bench/crf_compat.sh [OUT_DIR]   # env: SEEDS="99 98 97" SIZE=1024 GENERATOR=v1
#                                   #      MODEL=models/default.onnx BIN=target/release
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/out/bench-crf-compat}"
SEEDS="${SEEDS:-99 98 97}" SIZE="${SIZE:-1024}" GENERATOR="${GENERATOR:-v1}"
MODEL="${MODEL:-$root/models/default.onnx}" BIN="${BIN:-$root/target/release}"
mkdir -p "$out"
source "$root/.deps/env.sh"
if [ "$BIN" = "$root/target/release" ]; then
    cargo build --release -q -p risk-inference --bin risk-infer --bin risk-eval
    cargo build --release -q -p risk-training --bin risk-train
fi
configs=("off:--crf off" "default-potts:--crf default --crf-compat potts"
    "default-ordinal:--crf default --crf-compat ordinal" "enhanced-potts:--crf enhanced --crf-compat potts"
    "enhanced-ordinal:--crf enhanced --crf-compat ordinal")
for seed in $SEEDS; do
    scene="$out/s$seed.tif" labels="$out/s${seed}_labels.tif"
    [ -f "$scene" ] || "$BIN/risk-train" synth --generator "$GENERATOR" --width "$SIZE" --height "$SIZE" \
        --seed "$seed" --image "$scene" --labels "$labels" >/dev/null
    for decision in model argmax; do
        for c in "${configs[@]}"; do
            name="${c%%:*}" args="${c#*:}"
            pred="$out/s${seed}_${name}_${decision}.tif"
            # shellcheck disable=SC2086
            "$BIN/risk-infer" "$scene" -m "$MODEL" -o "$pred" --decision "$decision" $args -q
            "$BIN/risk-eval" "$pred" --truth "$labels" -o "${pred%.tif}_eval" >/dev/null
        done
    done
done
python3 - "$out" "$SEEDS" <<'PY'
import json, sys
out, seeds = sys.argv[1], sys.argv[2].split()
configs = ["off", "default-potts", "default-ordinal", "enhanced-potts", "enhanced-ordinal"]
print("| decision | CRF | seed | kappa | class-1 precision | class-2 recall | rho | Medium predicted |")
print("|---|---|---|---|---|---|---|---|")
for decision in ["model", "argmax"]:
    for c in configs:
        rows = []
        for s in seeds:
            d = json.load(open(f"{out}/s{s}_{c}_{decision}_eval/metrics.json"))
            k = d["classes"]
            rows.append((s, [d["cohen_kappa"], k[1]["precision"], k[2]["recall"], d["spearman_rho"],
                             k[1]["predicted"] / d["pixels"]]))
        rows.append(("mean", [sum(r[1][i] for r in rows) / len(rows) for i in range(5)]))
        for s, v in rows:
            print(f"| {decision} | {c} | {s} | {v[0]:.4f} | {v[1]:.4f} | {v[2]:.4f} | {v[3]:.4f} | {100 * v[4]:.2f}% |")
PY
