#!/usr/bin/env python3
"""The Python peer of risk-infer: the same job written as a typical Python script would.

  peer_infer.py MODEL.onnx IN.tif OUT.tif [--tile 512 --overlap 64 --batch 4 --threads N
      --crf none|default|enhanced --crf-tile 2048 --crf-overlap 128 --crf-bands R,G,B
      --bands 1,2,3 --scale F --mean m,... --std s,...]

1. Model tiles on a grid of stride tile - overlap; tiles that run past the right or bottom
   edge are read clipped (rasterio windows), reflect-padded to the full tile, and cropped
   after the model.
2. Input: the bands as float32, times the scale, then (x - mean) / std. Bands, scale, mean
   and std come from the model's `risk.*` metadata (the model contract of
   inference/src/session.rs; scale defaults to 1/255 for uint8 rasters, else 1); the flags
   override them.
3. onnxruntime on the CPU; a first output named like `probs` is used as is, anything else
   is softmaxed over the class axis.
4. Probabilities of overlapping tiles are blended with the weight outer(r, r),
   r[i] = min(1, (i + 0.5) / overlap, (n - i - 0.5) / overlap), then divided by the summed
   weight.
5. Optional dense CRF (pydensecrf through crf_harness.py, the presets of docs/spec.md)
   over CRF tiles of --crf-tile with --crf-overlap, marginals blended with the same ramp.
6. argmax, 255 where every input band equals the raster's nodata; a uint8 GeoTIFF with the
   input's CRS and transform, tiled 512, DEFLATE.

Like most such scripts it holds the whole probability map in memory (3 x H x W float32,
twice with the CRF); risk-infer's memory is bounded instead. The last stdout line is JSON:
seconds per phase (read_s, model_s, blend_s, crf_read_s, crf_s, write_s, total_s), tile
counts, class counts and peak RSS. Used by bench/infer_vs_anchor.sh.

Reference tool for benchmarks; not part of the product.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import onnxruntime as ort
import rasterio
from rasterio.windows import Window

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crf_harness import PRESETS, dense_crf  # noqa: E402


def starts(n, tile, overlap):
    """Tile origins along one axis of length n; the last tile may run past n."""
    out = [0]
    while out[-1] + tile < n:
        out.append(out[-1] + max(1, tile - overlap))
    return out


def ramp(n, overlap):
    if overlap <= 0:
        return np.ones(n, np.float32)
    i = np.arange(n, dtype=np.float32)
    return np.minimum(1.0, np.minimum(i + 0.5, n - i - 0.5) / overlap).astype(np.float32)


def floats(text):
    return np.array([float(v) for v in text.split(",")], np.float32)[:, None, None]


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--crf", choices=["none", *sorted(PRESETS)], default="none")
    p.add_argument("--crf-tile", type=int, default=2048)
    p.add_argument("--crf-overlap", type=int, default=128)
    p.add_argument("--crf-bands", help="1-based RGB bands for the CRF (default: first 3)")
    p.add_argument("--bands", help="1-based model bands (default: risk.bands or 1..C)")
    p.add_argument("--scale", type=float, help="factor on raw values (default: risk.scale)")
    p.add_argument("--mean", help="per-band mean after scaling (default: risk.mean)")
    p.add_argument("--std", help="per-band std after scaling (default: risk.std)")
    a = p.parse_args()

    t_start = time.perf_counter()
    sec = dict(read_s=0.0, model_s=0.0, blend_s=0.0, crf_read_s=0.0, crf_s=0.0, write_s=0.0)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    session = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    inp, out = session.get_inputs()[0], session.get_outputs()[0]
    in_type = np.float16 if "float16" in inp.type else np.float32
    softmax = "prob" not in out.name

    src = rasterio.open(a.src)
    H, W = src.height, src.width
    channels = inp.shape[1] if isinstance(inp.shape[1], int) else 3
    bands_text = a.bands or meta.get("risk.bands")
    bands = [int(b) for b in bands_text.split(",")] if bands_text else list(range(1, channels + 1))
    if a.scale is not None:
        scale = np.float32(a.scale)
    elif "risk.scale" in meta:
        scale = floats(meta["risk.scale"])
    else:
        scale = np.float32(1 / 255 if src.dtypes[0] == "uint8" else 1.0)
    mean = floats(a.mean or meta.get("risk.mean", "0"))
    std = floats(a.std or meta.get("risk.std", "1"))
    crf_bands = [int(b) for b in a.crf_bands.split(",")] if a.crf_bands else bands[:3]
    nodata = src.nodata

    T = a.tile
    weight = np.outer(ramp(T, a.overlap), ramp(T, a.overlap))
    prob = np.zeros((3, H, W), np.float32)
    wsum = np.zeros((H, W), np.float32)
    invalid = np.zeros((H, W), bool)
    tiles = [(y, x) for y in starts(H, T, a.overlap) for x in starts(W, T, a.overlap)]
    for first in range(0, len(tiles), a.batch):
        batch = tiles[first:first + a.batch]
        t0 = time.perf_counter()
        inputs, sizes = [], []
        for y, x in batch:
            h, w = min(T, H - y), min(T, W - x)
            raw = src.read(bands, window=Window(x, y, w, h))
            if nodata is not None:
                invalid[y:y + h, x:x + w] |= np.all(raw == nodata, axis=0)
            f = (raw.astype(np.float32) * scale - mean) / std
            mode = "reflect" if min(h, w) > 1 else "edge"
            inputs.append(np.pad(f, ((0, 0), (0, T - h), (0, T - w)), mode=mode))
            sizes.append((h, w))
        t1 = time.perf_counter()
        (y_out,) = session.run([out.name], {inp.name: np.stack(inputs).astype(in_type)})
        y_out = y_out.astype(np.float32)
        t2 = time.perf_counter()
        if softmax:
            e = np.exp(y_out - y_out.max(axis=1, keepdims=True))
            y_out = e / e.sum(axis=1, keepdims=True)
        for (y, x), (h, w), pt in zip(batch, sizes, y_out):
            prob[:, y:y + h, x:x + w] += pt[:, :h, :w] * weight[:h, :w]
            wsum[y:y + h, x:x + w] += weight[:h, :w]
        t3 = time.perf_counter()
        sec["read_s"] += t1 - t0
        sec["model_s"] += t2 - t1
        sec["blend_s"] += t3 - t2
    t0 = time.perf_counter()
    prob /= wsum
    del wsum
    sec["blend_s"] += time.perf_counter() - t0

    crf_tiles = 0
    if a.crf != "none":
        q = np.zeros((3, H, W), np.float32)
        C = a.crf_tile
        for y in starts(H, C, a.crf_overlap):
            for x in starts(W, C, a.crf_overlap):
                h, w = min(C, H - y), min(C, W - x)
                t0 = time.perf_counter()
                rgb = src.read(crf_bands, window=Window(x, y, w, h))
                if rgb.dtype != np.uint8:
                    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
                rgb = np.ascontiguousarray(np.moveaxis(rgb, 0, -1))
                t1 = time.perf_counter()
                qt, _, _ = dense_crf(rgb, np.ascontiguousarray(prob[:, y:y + h, x:x + w]),
                                     PRESETS[a.crf])
                q[:, y:y + h, x:x + w] += qt * np.outer(ramp(h, a.crf_overlap),
                                                        ramp(w, a.crf_overlap))
                sec["crf_read_s"] += t1 - t0
                sec["crf_s"] += time.perf_counter() - t1
                crf_tiles += 1
        prob = q  # the argmax needs no normalisation by the summed weight

    t0 = time.perf_counter()
    labels = prob.argmax(axis=0).astype(np.uint8)
    labels[invalid] = 255
    with rasterio.open(a.dst, "w", driver="GTiff", width=W, height=H, count=1, dtype="uint8",
                       crs=src.crs, transform=src.transform, nodata=255, tiled=True,
                       blockxsize=512, blockysize=512, compress="deflate") as dst:
        dst.write(labels, 1)
    src.close()
    sec["write_s"] = time.perf_counter() - t0

    counts = np.bincount(labels.ravel(), minlength=256)
    rec = {k: round(v, 3) for k, v in sec.items()}
    rec.update(total_s=round(time.perf_counter() - t_start, 3), width=W, height=H,
               tiles=len(tiles), tile=T, overlap=a.overlap, batch=a.batch, crf=a.crf,
               crf_tiles=crf_tiles, threads=a.threads,
               class_counts={str(c): int(counts[c]) for c in (0, 1, 2, 255)},
               peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
