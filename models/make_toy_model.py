#!/usr/bin/env python3
"""Builds models/toy.onnx (unless -o), the tiny stand-in model that was models/default.onnx
until the trained attention U-Net replaced it (see models/README.md); benches still use it
as a light model and as stand-in ensemble members. It follows the inference model contract
(inference/src/session.rs): input `image` float32 (N, 3, H, W), output `probs` float32
(N, 3, H, W) with softmax in the graph, dynamic N/H/W, metadata properties `risk.*`.

The network is a fixed feature stage (per band: 5x5 mean, 5x5 variance, 15x15 mean, as
grouped convolutions with box weights) followed by a 1x1 convolution whose weights are
a class-weighted multinomial logistic regression fitted here, with numpy, on the labelled
pixels of fixtures/scene512 and fixtures/scene700x433. Receptive field: 15 px.
Deterministic: same fixtures, same model bytes.

    .deps/bench-venv/bin/python models/make_toy_model.py   # bench venv: numpy, onnx, onnxruntime, rasterio

Ensemble members for `risk-infer --model a.onnx --model b.onnx ...` (a stand-in for the
trained seeds until they exist) are the same model fitted on other pixels:
`--fit-on scene512` (one fixture only) and/or `--offset 1` (the odd rows and columns
instead of the even ones), written with `-o`.
"""
import argparse
import json
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import rasterio
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "toy.onnx"


def box(k):
    w = np.full((3, 1, k, k), 1.0 / (k * k), np.float32)
    return w


def feature_nodes():
    inits = [numpy_helper.from_array(box(5), "box5"), numpy_helper.from_array(box(15), "box15")]
    nodes = [
        helper.make_node("Conv", ["image", "box5"], ["m5"], group=3, pads=[2, 2, 2, 2]),
        helper.make_node("Mul", ["image", "image"], ["sq"]),
        helper.make_node("Conv", ["sq", "box5"], ["msq5"], group=3, pads=[2, 2, 2, 2]),
        helper.make_node("Mul", ["m5", "m5"], ["m5sq"]),
        helper.make_node("Sub", ["msq5", "m5sq"], ["var5"]),
        helper.make_node("Conv", ["image", "box15"], ["m15"], group=3, pads=[7, 7, 7, 7]),
        helper.make_node("Concat", ["m5", "var5", "m15"], ["features"], axis=1),
    ]
    return nodes, inits


def graph(nodes, inits, outputs):
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    g = helper.make_graph(nodes, "risk_toy", [image], outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="risk-seg make_toy_model.py")
    m.ir_version = 8
    return m


def load(name):
    with rasterio.open(ROOT / "fixtures" / f"{name}.tif") as src:
        x = src.read().astype(np.float32) / 255.0
    with rasterio.open(ROOT / "fixtures" / f"{name}_labels.tif") as src:
        y = src.read(1)
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--out", type=pathlib.Path, default=OUT)
    ap.add_argument("--fit-on", default="scene512,scene700x433", help="comma-separated fixtures")
    ap.add_argument("--offset", type=int, default=0, choices=[0, 1], help="fit on even (0) or odd (1) rows/columns")
    args = ap.parse_args()
    scenes = args.fit_on.split(",")
    member = args.out != OUT
    nodes, inits = feature_nodes()
    feat_model = graph(nodes, inits, [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 9, "H", "W"])])
    sess = ort.InferenceSession(feat_model.SerializeToString(), providers=["CPUExecutionProvider"])
    xs, ys = [], []
    for name in scenes:
        x, y = load(name)
        f = sess.run(None, {"image": x[None]})[0][0]  # (9, H, W)
        keep = y != 255
        off = 1 - args.offset
        keep[:, off::2] = False  # every other column and row: plenty for 10 weights
        keep[off::2, :] = False
        xs.append(f[:, keep].T)
        ys.append(y[keep])
    X = np.concatenate(xs).astype(np.float64)
    y = np.concatenate(ys).astype(np.int64)
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = (X - mu) / sd
    counts = np.bincount(y, minlength=3)
    cw = (len(y) / (3.0 * counts)) ** 0.5  # soften the balance: sqrt of inverse frequency
    sw = cw[y]
    W = np.zeros((9, 3))
    b = np.zeros(3)
    onehot = np.eye(3)[y]
    for step in range(600):  # full-batch gradient descent with momentum
        logits = Z @ W + b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) * sw[:, None] / sw.sum()
        gw, gb = Z.T @ g, g.sum(0)
        if step == 0:
            vw, vb = np.zeros_like(W), np.zeros_like(b)
        vw = 0.9 * vw - 2.0 * gw
        vb = 0.9 * vb - 2.0 * gb
        W += vw
        b += vb
    pred = (Z @ W + b).argmax(1)
    acc = float((pred == y).mean())
    # Fold the feature standardisation into the 1x1 convolution.
    Wf = (W / sd[:, None]).T.astype(np.float32)  # (3, 9)
    bf = (b - (mu / sd) @ W).astype(np.float32)
    inits += [
        numpy_helper.from_array(Wf.reshape(3, 9, 1, 1), "head_w"),
        numpy_helper.from_array(bf, "head_b"),
    ]
    nodes += [
        helper.make_node("Conv", ["features", "head_w", "head_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    model = graph(nodes, inits, [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3, "H", "W"])])
    meta = {
        "risk.contract": "1",
        "risk.model_version": f"toy-1-{'+'.join(scenes)}-offset{args.offset}" if member else "toy-1",
        "risk.architecture": "box features (5x5 mean/variance, 15x15 mean) + logistic regression",
        "risk.bands": "1,2,3",
        "risk.scale": str(1.0 / 255.0),
        "risk.mean": "0,0,0",
        "risk.std": "1,1,1",
        "risk.class_names": "Low,Medium,High",
        "risk.tile_size": "256",
        "risk.tile_overlap": "32",
        "risk.crf": "default",
        "risk.metrics": json.dumps({"train_pixel_accuracy": round(acc, 4)}),
        "risk.training": json.dumps(
            {
                "data": "fixtures/" + " + ".join(scenes) if member else "fixtures/scene512 + scene700x433",
                **({"pixels": "odd rows and columns" if args.offset else "even rows and columns"} if member else {}),
                "class_weight": "sqrt inverse frequency",
            }
        ),
    }
    for k, v in meta.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(model, full_check=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)
    conf = np.zeros((3, 3), int)
    np.add.at(conf, (y, pred), 1)
    print(f"wrote {args.out}: train pixel accuracy {acc:.4f}\nconfusion (rows truth):\n{conf}")


if __name__ == "__main__":
    main()
