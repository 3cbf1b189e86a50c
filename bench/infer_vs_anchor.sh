#!/usr/bin/env bash
# risk-infer vs the Python peer pipeline (bench/reference/peer_infer.py: rasterio +
# onnxruntime + numpy blending), side by side in one run on the same raster, model,
# tile, overlap, batch and threads, CRF off. Prints both tools' JSON timings, wall time
# and peak RSS (/usr/bin/time -v), and the ratio.
#
#   bench/infer_vs_anchor.sh [OUT_DIR]        # env: SIZE=8192 MODEL=models/default.onnx
#                                             #      TILE=512 OVERLAP=64 BATCH=4 THREADS=2
#   MODEL=b0 bench/infer_vs_anchor.sh         # real-sized EfficientNet-B0 U-Net (smp export)
#   BIG=32768 bench/infer_vs_anchor.sh        # also risk-infer alone on a BIGxBIG VRT mosaic
#                                             # of the raster (peak RSS vs the SIZE run); with a
#                                             # light MODEL this measures the pipeline's memory
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ref="$root/bench/reference"
out="${1:-$root/out/bench-infer}"
SIZE="${SIZE:-8192}" TILE="${TILE:-512}" OVERLAP="${OVERLAP:-64}" BATCH="${BATCH:-4}" THREADS="${THREADS:-2}"
MODEL="${MODEL:-$root/models/default.onnx}"
mkdir -p "$out"
source "$root/.deps/env.sh"
py="$root/.deps/bench-venv/bin/python"
bash "$ref/setup.sh" bench "$root/.deps/bench-venv"
if [ "$MODEL" = b0 ]; then
    MODEL="$out/b0.onnx"
    bash "$ref/setup.sh" smp "$root/.deps/smp-venv"
    [ -f "$MODEL" ] || "$root/.deps/smp-venv/bin/python" "$ref/smp_ref.py" export \
        --encoder efficientnet-b0 --decoder 128,64,32,16,8 --out "$MODEL"
fi
cargo build --release -q -p risk-inference --bin risk-infer
raster="$out/r$SIZE.tif"
[ -f "$raster" ] || "$py" "$ref/make_raster.py" "$raster" --width "$SIZE" --height "$SIZE" --nodata 0

peak() { grep "Maximum resident" "$1" | awk '{printf "%.0f", $6/1024}'; }
wall() { grep "Elapsed (wall" "$1" | awk '{print $8}'; }
echo "== $SIZE x $SIZE, model $(basename "$MODEL"), tile $TILE overlap $OVERLAP batch $BATCH threads $THREADS, $(uptime | sed 's/.*load/load/')"
/usr/bin/time -v "$py" "$ref/peer_infer.py" "$MODEL" "$raster" "$out/anchor.tif" --tile "$TILE" \
    --overlap "$OVERLAP" --batch "$BATCH" --threads "$THREADS" --crf none >"$out/anchor.json" 2>"$out/anchor.time"
/usr/bin/time -v env RUST_LOG=debug "$root/target/release/risk-infer" "$raster" -o "$out/ours.tif" --model "$MODEL" \
    --tile "$TILE" --overlap "$OVERLAP" --batch "$BATCH" --threads "$THREADS" --crf off 2>"$out/ours.log" || {
    cat "$out/ours.log"; exit 1; }
anchor_total=$(tail -n 1 "$out/anchor.json" | "$py" -c "import json,sys; print(json.loads(sys.stdin.read())['total_s'])")
ours_json=$(grep -o 'timings {.*}' "$out/ours.log" | sed 's/^timings //')
ours_total=$(echo "$ours_json" | "$py" -c "import json,sys; print(json.loads(sys.stdin.read())['total_s'])")
echo "peer_infer.py:   $(tail -n 1 "$out/anchor.json")"
echo "  wall $(wall "$out/anchor.time"), peak RSS $(peak "$out/anchor.time") MiB"
echo "risk-infer:      $ours_json"
echo "  wall $(wall "$out/ours.log"), peak RSS $(peak "$out/ours.log") MiB"
"$py" - "$anchor_total" "$ours_json" <<'PY'
import json, sys
anchor = float(sys.argv[1]); ours = json.loads(sys.argv[2])
print(f"speed-up (anchor total / risk-infer total): {anchor / ours['total_s']:.2f}x; "
      f"model share of risk-infer wall: {ours['model_s'] / ours['total_s']:.1%}")
PY
if [ -n "${BIG:-}" ]; then
    vrt="$out/mosaic$BIG.vrt"
    n=$(( BIG / SIZE ))
    # gdalbuildvrt places identical files on top of each other; write the mosaic by hand.
    "$py" - "$raster" "$vrt" "$n" "$SIZE" <<'PY'
import sys
src, vrt, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import rasterio
with rasterio.open(src) as r:
    gt = r.transform; crs = r.crs.to_wkt(); nodata = r.nodata
bands = []
for b in range(1, 4):
    srcs = "".join(
        f'<ComplexSource><SourceFilename relativeToVRT="0">{src}</SourceFilename><SourceBand>{b}</SourceBand>'
        f'<SrcRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/>'
        f'<DstRect xOff="{i*size}" yOff="{j*size}" xSize="{size}" ySize="{size}"/><NODATA>{nodata}</NODATA></ComplexSource>'
        for j in range(n) for i in range(n))
    bands.append(f'<VRTRasterBand dataType="Byte" band="{b}"><NoDataValue>{nodata}</NoDataValue>{srcs}</VRTRasterBand>')
open(vrt, "w").write(
    f'<VRTDataset rasterXSize="{n*size}" rasterYSize="{n*size}"><SRS>{crs}</SRS>'
    f'<GeoTransform>{gt.c}, {gt.a}, 0, {gt.f}, 0, {gt.e}</GeoTransform>{"".join(bands)}</VRTDataset>')
PY
    /usr/bin/time -v "$root/target/release/risk-infer" "$vrt" -o "$out/ours_big.tif" --model "$MODEL" \
        --tile "$TILE" --overlap "$OVERLAP" --batch "$BATCH" --threads "$THREADS" --crf off 2>"$out/ours_big.log"
    echo "risk-infer $BIG x $BIG (VRT mosaic): wall $(wall "$out/ours_big.log"), peak RSS $(peak "$out/ours_big.log") MiB" \
        "vs $SIZE x $SIZE: $(peak "$out/ours.log") MiB"
fi
