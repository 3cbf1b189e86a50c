"""High share next to nodata holes vs elsewhere, predicted and true (issue 24's rim check).

    python bench/nodata_rim.py PRED.tif TRUTH.tif [--width 2]

A pixel is "at the rim" when it is labelled (truth 0/1/2) and lies within --width pixels
(Chebyshev distance) of a nodata pixel of the truth (255). Prints, for rim pixels and for
the other labelled pixels, the share predicted High and the share truly High; a model
that reads holes as black ground predicts far more High at the rim than the truth holds.
Rasters are read through `gdal_translate -of ENVI` (GDAL's command line tools), so only
numpy is needed.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np


def read_u8(path: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "band.bin")
        subprocess.run(
            ["gdal_translate", "-q", "-of", "ENVI", "-ot", "Byte", "-b", "1", path, raw],
            check=True,
        )
        hdr = open(raw[:-4] + ".hdr").read()
        fields = dict(
            (k.strip(), v.strip())
            for k, v in (line.split("=", 1) for line in hdr.splitlines() if "=" in line)
        )
        h, w = int(fields["lines"]), int(fields["samples"])
        return np.fromfile(raw, dtype=np.uint8).reshape(h, w)


def near(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within `width` (Chebyshev) of a True pixel of `mask`."""
    out = mask.copy()
    padded = np.pad(mask, width)
    h, w = mask.shape
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            out |= padded[width + dy : width + dy + h, width + dx : width + dx + w]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pred")
    ap.add_argument("truth")
    ap.add_argument("--width", type=int, default=2)
    a = ap.parse_args()
    pred, truth = read_u8(a.pred), read_u8(a.truth)
    if pred.shape != truth.shape:
        print(f"{a.pred}: {pred.shape} pixels but {a.truth} has {truth.shape}", file=sys.stderr)
        return 2
    labelled = truth <= 2
    rim = labelled & near(truth == 255, a.width)
    rest = labelled & ~rim
    for name, m in (("rim", rim), ("elsewhere", rest)):
        n = int(m.sum())
        if n == 0:
            print(f"{name}: no pixels")
            continue
        p = 100.0 * float((pred[m] == 2).mean())
        t = 100.0 * float((truth[m] == 2).mean())
        print(f"{name} ({n} px): predicted High {p:.1f}%, true High {t:.1f}%, excess {p - t:+.1f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
