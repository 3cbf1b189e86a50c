//! `risk-infer`: score rasters into risk class maps. Argument parsing, logging, the
//! progress bar, what is printed and exit codes only: the run is planned by
//! `risk_inference::pipeline::jobs` and each raster scored by `risk_inference::pipeline`.
//!
//! Exit codes: 0 all inputs scored (or skipped), 1 a runtime failure (any input failed;
//! the others still run), 2 a usage error (bad arguments or limits, or an output path
//! that is not named .tif, or is an input, another output, a folder, device or FIFO: all
//! checked before any work), 130 / 143 interrupted by SIGINT / SIGTERM (temporary files
//! removed).

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use risk_inference::augment::Tta;
use risk_inference::autobatch::BatchSize;
use risk_inference::crf::LabelCompat;
use risk_inference::decision::{self, Decision};
use risk_inference::input_scale::InputScale;
use risk_inference::output::{check_outputs, check_raster_output};
use risk_inference::pipeline::jobs::{self, Job, Request, Run, SetupError};
use risk_inference::pipeline::{self, Outputs, ProbsType, RunReport};
use risk_inference::raster::InputRaster;
use risk_inference::session::{Device, IoBindingMode, Model, SessionOptions};
use risk_inference::shard::Shard;
use tracing_subscriber::filter::{LevelFilter, Targets};

#[path = "common/log.rs"]
mod log;

/// Help headings, one per topic (`--help` lists them in the order of first use below).
const INPUT: &str = "Input";
const MODEL: &str = "Model";
const TILING: &str = "Tiling";
const CRF: &str = "CRF (edge clean-up)";
const OUTPUTS: &str = "Outputs";
const PERFORMANCE: &str = "Performance";
const GPU: &str = "GPU";

