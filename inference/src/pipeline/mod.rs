//! The pipeline of one raster: [`run`] scores it with a [`Predictor`] and writes its
//! outputs, in bounded memory whatever its size; [`jobs`] plans a run over many rasters
//! (each input's output, the usage checks, the models, the decision rule, the CRF
//! settings, the provenance) before any of them is scored. The stages, one file each:
//!
//! - [`options`]: what the run is asked to do ([`RunOptions`], [`CrfOptions`],
//!   [`Outputs`]);
//! - `plan.rs`: the model pass's plan (bands and normalisation, tiles, column blocks, tile
//!   rows, batch), fixed before any tile is read; [`budget`]: the memory model that
//!   sizes the blocks, batches and CRF tiles from the budget;
//! - `model_pass.rs`: read (`read.rs`, its own thread) -> model -> blend (`blend.rs`) ->
//!   write, overlapping I/O with the model;
//! - `crf_pass.rs`: the dense CRF over the blended probabilities, CRF tile by CRF tile;
//! - `outputs.rs`: the output GeoTIFFs and the finished row bands written into them;
//! - `error.rs` and `report.rs`: what can fail, and what a run did.
//!
//! Without the CRF, the model pass writes the outputs. With it, the model pass writes the
//! blended probabilities (and the model's uncertainty, for its mutual information band)
//! to hidden temporary rasters beside the output, over the rows every CRF tile needs,
//! and the CRF pass reads them back and writes the outputs; the temporaries are removed
//! however the run ends, and an error on one of them is told as the output's.
//! `docs/architecture.md` follows one raster through these files.

mod blend;
pub mod budget;
mod crf_pass;
mod error;
pub mod jobs;
mod model_pass;
pub mod options;
mod outputs;
mod plan;
mod read;
mod report;

use std::path::Path;
use std::time::Instant;

pub use error::{PipelineError, Result};
pub use options::{CrfMetadataError, CrfOptions, Outputs, ProbsType, RunOptions, params_from_metadata};
pub use read::INPUT_LIMIT;
pub use report::{CrfReport, RunReport};

use crate::output::TempOutput;
use crate::predictor::Predictor;
use crate::raster::InputRaster;
use crf_pass::{Blended, CrfPass};
use outputs::Writers;

/// Scores one raster with `predictor` and writes `outputs`, with the CRF pass when
/// `opts.crf` is set. `progress(done, total)` is called after each batch with tile counts.
pub fn run(
    predictor: &mut Predictor,
    input: &Path,
    outputs: &Outputs,
    opts: &RunOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport> {
    let Some(crf) = &opts.crf else {
        return model_pass::run_model(predictor, input, outputs, opts, progress);
    };
    let start = Instant::now();
    let raster = InputRaster::open(input)?;
    let (w, h) = (raster.width(), raster.height());
    let rows = plan::output_rows(input, opts, h)?;
    // Pass 1: blended probabilities into a temporary float32 raster beside the output,
    // over the rows of every CRF tile (halo included) that the CRF pass will run (and
    // the model's uncertainty over the same rows, whose mutual information band the CRF
    // passes on).
    let blend_rows = crf_pass::rows_needed(input, (w, h), crf, opts.memory_budget, rows)?;
    let beside = outputs.classes.as_deref().unwrap_or(input);
    let blended = TempOutput::new(beside, "blend");
    let model_uncertainty = (outputs.uncertainty.is_some() && predictor.views() > 1)
        .then(|| TempOutput::new(beside, "uncertainty"));
    let pass1 = Outputs {
        classes: None,
        probs: Some((blended.path().to_path_buf(), ProbsType::F32)),
        uncertainty: model_uncertainty
            .as_ref()
            .map(|t| (t.path().to_path_buf(), ProbsType::F32)),
    };
    let pass1_opts = RunOptions {
        overviews: false,
        cog: false,
        rows: Some(blend_rows),
        ..opts.clone()
    };
    // Errors on the hidden temporaries name the output they are for (a full disk is the
    // output's problem, not a strange file's).
    let temporaries: Vec<&TempOutput> = std::iter::once(&blended).chain(&model_uncertainty).collect();
    let named = |e: PipelineError| e.for_output(&temporaries, beside);
    let mut report = model_pass::run_model(predictor, input, &pass1, &pass1_opts, progress).map_err(named)?;
    // Pass 2: the CRF, writing the real outputs.
    let writers = Writers::create(outputs, w, h, &raster.georef(), opts, predictor.views())?;
    drop(raster);
    let pass2 = CrfPass {
        input,
        blended: Blended {
            probs: blended.path(),
            uncertainty: model_uncertainty.as_ref().map(|t| t.path()),
            first_row: blend_rows.0,
        },
        crf,
        decision: &opts.decision,
        memory_budget: opts.memory_budget,
        rows,
        want_probs: outputs.probs.is_some() || outputs.uncertainty.is_some(),
    };
    let crf_report = pass2.run(writers).map_err(named)?;
    report.class_counts_before_crf = Some(report.class_counts);
    report.class_counts = crf_report.class_counts;
    report.crf = Some(crf_report);
    report.total_s = start.elapsed().as_secs_f64();
    Ok(report)
}
