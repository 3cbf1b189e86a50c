//! Evaluation of risk class maps against label rasters: the source system's metrics.
//!
//! Everything derives from one 3 x 3 [`ConfusionMatrix`] (rows: truth, columns: prediction,
//! classes 0 Low, 1 Medium, 2 High), which is built either in memory
//! ([`ConfusionMatrix::from_labels`], [`ConfusionMatrix::add`], [`ConfusionMatrix::merge`]:
//! what the trainer uses for validation) or by streaming two aligned rasters strip by strip
//! ([`evaluate_rasters`]), so a raster of any size is evaluated in bounded memory. From the
//! matrix, [`ConfusionMatrix::metrics`] gives Cohen's kappa, quadratic-weighted kappa,
//! overall accuracy, per-class precision / recall / F1 / IoU and Spearman's rho between the
//! true and predicted ordinal class. With the `plot` feature (on by default; `risk-eval`
//! needs it, `risk-infer` does not): `report` writes and reads `metrics.json`, compares
//! with a baseline and checks the SPEC targets, and `plot` draws the PNGs (it links the
//! `image` and `ab_glyph` crates, which is why it is a feature). What the PNGs need from
//! the streaming evaluation it takes as a [`StripObserver`], so this module does not
//! depend on them.
//!
//! # Conventions (scikit-learn 1.9 / SciPy 1.17, checked by `tests/metrics_sklearn.rs`)
//!
//! - A pixel counts only when both truth and prediction hold a class (0, 1, 2). Value 255
//!   ([`NODATA`]) is nodata in either input; so is a raster band's own nodata value and,
//!   where GDAL has one, its mask band. Any other value is an error naming the file and
//!   the pixel.
//! - Kappa is `cohen_kappa_score(t, p, labels=[0, 1, 2])` (quadratic weights `(i - j)^2`
//!   on the class values). It is `None` where scikit-learn returns NaN: no pixels, or
//!   expected disagreement zero (both maps hold the same single class).
//! - Precision, recall, F1 and IoU follow `zero_division=0`: a class never predicted has
//!   precision 0, a class absent from the truth has recall 0, and F1 / IoU are 0 when the
//!   class is in neither map.
//! - Spearman's rho is the Pearson correlation of the tie-averaged ranks (SciPy's
//!   `spearmanr`), computed exactly from the matrix: with three ordinal values, every pixel
//!   of class k has the same midrank. It is `None` (SciPy: NaN) when truth or prediction is
//!   constant, and when there are no pixels.
//! - Accuracy is `None` for zero pixels (scikit-learn raises on empty input).
//!
//! # Memory and speed
//!
//! [`evaluate_rasters`] reads both rasters in full-width strips of whole GDAL blocks
//! (about 8 Mi pixels a strip) and drops each strip's blocks from GDAL's cache once
//! counted, so memory is a few strips whatever the raster size; the quicklook keeps one
//! row of block histograms and its small output images.
//!
//! Measured peak memory and time on two 16384 x 16384 rasters: `bench/README.md`
//! ("risk-eval").

use std::path::{Path, PathBuf};

use crate::raster::{GeoRef, InputRaster, RasterError, Window};

#[cfg(feature = "plot")]
pub mod plot;
#[cfg(feature = "plot")]
pub mod report;

pub use crate::classes::{CLASS_NAMES, NODATA, NUM_CLASSES};

/// Pixels per strip that [`evaluate_rasters`] aims for when reading (rounded to whole
/// block rows).
const STRIP_PIXELS: usize = 8 << 20;

/// Errors of evaluation; every message names the file(s) concerned.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("truth has {truth} labels but prediction has {pred}; they must be the same length")]
    LengthMismatch { truth: usize, pred: usize },
    #[error("{which} label {value} at index {index} is neither a class (0, 1, 2) nor nodata (255)")]
    InvalidLabel {
        which: &'static str,
        value: u8,
        index: usize,
    },
    #[error(
        "{path}: pixel ({x}, {y}) holds {value}, which is neither a class (0 Low, 1 Medium, 2 High) \
         nor nodata; is this a class map?"
    )]
    InvalidPixel {
        path: PathBuf,
        x: usize,
        y: usize,
        value: u8,
    },
    #[error("{pred} and {truth} do not align: {what}; the prediction must be on the truth's pixel grid")]
    Misaligned {
        pred: PathBuf,
        truth: PathBuf,
        what: String,
    },
    #[error("{pred} vs {truth}: no pixel holds a class in both (all nodata); nothing to evaluate")]
    NothingToEvaluate { pred: PathBuf, truth: PathBuf },
    #[error(transparent)]
    Raster(#[from] RasterError),
    #[error("{path}: {msg}")]
    Output { path: PathBuf, msg: String },
    /// Writing a report file failed (the OS reason in the message).
    #[error("{path}: {err}")]
    Write {
        path: PathBuf,
        err: crate::output::OutputError,
    },
    #[error("{path}: not a metrics JSON file ({msg})")]
    MetricsFile { path: PathBuf, msg: String },
}

