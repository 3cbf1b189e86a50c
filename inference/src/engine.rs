//! The tiled inference pipeline for one raster: read -> model -> blend -> write, with
//! reading and writing on their own threads so that I/O hides behind the model.
//!
//! ```text
//!  reader thread                 calling thread                    writer thread
//!  GDAL windows -> normalise  ->  Predictor::run on batches  ->  blend  ->  class map, probs,
//!  -> pad -> batch  (channel 2)   into a rolling accumulator  (ch. 2)   uncertainty GeoTIFFs
//! ```
//!
//! [`Predictor::run`] is one model, or the mean over ensemble members x test-time
//! transforms x scales (see [`crate::predictor`]); averaging happens per tile, before the
//! blend, so nothing downstream changes with the number of views. With several views
//! the predictor also returns the per-pixel mutual information, which the accumulator
//! blends as a fourth plane beside the three probabilities.
//!
//! Memory is bounded whatever the raster size (see [`crate::tiling`]): the accumulator
//! holds `tile` rows of one column block (at most [`EngineOptions::max_block_width`]
//! pixels wide, fewer if the memory budget asks for it), and the channels hold at most two
//! batches and two finished row bands. Outputs are written through
//! [`GeoTiffWriter`](crate::raster::GeoTiffWriter), so a failure leaves no file under the
//! final names.
//!
//! Inputs the model cannot take: a pixel with a NaN or infinite value in any model band is
//! nodata (GDAL's mask only knows a declared nodata value). Nodata pixels, of either kind,
//! take the values of their nearest valid pixels in the tile before the model sees them
//! ([`crate::fill`], as training does), so neither NaN nor a black hole reaches a
//! neighbour's score; a normalised
//! value beyond +-[`INPUT_LIMIT`] is clamped. Both are counted and logged once per raster.
//!
//! A shard ([`EngineOptions::rows`], see [`crate::shard`]) keeps the whole raster's tile
//! plan and runs only the tile rows that reach its rows; its outputs cover those rows.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use crate::autobatch::{self, BatchSize};
use crate::classes::{NODATA, NUM_CLASSES, PALETTE};
use crate::decision::Decision;
use crate::input_scale::{self, InputScale};
use crate::output::TempOutput;
use crate::predictor::{Predictor, normalised_entropy};
use crate::raster::{GeoTiffWriter, InputRaster, RasterError, Window, WriteOptions};
use crate::refine::{self, CrfOptions, CrfReport};
use crate::session::ModelError;
use crate::tiling::{Tile, TilePlan, reflect};

/// Errors of one raster's run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Raster(#[from] RasterError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {msg}")]
    Input { path: PathBuf, msg: String },
    /// A failure on one of the CRF pass's hidden temporary rasters, told as the output's.
    #[error("{0}")]
    Temporary(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// Pixel type of the optional probability and uncertainty rasters (values in [0, 1]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbsType {
    /// Value x 255, rounded, at most 254 (255 is nodata, set only where the input is
    /// nodata).
    U8,
    /// Values as float32, nodata -1.
    F32,
}

/// How to run one raster.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Tile side in pixels (default: the model's `risk.tile_size`).
    pub tile: Option<usize>,
    /// Overlap in pixels (default: the model's `risk.tile_overlap`).
    pub overlap: Option<usize>,
    /// Tiles per model run, or `auto` ([`crate::autobatch`]).
    pub batch: BatchSize,
    /// Memory budget in bytes for the pipeline's buffers.
    pub memory_budget: usize,
    /// Widest column block in pixels (bounds memory on very wide rasters).
    pub max_block_width: usize,
    /// Input bands (1-based) instead of the model's `risk.bands`.
    pub bands: Option<Vec<usize>>,
    /// Build overviews (factors 2, 4, 8, ... while the overview's long side is at least
    /// 256 px; with `cog`, the COG driver's own choice).
    pub overviews: bool,
    /// Write Cloud Optimized GeoTIFFs.
    pub cog: bool,
    /// Dense CRF refinement of the blended probabilities (off when `None`).
    pub crf: Option<CrfOptions>,
    /// How probabilities become classes (the model's `risk.decision`, or the argmax),
    /// applied to the blended probabilities, or to the CRF's marginals when it runs.
    pub decision: Decision,
    /// Write only raster rows `[r0, r1)` (a shard, see [`crate::shard`]); the outputs
    /// cover those rows, georeferenced where they lie, with the values of a whole run.
    pub rows: Option<(usize, usize)>,
    /// How raw values are scaled when the raster's type is not the model's
    /// ([`crate::input_scale`]).
    pub input_scale: InputScale,
    /// Metadata items written into every output (the run's [`crate::provenance`]).
    pub provenance: Vec<(String, String)>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            tile: None,
            overlap: None,
            batch: BatchSize::Tiles(4),
            memory_budget: 2 << 30,
            max_block_width: 8192,
            bands: None,
            overviews: false,
            cog: false,
            crf: None,
            decision: Decision::default(),
            rows: None,
            input_scale: InputScale::default(),
            provenance: Vec::new(),
        }
    }
}

