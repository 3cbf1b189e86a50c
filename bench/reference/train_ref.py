#!/usr/bin/env python3
"""The reference trainer: what `risk-train fit CONFIG` does, in plain PyTorch with
segmentation-models-pytorch, so that bench/train_parity.sh can train both on the same
data and compare how they learn.

  train_ref.py CONFIG [--seed N] [--epochs E] [--out DIR] [--threads T]

CONFIG is the same YAML the Rust trainer reads (fields left out take the defaults of
training/config.yaml; relative paths are relative to the config's folder). Writes
DIR/log.csv with the Rust trainer's columns (epoch, lr, train_loss, val_loss, val_kappa,
val_precision_1, val_recall_2, val_spearman, seconds) and prints one line per epoch; the
last stdout line is a JSON record of the run.

What it mirrors (training/src/train.rs and the modules it uses):
- Tiles: the same grid (last row / column moved back to the raster edge), tiles with less
  than data.min_labelled labelled pixels left out, the spatial-block split of the primary
  scene (a Fisher-Yates shuffle of the blocks with numpy's RandomState(seed)), the other
  scenes wholly in the split they name. Rasters are read through `gdal_translate -of ENVI`
  (raw band-sequential files) and numpy; image nodata holes are filled ring by ring from
  the valid pixels (each filled pixel the mean of its 4-neighbours one ring closer).
- Minority sampling: class-1-rich tiles, duplication round robin up to
  sampling.duplicate_target, SMOTE on the flattened rich tiles up to sampling.smote_target
  (k nearest neighbours in float64, ties by index; numpy RandomState(sampling.seed):
  randint for the pairs, then uniform for the steps, as imbalanced-learn draws them;
  a synthetic tile takes its nearer parent's labels).
- Each epoch: the cosine / plateau / constant learning rate, torch.manual_seed and a
  numpy RandomState both seeded with seed + 1000 (epoch + 1); the sample list shuffled
  with that RandomState, then, tile by tile, the same draws for flips, rot90 and colour
  jitter (brightness, contrast about the tile's mean grey, saturation about each pixel's
  grey, ITU-R 601 weights, each clamped to [0, 1]); so both trainers see the same tiles
  in the same order with the same augmentations.
- Model: smp.Unet (EfficientNet encoder, BatchNorm momentum model.bn_momentum, drop-connect
  rate 0.2 * block / blocks) with CBAM on the deepest features (channel attention over the
  whole map or over model.attention_window pixel windows, then 7x7 spatial attention),
  Dropout2d(model.head_dropout) before smp's class head, and a CORAL head (one shared 1x1
  weight without bias over the decoder features, biases [1.0, 0.5]) as coral-pytorch's.
  Initialisation: smp's (encoder at PyTorch's defaults, decoder kaiming-uniform with
  BatchNorm 1 / 0, head xavier-uniform with a zero bias), CBAM as smp initialises its
  decoder (kaiming-uniform with ReLU gain, zero biases: what the Rust CBAM draws; a bare
  torch.nn.Conv2d would draw U(+-1/sqrt(fan_in)) weights and biases), the CORAL weight at
  nn.Linear's default; torch.manual_seed(seed) first.
- Loss: softmax focal loss (gamma, alpha) averaged over labelled pixels + coral_weight x
  CORAL (BCE-with-logits over the 2 levels 1[y > k], summed, averaged over labelled
  pixels); nodata ignored.
- torch.optim.AdamW(lr, weight_decay), the rate set at the start of each epoch; batches of
  optim.batch_size; early stopping after optim.patience epochs without a better
  validation loss.
- Validation (eval mode, batches of batch_size): loss weighted by batch, and over all
  validation pixels Cohen's kappa, class-1 precision, class-2 recall and Spearman's rho.

Not mirrored: checkpoints and --resume (nothing is saved but log.csv), compute.device /
mixed precision (CPU, float32 only), data.bands other than the first three colour bands
for jitter (as Rust, only the first three are jittered), model.init_weights is loaded with
load_state_dict(strict=False).

Reference tool for benchmarks; not part of the product.
"""
import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULTS = os.path.join(HERE, "..", "..", "training", "config.yaml")


def fail(msg):
    sys.exit(f"train_ref.py: {msg}")


