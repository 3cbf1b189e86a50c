#!/usr/bin/env python3
"""pydensecrf as the reference of the Rust dense CRF (risk-crf, risk-infer --crf).

  crf_harness.py scene   --size N | --width W --height H  [--seed S] --out DIR
  crf_harness.py run     --in DIR --params default|enhanced [--iters K] --out DIR [--no-unary]
  crf_harness.py compare --ref DIR --labels L.npy [--q Q.npy] [--min-agreement 0.999]

scene   writes img.npy (uint8 HxWx3), prob.npy (float32 3xHxW) and truth.npy (uint8 HxW)
        of the deterministic synthetic scene of scene.py.
run     runs pydensecrf's DenseCRF2D on a scene folder: unary -log(clip(p, 1e-5, 1)), a
        Gaussian kernel then a bilateral one (DIAG_KERNEL, NORMALIZE_SYMMETRIC, Potts),
        mean field; writes labels.npy (argmax of Q, uint8), Q.npy (float32 3xHxW),
        unary.npy (unless --no-unary) and timing.json (seconds per phase, peak RSS,
        accuracy against truth.npy when there is one); prints the same JSON.
compare prints label agreement, a confusion table, max/mean |Q diff| and a JSON line;
        exits 1 below --min-agreement.

The two parameter sets are the presets of docs/spec.md ("Inference", dense CRF).
Reference tool for tests and benchmarks; not part of the product.
"""
import argparse
import importlib.metadata
import json
import os
import platform
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scene as scenes  # noqa: E402

# iters; Gaussian kernel sxy and Potts weight; bilateral kernel sxy, srgb and Potts weight.
PRESETS = {
    "default": dict(iters=5, gauss_sxy=3.0, gauss_compat=3.0,
                    bilat_sxy=80.0, bilat_srgb=13.0, bilat_compat=10.0),
    "enhanced": dict(iters=8, gauss_sxy=3.0, gauss_compat=5.0,
                     bilat_sxy=80.0, bilat_srgb=13.0, bilat_compat=15.0),
}


def unary(prob):
    """pydensecrf.utils.unary_from_softmax(prob) (scale None, clip 1e-5), in float32,
    shape (C, H*W), C order."""
    p = np.clip(prob.astype(np.float32, copy=False), np.float32(1e-5), np.float32(1.0))
    return np.ascontiguousarray(-np.log(p).reshape(prob.shape[0], -1), dtype=np.float32)


def dense_crf(img, prob, preset, iters=None):
    """pydensecrf over one image: (Q float32 CxHxW, the unary, seconds per phase)."""
    import pydensecrf.densecrf as dcrf
    c, h, w = prob.shape
    t = [time.perf_counter()]
    u = unary(prob)
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(u)
    t.append(time.perf_counter())
    crf.addPairwiseGaussian(sxy=preset["gauss_sxy"], compat=preset["gauss_compat"],
                            kernel=dcrf.DIAG_KERNEL, normalization=dcrf.NORMALIZE_SYMMETRIC)
    crf.addPairwiseBilateral(sxy=preset["bilat_sxy"], srgb=preset["bilat_srgb"],
                             rgbim=np.ascontiguousarray(img, dtype=np.uint8),
                             compat=preset["bilat_compat"],
                             kernel=dcrf.DIAG_KERNEL, normalization=dcrf.NORMALIZE_SYMMETRIC)
    t.append(time.perf_counter())
    q = np.array(crf.inference(preset["iters"] if iters is None else iters), dtype=np.float32)
    t.append(time.perf_counter())
    seconds = {"unary_s": t[1] - t[0], "lattice_build_s": t[2] - t[1],
               "inference_s": t[3] - t[2], "total_s": t[3] - t[0]}
    return q.reshape(c, h, w), u, seconds


def pydensecrf_version():
    for dist in ("pydensecrf", "pydensecrf2"):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            pass
    return "unknown"


def cmd_scene(a):
    height, width = a.height or a.size, a.width or a.size
    if not height or not width:
        sys.exit("crf_harness.py scene: give --size N, or --width W and --height H")
    start = time.perf_counter()
    img, prob, truth = scenes.whole(height, width, a.seed)
    os.makedirs(a.out, exist_ok=True)
    for name, array in (("img", img), ("prob", prob), ("truth", truth)):
        np.save(os.path.join(a.out, f"{name}.npy"), np.ascontiguousarray(array))
    shares = np.bincount(truth.ravel(), minlength=3) / truth.size
    print(json.dumps({"out": a.out, "height": height, "width": width, "seed": a.seed,
                      "class_fractions": [round(float(s), 4) for s in shares],
                      "argmax_prob_accuracy": round(float((prob.argmax(0) == truth).mean()), 4),
                      "seconds": round(time.perf_counter() - start, 2)}))


