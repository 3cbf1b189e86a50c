//! The training loop of `risk-train fit` (`docs/spec.md`, "Training").
//!
//! 1. Tiles: the grid over the image / label pair, tiles with too few labelled pixels left
//!    out, the spatial-block split ([`crate::data::split`]); then the tiles of each scene
//!    of `data.scenes`, all of a scene in the split it names (training on several scenes,
//!    validating and testing on others); class counts per split.
//! 2. Minority sampling over the training tiles ([`crate::data::sampling`]).
//! 3. Each epoch: learning rate from the schedule, the samples shuffled (seed + epoch),
//!    batches of `batch_size` tiles read from the rasters (synthetic tiles interpolated from
//!    their two parents), augmented, normalised; AdamW on focal + 0.3 CORAL.
//! 4. Validation: loss and, through `risk_inference::metrics`, Cohen's kappa, class-1
//!    precision, class-2 recall and Spearman's rho over all validation pixels.
//! 5. `last.safetensors` every epoch, `best.safetensors` when the validation loss improves,
//!    each with its AdamW state beside it (`last.optim.safetensors`, `best.optim.safetensors`:
//!    moments and step count, [`crate::optim`]), `state.json` (epoch, learning rate,
//!    early-stopping counters, history), `log.csv` (one row per epoch).
//!    Early stopping after `patience` epochs without improvement.
//!
//! `--resume` reloads `last.safetensors`, `last.optim.safetensors` and `state.json` and
//! continues with the next epoch as if the run had not stopped (the batch order and
//! augmentation draws are seeded per epoch). The batches of each epoch are reported to an
//! [`EpochProgress`] ([`fit_with_progress`]; `risk-train` draws them as a progress bar on
//! a terminal), so this library has no terminal code.
//! Memory: one batch of tiles plus, once, the class-1-rich tiles for SMOTE's neighbours.
//!
//! Device and precision: `compute.device` ([`crate::device`]; the log says which device
//! runs and why). With `compute.precision: fp16` or `bf16` the forward pass, the loss and
//! validation run under libtorch's autocast ([`crate::amp`]); with fp16 (CUDA only; on the
//! CPU it falls back to fp32 with a log line) AdamW also scales the loss
//! ([`crate::optim::LossScaler`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use risk_inference::metrics::{ConfusionMatrix, MetricsError};
use risk_inference::output::TempOutput;
use risk_inference::raster::{RasterError, Window};
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, Kind, TchError, Tensor};

use crate::amp;
use crate::config::{Precision, Schedule, TrainConfig};
use crate::data::augment::augment;
use crate::data::numpy_rng::RandomState;
use crate::data::sampling::{self, Sample, SamplingPlan};
use crate::data::smote::Synthetic;
use crate::data::split::{self, Split, SplitTiles};
use crate::data::tiles::{self, Normalisation, Tile, TileSource};
use crate::loss::risk_loss;
use crate::model::{ImportReport, RiskUNet, WeightError, import_safetensors};
use crate::optim::{AdamW, AdamWConfig};
use crate::synth::ClassCounts;

/// What can stop training. Each message is whole: the wrapped error's text is in it,
/// not also behind `source()`, so that a `{:#}` chain prints it once.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Raster(#[from] RasterError),
    #[error(transparent)]
    Weights(#[from] WeightError),
    #[error("libtorch: {0}")]
    Torch(TchError),
    #[error("validation metrics: {0}")]
    Metrics(MetricsError),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("no {tile}x{tile} tile with at least {min_labelled_pct:.0}% labelled pixels in {}", labels.display())]
    NoTiles {
        tile: usize,
        min_labelled_pct: f64,
        labels: PathBuf,
    },
    #[error(
        "the split left {train} training and {val} validation tiles; use smaller tiles or blocks, or add scenes"
    )]
    TooFewTiles { train: usize, val: usize },
    #[error("{}: {err}", path.display())]
    State { path: PathBuf, err: serde_json::Error },
    #[error("{}: {err}", path.display())]
    Checkpoint { path: PathBuf, err: CheckpointError },
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Amp(#[from] crate::amp::AmpError),
}

