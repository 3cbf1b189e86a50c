//! The decision rule: how a pixel's class probabilities become its class.
//!
//! Without a rule the class is the argmax of the probabilities. A model trained on data
//! where Medium is rare and sits between Low and High almost never has Medium as its
//! single likeliest class, even where Medium is the likeliest non-majority answer, so
//! argmax throws away what the probabilities know about Medium. The source's targets
//! (class-1 precision >= 0.22 with class-2 recall >= 0.93) describe an operating point,
//! not the argmax.
//!
//! # The rule: per-class logit offsets
//!
//! `class = argmax_c (ln p_c + b_c)` with `b_0 = 0`, computed as `argmax_c (p_c * e^{b_c})`
//! (no logarithms per pixel; ties go to the lower class, as numpy's argmax). Two free
//! numbers, `b_1` (Medium) and `b_2` (High). Chosen over the two ordinal thresholds of the
//! CORAL head because the offsets need only the `probs` output, which every model of the
//! contract has, and they act on the same quantity wherever a class map is made: the
//! blended probabilities of one model, the mean over ensemble members x TTA transforms x
//! scales (the CORAL outputs are not averaged or blended by the pipeline), and the dense
//! CRF's marginals. `b = (0, 0, 0)` is the argmax exactly.
//!
//! With the CRF on, the rule is applied to the CRF's output marginals, i.e. after the CRF,
//! the same place the argmax was. The CRF's unary is still built from the model's
//! probabilities: the offsets shift where the class boundaries lie, they are not a prior
//! to be smoothed. (A rule fitted without the CRF is not re-fitted for it: the marginals
//! of a mean-field CRF are sharper than the model's probabilities, so the offsets weigh
//! less there; the model card measures both.)
//!
//! # Fitting ([`fit`])
//!
//! Maximise Cohen's kappa on validation pixels subject to class-2 recall >= 0.93 and
//! class-1 precision >= 0.22 (with Medium predicted on at least 0.1% of the pixels, so that
//! the precision is not that of a handful of pixels). Every pixel is binned by its two log
//! ratios `l_1 = ln p_1 - ln p_0` and `l_2 = ln p_2 - ln p_0` into a 2-d histogram per true
//! class ([`BINS`] bins of [`BIN_WIDTH`] a side over `[-10, 10]`, values beyond clamped).
//! Offsets on the same grid make each predicted class a region of that histogram: Low is
//! the rectangle `l_1 < -b_1, l_2 < -b_2`, Medium the pixels with `l_1 >= -b_1` and
//! `l_1 - l_2 >= b_2 - b_1`. With row prefix sums, the Low counts of every offset pair
//! are one 2-d prefix table and the Medium counts one suffix sum per diagonal, so the
//! confusion matrices of all `(BINS + 1)^2` offset pairs cost `O(BINS^2)` per true class,
//! whatever the pixel count (a 1 Mpx validation scene: well under a second). The chosen
//! pair is then re-scored exactly on the pixels (the binned counts differ from the exact
//! ones only for pixels within one bin of a boundary).
//!
//! When no offset pair meets both constraints, the fit says so (`feasible: false`, logged
//! and stored) and falls back to the best kappa under the class-2 recall constraint alone
//! (High recall is the source's safety target; the Medium precision target is the one
//! given up); when even that recall is out of reach, the best kappa without constraints.
//!
//! Errors ([`DecisionError`]) name the metadata key, the model or the raster concerned.

use std::path::{Path, PathBuf};

use crate::classes::{CLASS_NAMES, NODATA, NUM_CLASSES, PALETTE};
use crate::metrics::ConfusionMatrix;
use crate::raster::{GeoTiffWriter, InputRaster, RasterError, Window, WriteOptions};

/// Metadata key of the rule in an ONNX model.
pub const METADATA_KEY: &str = "risk.decision";