def cmd_run(a):
    img = np.load(os.path.join(a.inp, "img.npy"))
    prob = np.load(os.path.join(a.inp, "prob.npy"))
    preset = dict(PRESETS[a.params])
    if a.iters is not None:
        preset["iters"] = a.iters
    q, u, seconds = dense_crf(img, prob, preset)
    labels = q.argmax(axis=0).astype(np.uint8)
    os.makedirs(a.out, exist_ok=True)
    np.save(os.path.join(a.out, "labels.npy"), labels)
    np.save(os.path.join(a.out, "Q.npy"), q)
    if not a.no_unary:
        np.save(os.path.join(a.out, "unary.npy"), u.reshape(prob.shape))
    info = {
        "height": int(prob.shape[1]), "width": int(prob.shape[2]),
        "params_name": a.params, "params": preset,
        "kernel": "DIAG_KERNEL", "normalization": "NORMALIZE_SYMMETRIC",
        "pydensecrf": pydensecrf_version(), "numpy": np.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "threads": 1,
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    truth_file = os.path.join(a.inp, "truth.npy")
    if os.path.exists(truth_file):
        truth = np.load(truth_file)
        info["accuracy_before"] = round(float((prob.argmax(0) == truth).mean()), 5)
        info["accuracy_after"] = round(float((labels == truth).mean()), 5)
    with open(os.path.join(a.out, "timing.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))


def cmd_compare(a):
    ref = np.load(os.path.join(a.ref, "labels.npy"))
    other = np.load(a.labels)
    if other.shape != ref.shape:
        sys.exit(f"crf_harness.py compare: labels shape {other.shape}, reference {ref.shape}")
    other = other.astype(np.int64)
    agreement = float((ref == other).mean())
    print(f"label agreement: {agreement:.6f} ({int((ref != other).sum())} of {ref.size} differ)")
    # Rows: the reference's class; columns: the other's class 0, 1, 2 or anything else.
    table = np.zeros((3, 4), np.int64)
    np.add.at(table, (ref.ravel().astype(np.int64), np.clip(other.ravel(), 0, 3)), 1)
    print("confusion (rows: reference class 0 1 2; columns: other class 0 1 2 other):")
    for c in range(3):
        print(f"  ref {c}: " + " ".join(f"{v:10d}" for v in table[c]))
    result = {"agreement": agreement}
    if a.q:
        q_ref = np.load(os.path.join(a.ref, "Q.npy"))
        q_other = np.load(a.q).astype(np.float32)
        if q_other.shape != q_ref.shape:
            sys.exit(f"crf_harness.py compare: Q shape {q_other.shape}, reference {q_ref.shape}")
        diff = np.abs(q_ref - q_other)
        result.update(q_max_abs_diff=float(diff.max()), q_mean_abs_diff=float(diff.mean()))
        print(f"|Q diff|: max {diff.max():.3e}, mean {diff.mean():.3e}")
    print(json.dumps(result))
    if agreement < a.min_agreement:
        print(f"FAIL: agreement {agreement:.6f} < {a.min_agreement}", file=sys.stderr)
        sys.exit(1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scene", help="write a deterministic synthetic scene")
    s.add_argument("--size", type=int, help="side of a square scene")
    s.add_argument("--width", type=int)
    s.add_argument("--height", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_scene)
    s = sub.add_parser("run", help="pydensecrf on a scene folder")
    s.add_argument("--in", dest="inp", required=True, help="folder with img.npy and prob.npy")
    s.add_argument("--params", choices=sorted(PRESETS), default="default")
    s.add_argument("--iters", type=int, help="mean-field iterations (default: the preset's)")
    s.add_argument("--out", required=True)
    s.add_argument("--no-unary", action="store_true", help="do not write unary.npy")
    s.set_defaults(fn=cmd_run)
    s = sub.add_parser("compare", help="another implementation's labels (and Q) vs a run")
    s.add_argument("--ref", required=True, help="folder written by `run`")
    s.add_argument("--labels", required=True, help="labels .npy (HxW)")
    s.add_argument("--q", help="Q .npy (CxHxW float32)")
    s.add_argument("--min-agreement", type=float, default=0.999)
    s.set_defaults(fn=cmd_compare)
    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
