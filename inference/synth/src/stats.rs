//! What a generated scene offers a model, measured: the Medium share, the Medium-rich
//! tiles that minority sampling can act on, the floor (the best per-pixel colour
//! classifier, trained on another scene) and the ceiling (the [`super::oracle`]'s argmax
//! metrics and its Medium precision-recall curve). `risk-train synth-stats` prints them
//! per seed; the tests check the generator's stated properties with them.

use risk_inference::metrics::{ConfusionMatrix, Metrics};

use super::oracle::{self, HiddenCdf};
use super::{Block, ClassCounts, SynthConfig};
use risk_inference::tiling::training_grid;

/// Share of a tile's labelled pixels in Medium that makes it Medium-rich (as
/// `sampling.rich_threshold`).
pub const RICH_SHARE: f64 = 0.30;
/// Tiles with fewer labelled pixels are not training tiles (as `data.min_labelled`).
pub const MIN_LABELLED: f64 = 0.05;

/// A scene in memory: uint8 image and labels of [`super::generate_u8`], and the oracle.
pub struct Scene {
    pub cfg: SynthConfig,
    pub block: Block<u8>,
    /// Band-major `(3, H, W)` oracle probabilities ([`oracle::ORACLE_NODATA`] at nodata).
    pub oracle: Vec<f32>,
}

impl Scene {
    pub fn generate(cfg: &SynthConfig, cdf: &HiddenCdf) -> Self {
        Self {
            cfg: cfg.clone(),
            block: super::generate_u8(cfg, 0, cfg.height),
            oracle: oracle::oracle_block(cfg, cdf, 0, cfg.height),
        }
    }

    fn pixels(&self) -> usize {
        self.cfg.width * self.cfg.height
    }

    pub fn counts(&self) -> ClassCounts {
        let mut c = ClassCounts::default();
        c.add_labels(&self.block.labels);
        c
    }

    /// The oracle's most probable class per pixel (255 at nodata).
    pub fn oracle_argmax(&self) -> Vec<u8> {
        let n = self.pixels();
        (0..n)
            .map(|i| {
                let p = [self.oracle[i], self.oracle[n + i], self.oracle[2 * n + i]];
                if p[0] < 0.0 {
                    255
                } else {
                    (0..3).fold(0, |best, c| if p[c] > p[best] { c } else { best }) as u8
                }
            })
            .collect()
    }

    /// [`rich_tiles`] of the scene.
    pub fn rich_tiles(&self, tile: usize) -> (usize, usize) {
        rich_tiles(&self.block.labels, self.cfg.width, self.cfg.height, tile)
    }

    /// `(threshold, precision, recall)` of predicting Medium where `P(Medium) >= threshold`.
    pub fn medium_pr_curve(&self, thresholds: &[f32]) -> Vec<(f32, f64, f64)> {
        let n = self.pixels();
        let p1 = &self.oracle[n..2 * n];
        let labels = &self.block.labels;
        let medium = labels.iter().filter(|&&l| l == 1).count().max(1) as f64;
        thresholds
            .iter()
            .map(|&t| {
                let (mut tp, mut predicted) = (0u64, 0u64);
                for (&p, &l) in p1.iter().zip(labels) {
                    if l < 3 && p >= t {
                        predicted += 1;
                        tp += (l == 1) as u64;
                    }
                }
                (t, tp as f64 / predicted.max(1) as f64, tp as f64 / medium)
            })
            .collect()
    }
}

/// Medium-rich tiles among the `tile x tile` training tiles of a `width x height` label
/// raster (non-overlapping grid, at least [`MIN_LABELLED`] labelled): `(rich, tiles)`.
pub fn rich_tiles(labels: &[u8], width: usize, height: usize, tile: usize) -> (usize, usize) {
    let (mut rich, mut all) = (0, 0);
    for win in training_grid(width, height, tile, tile) {
        let mut c = ClassCounts::default();
        for y in win.y..win.bottom() {
            c.add_labels(&labels[y * width + win.x..y * width + win.right()]);
        }
        let labelled = c.low + c.medium + c.high;
        if (labelled as f64) < MIN_LABELLED * win.pixels() as f64 {
            continue;
        }
        all += 1;
        rich += (c.medium as f64 >= RICH_SHARE * labelled as f64) as usize;
    }
    (rich, all)
}

