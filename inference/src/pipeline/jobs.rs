//! A `risk-infer` run over many rasters, planned before any work: from what was asked
//! ([`Request`], the command line's choices as plain data) to a ready [`Run`].
//!
//! [`Run::prepare`] decides everything the binary used to decide itself: each input's
//! output (one `-o`, or `<name>_risk.tif` in an output folder), every usage check (an
//! output that is an input, a model, another output, a folder, a device or a FIFO, or not
//! named .tif; options that take one input), the shard's inputs or rows, the models
//! loaded into one [`Predictor`] (ensemble x TTA x scales), the decision rule, the CRF
//! settings (a preset or the model's `risk.crf`, with overrides) and the provenance each
//! output records. [`Run::outputs`] names one job's rasters (with the temporaries a
//! review queue needs), [`Run::finished`] says whether an existing output can be
//! skipped. What is left to the binary: parsing arguments, logging, the progress bar,
//! and printing what each job did.
//!
//! Usage errors ([`SetupError::is_usage`]: bad arguments, an output path that cannot be
//! one, a vector output not named .gpkg / .geojson) are found before anything is written
//! or loaded where possible, and the binary exits with 2 for them.

use std::path::{Path, PathBuf};

use super::budget;
use super::options::{CrfMetadataError, CrfOptions, Outputs, ProbsType, RunOptions, params_from_metadata};
use crate::augment::Tta;
use crate::autobatch::BatchSize;
use crate::crf::{CrfParams, LabelCompat};
use crate::decision::{Decision, DecisionError};
use crate::input_scale::InputScale;
use crate::output::{OutputPathError, TempOutput, check_outputs, check_raster_output};
use crate::predictor::Predictor;
use crate::provenance::{ModelRecord, Provenance};
use crate::raster::{InputRaster, RasterError, Window};
use crate::session::{Model, ModelError, SessionOptions};
use crate::shard::Shard;
use crate::vector::VectorError;

/// Why a run cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Bad arguments or limits (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// An output path that cannot be one (exit code 2).
    #[error(transparent)]
    OutputPath(#[from] OutputPathError),
    /// A vector output (`--vector`, `--review`) not named as a format written here (exit
    /// code 2).
    #[error(transparent)]
    VectorName(#[from] VectorError),
    /// A file that cannot be read or a folder that cannot be made; `what` names it.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no model: pass --model FILE (the shipped models/default.onnx was not found)")]
    NoModel,
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Raster(#[from] RasterError),
    /// A model's `risk.decision` metadata that cannot be used (names the model).
    #[error(transparent)]
    Decision(#[from] DecisionError),
    /// A model's `risk.crf` metadata that cannot be used.
    #[error("{}: {err}", model.display())]
    CrfMetadata { model: PathBuf, err: CrfMetadataError },
}

impl SetupError {
    /// Whether this is a usage error (the binary exits with 2, like clap's).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Usage(_) | Self::OutputPath(_) | Self::VectorName(_))
    }
}

/// Why an existing output is not a finished run's (`--skip-existing` scores it again).
#[derive(Debug, thiserror::Error)]
pub enum Unfinished {
    #[error("cannot be read ({0})")]
    Unreadable(RasterError),
    /// The input it would be made from cannot be read.
    #[error(transparent)]
    Input(RasterError),
    /// Its size (width, height) or georeferencing is not what the run would write.
    #[error(
        "is {}x{} with another grid than {} ({}x{})",
        size.0, size.1, input.display(), expected.0, expected.1
    )]
    OtherGrid {
        size: (usize, usize),
        input: PathBuf,
        expected: (usize, usize),
    },
}

type Result<T> = std::result::Result<T, SetupError>;

fn usage(msg: impl Into<String>) -> SetupError {
    SetupError::Usage(msg.into())
}

/// Which CRF runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrfChoice {
    /// As the model's metadata says (`risk.crf`), else off.
    Model,
    Off,
    /// [`CrfParams::DEFAULT`].
    Default,
    /// [`CrfParams::ENHANCED`].
    Enhanced,
}

/// How probabilities become classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionChoice {
    /// The model's fitted rule (`risk.decision`), else argmax.
    Model,
    Argmax,
}