/// Why a rule cannot be read, fitted or applied; each names what it concerns.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum DecisionError {
    /// The metadata value is not JSON (serde's reason).
    #[error("{METADATA_KEY} is not JSON: {0}")]
    NotJson(String),
    #[error("{METADATA_KEY}: unknown rule {0:?} (known: logit_offsets)")]
    UnknownRule(String),
    #[error("{METADATA_KEY}: no \"rule\" field")]
    NoRule,
    #[error("{METADATA_KEY}: \"offsets\" must be a list of 3 numbers")]
    OffsetsNotList,
    #[error("{METADATA_KEY}: \"offsets\" must be [0, b1, b2] with finite b1, b2, got {0:?}")]
    BadOffsets(Vec<f64>),
    /// A bad `risk.decision` in the model file `path`.
    #[error("{}: {err}", path.display())]
    InModel { path: PathBuf, err: Box<DecisionError> },
    #[error("no labelled pixel to fit the decision rule on")]
    NoLabels,
    #[error(transparent)]
    Raster(#[from] RasterError),
    #[error("{}: has {bands} band(s); a probability raster (risk-infer --probs) has 3", path.display())]
    NotProbabilities { path: PathBuf, bands: usize },
    /// The labels' size (width, height) is not the probabilities'.
    #[error(
        "{}: {}x{} pixels, but the probabilities {} are {}x{}",
        labels.display(), size.0, size.1, probs.display(), probs_size.0, probs_size.1
    )]
    LabelsSize {
        labels: PathBuf,
        size: (usize, usize),
        probs: PathBuf,
        probs_size: (usize, usize),
    },
}

/// Histogram bins per axis of the fit.
pub const BINS: usize = 800;
/// Bin width in log-ratio units; the bins cover `[LOW, LOW + BINS * BIN_WIDTH)`.
pub const BIN_WIDTH: f64 = 0.025;
const LOW: f64 = -10.0;

/// The class-2 recall and class-1 precision the fit aims for (the source's targets).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Targets {
    pub recall_2: f64,
    pub precision_1: f64,
    /// Least share of the pixels predicted Medium for the precision target to count.
    pub min_medium_share: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            recall_2: 0.93,
            precision_1: 0.22,
            min_medium_share: 0.001,
        }
    }
}

/// Per-class logit offsets `b` (`b[0] = 0`): `class = argmax_c (ln p_c + b_c)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub offsets: [f64; NUM_CLASSES],
    /// `e^{b_c}`, the factors the probabilities are compared with.
    factors: [f32; NUM_CLASSES],
}

impl Default for Decision {
    /// The argmax.
    fn default() -> Self {
        Self::new(0.0, 0.0)
    }
}

impl Decision {
    /// Offsets `(0, b1, b2)`.
    pub fn new(b1: f64, b2: f64) -> Self {
        let offsets = [0.0, b1, b2];
        Self {
            offsets,
            factors: offsets.map(|b| b.exp() as f32),
        }
    }

    /// Whether this is the plain argmax.
    pub fn is_argmax(&self) -> bool {
        self.offsets == [0.0; NUM_CLASSES]
    }

    /// The class of one pixel's probabilities (first index on ties).
    #[inline]
    pub fn class(&self, p: &[f32; NUM_CLASSES]) -> u8 {
        let f = &self.factors;
        let mut best = 0;
        let mut top = p[0] * f[0];
        for c in 1..NUM_CLASSES {
            let v = p[c] * f[c];
            if v > top {
                top = v;
                best = c;
            }
        }
        best as u8
    }

    /// The rule from a model's `risk.decision` metadata (JSON with `"rule":
    /// "logit_offsets"` and `"offsets": [0, b1, b2]`; other fields are what the fit
    /// recorded and are not read).
    pub fn from_metadata(value: &str) -> Result<Self, DecisionError> {
        let v: serde_json::Value =
            serde_json::from_str(value).map_err(|e| DecisionError::NotJson(e.to_string()))?;
        match v.get("rule").and_then(|r| r.as_str()) {
            Some("logit_offsets") => {}
            Some(other) => return Err(DecisionError::UnknownRule(other.to_string())),
            None => return Err(DecisionError::NoRule),
        }
        let offsets: Vec<f64> = v
            .get("offsets")
            .and_then(|o| serde_json::from_value(o.clone()).ok())
            .ok_or(DecisionError::OffsetsNotList)?;
        match offsets[..] {
            [b0, b1, b2] if b0 == 0.0 && b1.is_finite() && b2.is_finite() => Ok(Self::new(b1, b2)),
            _ => Err(DecisionError::BadOffsets(offsets)),
        }
    }

