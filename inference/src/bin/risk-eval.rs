//! `risk-eval`: compare a risk class map with a label raster, print the metrics against a
//! baseline and the SPEC targets, and write `metrics.json`, two PNGs and `report.md`.
//!
//! `risk-eval PRED --truth LABELS [-o DIR]`: the prediction is positional and the output
//! folder `-o/--output`, as in the other binaries; `--pred` and `--out` stay accepted
//! (hidden) so that older scripts keep working.
//!
//! Argument parsing and exit codes only (0 ok, 1 runtime failure, 2 usage error); the work
//! is [`risk_inference::metrics::report::evaluate_to_dir`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use risk_inference::decision::{self, Decision};
use risk_inference::metrics::report::{self, EvaluateRequest};
use risk_inference::session::{Device, Model, SessionOptions};

const INPUT: &str = "Input";
const OUTPUTS: &str = "Outputs";

#[derive(Parser, Debug)]
#[command(
    name = "risk-eval",
    version,
    about = "Score a risk map against labels: kappa, per-class precision and recall, plots and a report",
    long_about = "Score a risk map against labels: kappa, per-class precision and recall, plots and a report.\n\n\
        Both rasters hold classes 0 Low, 1 Medium, 2 High (255 nodata, left out) on one pixel grid. \
        Prints the metrics beside a baseline and the targets, and writes metrics.json, \
        confusion_matrix.png, quicklook.png and report.md into the output folder.",
    after_help = "Examples:\n  risk-eval risk.tif --truth labels.tif -o eval/\n  risk-eval risk.tif --truth labels.tif --baseline models/v2_baseline_metrics.json\n  risk-eval --probs probs.tif --decision-model model.onnx --truth labels.tif -o eval/"
)]
struct Args {
    /// Predicted risk map (e.g. the output of risk-infer).
    #[arg(
        value_name = "PRED",
        required_unless_present_any = ["pred", "probs"],
        conflicts_with_all = ["pred", "probs"],
        help_heading = INPUT
    )]
    prediction: Option<PathBuf>,
    /// The predicted risk map, as a flag (scripts written before PRED was positional).
    #[arg(long, value_name = "RASTER", hide = true, conflicts_with = "probs")]
    pred: Option<PathBuf>,
    /// Label raster on the same pixel grid (same size, geotransform and CRS).
    #[arg(long, value_name = "RASTER", help_heading = INPUT)]
    truth: PathBuf,
    /// Score class probabilities instead of a map (risk-infer --probs, u8 or f32).
    ///
    /// They become classes by --decision-model's rule (its risk.decision metadata; the most
    /// probable class without it), written to <output>/classes.tif and scored.
    #[arg(long, value_name = "RASTER", help_heading = INPUT)]
    probs: Option<PathBuf>,
    /// ONNX model whose decision rule turns --probs into classes.
    #[arg(long, value_name = "MODEL", help_heading = INPUT)]
    decision_model: Option<PathBuf>,
    /// metrics.json to compare with, e.g. models/v2_baseline_metrics.json.
    #[arg(long, value_name = "JSON", help_heading = INPUT)]
    baseline: Option<PathBuf>,
    /// Output folder [default: <PRED without extension>_eval beside the prediction].
    #[arg(short, long, alias = "out", value_name = "DIR", help_heading = OUTPUTS)]
    output: Option<PathBuf>,
    /// Long side of each quicklook panel, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..=8192), help_heading = OUTPUTS)]
    quicklook_size: u32,
    /// Score only the pixels inside these windows (a `risk-infer --review` queue, or any
    /// vector file of rectangles in the map's CRS): the map outside them is set to nodata
    /// in <output>/windows_pred.tif, which is scored.
    #[arg(long, value_name = "VECTOR", help_heading = INPUT)]
    windows: Option<PathBuf>,
}

