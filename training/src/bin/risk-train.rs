//! `risk-train`: command-line front end of the training crate (argument parsing and exit
//! codes only). Subcommands: `synth` (generate a synthetic scene), `fixtures`
//! (write the committed test scenes), `fit` (train per a config.yaml).
//! Exit codes: 0 ok, 1 runtime failure, 2 usage error (clap, or a bad config).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use risk_training::config::TrainConfig;
use risk_training::synth::{self, SynthConfig, SynthDtype};
use risk_training::train;

#[derive(Parser)]
#[command(
    name = "risk-train",
    version,
    about = "Train and export the risk segmentation model"
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
        #[arg(long, value_enum, default_value_t = SynthDtype::U8)]
        dtype: SynthDtype,
    },
    /// Write the committed test scenes (synth::FIXTURES) into a folder.
    Fixtures {
        #[arg(long, default_value = "fixtures")]
        out: PathBuf,
    },
    /// Train the model per a config.yaml (see training/config.yaml for every field).
    Fit {
        #[arg(long)]
        config: PathBuf,
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
    },
}

fn fit(
    config: PathBuf,
    resume: bool,
    seed: Option<u64>,
    seeds: Vec<u64>,
    epochs: Option<usize>,
    init_weights: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut cfg = TrainConfig::from_yaml(&config)?;
    if let Some(e) = epochs {
        cfg.optim.epochs = e;
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
        eprintln!("risk-train: seed {s}, run folder {}", out.display());
        let summary = train::fit(&run, resume, &mut |line| eprintln!("risk-train: {line}"))
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

fn main() -> ExitCode {
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
        } => {
            let cfg = SynthConfig {
                width,
                height,
                seed,
                nir,
                dtype,
                ..SynthConfig::default()
            };
            synth::write_scene(&cfg, &image, &labels).map(|counts| {
                println!(
                    "{}x{} seed {seed}: {counts} -> {}, {}",
                    width,
                    height,
                    image.display(),
                    labels.display()
                );
            })
        }
        Command::Fixtures { out } => synth::FIXTURES.iter().try_for_each(|f| {
            f.write(&out)
                .map(|counts| println!("{}: {}x{} {counts}", f.name, f.width, f.height))
        }),
        Command::Fit {
            config,
            resume,
            seed,
            seeds,
            epochs,
            init_weights,
        } => {
            return match fit(config, resume, seed, seeds, epochs, init_weights) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("risk-train: error: {e:#}");
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
            eprintln!("risk-train: error: {e}");
            ExitCode::FAILURE
        }
    }
}
