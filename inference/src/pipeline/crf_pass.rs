//! The CRF pass: refines the model pass's blended probabilities over a raster of any
//! size, tile by tile, in bounded memory.
//!
//! The model pass writes the blended probabilities to a temporary float32 GeoTIFF (nodata
//! -1). This pass cuts the raster into CRF tiles ([`crate::crf::tile_plan`]: cores plus a
//! halo, 256 px by default, so that the result inside a core does not depend on the cut)
//! and runs them through the one tiled CRF driver, [`crate::crf::run_tiles`] (shared with
//! `risk-crf`): for each tile it reads the colour bands and probabilities, and from the
//! CRF's marginals writes only the core's classes (and the marginals for `--probs` /
//! `--uncertainty`; the mutual information band of `--uncertainty`, which measures how the
//! model's views disagree, is the model pass's, read back from its temporary raster). The
//! CRF tile side is the smaller of `--crf-tile` and what the memory budget allows
//! ([`super::budget::crf_tile_side`]).
//!
//! Colour space of the bilateral kernel: 8-bit bands are used as they are (as
//! pydensecrf); other pixel types get a per-band 2-98 percentile stretch to 0..255
//! ([`crate::crf::BandStretch`]), computed once per raster from a decimated read of at
//! most 1024 x 1024 pixels, so that it does not depend on the tiling.
//!
//! A shard writing rows `[r0, r1)` runs the CRF tiles whose cores meet those rows, over
//! the blended rows [`rows_needed`] names (their extents), so its rows equal the whole run.

use std::path::Path;
use std::time::Instant;

use super::budget;
use super::error::{PipelineError, Result};
use super::options::CrfOptions;
use super::outputs::{RowBand, Writers};
use super::report::CrfReport;
use crate::classes::{NODATA, NUM_CLASSES};
use crate::crf::{self, BandStretch, CrfTile, CrfTiling, TileError, TileIo};
use crate::decision::Decision;
use crate::raster::{InputRaster, Window};

/// The CRF tiles of a `width x height` raster for these options and budget.
fn plan_tiles(
    width: usize,
    height: usize,
    crf_opts: &CrfOptions,
    memory_budget: usize,
) -> std::result::Result<(CrfTiling, Vec<CrfTile>), crf::CrfError> {
    let tiling = CrfTiling {
        tile: budget::crf_tile_side(crf_opts.tile, crf_opts.halo, memory_budget),
        halo: crf_opts.halo,
    };
    let plan = crf::tile_plan(width, height, &tiling)?;
    Ok((tiling, plan))
}

/// The raster rows the CRF pass reads to write rows `[r0, r1)` of `input`: the extents
/// (halo included) of every CRF tile whose core meets them. The model pass blends these
/// rows.
pub(super) fn rows_needed(
    input: &Path,
    (width, height): (usize, usize),
    crf_opts: &CrfOptions,
    memory_budget: usize,
    (r0, r1): (usize, usize),
) -> Result<(usize, usize)> {
    let (_, plan) = plan_tiles(width, height, crf_opts, memory_budget)
        .map_err(|e| PipelineError::input(input, e.to_string()))?;
    let meets = |t: &&CrfTile| t.core.y < r1 && t.core.bottom() > r0;
    let e0 = plan.iter().filter(meets).map(|t| t.ext.y).min().unwrap_or(r0);
    let e1 = plan
        .iter()
        .filter(meets)
        .map(|t| t.ext.bottom())
        .max()
        .unwrap_or(r1);
    Ok((e0, e1))
}

/// The model pass's temporary rasters that the CRF pass reads, both holding the
/// raster's rows from `first_row` on.
pub(super) struct Blended<'a> {
    /// 3-band float32 blended probabilities, nodata -1.
    pub(super) probs: &'a Path,
    /// 2-band float32 uncertainty, when its mutual information band is passed on.
    pub(super) uncertainty: Option<&'a Path>,
    pub(super) first_row: usize,
}

