//! Synthetic scenes: a deterministic generator of georeferenced imagery and a matching
//! ordinal risk label raster, standing in for the source system's data (which we do not
//! have). Every pixel is a pure function of `(seed, x, y)`, so scenes of any size are
//! generated in row blocks with bounded memory, in parallel, and byte-identically.
//!
//! This crate (`risk-synth`) needs only `risk-inference` (raster writing, classes,
//! metrics), not libtorch, so that inference's tests and the fixtures can be made without
//! the training stack; `risk-training` re-exports it as `risk_training::synth`, and
//! `risk-train synth`, `fixtures` and `--oracle` call it unchanged.
//!
//! Two versions of the generative model exist ([`Generator`]); a scene is fixed by its
//! version and seed, and v2 is the default. v1 stays selectable (`risk-train synth
//! --generator v1`) so that older scenes regenerate byte for byte: the committed fixtures
//! (`risk-train fixtures`, on which the inference tests' expectations were computed) and
//! the shipped model's training and held-out scenes are v1.
//!
//! # Generative model (both versions)
//!
//! Six smooth latent fields are drawn as fractal value noise (`fbm`, values in [0, 1]):
//!
//! | field | scale (px) | meaning | visible in the image as |
//! |---|---|---|---|
//! | `veg` | 96 | vegetation cover | colour: green (vegetated) to brown (bare soil); high NIR |
//! | `rough` | 64 | terrain roughness / debris | texture: amplitude of fine (2-3 px) brightness variation, grey tint |
//! | `water` | 160 | hydrology | water bodies (dark blue) where `water > 0.72`; `wet`, a ramp from 0.5 to 0.72, darkens the land next to them |
//! | `hidden` | 48 (v1), 8 (v2) | unobserved factors | nothing: it is label noise the model cannot see |
//! | `illum` | 256 | illumination | overall brightness, unrelated to risk |
//! | `cloud` | 80 | clouds / no coverage | nodata (together with a swath-edge triangle in the top-left corner) |
//!
//! The score `s = 0.5 (1 - veg) + 0.3 rough + 0.45 wet` says that bare, rough ground near
//! water is at risk. It depends on colour (`veg`), texture (`rough`, only visible as local
//! variance) and context (`wet`, visible as proximity to water), so a model must look at
//! neighbourhoods. The risk is `r = base + amp (hidden - 0.5)` with `base` a function of
//! the visible fields; labels threshold it: `High` where `r > T_HIGH`, `Medium` where
//! `T_MEDIUM < r <= T_HIGH`, `Low` below. `hidden` caps what any model can reach: the
//! [`oracle`] gives, per pixel, the class probabilities given every field but `hidden`
//! (the ceiling), and [`stats`] measures it and the per-pixel colour floor. Pixels under
//! clouds or the swath edge are nodata in both rasters (image bands = 0, label = 255).
//!
//! # v1
//!
//! `base = s`, `amp = 0.12`. Because `r` is smooth, Medium is a thin band (a few pixels
//! wide) along the edges of High zones (about 2-4% of pixels); High is about a quarter of
//! the scene. Imagery: per-pixel reflectance from the fields (soil / vegetation / rock /
//! water colours, wet darkening, texture, illumination `0.8 + 0.4 illum`) under one fixed
//! sensor. Two weaknesses for training: no tile is Medium-rich, so minority sampling has
//! nothing to act on, and labels follow absolute colour, so colour jitter only hurts. And
//! `hidden` (+-0.06) is wider than the Medium band (0.022), so Medium is barely reachable.
//!
//! # v2
//!
//! - **Medium patches.** The plane is cut into 640 px cells (the grid shifted by a
//!   per-scene offset); a cell holds, with probability 0.3, one disc of radius 100-150 px (its edge made irregular by value
//!   noise, a 10 px ramp `patch` from 0 outside to 1 inside). Inside, the risk is pulled to
//!   the middle `c` of the Medium band: `base = c + k (s - c)` with `k = 0.02` inside and
//!   `k = 3` outside (blended by `patch`), so patches are mostly Medium and, elsewhere,
//!   Medium stays a thin band (narrower than in v1, to keep Medium at about 3% overall).
//!   Patches are what make 256 px training tiles hold 30% or more Medium.
//! - **Patches need context.** They show only as terraces: stripes of period 6 px across
//!   the patch, brightness `x (1 + 0.3 patch tri)` with `tri` a triangle wave in
//!   [-0.5, 0.5] along a per-scene direction. A single pixel's colour cannot tell a
//!   terrace stripe from illumination or texture; a neighbourhood can.
//! - **Per-scene sensor and sun** ([`Sensor`], drawn from the seed): surface reflectance
//!   `x light`, `light = light0 + light_amp illum` (`light0` 0.7-0.9, `light_amp`
//!   0.2-0.5), then haze `x (1 - h) + h HAZE[b]` (`h` 0-0.15, bluish), gain 0.8-1.2, band
//!   balance 0.95-1.05 per band and offset -0.02..0.03. Labels do not change with them, so
//!   a model must learn colour up to these changes: what colour jitter (0.4) teaches.
//! - **`hidden`**: `amp = 0.05` and a scale of 8 px, so Medium is reachable (the oracle's
//!   Medium precision is far above 0.30 at recall 0.30) and a patch spans hundreds of
//!   independent `hidden` cells.
//!
//! Imagery, both versions: plus sensor noise (approximately Gaussian, sigma 0.015
//! reflectance, independent per band and pixel). Written as RGB (optionally + NIR) uint8
//! (`1..=255`, nodata 0) or uint16 (reflectance x 10000, `1..=65535`, nodata 0), in
//! EPSG:32633 with 10 m pixels. The label GeoTIFF's `SYNTH_GENERATOR` metadata names the
//! version (`risk-train synth v2`; v1 files keep their original `risk-train synth`).
//!
//! Only integer hashing and `f32` arithmetic without transcendental functions (plus the
//! square root, which IEEE 754 rounds exactly) are used, so the output does not depend on
//! the platform's math library.

