//! `risk-eval`: compare a risk class map with a label raster, print the metrics against a
//! baseline and the SPEC targets, and write `metrics.json`, two PNGs and `report.md`.
//!
//! Argument parsing and exit codes only (0 ok, 1 runtime failure, 2 usage error); the work
//! is [`risk_inference::metrics::report::evaluate_to_dir`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use risk_inference::metrics::report::{self, EvaluateRequest};

/// Evaluate a risk class map (0 Low, 1 Medium, 2 High, 255 nodata) against labels.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Predicted class map (e.g. the output of risk-infer).
    #[arg(long, value_name = "RASTER")]
    pred: PathBuf,
    /// Label raster on the same pixel grid (same size, geotransform and CRS).
    #[arg(long, value_name = "RASTER")]
    truth: PathBuf,
    /// metrics.json to compare with, e.g. models/v2_baseline_metrics.json.
    #[arg(long, value_name = "JSON")]
    baseline: Option<PathBuf>,
    /// Output folder [default: <pred without extension>_eval beside the prediction].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Long side of each quicklook panel, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..=8192))]
    quicklook_size: u32,
}

fn run(args: Args) -> anyhow::Result<()> {
    risk_inference::raster::quiet_gdal_errors();
    let out_dir = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .pred
            .file_stem()
            .map_or("risk".into(), |s| s.to_string_lossy().into_owned());
        args.pred.with_file_name(format!("{stem}_eval"))
    });
    let request = EvaluateRequest {
        prediction: args.pred,
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
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stderr is no reason to panic: the exit code still says it.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(1)
        }
    }
}