/// One CRF pass over `input`'s blended probabilities, writing rows `rows` of the outputs.
pub(super) struct CrfPass<'a> {
    pub(super) input: &'a Path,
    pub(super) blended: Blended<'a>,
    pub(super) crf: &'a CrfOptions,
    /// Classes from the CRF's marginals.
    pub(super) decision: &'a Decision,
    pub(super) memory_budget: usize,
    /// Rows `[r0, r1)` written.
    pub(super) rows: (usize, usize),
    /// Keep the marginals (for the probability or uncertainty raster).
    pub(super) want_probs: bool,
}

/// The open rasters of a CRF pass.
struct Sources {
    image: InputRaster,
    probs: InputRaster,
    uncertainty: Option<InputRaster>,
    stretch: Option<BandStretch>,
}

impl CrfPass<'_> {
    /// Runs the CRF tiles that meet the pass's rows and writes their cores to `writers`.
    pub(super) fn run(&self, mut writers: Writers) -> Result<CrfReport> {
        let start = Instant::now();
        let (r0, r1) = self.rows;
        let image = InputRaster::open(self.input)?;
        let probs = InputRaster::open(self.blended.probs)?;
        let uncertainty = self.blended.uncertainty.map(InputRaster::open).transpose()?;
        let (w, h) = (image.width(), image.height());
        if let Some(&b) = self.crf.bands.iter().find(|&&b| b > image.band_count()) {
            return Err(self.input_err(format!(
                "has {} band(s); the CRF colour band {b} is missing",
                image.band_count()
            )));
        }
        let stretch = colour_stretch(&image, &self.crf.bands)?;
        let src = Sources {
            image,
            probs,
            uncertainty,
            stretch,
        };
        let (tiling, mut plan) =
            plan_tiles(w, h, self.crf, self.memory_budget).map_err(|e| self.input_err(e.to_string()))?;
        plan.retain(|t| t.core.y < r1 && t.core.bottom() > r0);
        let mut report = CrfReport {
            tiles: plan.len(),
            tile: tiling.tile,
            ..CrfReport::default()
        };
        let mut io = TileRasters {
            pass: self,
            src: &src,
            writers: &mut writers,
            counts: [0; 4],
            valid: Vec::new(),
        };
        crf::run_tiles(&plan, &self.crf.params, &mut io).map_err(|e| match e {
            TileError::Crf { window, source } => self.input_err(format!("CRF on window {window}: {source}")),
            TileError::Io(e) => e,
        })?;
        report.class_counts = io.counts;
        writers.finish()?;
        report.crf_s = start.elapsed().as_secs_f64();
        Ok(report)
    }

    fn input_err(&self, msg: String) -> PipelineError {
        PipelineError::input(self.input, msg)
    }

    /// The blended probabilities of window `e` into `probs`, `(3, H, W)`, and its data
    /// mask; nodata pixels get uniform probabilities.
    fn blended_probs(&self, src: &Sources, e: Window, probs: &mut [f32]) -> Result<Vec<bool>> {
        let n = e.pixels();
        let e_blended = Window {
            y: e.y - self.blended.first_row,
            ..e
        };
        src.probs.read_bands(&[1, 2, 3], e_blended, probs)?;
        let valid: Vec<bool> = probs[..n].iter().map(|&p| p >= 0.0).collect();
        for (i, v) in valid.iter().enumerate() {
            if !v {
                for c in 0..NUM_CLASSES {
                    probs[c * n + i] = 1.0 / NUM_CLASSES as f32;
                }
            }
        }
        Ok(valid)
    }

    /// The 8-bit colour of window `e` into `rgb`, `(H, W, 3)` interleaved: the colour
    /// bands as they are, or stretched.
    fn colour(&self, src: &Sources, e: Window, rgb: &mut [u8]) -> Result<()> {
        let n = e.pixels();
        let mut bands = vec![0f32; 3 * n];
        src.image.read_bands(&self.crf.bands, e, &mut bands)?;
        match &src.stretch {
            Some(s) => rgb.copy_from_slice(&s.apply([&bands[..n], &bands[n..2 * n], &bands[2 * n..]])),
            None => {
                for (i, v) in rgb.iter_mut().enumerate() {
                    *v = bands[(i % 3) * n + i / 3] as u8;
                }
            }
        }
        Ok(())
    }

    /// The finished band of tile `t`'s core rows inside `[r0, r1)`, from the CRF's
    /// marginals `q` over the tile's extent (classes by the decision rule).
    fn core_band(&self, src: &Sources, t: &CrfTile, q: &[f32], valid: &[bool]) -> Result<RowBand> {
        let (e, (r0, r1)) = (t.ext, self.rows);
        let n = e.pixels();
        let top = t.core.y.max(r0);
        let core = Window::new(t.core.x, top, t.core.width, t.core.bottom().min(r1) - top);
        let (cx, cy) = (core.x - e.x, core.y - e.y);
        let cn = core.pixels();
        let mut band = RowBand {
            window: core,
            classes: vec![0u8; cn],
            probs: if self.want_probs {
                vec![0f32; NUM_CLASSES * cn]
            } else {
                Vec::new()
            },
            mutual_info: Vec::new(),
            valid: vec![false; cn],
        };
        if let Some(u) = &src.uncertainty {
            band.mutual_info = vec![0f32; cn];
            let in_blended = Window {
                y: core.y - self.blended.first_row,
                ..core
            };
            u.read_band(2, in_blended, &mut band.mutual_info)?;
        }
        for y in 0..core.height {
            for x in 0..core.width {
                let (i, s) = (y * core.width + x, (cy + y) * e.width + cx + x);
                band.valid[i] = valid[s];
                if !valid[s] {
                    band.classes[i] = NODATA;
                    continue;
                }
                let p = [q[s], q[n + s], q[2 * n + s]];
                band.classes[i] = self.decision.class(&p);
                if self.want_probs {
                    for (c, &v) in p.iter().enumerate() {
                        band.probs[c * cn + i] = v;
                    }
                }
            }
        }
        Ok(band)
    }
}