/// The per-pixel colour classifier: RGB quantised to `levels` steps per band, each bin
/// predicting the majority label it held on the training scene (bins never seen: Low).
pub struct ColourBins {
    levels: usize,
    majority: Vec<u8>,
}

impl ColourBins {
    fn bin(levels: usize, image: &[u8], n: usize, i: usize) -> usize {
        let q = |b: usize| image[b * n + i] as usize * levels / 256;
        (q(0) * levels + q(1)) * levels + q(2)
    }

    /// Fits the bins on a band-major image (at least 3 bands) and its labels.
    pub fn fit(image: &[u8], labels: &[u8], levels: usize) -> Self {
        let n = labels.len();
        let mut votes = vec![[0u64; 3]; levels * levels * levels];
        for (i, &l) in labels.iter().enumerate() {
            if l < 3 {
                votes[Self::bin(levels, image, n, i)][l as usize] += 1;
            }
        }
        let majority = votes
            .iter()
            .map(|v| (0..3).fold(0, |best, c| if v[c] > v[best] { c } else { best }) as u8)
            .collect();
        Self { levels, majority }
    }

    pub fn predict(&self, image: &[u8], n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| self.majority[Self::bin(self.levels, image, n, i)])
            .collect()
    }
}

/// Quantisation steps per band tried by [`colour_floor`].
pub const COLOUR_LEVELS: [usize; 4] = [8, 16, 32, 64];

/// The best kappa a per-pixel colour classifier fitted on `train` reaches on `test` (over
/// [`COLOUR_LEVELS`]), with its number of levels.
pub fn colour_floor(train: &Block<u8>, test: &Block<u8>) -> (f64, usize) {
    COLOUR_LEVELS
        .iter()
        .map(|&levels| {
            let bins = ColourBins::fit(&train.image, &train.labels, levels);
            let pred = bins.predict(&test.image, test.labels.len());
            let m = ConfusionMatrix::from_labels(&test.labels, &pred).expect("labels 0, 1, 2, 255");
            (m.cohen_kappa().unwrap_or(0.0), levels)
        })
        .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a })
}

/// The thresholds of P(Medium) on the oracle's precision-recall curve.
pub const PR_THRESHOLDS: [f32; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Everything `synth-stats` reports for one scene.
#[derive(Clone, Debug)]
pub struct SceneStats {
    pub seed: u64,
    pub counts: ClassCounts,
    /// Medium share of the labelled pixels.
    pub medium_share: f64,
    /// `(tile, rich, tiles)` for 256 and 512 px tiles.
    pub rich_tiles: Vec<(usize, usize, usize)>,
    /// Kappa and levels of the colour classifier fitted on the training scene.
    pub colour_floor: (f64, usize),
    /// The oracle's argmax against the labels.
    pub oracle: Metrics,
    /// [`Scene::medium_pr_curve`] at [`PR_THRESHOLDS`].
    pub oracle_pr: Vec<(f32, f64, f64)>,
}

impl SceneStats {
    /// Measures `scene`, the colour classifier fitted on `train`.
    pub fn measure(scene: &Scene, train: &Block<u8>) -> Self {
        let counts = scene.counts();
        let labelled = (counts.low + counts.medium + counts.high).max(1) as f64;
        let oracle = ConfusionMatrix::from_labels(&scene.block.labels, &scene.oracle_argmax())
            .expect("labels 0, 1, 2, 255")
            .metrics();
        Self {
            seed: scene.cfg.seed,
            counts,
            medium_share: counts.medium as f64 / labelled,
            rich_tiles: [256, 512]
                .iter()
                .map(|&t| {
                    let (r, a) = scene.rich_tiles(t);
                    (t, r, a)
                })
                .collect(),
            colour_floor: colour_floor(train, &scene.block),
            oracle,
            oracle_pr: scene.medium_pr_curve(&PR_THRESHOLDS),
        }
    }

    /// The best oracle precision for Medium among the thresholds whose recall is at least
    /// `recall`.
    pub fn precision_at_recall(&self, recall: f64) -> Option<f64> {
        self.oracle_pr
            .iter()
            .filter(|p| p.2 >= recall)
            .map(|p| p.1)
            .fold(None, |a: Option<f64>, p| Some(a.map_or(p, |a| a.max(p))))
    }
}
