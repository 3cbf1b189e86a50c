"""Deterministic synthetic risk scenes for the reference tools (CRF harness, raster maker).

A scene is three arrays of any height H and width W:
  img    uint8 (H, W, 3)   RGB, class colours with texture, greyed ambiguous areas, noise
  prob   float32 (3, H, W) a model-like softmax: the one-hot truth plus smooth and white
                           noise, argmax right on about 85-88% of the pixels
  truth  uint8 (H, W)      0 Low (~64%), 1 Medium (~6%), 2 High (~30%)

Everything is built from smooth random fields: Gaussian values on a coarse grid, spread
over the pixels with normalised Gaussian weights, summed over octaves. High is where one
field passes its 70% quantile; Medium where a second field passes a quantile chosen so
that about 6% of all pixels are Medium. Rows are produced in blocks of BLOCK_ROWS with one
random stream per block, so that memory stays small and the result depends only on
(height, width, seed), never on how the rows are visited.

Reference tool for tests and benchmarks; not part of the product.
"""
import numpy as np

CLASSES = 3
BLOCK_ROWS = 512
# RGB colour of each class: 0 Low, 1 Medium, 2 High.
COLOURS = np.array([[90, 120, 70], [155, 135, 90], [150, 100, 80]], np.float32)
GREY = np.float32(125.0)


def spread(coords, n_nodes, spacing):
    """Weights (len(coords), n_nodes) that spread grid nodes (spaced `spacing` px apart,
    the first at -1.5 spacings) over pixel coordinates: Gaussian of width 0.7 spacing,
    each row normalised to sum 1."""
    nodes = (np.arange(n_nodes) - 1.5) * spacing
    d = (np.asarray(coords)[:, None].astype(np.float32) - nodes[None, :]) / (0.7 * spacing)
    w = np.exp(-0.5 * d * d).astype(np.float32)
    return w / w.sum(axis=1, keepdims=True)


class SmoothField:
    """A sum of octaves (spacing px, amplitude). Each octave draws a coarse grid of
    standard normals and is stored spread along x already: a (grid rows, W) table, so that
    any set of rows costs one small matrix product per octave."""

    def __init__(self, rng, height, width, octaves):
        self.height = height
        self.octaves = []
        for spacing, amplitude in octaves:
            ny = int(np.ceil(height / spacing)) + 3
            nx = int(np.ceil(width / spacing)) + 3
            grid = rng.standard_normal((ny, nx)).astype(np.float32)
            along_x = amplitude * (grid @ spread(np.arange(width), nx, spacing).T)
            self.octaves.append((spacing, ny, along_x))

    def at_rows(self, rows, column_step=1):
        total = None
        for spacing, ny, along_x in self.octaves:
            part = spread(rows, ny, spacing) @ along_x[:, ::column_step]
            total = part if total is None else total + part
        return total

    def subsampled(self, step):
        """The field on every `step`-th row and column (for the class quantiles)."""
        return self.at_rows(np.arange(0, self.height, step), column_step=step)


class Scene:
    """The scene of (height, width, seed); `rows(r0, r1)` gives one block of it."""

    def __init__(self, height, width, seed, high_share=0.30, medium_share=0.06):
        self.height, self.width, self.seed = height, width, seed
        rng = np.random.default_rng([seed, height, width])
        # The draw order fixes the scene: high, medium, texture, 3 error fields, mix.
        self.high = SmoothField(rng, height, width, [(160, 1.0), (48, 0.35)])
        self.medium = SmoothField(rng, height, width, [(96, 1.0), (32, 0.35)])
        self.texture = SmoothField(rng, height, width, [(40, 1.0)])
        self.errors = [SmoothField(rng, height, width, [(64, 1.0), (16, 0.5)])
                       for _ in range(CLASSES)]
        self.mix = SmoothField(rng, height, width, [(128, 1.0)])
        step = max(1, min(height, width) // 512)
        high = self.high.subsampled(step)
        self.high_cut = float(np.quantile(high, 1.0 - high_share))
        medium = self.medium.subsampled(step)[high <= self.high_cut]
        self.medium_cut = float(np.quantile(medium, 1.0 - medium_share / (1.0 - high_share)))

    def rows(self, r0, r1, with_prob=True):
        """(img, prob or None, truth) of rows r0..r1; r0 must start a block."""
        assert r0 % BLOCK_ROWS == 0, "blocks start at multiples of BLOCK_ROWS"
        rows = np.arange(r0, r1)
        block = r0 // BLOCK_ROWS
        high = self.high.at_rows(rows) > self.high_cut
        truth = np.zeros((r1 - r0, self.width), np.uint8)
        truth[(self.medium.at_rows(rows) > self.medium_cut) & ~high] = 1
        truth[high] = 2

        noise = np.random.default_rng([self.seed, 1, block])
        grey = np.clip(self.mix.at_rows(rows) * 1.2, 0.0, 0.6)[..., None]
        img = COLOURS[truth] * (1.0 - grey) + GREY * grey
        img *= (1.0 + 0.15 * self.texture.at_rows(rows))[..., None]
        img += noise.standard_normal(img.shape, dtype=np.float32) * 16.0
        img = np.clip(np.rint(img), 1, 255).astype(np.uint8)

        prob = None
        if with_prob:
            noise = np.random.default_rng([self.seed, 2, block])
            logits = 2.2 * (truth[None] == np.arange(CLASSES)[:, None, None]).astype(np.float32)
            for c in range(CLASSES):
                logits[c] += 1.6 * self.errors[c].at_rows(rows)
            logits += noise.standard_normal(logits.shape, dtype=np.float32) * 0.8
            logits -= logits.max(axis=0, keepdims=True)
            e = np.exp(logits)
            prob = (e / e.sum(axis=0, keepdims=True)).astype(np.float32)
        return img, prob, truth

    def blocks(self, with_prob=True):
        """Yields (r0, r1, (img, prob, truth)) block by block, top to bottom."""
        for r0 in range(0, self.height, BLOCK_ROWS):
            r1 = min(self.height, r0 + BLOCK_ROWS)
            yield r0, r1, self.rows(r0, r1, with_prob)


def whole(height, width, seed):
    """The full scene in memory: (img, prob, truth)."""
    scene = Scene(height, width, seed)
    img = np.empty((height, width, 3), np.uint8)
    prob = np.empty((CLASSES, height, width), np.float32)
    truth = np.empty((height, width), np.uint8)
    for r0, r1, (i, p, t) in scene.blocks():
        img[r0:r1], prob[:, r0:r1], truth[r0:r1] = i, p, t
    return img, prob, truth