/// The CRF pass's side of [`crf::run_tiles`], the one tiled CRF driver: each tile's
/// colour and blended probabilities read from the rasters, each tile's core written to
/// the outputs.
struct TileRasters<'a> {
    pass: &'a CrfPass<'a>,
    src: &'a Sources,
    writers: &'a mut Writers,
    /// Pixels per class value 0, 1, 2 and nodata written so far.
    counts: [u64; 4],
    /// The data mask of the tile being run (read with its probabilities).
    valid: Vec<bool>,
}

impl TileIo for TileRasters<'_> {
    type Error = PipelineError;

    fn read(&mut self, ext: Window, rgb: &mut [u8], probs: &mut [f32]) -> Result<()> {
        self.pass.colour(self.src, ext, rgb)?;
        self.valid = self.pass.blended_probs(self.src, ext, probs)?;
        Ok(())
    }

    fn write(&mut self, tile: &CrfTile, q: &[f32]) -> Result<()> {
        let band = self.pass.core_band(self.src, tile, q, &self.valid)?;
        self.writers.write(&band, &mut self.counts)?;
        Ok(())
    }
}

/// `None` for 8-bit colour bands; else the 2-98 percentile stretch from a decimated read.
fn colour_stretch(image: &InputRaster, bands: &[usize; 3]) -> Result<Option<BandStretch>> {
    let mut all_byte = true;
    for &b in bands {
        all_byte &= image.band_type_name(b)? == "Byte";
    }
    if all_byte {
        return Ok(None);
    }
    let f = (image.width().max(image.height()) as f64 / 1024.0).max(1.0);
    let size = (
        ((image.width() as f64 / f) as usize).max(1),
        ((image.height() as f64 / f) as usize).max(1),
    );
    let mut samples = vec![vec![0f32; size.0 * size.1]; 3];
    for (s, &b) in samples.iter_mut().zip(bands) {
        image.read_band_resampled(b, image.extent(), size, s)?;
    }
    let nodata = image.nodata(bands[0])?.map(|v| v as f32);
    Ok(Some(BandStretch::from_bands(
        [&samples[0], &samples[1], &samples[2]],
        nodata,
    )))
}