    /// The rule of a loaded model: its `risk.decision`, else the argmax; a bad value is
    /// an error naming the model file.
    pub fn of_model(model: &crate::session::Model) -> Result<Self, DecisionError> {
        match model.info().properties.get(METADATA_KEY) {
            None => Ok(Self::default()),
            Some(v) => Self::from_metadata(v).map_err(|e| DecisionError::InModel {
                path: model.path().to_path_buf(),
                err: Box::new(e),
            }),
        }
    }

    /// One line for logs and `--info`.
    pub fn describe(&self) -> String {
        if self.is_argmax() {
            "argmax".into()
        } else {
            format!(
                "argmax(ln p + b), b = (0, {:+.3}, {:+.3})",
                self.offsets[1], self.offsets[2]
            )
        }
    }
}

/// The scores of one class map against the labels.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    pub kappa: f64,
    pub precision_1: f64,
    pub recall_2: f64,
    pub spearman_rho: f64,
    /// Share of the scored pixels predicted Medium.
    pub medium_share: f64,
}

impl Scores {
    pub fn of(matrix: &ConfusionMatrix) -> Self {
        let total = matrix.total().max(1) as f64;
        Self {
            kappa: matrix.cohen_kappa().unwrap_or(0.0),
            precision_1: matrix.class_metrics(1).precision,
            recall_2: matrix.class_metrics(2).recall,
            spearman_rho: matrix.spearman_rho().unwrap_or(0.0),
            medium_share: matrix.pred_totals()[1] as f64 / total,
        }
    }

    /// Whether these scores meet `targets`.
    pub fn meets(&self, targets: &Targets) -> bool {
        self.recall_2 >= targets.recall_2
            && self.precision_1 >= targets.precision_1
            && self.medium_share >= targets.min_medium_share
    }
}

/// What [`fit`] chose and why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Fit {
    #[serde(skip)]
    pub decision: Decision,
    /// Whether the chosen offsets meet both targets on the fitting pixels.
    pub feasible: bool,
    /// The rule used when not feasible: `"max kappa with recall_2"` or `"max kappa"`.
    pub fallback: Option<String>,
    pub targets: Targets,
    /// Labelled pixels fitted on.
    pub pixels: u64,
    /// Exact scores of the chosen offsets and of the argmax on the fitting pixels.
    pub chosen: Scores,
    pub argmax: Scores,
}

impl Fit {
    /// The `risk.decision` metadata value: the offsets and the fit's record.
    pub fn to_metadata(&self, fitted_on: &str) -> String {
        serde_json::json!({
            "rule": "logit_offsets",
            "offsets": self.decision.offsets,
            "feasible": self.feasible,
            "fallback": self.fallback,
            "targets": self.targets,
            "fitted_on": fitted_on,
            "pixels": self.pixels,
            "validation": self.chosen,
            "validation_argmax": self.argmax,
        })
        .to_string()
    }
}

/// Log ratios `(ln p1 - ln p0, ln p2 - ln p0)` of one pixel (probabilities floored at 1e-12).
fn log_ratios(p: [f32; NUM_CLASSES]) -> (f64, f64) {
    let l = p.map(|v| (v.max(1e-12) as f64).ln());
    (l[1] - l[0], l[2] - l[0])
}

fn bin(v: f64) -> usize {
    (((v - LOW) / BIN_WIDTH).floor().max(0.0) as usize).min(BINS - 1)
}

/// The offset `b` whose boundary `l = -b` is bin edge `a` (rounded to 1e-6: the edges are
/// multiples of the bin width, and the stored value reads as such).
fn offset_of_edge(a: usize) -> f64 {
    (-(LOW + a as f64 * BIN_WIDTH) * 1e6).round() / 1e6
}

/// Confusion matrix of `decision` over band-major probabilities `(3, n)` and labels
/// `(n)` (255 skipped, as are pixels whose probabilities are negative: nodata).
pub fn confusion(decision: &Decision, probs: &[f32], labels: &[u8]) -> ConfusionMatrix {
    let n = labels.len();
    assert_eq!(probs.len(), NUM_CLASSES * n, "probabilities (3, n) for n labels");
    let mut counts = [[0u64; NUM_CLASSES]; NUM_CLASSES];
    for (i, &t) in labels.iter().enumerate() {
        let p = [probs[i], probs[n + i], probs[2 * n + i]];
        if t == NODATA || t as usize >= NUM_CLASSES || p[0] < 0.0 {
            continue;
        }
        counts[t as usize][decision.class(&p) as usize] += 1;
    }
    ConfusionMatrix::from_counts(counts)
}

