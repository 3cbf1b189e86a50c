//! The one tiled driver of the dense CRF, for rasters too large for one run (the lattices
//! need about 170 bytes per pixel): [`tile_plan`] cuts the raster into cores that tile it
//! without overlap, each extended by a halo (256 px by default, 3.2 bilateral widths, so
//! that a core's result does not depend on the cut); [`run_tiles`] runs the CRF on each
//! tile in turn (each tile is parallel inside, so the extra memory is that of one tile).
//!
//! The caller says where a tile's inputs come from and where its result goes through
//! [`TileIo`]: [`dense_crf_tiled`] reads slices of arrays in memory and copies the cores
//! into one Q array (`risk-crf`); `risk-infer`'s CRF pass reads each tile's colour bands
//! and blended probabilities from rasters and writes the cores' classes.

use super::error::CrfError;
use super::mean_field::{check_len, dense_crf, dense_crf_in_place, unary_from_probs_in_place};
use super::params::{CrfParams, LABELS};

/// CRF tiling for large rasters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrfTiling {
    /// Largest CRF tile side in pixels, halo included. Default 8192.
    pub tile: usize,
    /// Halo in pixels on each side of a tile core, dropped after the CRF. Default 256
    /// (3.2 bilateral widths of 80 px: pixels farther away than that weigh less than
    /// `exp(-5)` in one message).
    pub halo: usize,
}

impl Default for CrfTiling {
    fn default() -> Self {
        CrfTiling {
            tile: 8192,
            halo: 256,
        }
    }
}

/// CRF tiles are raster windows.
pub use crate::raster::Window;

/// One CRF tile: the window the CRF runs on (`ext`, core plus halo, clipped to the raster)
/// and the core whose results are kept. Cores tile the raster without overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrfTile {
    pub ext: Window,
    pub core: Window,
}

/// Plans CRF tiles over a `width x height` raster: one tile if it fits in `tile`, else
/// cores of `tile - 2 halo` (made equal in size) each extended by the halo.
pub fn tile_plan(width: usize, height: usize, tiling: &CrfTiling) -> Result<Vec<CrfTile>, CrfError> {
    if tiling.tile <= 2 * tiling.halo {
        return Err(CrfError::BadParam {
            name: "crf_tile",
            value: tiling.tile as f64,
            reason: "must be larger than twice the halo",
        });
    }
    let axis = |len: usize| -> Vec<(usize, usize, usize, usize)> {
        if len <= tiling.tile {
            return vec![(0, len, 0, len)];
        }
        let core_max = tiling.tile - 2 * tiling.halo;
        let count = len.div_ceil(core_max);
        let core = len.div_ceil(count);
        (0..count)
            .map(|i| {
                let c0 = i * core;
                let c1 = ((i + 1) * core).min(len);
                let e0 = c0.saturating_sub(tiling.halo);
                let e1 = (c1 + tiling.halo).min(len);
                (e0, e1, c0, c1)
            })
            .collect()
    };
    let (xs, ys) = (axis(width), axis(height));
    let mut plan = Vec::with_capacity(xs.len() * ys.len());
    for &(ey0, ey1, cy0, cy1) in &ys {
        for &(ex0, ex1, cx0, cx1) in &xs {
            plan.push(CrfTile {
                ext: Window {
                    x: ex0,
                    y: ey0,
                    width: ex1 - ex0,
                    height: ey1 - ey0,
                },
                core: Window {
                    x: cx0,
                    y: cy0,
                    width: cx1 - cx0,
                    height: cy1 - cy0,
                },
            });
        }
    }
    Ok(plan)
}

/// Where the tiles of [`run_tiles`] get their inputs and put their results.
pub trait TileIo {
    /// The caller's error (reading or writing a tile).
    type Error;

    /// Fills the inputs of the tile window `ext`: `rgb` its colour (H, W, 3) interleaved,
    /// 8-bit (3 x `ext.pixels()` values), and `probs` its class probabilities (3, H, W),
    /// finite (3 x `ext.pixels()` values). Both buffers come with those lengths.
    fn read(&mut self, ext: Window, rgb: &mut [u8], probs: &mut [f32]) -> Result<(), Self::Error>;

    /// Receives the CRF's marginals Q (3, H, W) over `tile.ext`; the caller keeps
    /// `tile.core` (or the part of it that it writes).
    fn write(&mut self, tile: &CrfTile, q: &[f32]) -> Result<(), Self::Error>;
}