impl From<TchError> for TrainError {
    fn from(e: TchError) -> Self {
        Self::Torch(e)
    }
}

impl From<MetricsError> for TrainError {
    fn from(e: MetricsError) -> Self {
        Self::Metrics(e)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |err| TrainError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// One epoch's numbers (a row of `log.csv`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_kappa: Option<f64>,
    pub val_precision_1: f64,
    pub val_recall_2: f64,
    pub val_spearman: Option<f64>,
    pub seconds: f64,
}

impl EpochLog {
    /// The header line of `log.csv`: one column per field, in the order of
    /// [`EpochLog::csv_row`] (the two are defined here together so that they cannot drift).
    pub const CSV_HEADER: &str =
        "epoch,lr,train_loss,val_loss,val_kappa,val_precision_1,val_recall_2,val_spearman,seconds\n";

    /// This epoch as a line of the run's log (of `epochs` in all; `(best)` when it improved).
    pub fn log_line(&self, epochs: usize, improved: bool) -> String {
        format!(
            "epoch {}/{}: lr {:.2e}, train loss {:.4}, val loss {:.4}, kappa {}, P1 {:.3}, R2 {:.3}, rho {}, {:.0} s{}",
            self.epoch,
            epochs,
            self.lr,
            self.train_loss,
            self.val_loss,
            optional(self.val_kappa),
            self.val_precision_1,
            self.val_recall_2,
            optional(self.val_spearman),
            self.seconds,
            if improved { " (best)" } else { "" }
        )
    }

    /// This epoch as a line of `log.csv` (an undefined metric is an empty cell).
    pub fn csv_row(&self) -> String {
        format!(
            "{},{:.3e},{:.5},{:.5},{},{:.5},{:.5},{},{:.1}\n",
            self.epoch,
            self.lr,
            self.train_loss,
            self.val_loss,
            optional(self.val_kappa),
            self.val_precision_1,
            self.val_recall_2,
            optional(self.val_spearman),
            self.seconds
        )
    }
}

/// An optional metric as both lines print it: five decimals, or nothing when undefined.
fn optional(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x:.5}"))
}

/// What `state.json` holds: enough to resume.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epochs_done: usize,
    pub lr: f64,
    pub best_val_loss: Option<f64>,
    pub best_epoch: Option<usize>,
    pub epochs_since_best: usize,
    pub stopped_early: bool,
    pub history: Vec<EpochLog>,
}

/// The prepared data of a run.
pub struct Dataset {
    /// The scenes: `data.image` / `data.labels` first, then `data.scenes` in order.
    pub sources: Vec<TileSource>,
    /// Every kept tile: its scene (index into `sources`) and window.
    pub windows: Vec<(usize, Window)>,
    pub counts: Vec<ClassCounts>,
    pub split: SplitTiles,
    /// Sampling plan over `split.train` (indices into it).
    pub plan: SamplingPlan,
    pub norm: Normalisation,
}

fn sum_counts(counts: &[ClassCounts], idx: &[usize]) -> ClassCounts {
    idx.iter().fold(ClassCounts::default(), |mut a, &i| {
        a.low += counts[i].low;
        a.medium += counts[i].medium;
        a.high += counts[i].high;
        a.nodata += counts[i].nodata;
        a
    })
}

/// Tiles as `(scene, window)` with their class counts.
type SceneTiles = (Vec<(usize, Window)>, Vec<ClassCounts>);

/// The tiles of scene `scene` with at least `min_labelled` labelled pixels, and their
/// class counts; an error naming the labels when there is none.
fn scene_tiles(
    source: &TileSource,
    scene: usize,
    labels: &Path,
    cfg: &TrainConfig,
) -> Result<SceneTiles, TrainError> {
    let d = &cfg.data;
    let mut windows = Vec::new();
    let mut counts = Vec::new();
    for w in tiles::grid(source.width(), source.height(), d.tile, cfg.stride()) {
        let c = source.counts(w)?;
        let labelled = (c.low + c.medium + c.high) as f64 / c.total().max(1) as f64;
        if labelled >= d.min_labelled {
            windows.push((scene, w));
            counts.push(c);
        }
    }
    if windows.is_empty() {
        return Err(TrainError::NoTiles {
            tile: d.tile,
            min_labelled_pct: 100.0 * d.min_labelled,
            labels: labels.to_path_buf(),
        });
    }
    Ok((windows, counts))
}

