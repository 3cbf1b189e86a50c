//! `metrics.json`, the baseline comparison, the SPEC targets and the Markdown report.
//!
//! # `metrics.json` schema (`"schema": "risk-seg/metrics/v1"`)
//!
//! ```json
//! {
//!   "schema": "risk-seg/metrics/v1",
//!   "description": "free text (optional)",
//!   "prediction": "risk.tif",            // evaluated class map (optional)
//!   "truth": "labels.tif",               // label raster (optional)
//!   "pixels": 1234567,                   // pixels with a class in both maps
//!   "nodata_pixels": 890,                // pixels left out as nodata in either map
//!   "accuracy": 0.81,                    // overall accuracy
//!   "cohen_kappa": 0.47,
//!   "quadratic_kappa": 0.62,             // weights (i - j)^2 on class values
//!   "spearman_rho": 0.58,                // true vs predicted ordinal class
//!   "classes": [                         // one entry per class, any subset
//!     { "class": 0, "name": "Low", "precision": 0.9, "recall": 0.8, "f1": 0.85,
//!       "iou": 0.74, "support": 1000, "predicted": 950 }
//!   ],
//!   "confusion_matrix": [[..3..], [..3..], [..3..]]   // [truth][prediction] pixel counts
//! }
//! ```
//!
//! Every field but `schema` may be missing, and a metric may be `null` where it is
//! undefined (kappa or rho of a single-class map; see [`super`]). `risk-eval` writes every
//! field; a baseline such as `models/v2_baseline_metrics.json`, which holds only the four
//! numbers the source published, gives what it knows. Unknown fields are an error, so a
//! misspelt key does not silently drop a baseline number.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    CLASS_NAMES, EvalOptions, Metrics, MetricsError, NUM_CLASSES, Result, evaluate_rasters_with, plot,
};

/// The `schema` value of the current format.
pub const SCHEMA: &str = "risk-seg/metrics/v1";

/// The contents of a `metrics.json` (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub prediction: Option<String>,
    #[serde(default)]
    pub truth: Option<String>,
    #[serde(default)]
    pub pixels: Option<u64>,
    #[serde(default)]
    pub nodata_pixels: Option<u64>,
    #[serde(default)]
    pub accuracy: Option<f64>,
    #[serde(default)]
    pub cohen_kappa: Option<f64>,
    #[serde(default)]
    pub quadratic_kappa: Option<f64>,
    #[serde(default)]
    pub spearman_rho: Option<f64>,
    #[serde(default)]
    pub classes: Vec<ClassEntry>,
    #[serde(default)]
    pub confusion_matrix: Option<[[u64; NUM_CLASSES]; NUM_CLASSES]>,
}

/// Per-class metrics of one class in `metrics.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassEntry {
    /// Class value: 0 Low, 1 Medium, 2 High.
    pub class: u8,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub precision: Option<f64>,
    #[serde(default)]
    pub recall: Option<f64>,
    #[serde(default)]
    pub f1: Option<f64>,
    #[serde(default)]
    pub iou: Option<f64>,
    /// Pixels of the class in the truth.
    #[serde(default)]
    pub support: Option<u64>,
    /// Pixels of the class in the prediction.
    #[serde(default)]
    pub predicted: Option<u64>,
}

impl MetricsFile {
    /// The file for `metrics` of `prediction` against `truth`.
    pub fn new(metrics: &Metrics, prediction: Option<String>, truth: Option<String>) -> Self {
        Self {
            schema: SCHEMA.to_string(),
            description: None,
            prediction,
            truth,
            pixels: Some(metrics.pixels),
            nodata_pixels: Some(metrics.nodata_pixels),
            accuracy: metrics.accuracy,
            cohen_kappa: metrics.cohen_kappa,
            quadratic_kappa: metrics.quadratic_kappa,
            spearman_rho: metrics.spearman_rho,
            classes: (0..NUM_CLASSES)
                .map(|k| {
                    let c = &metrics.classes[k];
                    ClassEntry {
                        class: k as u8,
                        name: Some(CLASS_NAMES[k].to_string()),
                        precision: Some(c.precision),
                        recall: Some(c.recall),
                        f1: Some(c.f1),
                        iou: Some(c.iou),
                        support: Some(c.support),
                        predicted: Some(c.predicted),
                    }
                })
                .collect(),
            confusion_matrix: Some(metrics.confusion),
        }
    }

