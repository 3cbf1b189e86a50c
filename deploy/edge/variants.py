"""FP16 and INT8 variants of a risk-seg ONNX model, for small CPU machines.

    variants.py fp16 MODEL OUT            # float16 weights and I/O (onnxconverter-common)
    variants.py int8-dynamic MODEL OUT    # ONNX Runtime quantize_dynamic: int8 weights,
                                          # activations quantised per run (no calibration)
    variants.py int8-static MODEL OUT RAW...  # ONNX Runtime quantize_static, QDQ, per-channel
                                          # weights; activation ranges calibrated on tiles of
                                          # the RAW rasters (see below)
    variants.py agree A.raw B.raw         # share of pixels where two class maps agree

RAW: a raster dumped band-sequential by `gdal_translate -of ENVI in.tif in.raw` (the .hdr beside
it gives samples, lines, bands and data type), so that this needs no GDAL Python bindings.
Calibration tiles are normalised exactly as risk-infer does: the model's `risk.bands`,
`risk.scale` (default 1/255 for Byte), `risk.mean`, `risk.std` metadata.

risk-infer takes every variant as it is: an FP16 model's float16 input and output are converted
at the boundary; a quantised model keeps float32 input and output. The metadata (risk.*) is
copied into each variant, with `risk.variant` saying which one it is.

Runs in a venv with onnxruntime, onnx, onnxconverter-common and numpy
(deploy/edge/measure_variants.sh makes one in .deps/quant-venv).
"""

import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

ENVI_TYPES = {1: np.uint8, 2: np.int16, 3: np.int32, 4: np.float32, 5: np.float64, 12: np.uint16}


def metadata(model):
    return {p.key: p.value for p in model.metadata_props}


def set_metadata(path, props, variant):
    m = onnx.load(path)
    props = dict(props, **{"risk.variant": variant})
    del m.metadata_props[:]
    for k, v in sorted(props.items()):
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, path)


def read_envi(raw):
    hdr = Path(raw).with_suffix(".hdr").read_text()
    field = lambda k: int(re.search(rf"^{k}\s*=\s*(\d+)", hdr, re.M).group(1))  # noqa: E731
    w, h, b, t = field("samples"), field("lines"), field("bands"), field("data type")
    if "interleave = bsq" not in hdr:
        raise SystemExit(f"{raw}: expected band-sequential (bsq) ENVI, see gdal_translate -of ENVI")
    return np.fromfile(raw, dtype=ENVI_TYPES[t]).reshape(b, h, w)


def normalise(img, props, channels):
    bands = [int(x) for x in props.get("risk.bands", ",".join(str(i + 1) for i in range(channels))).split(",")]
    x = img[[b - 1 for b in bands]].astype(np.float32)
    per_band = lambda key, default: np.resize(  # noqa: E731
        np.array([float(v) for v in props[key].split(",")] if key in props else [default], np.float32), len(bands)
    )
    scale = per_band("risk.scale", 1.0 / 255.0 if img.dtype == np.uint8 else 1.0)
    mean, std = per_band("risk.mean", 0.0), per_band("risk.std", 1.0)
    return (x * scale[:, None, None] - mean[:, None, None]) / std[:, None, None]


class Tiles:
    """onnxruntime.quantization.CalibrationDataReader over model-sized tiles of rasters, at half
    a tile's stride (as risk-infer's overlapping tiles see the raster)."""

    def __init__(self, raws, props, channels):
        tile = int(props.get("risk.tile_size", "512"))
        self.batches = []
        for raw in raws:
            x = normalise(read_envi(raw), props, channels)
            _, h, w = x.shape
            step = max(tile // 2, 32)
            for y0 in range(0, max(h - tile, 0) + 1, step):
                for x0 in range(0, max(w - tile, 0) + 1, step):
                    t = x[:, y0 : y0 + tile, x0 : x0 + tile]
                    th, tw = (t.shape[1] // 32) * 32, (t.shape[2] // 32) * 32
                    self.batches.append({"image": np.ascontiguousarray(t[None, :, :th, :tw])})
        if not self.batches:
            raise SystemExit("no calibration tiles: give rasters at least 32x32")
        print(f"calibration: {len(self.batches)} tiles of {tile} px from {len(raws)} raster(s)", file=sys.stderr)
        self.it = iter(self.batches)

    def get_next(self):
        return next(self.it, None)


def load_fp32(src):
    """The model, which must be an FP32 export: variants are made from FP32 weights."""
    m = onnx.load(src)
    if m.graph.input[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise SystemExit(f"{src}: not an FP32 model; export one without --fp16 (risk-train export CKPT -o model.onnx)")
    return m


def channels_of(model):
    return model.graph.input[0].type.tensor_type.shape.dim[1].dim_value


def fp16(src, dst):
    from onnxconverter_common import float16

    m = load_fp32(src)
    props = metadata(m)
    # keep_io_types=False: float16 `image` and `probs`, which risk-infer converts at the boundary.
    onnx.save(float16.convert_float_to_float16(m, keep_io_types=False), dst)
    set_metadata(dst, props, "fp16")


def preprocessed(src):
    """The model after ONNX Runtime's quantisation pre-processing (shape inference, fusions)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    tmp = tempfile.NamedTemporaryFile(suffix=".onnx", delete=False).name
    quant_pre_process(src, tmp, skip_symbolic_shape=True)
    return tmp


def int8_dynamic(src, dst):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    props = metadata(load_fp32(src))
    # uint8 weights: ONNX Runtime's CPU ConvInteger kernel takes uint8 x uint8.
    quantize_dynamic(preprocessed(src), dst, weight_type=QuantType.QUInt8)
    set_metadata(dst, props, "int8-dynamic")


def int8_static(src, dst, raws):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    m = load_fp32(src)
    props = metadata(m)
    reader = Tiles(raws, props, channels_of(m))
    quantize_static(
        preprocessed(src),
        dst,
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    set_metadata(dst, props, "int8-static")


def agree(a, b):
    x, y = read_envi(a), read_envi(b)
    if x.shape != y.shape:
        raise SystemExit(f"{a} and {b} differ in shape: {x.shape} vs {y.shape}")
    print(f"{np.mean(x == y):.6f}")


if __name__ == "__main__":
    cmd, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if cmd == "fp16" and len(args) == 2:
        fp16(*args)
    elif cmd == "int8-dynamic" and len(args) == 2:
        int8_dynamic(*args)
    elif cmd == "int8-static" and len(args) >= 3:
        int8_static(args[0], args[1], args[2:])
    elif cmd == "agree" and len(args) == 2:
        agree(*args)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
