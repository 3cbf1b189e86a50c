//! Tiles of an image / label raster pair: the grid, per-tile class counts, and reading one
//! tile as model input (normalised `(C, T, T)` float32) plus labels (`(T, T)` u8).
//!
//! The grid covers the raster with tiles of side `tile` every `stride` pixels; the last
//! column and row of tiles are moved back to end at the raster edge, so that every pixel
//! is in a tile (rasters smaller than a tile give no tiles). Reads go through
//! `risk_inference::raster` (GDAL windowed I/O), one tile at a time: memory stays bounded
//! whatever the raster size.

use std::path::Path;

use risk_inference::fill::fill_nearest;
use risk_inference::raster::{InputRaster, RasterError, Window};

use crate::synth::ClassCounts;

/// The tile windows of a `width x height` raster, row-major (defined beside the inference
/// tiling, so that the generator's statistics count the same tiles without this crate).
pub use risk_inference::tiling::training_grid as grid;

/// How image values become model input: `((v / scale) - mean[b]) / std[b]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalisation {
    pub scale: f64,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// One tile in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    /// `(bands, side, side)` scaled to [0, 1] by `scale` only (augmentation works on these;
    /// [`Normalisation::apply`] finishes the job).
    pub image: Vec<f32>,
    /// `(side, side)` labels: 0, 1, 2, 255.
    pub labels: Vec<u8>,
    pub side: usize,
}

impl Normalisation {
    /// `(x - mean[b]) / std[b]` in place over a `(bands, side * side)` buffer in [0, 1].
    pub fn apply(&self, image: &mut [f32]) {
        let per_band = image.len() / self.mean.len().max(1);
        for (b, chunk) in image.chunks_mut(per_band).enumerate() {
            let (m, s) = (self.mean[b] as f32, self.std[b] as f32);
            chunk.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
    }
}

/// An opened image / label pair on the same grid.
pub struct TileSource {
    image: InputRaster,
    labels: InputRaster,
    bands: Vec<usize>,
    scale: f64,
}

impl TileSource {
    /// Opens both rasters and checks that they have the same size and enough bands.
    pub fn open(image: &Path, labels: &Path, bands: &[usize], scale: f64) -> Result<Self, RasterError> {
        let img = InputRaster::open(image)?;
        let lab = InputRaster::open(labels)?;
        if (img.width(), img.height()) != (lab.width(), lab.height()) {
            return Err(RasterError::Invalid {
                path: labels.to_path_buf(),
                msg: format!(
                    "label raster is {}x{} but the image {} is {}x{}",
                    lab.width(),
                    lab.height(),
                    image.display(),
                    img.width(),
                    img.height()
                ),
            });
        }
        if let Some(&b) = bands.iter().find(|&&b| b == 0 || b > img.band_count()) {
            return Err(RasterError::Invalid {
                path: image.to_path_buf(),
                msg: format!(
                    "band {b} requested but the image has bands 1..={}",
                    img.band_count()
                ),
            });
        }
        Ok(Self {
            image: img,
            labels: lab,
            bands: bands.to_vec(),
            scale,
        })
    }

    pub fn width(&self) -> usize {
        self.image.width()
    }

    pub fn height(&self) -> usize {
        self.image.height()
    }

    /// Class counts of the labels in `window`.
    pub fn counts(&self, window: Window) -> Result<ClassCounts, RasterError> {
        let mut labels = vec![0u8; window.pixels()];
        self.labels.read_band(1, window, &mut labels)?;
        let mut c = ClassCounts::default();
        c.add_labels(&labels);
        Ok(c)
    }

    /// Reads a square tile: image scaled by `1 / scale` (not yet normalised), nodata
    /// holes filled from their nearest valid pixels ([`fill_nearest`]), and labels.
    pub fn read(&self, window: Window) -> Result<Tile, RasterError> {
        let mut image = vec![0f32; self.bands.len() * window.pixels()];
        self.image.read_bands(&self.bands, window, &mut image)?;
        let inv = (1.0 / self.scale) as f32;
        image.iter_mut().for_each(|v| *v *= inv);
        // Nodata holes take their nearest valid values, as risk-infer's reader does.
        let mut valid = vec![false; window.pixels()];
        self.image
            .read_valid(&self.bands, window, &mut valid, &mut Vec::new())?;
        fill_nearest(&mut image, window.width, window.height, &valid);
        let mut labels = vec![0u8; window.pixels()];
        self.labels.read_band(1, window, &mut labels)?;
        Ok(Tile {
            image,
            labels,
            side: window.width,
        })
    }
}
