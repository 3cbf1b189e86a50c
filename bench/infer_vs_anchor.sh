#!/usr/bin/env bash
# risk-infer vs the Python peer pipeline (bench/reference/peer_infer.py: rasterio +
# onnxruntime + numpy blending), side by side in one run on the same raster, model,
# tile, overlap, batch and threads, CRF off. Both tools are timed as whole processes
# (wall clock and peak RSS from /usr/bin/time -v, start-up and model load included);
# their own JSON timings are printed too. Then the model-only floor: the same tiles,
# read and held in memory first, run through a session with risk-infer's settings and
# nothing else (inference/examples/session_bench.rs). A second pair of lines runs the
# light stand-in models/toy.onnx, where the cost is I/O rather than the model.
#
#   bench/infer_vs_anchor.sh [OUT_DIR]        # env: SIZE=8192 MODEL=models/default.onnx
#                                             #      TILE=512 OVERLAP=64 BATCH=4 THREADS=2
#                                             #      BENCH_VENV=.deps/bench-venv TOY=1
#                                             #      PROFILE=release (dev: the optimised
#                                             #      dev profile, no release build needed)
#   MODEL=b0 bench/infer_vs_anchor.sh         # real-sized EfficientNet-B0 U-Net (smp export)
#   BIG=32768 bench/infer_vs_anchor.sh        # also risk-infer alone on a BIGxBIG VRT mosaic
#                                             # of the raster (peak RSS vs the SIZE run); with a
#                                             # light MODEL this measures the pipeline's memory
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ref="$root/bench/reference"
out="${1:-$root/out/bench-infer}"
SIZE="${SIZE:-8192}" TILE="${TILE:-512}" OVERLAP="${OVERLAP:-64}" BATCH="${BATCH:-4}" THREADS="${THREADS:-2}"
MODEL="${MODEL:-$root/models/default.onnx}" TOY="${TOY:-1}"
venv="${BENCH_VENV:-$root/.deps/bench-venv}"
mkdir -p "$out"
source "$root/.deps/env.sh"
py="$venv/bin/python"
bash "$ref/setup.sh" bench "$venv"
if [ "$MODEL" = b0 ]; then
    MODEL="$out/b0.onnx"
    bash "$ref/setup.sh" smp "$root/.deps/smp-venv"
    # The exporter needs the `onnx` package, and its check onnxruntime: both are in the
    # bench venv (same Python, same numpy), so its site-packages go on the path.
    [ -f "$MODEL" ] || PYTHONPATH="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
        "$root/.deps/smp-venv/bin/python" "$ref/smp_ref.py" export \
        --encoder efficientnet-b0 --decoder 128,64,32,16,8 --out "$MODEL"
fi
PROFILE="${PROFILE:-release}"
cargo build --profile "$PROFILE" -q -p risk-inference --bin risk-infer --example session_bench
bin="$root/target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"
raster="$out/r$SIZE.tif"
[ -f "$raster" ] || "$py" "$ref/make_raster.py" "$raster" --width "$SIZE" --height "$SIZE" --nodata 0

peak() { grep "Maximum resident" "$1" | awk '{printf "%.0f", $6/1024}'; }
# Wall seconds from /usr/bin/time's "h:mm:ss" or "m:ss.ss".
wall() { grep "Elapsed (wall" "$1" | awk '{print $8}' | awk -F: '{s=0; for (i=1;i<=NF;i++) s=s*60+$i; printf "%.2f", s}'; }

# compare NAME MODEL: the peer, then risk-infer, as whole processes.
compare() {
    local name="$1" model="$2"
    echo "== $name: $SIZE x $SIZE, model $(basename "$model"), tile $TILE overlap $OVERLAP batch $BATCH threads $THREADS, $(date -u +%FT%TZ), $(uptime | sed 's/.*load/load/')"
    /usr/bin/time -v "$py" "$ref/peer_infer.py" "$model" "$raster" "$out/anchor_$name.tif" --tile "$TILE" \
        --overlap "$OVERLAP" --batch "$BATCH" --threads "$THREADS" --crf none >"$out/anchor_$name.json" 2>"$out/anchor_$name.time"
    /usr/bin/time -v env RUST_LOG=debug "$bin/risk-infer" "$raster" -o "$out/ours_$name.tif" \
        --model "$model" --tile "$TILE" --overlap "$OVERLAP" --batch "$BATCH" --threads "$THREADS" --crf off \
        2>"$out/ours_$name.log" || { cat "$out/ours_$name.log"; exit 1; }
    local ours_json
    ours_json=$(grep -o 'timings {.*}' "$out/ours_$name.log" | sed 's/^timings //')
    echo "peer_infer.py: $(tail -n 1 "$out/anchor_$name.json")"
    echo "  wall $(wall "$out/anchor_$name.time") s, peak RSS $(peak "$out/anchor_$name.time") MiB"
    echo "risk-infer:    $ours_json"
    echo "  wall $(wall "$out/ours_$name.log") s, peak RSS $(peak "$out/ours_$name.log") MiB"
    "$py" - "$(wall "$out/anchor_$name.time")" "$(wall "$out/ours_$name.log")" "$(tail -n 1 "$out/anchor_$name.json")" "$ours_json" <<'PY'
import json, sys
peer_wall, ours_wall = float(sys.argv[1]), float(sys.argv[2])
peer, ours = json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(f"  risk-infer wall / peer wall: {ours_wall / peer_wall:.2f}x ({peer_wall / ours_wall:.2f}x faster); "
      f"tiles {ours['tiles']} vs {peer['tiles']}; model s per tile {ours['model_s'] / ours['tiles']:.4f} vs "
      f"{peer['model_s'] / peer['tiles']:.4f}; model share of risk-infer wall {ours['model_s'] / ours_wall:.1%}")
PY
}

compare model "$MODEL"
echo "model-only floor (same tiles preloaded, same session settings, nothing else):"
"$bin/examples/session_bench" "$MODEL" "$raster" --tile "$TILE" --overlap "$OVERLAP" \
    --batch "$BATCH" --threads "$THREADS" | sed 's/^/  /'
[ "$TOY" = 0 ] || compare toy "$root/models/toy.onnx"
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
    /usr/bin/time -v "$bin/risk-infer" "$vrt" -o "$out/ours_big.tif" --model "$MODEL" \
        --tile "$TILE" --overlap "$OVERLAP" --batch "$BATCH" --threads "$THREADS" --crf off 2>"$out/ours_big.log"
    echo "risk-infer $BIG x $BIG (VRT mosaic): wall $(wall "$out/ours_big.log"), peak RSS $(peak "$out/ours_big.log") MiB" \
        "vs $SIZE x $SIZE: $(peak "$out/ours_model.log") MiB"
fi
