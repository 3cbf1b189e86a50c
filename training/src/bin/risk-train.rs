//! `risk-train`: command-line front end of the training crate (argument parsing and exit
//! codes only). Subcommands: `synth` (generate a synthetic scene), `fixtures`
//! (write the committed test scenes), `fit` (train per a config.yaml), `export` (write
//! a checkpoint as an ONNX model), `decide` (fit a model's decision rule on a validation
//! scene).
//! Exit codes: 0 ok, 1 runtime failure, 2 usage error (clap, or a bad config).
//!
//! One style with the other binaries: main inputs positional (`fit CONFIG`, `export
//! CHECKPOINT`, `decide MODEL`), outputs `-o/--output`; the older `fit --config` and
//! `fixtures --out` stay accepted (hidden) for scripts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// `eprintln!` that ignores a closed or broken stderr (`eprintln!` panics there: exit 101
/// instead of the run's own code).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
use clap::{Parser, Subcommand};
use risk_inference::raster::InputRaster;
use risk_training::config::{DataConfig, TrainConfig};
use risk_training::device::DeviceChoice;
use risk_training::model::{RiskUNet, UNetConfig};
use risk_training::onnx::{self, ExportOptions};
use risk_training::synth::stats::{PR_THRESHOLDS, Scene, SceneStats};
use risk_training::synth::{self, Generator, SynthConfig, SynthDtype};
use risk_training::train;

#[derive(Parser)]
#[command(
    name = "risk-train",
    version,
    about = "Train a risk model on an image and its labels, and export it for risk-infer (ONNX)",
    after_help = "Examples:\n  risk-train fit my.yaml\n  risk-train export out/runs/my/best.safetensors --config my.yaml -o my.onnx\n  risk-train synth --image scene.tif --labels labels.tif --width 512 --height 512"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic scene: an image GeoTIFF and its label GeoTIFF (0/1/2, 255 nodata).
    Synth {
        /// Output image GeoTIFF.
        #[arg(long)]
        image: PathBuf,
        /// Output label GeoTIFF.
        #[arg(long)]
        labels: PathBuf,
        #[arg(long, default_value_t = 1024)]
        width: usize,
        #[arg(long, default_value_t = 1024)]
        height: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Add a near-infrared fourth band.
        #[arg(long)]
        nir: bool,
        /// Pixel type of the image.
        #[arg(long, value_enum, default_value_t = DtypeArg::U8)]
        dtype: DtypeArg,
        /// Version of the generative model (v1: the fixtures' and the shipped model's).
        #[arg(long, value_enum, default_value_t = GeneratorArg::V2)]
        generator: GeneratorArg,
        /// Also write the oracle: per pixel the Bayes-optimal P(Low), P(Medium), P(High)
        /// given every latent field but `hidden` (float32, nodata -1).
        #[arg(long)]
        oracle: Option<PathBuf>,
    },
    /// Measure generated scenes per seed: Medium share, Medium-rich tiles, the per-pixel
    /// colour floor (fitted on --train-seed) and the oracle's metrics and Medium
    /// precision-recall curve.
    SynthStats {
        /// Scenes to measure.
        #[arg(long, value_delimiter = ',', default_values_t = [101, 102, 103])]
        seeds: Vec<u64>,
        /// Scene the colour classifier is fitted on.
        #[arg(long, default_value_t = 100)]
        train_seed: u64,
        /// Side of the square scenes in pixels.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        #[arg(long, value_enum, default_value_t = GeneratorArg::V2)]
        generator: GeneratorArg,
    },
    /// Write the committed test scenes (synth::FIXTURES) into a folder.
    Fixtures {
        /// Output folder.
        #[arg(short, long, alias = "out", value_name = "DIR", default_value = "fixtures")]
        output: PathBuf,
    },
    /// Train the model per a config.yaml (see training/config.yaml for every field).
    Fit(FitArgs),
    /// Export a checkpoint (safetensors of the variable store) as an ONNX model.
    Export(ExportArgs),
    /// Fit an ONNX model's decision rule (per-class logit offsets, `risk.decision`) on a
    /// validation scene that no training or test uses, and write the model with it.
    Decide(DecideArgs),
}

