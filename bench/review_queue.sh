#!/usr/bin/env bash
# The labelling queue (risk-infer --review) against random windows, on generated scenes
# with labels: errors per pixel and Medium errors per pixel inside the queue's windows,
# divided by the same inside random non-overlapping windows of the same size and number
# (DRAWS draws, averaged). Ratios well above 1 mean the queue points annotators at the
# model's mistakes.
#
#   bench/review_queue.sh                     # seeds 98 and 99, 1024^2, 10 windows of 128 px
#   SEEDS="98 99" SIZE=1024 N=10 WIN=128 DRAWS=20 MODEL=models/default.onnx bench/review_queue.sh
#
# Needs target/{debug,release}/risk-train, risk-infer, risk-eval (BIN=target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
SEEDS=${SEEDS:-"98 99"}
SIZE=${SIZE:-1024}
N=${N:-10}
WIN=${WIN:-128}
DRAWS=${DRAWS:-20}
MODEL=${MODEL:-models/default.onnx}
TTA=${TTA:-flips}
OUT=${OUT:-out/review_queue}
mkdir -p "$OUT"

for s in $SEEDS; do
  img="$OUT/scene${SIZE}_s$s.tif" lab="$OUT/scene${SIZE}_s${s}_labels.tif"
  [ -f "$lab" ] || "$BIN/risk-train" synth --generator v1 --width "$SIZE" --height "$SIZE" --seed "$s" --image "$img" --labels "$lab"
  "$BIN/risk-infer" -q "$img" -m "$MODEL" -o "$OUT/risk_s$s.tif" --tta "$TTA" --uncertainty "$OUT/unc_s$s.tif" \
    --review "$N" "$OUT/review_s$s.gpkg" --review-size "$WIN"
  "$BIN/risk-eval" "$OUT/risk_s$s.tif" --truth "$lab" --windows "$OUT/review_s$s.gpkg" -o "$OUT/eval_s${s}_queue" >/dev/null
  gt=$(gdalinfo -json "$OUT/risk_s$s.tif" | python3 -c 'import json,sys; print(*json.load(sys.stdin)["geoTransform"])')
  for d in $(seq 1 "$DRAWS"); do
    # N random non-overlapping windows (rejection sampling), as GeoJSON rectangles.
    python3 - "$OUT/random_s${s}_$d.geojson" "$SIZE" "$WIN" "$N" "$s$d" $gt <<'EOF'
import json, random, sys
path, size, win, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
gt = [float(v) for v in sys.argv[6:12]]
rng = random.Random(seed)
taken = []
while len(taken) < n:
    x, y = rng.randrange(0, size - win + 1), rng.randrange(0, size - win + 1)
    if all(x + win <= a or a + win <= x or y + win <= b or b + win <= y for a, b in taken):
        taken.append((x, y))
at = lambda x, y: [gt[0] + x * gt[1] + y * gt[2], gt[3] + x * gt[4] + y * gt[5]]
feats = [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[
    at(x, y), at(x + win, y), at(x + win, y + win), at(x, y + win), at(x, y)]]}} for x, y in taken]
json.dump({"type": "FeatureCollection", "features": feats}, open(path, "w"))
EOF
    "$BIN/risk-eval" "$OUT/risk_s$s.tif" --truth "$lab" --windows "$OUT/random_s${s}_$d.geojson" -o "$OUT/eval_s${s}_random$d" >/dev/null
  done
  python3 - "$OUT" "$s" "$DRAWS" <<'EOF'
import json, sys
out, s, draws = sys.argv[1], sys.argv[2], int(sys.argv[3])
def rates(d):
    m = json.load(open(f"{out}/{d}/metrics.json"))
    cm, px = m["confusion_matrix"], m["pixels"]
    medium = sum(cm[1]) + sum(r[1] for r in cm) - 2 * cm[1][1]
    return (1 - m["accuracy"]), medium / px, px
q = rates(f"eval_s{s}_queue")
r = [rates(f"eval_s{s}_random{d}") for d in range(1, draws + 1)]
re, rm = sum(x[0] for x in r) / draws, sum(x[1] for x in r) / draws
print(f"seed {s}: queue errors/px {q[0]:.4f}, Medium errors/px {q[1]:.4f} ({q[2]} px); "
      f"random windows ({draws} draws) {re:.4f}, {rm:.4f}; ratios {q[0] / re:.2f} (errors), {q[1] / rm:.2f} (Medium errors)")
EOF
done