#[derive(Parser, Debug)]
#[command(
    name = "risk-infer",
    version,
    about = "Turn rasters into risk maps (one band: 0 Low, 1 Medium, 2 High, 255 nodata)",
    long_about = "Turn rasters into risk maps (one band: 0 Low, 1 Medium, 2 High, 255 nodata).\n\n\
        Each input raster (GeoTIFF or anything GDAL reads) is scored by an ONNX model in tiles and \
        written as a GeoTIFF on exactly the input's grid. The model's metadata says which bands it \
        reads and how; `--info MODEL` prints it. Use -h for the short help.",
    after_help = "Examples:\n  risk-infer scene.tif -o risk.tif\n  risk-infer a.tif b.tif --out-dir risk/ --skip-existing\n  risk-infer scene.tif -o risk.tif -m s42.onnx -m s123.onnx -m s456.onnx --tta d4 --uncertainty unc.tif\n  risk-infer --list rasters.txt --out-dir risk/ --device cuda\n  risk-infer --info models/default.onnx\n  risk-infer big.tif -o parts/risk.2.tif --shard 2/4   # then: risk-infer mosaic parts/risk.*.tif -o risk.tif",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Input rasters (anything GDAL reads).
    #[arg(help_heading = INPUT)]
    inputs: Vec<PathBuf>,
    /// Text file with one input path per line (blank lines and # comments ignored).
    #[arg(long, help_heading = INPUT)]
    list: Option<PathBuf>,
    /// Input bands fed to the model, 1-based, e.g. 3,2,1 (default: the model's).
    #[arg(long, value_delimiter = ',', help_heading = INPUT)]
    bands: Option<Vec<usize>>,
    /// How pixel values are scaled when the raster's type is not the model's: auto, model or
    /// a factor.
    ///
    /// auto (the default): a uint16 raster for a uint8 model is read as reflectance x 10000,
    /// with a warning; other types are refused. model: the model's own risk.scale, whatever
    /// the type. A number: raw value x number replaces risk.scale.
    #[arg(long, default_value = "auto", help_heading = INPUT)]
    input_scale: InputScale,
    /// Output risk map, a .tif (one input only).
    #[arg(short, long, help_heading = OUTPUTS)]
    output: Option<PathBuf>,
    /// Output folder for many inputs: <name>_risk.tif per input.
    #[arg(long, help_heading = OUTPUTS)]
    out_dir: Option<PathBuf>,
    /// Skip inputs whose output already exists (and is complete).
    #[arg(long, help_heading = OUTPUTS)]
    skip_existing: bool,
    /// Also write the class probabilities (3 bands) to this .tif (one input only).
    #[arg(long, help_heading = OUTPUTS)]
    probs: Option<PathBuf>,
    /// Pixel type of --probs: u8 (x 255) or f32.
    #[arg(long, default_value = "u8", value_parser = ProbsTypeArg::parser(), help_heading = OUTPUTS)]
    probs_type: ProbsType,
    /// Also write a map of how unsure the model is to this .tif (one input only).
    ///
    /// Band 1: the normalised predictive entropy (0 sure .. 1 unsure). With an ensemble,
    /// --tta or --scales, band 2: how much the views disagree (the normalised mutual
    /// information between views, i.e. the epistemic part).
    #[arg(long, help_heading = OUTPUTS)]
    uncertainty: Option<PathBuf>,
    /// Pixel type of --uncertainty: f32 or u8 (x 255).
    #[arg(long, default_value = "f32", value_parser = ProbsTypeArg::parser(), help_heading = OUTPUTS)]
    uncertainty_type: ProbsType,
    /// Build overviews, for fast display when zoomed out (factors 2, 4, 8, ... while the
    /// overview is at least 256 px).
    #[arg(long, help_heading = OUTPUTS)]
    overviews: bool,
    /// Write Cloud Optimized GeoTIFFs (internal overviews chosen by GDAL's COG driver).
    #[arg(long, help_heading = OUTPUTS)]
    cog: bool,
    #[command(flatten)]
    zones: ZoneArgs,
    /// Also write a labelling queue: the N windows where the model is least sure about
    /// Medium (P(Medium) x (entropy + mutual information)), ranked, non-overlapping, as
    /// rectangles with their scores in a .gpkg or .geojson file (one input only).
    #[arg(long, num_args = 2, value_names = ["N", "FILE"], help_heading = OUTPUTS)]
    review: Option<Vec<String>>,
    /// Side of the --review windows in pixels.
    #[arg(long, default_value_t = 256, value_name = "PX", requires = "review", help_heading = OUTPUTS)]
    review_size: usize,
    /// ONNX model (default: $RISK_MODEL, else the shipped models/default.onnx). Repeat for an
    /// ensemble: the models' probabilities are averaged.
    ///
    /// The models of an ensemble must share bands, normalisation and tiling.
    #[arg(short, long, help_heading = MODEL)]
    model: Vec<PathBuf>,
    /// Print a model's metadata (an .onnx file: bands, scaling, tile size, CRF, decision
    /// rule), or an output raster's provenance and class table, and exit.
    #[arg(long, value_name = "MODEL|RASTER", help_heading = MODEL)]
    info: Option<PathBuf>,
    /// How probabilities become classes: model (the model's fitted rule, else the most
    /// probable class) or argmax (always the most probable class).
    ///
    /// The model's rule is its risk.decision metadata: per-class offsets added to the log
    /// probabilities. It applies after blending and the ensemble / TTA average, and to the
    /// CRF's output when the CRF runs.
    #[arg(long, value_enum, default_value_t = DecisionChoice::Model, help_heading = MODEL)]
    decision: DecisionChoice,
    /// Test-time augmentation: also run each tile flipped (flips: 4 views) or flipped and
    /// rotated (d4: 8 views) and average; slower, often a little better.
    ///
    /// Each view's prediction is turned back before the average.
    #[arg(long, default_value = "none", value_parser = TtaArg::parser(), help_heading = MODEL)]
    tta: Tta,
    /// Also run the tiles resized by these factors, e.g. 0.75,1,1.25, and average.
    ///
    /// Tiles are resampled (bilinear) by each factor, predicted, brought back to the native
    /// grid and averaged.
    #[arg(long, value_delimiter = ',', default_value = "1", value_parser = parse_scale, help_heading = MODEL)]
    scales: Vec<f32>,
    /// Tile side in pixels, a multiple of 32, at least 64 (default: the model's).
    #[arg(long, value_parser = parse_tile, help_heading = TILING)]
    tile: Option<usize>,
    /// Tile overlap in pixels, less than half the tile (default: the model's).
    #[arg(long, help_heading = TILING)]
    overlap: Option<usize>,
    /// Run part I of N (0-based), e.g. one part per cluster job; `risk-infer mosaic` joins
    /// the parts.
    ///
    /// E.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT. For one input, a band of its rows
    /// (the output covers those rows only; `risk-infer mosaic` joins the parts into the
    /// single run's map); for many inputs, every N-th input.
    #[arg(long, value_name = "I/N", help_heading = TILING)]
    shard: Option<Shard>,
    /// Edge-following clean-up of the map (a dense CRF): model (the default: as the model
    /// says), off, default (the CRF's standard settings) or enhanced.
    #[arg(long, value_enum, default_value_t = CrfChoice::Model, help_heading = CRF)]
    crf: CrfChoice,
    /// Clean-up rounds (0 to 100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=MAX_CRF_ITERS as i64), help_heading = CRF)]
    crf_iters: Option<u32>,
    /// Width in pixels of the plain smoothing kernel (Gaussian sxy).
    #[arg(long, help_heading = CRF)]
    crf_gaussian_sxy: Option<f32>,
    /// Weight of the plain smoothing kernel (Gaussian Potts weight).
    #[arg(long, help_heading = CRF)]
    crf_gaussian_compat: Option<f32>,
    /// Width in pixels of the colour-aware kernel (bilateral sxy).
    #[arg(long, help_heading = CRF)]
    crf_bilateral_sxy: Option<f32>,
    /// Colour tolerance of the colour-aware kernel, in 8-bit units (bilateral srgb).
    #[arg(long, help_heading = CRF)]
    crf_bilateral_srgb: Option<f32>,
    /// Weight of the colour-aware kernel (bilateral Potts weight).
    #[arg(long, help_heading = CRF)]
    crf_bilateral_compat: Option<f32>,
    /// Cost of two neighbouring classes: potts, ordinal (Low beside High costs more than
    /// either beside Medium) or 9 numbers.
    ///
    /// potts: every pair of different classes costs the same. ordinal: cost w |i - j|. Nine
    /// comma-separated numbers: a 3x3 cost matrix, row by row (pydensecrf's
    /// MatrixCompatibility, scaled by each kernel's weight).
    #[arg(long, value_name = "potts|ordinal|a,b,c,...", value_parser = LabelCompat::parse, help_heading = CRF)]
    crf_compat: Option<LabelCompat>,
    /// Largest clean-up tile side in pixels (margin included; reduced to fit
    /// --memory-budget).
    #[arg(long, default_value_t = 8192, help_heading = CRF)]
    crf_tile: usize,
    /// Margin in pixels around each clean-up tile, dropped afterwards.
    #[arg(long, default_value_t = 256, help_heading = CRF)]
    crf_halo: usize,
    /// Colour bands the clean-up follows, 1-based (default: the model's first three).
    #[arg(long, value_delimiter = ',', help_heading = CRF)]
    crf_bands: Option<Vec<usize>>,
    /// CPU threads for the model and the clean-up (default: all cores; at most 4x the
    /// cores).
    ///
    /// Sets ONNX Runtime's intra-op threads and the CRF's thread pool: a Slurm task's or a
    /// pod's CPU share rather than the node's cores.
    #[arg(long, default_value_t = 0, value_parser = parse_threads, help_heading = PERFORMANCE)]
    threads: usize,
    /// Tiles per model run, or auto (finds the fastest).
    ///
    /// auto: doubled from 1 while the tiles/s rise by 10%, up to 64, a quarter of
    /// --memory-budget, or a failed run (GPU memory); probed once per tile shape and logged.
    #[arg(long, default_value = "4", help_heading = PERFORMANCE)]
    batch: BatchSize,
    /// Memory for the pipeline's buffers, e.g. 512M, 2G.
    #[arg(long, default_value = "2G", value_parser = parse_bytes, help_heading = PERFORMANCE)]
    memory_budget: usize,
    /// Where the model runs: auto (TensorRT, else CUDA, else the CPU), cpu, cuda or
    /// tensorrt.
    #[arg(long, default_value = "auto", value_parser = DeviceArg::parser(), help_heading = GPU)]
    device: Device,
    /// Which GPU, for cuda / tensorrt.
    #[arg(long, default_value_t = 0, help_heading = GPU)]
    device_id: i32,
    /// TensorRT: allow half-precision (faster, slightly less exact).
    #[arg(long, help_heading = GPU)]
    trt_fp16: bool,
    /// TensorRT: folder to keep its compiled engines in between runs.
    #[arg(long, help_heading = GPU)]
    trt_cache: Option<PathBuf>,
    /// Faster transfers to the GPU: auto (on for cuda / tensorrt, off on the CPU), on or
    /// off.
    ///
    /// On: batches go through page-locked host tensors bound to the session (ONNX Runtime's
    /// IO binding).
    #[arg(long, default_value = "auto", value_parser = IoBindingArg::parser(), help_heading = GPU)]
    io_binding: IoBindingMode,
    /// Only errors on stderr; no progress bar.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Join the parts of a sharded run (or any rasters on one pixel grid) into one GeoTIFF.
    Mosaic {
        /// Part rasters: same CRS, pixel size, bands and pixel type; disjoint.
        #[arg(required = true)]
        parts: Vec<PathBuf>,
        /// Output GeoTIFF (.tif).
        #[arg(short, long)]
        output: PathBuf,
        /// Build overviews (factors 2, 4, 8, ... while the overview is at least 256 px).
        #[arg(long)]
        overviews: bool,
        /// Write a Cloud Optimized GeoTIFF.
        #[arg(long)]
        cog: bool,
        #[command(flatten)]
        zones: ZoneArgs,
        /// With --vector: the joined probabilities of the same run (`risk-infer mosaic` of
        /// the --probs parts), for each zone's mean probability.
        #[arg(long, value_name = "RASTER", requires = "vector")]
        probs: Option<PathBuf>,
        /// With --vector: the joined uncertainty of the same run, for each zone's means.
        #[arg(long, value_name = "RASTER", requires = "vector")]
        uncertainty: Option<PathBuf>,
    },
}