/// Fits the offsets on band-major probabilities `(3, n)` and their labels `(n)`
/// (see the module docs). Fails when no pixel is labelled.
pub fn fit(probs: &[f32], labels: &[u8], targets: &Targets) -> Result<Fit, DecisionError> {
    let n = labels.len();
    assert_eq!(probs.len(), NUM_CLASSES * n, "probabilities (3, n) for n labels");
    // Histograms per true class, (BINS, BINS): [i][j] = bin of l1, bin of l2.
    let mut hist = vec![vec![0u64; BINS * BINS]; NUM_CLASSES];
    let mut pixels = 0u64;
    for (i, &t) in labels.iter().enumerate() {
        let p = [probs[i], probs[n + i], probs[2 * n + i]];
        if t == NODATA || t as usize >= NUM_CLASSES || p[0] < 0.0 || p.iter().any(|v| !v.is_finite()) {
            continue;
        }
        let (l1, l2) = log_ratios(p);
        hist[t as usize][bin(l1) * BINS + bin(l2)] += 1;
        pixels += 1;
    }
    if pixels == 0 {
        return Err(DecisionError::NoLabels);
    }
    let tables: Vec<RegionCounts> = hist.iter().map(|h| RegionCounts::new(h)).collect();
    let totals: Vec<u64> = hist.iter().map(|h| h.iter().sum()).collect();
    // Every offset pair on the grid: best kappa per constraint level.
    let levels = 3; // 0: both targets, 1: recall only, 2: none
    let mut best: Vec<Option<(f64, usize, usize)>> = vec![None; levels];
    let e = BINS + 1;
    for k in -(BINS as isize)..=(BINS as isize) {
        // Medium counts along the diagonal a - c = k, indexed by a, per true class.
        let diagonals: Vec<Vec<u64>> = tables.iter().map(|t| t.medium_diagonal(k)).collect();
        let medium = (0..e).map(|a| [diagonals[0][a], diagonals[1][a], diagonals[2][a]]);
        for (a, mid) in medium.enumerate() {
            let c = a as isize - k;
            if c < 0 || c >= e as isize {
                continue;
            }
            let c = c as usize;
            let counts: [[u64; NUM_CLASSES]; NUM_CLASSES] = std::array::from_fn(|t| {
                let low = tables[t].low(a, c);
                [low, mid[t], totals[t] - low - mid[t]]
            });
            let s = Scores::of(&ConfusionMatrix::from_counts(counts));
            let ok = [s.meets(targets), s.recall_2 >= targets.recall_2, true];
            for (lvl, ok) in ok.into_iter().enumerate() {
                if ok && best[lvl].is_none_or(|(kb, _, _)| s.kappa > kb) {
                    best[lvl] = Some((s.kappa, a, c));
                }
            }
        }
    }
    let (level, decision, chosen) = choose_level(&best, targets, |a, c| {
        let d = Decision::new(offset_of_edge(a), offset_of_edge(c));
        let s = Scores::of(&confusion(&d, probs, labels));
        (d, s)
    });
    let argmax = Scores::of(&confusion(&Decision::default(), probs, labels));
    let fallback = match level {
        0 => None,
        1 => Some("max kappa with recall_2".to_string()),
        _ => Some("max kappa".to_string()),
    };
    Ok(Fit {
        decision,
        feasible: level == 0 && chosen.meets(targets),
        fallback,
        targets: *targets,
        pixels,
        chosen,
        argmax,
    })
}

/// The rule of the first constraint level (0: both targets, 1: class-2 recall only, 2:
/// none) whose binned best point, re-scored exactly on the pixels by `rescore`, still
/// meets that level's constraint; the unconstrained level's point otherwise. The binned
/// counts can put a point just inside a constraint that the exact ones put outside; such
/// a point must not be kept as if it met it (it once gave an all-High rule).
fn choose_level(
    best: &[Option<(f64, usize, usize)>],
    targets: &Targets,
    rescore: impl Fn(usize, usize) -> (Decision, Scores),
) -> (usize, Decision, Scores) {
    let last = best.len() - 1;
    for (level, point) in best.iter().enumerate() {
        let Some((_, a, c)) = *point else { continue };
        let (decision, scores) = rescore(a, c);
        let holds = match level {
            0 => scores.meets(targets),
            1 => scores.recall_2 >= targets.recall_2,
            _ => true,
        };
        if holds || level == last {
            return (level, decision, scores);
        }
    }
    unreachable!("the unconstrained level always has a point")
}