impl Dataset {
    /// Tiles, split and sampling plan for `cfg`; `log` receives one line per finding.
    pub fn prepare(cfg: &TrainConfig, log: &mut dyn FnMut(String)) -> Result<Self, TrainError> {
        let d = &cfg.data;
        let primary = TileSource::open(&d.image, &d.labels, &d.bands, d.scale)?;
        let (mut windows, mut counts) = scene_tiles(&primary, 0, &d.labels, cfg)?;
        let block = d.block_tiles * cfg.stride();
        let grid: Vec<Window> = windows.iter().map(|&(_, w)| w).collect();
        let mut split = split::split(&grid, block, d.val_fraction, d.test_fraction, cfg.seed as u32);
        let mut sources = vec![primary];
        for scene in &d.scenes {
            let source = TileSource::open(&scene.image, &scene.labels, &d.bands, d.scale)?;
            let (w, c) = scene_tiles(&source, sources.len(), &scene.labels, cfg)?;
            let (into, name) = match scene.split {
                Split::Train => (&mut split.train, "train"),
                Split::Val => (&mut split.val, "val"),
                Split::Test => (&mut split.test, "test"),
            };
            into.extend(windows.len()..windows.len() + w.len());
            log(format!(
                "scene {}: {} tiles to {name}, {}",
                scene.image.display(),
                w.len(),
                sum_counts(&c, &(0..c.len()).collect::<Vec<_>>())
            ));
            windows.extend(w);
            counts.extend(c);
            sources.push(source);
        }
        if split.train.is_empty() || split.val.is_empty() {
            return Err(TrainError::TooFewTiles {
                train: split.train.len(),
                val: split.val.len(),
            });
        }
        for (name, idx) in [
            ("train", &split.train),
            ("val", &split.val),
            ("test", &split.test),
        ] {
            log(format!(
                "{name}: {} tiles, {}",
                idx.len(),
                sum_counts(&counts, idx)
            ));
        }
        if !split.dropped.is_empty() {
            log(format!(
                "{} tiles straddle split blocks and are left out",
                split.dropped.len()
            ));
        }
        let train_counts: Vec<ClassCounts> = split.train.iter().map(|&i| counts[i]).collect();
        let plan = sampling::plan(&train_counts, &cfg.sampling, |i| {
            let (scene, w) = windows[split.train[i]];
            sources[scene].read(w).map(|t| t.image)
        })?;
        for w in &plan.warnings {
            log(format!("warning: {w}"));
        }
        for line in sampling_log(&plan, cfg.sampling.rich_threshold) {
            log(line);
        }
        let norm = Normalisation {
            scale: d.scale,
            mean: d.mean.clone(),
            std: d.std.clone(),
        };
        Ok(Self {
            sources,
            windows,
            counts,
            split,
            plan,
            norm,
        })
    }

    /// Tile `i` (an index into `windows`), read from its scene.
    pub fn read_tile(&self, i: usize) -> Result<Tile, RasterError> {
        let (scene, w) = self.windows[i];
        self.sources[scene].read(w)
    }

    /// A training sample as a tile (synthetic ones interpolated from their parents).
    fn read_sample(&self, s: Sample) -> Result<Tile, TrainError> {
        let tile = |i: usize| self.read_tile(self.split.train[i]);
        match s {
            Sample::Tile(i) => Ok(tile(i)?),
            Sample::Synthetic {
                a,
                b,
                step,
                label_from,
            } => {
                let ta = tile(a)?;
                let tb = tile(b)?;
                let syn = Synthetic {
                    sample: a,
                    neighbour: b,
                    step,
                };
                let labels = if label_from == a {
                    ta.labels.clone()
                } else {
                    tb.labels
                };
                Ok(Tile {
                    image: syn.apply(&ta.image, &tb.image),
                    labels,
                    side: ta.side,
                })
            }
        }
    }
}