/// CRF parameters that replace the chosen preset's.
#[derive(Clone, Debug, Default)]
pub struct CrfOverrides {
    pub iterations: Option<u32>,
    pub gaussian_sxy: Option<f32>,
    pub gaussian_compat: Option<f32>,
    pub bilateral_sxy: Option<f32>,
    pub bilateral_srgb: Option<f32>,
    pub bilateral_compat: Option<f32>,
    pub compat: Option<LabelCompat>,
}

/// What a run is asked to do (the meaning of each field is `risk-infer --help`'s).
#[derive(Clone, Debug)]
pub struct Request {
    pub inputs: Vec<PathBuf>,
    /// A text file of more inputs, one per line (blank lines and `#` comments ignored).
    pub list: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub out_dir: Option<PathBuf>,
    pub skip_existing: bool,
    pub probs: Option<(PathBuf, ProbsType)>,
    pub uncertainty: Option<(PathBuf, ProbsType)>,
    pub overviews: bool,
    pub cog: bool,
    /// The vector zones' file (written by the caller after each job).
    pub vector: Option<PathBuf>,
    /// `--review N FILE`, as given, and the windows' side.
    pub review: Option<(String, String)>,
    pub review_size: usize,
    /// Empty: `$RISK_MODEL`, else the shipped default model.
    pub models: Vec<PathBuf>,
    pub bands: Option<Vec<usize>>,
    pub input_scale: InputScale,
    pub decision: DecisionChoice,
    pub tta: Tta,
    pub scales: Vec<f32>,
    pub tile: Option<usize>,
    pub overlap: Option<usize>,
    pub shard: Option<Shard>,
    pub crf: CrfChoice,
    pub crf_overrides: CrfOverrides,
    pub crf_tile: usize,
    pub crf_halo: usize,
    pub crf_bands: Option<Vec<usize>>,
    pub batch: BatchSize,
    pub memory_budget: usize,
    pub session: SessionOptions,
}

/// `--review N FILE`: how many windows, and the file they go to.
pub type ReviewQueue = (usize, PathBuf);

/// The jobs a run (or its shard) scores, and the rows `[r0, r1)` of a one-input shard.
type Selection = (Vec<Job>, Option<(usize, usize)>);

/// One input and its class map.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
}

/// A planned run: its jobs and what they share.
pub struct Run {
    pub jobs: Vec<Job>,
    /// Rows `[r0, r1)` of a one-input shard.
    pub rows: Option<(usize, usize)>,
    pub predictor: Predictor,
    /// The options of every job (each job adds its provenance, [`Run::options`]).
    pub options: RunOptions,
    pub provenance: Provenance,
    pub review: Option<ReviewQueue>,
    pub review_size: usize,
    skip_existing: bool,
    probs: Option<(PathBuf, ProbsType)>,
    uncertainty: Option<(PathBuf, ProbsType)>,
}

/// One job's output rasters, and the temporaries that exist only for the review queue
/// (removed when dropped).
pub struct JobOutputs {
    pub outputs: Outputs,
    pub temporaries: Vec<TempOutput>,
}

impl Run {
    /// Plans `request`: `Ok(None)` when there is nothing to do (a shard of a raster with
    /// fewer row blocks than shards). Sets GDAL's block cache to its share of the memory
    /// budget ([`budget::gdal_cache`]) before the models load.
    pub fn prepare(request: &Request) -> Result<Option<Run>> {
        let (jobs, review) = checked_jobs(request)?;
        let Some((jobs, rows)) = pick_shard(request, jobs)? else {
            return Ok(None);
        };
        // GDAL's block cache gets its share of the budget (the rest: tiles, accumulators,
        // CRF).
        crate::raster::set_cache_limit(budget::gdal_cache(request.memory_budget));
        let predictor = load_predictor(request)?;
        let decision = decision_for(request.decision, predictor.members())?;
        if !decision.is_argmax() {
            tracing::info!("decision rule: {}", decision.describe());
        }
        let info = predictor.info();
        let tile = request.tile.unwrap_or(info.tile_size);
        let overlap = request.overlap.unwrap_or(info.tile_overlap);
        if 2 * overlap >= tile {
            return Err(usage(format!(
                "--overlap {overlap}: must be less than half the tile ({tile} px), at most {}",
                (tile - 1) / 2
            )));
        }
        let crf = crf_options(request, &predictor.members()[0])?;
        if let Some(c) = &crf {
            tracing::info!("CRF: {}", c.describe());
        }
        let provenance = provenance_of(
            request,
            &predictor,
            &decision,
            crf.as_ref(),
            (tile, overlap),
            rows,
        )?;
        let options = RunOptions {
            tile: request.tile,
            overlap: request.overlap,
            batch: request.batch,
            memory_budget: request.memory_budget,
            bands: request.bands.clone(),
            input_scale: request.input_scale,
            overviews: request.overviews || request.cog,
            cog: request.cog,
            crf,
            decision,
            rows,
            ..RunOptions::default()
        };
        Ok(Some(Run {
            jobs,
            rows,
            predictor,
            options,
            provenance,
            review,
            review_size: request.review_size,
            skip_existing: request.skip_existing,
            probs: request.probs.clone(),
            uncertainty: request.uncertainty.clone(),
        }))
    }