#[derive(clap::Args)]
struct DecideArgs {
    /// The ONNX model (an ensemble's first member: the one whose rule risk-infer applies).
    model: PathBuf,
    /// The other members of an ensemble (repeat): the rule is fitted on the average of all
    /// members' probabilities, as `risk-infer -m MODEL -m MEMBER ...` computes it.
    #[arg(long = "with", value_name = "MEMBER")]
    with: Vec<PathBuf>,
    /// Validation image (not a training or test scene).
    #[arg(long)]
    image: PathBuf,
    /// Its labels (0/1/2, 255 nodata).
    #[arg(long)]
    labels: PathBuf,
    /// Output ONNX file (may be the model itself).
    #[arg(short, long)]
    output: PathBuf,
}

/// Fits the decision rule of `model` on a validation scene and writes `output` with it;
/// returns the rule as stored (`risk.decision`).
fn decide(
    model: &std::path::Path,
    with: &[PathBuf],
    image: &std::path::Path,
    labels: &std::path::Path,
    output: &std::path::Path,
) -> anyhow::Result<String> {
    let members: Vec<&std::path::Path> = std::iter::once(model)
        .chain(with.iter().map(PathBuf::as_path))
        .collect();
    let fit = risk_training::decision::fit_on_scene(&members, image, labels, &Default::default())?;
    say!(
        "risk-train: decision rule {}",
        risk_training::decision::summary(&fit)
    );
    let value = fit.to_metadata(
        &image
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
    );
    risk_training::decision::set_metadata(model, output, risk_inference::decision::METADATA_KEY, &value)?;
    Ok(value)
}

#[derive(clap::Args)]
struct ExportArgs {
    /// Checkpoint written by `fit` (`best.safetensors`, `last.safetensors`).
    #[arg(required_unless_present = "random_init")]
    checkpoint: Option<PathBuf>,
    /// Output ONNX file.
    #[arg(short, long)]
    output: PathBuf,
    /// The run's config.yaml: network (encoder, attention, bands) and the normalisation
    /// written into the metadata, and the training images' pixel type (risk.input_type);
    /// without it, `--encoder` with RGB and ImageNet defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Encoder when no `--config` is given.
    #[arg(long, value_parser = ["b0", "b4"], default_value = "b4")]
    encoder: String,
    /// Float16 weights, input and outputs.
    #[arg(long)]
    fp16: bool,
    /// Export freshly initialised weights (seeded) instead of a checkpoint (for tests).
    #[arg(long, conflicts_with = "checkpoint")]
    random_init: bool,
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// `risk.model_version` metadata (default: the encoder and the checkpoint's name).
    #[arg(long)]
    model_version: Option<String>,
    /// Validation image to fit the decision rule on after the export (with --val-labels;
    /// see `risk-train decide`).
    #[arg(long, requires = "val_labels")]
    val_image: Option<PathBuf>,
    /// Labels of --val-image.
    #[arg(long, requires = "val_image")]
    val_labels: Option<PathBuf>,
    /// Extra or replaced metadata, `KEY=VALUE` (e.g. `risk.crf=enhanced`); repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    meta: Vec<(String, String)>,
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

/// `risk.metrics`: the validation metrics of the epoch the checkpoint comes from, read
/// from the run's `state.json` beside it (`best.safetensors`: the best epoch,
/// `last.safetensors`: the last one); `None` without a state file.
fn validation_metrics(checkpoint: &std::path::Path) -> anyhow::Result<Option<String>> {
    let state_path = checkpoint.with_file_name("state.json");
    if !state_path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&state_path).with_context(|| format!("reading {}", state_path.display()))?;
    let state: train::TrainState =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", state_path.display()))?;
    let is_best = checkpoint.file_name().is_some_and(|n| n == "best.safetensors");
    let epoch = if is_best {
        state.best_epoch
    } else {
        Some(state.epochs_done)
    };
    let Some(row) = epoch.and_then(|e| state.history.iter().find(|h| h.epoch == e)) else {
        return Ok(None);
    };
    let json = serde_json::json!({
        "split": "validation",
        "epoch": row.epoch,
        "epochs_trained": state.epochs_done,
        "val_loss": row.val_loss,
        "kappa": row.val_kappa,
        "precision_1": row.val_precision_1,
        "recall_2": row.val_recall_2,
        "spearman_rho": row.val_spearman,
    });
    Ok(Some(json.to_string()))
}