/// The log lines of minority sampling: the class-1 share of the training tiles before
/// sampling, after duplication and after SMOTE, and what each step added (SMOTE's line
/// as the source system words it).
pub fn sampling_log(plan: &SamplingPlan, rich_threshold: f64) -> Vec<String> {
    let pct = |x: f64| format!("{:.2}%", 100.0 * x);
    vec![
        format!(
            "minority sampling: class-1 share of the training tiles {}; {} class-1-rich tiles (>= {:.0}% class 1)",
            pct(plan.share[0]),
            plan.rich.len(),
            100.0 * rich_threshold
        ),
        format!(
            "duplication: {} copies of class-1-rich tiles; class-1 share {} -> {}",
            plan.duplicates,
            pct(plan.share[0]),
            pct(plan.share[1])
        ),
        format!(
            "Generated {} synthetic tiles via SMOTE (k {}); class-1 share {} -> {}",
            plan.synthetic,
            plan.k_used,
            pct(plan.share[1]),
            pct(plan.share[2])
        ),
    ]
}

/// Stacks tiles into `(B, C, T, T)` normalised images and `(B, T, T)` int64 labels.
fn batch(
    tiles: Vec<Tile>,
    norm: &Normalisation,
    augment_with: Option<(&crate::config::AugmentConfig, &mut RandomState)>,
    device: Device,
) -> Result<(Tensor, Tensor), TrainError> {
    let mut xs = Vec::with_capacity(tiles.len());
    let mut ys = Vec::with_capacity(tiles.len());
    let mut aug = augment_with;
    for t in tiles {
        let side = t.side as i64;
        let bands = (t.image.len() / (t.side * t.side)) as i64;
        let mut x = Tensor::from_slice(&t.image).view([bands, side, side]);
        let mut y = Tensor::from_slice(&t.labels).view([side, side]);
        if let Some((cfg, rng)) = aug.as_mut() {
            (x, y) = augment(&x, &y, cfg, rng);
        }
        let mut flat = Vec::<f32>::try_from(x.contiguous().flatten(0, -1))?;
        norm.apply(&mut flat);
        xs.push(Tensor::from_slice(&flat).view([bands, side, side]));
        ys.push(y.to_kind(Kind::Int64));
    }
    Ok((
        Tensor::stack(&xs, 0).to_device(device),
        Tensor::stack(&ys, 0).to_device(device),
    ))
}

/// Learning rate of `epoch` (0-based).
pub fn scheduled_lr(cfg: &TrainConfig, epoch: usize, state: &TrainState) -> f64 {
    let o = &cfg.optim;
    match o.schedule {
        Schedule::Cosine => {
            o.lr * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / o.epochs as f64).cos())
        }
        Schedule::Constant => o.lr,
        Schedule::Plateau => {
            let lr = if state.lr > 0.0 { state.lr } else { o.lr };
            if state.epochs_since_best > 0
                && state.epochs_since_best.is_multiple_of(o.plateau_patience.max(1))
            {
                lr * 0.5
            } else {
                lr
            }
        }
    }
}

/// Validation loss and metrics over the validation tiles (eval mode).
fn validate(
    model: &RiskUNet,
    data: &Dataset,
    cfg: &TrainConfig,
    device: Device,
) -> Result<(f64, ConfusionMatrix), TrainError> {
    let mut matrix = ConfusionMatrix::new();
    let (mut loss_sum, mut n) = (0.0, 0usize);
    for chunk in data.split.val.chunks(cfg.optim.batch_size) {
        let tiles = chunk
            .iter()
            .map(|&i| data.read_tile(i))
            .collect::<Result<Vec<_>, _>>()?;
        let (xs, ys) = batch(tiles, &data.norm, None, device)?;
        let (loss, pred) = tch::no_grad(|| {
            let out = model.forward_t(&xs, false);
            let loss = risk_loss(&out, &ys, &cfg.loss).total.double_value(&[]);
            (loss, out.class_logits.argmax(1, false))
        });
        loss_sum += loss * chunk.len() as f64;
        n += chunk.len();
        let truth = Vec::<u8>::try_from(ys.to_kind(Kind::Uint8).to_device(Device::Cpu).flatten(0, -1))?;
        let pred = Vec::<u8>::try_from(pred.to_kind(Kind::Uint8).to_device(Device::Cpu).flatten(0, -1))?;
        matrix.add(&truth, &pred)?;
    }
    Ok((loss_sum / n.max(1) as f64, matrix))
}

