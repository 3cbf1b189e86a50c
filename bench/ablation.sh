#!/usr/bin/env bash
# Issue 17's ablation of the V2.5 recipe, on the shipped edge model's data (generated v2
# scenes 311-322 to train, the 331-334 mosaic to validate), B0, three seeds per row:
#
#   v2    no attention, duplication to 5%, no SMOTE          bench/ablation/v2.yaml
#   cbam  + CBAM attention                                   bench/ablation/cbam.yaml
#   v25   + SMOTE to 7.5% (the V2.5 recipe)                  bench/ablation/v25.yaml
#
# each scored on the held-out seeds 401-406 (bench/heldout.sh: 2048^2, the model's 512/64
# tiles, argmax) with the CRF off and with its default settings (the V2 CRF), and the v25
# models also with the enhanced CRF (the last V2.5 step); the oracle's ceiling beside them.
# Nothing here is tuned: every row has the same epochs, seeds and data.
#
#   bench/ablation.sh [train|score|table|all]     (default all)
#     env: ABLATION_EPOCHS=10  ABLATION_SEEDS="42 123 456"  ROWS="v2 cbam v25"
#          B4_EPOCHS=0 (train and score a B4 V2.5 model for this many epochs too)
# Runs under out/ablation/; a finished run is not retrained, a scored one not rescored.
set -euo pipefail
root="${ABLATION_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${BIN:-$root/target/release}"
out="$root/out/ablation"
EPOCHS="${ABLATION_EPOCHS:-10}" SEEDS="${ABLATION_SEEDS:-42 123 456}" ROWS="${ROWS:-v2 cbam v25}"
B4_EPOCHS="${B4_EPOCHS:-0}"
what="${1:-all}"
mkdir -p "$out"

# One model: train (unless its run is marked done), then export to FP32 ONNX with the
# shipped model's tiles and a decision rule fitted on the validation mosaic.
train_one() { # ROW SEED CONFIG EPOCHS
    local row=$1 seed=$2 cfg=$3 epochs=$4
    local run="$out/$row/seed$seed" onnx="$out/$row-seed$seed.onnx"
    if [ ! -f "$run/done" ]; then
        echo "== train $row seed $seed ($epochs epochs) $(date -u +%H:%M:%S)"
        # pipefail: a failed run stops here, unmarked (the filter alone may find nothing).
        "$bin/risk-train" fit "$cfg" --seeds "$seed" --epochs "$epochs" 2>&1 | tee "$out/$row-seed$seed.log" |
            { grep -E 'epoch [0-9]+/|SMOTE|class-1 share' || true; }
        touch "$run/done"
    fi
    [ -f "$onnx" ] || "$bin/risk-train" export "$run/best.safetensors" --config "$cfg" \
        --meta risk.tile_size=512 --meta risk.tile_overlap=64 \
        --model-version "ablation $row, seed $seed, $epochs epochs" \
        --val-image "$root/out/v2b/val.tif" --val-labels "$root/out/v2b/val_labels.tif" -o "$onnx" >/dev/null
}

train() {
    bash "$root/training/make_scenes.sh" "$bin"
    for seed in $SEEDS; do
        for row in $ROWS; do train_one "$row" "$seed" "$root/bench/ablation/$row.yaml" "$EPOCHS"; done
    done
    [ "$B4_EPOCHS" -gt 0 ] && train_one b4 42 "$root/bench/ablation/b4.yaml" "$B4_EPOCHS"
    return 0
}

# Held-out scores of every trained model (bench/heldout.sh; its scenes are cached under
# out/ablation/heldout/), with the CRF presets of its row.
score() {
    local models=() row seed
    for seed in $SEEDS; do for row in $ROWS; do models+=("$row-seed$seed"); done; done
    [ "$B4_EPOCHS" -gt 0 ] && models+=(b4-seed42)
    # The rows the ablation is about first (each row's CRF), then every model with the CRF
    # off (what the CRF adds or takes).
    for pass in crf off; do
        for m in "${models[@]}"; do
            [ -f "$out/$m.onnx" ] || { echo "== $m: not trained, skipped"; continue; }
            local crfs="default"
            case "$m" in v25-* | b4-*) crfs="default enhanced" ;; esac
            [ "$pass" = off ] && crfs=off
            for crf in $crfs; do
                [ -f "$out/heldout/rows-tmodel-omodel-crf$crf-$m.txt" ] && continue
                echo "== score $m, CRF $crf $(date -u +%H:%M:%S)"
                CRF=$crf TAG="-$m" bash "$root/bench/heldout.sh" "$out/$m.onnx" "$out/heldout" | tail -n 4
            done
        done
    done
    [ -f "$out/synth-stats.txt" ] || "$bin/risk-train" synth-stats --size 2048 \
        --seeds 401,402,403,404,405,406 --train-seed 400 > "$out/synth-stats.txt"
}