/// `risk.input_type`: GDAL's name of the pixel type of the training images' model bands
/// (`data.image` and every `data.scenes` image), the type whose values `data.scale` was
/// chosen for. risk-infer checks each raster against it (`risk_inference::input_scale`).
/// `Err` says why no single type can be stated: an image that cannot be read (e.g. an
/// export on another machine), or bands of more than one type.
fn training_input_type(data: &DataConfig) -> Result<String, String> {
    let images = std::iter::once(&data.image).chain(data.scenes.iter().map(|s| &s.image));
    let mut types: Vec<(String, &std::path::Path)> = Vec::new();
    for image in images {
        let raster = InputRaster::open(image).map_err(|e| e.to_string())?;
        for &band in &data.bands {
            let t = raster
                .band_type_name(band)
                .map_err(|e| format!("{}: {e}", image.display()))?;
            if !types.iter().any(|(seen, _)| *seen == t) {
                types.push((t, image));
            }
        }
    }
    match types.as_slice() {
        [(t, _)] => Ok(t.clone()),
        _ => Err(format!(
            "the training images mix pixel types: {}",
            types
                .iter()
                .map(|(t, p)| format!("{t} in {}", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let cfg_file = args.config.as_deref().map(TrainConfig::from_yaml).transpose()?;
    let unet = match &cfg_file {
        Some(c) => c.unet(),
        None if args.encoder == "b0" => UNetConfig::b0(),
        None => UNetConfig::b4(),
    };
    tch::manual_seed(args.seed);
    let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = RiskUNet::new(&vs.root(), &unet);
    if let Some(ckpt) = &args.checkpoint {
        vs.load(ckpt)
            .with_context(|| format!("loading checkpoint {}", ckpt.display()))?;
    }
    let mut metadata = onnx::default_metadata(&unet);
    if let Some(c) = &cfg_file {
        let join = |v: &[f64]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
        let bands: Vec<String> = c.data.bands.iter().map(|b| b.to_string()).collect();
        metadata.insert("risk.bands".into(), bands.join(","));
        metadata.insert("risk.scale".into(), (1.0 / c.data.scale).to_string());
        metadata.insert("risk.mean".into(), join(&c.data.mean));
        metadata.insert("risk.std".into(), join(&c.data.std));
        metadata.insert("risk.training".into(), serde_json::to_string(c)?);
        match training_input_type(&c.data) {
            Ok(t) => {
                metadata.insert("risk.input_type".into(), t);
            }
            Err(why) => say!(
                "risk-train: warning: risk.input_type not written ({why}); risk-infer will assume Byte \
                 if risk.scale is 1/255 and check nothing otherwise; pass --meta risk.input_type=TYPE to state it"
            ),
        }
    }
    let version = args.model_version.unwrap_or_else(|| match &args.checkpoint {
        Some(p) => format!("{} attention U-Net, {}", unet.encoder.name, p.display()),
        None => format!(
            "{} attention U-Net, random init seed {}",
            unet.encoder.name, args.seed
        ),
    });
    metadata.insert("risk.model_version".into(), version);
    if let Some(ckpt) = &args.checkpoint
        && let Some(m) = validation_metrics(ckpt)?
    {
        metadata.insert("risk.metrics".into(), m);
    }
    metadata.extend(args.meta);
    let options = ExportOptions {
        fp16: args.fp16,
        metadata,
    };
    if let (Some(image), Some(labels)) = (&args.val_image, &args.val_labels) {
        // The model without its rule is a temporary beside the output (removed when this
        // returns): the output appears only with its decision rule, or not at all.
        let undecided = risk_inference::output::TempOutput::new(&args.output, "undecided");
        onnx::write_model(&vs, &unet, &options, undecided.path())?;
        let value = decide(undecided.path(), &[], image, labels, &args.output)?;
        println!("risk.decision = {value}");
    } else {
        onnx::write_model(&vs, &unet, &options, &args.output)?;
    }
    println!(
        "{} -> {} ({}, opset {})",
        args.checkpoint
            .as_ref()
            .map_or("random init".into(), |p| p.display().to_string()),
        args.output.display(),
        if args.fp16 { "float16" } else { "float32" },
        onnx::OPSET
    );
    Ok(())
}

fn parse_device(s: &str) -> Result<DeviceChoice, risk_training::device::DeviceError> {
    s.parse()
}

#[derive(clap::Args)]
struct FitArgs {
    /// The run's config.yaml (see training/config.yaml for every field).
    #[arg(
        value_name = "CONFIG",
        required_unless_present = "config_flag",
        conflicts_with = "config_flag"
    )]
    config: Option<PathBuf>,
    /// The config as a flag (scripts written before CONFIG was positional).
    #[arg(long = "config", id = "config_flag", value_name = "CONFIG", hide = true)]
    config_flag: Option<PathBuf>,
    /// Continue from the run folder's last checkpoint and state.json.
    #[arg(long)]
    resume: bool,
    /// Override the config's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Train one model per seed (the ensemble), each in `<out>/seed<N>`.
    #[arg(long, value_delimiter = ',', conflicts_with = "seed")]
    seeds: Vec<u64>,
    /// Override the number of epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Start from these smp / efficientnet_pytorch safetensors weights.
    #[arg(long)]
    init_weights: Option<PathBuf>,
    /// Override compute.device: auto, cpu, cuda or cuda:N.
    #[arg(long, value_parser = parse_device)]
    device: Option<DeviceChoice>,
}

fn fit(args: FitArgs) -> anyhow::Result<()> {
    let FitArgs {
        config,
        config_flag,
        resume,
        seed,
        seeds,
        epochs,
        init_weights,
        device,
    } = args;
    let config = config.or(config_flag).expect("clap requires a config");
    let mut cfg = TrainConfig::from_yaml(&config)?;
    if let Some(e) = epochs {
        cfg.optim.epochs = e;
    }
    if let Some(d) = device {
        cfg.compute.device = d.to_string();
    }
    if let Some(w) = init_weights {
        cfg.model.init_weights = Some(w);
    }
    let runs: Vec<(u64, PathBuf)> = if seeds.is_empty() {
        vec![(seed.unwrap_or(cfg.seed), cfg.out.clone())]
    } else {
        seeds
            .iter()
            .map(|&s| (s, cfg.out.join(format!("seed{s}"))))
            .collect()
    };
    for (s, out) in runs {
        let run = TrainConfig {
            seed: s,
            out: out.clone(),
            ..cfg.clone()
        };
        say!("risk-train: seed {s}, run folder {}", out.display());
        let summary = train::fit_with_progress(
            &run,
            resume,
            &mut |line| say!("risk-train: {line}"),
            &mut EpochBar(None),
        )
        .with_context(|| format!("training run {}", out.display()))?;
        let st = &summary.state;
        println!(
            "seed {s}: {} epochs, best val loss {} at epoch {} -> {}",
            st.epochs_done,
            st.best_val_loss.map_or("-".into(), |v| format!("{v:.4}")),
            st.best_epoch.map_or("-".into(), |v| v.to_string()),
            summary.out.join("best.safetensors").display()
        );
    }
    Ok(())
}

/// The first path that names the same file as an earlier one (compared after resolving
/// the folder, which must exist for the output anyway), if any.
fn same_file<'a>(paths: &[Option<&'a PathBuf>]) -> Option<&'a PathBuf> {
    let key = |p: &PathBuf| {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        (
            std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
            p.file_name().map(|n| n.to_owned()),
        )
    };
    let paths: Vec<&PathBuf> = paths.iter().flatten().copied().collect();
    paths
        .iter()
        .enumerate()
        .find(|(i, p)| paths[..*i].iter().any(|q| key(q) == key(p)))
        .map(|(_, p)| *p)
}