/// Vector risk zones (see `risk_inference::vector`).
#[derive(clap::Args, Debug, Clone)]
struct ZoneArgs {
    /// Also write the risk zones as polygons (one per connected zone of one class, with
    /// class, name, pixels, area, and the mean probability / uncertainty when --probs /
    /// --uncertainty are written) to this .gpkg (GeoPackage) or .geojson file.
    #[arg(long, value_name = "FILE", help_heading = OUTPUTS)]
    vector: Option<PathBuf>,
    /// Zones smaller than this many pixels are merged into their largest neighbour before
    /// polygonising (GDAL's sieve; specks enclosed by nodata are dropped).
    #[arg(long, default_value_t = 0, value_name = "PIXELS", requires = "vector", help_heading = OUTPUTS)]
    min_area: usize,
    /// Zones join pixels that touch at a corner, not only along an edge.
    #[arg(long, requires = "vector", help_heading = OUTPUTS)]
    eight_connected: bool,
}

impl ZoneArgs {
    /// Writes the zones of the finished class map `classes`, when asked.
    fn write(&self, classes: &Path, probs: Option<&Path>, uncertainty: Option<&Path>) -> anyhow::Result<()> {
        let Some(out) = &self.vector else { return Ok(()) };
        let t0 = std::time::Instant::now();
        let opts = risk_inference::vector::ZoneOptions {
            min_area: self.min_area,
            eight_connected: self.eight_connected,
            probs: probs.map(Path::to_path_buf),
            uncertainty: uncertainty.map(Path::to_path_buf),
            ..Default::default()
        };
        let r = risk_inference::vector::write_zones(classes, out, &opts)?;
        let names = risk_inference::classes::CLASS_NAMES;
        tracing::info!(
            "{} -> {}: {} zone(s) ({}){} in {:.2} s; area in {}",
            classes.display(),
            out.display(),
            r.zones.iter().sum::<usize>(),
            (0..names.len())
                .map(|c| format!("{} {}", names[c], r.zones[c]))
                .collect::<Vec<_>>()
                .join(", "),
            if r.dropped > 0 {
                format!(", {} speck(s) enclosed by nodata dropped", r.dropped)
            } else {
                String::new()
            },
            t0.elapsed().as_secs_f64(),
            r.area_field
        );
        Ok(())
    }