# The table: per row and CRF, each model's mean over the held-out seeds, then the mean and
# standard deviation (population) over the training seeds; the oracle and colour floor of
# the same held-out scenes beside them.
table() {
    python3 - "$out" "$EPOCHS" <<'PY'
import glob, json, os, re, statistics as st, sys
out, epochs = sys.argv[1], sys.argv[2]
b4_state = f"{out}/b4/seed42/state.json"  # the epochs the B4 run trained, when there is one
b4_epochs = json.load(open(b4_state))["epochs_done"] if os.path.exists(b4_state) else 0
names = {"v2": "V2 recipe (no attention, duplication to 5%, no SMOTE)",
         "cbam": "+ CBAM attention", "v25": "+ SMOTE to 7.5% (V2.5 recipe)",
         "b4": f"V2.5 recipe, B4 encoder, seed 42, {b4_epochs} epochs"}
def per_model(path, decision):
    """One model's means over the held-out scenes: kappa, P(1), R(2), rho, Medium share."""
    rows = [l.split() for l in open(path) if l.split()[0] == decision]
    cols = list(zip(*[[float(x) for x in r[1:]] for r in rows]))
    return [st.mean(c) for c in cols[:5]]
def cell(v):
    return f"{st.mean(v):.3f} ± {st.pstdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"

stats = open(f"{out}/synth-stats.txt").read().splitlines()
# The per-seed table of synth-stats (its first table; the second is the oracle's curve).
start = next(i for i, l in enumerate(stats) if l.startswith("| seed | Medium"))
hdr = [h.strip() for h in stats[start].strip("|").split("|")]
rows = []
for l in stats[start + 2:]:
    if not re.match(r"\| \d+ \|", l):
        break
    rows.append(l)
vals = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
def col(name):
    return st.mean(float(v[hdr.index(name)].split()[0].rstrip("%")) for v in vals)
for decision, title in [("argmax", "argmax (the recipe as the source ran it)"),
                        ("rule", "each model's fitted decision rule (issue 18), same probabilities")]:
    print(f"\n**{title}**\n")
    print("| step | CRF | models (seeds) | kappa | class-1 precision | class-2 recall | rho | Medium predicted |")
    print("|---|---|---|---|---|---|---|---|")
    for row in ["v2", "cbam", "v25", "b4"]:
        for crf in ["default", "enhanced", "off"]:
            files = glob.glob(f"{out}/heldout/rows-tmodel-omodel-crf{crf}-{row}-seed*.txt")
            files.sort(key=lambda f: int(re.search(r"seed(\d+)", f).group(1)))
            if not files:
                continue
            ms = [per_model(f, decision) for f in files]
            cols = list(zip(*ms))
            cols[4] = [100 * x for x in cols[4]]
            seeds = ", ".join(re.search(r"seed(\d+)", f).group(1) for f in files)
            step = names[row] if crf != "enhanced" or row == "b4" else "+ enhanced CRF"
            cells = " | ".join(cell(c) for c in cols[:4]) + f" | {cell(cols[4])}%"
            print(f"| {step} | {crf} | {seeds} | {cells} |")
    print(f"| oracle (ceiling, argmax) | | | {col('oracle kappa'):.3f} | {col('oracle P(1)'):.3f} | "
          f"{col('oracle R(2)'):.3f} | {col('oracle rho'):.3f} | truth {col('Medium'):.2f}% |")
    print(f"| colour floor (per-pixel colour classifier) | | | {col('colour floor kappa (levels)'):.3f} | | | | |")
    print("| V2.5 target | | | >= 0.48 | >= 0.22 | >= 0.93 | >= 0.58 | |")
print(f"\nB0 rows: {epochs} epochs each (cosine), one model per training seed; scored on held-out seeds 401-406 (2048^2, 512/64 tiles).")
PY
}

case "$what" in
train) train ;;
score) score ;;
table) table ;;
all) train && score && table | tee "$out/table.md" ;;
*) echo "usage: bench/ablation.sh [train|score|table|all]" >&2; exit 2 ;;
esac
