//! The oracle: per pixel, the Bayes-optimal class probabilities given everything the
//! imagery can show, i.e. every latent field except `hidden`. The image does not depend on
//! `hidden` and `hidden` is independent of the other fields, so given them the class is a
//! function of `hidden` alone through `risk = base + amp (hidden - 0.5)`:
//!
//! - `P(Low) = F(t_m)`, `P(Medium) = F(t_h) - F(t_m)`, `P(High) = 1 - F(t_h)`, with
//!   `t_m = (T_MEDIUM - base) / amp + 0.5`, `t_h = (T_HIGH - base) / amp + 0.5` and `F` the
//!   distribution function of `hidden` at that pixel.
//!
//! `hidden` is fractal value noise: at a pixel it is a weighted sum `sum w_i U_i` of
//! independent uniform lattice values (four corners per octave, bilinear smoothstep weights
//! times the octave's amplitude), so `F` is the distribution of a weighted sum of
//! uniforms. The weights depend only on the pixel's position within the coarsest lattice
//! cell, so `F` is tabulated once per position (48 x 48 in v1, 8 x 8 in v2) on a grid of
//! [`CDF_STEPS`] steps over [0, 1] and interpolated linearly. Each table is built by
//! convolving the uniforms one at a time: with `F` piecewise linear between grid points,
//! adding `w U` gives exactly `F'(t) = (G(t) - G(t - w)) / w` (`G` the integral of `F`),
//! sampled again at the grid points ([`uniform_sum_cdf`]; its error, below 1e-5, is
//! checked against closed forms in the tests). A class probability is therefore exact to
//! well within 1e-3, with no sampling noise.

use std::path::Path;

use rayon::prelude::*;
use risk_inference::classes::CLASS_NAMES;
use risk_inference::raster::{GeoTiffWriter, RasterError, Window, WriteOptions};

use super::{
    Generator, HIDDEN_OCTAVES, RiskTerms, SynthConfig, T_HIGH, T_MEDIUM, fields, hidden_scale, smoothstep,
};

/// Grid steps of the tabulated distribution functions over [0, 1].
pub const CDF_STEPS: usize = 4096;

/// Value of the oracle raster where the label is nodata.
pub const ORACLE_NODATA: f32 = -1.0;

/// `P(sum w_i U_i <= j / steps)` for `j = 0..=steps`, with `U_i` independent uniforms on
/// [0, 1), `w_i >= 0` and `sum w_i <= 1`.
pub fn uniform_sum_cdf(weights: &[f64], steps: usize) -> Vec<f64> {
    let h = 1.0 / steps as f64;
    let mut w: Vec<f64> = weights.iter().copied().filter(|&w| w > 1e-9).collect();
    w.sort_by(|a, b| b.total_cmp(a));
    let Some((&first, rest)) = w.split_first() else {
        return vec![1.0; steps + 1]; // a point mass at 0
    };
    // The largest term alone: piecewise linear, exact at the grid points.
    let mut f: Vec<f64> = (0..=steps).map(|j| (j as f64 * h / first).min(1.0)).collect();
    let mut g = vec![0.0; steps + 1];
    for &wi in rest {
        // G(t) = integral of F from 0 to t, exact for F linear between grid points (F = 0
        // below 0 and 1 above 1, the support staying within [0, 1]).
        for j in 0..steps {
            g[j + 1] = g[j] + 0.5 * h * (f[j] + f[j + 1]);
        }
        let at = |t: f64| -> f64 {
            if t <= 0.0 {
                0.0
            } else if t >= 1.0 {
                g[steps] + (t - 1.0)
            } else {
                let j = ((t / h) as usize).min(steps - 1);
                let d = t - j as f64 * h;
                g[j] + f[j] * d + (f[j + 1] - f[j]) * d * d / (2.0 * h)
            }
        };
        let next: Vec<f64> = (0..=steps)
            .map(|j| {
                let t = j as f64 * h;
                ((g[j] - at(t - wi)) / wi).clamp(0.0, 1.0)
            })
            .collect();
        f = next;
    }
    f
}

/// The weights of the lattice values that make up `hidden` of `generator` at pixel
/// `(x, y)`, computed as the generator's `fbm` combines them.
pub fn hidden_weights(generator: Generator, x: usize, y: usize) -> Vec<f64> {
    let (fx, fy) = (x as f32, y as f32);
    let norm: f32 = (0..HIDDEN_OCTAVES).map(|o| 0.5f32.powi(o as i32)).sum();
    let mut out = Vec::with_capacity(4 * HIDDEN_OCTAVES as usize);
    let (mut amp, mut scale) = (1.0f32, hidden_scale(generator));
    for _ in 0..HIDDEN_OCTAVES {
        let (u, v) = (fx / scale, fy / scale);
        let (ex, ey) = (smoothstep(u - u.floor()) as f64, smoothstep(v - v.floor()) as f64);
        let a = (amp / norm) as f64;
        out.extend([
            a * (1.0 - ex) * (1.0 - ey),
            a * ex * (1.0 - ey),
            a * (1.0 - ex) * ey,
            a * ex * ey,
        ]);
        amp *= 0.5;
        scale *= 0.5;
    }
    out
}

