//! Synthetic scenes: a deterministic generator of georeferenced imagery and a matching
//! ordinal risk label raster, standing in for the source system's data (which we do not
//! have). Every pixel is a pure function of `(seed, x, y)`, so scenes of any size are
//! generated in row blocks with bounded memory, in parallel, and byte-identically.
//!
//! # Generative model
//!
//! Six smooth latent fields are drawn as fractal value noise (`fbm`, values in [0, 1]):
//!
//! | field | scale (px) | meaning | visible in the image as |
//! |---|---|---|---|
//! | `veg` | 96 | vegetation cover | colour: green (vegetated) to brown (bare soil); high NIR |
//! | `rough` | 64 | terrain roughness / debris | texture: amplitude of fine (2-3 px) brightness variation, grey tint |
//! | `water` | 160 | hydrology | water bodies (dark blue) where `water > 0.72`; `wet`, a ramp from 0.5 to 0.72, darkens the land next to them |
//! | `hidden` | 48 | unobserved factors | nothing: it is label noise the model cannot see |
//! | `illum` | 256 | illumination / haze | overall brightness, unrelated to risk |
//! | `cloud` | 80 | clouds / no coverage | nodata (together with a swath-edge triangle in the top-left corner) |
//!
//! The risk score is `r = 0.5 (1 - veg) + 0.3 rough + 0.45 wet + 0.12 (hidden - 0.5)`:
//! bare, rough ground near water is at risk. It depends on colour (`veg`), texture
//! (`rough`, only visible as local variance) and context (`wet`, visible as proximity to
//! water), so a model must look at neighbourhoods, and `hidden` caps what any model can
//! reach. Labels threshold the smooth score: `High` where `r > T_HIGH`, `Medium` where
//! `T_MEDIUM < r <= T_HIGH`, `Low` below. Because `r` is smooth, Medium is a thin band
//! (a few pixels wide) along the edges of High zones and rare (about 2-4% of pixels), as
//! in the source data; High is about a quarter of the scene. Pixels under clouds or the
//! swath edge are nodata in both rasters (image bands = 0, label = 255).
//!
//! Imagery: per-pixel reflectance from the fields (soil / vegetation / rock / water
//! colours, wet darkening, texture, illumination), plus sensor noise (approximately
//! Gaussian, sigma 0.015 reflectance, independent per band and pixel). Written as RGB
//! (optionally + NIR) uint8 (`1..=255`, nodata 0) or uint16 (reflectance x 10000,
//! `1..=65535`, nodata 0), in EPSG:32633 with 10 m pixels.
//!
//! Only integer hashing and `f32` arithmetic without transcendental functions are used,
//! so the output does not depend on the platform's math library.

use std::path::Path;

use rayon::prelude::*;
use risk_inference::classes::{NODATA as LABEL_NODATA, PALETTE};
use risk_inference::raster::{GeoRef, GeoTiffWriter, RasterError, Window, WriteOptions};

/// Risk above which a pixel is High.
pub const T_HIGH: f32 = 0.565;
/// Risk above which a pixel is Medium (up to [`T_HIGH`]).
pub const T_MEDIUM: f32 = 0.543;

/// Pixel type of the generated image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SynthDtype {
    U8,
    U16,
}

/// What to generate. Defaults: 1024 x 1024, seed 1, RGB uint8, 10 m pixels at
/// UTM 33N (500000, 5200000).
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Seed of every random field; the same seed gives the same scene.
    pub seed: u64,
    /// Add a fourth, near-infrared band.
    pub nir: bool,
    /// Pixel type of the image bands.
    pub dtype: SynthDtype,
    /// Pixel size in metres (default 10).
    pub pixel_size: f64,
    /// Top-left corner in EPSG:32633 metres (default 500000, 5200000).
    pub origin: (f64, f64),
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            width: 1024,
            height: 1024,
            seed: 1,
            nir: false,
            dtype: SynthDtype::U8,
            pixel_size: 10.0,
            origin: (500_000.0, 5_200_000.0),
        }
    }
}

impl SynthConfig {
    /// Number of image bands (3, or 4 with NIR).
    pub fn bands(&self) -> usize {
        if self.nir { 4 } else { 3 }
    }

    pub fn georef(&self) -> Result<GeoRef, RasterError> {
        GeoRef::north_up(32633, self.origin.0, self.origin.1, self.pixel_size)
    }
}