# ---------------------------------------------------------------------------- config
def merge(base, over, where=""):
    """`over` on top of `base`; a key `base` lacks is an error, as serde's deny_unknown_fields."""
    out = dict(base)
    for k, v in over.items():
        if k not in base:
            fail(f"unknown config key {where}{k}")
        out[k] = merge(base[k], v, f"{where}{k}.") if isinstance(base[k], dict) and isinstance(v, dict) else v
    return out


def numbers(v):
    """YAML 1.1 reads `1e-3` (no dot) as a string; serde reads it as a number, so do we."""
    if isinstance(v, dict):
        return {k: numbers(x) for k, x in v.items()}
    if isinstance(v, list):
        return [numbers(x) for x in v]
    if isinstance(v, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", v):
        return float(v)
    return v


def load_config(path):
    with open(DEFAULTS) as f:
        base = yaml.safe_load(f)
    base["data"]["stride"] = None  # commented out in the defaults file: the tile side
    base["model"]["init_weights"] = None
    try:
        with open(path) as f:
            cfg = merge(base, numbers(yaml.safe_load(f) or {}))
    except OSError as e:
        fail(f"cannot read config {path}: {e}")
    folder = os.path.dirname(os.path.abspath(path))
    at = lambda p: p if p is None or os.path.isabs(p) else os.path.join(folder, p)
    d = cfg["data"]
    d["image"], d["labels"] = at(d["image"]), at(d["labels"])
    d["scenes"] = [dict(s, image=at(s["image"]), labels=at(s["labels"])) for s in d["scenes"] or []]
    cfg["out"] = at(cfg["out"])
    cfg["model"]["init_weights"] = at(cfg["model"]["init_weights"])
    return cfg


# ---------------------------------------------------------------------------- rasters
def gdal_nodata(path):
    r = subprocess.run(["gdalinfo", "-json", path], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{path}: gdalinfo failed: {r.stderr.strip()}")
    info = json.loads(r.stdout)
    return info["size"], [b.get("noDataValue") for b in info["bands"]], [b["type"] for b in info["bands"]]


def read_raster(path, bands, work):
    """(bands, H, W) array of `path`'s `bands` (1-based) in their own type, and nodata values."""
    (w, h), nodata, types = gdal_nodata(path)
    if any(b < 1 or b > len(types) for b in bands):
        fail(f"{path}: bands {bands} requested but it has bands 1..={len(types)}")
    dtype = {"Byte": np.uint8, "UInt16": np.uint16, "Int16": np.int16, "Float32": np.float32}
    if types[bands[0] - 1] not in dtype:
        fail(f"{path}: band type {types[bands[0] - 1]} not supported by the reference reader")
    raw = os.path.join(work, f"r{len(os.listdir(work))}.raw")
    cmd = ["gdal_translate", "-q", "-of", "ENVI", "-co", "INTERLEAVE=BSQ"]
    for b in bands:
        cmd += ["-b", str(b)]
    r = subprocess.run(cmd + [path, raw], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{path}: gdal_translate failed: {r.stderr.strip()}")
    a = np.fromfile(raw, dtype=dtype[types[bands[0] - 1]]).reshape(len(bands), h, w)
    return a, [nodata[b - 1] for b in bands]


def origins(n, tile, stride):
    if n < tile:
        return []
    v = list(range(0, n - tile + 1, stride))
    if v[-1] != n - tile:
        v.append(n - tile)
    return v


def fill_nearest(img, valid):
    """Holes (valid False) take, ring by ring, the mean of their 4-neighbours one ring closer."""
    if valid.all() or not valid.any():
        return img
    img = img.copy()
    done = valid.copy()
    h, w = valid.shape
    while not done.all():
        s = np.zeros(img.shape)
        n = np.zeros((h, w))
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            src = np.zeros((h, w), bool)
            ys, yd = (slice(0, h - 1), slice(1, h)) if dy == 1 else (slice(1, h), slice(0, h - 1)) if dy == -1 else (slice(None), slice(None))
            xs, xd = (slice(0, w - 1), slice(1, w)) if dx == 1 else (slice(1, w), slice(0, w - 1)) if dx == -1 else (slice(None), slice(None))
            src[yd, xd] = done[ys, xs]
            shifted = np.zeros(img.shape)
            shifted[:, yd, xd] = img[:, ys, xs]
            s += shifted * src
            n += src
        ring = (~done) & (n > 0)
        img[:, ring] = (s[:, ring] / n[ring]).astype(np.float32)  # mean in f64, stored f32
        done |= ring
    return img


class Scene:
    def __init__(self, image, labels, bands, scale, work):
        self.image_path, self.labels_path = image, labels
        self.img, self.nodata = read_raster(image, bands, work)
        lab, _ = read_raster(labels, [1], work)
        self.labels = lab[0]
        if self.img.shape[1:] != self.labels.shape:
            fail(f"{labels}: label raster is {self.labels.shape[1]}x{self.labels.shape[0]} but the "
                 f"image {image} is {self.img.shape[2]}x{self.img.shape[1]}")
        self.inv = np.float32(1.0 / scale)

    def counts(self, x, y, t):
        c = np.bincount(self.labels[y:y + t, x:x + t].ravel(), minlength=256)
        return np.array([c[0], c[1], c[2], t * t - c[0] - c[1] - c[2]], np.int64)

    def read(self, x, y, t):
        """(C, t, t) float32 in [0, 1] with nodata holes filled, and (t, t) uint8 labels."""
        raw = self.img[:, y:y + t, x:x + t]
        image = raw.astype(np.float32) * self.inv
        valid = np.zeros((t, t), bool)
        for b, nd in enumerate(self.nodata):
            valid |= np.ones((t, t), bool) if nd is None else raw[b] != nd
        image = fill_nearest(image, valid)
        return image, self.labels[y:y + t, x:x + t].copy()


# ---------------------------------------------------------------------------- data
def fisher_yates(items, rng):
    """In place, as the Rust port: j = randint(0, i + 1) for i from the end down to 1."""
    for i in range(len(items) - 1, 0, -1):
        j = int(rng.randint(0, i + 1, size=1)[0])
        items[i], items[j] = items[j], items[i]
    return items


def block_split(windows, block, val_fraction, test_fraction, seed):
    cols = max(-(-(x + t) // block) for x, _, t in windows)
    rows = max(-(-(y + t) // block) for _, y, t in windows)
    n = cols * rows
    order = fisher_yates(list(range(n)), np.random.RandomState(seed))
    n_val, n_test = round(val_fraction * n), round(test_fraction * n)
    of_block = [None] * n
    for rank, b in enumerate(order):
        of_block[b] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    out = {"train": [], "val": [], "test": [], "dropped": []}
    for i, (x, y, t) in enumerate(windows):
        home = of_block[(y // block) * cols + x // block]
        blocks = [by * cols + bx for by in range(y // block, (y + t - 1) // block + 1)
                  for bx in range(x // block, (x + t - 1) // block + 1)]
        out["dropped" if any(of_block[b] != home for b in blocks) else home].append(i)
    return out


def share(medium, labelled):
    return medium / max(labelled, 1)


def sampling_plan(counts, s, load, log):
    """Samples: ("tile", i) or ("syn", a, b, step, label_from); indices into `counts`."""
    lab = lambda c: int(c[0] + c[1] + c[2])
    samples = [("tile", i) for i in range(len(counts))]
    medium, total = sum(int(c[1]) for c in counts), sum(lab(c) for c in counts)
    shares = [share(medium, total)] * 3
    rich = [i for i, c in enumerate(counts) if lab(c) > 0 and share(int(c[1]), lab(c)) >= s["rich_threshold"]]
    dup = syn = k = 0
    if not rich:
        log(f"warning: no class-1-rich tiles (>= {100 * s['rich_threshold']:.0f}% class 1): no duplication, no SMOTE")
    else:
        while share(medium, total) < s["duplicate_target"]:
            t = rich[dup % len(rich)]
            samples.append(("tile", t))
            medium, total, dup = medium + int(counts[t][1]), total + lab(counts[t]), dup + 1
        shares[1] = shares[2] = share(medium, total)
        k = min(s["k"], len(rich) - 1)
        if k < s["k"]:
            log(f"warning: only {len(rich)} class-1-rich tiles: SMOTE k reduced from {s['k']} to {k}")
        c_mean = sum(int(counts[i][1]) for i in rich) / len(rich)
        l_mean = sum(lab(counts[i]) for i in rich) / len(rich)
        needed = s["smote_target"] * total - medium
        per_tile = c_mean - s["smote_target"] * l_mean
        if k > 0 and needed > 0 and per_tile > 0:
            syn = math.ceil(needed / per_tile)
            x = np.stack([load(i).ravel().astype(np.float64) for i in rich])
            nns = []
            for i in range(len(rich)):
                d2 = np.array([((x[i] - x[j]) ** 2).sum() for j in range(len(rich))])
                others = [j for j in np.argsort(d2, kind="stable") if j != i]
                nns.append(others[:k])
            rng = np.random.RandomState(s["seed"])
            picks = rng.randint(0, len(rich) * k, size=syn)
            steps = rng.uniform(0, 1, size=syn)
            for p, step in zip(picks, steps):
                row, col = int(p) // k, int(p) % k
                a, b = rich[row], rich[nns[row][col]]
                label_from = a if step <= 0.5 else b
                samples.append(("syn", a, b, float(step), label_from))
                medium, total = medium + int(counts[label_from][1]), total + lab(counts[label_from])
            shares[2] = share(medium, total)
        else:
            k = 0
    pct = lambda v: f"{100 * v:.2f}%"
    log(f"minority sampling: class-1 share of the training tiles {pct(shares[0])}; {len(rich)} "
        f"class-1-rich tiles (>= {100 * s['rich_threshold']:.0f}% class 1)")
    log(f"duplication: {dup} copies of class-1-rich tiles; class-1 share {pct(shares[0])} -> {pct(shares[1])}")
    log(f"Generated {syn} synthetic tiles via SMOTE (k {k}); class-1 share {pct(shares[1])} -> {pct(shares[2])}")
    return samples


class Dataset:
    def __init__(self, cfg, log, work):
        d = cfg["data"]
        tile = d["tile"]
        stride = d["stride"] or tile
        self.scenes, self.windows, self.counts = [], [], []

        def add_scene(image, labels):
            sc = Scene(image, labels, d["bands"], d["scale"], work)
            idx = len(self.scenes)
            self.scenes.append(sc)
            first = len(self.windows)
            h, w = sc.labels.shape
            for y in origins(h, tile, stride):
                for x in origins(w, tile, stride):
                    c = sc.counts(x, y, tile)
                    if (c[0] + c[1] + c[2]) / max(c.sum(), 1) >= d["min_labelled"]:
                        self.windows.append((idx, x, y, tile))
                        self.counts.append(c)
            if len(self.windows) == first:
                fail(f"no {tile}x{tile} tile with at least {100 * d['min_labelled']:.0f}% labelled pixels in {labels}")
            return list(range(first, len(self.windows)))

        primary = add_scene(d["image"], d["labels"])
        split = block_split([w[1:] for w in self.windows], d["block_tiles"] * stride,
                            d["val_fraction"], d["test_fraction"], cfg["seed"] & 0xFFFFFFFF)
        for s in d["scenes"]:
            idx = add_scene(s["image"], s["labels"])
            split[s["split"]].extend(idx)
            log(f"scene {s['image']}: {len(idx)} tiles to {s['split']}, {self.describe(idx)}")
        del primary
        if not split["train"] or not split["val"]:
            fail(f"the split left {len(split['train'])} training and {len(split['val'])} validation tiles")
        for name in ("train", "val", "test"):
            log(f"{name}: {len(split[name])} tiles, {self.describe(split[name])}")
        self.split = split
        train_counts = [self.counts[i] for i in split["train"]]
        self.samples = sampling_plan(train_counts, cfg["sampling"],
                                     lambda i: self.read_tile(split["train"][i])[0], log)
        self.mean = np.array(d["mean"], np.float32)[:, None, None]
        self.std = np.array(d["std"], np.float32)[:, None, None]

    def describe(self, idx):
        c = sum((self.counts[i] for i in idx), np.zeros(4, np.int64))
        t = max(int(c.sum()), 1)
        return (f"Low {100 * c[0] / t:.2f}%  Medium {100 * c[1] / t:.2f}%  High {100 * c[2] / t:.2f}%  "
                f"nodata {100 * c[3] / t:.2f}%")

    def read_tile(self, i):
        sc, x, y, t = self.windows[i]
        return self.scenes[sc].read(x, y, t)

    def read_sample(self, s):
        tile = lambda i: self.read_tile(self.split["train"][i])
        if s[0] == "tile":
            return tile(s[1])
        _, a, b, step, label_from = s
        (ia, la), (ib, lb) = tile(a), tile(b)
        diff = ib - ia  # float32, as numpy subtracts float32 arrays
        image = (ia.astype(np.float64) + step * diff.astype(np.float64)).astype(np.float32)
        return image, (la if label_from == a else lb)


# ---------------------------------------------------------------------------- augmentation
def augment(torch, x, y, a, rng):
    """x (C, T, T) float in [0, 1], y (T, T); the draws in the Rust trainer's order."""
    if a["flips"]:
        if rng.random_sample() < 0.5:
            x, y = x.flip([2]), y.flip([1])
        if rng.random_sample() < 0.5:
            x, y = x.flip([1]), y.flip([0])
    if a["rot90"]:
        k = int(rng.randint(0, 4, size=1)[0])
        if k > 0:
            x, y = torch.rot90(x, k, [1, 2]), torch.rot90(y, k, [0, 1])
    if a["rotate_any"]:
        fail("augment.rotate_any is not mirrored by the reference trainer")
    if x.shape[0] >= 3:
        factor = lambda j: 1.0 - j + 2.0 * j * rng.random_sample()
        grey = lambda t: (t[0] * 0.299 + t[1] * 0.587 + t[2] * 0.114).unsqueeze(0)
        rgb = (x[:3] * factor(a["brightness"])).clamp(0.0, 1.0)
        c = factor(a["contrast"])
        m = grey(rgb).mean()
        rgb = ((rgb - m) * c + m).clamp(0.0, 1.0)
        s = factor(a["saturation"])
        g = grey(rgb)
        rgb = ((rgb - g) * s + g).clamp(0.0, 1.0)
        x = torch.cat([rgb, x[3:]], 0)
    return x, y


# ---------------------------------------------------------------------------- model
def build_model(torch, cfg):
    import segmentation_models_pytorch as smp
    from segmentation_models_pytorch.base.initialization import initialize_decoder
    nn = torch.nn
    m = cfg["model"]
    decoder = {"b0": [128, 64, 32, 16, 8], "b4": [256, 128, 64, 32, 16]}[m["encoder"]]

    class Cbam(nn.Module):
        def __init__(self, channels, window):
            super().__init__()
            hidden = max(channels // 16, 1)
            self.channel_fc1 = nn.Conv2d(channels, hidden, 1)
            self.channel_fc2 = nn.Conv2d(hidden, channels, 1)
            self.spatial = nn.Conv2d(2, 1, 7, padding=3, bias=False)
            self.window = window

        def mlp(self, t):
            return self.channel_fc2(torch.relu(self.channel_fc1(t)))

        def forward(self, x):
            if self.window == 0:
                gate = torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
            else:
                w = self.window
                avg = nn.functional.avg_pool2d(x, w, w, ceil_mode=True, count_include_pad=False)
                mx = nn.functional.max_pool2d(x, w, w, ceil_mode=True)
                gate = torch.sigmoid(self.mlp(avg) + self.mlp(mx))
                gate = gate.repeat_interleave(w, 2).repeat_interleave(w, 3)[:, :, :x.shape[2], :x.shape[3]]
            x = x * gate
            s = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
            return x * torch.sigmoid(self.spatial(s))

    class RiskUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.unet = smp.Unet(f"efficientnet-{m['encoder']}", encoder_weights=None, classes=3,
                                 in_channels=len(cfg["data"]["bands"]), decoder_channels=decoder)
            for bn in self.unet.encoder.modules():
                if isinstance(bn, nn.BatchNorm2d):
                    bn.momentum = m["bn_momentum"]
            deepest = self.unet.encoder.out_channels[-1]
            self.attention = None
            if m["attention"]:
                # The Rust CBAM's initialisation: smp's decoder scheme (kaiming-uniform with
                # ReLU gain, zero biases), as if the module were part of smp's decoder.
                self.attention = Cbam(deepest, m["attention_window"] // 32)
                initialize_decoder(self.attention)
            self.dropout = nn.Dropout2d(m["head_dropout"])
            # coral-pytorch's CoralLayer: Linear(size_in, 1, bias=False), biases (K-1 .. 1) / (K-1)
            self.coral_weight = nn.Conv2d(decoder[-1], 1, 1, bias=False)
            self.coral_bias = nn.Parameter(torch.tensor([1.0, 0.5]))

        def forward(self, x):
            features = self.unet.encoder(x)
            if self.attention is not None:
                features[-1] = self.attention(features[-1])
            decoded = self.unet.decoder(features)
            logits = self.unet.segmentation_head(self.dropout(decoded))
            ordinal = self.coral_weight(decoded) + self.coral_bias.view(1, -1, 1, 1)
            return logits, ordinal

    net = RiskUNet()
    if m["init_weights"]:
        from safetensors.torch import load_file
        missing, unexpected = net.unet.load_state_dict(load_file(m["init_weights"]), strict=False)
        print(f"initial weights {m['init_weights']}: {len(missing)} tensors left at initialisation, "
              f"{len(unexpected)} unused", file=sys.stderr)
    return net


# ---------------------------------------------------------------------------- loss, metrics
def risk_loss(torch, logits, ordinal, y, lc):
    y = y.long()
    valid = (y != lc["ignore_index"]).float()
    safe = torch.where(y == lc["ignore_index"], torch.zeros_like(y), y)
    count = valid.sum().clamp_min(1.0)
    log_p = logits.log_softmax(1).gather(1, safe.unsqueeze(1)).squeeze(1)
    alpha = torch.tensor(lc["alpha"], dtype=torch.float32)[safe]
    focal = (-(alpha * (1 - log_p.exp()).clamp_min(0.0).pow(lc["gamma"]) * log_p) * valid).sum() / count
    levels = torch.stack([(safe > k).float() for k in range(ordinal.shape[1])], 1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(ordinal, levels, reduction="none").sum(1)
    coral = (bce * valid).sum() / count
    return focal + lc["coral_weight"] * coral


def metrics(cm):
    """Cohen's kappa, class-1 precision, class-2 recall, Spearman's rho (ties averaged)."""
    cm = cm.astype(np.float64)
    n = cm.sum()
    rows, cols = cm.sum(1), cm.sum(0)
    expected = np.outer(rows, cols) / n
    w = 1 - np.eye(3)
    den = (w * expected).sum()
    kappa = 1 - (w * cm).sum() / den if den > 0 else None
    p1 = cm[1, 1] / cols[1] if cols[1] else 0.0
    r2 = cm[2, 2] / rows[2] if rows[2] else 0.0
    rank = lambda tot: np.cumsum(tot) - tot + tot / 2 - n / 2
    rt, rp = rank(rows), rank(cols)
    vt, vp = (rows * rt * rt).sum(), (cols * rp * rp).sum()
    rho = None if vt == 0 or vp == 0 else float(np.clip((cm * np.outer(rt, rp)).sum() / math.sqrt(vt * vp), -1, 1))
    return kappa, p1, r2, rho


# ---------------------------------------------------------------------------- training
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--epochs", type=int, help="override optim.epochs")
    p.add_argument("--out", help="run folder (default: the config's out)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    a = p.parse_args()
    cfg = load_config(a.config)
    if a.seed is not None:
        cfg["seed"] = a.seed
    if a.epochs is not None:
        cfg["optim"]["epochs"] = a.epochs
    out = a.out or cfg["out"]
    os.makedirs(out, exist_ok=True)
    log = lambda line: print(f"train_ref: {line}", file=sys.stderr, flush=True)

    import torch
    torch.set_num_threads(a.threads)
    seed, o = cfg["seed"], cfg["optim"]
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix="train-ref-") as work:
        data = Dataset(cfg, log, work)
    net = build_model(torch, cfg)
    log(f"seed {seed}, {sum(q.numel() for q in net.parameters()):,} parameters, torch {torch.__version__}, "
        f"{a.threads} threads")
    opt = torch.optim.AdamW(net.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])

    def tensors(tiles, rng):
        xs, ys = [], []
        for image, labels in tiles:
            x, y = torch.from_numpy(image), torch.from_numpy(labels)
            if rng is not None:
                x, y = augment(torch, x, y, cfg["augment"], rng)
            xs.append((x - torch.from_numpy(data.mean)) / torch.from_numpy(data.std))
            ys.append(y.long())
        return torch.stack(xs), torch.stack(ys)

    csv_path = os.path.join(out, "log.csv")
    with open(csv_path, "w") as f:
        f.write("epoch,lr,train_loss,val_loss,val_kappa,val_precision_1,val_recall_2,val_spearman,seconds\n")
    best, since_best, lr_state, bs = None, 0, 0.0, o["batch_size"]
    history = []
    for epoch in range(o["epochs"]):
        t0 = time.perf_counter()
        if o["schedule"] == "cosine":
            lr = o["lr"] * 0.5 * (1 + math.cos(math.pi * epoch / o["epochs"]))
        elif o["schedule"] == "constant":
            lr = o["lr"]
        else:
            lr = lr_state if lr_state > 0 else o["lr"]
            if since_best > 0 and since_best % max(o["plateau_patience"], 1) == 0:
                lr *= 0.5
        for g in opt.param_groups:
            g["lr"] = lr
        epoch_seed = (seed + 1000 * (epoch + 1))
        torch.manual_seed(epoch_seed)
        rng = np.random.RandomState(epoch_seed & 0xFFFFFFFF)
        order = fisher_yates(list(data.samples), rng)
        net.train()
        loss_sum, n = 0.0, 0
        for b in range(0, len(order), bs):
            chunk = order[b:b + bs]
            xs, ys = tensors([data.read_sample(s) for s in chunk], rng)
            opt.zero_grad(set_to_none=True)
            loss = risk_loss(torch, *net(xs), ys, cfg["loss"])
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(chunk)
            n += len(chunk)
        net.eval()
        cm = np.zeros((3, 3), np.int64)
        vloss, vn = 0.0, 0
        val = data.split["val"]
        with torch.no_grad():
            for b in range(0, len(val), bs):
                chunk = val[b:b + bs]
                xs, ys = tensors([data.read_tile(i) for i in chunk], None)
                logits, ordinal = net(xs)
                vloss += float(risk_loss(torch, logits, ordinal, ys, cfg["loss"])) * len(chunk)
                vn += len(chunk)
                t, pr = ys.numpy().ravel(), logits.argmax(1).numpy().ravel()
                keep = t < 3
                cm += np.bincount(t[keep] * 3 + pr[keep], minlength=9).reshape(3, 3)
        val_loss = vloss / max(vn, 1)
        kappa, p1, r2, rho = metrics(cm)
        seconds = time.perf_counter() - t0
        improved = best is None or val_loss < best
        if improved:
            best, since_best = val_loss, 0
        else:
            since_best += 1
        lr_state = lr
        fmt = lambda v: "" if v is None else f"{v:.5f}"
        with open(csv_path, "a") as f:
            f.write(f"{epoch + 1},{lr:.3e},{loss_sum / max(n, 1):.5f},{val_loss:.5f},{fmt(kappa)},"
                    f"{p1:.5f},{r2:.5f},{fmt(rho)},{seconds:.1f}\n")
        history.append({"epoch": epoch + 1, "val_kappa": kappa, "val_precision_1": p1, "seconds": seconds})
        log(f"epoch {epoch + 1}/{o['epochs']}: lr {lr:.2e}, train loss {loss_sum / max(n, 1):.4f}, val loss "
            f"{val_loss:.4f}, kappa {fmt(kappa)}, P1 {p1:.3f}, R2 {r2:.3f}, rho {fmt(rho)}, {seconds:.0f} s"
            f"{' (best)' if improved else ''}")
        if since_best >= o["patience"]:
            log(f"early stop: no better validation loss for {o['patience']} epochs")
            break
    print(json.dumps({"cmd": "train_ref", "seed": seed, "out": out, "epochs": len(history),
                      "samples": len(data.samples), "history": history}))


if __name__ == "__main__":
    main()
