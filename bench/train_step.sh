#!/usr/bin/env bash
# One training step (forward + loss + backward + AdamW) timed side by side on this machine:
# PyTorch eager (smp 0.6.0 Unet, `bench/reference/smp_ref.py train-step`) and the Rust/tch model of
# risk-training (examples/train_step.rs, the same work: train mode, cross-entropy,
# AdamW lr 1e-3 wd 1e-2, fixed random batch, median of STEPS after 2 warm-up steps), then the
# Rust step of the full V2.5 model (CBAM + focal + 0.3 CORAL) for reference.
#
#   [ROUNDS=2] bench/train_step.sh [ENCODER=b0] [BATCH=4] [SIZE=256] [STEPS=10] [THREADS=2]
#
# Needs scripts/setup.sh (.deps/env.sh and .deps/smp-venv). Prints both JSON lines and the ratio.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
enc="${1:-b0}" batch="${2:-4}" size="${3:-256}" steps="${4:-10}" threads="${5:-2}"
case "$enc" in
    b0) smp_args=(--encoder efficientnet-b0 --decoder 128,64,32,16,8) ;;
    b4) smp_args=(--encoder efficientnet-b4 --decoder 256,128,64,32,16) ;;
    *) echo "train_step.sh: encoder must be b0 or b4" >&2; exit 2 ;;
esac
# shellcheck disable=SC1091
source .deps/env.sh
py=.deps/smp-venv/bin/python
bash bench/reference/setup.sh smp .deps/smp-venv
cargo build -q --release -p risk-training --example train_step
rust=target/release/examples/train_step
common=(--batch "$batch" --size "$size" --steps "$steps" --threads "$threads")

rounds="${ROUNDS:-2}"
# Interleaved rounds (torch, rust, rust full, torch, ...) so that a busy machine slows
# every side alike; each side reports its best median over the rounds.
all=()
for r in $(seq 1 "$rounds"); do
    echo "== round $r: PyTorch eager (smp) =="
    j=$(OMP_NUM_THREADS="$threads" "$py" bench/reference/smp_ref.py train-step \
        "${smp_args[@]}" "${common[@]}" 2>/dev/null | tail -n 1)
    echo "$j"; all+=("torch $j")
    echo "== round $r: Rust tch (same step) =="
    j=$(OMP_NUM_THREADS="$threads" "$rust" --encoder "$enc" "${common[@]}" 2>/dev/null | tail -n 1)
    echo "$j"; all+=("rust $j")
    echo "== round $r: Rust tch (full V2.5 step: CBAM, focal + 0.3 CORAL) =="
    j=$(OMP_NUM_THREADS="$threads" "$rust" --encoder "$enc" "${common[@]}" --full 2>/dev/null | tail -n 1)
    echo "$j"; all+=("full $j")
done
results=$(printf '%s\n' "${all[@]}")
RESULTS="$results" "$py" - <<'PY'
import json, os
best = {}
for line in os.environ["RESULTS"].splitlines():
    kind, js = line.split(" ", 1)
    r = json.loads(js)
    if kind not in best or r["median_ms"] < best[kind]["median_ms"]:
        best[kind] = r
t, r, f = best["torch"], best["rust"], best["full"]
print(f"best median ms over the rounds: torch {t['median_ms']}, rust {r['median_ms']} "
      f"(rust / torch = {r['median_ms'] / t['median_ms']:.2f}), rust full V2.5 step {f['median_ms']}; "
      f"params torch {t['params']:,}, rust {r['params']:,} (+ CORAL head)")
PY