/// Output files of one run.
#[derive(Clone, Debug)]
pub struct Outputs {
    /// The class map: uint8 0/1/2, 255 nodata (`None` only inside the engine, for the
    /// CRF's first pass).
    pub classes: Option<PathBuf>,
    /// Optional 3-band class probabilities.
    pub probs: Option<(PathBuf, ProbsType)>,
    /// Optional uncertainty in [0, 1]: band 1 the normalised predictive entropy; with
    /// several views (ensemble members, TTA transforms, scales) band 2 the normalised
    /// mutual information (see [`crate::predictor`]).
    pub uncertainty: Option<(PathBuf, ProbsType)>,
}

/// What a run did and where its time went (seconds are summed per stage; reading and
/// writing overlap the model, so they do not add up to the wall time).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunReport {
    pub width: usize,
    pub height: usize,
    pub tiles: usize,
    pub tile: usize,
    pub overlap: usize,
    pub column_blocks: usize,
    pub provider: String,
    /// Tiles per model run (the `--batch auto` choice when probed).
    pub batch: usize,
    /// Model runs per batch (ensemble members x TTA transforms x scales).
    pub views: usize,
    pub read_s: f64,
    pub model_s: f64,
    pub blend_s: f64,
    pub write_s: f64,
    pub total_s: f64,
    /// Pixels per class value 0, 1, 2 and nodata (after the CRF when it runs).
    pub class_counts: [u64; 4],
    /// Class counts of the model's blended probabilities, before the CRF.
    pub class_counts_before_crf: Option<[u64; 4]>,
    /// The CRF pass, when it runs.
    pub crf: Option<CrfReport>,
}

/// A batch of normalised, padded tiles from the reader.
struct Batch {
    tiles: Vec<Tile>,
    /// `(n, C, input_height, input_width)`.
    data: Vec<f32>,
}

enum ReadMsg {
    Batch(Batch),
    /// Tile row `k` of the current column block is complete; `valid` is the data mask of
    /// the rows it finalises (`(end - start) x (x1 - x0)`).
    RowDone {
        valid: Vec<bool>,
    },
}

/// A finished band of output rows.
pub(crate) struct RowBand {
    pub(crate) window: Window,
    pub(crate) classes: Vec<u8>,
    /// `(3, h, w)`, only when written.
    pub(crate) probs: Vec<f32>,
    /// `(h, w)` normalised mutual information, only when written.
    pub(crate) mutual_info: Vec<f32>,
    pub(crate) valid: Vec<bool>,
}

/// Per-band normalisation: `(raw * scale - mean) / std` as `raw * a + b`.
#[derive(Clone)]
struct Normalise {
    a: Vec<f32>,
    b: Vec<f32>,
}