pub type Result<T> = std::result::Result<T, MetricsError>;

/// Index of a label in the 4 x 4 counting table: classes 0..=2, nodata 3, invalid 4.
const LABEL_SLOT: [u8; 256] = {
    let mut slots = [4u8; 256];
    slots[0] = 0;
    slots[1] = 1;
    slots[2] = 2;
    slots[NODATA as usize] = 3;
    slots
};

/// Counts of (truth, prediction) class pairs: `counts[truth][pred]`, as scikit-learn's
/// `confusion_matrix(truth, pred, labels=[0, 1, 2])`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfusionMatrix {
    counts: [[u64; NUM_CLASSES]; NUM_CLASSES],
    /// Pairs left out because truth or prediction was nodata.
    skipped: u64,
}

/// Precision, recall, F1 and IoU of one class, with its pixel counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassMetrics {
    /// True positives / predicted positives; 0 when the class is never predicted.
    pub precision: f64,
    /// True positives / truth positives; 0 when the class is absent from the truth.
    pub recall: f64,
    /// `2 tp / (2 tp + fp + fn)`; 0 when the class is in neither map.
    pub f1: f64,
    /// Intersection over union (Jaccard), `tp / (tp + fp + fn)`; 0 when in neither map.
    pub iou: f64,
    /// Pixels of this class in the truth.
    pub support: u64,
    /// Pixels of this class in the prediction.
    pub predicted: u64,
}

/// All metrics of one confusion matrix. `None` marks a metric that is undefined for it
/// (NaN in scikit-learn / SciPy); see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// Pixels with a class in both truth and prediction.
    pub pixels: u64,
    /// Pixels left out as nodata in either map.
    pub nodata_pixels: u64,
    pub accuracy: Option<f64>,
    pub cohen_kappa: Option<f64>,
    pub quadratic_kappa: Option<f64>,
    pub spearman_rho: Option<f64>,
    /// Per class, indexed by class value.
    pub classes: [ClassMetrics; NUM_CLASSES],
    /// `confusion[truth][pred]`.
    pub confusion: [[u64; NUM_CLASSES]; NUM_CLASSES],
}

impl ConfusionMatrix {
    /// An empty matrix.
    pub fn new() -> Self {
        Self::default()
    }

    /// A matrix with the given counts (`counts[truth][pred]`) and no nodata pixels.
    pub fn from_counts(counts: [[u64; NUM_CLASSES]; NUM_CLASSES]) -> Self {
        Self { counts, skipped: 0 }
    }

    /// The matrix of paired labels (`truth[i]`, `pred[i]`); pairs with a nodata (255) on
    /// either side are left out.
    pub fn from_labels(truth: &[u8], pred: &[u8]) -> Result<Self> {
        let mut matrix = Self::new();
        matrix.add(truth, pred)?;
        Ok(matrix)
    }

