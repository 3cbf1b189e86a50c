#!/usr/bin/env bash
# Accuracy and time cost of test-time augmentation, multi-scale inference and ensembles
# on a held-out generated scene (risk-train synth, a seed the stand-in model never saw):
# risk-infer with each option, risk-eval against the scene's labels, mean uncertainty
# (gdalinfo -stats of the --uncertainty bands), wall and CPU (user + sys) time, each the
# median of ROUNDS interleaved rounds, and the CPU time's ratio to the plain run (the
# steadier measure on a shared machine). Prints a markdown table.
#
#   bench/tta_ensemble.sh [OUT_DIR]   # env: SIZE=1024 SEED=99 ROUNDS=3 THREADS=1
#                                     #      MODEL=models/default.onnx
#                                     #      MEMBERS="a.onnx b.onnx c.onnx" (default: three
#                                     #      stand-in members from models/make_toy_model.py)
#                                     #      QUICK=1: only plain, flips, d4 and scales
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/out/bench-tta}"
SIZE="${SIZE:-1024}" SEED="${SEED:-99}" ROUNDS="${ROUNDS:-3}" THREADS="${THREADS:-1}"
MODEL="${MODEL:-$root/models/default.onnx}"
mkdir -p "$out"
source "$root/.deps/env.sh"
bin="$root/target/release"
cargo build --release -q -p risk-inference --bin risk-infer --bin risk-eval
[ -x "$bin/risk-train" ] || cargo build --release -q -p risk-training --bin risk-train
scene="$out/scene$SEED.tif" labels="$out/scene${SEED}_labels.tif"
[ -f "$scene" ] || "$bin/risk-train" synth --generator v1 --width "$SIZE" --height "$SIZE" --seed "$SEED" \
    --image "$scene" --labels "$labels" >/dev/null
if [ -z "${MEMBERS:-}" ]; then
    py="$root/.deps/bench-venv/bin/python"
    bash "$root/bench/reference/setup.sh" bench "$root/.deps/bench-venv"
    MEMBERS="$out/a_scene512.onnx $out/b_scene700x433.onnx $out/c_odd.onnx"
    [ -f "$out/a_scene512.onnx" ] || "$py" "$root/models/make_toy_model.py" --fit-on scene512 -o "$out/a_scene512.onnx" >/dev/null
    [ -f "$out/b_scene700x433.onnx" ] || "$py" "$root/models/make_toy_model.py" --fit-on scene700x433 -o "$out/b_scene700x433.onnx" >/dev/null
    [ -f "$out/c_odd.onnx" ] || "$py" "$root/models/make_toy_model.py" --offset 1 -o "$out/c_odd.onnx" >/dev/null
fi
ens=""
for m in $MEMBERS; do ens="$ens --model $m"; done

# name | arguments (besides input, output, --uncertainty)
configs=(
    "plain|--model $MODEL --crf off"
    "tta flips|--model $MODEL --crf off --tta flips"
    "tta d4|--model $MODEL --crf off --tta d4"
    "scales 0.75,1,1.25|--model $MODEL --crf off --scales 0.75,1,1.25"
    "tta d4 x scales 0.75,1,1.25|--model $MODEL --crf off --tta d4 --scales 0.75,1,1.25"
    "ensemble of $(echo $MEMBERS | wc -w)|$ens --crf off"
    "ensemble x tta d4|$ens --crf off --tta d4"
    "plain + CRF (model's preset)|--model $MODEL"
    "tta d4 + CRF (model's preset)|--model $MODEL --tta d4"
)
rm -f "$out"/c*.times "$out"/c*.cpu
[ "${QUICK:-0}" = 1 ] && configs=("${configs[@]:0:4}")
echo "== $SIZE x $SIZE synth seed $SEED, model $(basename "$MODEL"), threads $THREADS, $ROUNDS rounds, $(uptime | sed 's/.*load/load/')" >&2
for ((r = 1; r <= ROUNDS; r++)); do
    for i in "${!configs[@]}"; do
        args="${configs[$i]#*|}"
        # shellcheck disable=SC2086
        /usr/bin/time -f "%e %U %S" -o "$out/c$i.time" "$bin/risk-infer" --quiet --threads "$THREADS" \
            "$scene" -o "$out/c$i.tif" --uncertainty "$out/c${i}_u.tif" $args
        awk '{ print $1 >> "'"$out/c$i.times"'"; print $2 + $3 >> "'"$out/c$i.cpu"'" }' "$out/c$i.time"
    done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
plain_cpu=$(median "$out/c0.cpu")
echo "| option | model runs per tile | kappa | QWK | Spearman | accuracy | Medium P | High R | mean entropy | mean MI | wall s | CPU s | CPU x plain |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for i in "${!configs[@]}"; do
    name="${configs[$i]%%|*}"
    "$bin/risk-eval" "$out/c$i.tif" --truth "$labels" -o "$out/c${i}_eval" >/dev/null
    m="$out/c${i}_eval/metrics.json"
    stats=$(gdalinfo -stats "$out/c${i}_u.tif" 2>/dev/null | grep -o "STATISTICS_MEAN=[0-9.e+-]*" | cut -d= -f2 | tr '\n' ' ')
    rm -f "$out/c${i}_u.tif.aux.xml"
    ent=$(echo "$stats" | awk '{printf "%.4f", $1}')
    mi=$(echo "$stats" | awk '{if (NF > 1) printf "%.4f", $2; else printf "-"}')
    views=$(gdalinfo "$out/c${i}_u.tif" | grep -o "VIEWS=[0-9]*" | cut -d= -f2)
    s=$(median "$out/c$i.times") cpu=$(median "$out/c$i.cpu")
    jq -r --arg name "$name" --arg views "$views" --arg ent "$ent" --arg mi "$mi" --arg s "$s" --arg cpu "$cpu" --arg p "$plain_cpu" \
        '"| \($name) | \($views) | \(.cohen_kappa*10000|round/10000) | \(.quadratic_kappa*10000|round/10000) | \(.spearman_rho*10000|round/10000) | \(.accuracy*10000|round/10000) | \((.classes[1].precision // 0)*10000|round/10000) | \(.classes[2].recall*10000|round/10000) | \($ent) | \($mi) | \($s|tonumber*10|round/10) | \($cpu|tonumber*10|round/10) | \(($cpu|tonumber)/($p|tonumber)*10|round/10) |"' "$m"
    rm -f "$out/c$i.times" "$out/c$i.cpu" "$out/c$i.time"
done
