//! Training augmentation of one tile (`docs/spec.md`, "Training"): random horizontal / vertical
//! flips and 90-degree rotations (image and labels together), then colour jitter on the first
//! three (RGB) bands of the image in [0, 1]: brightness `x * b`, contrast `(x - m) * c + m` (m
//! the tile's mean grey), saturation `(x - g) * s + g` (g the pixel's grey, ITU-R 601 weights),
//! each factor uniform in `[1 - j, 1 + j]`, results clamped to [0, 1]. Draws come from a
//! numpy-compatible `RandomState`, so a seed fixes the augmentation.

use tch::Tensor;

use super::numpy_rng::RandomState;
use crate::config::AugmentConfig;

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