    /// The usage checks: a known extension.
    fn check(&self) -> Result<(), Usage> {
        match &self.vector {
            Some(p) => risk_inference::vector::driver_for(p)
                .map(|_| ())
                .map_err(|e| Usage(e.to_string())),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CrfChoice {
    /// As the model's metadata says (risk.crf), else off. This is the default.
    Model,
    /// No clean-up.
    Off,
    /// The CRF's standard settings (its own name; not this option's default).
    Default,
    /// Stronger settings: more rounds, larger weights.
    Enhanced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum DecisionChoice {
    /// The model's fitted rule (risk.decision), else argmax. This is the default.
    Model,
    /// The most probable class.
    Argmax,
}

/// Most CRF mean-field iterations (pydensecrf's runs converge in 5 to 10).
const MAX_CRF_ITERS: usize = 100;

/// Threads: 0 (all cores) up to 4x the cores this process may use.
fn parse_threads(s: &str) -> Result<usize, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max = 4 * cores;
    match s.trim().parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "{s:?}: accepted range 0 (all cores) to {max} (4x the {cores} cores)"
        )),
    }
}

/// Tile side: a multiple of 32 (the model's downsampling), at least 64.
fn parse_tile(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 64 && n % 32 == 0 => Ok(n),
        _ => Err(format!(
            "{s:?}: must be a multiple of 32, at least 64 (e.g. 256, 512)"
        )),
    }
}