/// Why [`run_tiles`] stopped: the CRF refused a tile's inputs, or the caller's reading or
/// writing failed.
#[derive(Debug)]
pub enum TileError<E> {
    /// The CRF on the tile window `window` failed (its inputs' coordinates are within the
    /// window).
    Crf { window: Window, source: CrfError },
    /// [`TileIo::read`] or [`TileIo::write`] failed.
    Io(E),
}

/// Runs the dense CRF on each tile of `plan` in turn: reads its colour and probabilities
/// through `io`, turns the probabilities into the unary in place, runs the mean-field
/// inference in place and hands Q to `io`. The buffers of one tile are alive at a time.
pub fn run_tiles<T: TileIo>(
    plan: &[CrfTile],
    params: &CrfParams,
    io: &mut T,
) -> Result<(), TileError<T::Error>> {
    for t in plan {
        let e = t.ext;
        let en = e.pixels();
        let mut rgb = vec![0u8; 3 * en];
        let mut buf = vec![0f32; LABELS * en];
        io.read(e, &mut rgb, &mut buf).map_err(TileError::Io)?;
        let crf_err = |source| TileError::Crf { window: e, source };
        unary_from_probs_in_place(&mut buf, e.width, e.height).map_err(crf_err)?;
        dense_crf_in_place(&rgb, &mut buf, e.width, e.height, params).map_err(crf_err)?;
        drop(rgb);
        io.write(t, &buf).map_err(TileError::Io)?;
    }
    Ok(())
}

/// Dense CRF over a raster of any size in tiles (see [`tile_plan`]); same inputs and
/// output as [`dense_crf`]. Tiles run one after the other through [`run_tiles`] (each is
/// parallel inside), so the extra memory is that of one tile.
pub fn dense_crf_tiled(
    rgb: &[u8],
    probs: &[f32],
    width: usize,
    height: usize,
    params: &CrfParams,
    tiling: &CrfTiling,
) -> Result<Vec<f32>, CrfError> {
    let n = width * height;
    check_len("image (H, W, 3)", rgb.len(), 3 * n, width, height)?;
    check_len("probabilities", probs.len(), LABELS * n, width, height)?;
    let plan = tile_plan(width, height, tiling)?;
    if plan.len() == 1 {
        return dense_crf(rgb, probs, width, height, params);
    }
    let mut arrays = InMemory {
        rgb,
        probs,
        width,
        q: vec![0f32; LABELS * n],
    };
    run_tiles(&plan, params, &mut arrays).map_err(|e| match e {
        TileError::Crf { source, .. } => source,
        TileError::Io(never) => match never {},
    })?;
    Ok(arrays.q)
}

/// The [`TileIo`] of [`dense_crf_tiled`]: tiles cut from whole-raster arrays, cores copied
/// into a whole-raster Q.
struct InMemory<'a> {
    /// (H, W, 3) interleaved.
    rgb: &'a [u8],
    /// (3, H, W).
    probs: &'a [f32],
    width: usize,
    /// (3, H, W), filled core by core.
    q: Vec<f32>,
}

impl TileIo for InMemory<'_> {
    type Error = std::convert::Infallible;

    fn read(&mut self, e: Window, rgb: &mut [u8], probs: &mut [f32]) -> Result<(), Self::Error> {
        let (width, n) = (self.width, self.probs.len() / LABELS);
        let en = e.pixels();
        for (r, y) in (e.y..e.y + e.height).enumerate() {
            let src = 3 * (y * width + e.x);
            rgb[3 * r * e.width..3 * (r + 1) * e.width].copy_from_slice(&self.rgb[src..src + 3 * e.width]);
            for c in 0..LABELS {
                let row = c * n + y * width + e.x;
                let dst = c * en + r * e.width;
                probs[dst..dst + e.width].copy_from_slice(&self.probs[row..row + e.width]);
            }
        }
        Ok(())
    }

    fn write(&mut self, t: &CrfTile, q: &[f32]) -> Result<(), Self::Error> {
        let (e, c) = (t.ext, t.core);
        let (width, n, en) = (self.width, self.q.len() / LABELS, e.pixels());
        for l in 0..LABELS {
            for y in c.y..c.y + c.height {
                let src = l * en + (y - e.y) * e.width + (c.x - e.x);
                let dst = l * n + y * width + c.x;
                self.q[dst..dst + c.width].copy_from_slice(&q[src..src + c.width]);
            }
        }
        Ok(())
    }
}