/// The batches of each epoch as a progress bar on stderr when it is a terminal (hidden
/// otherwise, so that logs stay clean).
struct EpochBar(Option<indicatif::ProgressBar>);

impl train::EpochProgress for EpochBar {
    fn start(&mut self, batches: usize, epoch: usize, epochs: usize) {
        use std::io::IsTerminal;
        let bar = if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(batches as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "epoch {epoch}/{epochs} [{{bar:30}}] {{pos}}/{{len}} batches {{elapsed}} (eta {{eta}}) {{msg}}"
                ))
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        self.0 = Some(bar);
    }

    fn batch(&mut self, mean_loss: f64) {
        if let Some(bar) = &self.0 {
            bar.set_message(format!("loss {mean_loss:.4}"));
            bar.inc(1);
        }
    }

    fn validating(&mut self) {
        if let Some(bar) = &self.0 {
            bar.set_message("validation");
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// `--dtype`: the library's [`SynthDtype`] with clap's spellings (u8, u16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum DtypeArg {
    U8,
    U16,
}

impl From<DtypeArg> for SynthDtype {
    fn from(d: DtypeArg) -> Self {
        match d {
            DtypeArg::U8 => SynthDtype::U8,
            DtypeArg::U16 => SynthDtype::U16,
        }
    }
}

/// `--generator`: the library's [`Generator`] with clap's spellings (v1, v2) and help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum GeneratorArg {
    /// The first model: Medium only as a thin band, one fixed sensor (the committed
    /// fixtures and the shipped model's training and held-out scenes).
    V1,
    /// Medium also in patches, per-scene sensor and illumination, a narrower `hidden`.
    V2,
}