    /// The options of `job`: the run's, with the provenance of its input.
    pub fn options(&self, job: &Job) -> RunOptions {
        RunOptions {
            provenance: self.provenance.items(&job.input),
            ..self.options.clone()
        }
    }

    /// The rasters `job` writes. The review queue is ranked from the probabilities (and
    /// the mutual information of several views): temporaries beside the output when they
    /// are not asked for.
    pub fn outputs(&self, job: &Job) -> JobOutputs {
        let review = self.review.is_some();
        let review_probs =
            (review && self.probs.is_none()).then(|| TempOutput::new(&job.output, "review-probs"));
        let review_unc = (review && self.uncertainty.is_none() && self.predictor.views() > 1)
            .then(|| TempOutput::new(&job.output, "review-uncertainty"));
        let temporary = |t: &Option<TempOutput>| t.as_ref().map(|t| (t.path().to_path_buf(), ProbsType::U8));
        let outputs = Outputs {
            classes: Some(job.output.clone()),
            probs: self.probs.clone().or_else(|| temporary(&review_probs)),
            uncertainty: self.uncertainty.clone().or_else(|| temporary(&review_unc)),
        };
        JobOutputs {
            outputs,
            temporaries: review_probs.into_iter().chain(review_unc).collect(),
        }
    }

    /// With `--skip-existing`, whether `job`'s output exists and is a finished run's
    /// (`Err` says why an existing one is not: it is scored again); `None` when the job
    /// runs.
    pub fn finished(&self, job: &Job) -> Option<std::result::Result<(), Unfinished>> {
        (self.skip_existing && job.output.exists())
            .then(|| finished_output(&job.input, &job.output, self.rows))
    }
}

/// The jobs of `request` and its review queue, every path checked.
fn checked_jobs(request: &Request) -> Result<(Vec<Job>, Option<ReviewQueue>)> {
    let mut inputs = request.inputs.clone();
    if let Some(list) = &request.list {
        inputs.extend(read_list(list)?);
    }
    let jobs: Vec<Job> = match (&request.output, &request.out_dir) {
        _ if inputs.is_empty() => return Err(usage("no input raster given (see --help)")),
        (Some(_), Some(_)) => return Err(usage("give either -o/--output or --out-dir, not both")),
        (Some(out), None) if inputs.len() == 1 => vec![Job {
            input: inputs[0].clone(),
            output: out.clone(),
        }],
        (Some(_), None) => {
            return Err(usage(format!(
                "{} inputs: use --out-dir instead of -o",
                inputs.len()
            )));
        }
        (None, Some(dir)) => inputs
            .iter()
            .map(|i| Job {
                input: i.clone(),
                output: output_for(i, dir),
            })
            .collect(),
        (None, None) => return Err(usage("give an output: -o risk.tif, or --out-dir DIR")),
    };
    if jobs.len() > 1 && (request.probs.is_some() || request.uncertainty.is_some()) {
        return Err(usage("--probs and --uncertainty take one input"));
    }
    if let Some(v) = &request.vector {
        crate::vector::driver_for(v)?;
    }
    let review = review_of(request)?;
    if review.is_some() && (jobs.len() > 1 || request.shard.is_some()) {
        return Err(usage("--review takes one input, without --shard"));
    }
    if jobs.len() > 1 && request.vector.is_some() {
        return Err(usage("--vector takes one input"));
    }
    if request.shard.is_some() && request.vector.is_some() {
        return Err(usage(
            "--vector with --shard would cut zones at the shards' edges: give --vector to `risk-infer mosaic` instead",
        ));
    }
    Ok((jobs, review))
}

