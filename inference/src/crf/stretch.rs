//! The colour space of the bilateral kernel for imagery that is not 8-bit RGB: a per-band
//! 2-98 percentile stretch to 0..255 ([`BandStretch`]), computed once per raster so that
//! every CRF tile sees the same colours.

use rayon::prelude::*;

/// Maps 3 bands of any numeric range (uint16 reflectances, float) to the 8-bit colour
/// space that the bilateral kernel's `srgb` is defined in: per band, `lo` (2nd percentile)
/// to 0 and `hi` (98th percentile) to 255, linearly, clamped, rounded. 8-bit RGB input
/// needs no stretch (pass it as is, as pydensecrf does).
///
/// Compute the percentiles once per raster ([`BandStretch::from_bands`] on the whole image
/// or a decimated overview) and apply the same stretch to every CRF tile, so that the
/// colour space does not depend on the tiling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandStretch {
    pub lo: [f32; 3],
    pub hi: [f32; 3],
}

impl BandStretch {
    /// Percentiles 2 and 98 of each band over its valid values (not `nodata`, finite),
    /// from at most about one million evenly strided samples per band.
    pub fn from_bands(bands: [&[f32]; 3], nodata: Option<f32>) -> BandStretch {
        let mut lo = [0f32; 3];
        let mut hi = [255f32; 3];
        for (b, band) in bands.iter().enumerate() {
            let step = (band.len() / (1 << 20)).max(1);
            let mut v: Vec<f32> = band
                .iter()
                .step_by(step)
                .copied()
                .filter(|x| x.is_finite() && Some(*x) != nodata)
                .collect();
            if v.is_empty() {
                continue;
            }
            v.sort_unstable_by(f32::total_cmp);
            let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
            lo[b] = at(0.02);
            hi[b] = at(0.98);
        }
        BandStretch { lo, hi }
    }

    /// Interleaved (H, W, 3) uint8 from three (H, W) bands.
    pub fn apply(&self, bands: [&[f32]; 3]) -> Vec<u8> {
        let n = bands[0].len();
        let mut out = vec![0u8; 3 * n];
        out.par_chunks_mut(3 * 4096).enumerate().for_each(|(c, chunk)| {
            for (k, px) in chunk.chunks_exact_mut(3).enumerate() {
                let i = c * 4096 + k;
                for b in 0..3 {
                    let span = (self.hi[b] - self.lo[b]).max(f32::MIN_POSITIVE);
                    let v = (bands[b][i] - self.lo[b]) / span * 255.0;
                    px[b] = if v.is_nan() {
                        0
                    } else {
                        v.clamp(0.0, 255.0).round() as u8
                    };
                }
            }
        });
        out
    }
}