/// Region counts of one true class's histogram for every offset pair on the grid.
struct RegionCounts {
    /// `row_prefix[i * (BINS + 1) + m]`: pixels in bin row `i` (l1) with l2 bin `< m`.
    row_prefix: Vec<u64>,
    /// `low[a * (BINS + 1) + c]`: pixels with l1 bin `< a` and l2 bin `< c` (predicted Low).
    low: Vec<u64>,
}

impl RegionCounts {
    fn new(hist: &[u64]) -> Self {
        let e = BINS + 1;
        let mut row_prefix = vec![0u64; BINS * e];
        for i in 0..BINS {
            for j in 0..BINS {
                row_prefix[i * e + j + 1] = row_prefix[i * e + j] + hist[i * BINS + j];
            }
        }
        let mut low = vec![0u64; e * e];
        for a in 1..e {
            for c in 0..e {
                low[a * e + c] = low[(a - 1) * e + c] + row_prefix[(a - 1) * e + c];
            }
        }
        Self { row_prefix, low }
    }

    fn low(&self, a: usize, c: usize) -> u64 {
        self.low[a * (BINS + 1) + c]
    }

    /// Predicted-Medium counts for the offset pairs with `a - c = k`, indexed by `a`:
    /// pixels with l1 bin `i >= a` and l2 bin `j <= i - k`.
    fn medium_diagonal(&self, k: isize) -> Vec<u64> {
        let e = BINS + 1;
        let mut out = vec![0u64; e];
        for a in (0..BINS).rev() {
            let m = (a as isize - k + 1).clamp(0, BINS as isize) as usize;
            out[a] = out[a + 1] + self.row_prefix[a * e + m];
        }
        out
    }
}

/// Reads a 3-band probability raster as `risk-infer --probs` writes it (Byte: value x 255,
/// 255 nodata; otherwise float, nodata -1) as band-major float32 `(3, h, w)` over `window`,
/// nodata pixels -1.
pub fn read_probs(raster: &InputRaster, window: Window) -> Result<Vec<f32>, RasterError> {
    let n = window.pixels();
    let mut probs = vec![0f32; NUM_CLASSES * n];
    raster.read_bands(&[1, 2, 3], window, &mut probs)?;
    if raster.band_type_name(1)? == "Byte" {
        for i in 0..n {
            let nodata = probs[i] == 255.0;
            for c in 0..NUM_CLASSES {
                let v = &mut probs[c * n + i];
                *v = if nodata { -1.0 } else { *v / 255.0 };
            }
        }
    }
    Ok(probs)
}

/// Checks that `path` is a probability raster: 3 bands.
pub fn open_probs(path: &Path) -> Result<InputRaster, DecisionError> {
    let raster = InputRaster::open(path)?;
    if raster.band_count() != NUM_CLASSES {
        return Err(DecisionError::NotProbabilities {
            path: path.to_path_buf(),
            bands: raster.band_count(),
        });
    }
    Ok(raster)
}