/// One committed test scene under `fixtures/`: `<name>.tif` and `<name>_labels.tif`.
pub struct Fixture {
    pub name: &'static str,
    pub width: usize,
    pub height: usize,
    pub seed: u64,
    pub nir: bool,
    pub dtype: SynthDtype,
}

/// The scenes `just fixtures` writes and a test regenerates byte for byte.
pub const FIXTURES: [Fixture; 3] = [
    Fixture {
        name: "scene512",
        width: 512,
        height: 512,
        seed: 1,
        nir: false,
        dtype: SynthDtype::U8,
    },
    Fixture {
        name: "scene700x433",
        width: 700,
        height: 433,
        seed: 2,
        nir: false,
        dtype: SynthDtype::U8,
    },
    Fixture {
        name: "scene256_nir_u16",
        width: 256,
        height: 256,
        seed: 3,
        nir: true,
        dtype: SynthDtype::U16,
    },
];

impl Fixture {
    pub fn config(&self) -> SynthConfig {
        SynthConfig {
            width: self.width,
            height: self.height,
            seed: self.seed,
            nir: self.nir,
            dtype: self.dtype,
            ..SynthConfig::default()
        }
    }

    /// Writes the fixture's image and labels into `dir`.
    pub fn write(&self, dir: &Path) -> Result<ClassCounts, RasterError> {
        write_scene(
            &self.config(),
            &dir.join(format!("{}.tif", self.name)),
            &dir.join(format!("{}_labels.tif", self.name)),
        )
    }
}

/// Pixel counts per label value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub low: u64,
    pub medium: u64,
    pub high: u64,
    pub nodata: u64,
}

impl ClassCounts {
    pub fn add_labels(&mut self, labels: &[u8]) {
        for &l in labels {
            match l {
                0 => self.low += 1,
                1 => self.medium += 1,
                2 => self.high += 1,
                _ => self.nodata += 1,
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.low + self.medium + self.high + self.nodata
    }

    /// Shares of Low, Medium, High among all pixels, and the nodata share.
    pub fn fractions(&self) -> [f64; 4] {
        let t = self.total().max(1) as f64;
        [self.low, self.medium, self.high, self.nodata].map(|c| c as f64 / t)
    }
}

impl std::fmt::Display for ClassCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [l, m, h, n] = self.fractions().map(|x| 100.0 * x);
        write!(f, "Low {l:.2}%  Medium {m:.2}%  High {h:.2}%  nodata {n:.2}%")
    }
}

// ---- deterministic noise -------------------------------------------------------------

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in [0, 1) for lattice point `(ix, iy)` of `layer`.
fn lattice(seed: u64, layer: u64, ix: i64, iy: i64) -> f32 {
    let h = splitmix64(
        seed.wrapping_mul(0xD6E8_FEB8_6659_FD93)
            ^ splitmix64(
                layer ^ (ix as u64).wrapping_mul(0x9E37_79B9) ^ (iy as u64).wrapping_mul(0x85EB_CA6B) << 1,
            ),
    );
    (h >> 40) as f32 / (1u64 << 24) as f32
}

fn smoothstep(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// Value noise: bilinear interpolation (smoothstep-eased) of lattice values spaced
/// `scale` pixels apart.
fn value_noise(seed: u64, layer: u64, x: f32, y: f32, scale: f32) -> f32 {
    let (u, v) = (x / scale, y / scale);
    let (ix, iy) = (u.floor(), v.floor());
    let (fx, fy) = (smoothstep(u - ix), smoothstep(v - iy));
    let (ix, iy) = (ix as i64, iy as i64);
    let a = lattice(seed, layer, ix, iy);
    let b = lattice(seed, layer, ix + 1, iy);
    let c = lattice(seed, layer, ix, iy + 1);
    let d = lattice(seed, layer, ix + 1, iy + 1);
    let top = a + (b - a) * fx;
    let bottom = c + (d - c) * fx;
    top + (bottom - top) * fy
}

/// Fractal value noise: `octaves` layers of value noise, each half the scale and half
/// the amplitude of the previous one, normalised to [0, 1].
fn fbm(seed: u64, layer: u64, x: f32, y: f32, scale: f32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut norm, mut s) = (0.0, 1.0, 0.0, scale);
    for o in 0..octaves {
        sum += amp * value_noise(seed, layer * 16 + o as u64, x, y, s);
        norm += amp;
        amp *= 0.5;
        s *= 0.5;
    }
    sum / norm
}

