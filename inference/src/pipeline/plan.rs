//! The plan of a model pass, fixed before any tile is read: which bands the model reads
//! and how their raw values are normalised, the tile layout ([`crate::tiling`]), the
//! column blocks the memory budget allows ([`super::budget`]), the tile rows that reach
//! the rows written (all of them, or a shard's), and the batch size.
//!
//! A raster the model cannot take (too few bands, a pixel type it cannot scale, rows
//! outside the raster) is refused here, naming the file, before any output is created.

use std::ops::Range;
use std::path::Path;

use super::budget;
use super::error::{PipelineError, Result};
use super::options::{Outputs, RunOptions};
use crate::autobatch::{self, BatchSize};
use crate::input_scale;
use crate::predictor::Predictor;
use crate::raster::InputRaster;
use crate::session::ModelInfo;
use crate::tiling::TilePlan;

/// Per-band normalisation: `(raw * scale - mean) / std` as `raw * a + b`.
#[derive(Clone)]
pub(super) struct Normalise {
    pub(super) a: Vec<f32>,
    pub(super) b: Vec<f32>,
}

/// The tile rows a pass runs and the raster rows it keeps.
#[derive(Clone)]
pub(super) struct Rows {
    pub(super) tile_rows: Range<usize>,
    pub(super) keep: (usize, usize),
}

/// Everything the model pass's reader and blend share.
pub(super) struct ModelPlan {
    /// Input bands fed to the model, 1-based.
    pub(super) bands: Vec<usize>,
    pub(super) norm: Normalise,
    pub(super) tiles: TilePlan,
    /// Column blocks `[x0, x1)`, left to right.
    pub(super) blocks: Vec<(usize, usize)>,
    pub(super) rows: Rows,
    /// Tiles per model run.
    pub(super) batch: usize,
    /// Model runs per batch (the predictor's views).
    pub(super) views: usize,
    /// Blend the mutual information of several views (for the uncertainty raster).
    pub(super) want_mi: bool,
    /// Keep the blended probabilities (for the probability or uncertainty raster).
    pub(super) want_probs: bool,
}

impl ModelPlan {
    /// The plan of scoring `raster` (at `input`) into `outputs` with `predictor`; probes
    /// the batch size when it is `auto`.
    pub(super) fn new(
        predictor: &mut Predictor,
        raster: &InputRaster,
        input: &Path,
        outputs: &Outputs,
        opts: &RunOptions,
    ) -> Result<Self> {
        let info = predictor.info().clone();
        let (bands, norm) = normalisation(&info, raster, input, opts, predictor.path())?;
        let tiles = TilePlan::new(
            raster.width(),
            raster.height(),
            opts.tile.unwrap_or(info.tile_size),
            opts.overlap.unwrap_or(info.tile_overlap),
        );
        let views = predictor.views();
        let want_mi = outputs.uncertainty.is_some() && views > 1;
        let per_column = budget::bytes_per_column(tiles.tile.min(tiles.height), want_mi);
        let block_width =
            budget::block_width(opts.memory_budget, per_column, tiles.tile, opts.max_block_width);
        let blocks = tiles.column_blocks(block_width);
        let keep = output_rows(input, opts, raster.height())?;
        let rows = Rows {
            tile_rows: tile_rows(&tiles, keep),
            keep,
        };
        let batch = match opts.batch {
            BatchSize::Tiles(n) => n.max(1),
            BatchSize::Auto => {
                let per_tile =
                    autobatch::bytes_per_tile(info.channels, tiles.tile_height, tiles.tile_width, views);
                let ceiling = budget::batch_ceiling(opts.memory_budget, per_tile);
                predictor.auto_batch(tiles.tile_height, tiles.tile_width, ceiling)?
            }
        };
        Ok(Self {
            bands,
            norm,
            tiles,
            blocks,
            rows,
            batch,
            views,
            want_mi,
            want_probs: outputs.probs.is_some() || outputs.uncertainty.is_some(),
        })
    }

    /// Tiles the pass runs (a tile straddling two column blocks counts twice).
    pub(super) fn total_tiles(&self) -> usize {
        self.blocks
            .iter()
            .map(|&(x0, x1)| self.rows.tile_rows.len() * self.tiles.row_tiles(0, x0, x1).len())
            .sum()
    }
}

/// The model's bands of `raster` (the run's choice, else the model's) and their
/// normalisation, checked against the model (`model`: its file, for the messages).
fn normalisation(
    info: &ModelInfo,
    raster: &InputRaster,
    input: &Path,
    opts: &RunOptions,
    model: &Path,
) -> Result<(Vec<usize>, Normalise)> {
    let bands = opts.bands.clone().unwrap_or_else(|| info.bands.clone());
    let input_err = |msg: String| PipelineError::input(input, msg);
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
            model.display()
        )));
    }
    let types = bands
        .iter()
        .map(|&b| raster.band_type_name(b))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (scales, warning) = input_scale::band_scales(info, &bands, &types, opts.input_scale)
        .map_err(|e| input_err(e.to_string()))?;
    if let Some(w) = warning {
        tracing::warn!("{}: {w}", input.display());
    }
    let mut norm = Normalise {
        a: Vec::new(),
        b: Vec::new(),
    };
    for (i, scale) in scales.into_iter().enumerate() {
        norm.a.push(scale / info.std[i]);
        norm.b.push(-info.mean[i] / info.std[i]);
    }
    Ok((bands, norm))
}

/// The rows `[r0, r1)` a run writes: `opts.rows`, checked against the raster's `height`,
/// else all.
pub(super) fn output_rows(input: &Path, opts: &RunOptions, height: usize) -> Result<(usize, usize)> {
    match opts.rows {
        None => Ok((0, height)),
        Some((r0, r1)) if r0 < r1 && r1 <= height => Ok((r0, r1)),
        Some((r0, r1)) => Err(PipelineError::input(
            input,
            format!("has {height} rows; rows {r0}..{r1} were asked for"),
        )),
    }
}

/// Tile rows to run for rows `[r0, r1)`: from the first that reaches row r0 to the one
/// whose row band holds row r1 - 1 (all of them for the whole raster).
fn tile_rows(tiles: &TilePlan, (r0, r1): (usize, usize)) -> Range<usize> {
    let row_bands = tiles.row_bands();
    let first = tiles
        .ys
        .iter()
        .position(|&y| y + tiles.tile_height as isize > r0 as isize)
        .unwrap_or(0);
    let last = row_bands
        .iter()
        .position(|&(_, end)| end >= r1)
        .unwrap_or(row_bands.len() - 1);
    first..last + 1
}

/// Row band `[start, end)` clipped to `[r0, r1)` (empty as `(start, start)`).
pub(super) fn clip_rows((start, end): (usize, usize), (r0, r1): (usize, usize)) -> (usize, usize) {
    let a = start.max(r0);
    (a, end.min(r1).max(a))
}
