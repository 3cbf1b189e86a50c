//! risk-crf: the dense CRF on `.npy` arrays, in the formats of the pydensecrf harness
//! (`bench/reference/crf_harness.py`), so that its `compare` checks it directly and anyone
//! can benchmark it.
//!
//!     risk-crf --img img.npy (--prob prob.npy | --unary unary.npy) --preset enhanced \
//!              [--iters K] [--compat potts|ordinal|a,b,...] [--tile 8192 --halo 256] -o DIR
//!
//! Inputs: `img.npy` uint8 (H, W, 3); `prob.npy` or `unary.npy` float32 (3, H, W).
//! Writes `DIR/labels.npy` uint8 (H, W) and `DIR/Q.npy` float32 (3, H, W); prints the
//! timings and class shares as one JSON line. Exit codes: 0 ok, 1 failure, 2 usage.
//! Log lines go to stderr (`RISK_CRF_TIMING=1`: the CRF's build / inference split,
//! `risk-crf timing: ...`; `RUST_LOG=debug` for more).
//! `--out` is still accepted for `-o/--output` (older scripts).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use risk_inference::crf::{self, CrfParams, CrfTiling, LabelCompat};
use risk_inference::npy::{read_npy, write_npy};
use tracing_subscriber::filter::Targets;

#[path = "common/log.rs"]
mod log;

#[derive(Parser, Debug)]
#[command(
    name = "risk-crf",
    version,
    about = "Run the edge clean-up (dense CRF, as pydensecrf computes it) alone on .npy arrays",
    long_about = "Run the edge clean-up (dense CRF, as pydensecrf computes it) alone on .npy arrays.\n\n\
        For checks against pydensecrf and for benchmarks; risk-infer runs the same CRF on rasters \
        (--crf). Writes labels.npy and Q.npy into the output folder and prints the timings as JSON.",
    after_help = "Example:\n  risk-crf --img img.npy --prob prob.npy --preset enhanced -o crf/"
)]
struct Args {
    /// Image, uint8 (H, W, 3).
    #[arg(long, help_heading = "Input")]
    img: PathBuf,
    /// Class probabilities, float32 (3, H, W); the unary is -ln(clip(p, 1e-5, 1)).
    #[arg(
        long,
        conflicts_with = "unary",
        required_unless_present = "unary",
        help_heading = "Input"
    )]
    prob: Option<PathBuf>,
    /// Unary energy, float32 (3, H, W).
    #[arg(long, help_heading = "Input")]
    unary: Option<PathBuf>,
    /// Settings: default (the CRF's standard ones) or enhanced (more rounds, larger weights).
    #[arg(long, default_value = "default", help_heading = "CRF")]
    preset: String,
    /// Override the number of rounds (mean-field iterations).
    #[arg(long, help_heading = "CRF")]
    iters: Option<usize>,
    /// Cost of two neighbouring classes: potts, ordinal (cost w |i - j|) or a 3x3 cost
    /// matrix as 9 comma-separated numbers, row by row (pydensecrf's MatrixCompatibility).
    #[arg(long, value_name = "potts|ordinal|a,b,c,...", value_parser = LabelCompat::parse, help_heading = "CRF")]
    compat: Option<LabelCompat>,
    /// Run in tiles of at most this side (margin included) when the image is larger.
    #[arg(long, default_value_t = CrfTiling::default().tile, help_heading = "CRF")]
    tile: usize,
    /// Margin of each tile in pixels.
    #[arg(long, default_value_t = CrfTiling::default().halo, help_heading = "CRF")]
    halo: usize,
    /// Output folder (created).
    #[arg(short, long, alias = "out", value_name = "DIR", help_heading = "Outputs")]
    output: PathBuf,
}

fn main() -> ExitCode {
    risk_inference::output::install_signal_cleanup();
    log::init(Targets::new().with_default(log::env_level()));
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "risk-crf: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut params = CrfParams::preset(&args.preset)?;
    if let Some(k) = args.iters {
        params.iterations = k;
    }
    if let Some(c) = args.compat {
        params.compat = c;
    }
    let tiling = CrfTiling {
        tile: args.tile,
        halo: args.halo,
    };
    let img = read_npy::<u8>(&args.img)?;
    let [height, width, 3] = img.shape[..] else {
        bail!(
            "{}: image shape {:?}, expected (H, W, 3) uint8",
            args.img.display(),
            img.shape
        );
    };
    let (input, is_prob) = match (&args.prob, &args.unary) {
        (Some(p), _) => (p, true),
        (None, Some(u)) => (u, false),
        (None, None) => bail!("give --prob or --unary"),
    };
    let arr = read_npy::<f32>(input)?;
    if arr.shape != [crf::LABELS, height, width] {
        bail!(
            "{}: shape {:?}, expected (3, {height}, {width}) to match the image",
            input.display(),
            arr.shape
        );
    }
    let mut buf = arr.data;
    let t_read = t0.elapsed().as_secs_f64();
    let n = width * height;
    let t1 = Instant::now();
    let plan = crf::tile_plan(width, height, &tiling)?;
    let shares_before = if is_prob {
        Some(crf::class_shares(&crf::labels_from_q(&buf, n)))
    } else {
        None
    };
    let q = if plan.len() == 1 {
        if is_prob {
            crf::unary_from_probs_in_place(&mut buf, width, height)?;
        }
        crf::dense_crf_in_place(&img.data, &mut buf, width, height, &params)?;
        buf
    } else {
        if !is_prob {
            bail!(
                "tiled runs take --prob (the image is larger than --tile {})",
                tiling.tile
            );
        }
        crf::dense_crf_tiled(&img.data, &buf, width, height, &params, &tiling)?
    };
    let t_crf = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let labels = crf::labels_from_q(&q, n);
    let shares_after = crf::class_shares(&labels);
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    write_npy(args.output.join("labels.npy"), &[height, width], &labels)?;
    write_npy(args.output.join("Q.npy"), &[crf::LABELS, height, width], &q)?;
    let t_write = t2.elapsed().as_secs_f64();
    let fmt = |s: [f64; 3]| format!("[{:.4}, {:.4}, {:.4}]", s[0], s[1], s[2]);
    let _ = writeln!(
        std::io::stdout(),
        "{{\"width\": {width}, \"height\": {height}, \"preset\": \"{}\", \"iterations\": {}, \"tiles\": {}, \
         \"threads\": {}, \"isa\": \"{:?}\", \"read_s\": {t_read:.4}, \"crf_s\": {t_crf:.4}, \
         \"write_s\": {t_write:.4}, \"total_s\": {:.4}, \"class_shares_before\": {}, \"class_shares_after\": {}}}",
        args.preset,
        params.iterations,
        plan.len(),
        rayon::current_num_threads(),
        crf::Isa::detect(),
        t0.elapsed().as_secs_f64(),
        shares_before.map_or("null".to_owned(), fmt),
        fmt(shares_after),
    );
    Ok(())
}
