//! Training augmentation of one tile (`docs/spec.md`, "Training"): random horizontal / vertical
//! flips and 90-degree rotations (image and labels together), optionally a rotation by any
//! angle in [0, 90) degrees ([`rotate`]: flips and quarter turns alone never show an oriented
//! texture at 45 degrees to how it was generated), then colour jitter on the first
//! three (RGB) bands of the image in [0, 1]: brightness `x * b`, contrast `(x - m) * c + m` (m
//! the tile's mean grey), saturation `(x - g) * s + g` (g the pixel's grey, ITU-R 601 weights),
//! each factor uniform in `[1 - j, 1 + j]`, results clamped to [0, 1]. Draws come from a
//! numpy-compatible `RandomState`, so a seed fixes the augmentation.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::numpy_rng::RandomState;

/// Augmentation of training tiles (`augment:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Random horizontal and vertical flips. Default true.
    pub flips: bool,
    /// Random 90-degree rotations. Default true.
    pub rot90: bool,
    /// Then a rotation by a uniform angle in [0, 90) degrees about the tile centre
    /// (bilinear image, reflected beyond the tile; nearest labels, nodata beyond it), so
    /// that oriented texture is seen at every angle, not only the four of `rot90`.
    /// Default false (not in the source's recipe).
    pub rotate_any: bool,
    /// Brightness factor drawn from `[1 - b, 1 + b]` (RGB bands). Default 0.4.
    pub brightness: f64,
    /// Contrast factor drawn from `[1 - c, 1 + c]`. Default 0.4.
    pub contrast: f64,
    /// Saturation factor drawn from `[1 - s, 1 + s]`. Default 0.4.
    pub saturation: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            flips: true,
            rot90: true,
            rotate_any: false,
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
        }
    }
}

fn factor(rng: &mut RandomState, jitter: f64) -> f64 {
    1.0 - jitter + 2.0 * jitter * rng.next_f64()
}

/// `image` `(C, T, T)` float in [0, 1], `labels` `(T, T)`: augmented copies.
pub fn augment(
    image: &Tensor,
    labels: &Tensor,
    cfg: &AugmentConfig,
    rng: &mut RandomState,
) -> (Tensor, Tensor) {
    let (mut x, mut y) = (image.shallow_clone(), labels.shallow_clone());
    if cfg.flips {
        if rng.next_f64() < 0.5 {
            (x, y) = (x.flip([2]), y.flip([1])); // left-right
        }
        if rng.next_f64() < 0.5 {
            (x, y) = (x.flip([1]), y.flip([0])); // up-down
        }
    }
    if cfg.rot90 {
        let k = rng.randint(4, 1)[0] as i64;
        if k > 0 {
            (x, y) = (x.rot90(k, [1, 2]), y.rot90(k, [0, 1]));
        }
    }
    if cfg.rotate_any {
        let degrees = 90.0 * rng.next_f64();
        (x, y) = rotate(&x, &y, degrees);
    }
    if x.size()[0] >= 3 {
        let rgb = x.narrow(0, 0, 3); // (3, T, T)
        let grey = |t: &Tensor| (t.get(0) * 0.299 + t.get(1) * 0.587 + t.get(2) * 0.114).unsqueeze(0); // (1, T, T)
        let mut rgb = (rgb * factor(rng, cfg.brightness)).clamp(0.0, 1.0);
        let c = factor(rng, cfg.contrast);
        let m = grey(&rgb).mean(tch::Kind::Float);
        rgb = ((&rgb - &m) * c + &m).clamp(0.0, 1.0);
        let s = factor(rng, cfg.saturation);
        let g = grey(&rgb);
        rgb = ((&rgb - &g) * s + &g).clamp(0.0, 1.0);
        let rest = x.narrow(0, 3, x.size()[0] - 3);
        x = Tensor::cat(&[rgb, rest], 0);
    }
    (x, y)
}