/// The optimiser state file beside a checkpoint: `last.safetensors` -> `last.optim.safetensors`.
pub fn optim_path(checkpoint: &Path) -> PathBuf {
    checkpoint.with_extension("optim.safetensors")
}

/// Writes the weights and, beside them, the optimiser state, each through a temporary
/// file (the writers' one mechanism, [`risk_inference::output::TempOutput`]) that is read
/// back whole before it is renamed into place: a full disk or an interrupted run never
/// leaves a truncated checkpoint under the final name.
fn save_checkpoint(vs: &nn::VarStore, opt: &AdamW, path: &Path) -> Result<(), TrainError> {
    let opt_path = optim_path(path);
    let weights = TempOutput::new(path, "tmp");
    let state = TempOutput::new(&opt_path, "tmp");
    let vars = vs.variables();
    let named: Vec<(&String, &Tensor)> = vars.iter().collect();
    Tensor::write_safetensors(&named, weights.path())?;
    opt.save(state.path())?;
    let verify = |p: &Path| -> Result<(), CheckpointError> {
        Tensor::read_safetensors(p)
            .map(drop)
            .map_err(CheckpointError::ReadBack)
    };
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |err| TrainError::Checkpoint { path, err }
    };
    weights.commit(verify).map_err(failed(path))?;
    state.commit(verify).map_err(failed(&opt_path))
}

/// Why a checkpoint file could not be put in place.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Output(#[from] risk_inference::output::OutputError),
    #[error("reading it back failed ({0})")]
    ReadBack(TchError),
}

/// Where [`fit_with_progress`] reports the batches of each epoch (a progress display);
/// every method does nothing unless implemented.
pub trait EpochProgress {
    /// Epoch `epoch` of `epochs` (1-based) starts, `batches` batches long.
    fn start(&mut self, _batches: usize, _epoch: usize, _epochs: usize) {}
    /// One more batch done; `mean_loss` is the epoch's mean training loss so far.
    fn batch(&mut self, _mean_loss: f64) {}
    /// The batches are done and validation runs.
    fn validating(&mut self) {}
    /// The epoch is done.
    fn finish(&mut self) {}
}

/// No progress display.
impl EpochProgress for () {}

/// What a finished run reports.
#[derive(Debug)]
pub struct FitSummary {
    pub state: TrainState,
    pub out: PathBuf,
    pub init: Option<ImportReport>,
}

/// Trains per `cfg`; `resume` continues from `cfg.out`. `log` gets progress lines.
pub fn fit(cfg: &TrainConfig, resume: bool, log: &mut dyn FnMut(String)) -> Result<FitSummary, TrainError> {
    fit_with_progress(cfg, resume, log, &mut ())
}