/// The models of `request`: its own, else `$RISK_MODEL`, else the shipped default.
fn model_paths(request: &Request) -> Result<Vec<PathBuf>> {
    match (request.models.is_empty(), default_model()) {
        (false, _) => Ok(request.models.clone()),
        (true, Some(p)) => Ok(vec![p]),
        (true, None) => Err(SetupError::NoModel),
    }
}

/// A shard of many inputs is every N-th input; of one input, a band of its rows (`None`:
/// the shard has no rows). Checks every path first and makes the output folder.
fn pick_shard(request: &Request, jobs: Vec<Job>) -> Result<Option<Selection>> {
    check_paths(request, &jobs, &model_paths(request)?)?;
    if let Some(dir) = &request.out_dir {
        std::fs::create_dir_all(dir).map_err(|source| SetupError::Io {
            what: format!("{}: cannot create folder", dir.display()),
            source,
        })?;
    }
    let Some(shard) = request.shard else {
        return Ok(Some((jobs, None)));
    };
    if jobs.len() > 1 {
        let count = jobs.len();
        let picked: Vec<Job> = jobs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| shard.picks(*i))
            .map(|(_, job)| job)
            .collect();
        tracing::info!("shard {shard}: {} of {count} inputs", picked.len());
        return Ok(Some((picked, None)));
    }
    let height = InputRaster::open(&jobs[0].input)?.height();
    let Some((r0, r1)) = shard.rows(height) else {
        tracing::info!(
            "shard {shard}: {} has {height} rows, fewer blocks of {} than shards; nothing to do",
            jobs[0].input.display(),
            crate::shard::BLOCK_ROWS
        );
        return Ok(None);
    };
    tracing::info!("shard {shard}: rows {r0}..{r1} of {height}");
    Ok(Some((jobs, Some((r0, r1)))))
}

/// The models of `request`, loaded into one predictor (logged).
fn load_predictor(request: &Request) -> Result<Predictor> {
    let mut members = Vec::new();
    let threads = request.session.threads;
    for path in &model_paths(request)? {
        let model = Model::load(path, &request.session)?;
        tracing::info!(
            "model {} ({}) on {}{}{}",
            path.display(),
            model.info().version.as_deref().unwrap_or("unversioned"),
            model.provider(),
            if model.io_binding() { ", IO binding" } else { "" },
            if threads > 0 {
                format!(", {threads} threads")
            } else {
                String::new()
            }
        );
        members.push(model);
    }
    let predictor = Predictor::new(members, request.tta, request.scales.clone())?;
    if predictor.views() > 1 {
        tracing::info!(
            "{} model run(s) per tile: {} member(s) x TTA {:?} ({} transform(s)) x scales {:?}",
            predictor.views(),
            predictor.members().len(),
            request.tta,
            request.tta.transforms().len(),
            request.scales
        );
    }
    Ok(predictor)
}

/// The model's `risk.decision` rule (argmax when it has none); a bad value names the file.
fn model_decision(model: &Model) -> Result<Decision> {
    Ok(Decision::of_model(model)?)
}

/// The decision rule of a run: `argmax`, or the first member's rule (members with another
/// rule are named in a warning: the rule is fitted per model, not for their mean).
fn decision_for(choice: DecisionChoice, members: &[Model]) -> Result<Decision> {
    if choice == DecisionChoice::Argmax {
        return Ok(Decision::default());
    }
    let first = model_decision(&members[0])?;
    for m in &members[1..] {
        if model_decision(m)? != first {
            tracing::warn!(
                "{}: its decision rule differs from {}'s; the first member's is used ({})",
                m.path().display(),
                members[0].path().display(),
                first.describe()
            );
        }
    }
    Ok(first)
}