/// Approximately standard-normal noise for pixel `(x, y)`, band `band` (Irwin-Hall sum
/// of four uniforms, rescaled to unit variance).
fn pixel_gauss(seed: u64, band: u64, x: i64, y: i64) -> f32 {
    let h = splitmix64(splitmix64(seed ^ 0xA076_1D64_78BD_642F ^ band << 56) ^ (x as u64) << 32 ^ y as u64);
    let sum: f32 = (0..4).map(|i| ((h >> (16 * i)) & 0xFFFF) as f32 / 65536.0).sum();
    (sum - 2.0) * 1.732_050_8
}

/// Field layers (distinct hash streams).
const L_VEG: u64 = 1;
const L_ROUGH: u64 = 2;
const L_WATER: u64 = 3;
const L_HIDDEN: u64 = 4;
const L_ILLUM: u64 = 5;
const L_CLOUD: u64 = 6;
const L_TEXTURE: u64 = 7;

const WATER_LEVEL: f32 = 0.72;

/// One pixel of a scene: reflectance per band (R, G, B, NIR) and its label.
struct Pixel {
    reflectance: [f32; 4],
    label: u8,
}

fn pixel(cfg: &SynthConfig, x: usize, y: usize) -> Pixel {
    let seed = cfg.seed;
    let (fx, fy) = (x as f32, y as f32);
    // Swath edge: a triangle in the top-left corner, plus clouds.
    let edge = (x as f32 / cfg.width as f32) + (y as f32 / cfg.height as f32) < 0.12;
    let cloud = fbm(seed, L_CLOUD, fx, fy, 80.0, 3) > 0.76;
    if edge || cloud {
        return Pixel {
            reflectance: [f32::NAN; 4],
            label: LABEL_NODATA,
        };
    }
    let veg = fbm(seed, L_VEG, fx, fy, 96.0, 4);
    let rough = fbm(seed, L_ROUGH, fx, fy, 64.0, 3);
    let water = fbm(seed, L_WATER, fx, fy, 160.0, 3);
    let hidden = fbm(seed, L_HIDDEN, fx, fy, 48.0, 2);
    let illum = fbm(seed, L_ILLUM, fx, fy, 256.0, 2);
    let wet = ((water - 0.5) / (WATER_LEVEL - 0.5)).clamp(0.0, 1.0);

    let risk = 0.5 * (1.0 - veg) + 0.3 * rough + 0.45 * wet + 0.12 * (hidden - 0.5);
    let label = if risk > T_HIGH {
        2
    } else if risk > T_MEDIUM {
        1
    } else {
        0
    };

    const SOIL: [f32; 4] = [0.55, 0.45, 0.33, 0.35];
    const VEG: [f32; 4] = [0.16, 0.38, 0.14, 0.62];
    const ROCK: [f32; 4] = [0.60, 0.59, 0.57, 0.42];
    const WATER: [f32; 4] = [0.08, 0.16, 0.28, 0.04];
    let texture = value_noise(seed, L_TEXTURE, fx, fy, 2.5) - 0.5;
    let light = 0.8 + 0.4 * illum;
    let mut refl = [0.0f32; 4];
    for b in 0..4 {
        let v = if water > WATER_LEVEL {
            WATER[b] * (1.0 + 0.2 * texture)
        } else {
            let cover = smoothstep(veg.clamp(0.0, 1.0));
            let land = SOIL[b] + (VEG[b] - SOIL[b]) * cover;
            let land = land + (ROCK[b] - land) * 0.45 * rough;
            land * (1.0 - 0.35 * wet) * (1.0 + 1.1 * rough * texture)
        };
        refl[b] = v * light + 0.015 * pixel_gauss(seed, b as u64, x as i64, y as i64);
    }
    Pixel {
        reflectance: refl,
        label,
    }
}

/// Image digital numbers of one pixel type; 0 is reserved for nodata.
trait Dn: risk_inference::raster::PixelType + Copy + Default + Send + Sync {
    fn from_reflectance(r: f32) -> Self;
}

impl Dn for u8 {
    fn from_reflectance(r: f32) -> Self {
        (r * 255.0).round().clamp(1.0, 255.0) as u8
    }
}

impl Dn for u16 {
    fn from_reflectance(r: f32) -> Self {
        (r * 10000.0).round().clamp(1.0, 65535.0) as u16
    }
}

/// A block of rows `[y0, y0 + rows)` of a scene: image band-major `(bands, rows, W)`,
/// labels `(rows, W)`.
pub struct Block<T> {
    pub image: Vec<T>,
    pub labels: Vec<u8>,
}

