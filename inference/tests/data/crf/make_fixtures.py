#!/usr/bin/env python3
"""Regenerate the pydensecrf parity fixtures for inference/tests/crf_parity.rs.

Run with the shared harness venv (see make_fixtures.sh). Steps:
  1. crf_reference.py make-scene --size 256 --seed 1          (the harness scene)
  2. probabilities quantised to uint8 (prob_u8 = rint(prob * 255)) so that the committed
     input stays small; the CRF input is exactly prob_u8 / 255 in float32, on both sides
  3. two cases: the whole 256x256 scene, and an odd-sized 200x131 crop (rows 37..168,
     columns 23..223) written as its own scene dir
  4. crf_reference.py run --params default|enhanced on each case (pydensecrf)
  5. committed: s256_img (uint8 HxWx3), s256_prob_u8 (uint8 3xHxW; the crop's inputs are
     cut from these), labels_<preset> (uint8 HxW)
     and q_<preset>_every16 (float32 3x(ceil(H*W/16)): Q at flat pixel indices 0, 16, 32, ...)
"""
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.environ.get("BENCH_DIR", "/work/shared/bench")
TMP = sys.argv[1] if len(sys.argv) > 1 else "/tmp/crf_fixtures"
STRIDE = 16


def harness(*args):
    subprocess.run([sys.executable, os.path.join(BENCH, "crf_reference.py"), *args], check=True,
                   stdout=subprocess.DEVNULL)


def main():
    scene = os.path.join(TMP, "scene256")
    harness("make-scene", "--size", "256", "--seed", "1", "--out", scene)
    img = np.load(os.path.join(scene, "img.npy"))
    prob = np.load(os.path.join(scene, "prob.npy"))
    prob_u8 = np.rint(prob * 255).astype(np.uint8)
    cases = {
        "s256": (img, prob_u8),
        "s200x131": (img[37:168, 23:223], prob_u8[:, 37:168, 23:223]),
    }
    for name, (im, pq) in cases.items():
        im = np.ascontiguousarray(im)
        pq = np.ascontiguousarray(pq)
        d = os.path.join(TMP, name)
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "img.npy"), im)
        np.save(os.path.join(d, "prob.npy"), pq.astype(np.float32) / np.float32(255))
        if name == "s256":  # the crop's inputs are cut from these by the test
            np.save(os.path.join(HERE, f"{name}_img.npy"), im)
            np.save(os.path.join(HERE, f"{name}_prob_u8.npy"), pq)
        for preset in ("default", "enhanced"):
            out = os.path.join(TMP, f"{name}_{preset}")
            harness("run", "--in", d, "--params", preset, "--out", out, "--no-unary")
            labels = np.load(os.path.join(out, "labels.npy"))
            q = np.load(os.path.join(out, "Q.npy"))
            np.save(os.path.join(HERE, f"{name}_labels_{preset}.npy"), labels)
            qs = np.ascontiguousarray(q.reshape(3, -1)[:, ::STRIDE], dtype=np.float32)
            np.save(os.path.join(HERE, f"{name}_q_{preset}_every{STRIDE}.npy"), qs)
            print(name, preset, labels.shape, "classes", np.bincount(labels.ravel(), minlength=3))


if __name__ == "__main__":
    main()