    /// Reads and checks a metrics file (schema, class values).
    pub fn read(path: &Path) -> Result<Self> {
        let err = |msg: String| MetricsError::MetricsFile {
            path: path.to_path_buf(),
            msg,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let file: MetricsFile = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        if file.schema != SCHEMA {
            return Err(err(format!("schema is {:?}, expected {SCHEMA:?}", file.schema)));
        }
        if let Some(c) = file.classes.iter().find(|c| c.class as usize >= NUM_CLASSES) {
            return Err(err(format!("class {} does not exist (0, 1, 2)", c.class)));
        }
        Ok(file)
    }

    /// Pretty-printed JSON, ending in a newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("metrics serialise") + "\n"
    }

    fn class(&self, class: usize) -> Option<&ClassEntry> {
        self.classes.iter().find(|c| c.class as usize == class)
    }
}

/// Which value of a [`MetricsFile`] a table row shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKey {
    Accuracy,
    CohenKappa,
    QuadraticKappa,
    SpearmanRho,
    Precision(usize),
    Recall(usize),
    F1(usize),
    Iou(usize),
}

impl MetricKey {
    /// The value in `file`, if it has one.
    pub fn get(self, file: &MetricsFile) -> Option<f64> {
        match self {
            MetricKey::Accuracy => file.accuracy,
            MetricKey::CohenKappa => file.cohen_kappa,
            MetricKey::QuadraticKappa => file.quadratic_kappa,
            MetricKey::SpearmanRho => file.spearman_rho,
            MetricKey::Precision(k) => file.class(k)?.precision,
            MetricKey::Recall(k) => file.class(k)?.recall,
            MetricKey::F1(k) => file.class(k)?.f1,
            MetricKey::Iou(k) => file.class(k)?.iou,
        }
    }

    /// Row label.
    pub fn label(self) -> String {
        let class = |what: &str, k: usize| format!("class {k} {} {what}", CLASS_NAMES[k]);
        match self {
            MetricKey::Accuracy => "overall accuracy".into(),
            MetricKey::CohenKappa => "Cohen's kappa".into(),
            MetricKey::QuadraticKappa => "quadratic-weighted kappa".into(),
            MetricKey::SpearmanRho => "Spearman rho".into(),
            MetricKey::Precision(k) => class("precision", k),
            MetricKey::Recall(k) => class("recall", k),
            MetricKey::F1(k) => class("F1", k),
            MetricKey::Iou(k) => class("IoU", k),
        }
    }

    /// Rows of the report, headline metrics first.
    pub fn all() -> Vec<MetricKey> {
        let mut keys = vec![
            MetricKey::CohenKappa,
            MetricKey::QuadraticKappa,
            MetricKey::SpearmanRho,
            MetricKey::Accuracy,
        ];
        for k in 0..NUM_CLASSES {
            keys.extend([
                MetricKey::Precision(k),
                MetricKey::Recall(k),
                MetricKey::F1(k),
                MetricKey::Iou(k),
            ]);
        }
        keys
    }
}

/// A V2.5 target of `docs/spec.md` ("Evaluation"): `metric >= minimum`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    pub metric: MetricKey,
    pub minimum: f64,
}

/// The V2.5 targets of `docs/spec.md` ("Evaluation"): kappa >= 0.48, class-1 precision >= 22%,
/// class-2 recall >= 93%, Spearman rho >= 0.58.
pub const SPEC_TARGETS: [Target; 4] = [
    Target {
        metric: MetricKey::CohenKappa,
        minimum: 0.48,
    },
    Target {
        metric: MetricKey::Precision(1),
        minimum: 0.22,
    },
    Target {
        metric: MetricKey::Recall(2),
        minimum: 0.93,
    },
    Target {
        metric: MetricKey::SpearmanRho,
        minimum: 0.58,
    },
];