/// Scores one raster with `predictor` and writes `outputs`, with the CRF pass when
/// `opts.crf` is set. `progress(done, total)` is called after each batch with tile counts.
pub fn run(
    predictor: &mut Predictor,
    input: &std::path::Path,
    outputs: &Outputs,
    opts: &EngineOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport> {
    let Some(crf) = &opts.crf else {
        return run_model(predictor, input, outputs, opts, progress);
    };
    let start = Instant::now();
    let raster = InputRaster::open(input)?;
    let (w, h) = (raster.width(), raster.height());
    let rows = output_rows(input, opts, h)?;
    // Pass 1: blended probabilities into a temporary float32 raster beside the output,
    // over the rows of every CRF tile (halo included) that the CRF pass will run (and
    // the model's uncertainty over the same rows, whose mutual information band the CRF
    // passes on).
    let blend_rows =
        refine::rows_needed(w, h, crf, opts.memory_budget, rows).map_err(|msg| EngineError::Input {
            path: input.to_path_buf(),
            msg,
        })?;
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
    let pass1_opts = EngineOptions {
        overviews: false,
        cog: false,
        rows: Some(blend_rows),
        ..opts.clone()
    };
    // Errors on the hidden temporaries name the output they are for (a full disk is the
    // output's problem, not a strange file's).
    let temporaries: Vec<&TempOutput> = std::iter::once(&blended).chain(&model_uncertainty).collect();
    let named = |e: EngineError| for_output(e, &temporaries, beside);
    let mut report = run_model(predictor, input, &pass1, &pass1_opts, progress).map_err(named)?;
    // Pass 2: the CRF, writing the real outputs.
    let writers = Writers::create(outputs, w, h, &raster.georef(), opts, predictor.views())?;
    drop(raster);
    let crf_report = refine::run_crf(
        input,
        refine::ModelPass {
            probs: blended.path(),
            uncertainty: model_uncertainty.as_ref().map(|t| t.path()),
            first_row: blend_rows.0,
        },
        outputs,
        crf,
        opts,
        rows,
        writers,
    )
    .map_err(named)?;
    report.class_counts_before_crf = Some(report.class_counts);
    report.class_counts = crf_report.class_counts;
    report.crf = Some(crf_report);
    report.total_s = start.elapsed().as_secs_f64();
    Ok(report)
}

/// `e` with every mention of one of `temporaries` (and of the hidden name GDAL's writer
/// gave it) replaced by the output it serves.
fn for_output(e: EngineError, temporaries: &[&TempOutput], output: &std::path::Path) -> EngineError {
    let mut text = e.to_string();
    let before = text.clone();
    for t in temporaries {
        let what = format!("{} (temporary CRF input)", output.display());
        // The writer's own temporary of the temporary first, then the temporary itself.
        let inner = crate::output::temp_path_for(t.path(), "tmp");
        text = text.replace(&inner.display().to_string(), &what);
        text = text.replace(&t.path().display().to_string(), &what);
    }
    if text == before {
        e
    } else {
        EngineError::Temporary(text)
    }
}

/// The rows `[r0, r1)` a run writes: `opts.rows`, checked against the raster's `height`,
/// else all.
fn output_rows(input: &std::path::Path, opts: &EngineOptions, height: usize) -> Result<(usize, usize)> {
    match opts.rows {
        None => Ok((0, height)),
        Some((r0, r1)) if r0 < r1 && r1 <= height => Ok((r0, r1)),
        Some((r0, r1)) => Err(EngineError::Input {
            path: input.to_path_buf(),
            msg: format!("has {height} rows; rows {r0}..{r1} were asked for"),
        }),
    }
}

/// The model pass: read -> model -> blend -> write.
fn run_model(
    predictor: &mut Predictor,
    input: &std::path::Path,
    outputs: &Outputs,
    opts: &EngineOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport> {
    let start = Instant::now();
    let raster = InputRaster::open(input)?;
    let info = predictor.info().clone();
    let bands = opts.bands.clone().unwrap_or_else(|| info.bands.clone());
    let input_err = |msg: String| EngineError::Input {
        path: input.to_path_buf(),
        msg,
    };
    if bands.len() != info.channels {
        return Err(input_err(format!(
            "{} band(s) selected, the model takes {}",
            bands.len(),
            info.channels
        )));
    }
    if let Some(&b) = bands.iter().find(|&&b| b > raster.band_count()) {
        return Err(input_err(format!(
            "has {} band(s); the model {} needs band {b} (bands {bands:?})",
            raster.band_count(),
            predictor.path().display()
        )));
    }
    let mut norm = Normalise {
        a: Vec::new(),
        b: Vec::new(),
    };
    let types = bands
        .iter()
        .map(|&b| raster.band_type_name(b))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (scales, warning) =
        input_scale::band_scales(&info, &bands, &types, opts.input_scale).map_err(input_err)?;
    if let Some(w) = warning {
        tracing::warn!("{}: {w}", input.display());
    }
    for (i, scale) in scales.into_iter().enumerate() {
        norm.a.push(scale / info.std[i]);
        norm.b.push(-info.mean[i] / info.std[i]);
    }

    let plan = TilePlan::new(
        raster.width(),
        raster.height(),
        opts.tile.unwrap_or(info.tile_size),
        opts.overlap.unwrap_or(info.tile_overlap),
    );
    // Bytes per accumulator column: 4 floats per row of the tile band (5 with the mutual
    // information), plus the finished band's classes / probs / mutual information / mask
    // (up to 2 in flight) and the read buffers.
    let views = predictor.views();
    let want_mi = outputs.uncertainty.is_some() && views > 1;
    let mi_bytes = if want_mi { 4 + 3 * 4 } else { 0 };
    let per_column = plan.tile.min(plan.height) * (16 + 3 * (1 + 12 + 1) + mi_bytes);
    let block_width =
        (opts.memory_budget / per_column.max(1)).clamp(plan.tile, opts.max_block_width.max(plan.tile));
    let blocks = plan.column_blocks(block_width);
    // Tile rows to run: from the first that reaches row r0 to the one whose row band holds
    // row r1 - 1 (all of them without a row range).
    let (w, h) = (raster.width(), raster.height());
    let (r0, r1) = output_rows(input, opts, h)?;
    let row_bands = plan.row_bands();
    let first = plan
        .ys
        .iter()
        .position(|&y| y + plan.tile_height as isize > r0 as isize)
        .unwrap_or(0);
    let last = row_bands
        .iter()
        .position(|&(_, end)| end >= r1)
        .unwrap_or(row_bands.len() - 1);
    let tile_rows = first..last + 1;

    let batch = match opts.batch {
        BatchSize::Tiles(n) => n.max(1),
        BatchSize::Auto => {
            let per_tile = autobatch::bytes_per_tile(info.channels, plan.tile_height, plan.tile_width, views);
            predictor.auto_batch(
                plan.tile_height,
                plan.tile_width,
                opts.memory_budget / 4 / per_tile.max(1),
            )?
        }
    };
    let georef = raster.georef();
    if georef.geo_transform.is_none() && georef.projection.is_empty() {
        // A JPEG or PNG without a world file: the map is written, but a GIS cannot place it.
        tracing::warn!(
            "{}: no georeferencing (no geotransform, no CRS): the risk map gets pixel coordinates only",
            input.display()
        );
    }
    let writers = Writers::create(outputs, w, h, &georef, opts, views)?;
    let mut report = RunReport {
        width: w,
        height: h,
        tile: plan.tile,
        overlap: plan.overlap,
        column_blocks: blocks.len(),
        provider: predictor.provider().to_string(),
        batch,
        views,
        ..RunReport::default()
    };
    let total_tiles: usize = blocks
        .iter()
        .map(|&(x0, x1)| tile_rows.len() * plan.row_tiles(0, x0, x1).len())
        .sum();
    report.tiles = total_tiles;
    drop(raster);

    let want_probs = outputs.probs.is_some() || outputs.uncertainty.is_some();
    let (read_tx, read_rx) = sync_channel::<std::result::Result<ReadMsg, RasterError>>(2);
    let (write_tx, write_rx) = sync_channel::<RowBand>(2);
    let result = std::thread::scope(|scope| -> Result<()> {
        let reader = {
            let plan = plan.clone();
            let blocks = blocks.clone();
            let bands = bands.clone();
            let norm = norm.clone();
            let input = input.to_path_buf();
            let rows = Rows {
                tile_rows: tile_rows.clone(),
                keep: (r0, r1),
            };
            scope.spawn(move || read_tiles(&input, &plan, &blocks, &rows, &bands, &norm, batch, &read_tx))
        };
        let writer = scope.spawn(move || writers.write_all(write_rx));

        let mut done = 0;
        let mut model_time = Duration::ZERO;
        let mut blend_time = Duration::ZERO;
        let outcome = (|| -> Result<()> {
            for &(x0, x1) in &blocks {
                let mut acc = Accumulator::new(&plan, x0, x1, want_mi);
                acc.shift_to(plan.row_origin(tile_rows.start));
                let mut probs = Vec::new();
                let mut mutual_info = Vec::new();
                for k in tile_rows.clone() {
                    let (band_start, band_end) = clip_rows(row_bands[k], (r0, r1));
                    loop {
                        let msg = read_rx.recv().map_err(|_| input_err("reader stopped".into()))??;
                        match msg {
                            ReadMsg::Batch(batch) => {
                                let t0 = Instant::now();
                                let (ih, iw) = (plan.tile_height, plan.tile_width);
                                let n = batch.tiles.len();
                                probs.resize(n * NUM_CLASSES * ih * iw, 0.0);
                                mutual_info.resize(if want_mi { n * ih * iw } else { 0 }, 0.0);
                                let mi = want_mi.then_some(mutual_info.as_mut_slice());
                                predictor.run(&batch.data, n, ih, iw, &mut probs, mi)?;
                                let t1 = Instant::now();
                                for (i, t) in batch.tiles.iter().enumerate() {
                                    let per = NUM_CLASSES * ih * iw;
                                    let mi = want_mi.then(|| &mutual_info[i * ih * iw..(i + 1) * ih * iw]);
                                    acc.add(t, &probs[i * per..(i + 1) * per], mi);
                                }
                                model_time += t1 - t0;
                                blend_time += t1.elapsed();
                                done += batch.tiles.len();
                                progress(done, total_tiles);
                            }
                            ReadMsg::RowDone { valid } => {
                                let t0 = Instant::now();
                                let band = (band_end > band_start).then(|| {
                                    acc.finish_rows(band_start, band_end, valid, want_probs, &opts.decision)
                                });
                                if k + 1 < plan.ys.len() {
                                    acc.shift_to(plan.row_origin(k + 1));
                                }
                                blend_time += t0.elapsed();
                                if let Some(band) = band
                                    && write_tx.send(band).is_err()
                                {
                                    return Ok(()); // the writer failed; its error is reported below
                                }
                                break;
                            }
                        }
                    }
                }
            }
            Ok(())
        })();
        drop(write_tx);
        drop(read_rx);
        let read_s = reader.join().expect("reader thread panicked");
        let written = writer.join().expect("writer thread panicked");
        outcome?;
        let (write_s, counts, writers) = written?;
        writers.finish()?;
        report.read_s = read_s;
        report.write_s = write_s;
        report.model_s = model_time.as_secs_f64();
        report.blend_s = blend_time.as_secs_f64();
        report.class_counts = counts;
        Ok(())
    });
    result?;
    report.total_s = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The tile rows a pass runs and the raster rows it keeps.
#[derive(Clone)]
struct Rows {
    tile_rows: std::ops::Range<usize>,
    keep: (usize, usize),
}

/// Row band `[start, end)` clipped to `[r0, r1)` (empty as `(start, start)`).
fn clip_rows((start, end): (usize, usize), (r0, r1): (usize, usize)) -> (usize, usize) {
    let a = start.max(r0);
    (a, end.min(r1).max(a))
}

/// Reader thread: opens its own handle, walks column blocks and tile rows, sends batches
/// and row-completion messages. Returns the seconds spent reading.
#[allow(clippy::too_many_arguments)]
fn read_tiles(
    path: &std::path::Path,
    plan: &TilePlan,
    blocks: &[(usize, usize)],
    rows: &Rows,
    bands: &[usize],
    norm: &Normalise,
    batch: usize,
    tx: &SyncSender<std::result::Result<ReadMsg, RasterError>>,
) -> f64 {
    let mut read_time = Duration::ZERO;
    let mut stats = InputStats::default();
    let outcome = (|| -> std::result::Result<(), RasterError> {
        let raster = InputRaster::open(path)?;
        let c = bands.len();
        let mut float_input = false;
        for &b in bands {
            float_input |= raster.band_type_name(b)?.contains("Float");
        }
        let mut raw = Vec::new();
        let mut scratch = Vec::new();
        let mut tile_valid = Vec::new();
        let row_bands = plan.row_bands();
        for &(x0, x1) in blocks {
            for k in rows.tile_rows.clone() {
                let (start, end) = clip_rows(row_bands[k], rows.keep);
                let tiles = plan.row_tiles(k, x0, x1);
                for chunk in tiles.chunks(batch) {
                    let t0 = Instant::now();
                    let (ih, iw) = (plan.tile_height, plan.tile_width);
                    let mut data = vec![0.0f32; chunk.len() * c * ih * iw];
                    for (i, tile) in chunk.iter().enumerate() {
                        // Raster row / column of every tile pixel (reflected outside), and
                        // the window that holds them all.
                        let src_y: Vec<usize> = (0..ih)
                            .map(|y| reflect(tile.y + y as isize, plan.height))
                            .collect();
                        let src_x: Vec<usize> = (0..iw)
                            .map(|x| reflect(tile.x + x as isize, plan.width))
                            .collect();
                        let (y0, y1) = (
                            src_y.iter().min().copied().unwrap_or(0),
                            src_y.iter().max().copied().unwrap_or(0) + 1,
                        );
                        let (x0, x1) = (
                            src_x.iter().min().copied().unwrap_or(0),
                            src_x.iter().max().copied().unwrap_or(0) + 1,
                        );
                        let win = Window::new(x0, y0, x1 - x0, y1 - y0);
                        raw.resize(c * win.pixels(), 0.0f32);
                        raster.read_bands(bands, win, &mut raw)?;
                        // Nodata (and non-finite values) take their nearest valid values,
                        // as in training (`fill`): no black walls around holes.
                        tile_valid.resize(win.pixels(), false);
                        raster.read_valid(bands, win, &mut tile_valid, &mut scratch)?;
                        if float_input {
                            raw.chunks(win.pixels())
                                .for_each(|band| mark_non_finite(&mut tile_valid, band));
                        }
                        crate::fill::fill_nearest(&mut raw, win.width, win.height, &tile_valid);
                        let dst = &mut data[i * c * ih * iw..(i + 1) * c * ih * iw];
                        for b in 0..c {
                            let src = &raw[b * win.pixels()..(b + 1) * win.pixels()];
                            let out = &mut dst[b * ih * iw..(b + 1) * ih * iw];
                            let (a, off) = (norm.a[b], norm.b[b]);
                            // Columns in order (the tile lies inside the raster across):
                            // a straight, vectorisable pass; else gather the reflected ones.
                            let straight = win.width == iw;
                            for (y, &sy) in src_y.iter().enumerate() {
                                let row = &src[(sy - y0) * win.width..(sy - y0 + 1) * win.width];
                                let out_row = &mut out[y * iw..(y + 1) * iw];
                                if straight {
                                    for (o, &v) in out_row.iter_mut().zip(row) {
                                        *o = normalise(v, a, off, &mut stats);
                                    }
                                } else {
                                    for (o, &sx) in out_row.iter_mut().zip(&src_x) {
                                        *o = normalise(row[sx - x0], a, off, &mut stats);
                                    }
                                }
                            }
                        }
                    }
                    read_time += t0.elapsed();
                    let tiles = chunk.to_vec();
                    if tx.send(Ok(ReadMsg::Batch(Batch { tiles, data }))).is_err() {
                        return Ok(());
                    }
                }
                let t0 = Instant::now();
                let window = Window::new(x0, start, x1 - x0, end - start);
                let mut valid = vec![false; window.pixels()];
                if end > start {
                    raster.read_valid(bands, window, &mut valid, &mut scratch)?;
                    if float_input {
                        mask_non_finite(&raster, bands, window, &mut valid, &mut raw)?;
                    }
                }
                read_time += t0.elapsed();
                if tx.send(Ok(ReadMsg::RowDone { valid })).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        let _ = tx.send(Err(e));
    }
    if stats.non_finite > 0 {
        tracing::warn!(
            "{}: {} non-finite value(s) (NaN or infinite) read as nodata; the model sees their nearest valid values there, as at any nodata hole",
            path.display(),
            stats.non_finite
        );
    }
    if stats.clamped > 0 {
        tracing::warn!(
            "{}: {} value(s) beyond the model's input range (+-{INPUT_LIMIT} after its normalisation) were clamped; check the bands and the model's risk.scale / risk.mean / risk.std",
            path.display(),
            stats.clamped
        );
    }
    read_time.as_secs_f64()
}

/// Largest normalised input fed to a model: the largest float16 (an FP16 model would
/// see infinity beyond it, and float32 layers overflow long before 1e30).
pub const INPUT_LIMIT: f32 = 65504.0;

/// What the reader did to values outside the model's domain (counted, logged once).
#[derive(Default)]
struct InputStats {
    non_finite: u64,
    clamped: u64,
}

/// `v * a + b`, with a non-finite `v` read as 0 (its pixel is nodata, see
/// [`mask_non_finite`]) and the result clamped to +-[`INPUT_LIMIT`].
#[inline]
fn normalise(v: f32, a: f32, b: f32, stats: &mut InputStats) -> f32 {
    let finite = v.is_finite();
    stats.non_finite += !finite as u64;
    let x = if finite { v } else { 0.0 } * a + b;
    let c = x.clamp(-INPUT_LIMIT, INPUT_LIMIT);
    stats.clamped += (c != x) as u64;
    c
}

/// Marks as nodata every pixel of `window` where one of `bands` is NaN or infinite
/// (float rasters only: GDAL's mask knows a NaN nodata value, not NaNs elsewhere).
fn mask_non_finite(
    raster: &InputRaster,
    bands: &[usize],
    window: Window,
    valid: &mut [bool],
    buf: &mut Vec<f32>,
) -> std::result::Result<(), RasterError> {
    buf.resize(window.pixels(), 0.0);
    for &b in bands {
        raster.read_band(b, window, &mut buf[..window.pixels()])?;
        mark_non_finite(valid, buf);
    }
    Ok(())
}

/// Clears `valid` where `band` (one band's values, same pixels) is NaN or infinite.
fn mark_non_finite(valid: &mut [bool], band: &[f32]) {
    for (v, x) in valid.iter_mut().zip(band) {
        *v &= x.is_finite();
    }
}

/// Weighted sums of tile probabilities over `tile` rows of one column block, starting at
/// raster row `origin`.
struct Accumulator {
    /// Columns covered: the union of the block's tiles (wider than the block itself).
    xa: usize,
    width: usize,
    /// Output columns of the block.
    x0: usize,
    x1: usize,
    rows: usize,
    origin: usize,
    /// `(3, rows, width)` weighted probability sums.
    sums: Vec<f32>,
    /// `(rows, width)` weight sums.
    weights: Vec<f32>,
    /// `(rows, width)` weighted mutual information sums (empty when not wanted).
    mutual_info: Vec<f32>,
    /// Raster size.
    raster: (usize, usize),
    overlap: usize,
}

impl Accumulator {
    fn new(plan: &TilePlan, x0: usize, x1: usize, mutual_info: bool) -> Self {
        let tiles = plan.row_tiles(0, x0, x1);
        let inside = |t: &Tile| t.inside(plan.width, plan.height);
        let xa = tiles.first().map_or(x0, |t| inside(t).x);
        let xb = tiles.last().map_or(x1, |t| inside(t).right());
        let rows = plan.tile_height.min(plan.height);
        let width = xb - xa;
        Self {
            xa,
            width,
            x0,
            x1,
            rows,
            origin: 0,
            raster: (plan.width, plan.height),
            sums: vec![0.0; NUM_CLASSES * rows * width],
            weights: vec![0.0; rows * width],
            mutual_info: if mutual_info {
                vec![0.0; rows * width]
            } else {
                Vec::new()
            },
            overlap: plan.overlap,
        }
    }

    /// Adds one tile's `(3, height, width)` probabilities and, when the accumulator keeps
    /// it, its `(height, width)` mutual information (the part inside the raster).
    fn add(&mut self, tile: &Tile, probs: &[f32], mutual_info: Option<&[f32]>) {
        let win = tile.inside(self.raster.0, self.raster.1);
        let (weight_x, weight_y) = tile.weights(self.raster.0, self.raster.1, self.overlap);
        let iw = tile.width;
        let plane = tile.height * iw;
        let (dx, dy) = (
            (win.x as isize - tile.x) as usize,
            (win.y as isize - tile.y) as usize,
        );
        for y in 0..win.height {
            let (ty, ay) = (dy + y, win.y + y - self.origin);
            let wy = weight_y[ty];
            let row = ay * self.width + (win.x - self.xa);
            for x in 0..win.width {
                let tx = dx + x;
                let wgt = wy * weight_x[tx];
                self.weights[row + x] += wgt;
                for c in 0..NUM_CLASSES {
                    self.sums[c * self.rows * self.width + row + x] += wgt * probs[c * plane + ty * iw + tx];
                }
                if let (Some(mi), false) = (mutual_info, self.mutual_info.is_empty()) {
                    self.mutual_info[row + x] += wgt * mi[ty * iw + tx];
                }
            }
        }
    }

    /// Divides out the weights of rows `[start, end)` (block columns only) and returns
    /// them as a finished band.
    fn finish_rows(
        &self,
        start: usize,
        end: usize,
        valid: Vec<bool>,
        want_probs: bool,
        decision: &Decision,
    ) -> RowBand {
        let (w, h) = (self.x1 - self.x0, end - start);
        let mut classes = vec![0u8; w * h];
        let mut probs = if want_probs {
            vec![0.0f32; NUM_CLASSES * w * h]
        } else {
            Vec::new()
        };
        let keep_mi = !self.mutual_info.is_empty();
        let mut mutual_info = vec![0.0f32; if keep_mi { w * h } else { 0 }];
        let plane = self.rows * self.width;
        for y in 0..h {
            let src_row = (start + y - self.origin) * self.width + (self.x0 - self.xa);
            for x in 0..w {
                let i = y * w + x;
                if !valid[i] {
                    classes[i] = NODATA;
                    continue;
                }
                let s = src_row + x;
                let inv = 1.0 / self.weights[s];
                let p = [0, 1, 2].map(|c| self.sums[c * plane + s] * inv);
                classes[i] = decision.class(&p);
                if want_probs {
                    for c in 0..NUM_CLASSES {
                        probs[c * w * h + i] = p[c];
                    }
                }
                if keep_mi {
                    mutual_info[i] = self.mutual_info[s] * inv;
                }
            }
        }
        RowBand {
            window: Window::new(self.x0, start, w, h),
            classes,
            probs,
            mutual_info,
            valid,
        }
    }

    /// Moves the origin down to raster row `new_origin`, keeping the rows' partial sums.
    fn shift_to(&mut self, new_origin: usize) {
        let d = new_origin - self.origin;
        let (rows, width) = (self.rows, self.width);
        let keep = rows.saturating_sub(d);
        for c in 0..NUM_CLASSES {
            let plane = &mut self.sums[c * rows * width..(c + 1) * rows * width];
            plane.copy_within(d.min(rows) * width.., 0);
            plane[keep * width..].fill(0.0);
        }
        for plane in [&mut self.weights, &mut self.mutual_info] {
            if !plane.is_empty() {
                plane.copy_within(d.min(rows) * width.., 0);
                plane[keep * width..].fill(0.0);
            }
        }
        self.origin = new_origin;
    }
}

/// The open output files of one run, covering raster rows `row_offset..` (all rows
/// unless the run is a shard).
pub(crate) struct Writers {
    row_offset: usize,
    classes: Option<GeoTiffWriter>,
    probs: Option<(GeoTiffWriter, ProbsType)>,
    uncertainty: Option<(GeoTiffWriter, ProbsType)>,
}

impl Writers {
    /// Opens the outputs; `views` is the predictor's model runs per batch (the
    /// uncertainty raster gets a mutual information band when there are several).
    pub(crate) fn create(
        outputs: &Outputs,
        w: usize,
        h: usize,
        georef: &crate::raster::GeoRef,
        opts: &EngineOptions,
        views: usize,
    ) -> Result<Self> {
        // A shard's outputs hold its rows only, georeferenced where they lie.
        let (r0, r1) = opts.rows.unwrap_or((0, h));
        let (h, georef) = (r1 - r0, &georef.offset(0.0, r0 as f64));
        let layout = WriteOptions {
            overviews: if opts.overviews {
                overview_factors(w, h)
            } else {
                Vec::new()
            },
            cog: opts.cog,
            metadata: opts.provenance.clone(),
            ..WriteOptions::default()
        };
        let create =
            |path: &PathBuf, bands: usize, float: bool, options: WriteOptions| -> Result<GeoTiffWriter> {
                Ok(if float {
                    GeoTiffWriter::create::<f32>(path, w, h, bands, georef, options)?
                } else {
                    GeoTiffWriter::create::<u8>(path, w, h, bands, georef, options)?
                })
            };
        let classes = outputs
            .classes
            .as_ref()
            .map(|path| {
                let options = WriteOptions {
                    nodata: Some(NODATA as f64),
                    color_table: PALETTE.to_vec(),
                    band_descriptions: vec!["risk class (0 Low, 1 Medium, 2 High)".into()],
                    attribute_table: Some(crate::classes::attribute_table()),
                    ..layout.clone()
                };
                create(path, 1, false, options)
            })
            .transpose()?;
        let encoding = |ty: &ProbsType, what: &str| match ty {
            ProbsType::U8 => (
                255.0,
                [("SCALE".to_string(), format!("{what} x 255"))]
                    .into_iter()
                    .chain(layout.metadata.iter().cloned())
                    .collect(),
            ),
            ProbsType::F32 => (-1.0, layout.metadata.clone()),
        };
        let probs = outputs
            .probs
            .as_ref()
            .map(|(path, ty)| {
                let (nodata, metadata) = encoding(ty, "probability");
                let options = WriteOptions {
                    nodata: Some(nodata),
                    band_descriptions: crate::classes::CLASS_NAMES
                        .iter()
                        .map(|n| format!("P({n})"))
                        .collect(),
                    metadata,
                    ..layout.clone()
                };
                create(path, 3, *ty == ProbsType::F32, options).map(|writer| (writer, *ty))
            })
            .transpose()?;
        let uncertainty = outputs
            .uncertainty
            .as_ref()
            .map(|(path, ty)| {
                let (nodata, mut metadata) = encoding(ty, "uncertainty");
                metadata.push(("VIEWS".to_string(), views.to_string()));
                let mut band_descriptions =
                    vec!["normalised predictive entropy: H(mean p) / ln 3 (total uncertainty)".to_string()];
                if views > 1 {
                    band_descriptions.push(format!(
                        "normalised mutual information: (H(mean p) - mean H(p)) / ln 3 over {views} views \
                         (epistemic uncertainty: ensemble members x TTA transforms x scales)"
                    ));
                }
                let options = WriteOptions {
                    nodata: Some(nodata),
                    metadata,
                    ..layout.clone()
                };
                let bands = band_descriptions.len();
                let options = WriteOptions {
                    band_descriptions,
                    ..options
                };
                create(path, bands, *ty == ProbsType::F32, options).map(|writer| (writer, *ty))
            })
            .transpose()?;
        Ok(Self {
            row_offset: r0,
            classes,
            probs,
            uncertainty,
        })
    }

    /// Writer thread body: writes every band it receives. Returns the seconds spent, the
    /// class counts and itself, to be finished by the caller.
    fn write_all(mut self, rx: Receiver<RowBand>) -> std::result::Result<(f64, [u64; 4], Self), RasterError> {
        let mut time = Duration::ZERO;
        let mut counts = [0u64; 4];
        for band in rx {
            let t0 = Instant::now();
            self.write(&band, &mut counts)?;
            time += t0.elapsed();
        }
        Ok((time.as_secs_f64(), counts, self))
    }

    /// Writes one finished band to every output and adds its classes to `counts`.
    pub(crate) fn write(
        &mut self,
        band: &RowBand,
        counts: &mut [u64; 4],
    ) -> std::result::Result<(), RasterError> {
        for &c in &band.classes {
            counts[if c == NODATA { 3 } else { c as usize }] += 1;
        }
        let window = Window {
            y: band.window.y - self.row_offset,
            ..band.window
        };
        if let Some(writer) = &mut self.classes {
            writer.write_band(1, window, &band.classes)?;
        }
        let n = band.window.pixels();
        if let Some((writer, ty)) = &mut self.probs {
            write_scores(writer, *ty, window, band, &band.probs)?;
        }
        if let Some((writer, ty)) = &mut self.uncertainty {
            let mut values: Vec<f32> = (0..n)
                .map(|i| normalised_entropy([band.probs[i], band.probs[n + i], band.probs[2 * n + i]]))
                .collect();
            if writer.band_count() == 2 {
                assert_eq!(band.mutual_info.len(), n, "mutual information of {}", band.window);
                values.extend_from_slice(&band.mutual_info);
            }
            write_scores(writer, *ty, window, band, &values)?;
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> std::result::Result<(), RasterError> {
        if let Some(w) = self.classes {
            w.finish()?;
        }
        if let Some((w, _)) = self.probs {
            w.finish()?;
        }
        if let Some((w, _)) = self.uncertainty {
            w.finish()?;
        }
        Ok(())
    }
}

/// Writes band-major `values` in [0, 1] (as many bands as the writer has) of `band`
/// into `window` of the output, encoded as `ty`, nodata where the input is nodata.
fn write_scores(
    writer: &mut GeoTiffWriter,
    ty: ProbsType,
    window: Window,
    band: &RowBand,
    values: &[f32],
) -> std::result::Result<(), RasterError> {
    let n = band.window.pixels();
    let valid = |i: usize| band.valid[i % n];
    match ty {
        ProbsType::U8 => {
            let buf: Vec<u8> = values
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    if valid(i) {
                        (p * 255.0).round().min(254.0) as u8
                    } else {
                        255
                    }
                })
                .collect();
            writer.write_bands(window, &buf)
        }
        ProbsType::F32 => {
            let buf: Vec<f32> = values
                .iter()
                .enumerate()
                .map(|(i, &p)| if valid(i) { p } else { -1.0 })
                .collect();
            writer.write_bands(window, &buf)
        }
    }
}

/// Overview factors 2, 4, 8, ... while the overview's long side stays >= 256 px.
pub fn overview_factors(width: usize, height: usize) -> Vec<i32> {
    let long = width.max(height);
    (1..)
        .map(|k| 1i32 << k)
        .take_while(|&f| long / f as usize >= 256)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overviews_stop_at_256_pixels() {
        assert_eq!(overview_factors(512, 300), vec![2]);
        assert_eq!(overview_factors(8192, 100), vec![2, 4, 8, 16, 32]);
        assert!(overview_factors(300, 200).is_empty());
    }

    #[test]
    fn accumulator_averages_overlapping_tiles_exactly() {
        // 96 px wide, tiles of 64 overlapping by 32: 2 tiles, at overlap 24 they reach 4 px
        // beyond both edges (x = -4, 36); 16 px high: one tile of 64 rows centred on them.
        let plan = TilePlan::new(96, 16, 64, 32);
        assert_eq!((plan.xs.clone(), plan.ys.clone()), (vec![-4, 36], vec![-24]));
        let mut acc = Accumulator::new(&plan, 0, 96, false);
        let tiles = plan.row_tiles(0, 0, 96);
        let n = plan.tile_width * plan.tile_height;
        let constant = |p: [f32; 3]| -> Vec<f32> { p.iter().flat_map(|&v| vec![v; n]).collect() };
        acc.add(&tiles[0], &constant([0.7, 0.2, 0.1]), None);
        acc.add(&tiles[1], &constant([0.1, 0.2, 0.7]), None);
        let band = acc.finish_rows(0, 16, vec![true; 96 * 16], true, &Decision::default());
        let p0 = |x: usize| band.probs[x];
        // Column 50: tile 0 at i = 54, 9 px from its right end (margin 8 px, then a ramp
        // of 24 px: smoothstep((9 + 0.5 - 8) / 24)); tile 1 at i = 14: smoothstep(6.5 / 24).
        let smooth = |s: f32| s * s * (3.0 - 2.0 * s);
        let (wa, wb) = (smooth(1.5 / 24.0), smooth(6.5 / 24.0));
        let expect = (wa * 0.7 + wb * 0.1) / (wa + wb);
        assert!((p0(50) - expect).abs() < 1e-6, "{} vs {expect}", p0(50));
        // Columns 0..36 are covered by tile 0 only, 60..96 by tile 1 only.
        assert!((p0(0) - 0.7).abs() < 1e-6);
        assert!((p0(35) - 0.7).abs() < 1e-6);
        assert!((p0(95) - 0.1).abs() < 1e-6);
        assert_eq!(band.classes[0], 0);
        assert_eq!(band.classes[95], 2);
    }
}
