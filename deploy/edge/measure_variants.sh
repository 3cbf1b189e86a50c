#!/usr/bin/env bash
# Measures the accuracy cost of the FP16 and INT8 variants of a model (deploy/edge/variants.py)
# on a labelled raster, with and without the CRF:
#
#   deploy/edge/measure_variants.sh [MODEL] [RASTER] [LABELS] [CALIBRATION_RASTER]
#   (defaults: models/default.onnx, fixtures/scene512.tif + _labels, fixtures/scene700x433.tif)
#
# For each variant: file size, overall accuracy and quadratic kappa against the labels
# (risk-eval), and the share of pixels whose class equals the FP32 model's. Static INT8 is
# calibrated on CALIBRATION_RASTER, a different scene from the one measured. Writes
# out/variants/ and prints a Markdown table. Python venv: .deps/quant-venv (made here).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
model="${1:-models/default.onnx}"
raster="${2:-fixtures/scene512.tif}"
labels="${3:-${raster%.tif}_labels.tif}"
calib="${4:-fixtures/scene700x433.tif}"
out="out/variants"
venv=".deps/quant-venv"

[ -n "${ORT_DYLIB_PATH:-}" ] || source .deps/env.sh
if ! "$venv/bin/python" -c "import onnxruntime, onnx, onnxconverter_common, numpy" 2>/dev/null; then
    echo "measure_variants: creating $venv (onnxruntime 1.32.0, onnx, onnxconverter-common)" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q onnxruntime==1.32.0 onnx==1.23.2 onnxconverter-common==1.16.0 numpy
fi
py="$venv/bin/python"
cargo build -q --release -p risk-inference --bin risk-infer --bin risk-eval
bin=target/release

mkdir -p "$out"
gdal_translate -q -of ENVI "$calib" "$out/calibration.raw"
cp "$model" "$out/fp32.onnx"
"$py" deploy/edge/variants.py fp16 "$model" "$out/fp16.onnx"
"$py" deploy/edge/variants.py int8-dynamic "$model" "$out/int8-dynamic.onnx"
"$py" deploy/edge/variants.py int8-static "$model" "$out/int8-static.onnx" "$out/calibration.raw"

echo "| variant | size | CRF | accuracy | quadratic kappa | same class as FP32 |"
echo "|---|---|---|---|---|---|"
for crf in off model; do
    for v in fp32 fp16 int8-dynamic int8-static; do
        pred="$out/${v}_crf-$crf.tif"
        "$bin/risk-infer" "$raster" -o "$pred" --model "$out/$v.onnx" --crf "$crf" --threads 2 -q
        "$bin/risk-eval" "$pred" --truth "$labels" -o "$out/${v}_crf-${crf}_eval" >/dev/null
        gdal_translate -q -of ENVI "$pred" "${pred%.tif}.raw"
        read -r acc qk < <("$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("%.4f %.4f" % (d["accuracy"], d["quadratic_kappa"]))' "$out/${v}_crf-${crf}_eval/metrics.json")
        same=$("$py" deploy/edge/variants.py agree "$out/fp32_crf-$crf.raw" "${pred%.tif}.raw")
        echo "| $v | $(stat -c %s "$out/$v.onnx") B | $crf | $acc | $qk | $(awk -v s="$same" 'BEGIN{printf "%.2f%%", 100*s}') |"
    done
done