use std::path::Path;

use rayon::prelude::*;
use risk_inference::classes::{NODATA as LABEL_NODATA, PALETTE};
use risk_inference::raster::{GeoRef, GeoTiffWriter, RasterError, Window, WriteOptions};

pub mod oracle;
pub mod stats;

/// Risk above which a pixel is High.
pub const T_HIGH: f32 = 0.565;
/// Risk above which a pixel is Medium (up to [`T_HIGH`]).
pub const T_MEDIUM: f32 = 0.543;

/// Pixel type of the generated image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynthDtype {
    U8,
    U16,
}

/// Version of the generative model (see the module overview). Scenes of one version and
/// seed never change; v2 is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Generator {
    /// The first model: Medium only as a thin band, one fixed sensor (the committed
    /// fixtures and the shipped model's training and held-out scenes).
    V1,
    /// Medium also in patches, per-scene sensor and illumination, a narrower `hidden`.
    #[default]
    V2,
}

impl std::fmt::Display for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        })
    }
}

/// What to generate. Defaults: 1024 x 1024, seed 1, RGB uint8, 10 m pixels at
/// UTM 33N (500000, 5200000), generator v2.
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
    /// Version of the generative model.
    pub generator: Generator,
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
            generator: Generator::default(),
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
    pub generator: Generator,
}