fn generate_block<T: Dn>(cfg: &SynthConfig, y0: usize, rows: usize) -> Block<T> {
    let (w, bands) = (cfg.width, cfg.bands());
    let mut labels = vec![0u8; rows * w];
    let mut pixel_major = vec![T::default(); rows * w * bands];
    labels
        .par_chunks_mut(w)
        .zip(pixel_major.par_chunks_mut(w * bands))
        .enumerate()
        .for_each(|(r, (lab_row, img_row))| {
            for x in 0..w {
                let p = pixel(cfg, x, y0 + r);
                lab_row[x] = p.label;
                for b in 0..bands {
                    img_row[x * bands + b] = if p.label == LABEL_NODATA {
                        T::default()
                    } else {
                        T::from_reflectance(p.reflectance[b])
                    };
                }
            }
        });
    // Pixel-major -> band-major.
    let n = rows * w;
    let mut image = vec![T::default(); n * bands];
    for b in 0..bands {
        for i in 0..n {
            image[b * n + i] = pixel_major[i * bands + b];
        }
    }
    Block { image, labels }
}

/// Generates rows `[y0, y0 + rows)` of the scene as uint8 imagery (for tests and
/// in-memory use).
pub fn generate_u8(cfg: &SynthConfig, y0: usize, rows: usize) -> Block<u8> {
    generate_block::<u8>(cfg, y0, rows)
}

/// Rows generated and written at a time.
const BLOCK_ROWS: usize = 512;

/// Writes the scene's image to `image_path` and its labels to `label_path` (GeoTIFFs,
/// same grid), block by block, and returns the label class counts.
pub fn write_scene(
    cfg: &SynthConfig,
    image_path: &Path,
    label_path: &Path,
) -> Result<ClassCounts, RasterError> {
    match cfg.dtype {
        SynthDtype::U8 => write_scene_as::<u8>(cfg, image_path, label_path),
        SynthDtype::U16 => write_scene_as::<u16>(cfg, image_path, label_path),
    }
}

fn write_scene_as<T: Dn>(
    cfg: &SynthConfig,
    image_path: &Path,
    label_path: &Path,
) -> Result<ClassCounts, RasterError> {
    let georef = cfg.georef()?;
    let mut names = vec!["red".to_string(), "green".into(), "blue".into()];
    if cfg.nir {
        names.push("nir".into());
    }
    let meta = vec![
        ("SYNTH_SEED".to_string(), cfg.seed.to_string()),
        ("SYNTH_GENERATOR".to_string(), "risk-train synth".to_string()),
    ];
    let mut image = GeoTiffWriter::create::<T>(
        image_path,
        cfg.width,
        cfg.height,
        cfg.bands(),
        &georef,
        WriteOptions {
            nodata: Some(0.0),
            band_descriptions: names,
            metadata: meta.clone(),
            ..WriteOptions::default()
        },
    )?;
    let mut labels = GeoTiffWriter::create::<u8>(
        label_path,
        cfg.width,
        cfg.height,
        1,
        &georef,
        WriteOptions {
            nodata: Some(LABEL_NODATA as f64),
            band_descriptions: vec!["risk class (0 Low, 1 Medium, 2 High)".into()],
            color_table: PALETTE.to_vec(),
            metadata: meta,
            ..WriteOptions::default()
        },
    )?;
    let mut counts = ClassCounts::default();
    for y0 in (0..cfg.height).step_by(BLOCK_ROWS) {
        let rows = BLOCK_ROWS.min(cfg.height - y0);
        let block = generate_block::<T>(cfg, y0, rows);
        let window = Window::new(0, y0, cfg.width, rows);
        image.write_bands(window, &block.image)?;
        labels.write_band(1, window, &block.labels)?;
        counts.add_labels(&block.labels);
    }
    image.finish()?;
    labels.finish()?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_noise_has_unit_variance() {
        let n = 200_000;
        let v: Vec<f32> = (0..n).map(|i| pixel_gauss(7, 0, i % 1000, i / 1000)).collect();
        let mean = v.iter().sum::<f32>() / n as f32;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n as f32;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn value_noise_is_continuous_and_hits_lattice_values() {
        // At lattice points the noise equals the lattice value; between them it stays
        // within the range of the four corners.
        let a = value_noise(3, 1, 32.0, 64.0, 32.0);
        assert_eq!(a, lattice(3, 1, 1, 2));
        let near = value_noise(3, 1, 32.001, 64.0, 32.0);
        assert!((near - a).abs() < 1e-3);
    }
}