/// The CRF to run: the choice (or the model's metadata) with the overrides applied.
fn crf_options(request: &Request, model: &Model) -> Result<Option<CrfOptions>> {
    let base = match request.crf {
        CrfChoice::Off => None,
        CrfChoice::Default => Some(CrfParams::DEFAULT),
        CrfChoice::Enhanced => Some(CrfParams::ENHANCED),
        CrfChoice::Model => match &model.info().crf {
            None => None,
            Some(v) => params_from_metadata(v).map_err(|err| SetupError::CrfMetadata {
                model: model.path().to_path_buf(),
                err,
            })?,
        },
    };
    let Some(mut p) = base else { return Ok(None) };
    let o = &request.crf_overrides;
    p.iterations = o.iterations.map_or(p.iterations, |n| n as usize);
    p.gaussian_sxy = o.gaussian_sxy.unwrap_or(p.gaussian_sxy);
    p.gaussian_compat = o.gaussian_compat.unwrap_or(p.gaussian_compat);
    p.bilateral_sxy = o.bilateral_sxy.unwrap_or(p.bilateral_sxy);
    p.bilateral_srgb = o.bilateral_srgb.unwrap_or(p.bilateral_srgb);
    p.bilateral_compat = o.bilateral_compat.unwrap_or(p.bilateral_compat);
    p.compat = o.compat.unwrap_or(p.compat);
    p.validate().map_err(|e| usage(e.to_string()))?;
    if request.crf_tile <= 2 * request.crf_halo {
        return Err(usage(format!(
            "--crf-tile {} must be larger than twice --crf-halo ({})",
            request.crf_tile, request.crf_halo
        )));
    }
    let model_bands = request
        .bands
        .clone()
        .unwrap_or_else(|| model.info().bands.clone());
    let bands = request
        .crf_bands
        .clone()
        .unwrap_or_else(|| model_bands.iter().copied().take(3).collect());
    if bands.len() != 3 {
        return Err(usage(format!(
            "the CRF needs 3 colour bands, got {bands:?}; pass --crf-bands R,G,B"
        )));
    }
    Ok(Some(CrfOptions {
        params: p,
        tile: request.crf_tile,
        halo: request.crf_halo,
        bands: [bands[0], bands[1], bands[2]],
    }))
}