/// The `risk.decision` rule of an ONNX model (argmax when it has none).
fn model_rule(path: &std::path::Path) -> anyhow::Result<Decision> {
    let options = SessionOptions {
        device: Device::Cpu,
        threads: 1,
        ..SessionOptions::default()
    };
    Ok(Decision::of_model(&Model::load(path, &options)?)?)
}

/// Refuses, before any work, an output folder where one of the files risk-eval writes
/// would replace an input (e.g. `--truth classes.tif` scored with `--probs ... -o .`).
fn check_no_input_is_overwritten(args: &Args, input: &Path, out_dir: &Path) -> anyhow::Result<()> {
    let inputs: Vec<&Path> = [Some(input), Some(args.truth.as_path())]
        .into_iter()
        .chain([
            args.baseline.as_deref(),
            args.decision_model.as_deref(),
            args.windows.as_deref(),
        ])
        .flatten()
        .collect();
    let mut names = vec![
        report::METRICS_JSON,
        report::CONFUSION_PNG,
        report::QUICKLOOK_PNG,
        report::REPORT_MD,
    ];
    if args.probs.is_some() {
        names.push("classes.tif");
    }
    if args.windows.is_some() {
        names.push("windows_pred.tif");
    }
    let files: Vec<PathBuf> = names.iter().map(|n| out_dir.join(n)).collect();
    let outputs: Vec<(&str, &Path)> = files
        .iter()
        .map(|f| ("written by risk-eval", f.as_path()))
        .collect();
    Ok(risk_inference::output::check_outputs(&inputs, &outputs)?)
}

fn run(args: Args) -> anyhow::Result<()> {
    risk_inference::raster::quiet_gdal_errors();
    let input = args
        .prediction
        .clone()
        .or(args.pred.clone())
        .or(args.probs.clone())
        .expect("clap requires one");
    let out_dir = args.output.clone().unwrap_or_else(|| {
        let stem = input
            .file_stem()
            .map_or("risk".into(), |s| s.to_string_lossy().into_owned());
        input.with_file_name(format!("{stem}_eval"))
    });
    check_no_input_is_overwritten(&args, &input, &out_dir)?;
    let prediction = match &args.probs {
        None => input,
        Some(probs) => {
            let rule = match &args.decision_model {
                None => Decision::default(),
                Some(m) => model_rule(m)?,
            };
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("{}: cannot create folder", out_dir.display()))?;
            let classes = out_dir.join("classes.tif");
            decision::classify_raster(probs, &rule, &classes)?;
            println!("decision: {}", rule.describe());
            classes
        }
    };
    let prediction = match &args.windows {
        None => prediction,
        Some(queue) => {
            let map = risk_inference::raster::InputRaster::open(&prediction)?;
            let windows =
                risk_inference::review::read_windows(queue, &map.georef(), map.width(), map.height())?;
            drop(map);
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("{}: cannot create folder", out_dir.display()))?;
            let masked = out_dir.join("windows_pred.tif");
            risk_inference::review::keep_windows(&prediction, &windows, &masked)?;
            println!("scored on the {} window(s) of {}", windows.len(), queue.display());
            masked
        }
    };
    let request = EvaluateRequest {
        prediction,
        truth: args.truth,
        baseline: args.baseline,
        out_dir,
        quicklook_max_side: args.quicklook_size as usize,
        strip_rows: None,
    };
    let outcome = report::evaluate_to_dir(&request).context("risk-eval")?;
    let mut text = report::text_table(&outcome.rows);
    for path in &outcome.written {
        text.push_str(&format!("wrote {}\n", path.display()));
    }
    // `risk-eval ... | head` closes stdout early: the files are written, not an error.
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    risk_inference::output::install_signal_cleanup();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if args.decision_model.is_some() && args.probs.is_none() {
        eprintln!("error: --decision-model needs --probs (a class map has no probabilities to decide on)");
        return ExitCode::from(2);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stderr is no reason to panic: the exit code still says it.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(1)
        }
    }
}