    /// Adds paired labels as [`from_labels`](Self::from_labels) does. On error (different
    /// lengths, a value that is neither class nor nodata) the matrix is unchanged.
    pub fn add(&mut self, truth: &[u8], pred: &[u8]) -> Result<()> {
        if truth.len() != pred.len() {
            return Err(MetricsError::LengthMismatch {
                truth: truth.len(),
                pred: pred.len(),
            });
        }
        // Four interleaved tables break the store-to-load dependency between neighbouring
        // pixels, which mostly fall in the same cell.
        let mut table = [[0u64; 16]; 4];
        let mut invalid = false;
        for (lane, (t, p)) in truth.iter().zip(pred).enumerate() {
            let ts = LABEL_SLOT[*t as usize];
            let ps = LABEL_SLOT[*p as usize];
            invalid |= (ts | ps) & 4 != 0;
            table[lane & 3][((ts & 3) << 2 | (ps & 3)) as usize] += 1;
        }
        if invalid {
            let (index, which, value) = truth
                .iter()
                .zip(pred)
                .enumerate()
                .find_map(|(i, (&t, &p))| {
                    if LABEL_SLOT[t as usize] == 4 {
                        Some((i, "truth", t))
                    } else if LABEL_SLOT[p as usize] == 4 {
                        Some((i, "prediction", p))
                    } else {
                        None
                    }
                })
                .expect("an invalid label was seen");
            return Err(MetricsError::InvalidLabel { which, value, index });
        }
        for lane in &table {
            for (slot, &count) in lane.iter().enumerate() {
                let (t, p) = (slot >> 2, slot & 3);
                if t < NUM_CLASSES && p < NUM_CLASSES {
                    self.counts[t][p] += count;
                } else {
                    self.skipped += count;
                }
            }
        }
        Ok(())
    }

    /// Adds the counts of `other` (e.g. of another batch, tile or worker).
    pub fn merge(&mut self, other: &ConfusionMatrix) {
        for (row, other_row) in self.counts.iter_mut().zip(&other.counts) {
            for (c, o) in row.iter_mut().zip(other_row) {
                *c += o;
            }
        }
        self.skipped += other.skipped;
    }

    /// `counts[truth][pred]`.
    pub fn counts(&self) -> &[[u64; NUM_CLASSES]; NUM_CLASSES] {
        &self.counts
    }

    /// Pixels counted (class in both maps).
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Pixels left out because either side was nodata.
    pub fn nodata_pixels(&self) -> u64 {
        self.skipped
    }

    /// Pixels of each class in the truth (row sums).
    pub fn truth_totals(&self) -> [u64; NUM_CLASSES] {
        self.counts.map(|row| row.iter().sum())
    }

    /// Pixels of each class in the prediction (column sums).
    pub fn pred_totals(&self) -> [u64; NUM_CLASSES] {
        std::array::from_fn(|p| self.counts.iter().map(|row| row[p]).sum())
    }

    /// Share of pixels whose predicted class is the true class.
    pub fn accuracy(&self) -> Option<f64> {
        let n = self.total();
        (n > 0).then(|| (0..NUM_CLASSES).map(|k| self.counts[k][k]).sum::<u64>() as f64 / n as f64)
    }

    /// Cohen's kappa (`cohen_kappa_score(t, p, labels=[0, 1, 2])`).
    pub fn cohen_kappa(&self) -> Option<f64> {
        self.weighted_kappa(|i, j| if i == j { 0.0 } else { 1.0 })
    }

    /// Quadratic-weighted kappa, weights `(i - j)^2` on the class values.
    pub fn quadratic_kappa(&self) -> Option<f64> {
        self.weighted_kappa(|i, j| ((i as f64) - (j as f64)).powi(2))
    }

    /// `1 - sum(w * observed) / sum(w * expected)`, expected from the marginals, as
    /// scikit-learn computes it; `None` when the denominator is zero.
    fn weighted_kappa(&self, weight: impl Fn(usize, usize) -> f64) -> Option<f64> {
        let n = self.total();
        if n == 0 {
            return None;
        }
        let rows = self.truth_totals();
        let cols = self.pred_totals();
        let (mut observed, mut expected) = (0.0, 0.0);
        let mut expected_is_zero = true;
        for (t, (counts, &row)) in self.counts.iter().zip(&rows).enumerate() {
            for (p, (&count, &col)) in counts.iter().zip(&cols).enumerate() {
                let w = weight(t, p);
                observed += w * count as f64;
                expected += w * (row as f64 * col as f64 / n as f64);
                expected_is_zero &= w == 0.0 || row == 0 || col == 0;
            }
        }
        (!expected_is_zero).then(|| 1.0 - observed / expected)
    }