/// What the outputs of this run record of how they were made (see
/// [`crate::provenance`]).
fn provenance_of(
    request: &Request,
    predictor: &Predictor,
    decision: &Decision,
    crf: Option<&CrfOptions>,
    (tile, overlap): (usize, usize),
    rows: Option<(usize, usize)>,
) -> Result<Provenance> {
    let models = predictor
        .members()
        .iter()
        .map(|m| {
            ModelRecord::of(m.path(), m.info().version.as_deref()).map_err(|source| SetupError::Io {
                what: format!("{}: cannot read it for its checksum", m.path().display()),
                source,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let preset = match request.crf {
        CrfChoice::Model => "the model's risk.crf",
        CrfChoice::Off => "off",
        CrfChoice::Default => "default",
        CrfChoice::Enhanced => "enhanced",
    };
    Ok(Provenance {
        tool: format!("risk-infer {}", env!("CARGO_PKG_VERSION")),
        models,
        bands: request
            .bands
            .clone()
            .unwrap_or_else(|| predictor.info().bands.clone()),
        tile,
        overlap,
        tta: format!("{:?}", request.tta).to_lowercase(),
        scales: request.scales.clone(),
        crf: crf.map_or_else(|| "off".into(), |c| c.provenance(preset)),
        decision: decision.describe(),
        shard: match (request.shard, rows) {
            (None, _) => "none".into(),
            (Some(s), Some((r0, r1))) => format!("{s} (rows {r0}..{r1})"),
            (Some(s), None) => format!("{s} (every {}-th input of the list)", s.count),
        },
        created: crate::provenance::utc_now(),
    })
}

/// `--review N FILE`, parsed: a usage error for a bad count or extension.
fn review_of(request: &Request) -> Result<Option<ReviewQueue>> {
    let Some((count, file)) = &request.review else {
        return Ok(None);
    };
    let n = count.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
        usage(format!(
            "--review {count} {file}: N must be a positive number of windows"
        ))
    })?;
    let path = PathBuf::from(file);
    crate::vector::driver_for(&path)?;
    if request.review_size < 16 {
        return Err(usage(format!(
            "--review-size {}: at least 16 px",
            request.review_size
        )));
    }
    Ok(Some((n, path)))
}

/// Every output path of the run, checked before any work (a usage error): none is an
/// input, a model or another output, none is a folder, device or FIFO, and each raster
/// output is named .tif (the format written). Batch outputs are named after their
/// inputs, so two inputs of one stem in different folders collide.
fn check_paths(request: &Request, jobs: &[Job], models: &[PathBuf]) -> Result<()> {
    let mut inputs: Vec<&Path> = jobs.iter().map(|j| j.input.as_path()).collect();
    inputs.extend(models.iter().map(PathBuf::as_path));
    inputs.extend(request.list.as_deref());
    let names: Vec<String> = jobs
        .iter()
        .map(|job| match &request.out_dir {
            Some(_) => format!("the output of {}", job.input.display()),
            None => "-o".to_string(),
        })
        .collect();
    let mut outputs: Vec<(&str, &Path)> = jobs
        .iter()
        .zip(&names)
        .map(|(job, name)| (name.as_str(), job.output.as_path()))
        .collect();
    outputs.extend(request.probs.as_ref().map(|(p, _)| ("--probs", p.as_path())));
    outputs.extend(
        request
            .uncertainty
            .as_ref()
            .map(|(p, _)| ("--uncertainty", p.as_path())),
    );
    // The GeoTIFFs among them: their extension is checked after what each path is (a
    // folder, a FIFO, an input), which says more.
    let rasters = outputs.len();
    outputs.extend(request.vector.as_deref().map(|p| ("--vector", p)));
    let review = review_of(request)?;
    outputs.extend(review.as_ref().map(|(_, p)| ("--review", p.as_path())));
    check_outputs(&inputs, &outputs)?;
    for (what, path) in &outputs[..rasters] {
        check_raster_output(what, path)?;
    }
    Ok(())
}

/// Whether an existing output is a finished run's for `input`: it opens, and its grid
/// (size, georeferencing; a shard's rows) is the one this run would write.
fn finished_output(
    input: &Path,
    output: &Path,
    rows: Option<(usize, usize)>,
) -> std::result::Result<(), Unfinished> {
    let out = InputRaster::open(output).map_err(Unfinished::Unreadable)?;
    let src = InputRaster::open(input).map_err(Unfinished::Input)?;
    let (r0, r1) = rows.unwrap_or((0, src.height()));
    let want = src.georef().offset(0.0, r0 as f64);
    if (out.width(), out.height()) != (src.width(), r1 - r0) || out.georef() != want || out.band_count() != 1
    {
        return Err(Unfinished::OtherGrid {
            size: (out.width(), out.height()),
            input: input.to_path_buf(),
            expected: (src.width(), r1 - r0),
        });
    }
    // Read whole: a truncated file is not a finished output.
    let mut buf = vec![0u8; out.width()];
    for y in 0..out.height() {
        out.read_band(1, Window::new(0, y, out.width(), 1), &mut buf)
            .map_err(Unfinished::Unreadable)?;
    }
    Ok(())
}

/// Where the shipped default model is looked for, in order: `$RISK_MODEL`, then
/// `models/default.onnx` here, beside the executable (a deployment bundle), two folders
/// up from it (`target/<profile>/`), and in the source tree.
pub fn default_model() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RISK_MODEL") {
        return Some(PathBuf::from(p));
    }
    let mut candidates = vec![PathBuf::from("models/default.onnx")];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("models/default.onnx")); // deployment bundle
        candidates.push(dir.join("../../models/default.onnx")); // target/<profile>/
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default.onnx"));
    candidates.into_iter().find(|p| p.is_file())
}

/// `<dir>/<input's stem>_risk.tif`.
fn output_for(input: &Path, dir: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!("{stem}_risk.tif"))
}

/// The inputs listed in `path`, one per line (blank lines and `#` comments ignored).
fn read_list(path: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(path).map_err(|source| SetupError::Io {
        what: format!("{}: cannot read list", path.display()),
        source,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(PathBuf::from)
        .collect())
}
