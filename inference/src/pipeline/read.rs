//! The model pass's reader thread: reads each tile of the plan through GDAL (pixels
//! outside the raster by reflection), fills nodata from the nearest valid pixels
//! ([`crate::fill`], as training does), normalises and batches the tiles, and after each
//! tile row sends the data mask of the rows that row finishes.
//!
//! Inputs the model cannot take: a pixel with a NaN or infinite value in any model band is
//! nodata (GDAL's mask only knows a declared nodata value), and a normalised value beyond
//! +-[`INPUT_LIMIT`] is clamped. Both are counted and logged once per raster.

use std::path::Path;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use super::plan::{ModelPlan, clip_rows};
use crate::raster::{InputRaster, RasterError, Window};
use crate::tiling::{Tile, reflect};

/// Largest normalised input fed to a model: the largest float16 (an FP16 model would
/// see infinity beyond it, and float32 layers overflow long before 1e30).
pub const INPUT_LIMIT: f32 = 65504.0;

/// A batch of normalised, padded tiles from the reader.
pub(super) struct Batch {
    pub(super) tiles: Vec<Tile>,
    /// `(n, C, input_height, input_width)`.
    pub(super) data: Vec<f32>,
}

pub(super) enum ReadMsg {
    Batch(Batch),
    /// The current tile row of the current column block is complete; `valid` is the data
    /// mask of the rows it finishes (`(end - start) x (x1 - x0)`).
    RowDone {
        valid: Vec<bool>,
    },
}

pub(super) type ReadResult = std::result::Result<ReadMsg, RasterError>;

/// Reader thread body: opens its own handle on `path`, walks the plan's column blocks
/// and tile rows and sends batches and row-completion messages (or the first error).
/// Returns the seconds spent reading.
pub(super) fn read_tiles(path: &Path, plan: &ModelPlan, tx: &SyncSender<ReadResult>) -> f64 {
    let mut reader = Reader {
        plan,
        stats: InputStats::default(),
        time: Duration::ZERO,
        raw: Vec::new(),
        scratch: Vec::new(),
        tile_valid: Vec::new(),
    };
    if let Err(e) = reader.send_all(path, tx) {
        let _ = tx.send(Err(e));
    }
    reader.stats.log(path);
    reader.time.as_secs_f64()
}

/// The reader's state: its reused buffers, what it did to odd values, its time.
struct Reader<'a> {
    plan: &'a ModelPlan,
    stats: InputStats,
    time: Duration,
    raw: Vec<f32>,
    scratch: Vec<u8>,
    tile_valid: Vec<bool>,
}