/// The scenes `just fixtures` writes and a test regenerates byte for byte. The first three
/// stay on generator v1, so that the inference tests' expectations (computed on them) hold.
/// `demo512` is the demo's scene (`just demo`), on generator v2 as the shipped model's
/// training scenes: seed 4 is the first seed past the other fixtures' whose 512 px window
/// holds a Medium patch (seeds 1-40 hold either about 1% Medium, the ambiguous band alone,
/// or 5-16%, a patch), chosen from the labels alone, before any model scored it.
pub const FIXTURES: [Fixture; 4] = [
    Fixture {
        name: "scene512",
        width: 512,
        height: 512,
        seed: 1,
        nir: false,
        dtype: SynthDtype::U8,
        generator: Generator::V1,
    },
    Fixture {
        name: "scene700x433",
        width: 700,
        height: 433,
        seed: 2,
        nir: false,
        dtype: SynthDtype::U8,
        generator: Generator::V1,
    },
    Fixture {
        name: "scene256_nir_u16",
        width: 256,
        height: 256,
        seed: 3,
        nir: true,
        dtype: SynthDtype::U16,
        generator: Generator::V1,
    },
    Fixture {
        name: "demo512",
        width: 512,
        height: 512,
        seed: 4,
        nir: false,
        dtype: SynthDtype::U8,
        generator: Generator::V2,
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
            generator: self.generator,
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
/// Generator v2: the per-scene draws (sensor, illumination).
const L_SCENE: u64 = 9;

const WATER_LEVEL: f32 = 0.72;

/// Octaves of the `hidden` field, which the oracle marginalises.
pub(crate) const HIDDEN_OCTAVES: u32 = 2;

/// Scale (px, a whole number divisible by `2^(HIDDEN_OCTAVES - 1)`) of the `hidden` field:
/// v1 48; v2 8, so that a Medium patch spans hundreds of independent `hidden` cells.
pub(crate) fn hidden_scale(generator: Generator) -> f32 {
    match generator {
        Generator::V1 => 48.0,
        Generator::V2 => 8.0,
    }
}

/// The `hidden` field at `(x, y)` (defined under clouds too), for checks of the oracle.
pub fn hidden(cfg: &SynthConfig, x: usize, y: usize) -> f32 {
    fbm(
        cfg.seed,
        L_HIDDEN,
        x as f32,
        y as f32,
        hidden_scale(cfg.generator),
        HIDDEN_OCTAVES,
    )
}

/// v2: centre of the Medium band, and how far the risk deviates from it per unit of the
/// v1 score outside (`STRETCH_OUT`) and inside (`STRETCH_IN`) Medium patches.
const BAND_CENTRE: f32 = 0.5 * (T_MEDIUM + T_HIGH);
const STRETCH_OUT: f32 = 3.0;
const STRETCH_IN: f32 = 0.02;
/// v2: chance that a cell holds a Medium patch, and the range of the patch radius (px).
const PATCH_RATE: f32 = 0.30;
const PATCH_R_MIN: f32 = 100.0;
const PATCH_R_MAX: f32 = 150.0;
/// v2: weight of `hidden` in the risk (v1: 0.12).
const HIDDEN_AMP_V2: f32 = 0.05;
/// v2: terrace stripes in Medium patches: period (px) and relative brightness amplitude.
const TERRACE_PERIOD: f32 = 6.0;
const TERRACE_AMP: f32 = 0.3;
/// v2: Medium patches: at most one per `PATCH_CELL` square cell (not a multiple of the
/// usual tile sizes, so that patches fall anywhere relative to a tile grid), its centre
/// far enough inside the cell that the disc never leaves it; edges ramp over `PATCH_RAMP`
/// px.
const PATCH_CELL: usize = 640;
const PATCH_RAMP: f32 = 10.0;
/// Hash streams of the patches (presence, centre x, centre y, radius, edge noise).
const L_PATCH_AT: [u64; 5] = [10, 11, 12, 13, 14];

/// v2: how far `(x, y)` is inside a Medium patch: 0 outside, 1 inside, a smooth ramp at
/// the edge. A cell holds a patch with probability `PATCH_RATE`: a disc of radius
/// uniform in `[PATCH_R_MIN, PATCH_R_MAX]`, its edge made irregular by value noise.
fn patch_at(seed: u64, x: usize, y: usize) -> f32 {
    // The cell grid is shifted by a per-scene offset, so that a scene of any size holds
    // patches at the same expected density.
    let shift = |k| (scene_uniform(seed, k) * PATCH_CELL as f32) as usize;
    let (x, y) = (x + shift(10), y + shift(11));
    let (cx, cy) = ((x / PATCH_CELL) as i64, (y / PATCH_CELL) as i64);
    let u = |k: usize| lattice(seed, L_PATCH_AT[k], cx, cy);
    if u(0) >= PATCH_RATE {
        return 0.0;
    }
    let cell = PATCH_CELL as f32;
    let margin = PATCH_R_MAX * 1.2 + PATCH_RAMP;
    let centre_x = cx as f32 * cell + margin + (cell - 2.0 * margin) * u(1);
    let centre_y = cy as f32 * cell + margin + (cell - 2.0 * margin) * u(2);
    let radius = PATCH_R_MIN + (PATCH_R_MAX - PATCH_R_MIN) * u(3);
    let (fx, fy) = (x as f32, y as f32);
    let radius = radius * (0.8 + 0.4 * value_noise(seed, L_PATCH_AT[4], fx, fy, 32.0));
    let (dx, dy) = (fx - centre_x, fy - centre_y);
    let dist = (dx * dx + dy * dy).sqrt(); // IEEE sqrt: correctly rounded on every platform
    smoothstep(((radius - dist) / PATCH_RAMP).clamp(0.0, 1.0))
}

/// The latent fields at one labelled pixel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    pub veg: f32,
    pub rough: f32,
    pub water: f32,
    pub hidden: f32,
    pub illum: f32,
    pub wet: f32,
    /// v2: how far inside a Medium patch, 0 (outside) to 1 (inside); 0 in v1.
    pub patch: f32,
}

/// The latent fields at `(x, y)`, or `None` where the pixel is nodata (swath edge or
/// cloud).
pub(crate) fn fields(cfg: &SynthConfig, x: usize, y: usize) -> Option<Fields> {
    let seed = cfg.seed;
    let (fx, fy) = (x as f32, y as f32);
    // Swath edge: a triangle in the top-left corner, plus clouds.
    let edge = (x as f32 / cfg.width as f32) + (y as f32 / cfg.height as f32) < 0.12;
    let cloud = fbm(seed, L_CLOUD, fx, fy, 80.0, 3) > 0.76;
    if edge || cloud {
        return None;
    }
    let water = fbm(seed, L_WATER, fx, fy, 160.0, 3);
    let patch = match cfg.generator {
        Generator::V1 => 0.0,
        Generator::V2 => patch_at(seed, x, y),
    };
    Some(Fields {
        veg: fbm(seed, L_VEG, fx, fy, 96.0, 4),
        rough: fbm(seed, L_ROUGH, fx, fy, 64.0, 3),
        water,
        hidden: hidden(cfg, x, y),
        illum: fbm(seed, L_ILLUM, fx, fy, 256.0, 2),
        wet: ((water - 0.5) / (WATER_LEVEL - 0.5)).clamp(0.0, 1.0),
        patch,
    })
}

/// The risk score as `base + amp * (hidden - 0.5)`: `base` holds every field but
/// `hidden`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RiskTerms {
    pub base: f32,
    pub amp: f32,
}