/// One row of the comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub metric: MetricKey,
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    /// `value - baseline` where both exist.
    pub delta: Option<f64>,
    pub target: Option<Target>,
    /// Whether the target is met; `None` without a target or a value.
    pub met: Option<bool>,
}

/// The metrics of `current` against `baseline` and the SPEC targets, one row per metric.
pub fn compare(current: &MetricsFile, baseline: Option<&MetricsFile>) -> Vec<Row> {
    MetricKey::all()
        .into_iter()
        .map(|metric| {
            let value = metric.get(current);
            let base = baseline.and_then(|b| metric.get(b));
            let target = SPEC_TARGETS.iter().copied().find(|t| t.metric == metric);
            Row {
                metric,
                value,
                baseline: base,
                delta: value.zip(base).map(|(v, b)| v - b),
                target,
                met: target.zip(value).map(|(t, v)| v >= t.minimum),
            }
        })
        .collect()
}

/// `(met, with a target)` over `rows`.
pub fn targets_met(rows: &[Row]) -> (usize, usize) {
    let with_target = rows.iter().filter(|r| r.target.is_some()).count();
    (rows.iter().filter(|r| r.met == Some(true)).count(), with_target)
}

fn cell(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.4}"))
}

fn delta_cell(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:+.4}"))
}

fn target_cell(row: &Row) -> String {
    match (row.target, row.met) {
        (None, _) => String::new(),
        (Some(t), Some(met)) => format!(">= {:.2} {}", t.minimum, if met { "met" } else { "NOT met" }),
        (Some(t), None) => format!(">= {:.2} undefined", t.minimum),
    }
}

/// The cells of one row in table order: metric, value, baseline, delta, SPEC target.
fn row_cells(r: &Row) -> [String; 5] {
    [
        r.metric.label(),
        cell(r.value),
        cell(r.baseline),
        delta_cell(r.delta),
        target_cell(r),
    ]
}

/// The rows as a plain-text table for the terminal.
pub fn text_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<30} {:>9} {:>9} {:>9}  SPEC target",
        "metric", "value", "baseline", "delta"
    );
    for r in rows {
        let [metric, value, baseline, delta, target] = row_cells(r);
        let _ = writeln!(out, "{metric:<30} {value:>9} {baseline:>9} {delta:>9}  {target}");
    }
    let (met, of) = targets_met(rows);
    let _ = writeln!(out, "SPEC targets met: {met} of {of}");
    out
}

/// Names of the files a report links.
pub const METRICS_JSON: &str = "metrics.json";
pub const CONFUSION_PNG: &str = "confusion_matrix.png";
pub const QUICKLOOK_PNG: &str = "quicklook.png";
pub const REPORT_MD: &str = "report.md";

/// The Markdown report: what was compared, the table, and the two figures.
pub fn markdown(current: &MetricsFile, baseline_path: Option<&str>, rows: &[Row]) -> String {
    let mut md = String::new();
    let name = |s: &Option<String>| s.clone().unwrap_or_else(|| "?".into());
    let _ = writeln!(md, "# Risk map evaluation\n");
    let _ = writeln!(md, "- prediction: `{}`", name(&current.prediction));
    let _ = writeln!(md, "- truth: `{}`", name(&current.truth));
    let _ = writeln!(
        md,
        "- pixels evaluated: {} (left out as nodata in either map: {})",
        current.pixels.unwrap_or(0),
        current.nodata_pixels.unwrap_or(0)
    );
    match baseline_path {
        Some(path) => {
            let _ = writeln!(md, "- baseline: `{path}`");
        }
        None => {
            let _ = writeln!(md, "- baseline: none");
        }
    }
    let (met, of) = targets_met(rows);
    let _ = writeln!(md, "- V2.5 targets of docs/spec.md met: **{met} of {of}**\n");
    let _ = writeln!(md, "| metric | value | baseline | delta | SPEC target |");
    let _ = writeln!(md, "|---|---:|---:|---:|---|");
    for r in rows {
        let _ = writeln!(md, "| {} |", row_cells(r).join(" | "));
    }
    let _ = writeln!(
        md,
        "\n\"-\" marks a value that is not available or undefined (kappa or Spearman rho when a map \
         holds a single class). All numbers: [`{METRICS_JSON}`]({METRICS_JSON}).\n"
    );
    let _ = writeln!(md, "## Confusion matrix\n");
    let _ = writeln!(
        md,
        "Rows: truth; columns: prediction; cells: pixels and share of the truth row.\n"
    );
    let _ = writeln!(md, "![Confusion matrix]({CONFUSION_PNG})\n");
    let _ = writeln!(md, "## Truth, prediction and errors\n");
    let _ = writeln!(
        md,
        "Green Low, amber Medium, red High, grey nodata. Errors: blue where the prediction is \
         below the truth (missed risk), purple where it is above; darker for two classes off.\n"
    );
    let _ = writeln!(md, "![Truth, prediction and errors]({QUICKLOOK_PNG})");
    md
}

