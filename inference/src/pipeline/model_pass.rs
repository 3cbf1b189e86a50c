//! The model pass: read -> model -> blend -> write for one raster, with reading and
//! writing on their own threads so that I/O hides behind the model.
//!
//! ```text
//!  reader thread (read.rs)       calling thread                      writer thread
//!  GDAL windows -> normalise  ->  Predictor::run on batches  ->  blend  ->  Writers (outputs.rs):
//!  -> pad -> batch  (channel 2)   into a rolling accumulator  (ch. 2)   class map, probs,
//!                                 (blend.rs)                            uncertainty GeoTIFFs
//! ```
//!
//! [`Predictor::run`] is one model, or the mean over ensemble members x test-time
//! transforms x scales (see [`crate::predictor`]); averaging happens per tile, before the
//! blend, so nothing downstream changes with the number of views. With several views
//! the predictor also returns the per-pixel mutual information, which the accumulator
//! blends as a fourth plane beside the three probabilities.
//!
//! Memory is bounded whatever the raster size ([`super::budget`]): the accumulator holds
//! one tile row of one column block, and the channels hold at most two batches and two
//! finished row bands. A shard ([`RunOptions::rows`]) keeps the whole raster's tile plan
//! and runs only the tile rows that reach its rows; its outputs cover those rows.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use super::blend::Accumulator;
use super::error::{PipelineError, Result};
use super::options::{Outputs, RunOptions};
use super::outputs::{RowBand, Writers};
use super::plan::{ModelPlan, clip_rows};
use super::read::{Batch, ReadMsg, ReadResult, read_tiles};
use super::report::RunReport;
use crate::classes::NUM_CLASSES;
use crate::decision::Decision;
use crate::predictor::Predictor;
use crate::raster::InputRaster;

