#!/usr/bin/env bash
# The generated v2 scenes of training/config.edge.yaml under out/v2b/: twelve 1024 x 1024
# training scenes (seeds 311-322) and a 2048 x 2048 validation mosaic of four more (seeds
# 331-334, one per quadrant, each with its own sensor draw), so that validation and the
# decision rule fitted on it see several sensors, as new scenes will.
#   bash training/make_scenes.sh [BIN_DIR]      (default: target/release)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$root/target/release}"
out="$root/out/v2b"
mkdir -p "$out"
for s in $(seq 311 322) 331 332 333 334; do
    [ -f "$out/s$s.tif" ] || "$bin/risk-train" synth --width 1024 --height 1024 --seed "$s" \
        --image "$out/s$s.tif" --labels "$out/s${s}_labels.tif"
done
# Quadrants: the scenes share one grid (origin, 10 m pixels); shift each by whole tiles.
read -r ox oy px < <(gdalinfo "$out/s331.tif" | sed -n 's/^Origin = (\(.*\),\(.*\))/\1 \2/p; s/^Pixel Size = (\([^,]*\),.*/\1/p' | paste -sd ' ')
for kind in "" _labels; do
    parts=()
    i=0
    for s in 331 332 333 334; do
        ulx=$(awk -v o="$ox" -v p="$px" -v i="$i" 'BEGIN { printf "%.6f", o + (i % 2) * 1024 * p }')
        uly=$(awk -v o="$oy" -v p="$px" -v i="$i" 'BEGIN { printf "%.6f", o - int(i / 2) * 1024 * p }')
        lrx=$(awk -v u="$ulx" -v p="$px" 'BEGIN { printf "%.6f", u + 1024 * p }')
        lry=$(awk -v u="$uly" -v p="$px" 'BEGIN { printf "%.6f", u - 1024 * p }')
        gdal_translate -q -a_ullr "$ulx" "$uly" "$lrx" "$lry" "$out/s$s$kind.tif" "$out/q$s$kind.tif"
        parts+=("$out/q$s$kind.tif")
        i=$((i + 1))
    done
    gdalbuildvrt -q -overwrite "$out/val$kind.vrt" "${parts[@]}"
    gdal_translate -q -co TILED=YES -co COMPRESS=DEFLATE "$out/val$kind.vrt" "$out/val$kind.tmp.tif"
    mv "$out/val$kind.tmp.tif" "$out/val$kind.tif"
done
echo "out/v2b: 12 training scenes, validation mosaic val.tif / val_labels.tif"