/// `image` `(C, H, W)` and `labels` `(H, W)` rotated by `degrees` (counter-clockwise as
/// displayed, rows downwards) about the tile centre, on the same grid: the image sampled
/// bilinearly and reflected beyond the tile, the labels sampled at the nearest pixel and
/// 255 (ignored) beyond the tile. Pixel centres map exactly for multiples of 90 degrees.
pub fn rotate(image: &Tensor, labels: &Tensor, degrees: f64) -> (Tensor, Tensor) {
    let (h, w) = (image.size()[1], image.size()[2]);
    let (sin, cos) = degrees.to_radians().sin_cos();
    // Output pixel (x, y) in normalised coordinates samples the input at R(-angle) (x, y);
    // the aspect ratio enters through h / w for non-square tiles.
    let (ax, ay) = (h as f64 / w as f64, w as f64 / h as f64);
    let theta = Tensor::from_slice(&[
        cos as f32,
        (-sin * ax) as f32,
        0.0,
        (sin * ay) as f32,
        cos as f32,
        0.0,
    ])
    .view([1, 2, 3]);
    let c = image.size()[0];
    let grid = Tensor::affine_grid_generator(&theta, [1, c, h, w], false);
    // grid_sampler: interpolation 0 bilinear / 1 nearest; padding 0 zeros / 2 reflection.
    let x = Tensor::grid_sampler(&image.unsqueeze(0), &grid, 0, 2, false).squeeze_dim(0);
    // Labels + 1 with zero padding: 0 marks "beyond the tile", which becomes 255.
    let shifted = (labels.to_kind(tch::Kind::Float) + 1.0).view([1, 1, h, w]);
    let y = Tensor::grid_sampler(&shifted, &grid, 1, 0, false).view([h, w]);
    let outside = y.eq(0.0);
    let y = (y - 1.0).masked_fill(&outside, 255.0).to_kind(labels.kind());
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn tile() -> (Tensor, Tensor) {
        tch::manual_seed(5);
        let image = Tensor::rand([3, 16, 16], (Kind::Float, Device::Cpu));
        let labels = Tensor::randint(3, [16, 16], (Kind::Uint8, Device::Cpu));
        (image, labels)
    }

    #[test]
    fn no_angle_is_the_identity() {
        let (image, labels) = tile();
        let (x, y) = rotate(&image, &labels, 0.0);
        assert!((x - &image).abs().max().double_value(&[]) < 1e-6);
        assert!(y.equal(&labels));
    }

    #[test]
    fn quarter_turns_are_tchs_rot90() {
        // Independent reference: Tensor::rot90 (k = 1 turns counter-clockwise as displayed).
        let (image, labels) = tile();
        for (deg, k) in [(90.0, 1), (180.0, 2), (270.0, 3)] {
            let (x, y) = rotate(&image, &labels, deg);
            let d = (x - image.rot90(k, [1, 2])).abs().max().double_value(&[]);
            assert!(d < 1e-5, "{deg} degrees: image off by {d}");
            assert!(y.equal(&labels.rot90(k, [0, 1])), "{deg} degrees: labels differ");
        }
    }

    #[test]
    fn an_oblique_turn_keeps_the_centre_and_drops_the_corners() {
        let (image, labels) = tile();
        let (_, y) = rotate(&image, &labels, 45.0);
        // Corners come from beyond the tile: nodata. The centre 2 x 2 stays labelled.
        for (r, c) in [(0, 0), (0, 15), (15, 0), (15, 15)] {
            assert_eq!(y.int64_value(&[r, c]), 255);
        }
        for (r, c) in [(7, 7), (7, 8), (8, 7), (8, 8)] {
            assert!(y.int64_value(&[r, c]) < 3);
        }
        // A square turned 45 degrees about its centre leaves 3 - 2 sqrt(2) = 17.2% of
        // itself uncovered (the corners beyond the octagon they share); on 16 px, with
        // nearest sampling of pixel centres, between 10% and 25%.
        let outside = y.eq(255).sum(Kind::Int64).int64_value(&[]) as f64 / 256.0;
        assert!((0.10..0.25).contains(&outside), "{outside}");
    }
}