    /// Spearman's rank correlation between true and predicted class, ties averaged
    /// (SciPy's `spearmanr`); `None` when either side is constant.
    pub fn spearman_rho(&self) -> Option<f64> {
        let n = self.total();
        // Midrank of class k minus the mean rank (n + 1) / 2: before_k + count_k / 2 - n / 2.
        let centred_ranks = |totals: [u64; NUM_CLASSES]| {
            let mut before = 0u64;
            totals.map(|count| {
                let r = before as f64 + count as f64 / 2.0 - n as f64 / 2.0;
                before += count;
                r
            })
        };
        let (rows, cols) = (self.truth_totals(), self.pred_totals());
        let (rt, rp) = (centred_ranks(rows), centred_ranks(cols));
        let var_t: f64 = (0..NUM_CLASSES).map(|k| rows[k] as f64 * rt[k] * rt[k]).sum();
        let var_p: f64 = (0..NUM_CLASSES).map(|k| cols[k] as f64 * rp[k] * rp[k]).sum();
        if var_t == 0.0 || var_p == 0.0 {
            return None;
        }
        let cov: f64 = (self.counts.iter().zip(rt))
            .map(|(counts, a)| counts.iter().zip(rp).map(|(&c, b)| c as f64 * a * b).sum::<f64>())
            .sum();
        Some((cov / (var_t.sqrt() * var_p.sqrt())).clamp(-1.0, 1.0))
    }

    /// Precision, recall, F1 and IoU of class `class` (0, 1 or 2).
    pub fn class_metrics(&self, class: usize) -> ClassMetrics {
        let tp = self.counts[class][class];
        let support = self.truth_totals()[class];
        let predicted = self.pred_totals()[class];
        let ratio = |num: u64, den: u64| if den == 0 { 0.0 } else { num as f64 / den as f64 };
        let (fp, fn_) = (predicted - tp, support - tp);
        ClassMetrics {
            precision: ratio(tp, predicted),
            recall: ratio(tp, support),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
            iou: ratio(tp, tp + fp + fn_),
            support,
            predicted,
        }
    }

    /// Every metric at once.
    pub fn metrics(&self) -> Metrics {
        Metrics {
            pixels: self.total(),
            nodata_pixels: self.skipped,
            accuracy: self.accuracy(),
            cohen_kappa: self.cohen_kappa(),
            quadratic_kappa: self.quadratic_kappa(),
            spearman_rho: self.spearman_rho(),
            classes: std::array::from_fn(|k| self.class_metrics(k)),
            confusion: self.counts,
        }
    }
}

/// How [`evaluate_rasters`] reads.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// Rows per strip; `None` picks whole GDAL block rows adding up to about 8 Mi pixels.
    pub strip_rows: Option<usize>,
}

/// Sees every strip that [`evaluate_rasters_with`] counts, in order (risk-eval's
/// quicklook): the window and its truth and prediction classes after the nodata rules.
pub trait StripObserver {
    fn add_strip(&mut self, window: Window, truth: &[u8], pred: &[u8]);
}

/// No observer.
impl StripObserver for () {
    fn add_strip(&mut self, _: Window, _: &[u8], _: &[u8]) {}
}

/// What [`evaluate_rasters`] found.
pub struct RasterEvaluation {
    pub confusion: ConfusionMatrix,
    /// Raster size, columns x rows.
    pub width: usize,
    pub height: usize,
}

/// Checks that two rasters share size, geotransform and CRS; the error names both files
/// and what differs.
pub fn check_alignment(pred: &InputRaster, truth: &InputRaster) -> Result<()> {
    let misaligned = |what: String| MetricsError::Misaligned {
        pred: pred.path().to_path_buf(),
        truth: truth.path().to_path_buf(),
        what,
    };
    if (pred.width(), pred.height()) != (truth.width(), truth.height()) {
        return Err(misaligned(format!(
            "size {}x{} vs {}x{}",
            pred.width(),
            pred.height(),
            truth.width(),
            truth.height()
        )));
    }
    let (pg, tg) = (pred.georef(), truth.georef());
    match (pg.geo_transform, tg.geo_transform) {
        (Some(a), Some(b)) => {
            // A millionth of a pixel absorbs decimal round trips of the coefficients.
            let tol = 1e-6 * a[1].abs().max(a[5].abs()).max(b[1].abs()).max(b[5].abs());
            if a.iter().zip(&b).any(|(x, y)| (x - y).abs() > tol) {
                return Err(misaligned(format!("geotransform {a:?} vs {b:?}")));
            }
        }
        (None, None) => {}
        (a, b) => {
            let show = |g: Option<[f64; 6]>| g.map_or("none".to_string(), |g| format!("{g:?}"));
            return Err(misaligned(format!("geotransform {} vs {}", show(a), show(b))));
        }
    }
    if !GeoRef::same_crs(&pg, &tg) {
        let name = |g: &GeoRef| {
            if g.projection.is_empty() {
                "none".to_string()
            } else {
                g.crs_name()
            }
        };
        return Err(misaligned(format!("CRS {} vs {}", name(&pg), name(&tg))));
    }
    Ok(())
}