fn parse_scale(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && (0.125..=8.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a scale factor between 0.125 and 8")),
    }
}

fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1usize << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 512M or 2G"))?;
    if v <= 0.0 {
        return Err("the memory budget must be positive".into());
    }
    Ok((v * mult as f64) as usize)
}

/// A usage error: printed like clap's, exit code 2.
struct Usage(String);

fn print_info(path: &Path) -> anyhow::Result<()> {
    let model = Model::load(
        path,
        &SessionOptions {
            device: Device::Cpu,
            ..SessionOptions::default()
        },
    )?;
    let info = model.info();
    let mut s = String::new();
    writeln!(s, "model        {}", path.display())?;
    writeln!(s, "version      {}", info.version.as_deref().unwrap_or("-"))?;
    writeln!(
        s,
        "input        image float{} (N, {}, H, W), H and W multiples of 32",
        if info.fp16 { 16 } else { 32 },
        info.channels
    )?;
    writeln!(
        s,
        "outputs      probs (N, 3, H, W){}",
        if info.has_ordinal {
            ", ordinal (N, 2, H, W)"
        } else {
            ""
        }
    )?;
    writeln!(s, "bands        {:?}", info.bands)?;
    match &info.scale {
        Some(v) => writeln!(s, "scale        {v:?}")?,
        None => writeln!(s, "scale        1/255 for Byte rasters, else 1")?,
    }
    writeln!(s, "mean         {:?}", info.mean)?;
    writeln!(s, "std          {:?}", info.std)?;
    writeln!(s, "classes      {}", info.class_names.join(", "))?;
    writeln!(
        s,
        "tile         {} px, overlap {} px",
        info.tile_size, info.tile_overlap
    )?;
    writeln!(s, "crf          {}", info.crf.as_deref().unwrap_or("off"))?;
    let rule = Decision::of_model(&model)?;
    let fitted = info
        .properties
        .get(decision::METADATA_KEY)
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
        .map(|v| match (&v["feasible"], &v["fallback"]) {
            (serde_json::Value::Bool(true), _) => {
                " (meets the fit's targets on its validation pixels)".to_string()
            }
            (serde_json::Value::Bool(false), f) => format!(
                " (targets NOT reachable on its validation pixels; fallback: {})",
                f.as_str().unwrap_or("-")
            ),
            _ => String::new(),
        })
        .unwrap_or_default();
    writeln!(s, "decision     {}{fitted}", rule.describe())?;
    writeln!(s, "properties:")?;
    for (k, v) in &info.properties {
        writeln!(s, "  {k} = {v}")?;
    }
    print_text(&s)
}

