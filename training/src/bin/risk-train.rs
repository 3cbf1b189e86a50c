//! `risk-train`: command-line front end of the training crate (argument parsing and exit
//! codes only). Subcommands: `synth` (generate a synthetic scene), `fixtures`
//! (write the committed test scenes).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use risk_training::synth::{self, SynthConfig, SynthDtype};

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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("risk-train: error: {e}");
            ExitCode::FAILURE
        }
    }
}