/// Which pixels of a class-map band are nodata, besides value 255.
enum NodataRule {
    /// The band's nodata value, representable as u8.
    Value(u8),
    /// GDAL's mask band (a nodata value u8 cannot hold, a mask or an alpha band).
    Mask,
}

impl NodataRule {
    fn of(raster: &InputRaster) -> Result<Self> {
        Ok(match raster.nodata(1)? {
            Some(v) if v.fract() == 0.0 && (0.0..=255.0).contains(&v) => NodataRule::Value(v as u8),
            _ => NodataRule::Mask,
        })
    }

    /// Sets the nodata pixels of `values` (band 1 over `window`) to [`NODATA`].
    fn apply(
        &self,
        raster: &InputRaster,
        window: Window,
        values: &mut [u8],
        valid: &mut Vec<bool>,
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        match *self {
            NodataRule::Value(nd) => values.iter_mut().filter(|v| **v == nd).for_each(|v| *v = NODATA),
            NodataRule::Mask => {
                valid.resize(values.len(), true);
                raster.read_valid(&[1], window, valid, scratch)?;
                for (v, &ok) in values.iter_mut().zip(valid.iter()) {
                    if !ok {
                        *v = NODATA;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Streams band 1 of `pred` and `truth` (class maps: 0, 1, 2, nodata) strip by strip,
/// after checking that they align, into a confusion matrix.
pub fn evaluate_rasters(pred: &Path, truth: &Path, options: &EvalOptions) -> Result<RasterEvaluation> {
    evaluate_rasters_with(pred, truth, options, |_, _| ()).map(|(evaluation, ())| evaluation)
}

/// [`evaluate_rasters`], also feeding every strip to the observer that `observer` makes
/// for the raster's width and height (once the rasters are known to align).
pub fn evaluate_rasters_with<O: StripObserver>(
    pred: &Path,
    truth: &Path,
    options: &EvalOptions,
    observer: impl FnOnce(usize, usize) -> O,
) -> Result<(RasterEvaluation, O)> {
    let mut pred = InputRaster::open(pred)?;
    let mut truth = InputRaster::open(truth)?;
    check_alignment(&pred, &truth)?;
    let (width, height) = (pred.width(), pred.height());
    let pred_rule = NodataRule::of(&pred)?;
    let truth_rule = NodataRule::of(&truth)?;
    let strip_rows = match options.strip_rows {
        Some(rows) => rows.max(1),
        None => {
            let block_rows = pred.block_size(1)?.1.max(truth.block_size(1)?.1).max(1);
            let blocks = (STRIP_PIXELS / width.max(1) / block_rows).max(1);
            blocks * block_rows
        }
    }
    .min(height);
    let mut observer = observer(width, height);

    let capacity = strip_rows * width;
    let (mut pv, mut tv) = (vec![0u8; capacity], vec![0u8; capacity]);
    let (mut valid, mut scratch) = (Vec::new(), Vec::new());
    let mut confusion = ConfusionMatrix::new();
    for y in (0..height).step_by(strip_rows) {
        let window = Window::new(0, y, width, strip_rows.min(height - y));
        let (p, t) = (&mut pv[..window.pixels()], &mut tv[..window.pixels()]);
        pred.read_band(1, window, p)?;
        truth.read_band(1, window, t)?;
        pred_rule.apply(&pred, window, p, &mut valid, &mut scratch)?;
        truth_rule.apply(&truth, window, t, &mut valid, &mut scratch)?;
        confusion.add(t, p).map_err(|e| match e {
            MetricsError::InvalidLabel { which, value, index } => MetricsError::InvalidPixel {
                path: if which == "truth" {
                    truth.path()
                } else {
                    pred.path()
                }
                .to_path_buf(),
                x: index % width,
                y: y + index / width,
                value,
            },
            other => other,
        })?;
        observer.add_strip(window, t, p);
        // Counted: GDAL need not keep these blocks, so memory stays at one strip.
        pred.drop_cached_blocks();
        truth.drop_cached_blocks();
    }
    Ok((
        RasterEvaluation {
            confusion,
            width,
            height,
        },
        observer,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rows_as_truth_and_columns_as_prediction() {
        let m = ConfusionMatrix::from_labels(&[0, 0, 1, 2, 2, 255, 1], &[0, 1, 1, 2, 0, 2, 255]).unwrap();
        assert_eq!(m.counts(), &[[1, 1, 0], [0, 1, 0], [1, 0, 1]]);
        assert_eq!(m.total(), 5);
        assert_eq!(m.nodata_pixels(), 2);
        assert_eq!(m.truth_totals(), [2, 1, 2]);
        assert_eq!(m.pred_totals(), [2, 2, 1]);
    }

    #[test]
    fn invalid_labels_are_errors_and_leave_the_matrix_unchanged() {
        let mut m = ConfusionMatrix::from_labels(&[0, 1], &[0, 1]).unwrap();
        let before = m;
        let err = m.add(&[0, 1, 2], &[0, 7, 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prediction label 7 at index 1 is neither a class (0, 1, 2) nor nodata (255)"
        );
        assert_eq!(m, before);
        assert!(matches!(
            m.add(&[0], &[0, 1]),
            Err(MetricsError::LengthMismatch { truth: 1, pred: 2 })
        ));
    }

    #[test]
    fn merge_equals_counting_everything_at_once() {
        let (t, p) = ([0u8, 1, 2, 2, 1, 0, 255, 2], [0u8, 2, 2, 1, 1, 0, 0, 255]);
        let mut a = ConfusionMatrix::from_labels(&t[..3], &p[..3]).unwrap();
        a.merge(&ConfusionMatrix::from_labels(&t[3..], &p[3..]).unwrap());
        assert_eq!(a, ConfusionMatrix::from_labels(&t, &p).unwrap());
    }

    #[test]
    fn zero_pixels_give_undefined_scores_and_zero_class_metrics() {
        let m = ConfusionMatrix::from_labels(&[255, 0], &[1, 255])
            .unwrap()
            .metrics();
        assert_eq!((m.pixels, m.nodata_pixels), (0, 2));
        assert_eq!(
            (m.accuracy, m.cohen_kappa, m.quadratic_kappa, m.spearman_rho),
            (None, None, None, None)
        );
        for c in m.classes {
            assert_eq!((c.precision, c.recall, c.f1, c.iou), (0.0, 0.0, 0.0, 0.0));
        }
    }

    #[test]
    fn spearman_of_a_2x2_table_is_the_phi_coefficient() {
        // For two binary variables Spearman's rho equals phi = (ad - bc) / sqrt(r1 r2 c1 c2).
        // Classes 0 and 2 only, in both maps.
        let m = ConfusionMatrix::from_counts([[30, 0, 10], [0, 0, 0], [5, 0, 55]]);
        let (a, b, c, d) = (30.0, 10.0, 5.0, 55.0);
        let phi = (a * d - b * c) / f64::sqrt((a + b) * (c + d) * (a + c) * (b + d));
        approx::assert_abs_diff_eq!(m.spearman_rho().unwrap(), phi, epsilon = 1e-12);
    }

    #[test]
    fn spearman_stays_exact_for_continental_pixel_counts() {
        // Scaling every count by k scales the centred midranks by k exactly, so rho is
        // unchanged: 1.1e11 pixels must give the rho of the 27-pixel table.
        let small = ConfusionMatrix::from_counts([[7, 2, 1], [1, 3, 1], [0, 2, 9]]);
        let k = 4_000_000_000u64;
        let big = ConfusionMatrix::from_counts(small.counts().map(|r| r.map(|c| c * k)));
        approx::assert_abs_diff_eq!(
            big.spearman_rho().unwrap(),
            small.spearman_rho().unwrap(),
            epsilon = 1e-12
        );
        approx::assert_abs_diff_eq!(
            big.cohen_kappa().unwrap(),
            small.cohen_kappa().unwrap(),
            epsilon = 1e-12
        );
    }
}