/// Scores `input` with `predictor` into `outputs` (no CRF).
pub(super) fn run_model(
    predictor: &mut Predictor,
    input: &Path,
    outputs: &Outputs,
    opts: &RunOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport> {
    let start = Instant::now();
    let raster = InputRaster::open(input)?;
    let plan = ModelPlan::new(predictor, &raster, input, outputs, opts)?;
    let (w, h) = (raster.width(), raster.height());
    let georef = raster.georef();
    if georef.geo_transform.is_none() && georef.projection.is_empty() {
        // A JPEG or PNG without a world file: the map is written, but a GIS cannot place it.
        tracing::warn!(
            "{}: no georeferencing (no geotransform, no CRS): the risk map gets pixel coordinates only",
            input.display()
        );
    }
    let writers = Writers::create(outputs, w, h, &georef, opts, plan.views)?;
    let mut report = RunReport {
        width: w,
        height: h,
        tiles: plan.total_tiles(),
        tile: plan.tiles.tile,
        overlap: plan.tiles.overlap,
        column_blocks: plan.blocks.len(),
        provider: predictor.provider().to_string(),
        batch: plan.batch,
        views: plan.views,
        ..RunReport::default()
    };
    drop(raster);
    let mut blend = BlendLoop {
        total: report.tiles,
        predictor,
        plan: &plan,
        decision: &opts.decision,
        input,
        progress,
        done: 0,
        model_time: Duration::ZERO,
        blend_time: Duration::ZERO,
        probs: Vec::new(),
        mutual_info: Vec::new(),
    };
    let (read_tx, read_rx) = sync_channel::<ReadResult>(2);
    let (write_tx, write_rx) = sync_channel::<RowBand>(2);
    std::thread::scope(|scope| -> Result<()> {
        let plan = &plan;
        let reader = scope.spawn(move || read_tiles(input, plan, &read_tx));
        let writer = scope.spawn(move || writers.write_all(write_rx));
        let outcome = blend.run(&read_rx, &write_tx);
        drop(write_tx);
        drop(read_rx);
        let read_s = reader.join().expect("reader thread panicked");
        let written = writer.join().expect("writer thread panicked");
        outcome?;
        let (write_s, counts, writers) = written?;
        writers.finish()?;
        report.read_s = read_s;
        report.write_s = write_s;
        report.model_s = blend.model_time.as_secs_f64();
        report.blend_s = blend.blend_time.as_secs_f64();
        report.class_counts = counts;
        Ok(())
    })?;
    report.total_s = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The calling thread's part: runs the model on each batch from the reader, blends the
/// tiles, and hands each finished row band to the writer.
struct BlendLoop<'a> {
    predictor: &'a mut Predictor,
    plan: &'a ModelPlan,
    decision: &'a Decision,
    /// The input raster, for the messages.
    input: &'a Path,
    progress: &'a mut dyn FnMut(usize, usize),
    /// Tiles done and to do, for `progress`.
    done: usize,
    total: usize,
    model_time: Duration,
    blend_time: Duration,
    /// The model's outputs for one batch, reused.
    probs: Vec<f32>,
    mutual_info: Vec<f32>,
}

impl BlendLoop<'_> {
    /// Every column block, tile row by tile row. A writer that stopped ends the loop
    /// without an error here: its own error is reported by the caller.
    fn run(&mut self, rx: &Receiver<ReadResult>, tx: &SyncSender<RowBand>) -> Result<()> {
        let plan = self.plan;
        let row_bands = plan.tiles.row_bands();
        for &(x0, x1) in &plan.blocks {
            let mut acc = Accumulator::new(&plan.tiles, x0, x1, plan.want_mi);
            acc.shift_to(plan.tiles.row_origin(plan.rows.tile_rows.start));
            for k in plan.rows.tile_rows.clone() {
                let (band_start, band_end) = clip_rows(row_bands[k], plan.rows.keep);
                let valid = self.blend_tile_row(&mut acc, rx)?;
                let t0 = Instant::now();
                let band = (band_end > band_start)
                    .then(|| acc.finish_rows(band_start, band_end, valid, plan.want_probs, self.decision));
                if k + 1 < plan.tiles.ys.len() {
                    acc.shift_to(plan.tiles.row_origin(k + 1));
                }
                self.blend_time += t0.elapsed();
                if let Some(band) = band
                    && tx.send(band).is_err()
                {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Runs and blends the batches of one tile row; returns the data mask of the rows it
    /// finishes.
    fn blend_tile_row(&mut self, acc: &mut Accumulator, rx: &Receiver<ReadResult>) -> Result<Vec<bool>> {
        loop {
            let msg = rx
                .recv()
                .map_err(|_| PipelineError::input(self.input, "reader stopped".into()))??;
            match msg {
                ReadMsg::Batch(batch) => self.run_batch(acc, &batch)?,
                ReadMsg::RowDone { valid } => return Ok(valid),
            }
        }
    }

    /// One model run over `batch`, its tiles added to `acc`.
    fn run_batch(&mut self, acc: &mut Accumulator, batch: &Batch) -> Result<()> {
        let t0 = Instant::now();
        let (ih, iw) = (self.plan.tiles.tile_height, self.plan.tiles.tile_width);
        let want_mi = self.plan.want_mi;
        let n = batch.tiles.len();
        self.probs.resize(n * NUM_CLASSES * ih * iw, 0.0);
        self.mutual_info
            .resize(if want_mi { n * ih * iw } else { 0 }, 0.0);
        let mi = want_mi.then_some(self.mutual_info.as_mut_slice());
        self.predictor.run(&batch.data, n, ih, iw, &mut self.probs, mi)?;
        let t1 = Instant::now();
        let per = NUM_CLASSES * ih * iw;
        for (i, t) in batch.tiles.iter().enumerate() {
            let mi = want_mi.then(|| &self.mutual_info[i * ih * iw..(i + 1) * ih * iw]);
            acc.add(t, &self.probs[i * per..(i + 1) * per], mi);
        }
        self.model_time += t1 - t0;
        self.blend_time += t1.elapsed();
        self.done += n;
        (self.progress)(self.done, self.total);
        Ok(())
    }
}