/// [`fit`], reporting each epoch's batches to `progress`.
pub fn fit_with_progress(
    cfg: &TrainConfig,
    resume: bool,
    log: &mut dyn FnMut(String),
    progress: &mut dyn EpochProgress,
) -> Result<FitSummary, TrainError> {
    std::fs::create_dir_all(&cfg.out).map_err(io_err(&cfg.out))?;
    tch::manual_seed(cfg.seed as i64);
    let (device, why) = crate::device::select(cfg.device_choice()?)?;
    log(format!("device: {why}"));
    let amp = mixed_precision(cfg.compute.precision, device, log);
    let data = Dataset::prepare(cfg, log)?;
    let mut vs = nn::VarStore::new(device);
    let model = RiskUNet::new(&vs.root(), &cfg.unet());
    let files = RunFiles::new(&cfg.out);
    let mut opt = AdamW::new(
        &vs,
        AdamWConfig {
            weight_decay: cfg.optim.weight_decay,
            ..Default::default()
        },
        cfg.optim.lr,
    );
    if matches!(amp, Some((_, Kind::Half))) {
        opt = opt.with_loss_scaling();
    }
    let (mut state, init) = if resume && files.state.exists() {
        (files.resume(&mut vs, &mut opt, log)?, None)
    } else {
        (TrainState::default(), files.start(cfg, &vs, log)?)
    };
    let run = EpochRun {
        cfg,
        data: &data,
        model: &model,
        device,
        amp,
    };
    while state.epochs_done < cfg.optim.epochs && !state.stopped_early {
        let epoch = state.epochs_done;
        let t0 = Instant::now();
        let lr = scheduled_lr(cfg, epoch, &state);
        opt.set_lr(lr);
        let train_loss = run.train(epoch, &mut opt, progress)?;
        progress.validating();
        let (val_loss, matrix) = amp::autocast(amp, || validate(&model, &data, cfg, device))??;
        progress.finish();
        let row = EpochLog {
            epoch: epoch + 1,
            lr,
            train_loss,
            val_loss,
            val_kappa: matrix.cohen_kappa(),
            val_precision_1: matrix.class_metrics(1).precision,
            val_recall_2: matrix.class_metrics(2).recall,
            val_spearman: matrix.spearman_rho(),
            seconds: t0.elapsed().as_secs_f64(),
        };
        let improved = state.best_val_loss.is_none_or(|b| val_loss < b);
        save_checkpoint(&vs, &opt, &files.last)?;
        if improved {
            save_checkpoint(&vs, &opt, &files.best)?;
            state.best_val_loss = Some(val_loss);
            state.best_epoch = Some(epoch + 1);
            state.epochs_since_best = 0;
        } else {
            state.epochs_since_best += 1;
        }
        state.epochs_done = epoch + 1;
        state.lr = lr;
        state.stopped_early = state.epochs_since_best >= cfg.optim.patience;
        files.append_row(&row)?;
        log(row.log_line(cfg.optim.epochs, improved));
        state.history.push(row);
        files.save_state(&state)?;
    }
    if state.stopped_early {
        log(format!(
            "early stop: no better validation loss for {} epochs",
            cfg.optim.patience
        ));
    }
    Ok(FitSummary {
        state,
        out: cfg.out.clone(),
        init,
    })
}

/// The autocast device and dtype of `compute.precision`, or `None` for fp32 (also for
/// fp16 off CUDA, with a log line).
fn mixed_precision(
    precision: Precision,
    device: Device,
    log: &mut dyn FnMut(String),
) -> Option<(Device, Kind)> {
    match precision {
        Precision::Fp32 => None,
        Precision::Fp16 if device.is_cuda() => {
            log("precision: mixed (autocast float16, dynamic loss scaling)".into());
            Some((device, Kind::Half))
        }
        Precision::Fp16 => {
            log("precision fp16 needs a CUDA device: training in fp32".into());
            None
        }
        Precision::Bf16 => {
            log("precision: mixed (autocast bfloat16)".into());
            Some((device, Kind::BFloat16))
        }
    }
}

/// The files of a run folder: checkpoints, `state.json` and `log.csv`.
struct RunFiles {
    state: PathBuf,
    last: PathBuf,
    best: PathBuf,
    csv: PathBuf,
}

impl RunFiles {
    fn new(out: &Path) -> Self {
        Self {
            state: out.join("state.json"),
            last: out.join("last.safetensors"),
            best: out.join("best.safetensors"),
            csv: out.join("log.csv"),
        }
    }

