#!/usr/bin/env python3
"""Regenerates the pydensecrf parity fixtures of inference/tests/crf_parity.rs.

Run through make_fixtures.sh (it makes the bench venv). Uses bench/reference/:
  1. the synthetic scene of scene.py, 256 x 256, seed 1;
  2. its probabilities quantised to uint8, prob_u8 = rint(prob * 255), so that the
     committed input stays small: the CRF input is exactly prob_u8 / 255 in float32, on
     both sides;
  3. two cases: the whole scene, and an odd-sized 200 x 131 crop (rows 37..168, columns
     23..223);
  4. pydensecrf (crf_harness.dense_crf) with the default and the enhanced preset on each;
  5. label compatibility matrices (risk-infer --crf-compat): each kernel's compat given to
     pydensecrf as the 2-d array w * C (its MatrixCompatibility, which symmetrises it):
     ordinal costs C = |i - j| on the whole scene with both presets, and an asymmetric C on
     the crop with the default preset.
Committed here: s256_img (uint8 HxWx3) and s256_prob_u8 (uint8 3xHxW; the test cuts the
crop's inputs from these), <case>_labels_<preset> (uint8 HxW) and
<case>_q_<preset>_every16 (float32 3 x ceil(H*W/16): Q at flat pixel indices 0, 16, 32, ...),
and for the matrices <case>_<matrix>_<preset>_labels / _q_every16 in the same formats.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "bench", "reference"))
import crf_harness  # noqa: E402
import scene  # noqa: E402

STRIDE = 16
ORDINAL = np.abs(np.subtract.outer(np.arange(3), np.arange(3))).astype(np.float32)
ASYMMETRIC = np.array([[0, 1, 3], [0.5, 0, 1], [2, 2, 0]], dtype=np.float32)


def with_matrix(preset, costs):
    """The preset with each kernel's Potts weight w replaced by the matrix w * costs."""
    p = dict(crf_harness.PRESETS[preset])
    for k in ("gauss_compat", "bilat_compat"):
        p[k] = np.ascontiguousarray(np.float32(p[k]) * costs)
    return p


def labels_and_every(q):
    """argmax labels (first index on ties) and Q at every STRIDE-th flat pixel."""
    labels = q.argmax(axis=0).astype(np.uint8)
    every = np.ascontiguousarray(q.reshape(3, -1)[:, ::STRIDE], dtype=np.float32)
    return labels, every


def main():
    img, prob, _ = scene.whole(256, 256, seed=1)
    prob_u8 = np.rint(prob * 255).astype(np.uint8)
    np.save(os.path.join(HERE, "s256_img.npy"), img)
    np.save(os.path.join(HERE, "s256_prob_u8.npy"), prob_u8)
    cases = {
        "s256": (img, prob_u8),
        "s200x131": (img[37:168, 23:223], prob_u8[:, 37:168, 23:223]),
    }
    for name, (im, pq) in cases.items():
        im = np.ascontiguousarray(im)
        p = np.ascontiguousarray(pq).astype(np.float32) / np.float32(255)
        for preset in ("default", "enhanced"):
            q, _, _ = crf_harness.dense_crf(im, p, crf_harness.PRESETS[preset])
            labels = q.argmax(axis=0).astype(np.uint8)
            np.save(os.path.join(HERE, f"{name}_labels_{preset}.npy"), labels)
            every = np.ascontiguousarray(q.reshape(3, -1)[:, ::STRIDE], dtype=np.float32)
            np.save(os.path.join(HERE, f"{name}_q_{preset}_every{STRIDE}.npy"), every)
            print(name, preset, labels.shape, "classes", np.bincount(labels.ravel(), minlength=3))
    matrices = [("s256", "ordinal", "default", ORDINAL), ("s256", "ordinal", "enhanced", ORDINAL),
                ("s200x131", "custom", "default", ASYMMETRIC)]
    for name, matrix, preset, costs in matrices:
        im, pq = cases[name]
        p = np.ascontiguousarray(pq).astype(np.float32) / np.float32(255)
        q, _, _ = crf_harness.dense_crf(np.ascontiguousarray(im), p, with_matrix(preset, costs))
        labels, every = labels_and_every(q)
        np.save(os.path.join(HERE, f"{name}_{matrix}_{preset}_labels.npy"), labels)
        np.save(os.path.join(HERE, f"{name}_{matrix}_{preset}_q_every{STRIDE}.npy"), every)
        print(name, matrix, preset, labels.shape, "classes", np.bincount(labels.ravel(), minlength=3))


if __name__ == "__main__":
    main()
