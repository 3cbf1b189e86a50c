#!/usr/bin/env python3
"""A deterministic synthetic RGB uint8 GeoTIFF of any size, for the inference benchmarks.

  make_raster.py OUT.tif --width W --height H [--bands 3] [--nodata V] [--seed 1]

The pixels are the img of scene.py (so `crf_harness.py scene` with the same size and seed
gives the same image); bands beyond 3 repeat R, G, B. Georeferencing: EPSG:32633, 10 m
pixels, upper-left corner (500000, 5500000); tiled 512 x 512, DEFLATE, BigTIFF when needed.
With --nodata V the file declares nodata V and the triangle x + y < min(W, H) / 5 in the
upper-left corner (about 2% of the pixels) holds V; data pixels are 1..255, so 0 is safe.
Written block by block: memory stays small at any size. The last stdout line is JSON.

Reference tool for benchmarks; not part of the product.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scene import Scene  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--bands", type=int, default=3)
    p.add_argument("--nodata", type=int, help="nodata value 0..255 (adds a nodata corner)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    start = time.perf_counter()
    profile = {"driver": "GTiff", "width": a.width, "height": a.height, "count": a.bands,
               "dtype": "uint8", "crs": "EPSG:32633",
               "transform": from_origin(500000.0, 5500000.0, 10.0, 10.0),
               "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate",
               "interleave": "pixel", "BIGTIFF": "IF_SAFER"}
    if a.nodata is not None:
        profile["nodata"] = a.nodata
    leg = max(1, min(a.width, a.height) // 5)
    with rasterio.open(a.out, "w", **profile) as dst:
        for r0, r1, (img, _, _) in Scene(a.height, a.width, a.seed).blocks(with_prob=False):
            if a.nodata is not None:
                y, x = np.mgrid[r0:r1, 0:a.width]
                img[x + y < leg] = a.nodata
            dst.write(np.stack([img[..., b % 3] for b in range(a.bands)]),
                      window=Window(0, r0, a.width, r1 - r0))
    print(json.dumps({"out": a.out, "width": a.width, "height": a.height, "bands": a.bands,
                      "nodata": a.nodata, "bytes": os.path.getsize(a.out),
                      "seconds": round(time.perf_counter() - start, 2)}))


if __name__ == "__main__":
    main()
