#!/usr/bin/env bash
# Training parity, end to end: the Rust trainer (`risk-train fit`) and the PyTorch
# reference (bench/reference/train_ref.py: smp + plain PyTorch, the same tiles, split,
# sampling, augmentation draws, losses, optimiser, schedule and initialisation scheme) on
# one config, the same epochs, one run per seed each, interleaved (torch, rust, torch, ...)
# so that a busy machine slows both alike. Prints per-epoch validation kappa and class-1
# precision of every run, then per trainer the mean and spread of the final values and the
# mean epoch time, and the verdict of issue 17: the Rust mean within the PyTorch seeds'
# range (or within 0.03) for kappa and class-1 precision, Rust epoch time <= 1.1x PyTorch's.
#
#   bench/train_parity.sh [CONFIG] [EPOCHS] [SEEDS]
#       CONFIG  default bench/parity/config.yaml (its scenes are generated here when missing)
#       EPOCHS  default: the config's optim.epochs
#       SEEDS   comma-separated, default 42,123,456 (the source's ensemble seeds)
#   RISK_TRAIN=path/to/risk-train overrides the binary (default target/release/risk-train,
#   built when missing). THREADS (default 2) sets both trainers' intra-op threads.
#
# Runs go to out/parity/<date>/{rust,torch}/seed<N>/log.csv, the summary to summary.txt
# beside them. Needs scripts/setup.sh (.deps/env.sh and the smp venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
config="${1:-bench/parity/config.yaml}" epochs="${2:-}" seeds="${3:-42,123,456}"
threads="${THREADS:-2}"
[ -f "$config" ] || { echo "train_parity.sh: $config: no such config" >&2; exit 2; }
# shellcheck disable=SC1091
source .deps/env.sh
py=.deps/smp-venv/bin/python
bash bench/reference/setup.sh smp .deps/smp-venv
rust="${RISK_TRAIN:-target/release/risk-train}"
if [ ! -x "$rust" ]; then
    cargo build -q --release -p risk-training --bin risk-train
    rust=target/release/risk-train
fi

if [ "$config" = bench/parity/config.yaml ]; then
    mkdir -p out/parity
    for scene in 621:1024 622:1024 623:1024 611:512 612:512; do
        s="${scene%:*}" side="${scene#*:}"
        [ -f "out/parity/s$s.tif" ] || "$rust" synth --width "$side" --height "$side" --seed "$s" \
            --image "out/parity/s$s.tif" --labels "out/parity/s${s}_labels.tif"
    done
fi

run="out/parity/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run"
# One config for both: CONFIG with its paths made absolute and `out` set to the run's
# rust/ folder (risk-train puts seed N under out/seedN; train_ref.py gets --out).
"$py" - "$config" "$run/config.yaml" "$PWD/$run/rust" <<'PY'
import os, sys, yaml
src, dst, out = sys.argv[1:]
cfg = yaml.safe_load(open(src))
base = os.path.dirname(os.path.abspath(src))
d = cfg["data"]
for key in ("image", "labels"):
    d[key] = os.path.join(base, d[key])
for s in d.get("scenes") or []:
    s["image"], s["labels"] = os.path.join(base, s["image"]), os.path.join(base, s["labels"])
if (cfg.get("model") or {}).get("init_weights"):
    cfg["model"]["init_weights"] = os.path.join(base, cfg["model"]["init_weights"])
cfg["out"] = out
yaml.safe_dump(cfg, open(dst, "w"), sort_keys=False)
PY
epoch_arg=()
[ -n "$epochs" ] && epoch_arg=(--epochs "$epochs")
echo "train_parity: config $config, seeds $seeds, epochs ${epochs:-as configured}, $threads threads, runs in $run"
for s in ${seeds//,/ }; do
    echo "== seed $s: PyTorch reference =="
    OMP_NUM_THREADS="$threads" "$py" bench/reference/train_ref.py "$run/config.yaml" --seed "$s" \
        "${epoch_arg[@]}" --out "$run/torch/seed$s" --threads "$threads" 2>&1 \
        | grep -E "^train_ref: (epoch|minority|duplication|Generated|train:|val:)" || true
    [ -f "$run/torch/seed$s/log.csv" ] || { echo "train_parity: the reference run of seed $s failed" >&2; exit 1; }
    echo "== seed $s: Rust risk-train =="
    OMP_NUM_THREADS="$threads" "$rust" fit "$run/config.yaml" --seeds "$s" "${epoch_arg[@]}" 2>&1 \
        | grep -E "^risk-train: (epoch|minority|duplication|Generated|train:|val:)" || true
    [ -f "$run/rust/seed$s/log.csv" ] || { echo "train_parity: the Rust run of seed $s failed" >&2; exit 1; }
done

"$py" - "$run" "$seeds" <<'PY' | tee "$run/summary.txt"
import csv, statistics, sys
run, seeds = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
logs = {t: {s: list(csv.DictReader(open(f"{run}/{t}/seed{s}/log.csv"))) for s in seeds}
        for t in ("torch", "rust")}
f = lambda v: float(v) if v not in ("", None) else float("nan")
print("per-epoch validation kappa / class-1 precision")
print("      " + " | ".join(f"{t + ' seed ' + str(s):>13}" for t in logs for s in seeds))
print("epoch " + " | ".join(f"{'kappa':>6} {'P1':>6}" for t in logs for s in seeds))
for e in range(max(len(r) for t in logs for r in logs[t].values())):
    cells = []
    for t in logs:
        for s in seeds:
            r = logs[t][s]
            cells.append(f"{f(r[e]['val_kappa']):6.3f} {f(r[e]['val_precision_1']):6.3f}" if e < len(r) else " " * 13)
    print(f"{e + 1:>5} " + " | ".join(cells))
stats = {}
for t in logs:
    final = lambda key: [f(logs[t][s][-1][key]) for s in seeds]
    secs = [f(r["seconds"]) for s in seeds for r in logs[t][s]]
    stats[t] = {k: final(k) for k in ("val_kappa", "val_precision_1")}
    stats[t]["seconds"] = statistics.mean(secs)
    for k, name in (("val_kappa", "kappa"), ("val_precision_1", "class-1 precision")):
        v = stats[t][k]
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"{t:>5} final {name}: mean {statistics.mean(v):.4f}, std {sd:.4f}, range "
              f"{min(v):.4f}..{max(v):.4f} over seeds {seeds}")
    print(f"{t:>5} epoch time: mean {stats[t]['seconds']:.1f} s over {len(secs)} epochs")
ok_all = True
for k, name in (("val_kappa", "kappa"), ("val_precision_1", "class-1 precision")):
    rm, tv = statistics.mean(stats["rust"][k]), stats["torch"][k]
    tm = statistics.mean(tv)
    ok = min(tv) <= rm <= max(tv) or abs(rm - tm) <= 0.03
    ok_all &= ok
    print(f"verdict {name}: Rust mean {rm:.4f}, PyTorch mean {tm:.4f} (range {min(tv):.4f}..{max(tv):.4f}): "
          f"{'PASS' if ok else 'FAIL'} (within the PyTorch seeds' range or within 0.03)")
ratio = stats["rust"]["seconds"] / stats["torch"]["seconds"]
ok_all &= ratio <= 1.1
print(f"verdict epoch time: Rust {stats['rust']['seconds']:.1f} s, PyTorch {stats['torch']['seconds']:.1f} s, "
      f"ratio {ratio:.2f}: {'PASS' if ratio <= 1.1 else 'FAIL'} (<= 1.1)")
print(f"parity: {'PASS' if ok_all else 'FAIL'}")
PY
echo "train_parity: logs and summary.txt in $run"