fn print_text(s: &str) -> anyhow::Result<()> {
    // `risk-infer --info m.onnx | head` closes the pipe early: not an error.
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn run(cli: Cli) -> Result<bool, anyhow::Error> {
    if let Some(Command::Mosaic {
        parts,
        output,
        overviews,
        cog,
        zones,
        probs,
        uncertainty,
    }) = &cli.command
    {
        zones.check()?;
        let done = mosaic(parts, output, *overviews || *cog, *cog, zones.vector.as_deref())?;
        zones.write(output, probs.as_deref(), uncertainty.as_deref())?;
        return Ok(done);
    }
    if let Some(path) = &cli.info {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx")) {
            print_info(path)?;
        } else {
            print_text(&risk_inference::provenance::describe_raster(path)?)?;
        }
        return Ok(true);
    }
    let Some(mut run) = Run::prepare(&request_of(&cli)).map_err(usage_or_error)? else {
        return Ok(true);
    };
    let show_bar = !cli.quiet && std::io::stderr().is_terminal();
    let mut failed = Vec::new();
    let (mut done, mut skipped) = (0, 0);
    for job in run.jobs.clone() {
        match run.finished(&job) {
            Some(Ok(())) => {
                tracing::info!("{}: exists, skipped", job.output.display());
                skipped += 1;
                continue;
            }
            Some(Err(why)) => tracing::info!("{}: exists but {why}; scoring again", job.output.display()),
            None => {}
        }
        match score(&cli, &mut run, &job, show_bar) {
            Ok(()) => done += 1,
            Err(line) => {
                say(&line);
                failed.push(job.input.clone());
            }
        }
    }
    if run.jobs.len() > 1 {
        tracing::info!("{done} scored, {skipped} skipped, {} failed", failed.len());
        for f in &failed {
            tracing::info!("failed: {}", f.display());
        }
    }
    Ok(failed.is_empty())
}

/// Scores one job, then writes its zones and review queue; `Err` is the line to print.
fn score(cli: &Cli, run: &mut Run, job: &Job, show_bar: bool) -> Result<(), String> {
    let opts = run.options(job);
    let outputs = run.outputs(job);
    let bar = show_bar.then(|| progress_bar(&job.input));
    let mut progress = |d: usize, total: usize| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(d as u64);
        }
    };
    let result = pipeline::run(
        &mut run.predictor,
        &job.input,
        &outputs.outputs,
        &opts,
        &mut progress,
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result.map_err(|e| format!("risk-infer: error: {e}"))?;
    log_report(job, &report);
    let error = |e: anyhow::Error| format!("risk-infer: error: {e:#}");
    cli.zones
        .write(&job.output, cli.probs.as_deref(), cli.uncertainty.as_deref())
        .map_err(error)?;
    if let Some((n, path)) = &run.review {
        write_review(&job.output, &outputs.outputs, *n, run.review_size, path).map_err(error)?;
    }
    Ok(())
}

/// The progress bar of one input's tiles.
fn progress_bar(input: &Path) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tiles {elapsed} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(
        input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    bar
}

/// What one job did: sizes, tiles, times, class shares (and before the CRF); the JSON
/// timings at debug level.
fn log_report(job: &Job, report: &RunReport) {
    tracing::info!(
        "{} -> {}: {}x{}, {} tiles (batch {}) in {:.2} s (model {:.2} s{}); {}",
        job.input.display(),
        job.output.display(),
        report.width,
        report.height,
        report.tiles,
        report.batch,
        report.total_s,
        report.model_s,
        report
            .crf
            .as_ref()
            .map(|c| format!(", CRF {:.2} s in {} tile(s)", c.crf_s, c.tiles))
            .unwrap_or_default(),
        shares(&report.class_counts)
    );
    if let Some(before) = report.class_counts_before_crf {
        tracing::info!(
            "class shares before the CRF: {}; after: {}",
            shares(&before),
            shares(&report.class_counts)
        );
    }
    tracing::debug!("timings {}", serde_json::to_string(report).unwrap_or_default());
}