impl RiskTerms {
    pub fn of(generator: Generator, f: &Fields) -> Self {
        let score = 0.5 * (1.0 - f.veg) + 0.3 * f.rough + 0.45 * f.wet;
        match generator {
            Generator::V1 => Self {
                base: score,
                amp: 0.12,
            },
            Generator::V2 => {
                let stretch = STRETCH_OUT + (STRETCH_IN - STRETCH_OUT) * f.patch;
                Self {
                    base: BAND_CENTRE + stretch * (score - BAND_CENTRE),
                    amp: HIDDEN_AMP_V2,
                }
            }
        }
    }

    pub fn risk(&self, hidden: f32) -> f32 {
        self.base + self.amp * (hidden - 0.5)
    }
}

/// The class of a risk score: 2 High, 1 Medium, 0 Low.
pub(crate) fn class_of(risk: f32) -> u8 {
    if risk > T_HIGH {
        2
    } else if risk > T_MEDIUM {
        1
    } else {
        0
    }
}

/// A uniform value in [0, 1) drawn once per scene (index `k`).
fn scene_uniform(seed: u64, k: i64) -> f32 {
    lattice(seed, L_SCENE, k, 0)
}

/// v2: what one scene's sensor and sun do to the surface reflectance, drawn from the seed:
/// `((surface * light) (1 - haze) + haze * HAZE) * gain * balance[b] + offset`, with
/// `light = light0 + light_amp * illum`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sensor {
    pub gain: f32,
    pub balance: [f32; 4],
    pub offset: f32,
    pub haze: f32,
    pub light0: f32,
    pub light_amp: f32,
    /// Direction of the terrace stripes (unit vector).
    pub terrace_dir: (f32, f32),
}

/// Colour of haze (path radiance): bluer than the ground, little in NIR.
const HAZE: [f32; 4] = [0.70, 0.80, 0.95, 0.45];