/// Writes the class map of the probability raster `probs` under `decision` to `output`
/// (uint8 GeoTIFF, 255 nodata, the class palette; temporary file renamed into place), in
/// strips of rows. Returns the pixels per class value 0, 1, 2 and nodata.
pub fn classify_raster(probs: &Path, decision: &Decision, output: &Path) -> Result<[u64; 4], DecisionError> {
    let raster = open_probs(probs)?;
    let (w, h) = (raster.width(), raster.height());
    let options = WriteOptions {
        nodata: Some(NODATA as f64),
        color_table: PALETTE.to_vec(),
        band_descriptions: vec![format!(
            "risk class (0 {}, 1 {}, 2 {}), {}",
            CLASS_NAMES[0],
            CLASS_NAMES[1],
            CLASS_NAMES[2],
            decision.describe()
        )],
        ..WriteOptions::default()
    };
    let mut writer = GeoTiffWriter::create::<u8>(output, w, h, 1, &raster.georef(), options)?;
    let mut counts = [0u64; 4];
    let strip = (1 << 20) / w.max(1) + 1;
    for y in (0..h).step_by(strip) {
        let window = Window::new(0, y, w, strip.min(h - y));
        let p = read_probs(&raster, window)?;
        let n = window.pixels();
        let classes: Vec<u8> = (0..n)
            .map(|i| {
                let q = [p[i], p[n + i], p[2 * n + i]];
                if q[0] < 0.0 { NODATA } else { decision.class(&q) }
            })
            .collect();
        for &c in &classes {
            counts[if c == NODATA { 3 } else { c as usize }] += 1;
        }
        writer.write_band(1, window, &classes)?;
    }
    writer.finish()?;
    Ok(counts)
}