impl From<GeneratorArg> for Generator {
    fn from(g: GeneratorArg) -> Self {
        match g {
            GeneratorArg::V1 => Generator::V1,
            GeneratorArg::V2 => Generator::V2,
        }
    }
}

/// Prints the `synth-stats` tables (Markdown).
fn synth_stats(seeds: &[u64], train_seed: u64, size: usize, generator: Generator) {
    let cfg = |seed| SynthConfig {
        width: size,
        height: size,
        seed,
        generator,
        ..SynthConfig::default()
    };
    let cdf = synth::oracle::HiddenCdf::new(generator);
    let train = synth::generate_u8(&cfg(train_seed), 0, size);
    println!("generator {generator}, {size}x{size} scenes, colour classifier fitted on seed {train_seed}\n");
    println!(
        "| seed | Medium | High | rich 256 px | rich 512 px | colour floor kappa (levels) | oracle kappa | oracle P(1) | oracle R(1) | oracle R(2) | oracle rho | oracle max P(1) at R(1) >= 0.30 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut all = Vec::new();
    for &seed in seeds {
        let s = SceneStats::measure(&Scene::generate(&cfg(seed), &cdf), &train);
        let labelled = (s.counts.low + s.counts.medium + s.counts.high).max(1) as f64;
        let o = &s.oracle;
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
        println!(
            "| {seed} | {:.2}% | {:.2}% | {}/{} | {}/{} | {:.4} ({}) | {} | {:.4} | {:.4} | {:.4} | {} | {} |",
            100.0 * s.medium_share,
            100.0 * s.counts.high as f64 / labelled,
            s.rich_tiles[0].1,
            s.rich_tiles[0].2,
            s.rich_tiles[1].1,
            s.rich_tiles[1].2,
            s.colour_floor.0,
            s.colour_floor.1,
            opt(o.cohen_kappa),
            o.classes[1].precision,
            o.classes[1].recall,
            o.classes[2].recall,
            opt(o.spearman_rho),
            opt(s.precision_at_recall(0.30)),
        );
        all.push(s);
    }
    let n = all.len().max(1) as f64;
    let mean = |f: &dyn Fn(&SceneStats) -> f64| all.iter().map(f).sum::<f64>() / n;
    let (medium, labelled) = all.iter().fold((0, 0), |(m, l), s| {
        (
            m + s.counts.medium,
            l + s.counts.low + s.counts.medium + s.counts.high,
        )
    });
    println!(
        "| all | {:.2}% pooled | | {}/{} | {}/{} | mean {:.4} | mean {:.4} | mean {:.4} | mean {:.4} | mean {:.4} | | |",
        100.0 * medium as f64 / labelled.max(1) as f64,
        all.iter().map(|s| s.rich_tiles[0].1).sum::<usize>(),
        all.iter().map(|s| s.rich_tiles[0].2).sum::<usize>(),
        all.iter().map(|s| s.rich_tiles[1].1).sum::<usize>(),
        all.iter().map(|s| s.rich_tiles[1].2).sum::<usize>(),
        mean(&|s| s.colour_floor.0),
        mean(&|s| s.oracle.cohen_kappa.unwrap_or(0.0)),
        mean(&|s| s.oracle.classes[1].precision),
        mean(&|s| s.oracle.classes[1].recall),
        mean(&|s| s.oracle.classes[2].recall),
    );
    println!("\nOracle Medium precision / recall, predicting Medium where P(Medium) >= t:\n");
    let head: Vec<String> = PR_THRESHOLDS.iter().map(|t| format!("t = {t}")).collect();
    println!("| seed | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(PR_THRESHOLDS.len()));
    for s in &all {
        let cells: Vec<String> = s
            .oracle_pr
            .iter()
            .map(|p| format!("{:.3} / {:.3}", p.1, p.2))
            .collect();
        println!("| {} | {} |", s.seed, cells.join(" | "));
    }
}

fn main() -> ExitCode {
    // First, before any thread starts: no telemetry from ONNX Runtime (export checks),
    // and SIGINT / SIGTERM remove the run's temporary files.
    risk_inference::session::disable_telemetry();
    risk_inference::output::install_signal_cleanup();
    let cli = Cli::parse();
    risk_inference::raster::quiet_gdal_errors();
    let result = match cli.command {
        Command::Synth {
            image,
            labels,
            width,
            height,
            seed,
            nir,
            dtype,
            generator,
            oracle,
        } => {
            if let Some(clash) = same_file(&[Some(&image), Some(&labels), oracle.as_ref()]) {
                say!(
                    "risk-train: error: {} is given as two of --image, --labels, --oracle; each output needs its own file",
                    clash.display()
                );
                return ExitCode::from(2);
            }
            let generator = Generator::from(generator);
            let cfg = SynthConfig {
                width,
                height,
                seed,
                nir,
                dtype: dtype.into(),
                generator,
                ..SynthConfig::default()
            };
            synth::write_scene(&cfg, &image, &labels)
                .map(|counts| {
                    println!(
                        "{}x{} seed {seed} ({generator}): {counts} -> {}, {}",
                        width,
                        height,
                        image.display(),
                        labels.display()
                    );
                })
                .and_then(|()| match &oracle {
                    Some(path) => synth::oracle::write_oracle(&cfg, path)
                        .map(|()| println!("oracle -> {}", path.display())),
                    None => Ok(()),
                })
        }
        Command::SynthStats {
            seeds,
            train_seed,
            size,
            generator,
        } => {
            synth_stats(&seeds, train_seed, size, generator.into());
            Ok(())
        }
        Command::Fixtures { output } => synth::FIXTURES.iter().try_for_each(|f| {
            f.write(&output)
                .map(|counts| println!("{}: {}x{} {counts}", f.name, f.width, f.height))
        }),
        Command::Export(args) => {
            return match export(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    say!("risk-train: error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Decide(a) => {
            return match decide(&a.model, &a.with, &a.image, &a.labels, &a.output) {
                Ok(value) => {
                    println!(
                        "{} -> {} (risk.decision = {value})",
                        a.model.display(),
                        a.output.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    say!("risk-train: error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Fit(args) => {
            return match fit(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    say!("risk-train: error: {e:#}");
                    let usage = e
                        .downcast_ref::<risk_training::config::ConfigError>()
                        .is_some_and(|c| !matches!(c, risk_training::config::ConfigError::Read { .. }));
                    ExitCode::from(if usage { 2 } else { 1 })
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("risk-train: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
    }

    /// The workspace's CLI style: the main input positional, outputs `-o/--output`, the
    /// older spellings (`fit --config`, `fixtures --out`) still accepted.
    #[test]
    fn main_inputs_are_positional_and_outputs_dash_o() {
        Cli::command().debug_assert();
        let config = |c: Command| match c {
            Command::Fit(a) => a.config.or(a.config_flag),
            _ => panic!("not fit"),
        };
        let want = Some(std::path::PathBuf::from("my.yaml"));
        assert_eq!(config(parse(&["risk-train", "fit", "my.yaml"])), want);
        assert_eq!(config(parse(&["risk-train", "fit", "--config", "my.yaml"])), want);
        assert!(Cli::try_parse_from(["risk-train", "fit"]).is_err());
        assert!(Cli::try_parse_from(["risk-train", "fit", "a.yaml", "--config", "b.yaml"]).is_err());
        for flag in ["-o", "--output", "--out"] {
            match parse(&["risk-train", "fixtures", flag, "dir"]) {
                Command::Fixtures { output } => assert_eq!(output, std::path::Path::new("dir")),
                _ => panic!("not fixtures"),
            }
        }
        match parse(&["risk-train", "export", "best.safetensors", "-o", "m.onnx"]) {
            Command::Export(a) => assert_eq!(a.output, std::path::Path::new("m.onnx")),
            _ => panic!("not export"),
        }
        let help = Cli::command().render_help().to_string();
        assert!(
            help.starts_with("Train a risk model on an image and its labels"),
            "{help}"
        );
    }
}