/// The distribution function of `hidden` of one generator at every pixel, tabulated per
/// position in the coarsest lattice cell.
pub struct HiddenCdf {
    generator: Generator,
    period: usize,
    /// `(period * period, CDF_STEPS + 1)`.
    table: Vec<f32>,
}

impl HiddenCdf {
    /// Builds the tables of `generator` (a fraction of a second on two cores).
    pub fn new(generator: Generator) -> Self {
        let scale = hidden_scale(generator);
        let period = scale as usize;
        assert!(period as f32 == scale && period.is_multiple_of(1 << (HIDDEN_OCTAVES - 1)));
        let mut table = vec![0f32; period * period * (CDF_STEPS + 1)];
        table
            .par_chunks_mut(CDF_STEPS + 1)
            .enumerate()
            .for_each(|(i, row)| {
                let cdf = uniform_sum_cdf(&hidden_weights(generator, i % period, i / period), CDF_STEPS);
                row.iter_mut().zip(cdf).for_each(|(r, c)| *r = c as f32);
            });
        Self {
            generator,
            period,
            table,
        }
    }

    pub fn generator(&self) -> Generator {
        self.generator
    }

    /// `P(hidden <= t)` at pixel `(x, y)`.
    pub fn cdf(&self, x: usize, y: usize, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        if t >= 1.0 {
            return 1.0;
        }
        let i = (y % self.period) * self.period + x % self.period;
        let row = &self.table[i * (CDF_STEPS + 1)..(i + 1) * (CDF_STEPS + 1)];
        let s = t * CDF_STEPS as f64;
        let j = (s as usize).min(CDF_STEPS - 1);
        let d = s - j as f64;
        row[j] as f64 * (1.0 - d) + row[j + 1] as f64 * d
    }
}

/// The oracle's `[P(Low), P(Medium), P(High)]` at pixel `(x, y)`, or `None` where the
/// label is nodata.
pub fn probabilities(cfg: &SynthConfig, cdf: &HiddenCdf, x: usize, y: usize) -> Option<[f32; 3]> {
    assert_eq!(
        cdf.generator, cfg.generator,
        "the oracle needs the table of its generator"
    );
    let f = fields(cfg, x, y)?;
    let RiskTerms { base, amp } = RiskTerms::of(cfg.generator, &f);
    let at = |threshold: f32| cdf.cdf(x, y, (threshold as f64 - base as f64) / amp as f64 + 0.5);
    let (low, not_high) = (at(T_MEDIUM), at(T_HIGH));
    Some([low as f32, (not_high - low) as f32, (1.0 - not_high) as f32])
}

/// Rows `[y0, y0 + rows)` of the oracle, band-major `(3, rows, W)`, [`ORACLE_NODATA`]
/// where the label is nodata.
pub fn oracle_block(cfg: &SynthConfig, cdf: &HiddenCdf, y0: usize, rows: usize) -> Vec<f32> {
    let (w, n) = (cfg.width, rows * cfg.width);
    let mut pixel_major = vec![0f32; n * 3];
    pixel_major
        .par_chunks_mut(w * 3)
        .enumerate()
        .for_each(|(r, row)| {
            for x in 0..w {
                let p = probabilities(cfg, cdf, x, y0 + r).unwrap_or([ORACLE_NODATA; 3]);
                row[x * 3..x * 3 + 3].copy_from_slice(&p);
            }
        });
    let mut out = vec![0f32; n * 3];
    for b in 0..3 {
        for i in 0..n {
            out[b * n + i] = pixel_major[i * 3 + b];
        }
    }
    out
}

/// Writes the oracle of the scene `cfg` describes to `path` (3 float32 bands, nodata
/// [`ORACLE_NODATA`], the scene's grid), block by block through a temporary file.
pub fn write_oracle(cfg: &SynthConfig, path: &Path) -> Result<(), RasterError> {
    let cdf = HiddenCdf::new(cfg.generator);
    let mut out = GeoTiffWriter::create::<f32>(
        path,
        cfg.width,
        cfg.height,
        3,
        &cfg.georef()?,
        WriteOptions {
            nodata: Some(ORACLE_NODATA as f64),
            band_descriptions: CLASS_NAMES.iter().map(|n| format!("P({n})")).collect(),
            metadata: vec![
                ("SYNTH_SEED".to_string(), cfg.seed.to_string()),
                (
                    "SYNTH_GENERATOR".to_string(),
                    format!("risk-train synth {}", cfg.generator),
                ),
                (
                    "ORACLE".to_string(),
                    "Bayes-optimal class probabilities given every latent field but hidden".to_string(),
                ),
            ],
            ..WriteOptions::default()
        },
    )?;
    for y0 in (0..cfg.height).step_by(super::BLOCK_ROWS) {
        let rows = super::BLOCK_ROWS.min(cfg.height - y0);
        out.write_bands(
            Window::new(0, y0, cfg.width, rows),
            &oracle_block(cfg, &cdf, y0, rows),
        )?;
    }
    out.finish()
}