/// What [`evaluate_to_dir`] compares and where it writes.
#[derive(Clone, Debug)]
pub struct EvaluateRequest {
    pub prediction: PathBuf,
    pub truth: PathBuf,
    /// A `metrics.json` to compare with (e.g. `models/v2_baseline_metrics.json`).
    pub baseline: Option<PathBuf>,
    /// Folder for `metrics.json`, the PNGs and `report.md`; created if missing.
    pub out_dir: PathBuf,
    /// Long side of each quicklook panel in pixels.
    pub quicklook_max_side: usize,
    /// Rows per read strip; `None` chooses (see [`EvalOptions`]).
    pub strip_rows: Option<usize>,
}

/// What [`evaluate_to_dir`] found and wrote.
#[derive(Clone, Debug)]
pub struct EvaluateOutcome {
    pub metrics: MetricsFile,
    pub rows: Vec<Row>,
    /// The files written, report last.
    pub written: Vec<PathBuf>,
}

/// Evaluates `prediction` against `truth` (streaming, see [`evaluate_rasters`]), compares
/// with the baseline and writes `metrics.json`, `confusion_matrix.png`, `quicklook.png` and
/// `report.md` into the output folder, each through a temporary file. The baseline is read
/// and the folder created before the rasters are, so that those mistakes fail fast.
pub fn evaluate_to_dir(request: &EvaluateRequest) -> Result<EvaluateOutcome> {
    let baseline = request.baseline.as_deref().map(MetricsFile::read).transpose()?;
    let created = !request.out_dir.exists();
    std::fs::create_dir_all(&request.out_dir).map_err(|e| MetricsError::Output {
        path: request.out_dir.clone(),
        msg: format!("cannot create the output folder ({})", crate::output::io_msg(&e)),
    })?;
    let outcome = evaluate_into(request, baseline);
    if outcome.is_err() && created {
        // A failed run leaves no empty folder behind (`remove_dir` keeps a non-empty one).
        let _ = std::fs::remove_dir(&request.out_dir);
    }
    outcome
}