impl Reader<'_> {
    /// Sends every batch and row mask of the plan; stops early, without error, when the
    /// receiver is gone.
    fn send_all(&mut self, path: &Path, tx: &SyncSender<ReadResult>) -> Result<(), RasterError> {
        let plan = self.plan;
        let raster = InputRaster::open(path)?;
        let mut float_input = false;
        for &b in &plan.bands {
            float_input |= raster.band_type_name(b)?.contains("Float");
        }
        let row_bands = plan.tiles.row_bands();
        for &(x0, x1) in &plan.blocks {
            for k in plan.rows.tile_rows.clone() {
                let (start, end) = clip_rows(row_bands[k], plan.rows.keep);
                for chunk in plan.tiles.row_tiles(k, x0, x1).chunks(plan.batch) {
                    let t0 = Instant::now();
                    let data = self.batch(&raster, chunk, float_input)?;
                    self.time += t0.elapsed();
                    let tiles = chunk.to_vec();
                    if tx.send(Ok(ReadMsg::Batch(Batch { tiles, data }))).is_err() {
                        return Ok(());
                    }
                }
                let t0 = Instant::now();
                let window = Window::new(x0, start, x1 - x0, end - start);
                let valid = self.row_mask(&raster, window, float_input)?;
                self.time += t0.elapsed();
                if tx.send(Ok(ReadMsg::RowDone { valid })).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The normalised tiles of `chunk`, `(n, C, tile_height, tile_width)`.
    fn batch(
        &mut self,
        raster: &InputRaster,
        chunk: &[Tile],
        float_input: bool,
    ) -> Result<Vec<f32>, RasterError> {
        let tiles = &self.plan.tiles;
        let per_tile = self.plan.bands.len() * tiles.tile_height * tiles.tile_width;
        let mut data = vec![0.0f32; chunk.len() * per_tile];
        for (tile, dst) in chunk.iter().zip(data.chunks_mut(per_tile)) {
            self.tile(raster, tile, float_input, dst)?;
        }
        Ok(data)
    }

    /// Reads one tile (reflected outside the raster), fills its nodata and normalises it
    /// into `dst`, `(C, tile_height, tile_width)`.
    fn tile(
        &mut self,
        raster: &InputRaster,
        tile: &Tile,
        float_input: bool,
        dst: &mut [f32],
    ) -> Result<(), RasterError> {
        let plan = self.plan;
        let bands = &plan.bands;
        let (ih, iw) = (plan.tiles.tile_height, plan.tiles.tile_width);
        // Raster row / column of every tile pixel (reflected outside), and the window
        // that holds them all.
        let src_y: Vec<usize> = (0..ih)
            .map(|y| reflect(tile.y + y as isize, plan.tiles.height))
            .collect();
        let src_x: Vec<usize> = (0..iw)
            .map(|x| reflect(tile.x + x as isize, plan.tiles.width))
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
        self.raw.resize(bands.len() * win.pixels(), 0.0f32);
        raster.read_bands(bands, win, &mut self.raw)?;
        // Nodata (and non-finite values) take their nearest valid values, as in training
        // (`fill`): no black walls around holes.
        self.tile_valid.resize(win.pixels(), false);
        raster.read_valid(bands, win, &mut self.tile_valid, &mut self.scratch)?;
        if float_input {
            self.raw
                .chunks(win.pixels())
                .for_each(|band| mark_non_finite(&mut self.tile_valid, band));
        }
        crate::fill::fill_nearest(&mut self.raw, win.width, win.height, &self.tile_valid);
        for (b, out) in dst.chunks_mut(ih * iw).enumerate() {
            let src = &self.raw[b * win.pixels()..(b + 1) * win.pixels()];
            let (a, off) = (plan.norm.a[b], plan.norm.b[b]);
            // Columns in order (the tile lies inside the raster across): a straight,
            // vectorisable pass; else gather the reflected ones.
            let straight = win.width == iw;
            for (y, &sy) in src_y.iter().enumerate() {
                let row = &src[(sy - y0) * win.width..(sy - y0 + 1) * win.width];
                let out_row = &mut out[y * iw..(y + 1) * iw];
                if straight {
                    for (o, &v) in out_row.iter_mut().zip(row) {
                        *o = normalise(v, a, off, &mut self.stats);
                    }
                } else {
                    for (o, &sx) in out_row.iter_mut().zip(&src_x) {
                        *o = normalise(row[sx - x0], a, off, &mut self.stats);
                    }
                }
            }
        }
        Ok(())
    }

    /// The data mask of `window` (empty rows give an empty mask).
    fn row_mask(
        &mut self,
        raster: &InputRaster,
        window: Window,
        float_input: bool,
    ) -> Result<Vec<bool>, RasterError> {
        let mut valid = vec![false; window.pixels()];
        if window.height > 0 {
            raster.read_valid(&self.plan.bands, window, &mut valid, &mut self.scratch)?;
            if float_input {
                mask_non_finite(raster, &self.plan.bands, window, &mut valid, &mut self.raw)?;
            }
        }
        Ok(valid)
    }
}

/// What the reader did to values outside the model's domain (counted, logged once).
#[derive(Default)]
struct InputStats {
    non_finite: u64,
    clamped: u64,
}

impl InputStats {
    /// One warning per kind, naming the raster.
    fn log(&self, path: &Path) {
        if self.non_finite > 0 {
            tracing::warn!(
                "{}: {} non-finite value(s) (NaN or infinite) read as nodata; the model sees their nearest valid values there, as at any nodata hole",
                path.display(),
                self.non_finite
            );
        }
        if self.clamped > 0 {
            tracing::warn!(
                "{}: {} value(s) beyond the model's input range (+-{INPUT_LIMIT} after its normalisation) were clamped; check the bands and the model's risk.scale / risk.mean / risk.std",
                path.display(),
                self.clamped
            );
        }
    }
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
) -> Result<(), RasterError> {
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