/// The library's request: the command line's choices as plain data.
fn request_of(cli: &Cli) -> Request {
    Request {
        inputs: cli.inputs.clone(),
        list: cli.list.clone(),
        output: cli.output.clone(),
        out_dir: cli.out_dir.clone(),
        skip_existing: cli.skip_existing,
        probs: cli.probs.clone().map(|p| (p, cli.probs_type)),
        uncertainty: cli.uncertainty.clone().map(|p| (p, cli.uncertainty_type)),
        overviews: cli.overviews,
        cog: cli.cog,
        vector: cli.zones.vector.clone(),
        review: cli.review.as_ref().map(|v| (v[0].clone(), v[1].clone())),
        review_size: cli.review_size,
        models: cli.model.clone(),
        bands: cli.bands.clone(),
        input_scale: cli.input_scale,
        decision: match cli.decision {
            DecisionChoice::Model => jobs::DecisionChoice::Model,
            DecisionChoice::Argmax => jobs::DecisionChoice::Argmax,
        },
        tta: cli.tta,
        scales: cli.scales.clone(),
        tile: cli.tile,
        overlap: cli.overlap,
        shard: cli.shard,
        crf: match cli.crf {
            CrfChoice::Model => jobs::CrfChoice::Model,
            CrfChoice::Off => jobs::CrfChoice::Off,
            CrfChoice::Default => jobs::CrfChoice::Default,
            CrfChoice::Enhanced => jobs::CrfChoice::Enhanced,
        },
        crf_overrides: jobs::CrfOverrides {
            iterations: cli.crf_iters,
            gaussian_sxy: cli.crf_gaussian_sxy,
            gaussian_compat: cli.crf_gaussian_compat,
            bilateral_sxy: cli.crf_bilateral_sxy,
            bilateral_srgb: cli.crf_bilateral_srgb,
            bilateral_compat: cli.crf_bilateral_compat,
            compat: cli.crf_compat,
        },
        crf_tile: cli.crf_tile,
        crf_halo: cli.crf_halo,
        crf_bands: cli.crf_bands.clone(),
        batch: cli.batch,
        memory_budget: cli.memory_budget,
        session: SessionOptions {
            device: cli.device,
            threads: cli.threads,
            device_id: cli.device_id,
            trt_fp16: cli.trt_fp16,
            trt_cache: cli.trt_cache.clone(),
            io_binding: cli.io_binding,
            ..SessionOptions::default()
        },
    }
}

/// A usage error of the plan exits with 2, like clap's; any other with 1.
fn usage_or_error(e: SetupError) -> anyhow::Error {
    if e.is_usage() {
        Usage(e.to_string()).into()
    } else {
        e.into()
    }
}

/// Ranks and writes the labelling queue of a finished run.
fn write_review(classes: &Path, outputs: &Outputs, n: usize, size: usize, path: &Path) -> anyhow::Result<()> {
    let probs = &outputs
        .probs
        .as_ref()
        .expect("probabilities are written with --review")
        .0;
    let unc = outputs.uncertainty.as_ref().map(|(p, _)| p.as_path());
    let queue = risk_inference::review::rank_windows(probs, unc, n, size)?;
    let map = InputRaster::open(classes)?;
    let provenance =
        risk_inference::provenance::derived(&map, format!("review queue ({n} windows of {size} px)"));
    risk_inference::review::write_queue(path, &queue, &map.georef(), &provenance)?;
    tracing::info!(
        "{} -> {}: {} window(s) of {size} px, scores {:.3} .. {:.3}",
        classes.display(),
        path.display(),
        queue.len(),
        queue.first().map_or(0.0, |c| c.score),
        queue.last().map_or(0.0, |c| c.score)
    );
    Ok(())
}

/// `risk-infer mosaic`: joins part rasters into `output`.
fn mosaic(
    parts: &[PathBuf],
    output: &Path,
    overviews: bool,
    cog: bool,
    vector: Option<&Path>,
) -> anyhow::Result<bool> {
    let inputs: Vec<&Path> = parts.iter().map(PathBuf::as_path).collect();
    let mut outputs = vec![("-o", output)];
    outputs.extend(vector.map(|v| ("--vector", v)));
    let usage = |e: risk_inference::output::OutputPathError| Usage(e.to_string());
    check_outputs(&inputs, &outputs).map_err(usage)?;
    check_raster_output("-o", output).map_err(usage)?;
    let t0 = std::time::Instant::now();
    let report = risk_inference::shard::mosaic(parts, output, overviews, cog)?;
    tracing::info!(
        "{} part(s) -> {}: {}x{}, {} band(s){} in {:.2} s",
        parts.len(),
        output.display(),
        report.width,
        report.height,
        report.bands,
        if report.uncovered > 0 {
            format!(", {} pixel(s) covered by no part (nodata)", report.uncovered)
        } else {
            String::new()
        },
        t0.elapsed().as_secs_f64()
    );
    Ok(true)
}