    /// A new run: the initial weights of `model.init_weights` if set, a fresh `log.csv`.
    fn start(
        &self,
        cfg: &TrainConfig,
        vs: &nn::VarStore,
        log: &mut dyn FnMut(String),
    ) -> Result<Option<ImportReport>, TrainError> {
        let mut init = None;
        if let Some(w) = &cfg.model.init_weights {
            let report = import_safetensors(vs, w)?;
            log(format!(
                "initial weights {}: {} tensors, {} left at initialisation",
                w.display(),
                report.loaded,
                report.kept_init.len()
            ));
            init = Some(report);
        }
        std::fs::write(&self.csv, EpochLog::CSV_HEADER).map_err(io_err(&self.csv))?;
        Ok(init)
    }

    /// `--resume`: the state, the last weights and their optimiser state.
    fn resume(
        &self,
        vs: &mut nn::VarStore,
        opt: &mut AdamW,
        log: &mut dyn FnMut(String),
    ) -> Result<TrainState, TrainError> {
        let text = std::fs::read_to_string(&self.state).map_err(io_err(&self.state))?;
        let state: TrainState = serde_json::from_str(&text).map_err(|err| TrainError::State {
            path: self.state.clone(),
            err,
        })?;
        vs.load(&self.last)?;
        opt.load(&optim_path(&self.last))?;
        log(format!(
            "resumed after epoch {} from {} (optimiser at step {})",
            state.epochs_done,
            self.last.display(),
            opt.step_count()
        ));
        Ok(state)
    }

    fn append_row(&self, row: &EpochLog) -> Result<(), TrainError> {
        let mut csv = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.csv)
            .map_err(io_err(&self.csv))?;
        csv.write_all(row.csv_row().as_bytes()).map_err(io_err(&self.csv))
    }

    fn save_state(&self, state: &TrainState) -> Result<(), TrainError> {
        let json = serde_json::to_vec_pretty(state).map_err(|err| TrainError::State {
            path: self.state.clone(),
            err,
        })?;
        crate::write_atomic(&self.state, &json).map_err(io_err(&self.state))
    }
}

/// What one epoch's training pass needs.
struct EpochRun<'a> {
    cfg: &'a TrainConfig,
    data: &'a Dataset,
    model: &'a RiskUNet,
    device: Device,
    amp: Option<(Device, Kind)>,
}

impl EpochRun<'_> {
    /// One pass over the sampling plan in an order drawn from `seed + 1000 (epoch + 1)`;
    /// returns the mean training loss per tile.
    fn train(
        &self,
        epoch: usize,
        opt: &mut AdamW,
        progress: &mut dyn EpochProgress,
    ) -> Result<f64, TrainError> {
        let cfg = self.cfg;
        // libtorch's generator (dropout, drop-connect) seeded per epoch, like the batch
        // order and the augmentation below: a resumed run draws what an uninterrupted one
        // would have drawn.
        tch::manual_seed((cfg.seed as i64).wrapping_add(1000 * (epoch as i64 + 1)));
        let mut rng = RandomState::new((cfg.seed as u32).wrapping_add(1000 * (epoch as u32 + 1)));
        let mut order: Vec<Sample> = self.data.plan.samples.clone();
        for i in (1..order.len()).rev() {
            let j = rng.randint(i as u64 + 1, 1)[0] as usize;
            order.swap(i, j);
        }
        let (mut loss_sum, mut n) = (0.0, 0usize);
        progress.start(
            order.len().div_ceil(cfg.optim.batch_size),
            epoch + 1,
            cfg.optim.epochs,
        );
        for chunk in order.chunks(cfg.optim.batch_size) {
            let tiles = chunk
                .iter()
                .map(|&s| self.data.read_sample(s))
                .collect::<Result<Vec<_>, _>>()?;
            let (xs, ys) = batch(
                tiles,
                &self.data.norm,
                Some((&cfg.augment, &mut rng)),
                self.device,
            )?;
            let loss = amp::autocast(self.amp, || {
                risk_loss(&self.model.forward_t(&xs, true), &ys, &cfg.loss).total
            })?;
            opt.backward_step(&loss);
            loss_sum += loss.double_value(&[]) * chunk.len() as f64;
            n += chunk.len();
            progress.batch(loss_sum / n as f64);
        }
        Ok(loss_sum / n.max(1) as f64)
    }
}