/// The whole probability raster `probs` and the label raster `labels` (same size), for
/// [`fit`]: band-major float32 `(3, n)` (nodata -1) and uint8 `(n)`.
pub fn read_fit_inputs(probs: &Path, labels: &Path) -> Result<(Vec<f32>, Vec<u8>), DecisionError> {
    let p = open_probs(probs)?;
    let l = InputRaster::open(labels)?;
    if (p.width(), p.height()) != (l.width(), l.height()) {
        return Err(DecisionError::LabelsSize {
            labels: labels.to_path_buf(),
            size: (l.width(), l.height()),
            probs: probs.to_path_buf(),
            probs_size: (p.width(), p.height()),
        });
    }
    let window = p.extent();
    let probs = read_probs(&p, window)?;
    let mut truth = vec![0u8; window.pixels()];
    l.read_band(1, window, &mut truth)?;
    Ok((probs, truth))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Band-major probabilities of pixel rows `[p0, p1, p2]`.
    fn planes(rows: &[[f32; 3]]) -> Vec<f32> {
        (0..3).flat_map(|c| rows.iter().map(move |r| r[c])).collect()
    }

    #[test]
    fn zero_offsets_are_the_argmax_with_first_index_ties() {
        let d = Decision::default();
        assert!(d.is_argmax());
        assert_eq!(d.class(&[0.5, 0.3, 0.2]), 0);
        assert_eq!(d.class(&[0.2, 0.3, 0.5]), 2);
        assert_eq!(d.class(&[0.4, 0.4, 0.2]), 0);
        assert_eq!(d.class(&[0.2, 0.4, 0.4]), 1);
        // numpy's argmax (first index of the maximum) on a sweep of probability triples.
        for i in 0..=20 {
            for j in 0..=(20 - i) {
                let p = [i as f32 / 20.0, j as f32 / 20.0, (20 - i - j) as f32 / 20.0];
                let top = p.iter().cloned().fold(f32::MIN, f32::max);
                let first = p.iter().position(|&v| v == top).unwrap() as u8;
                assert_eq!(d.class(&p), first, "{p:?}");
            }
        }
    }

    #[test]
    fn offsets_move_the_boundaries_by_their_log() {
        // b1 = ln 2: Medium wins over Low once p1 > p0 / 2.
        let d = Decision::new(2f64.ln(), 0.0);
        assert_eq!(d.class(&[0.6, 0.35, 0.05]), 1);
        assert_eq!(d.class(&[0.7, 0.25, 0.05]), 0);
        // b2 = -ln 4: High needs four times Low's probability.
        let d = Decision::new(0.0, -(4f64.ln()));
        assert_eq!(d.class(&[0.15, 0.05, 0.8]), 2);
        assert_eq!(d.class(&[0.25, 0.05, 0.7]), 0);
        assert_eq!(d.class(&[0.6, 0.3, 0.1]), 0);
    }

    #[test]
    fn metadata_round_trip_and_bad_values() {
        let d = Decision::new(1.25, -0.5);
        let fit = Fit {
            decision: d,
            feasible: true,
            fallback: None,
            targets: Targets::default(),
            pixels: 10,
            chosen: Scores::of(&ConfusionMatrix::from_counts([[5, 0, 0], [0, 1, 0], [0, 0, 4]])),
            argmax: Scores::of(&ConfusionMatrix::from_counts([[5, 0, 0], [0, 0, 1], [0, 0, 4]])),
        };
        let json = fit.to_metadata("scene.tif");
        assert_eq!(Decision::from_metadata(&json), Ok(d));
        assert!(Decision::from_metadata("{").is_err());
        assert!(Decision::from_metadata(r#"{"rule": "thresholds", "offsets": [0, 1, 2]}"#).is_err());
        assert!(Decision::from_metadata(r#"{"rule": "logit_offsets", "offsets": [1, 1, 2]}"#).is_err());
        assert!(Decision::from_metadata(r#"{"rule": "logit_offsets", "offsets": [0, 1]}"#).is_err());
        assert_eq!(
            Decision::from_metadata(r#"{"rule": "logit_offsets", "offsets": [0, 0.5, 0]}"#),
            Ok(Decision::new(0.5, 0.0))
        );
    }

    /// A constructed case checkable by hand. Three kinds of pixel:
    /// - 900 Low pixels at p = (0.80, 0.15, 0.05),
    /// - 100 "grey" pixels at p = (0.55, 0.40, 0.05): 40 Medium, 60 Low,
    /// - 300 High pixels at p = (0.30, 0.10, 0.60) and 20 Medium pixels there too.
    ///
    /// The argmax predicts no Medium (precision 0). Medium wins the grey pixels once
    /// b1 > ln(0.55 / 0.40) = 0.318 and the Low pixels once b1 > ln(0.80 / 0.15) = 1.674;
    /// Medium also takes the High pixels once b1 - b2 > ln 6 = 1.792. The best feasible
    /// point predicts Medium exactly on the grey pixels: precision 40/100 = 0.4.
    #[test]
    fn a_binned_point_that_misses_its_constraint_exactly_gives_way_to_the_next_level() {
        let scores = |kappa, precision_1, recall_2| Scores {
            kappa,
            precision_1,
            recall_2,
            spearman_rho: 0.0,
            medium_share: 0.01,
        };
        let best = [Some((0.5, 10, 10)), Some((0.4, 20, 20)), Some((0.7, 30, 30))];
        // Exactly, the level-0 point misses the precision target (0.21 < 0.22): the
        // recall-only level's point, which holds its recall, is the rule.
        let rescore = |a: usize, c: usize| {
            let s = match a {
                10 => scores(0.5, 0.21, 0.95),
                20 => scores(0.4, 0.10, 0.94),
                _ => scores(0.7, 0.30, 0.50),
            };
            (Decision::new(offset_of_edge(a), offset_of_edge(c)), s)
        };
        let (level, d, s) = choose_level(&best, &Targets::default(), rescore);
        assert_eq!(level, 1);
        assert_eq!(d, Decision::new(offset_of_edge(20), offset_of_edge(20)));
        assert_eq!(s.kappa, 0.4);
        // When it holds, level 0 is kept; when no level holds, the unconstrained point.
        let holds = |a: usize, c: usize| {
            (
                Decision::new(offset_of_edge(a), offset_of_edge(c)),
                scores(0.5, 0.3, 0.95),
            )
        };
        assert_eq!(choose_level(&best, &Targets::default(), holds).0, 0);
        let never = |a: usize, c: usize| {
            (
                Decision::new(offset_of_edge(a), offset_of_edge(c)),
                scores(0.1, 0.0, 0.5),
            )
        };
        assert_eq!(choose_level(&best, &Targets::default(), never).0, 2);
    }

    #[test]
    fn fit_finds_the_hand_computed_operating_point() {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        let mut add = |p: [f32; 3], label: u8, count: usize| {
            rows.extend(std::iter::repeat_n(p, count));
            labels.extend(std::iter::repeat_n(label, count));
        };
        add([0.80, 0.15, 0.05], 0, 900);
        add([0.55, 0.40, 0.05], 1, 40);
        add([0.55, 0.40, 0.05], 0, 60);
        add([0.30, 0.10, 0.60], 2, 300);
        add([0.30, 0.10, 0.60], 1, 20);
        labels.push(NODATA); // skipped
        rows.push([0.1, 0.1, 0.8]);
        let probs = planes(&rows);
        let fit = fit(&probs, &labels, &Targets::default()).unwrap();
        // The hand-computed confusion: Low 900 right + 60 as Medium; Medium 40 right, 20
        // as High; High 300 right.
        let expect = ConfusionMatrix::from_counts([[900, 60, 0], [0, 40, 20], [0, 0, 300]]);
        assert_eq!(confusion(&fit.decision, &probs, &labels), expect);
        assert!(fit.feasible, "{fit:?}");
        assert_eq!(fit.pixels, 1320);
        let s = Scores::of(&expect);
        assert!((s.precision_1 - 0.4).abs() < 1e-12 && s.recall_2 == 1.0);
        assert_eq!(fit.chosen, s);
        let b = fit.decision.offsets;
        let (grey, low, high) = ((0.55f64 / 0.40).ln(), (0.80f64 / 0.15).ln(), 6f64.ln());
        assert!(b[1] > grey && b[1] < low && b[1] - b[2] < high, "{b:?}");
        // The argmax: no Medium at all.
        assert_eq!(fit.argmax.precision_1, 0.0);
        // By hand: kappa of that matrix, (p_o - p_e) / (1 - p_e).
        let n = 1320.0;
        let p_o = (900.0 + 40.0 + 300.0) / n;
        let p_e = (960.0 * 900.0 + 60.0 * 100.0 + 300.0 * 320.0) / (n * n);
        assert!((fit.chosen.kappa - (p_o - p_e) / (1.0 - p_e)).abs() < 1e-12);
    }

    #[test]
    fn unreachable_targets_are_said_and_fall_back() {
        // Medium pixels indistinguishable from Low ones: precision 0.1 at best.
        let mut rows = vec![[0.7f32, 0.2, 0.1]; 100];
        let mut labels = vec![0u8; 90];
        labels.extend([1u8; 10]);
        rows.extend(vec![[0.2f32, 0.1, 0.7]; 50]);
        labels.extend([2u8; 50]);
        let fit = fit(&planes(&rows), &labels, &Targets::default()).unwrap();
        assert!(!fit.feasible);
        assert_eq!(fit.fallback.as_deref(), Some("max kappa with recall_2"));
        // Best kappa with High recall: the argmax's map (Low and High right).
        assert_eq!(fit.chosen.recall_2, 1.0);
        assert_eq!(fit.chosen.precision_1, 0.0);
        assert!((fit.chosen.kappa - fit.argmax.kappa).abs() < 1e-12);
        let meta: serde_json::Value = serde_json::from_str(&fit.to_metadata("x")).unwrap();
        assert_eq!(meta["feasible"], false);
        assert_eq!(meta["fallback"], "max kappa with recall_2");
    }

    #[test]
    fn binned_counts_equal_exact_counts_away_from_boundaries() {
        // Pixels on bin centres: the histogram regions count them exactly.
        let centre = |b: usize| LOW + (b as f64 + 0.5) * BIN_WIDTH;
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for (k, (i, j)) in [
            (400usize, 380usize),
            (420, 430),
            (390, 410),
            (450, 300),
            (300, 450),
        ]
        .into_iter()
        .enumerate()
        {
            let (l1, l2) = (centre(i), centre(j));
            let z = 1.0 + l1.exp() + l2.exp();
            rows.push([(1.0 / z) as f32, (l1.exp() / z) as f32, (l2.exp() / z) as f32]);
            labels.push((k % 3) as u8);
        }
        let probs = planes(&rows);
        let mut hist = vec![vec![0u64; BINS * BINS]; 3];
        for (r, &t) in rows.iter().zip(&labels) {
            let (l1, l2) = log_ratios(*r);
            hist[t as usize][bin(l1) * BINS + bin(l2)] += 1;
        }
        let tables: Vec<RegionCounts> = hist.iter().map(|h| RegionCounts::new(h)).collect();
        for (a, c) in [(0, 0), (395, 395), (410, 400), (400, 420), (800, 800), (420, 380)] {
            let exact = confusion(
                &Decision::new(offset_of_edge(a), offset_of_edge(c)),
                &probs,
                &labels,
            );
            for (t, table) in tables.iter().enumerate() {
                let k = a as isize - c as isize;
                let binned = [table.low(a, c), table.medium_diagonal(k)[a]];
                assert_eq!(
                    binned,
                    [exact.counts()[t][0], exact.counts()[t][1]],
                    "a {a} c {c} class {t}"
                );
            }
        }
    }
}