/// `Low 63.1% Medium 2.0% High 34.9% (nodata 4.2%)`: class shares of the labelled pixels,
/// then the nodata share of all pixels (a JPEG's compression or a cloud mask can make it
/// far from what one expects, and the class shares alone would hide it).
fn shares(counts: &[u64; 4]) -> String {
    let labelled = counts[..3].iter().sum::<u64>().max(1) as f64;
    let all = counts.iter().sum::<u64>().max(1) as f64;
    let s = |c: usize| 100.0 * counts[c] as f64 / labelled;
    format!(
        "Low {:.1}% Medium {:.1}% High {:.1}% (nodata {:.1}%)",
        s(0),
        s(1),
        s(2),
        100.0 * counts[3] as f64 / all
    )
}

/// One line on stderr; a closed or broken stderr is not a reason to panic.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn main() -> ExitCode {
    // First, before any thread starts: no telemetry from ONNX Runtime, and SIGINT /
    // SIGTERM remove this run's temporary files.
    risk_inference::session::disable_telemetry();
    risk_inference::output::install_signal_cleanup();
    let cli = Cli::parse();
    // Log level: errors only with --quiet, else RUST_LOG's level (e.g. `debug` adds the
    // JSON timings), else info; ONNX Runtime's own messages from warnings up.
    let level = if cli.quiet {
        LevelFilter::ERROR
    } else {
        log::env_level()
    };
    log::init(
        Targets::new()
            .with_default(level)
            .with_target("ort", LevelFilter::WARN.min(level)),
    );
    risk_inference::raster::quiet_gdal_errors();
    // --threads caps the CRF's rayon pool too, not only ONNX Runtime (a Slurm task's or a
    // pod's CPU share, not the node's cores).
    if cli.threads > 0 {
        // Fails only if a pool was already built, which nothing here does before.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(cli.threads)
            .build_global();
    }
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            if let Some(Usage(msg)) = e.downcast_ref::<Usage>() {
                say(&format!("risk-infer: usage error: {msg}"));
                return ExitCode::from(2);
            }
            say(&format!("risk-infer: error: {e:#}"));
            ExitCode::from(1)
        }
    }
}

impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

#[cfg(test)]
mod tests {
    #[test]
    fn shares_give_classes_of_labelled_pixels_and_nodata_of_all() {
        assert_eq!(
            super::shares(&[1, 1, 2, 4]),
            "Low 25.0% Medium 25.0% High 50.0% (nodata 50.0%)"
        );
        assert_eq!(
            super::shares(&[0, 0, 0, 0]),
            "Low 0.0% Medium 0.0% High 0.0% (nodata 0.0%)"
        );
    }
}

/// Command-line spellings and help of the library's enums (the library has no clap): each
/// mirror parses with clap's `ValueEnum` and maps to the library's value.
macro_rules! cli_mirror {
    ($(#[$doc:meta])* $arg:ident => $lib:ty { $($(#[$vdoc:meta])* $v:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
        enum $arg {
            $($(#[$vdoc])* $v),+
        }

        impl $arg {
            /// The parser of the field: the mirror's values, mapped to the library's.
            fn parser() -> impl clap::builder::TypedValueParser<Value = $lib> {
                use clap::builder::TypedValueParser as _;
                clap::builder::EnumValueParser::<$arg>::new().map(|v| match v {
                    $($arg::$v => <$lib>::$v),+
                })
            }
        }
    };
}

cli_mirror!(
    /// `--tta`: [`Tta`].
    TtaArg => Tta {
        /// The tile as it is.
        None,
        /// Identity, left-right flip, up-down flip, both (4 views).
        Flips,
        /// The eight symmetries of the square: flips, rotations by 90/180/270 degrees and
        /// the two diagonal reflections (8 views).
        D4,
    }
);

cli_mirror!(
    /// `--device`: [`Device`].
    DeviceArg => Device {
        /// TensorRT, else CUDA, else CPU.
        Auto,
        Cpu,
        Cuda,
        Tensorrt,
    }
);

cli_mirror!(
    /// `--io-binding`: [`IoBindingMode`].
    IoBindingArg => IoBindingMode {
        /// On for CUDA and TensorRT, off on the CPU.
        Auto,
        On,
        Off,
    }
);

cli_mirror!(
    /// `--probs-type`, `--uncertainty-type`: [`ProbsType`].
    ProbsTypeArg => ProbsType {
        /// Value x 255, rounded, at most 254 (255 is nodata, set only where the input is
        /// nodata).
        U8,
        /// Values as float32, nodata -1.
        F32,
    }
);