/// [`evaluate_to_dir`] once the output folder exists.
fn evaluate_into(request: &EvaluateRequest, baseline: Option<MetricsFile>) -> Result<EvaluateOutcome> {
    let options = EvalOptions {
        strip_rows: request.strip_rows,
    };
    let (evaluation, quicklook) =
        evaluate_rasters_with(&request.prediction, &request.truth, &options, |w, h| {
            plot::QuicklookBuilder::new(w, h, request.quicklook_max_side)
        })?;
    let metrics = evaluation.confusion.metrics();
    if metrics.pixels == 0 {
        return Err(MetricsError::NothingToEvaluate {
            pred: request.prediction.clone(),
            truth: request.truth.clone(),
        });
    }
    let display = |p: &Path| p.display().to_string();
    let file = MetricsFile::new(
        &metrics,
        Some(display(&request.prediction)),
        Some(display(&request.truth)),
    );
    let rows = compare(&file, baseline.as_ref());

    let short = |p: &Path| {
        p.file_name()
            .map_or_else(|| display(p), |n| n.to_string_lossy().into_owned())
    };
    let scores = format!(
        "kappa {}, Spearman rho {}",
        cell(metrics.cohen_kappa),
        cell(metrics.spearman_rho)
    );
    let files = format!(
        "prediction {} vs truth {}",
        short(&request.prediction),
        short(&request.truth)
    );
    let confusion = plot::render_confusion(
        &evaluation.confusion,
        &format!("Confusion matrix, {} pixels", plot::thousands(metrics.pixels)),
        &files,
    );
    let quicklook = plot::render_quicklook(
        &quicklook.finish(),
        "Risk: truth vs prediction vs errors",
        &format!("{files}; {scores}"),
    );
    let png = |img: &image::RgbImage, path: &Path| {
        plot::encode_png(img).map_err(|e| MetricsError::Output {
            path: path.to_path_buf(),
            msg: format!("PNG encoding failed ({e})"),
        })
    };
    let dir = &request.out_dir;
    let mut written = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = dir.join(name);
        write_atomic(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    write(METRICS_JSON, file.to_json().as_bytes())?;
    write(CONFUSION_PNG, &png(&confusion, &dir.join(CONFUSION_PNG))?)?;
    write(QUICKLOOK_PNG, &png(&quicklook, &dir.join(QUICKLOOK_PNG))?)?;
    let baseline_path = request.baseline.as_deref().map(display);
    let md = markdown(&file, baseline_path.as_deref(), &rows);
    write(REPORT_MD, md.as_bytes())?;
    Ok(EvaluateOutcome {
        metrics: file,
        rows,
        written,
    })
}

/// Writes `bytes` to `path` through [`crate::output::write_atomic`]: a temporary file
/// beside it, flushed, read back, then renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::output::write_atomic(path, bytes).map_err(|err| MetricsError::Write {
        path: path.to_path_buf(),
        err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ConfusionMatrix;

    #[test]
    fn metrics_file_round_trips_and_keeps_undefined_as_null() {
        let m = ConfusionMatrix::from_labels(&[2, 2, 2], &[2, 2, 2])
            .unwrap()
            .metrics();
        let file = MetricsFile::new(&m, Some("p.tif".into()), Some("t.tif".into()));
        let json = file.to_json();
        assert!(json.contains("\"cohen_kappa\": null"), "{json}");
        let back: MetricsFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back, file);
    }

    #[test]
    fn misspelt_keys_are_rejected() {
        let err = serde_json::from_str::<MetricsFile>(r#"{"schema": "risk-seg/metrics/v1", "kappa": 0.4}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `kappa`"), "{err}");
    }

    #[test]
    fn targets_are_checked_against_the_spec_thresholds() {
        let current = MetricsFile {
            schema: SCHEMA.into(),
            cohen_kappa: Some(0.48),
            spearman_rho: Some(0.5799),
            classes: vec![ClassEntry {
                class: 2,
                recall: Some(0.95),
                ..Default::default()
            }],
            ..Default::default()
        };
        let baseline = MetricsFile {
            schema: SCHEMA.into(),
            cohen_kappa: Some(0.4534),
            ..Default::default()
        };
        let rows = compare(&current, Some(&baseline));
        let row = |key| rows.iter().find(|r| r.metric == key).unwrap();
        assert_eq!(row(MetricKey::CohenKappa).met, Some(true));
        approx::assert_abs_diff_eq!(row(MetricKey::CohenKappa).delta.unwrap(), 0.0266, epsilon = 1e-12);
        assert_eq!(row(MetricKey::SpearmanRho).met, Some(false));
        assert_eq!(row(MetricKey::Recall(2)).met, Some(true));
        assert_eq!(row(MetricKey::Precision(1)).met, None);
        assert_eq!(targets_met(&rows), (2, 4));
        assert!(text_table(&rows).contains("SPEC targets met: 2 of 4"));
    }
}