impl Sensor {
    /// The sensor of scene `seed`.
    pub fn of(seed: u64) -> Self {
        let u = |k| scene_uniform(seed, k);
        const DIRS: [(f32, f32); 4] = [(1.0, 0.0), (0.0, 1.0), (0.6, 0.8), (0.8, -0.6)];
        Self {
            gain: 0.8 + 0.4 * u(0),
            balance: [
                0.95 + 0.1 * u(1),
                0.95 + 0.1 * u(2),
                0.95 + 0.1 * u(3),
                0.95 + 0.1 * u(4),
            ],
            offset: -0.02 + 0.05 * u(5),
            haze: 0.15 * u(6),
            light0: 0.7 + 0.2 * u(7),
            light_amp: 0.2 + 0.3 * u(8),
            terrace_dir: DIRS[((u(9) * 4.0) as usize).min(3)],
        }
    }
}

/// One pixel of a scene: reflectance per band (R, G, B, NIR) and its label.
struct Pixel {
    reflectance: [f32; 4],
    label: u8,
}

const NODATA_PIXEL: Pixel = Pixel {
    reflectance: [f32::NAN; 4],
    label: LABEL_NODATA,
};

fn pixel(cfg: &SynthConfig, sensor: &Sensor, x: usize, y: usize) -> Pixel {
    let Some(f) = fields(cfg, x, y) else {
        return NODATA_PIXEL;
    };
    let label = class_of(RiskTerms::of(cfg.generator, &f).risk(f.hidden));
    const SOIL: [f32; 4] = [0.55, 0.45, 0.33, 0.35];
    const VEG: [f32; 4] = [0.16, 0.38, 0.14, 0.62];
    const ROCK: [f32; 4] = [0.60, 0.59, 0.57, 0.42];
    const WATER: [f32; 4] = [0.08, 0.16, 0.28, 0.04];
    let seed = cfg.seed;
    let (fx, fy) = (x as f32, y as f32);
    let texture = value_noise(seed, L_TEXTURE, fx, fy, 2.5) - 0.5;
    let surface = |b: usize| {
        if f.water > WATER_LEVEL {
            WATER[b] * (1.0 + 0.2 * texture)
        } else {
            let cover = smoothstep(f.veg.clamp(0.0, 1.0));
            let land = SOIL[b] + (VEG[b] - SOIL[b]) * cover;
            let land = land + (ROCK[b] - land) * 0.45 * f.rough;
            land * (1.0 - 0.35 * f.wet) * (1.0 + 1.1 * f.rough * texture)
        }
    };
    let mut refl = [0.0f32; 4];
    match cfg.generator {
        Generator::V1 => {
            let light = 0.8 + 0.4 * f.illum;
            for (b, r) in refl.iter_mut().enumerate() {
                *r = surface(b) * light + 0.015 * pixel_gauss(seed, b as u64, x as i64, y as i64);
            }
        }
        Generator::V2 => {
            let light = sensor.light0 + sensor.light_amp * f.illum;
            // Terraces: a triangle wave across the stripes, only inside Medium patches.
            let (dx, dy) = sensor.terrace_dir;
            let t = (fx * dx + fy * dy) / TERRACE_PERIOD;
            let tri = (2.0 * (t - t.floor()) - 1.0).abs() - 0.5;
            let terrace = 1.0 + TERRACE_AMP * f.patch * tri;
            for (b, r) in refl.iter_mut().enumerate() {
                let ground = surface(b) * terrace * light;
                let at_sensor = ground * (1.0 - sensor.haze) + sensor.haze * HAZE[b];
                *r = at_sensor * sensor.gain * sensor.balance[b]
                    + sensor.offset
                    + 0.015 * pixel_gauss(seed, b as u64, x as i64, y as i64);
            }
        }
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
    let sensor = Sensor::of(cfg.seed);
    labels
        .par_chunks_mut(w)
        .zip(pixel_major.par_chunks_mut(w * bands))
        .enumerate()
        .for_each(|(r, (lab_row, img_row))| {
            for x in 0..w {
                let p = pixel(cfg, &sensor, x, y0 + r);
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
    // v1 scenes keep their original metadata (and so their bytes).
    let generator = match cfg.generator {
        Generator::V1 => "risk-train synth".to_string(),
        g => format!("risk-train synth {g}"),
    };
    let meta = vec![
        ("SYNTH_SEED".to_string(), cfg.seed.to_string()),
        ("SYNTH_GENERATOR".to_string(), generator),
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
