//! Test-time views of a batch of tiles (pure arithmetic, no I/O): the symmetries of the
//! square and bilinear resampling, each with the inverse that brings a model's output
//! back to the tile's own grid.
//!
//! Arrays are planar, `(planes, h, w)` row-major, where `planes` is `n * channels` of a
//! batch: every plane is transformed the same way.
//!
//! - [`Transform`]: one of the eight elements of the dihedral group D4 (identity, three
//!   rotations, four reflections), written as an optional transpose followed by optional
//!   flips of the rows and columns. A transpose swaps the sides, so a non-square tile
//!   `(h, w)` becomes `(w, h)`; the model takes any sides that are multiples of 32, and
//!   the inverse swaps them back. [`Tta::Flips`] is the four flips (identity, left-right,
//!   up-down, both = rotation by 180 degrees); [`Tta::D4`] all eight.
//! - [`resize_bilinear`]: PyTorch's `F.interpolate(mode="bilinear", align_corners=False,
//!   antialias=False)` with an output size: source coordinate `(o + 0.5) * in / out - 0.5`,
//!   clamped at 0, linear weights between the two neighbours, edge pixels repeated.
//!   Multi-scale inference resamples the normalised input tile to `scaled_side(h, s)` and
//!   the class probabilities back to `h`; a convex combination of probabilities is a
//!   probability, so the result still sums to 1.

use crate::tiling::SIZE_MULTIPLE;

/// A symmetry of the square: output pixel `(y, x)` of an `(h', w')` result reads the
/// input at `(y1, x1)` after the flips (`y1 = h' - 1 - y` when `flip_y`, and so on),
/// transposed when `transpose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transform {
    pub transpose: bool,
    pub flip_y: bool,
    pub flip_x: bool,
}

/// Test-time augmentation: which transforms each tile is seen under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tta {
    /// The tile as it is.
    None,
    /// Identity, left-right flip, up-down flip, both (4 views).
    Flips,
    /// The eight symmetries of the square: flips, rotations by 90/180/270 degrees and
    /// the two diagonal reflections (8 views).
    D4,
}

impl Tta {
    /// The transforms of this choice, identity first.
    pub fn transforms(self) -> Vec<Transform> {
        let flips = |transpose| {
            [(false, false), (false, true), (true, false), (true, true)].map(|(flip_y, flip_x)| Transform {
                transpose,
                flip_y,
                flip_x,
            })
        };
        match self {
            Tta::None => vec![Transform::IDENTITY],
            Tta::Flips => flips(false).to_vec(),
            Tta::D4 => flips(false).into_iter().chain(flips(true)).collect(),
        }
    }
}

impl Transform {
    pub const IDENTITY: Transform = Transform {
        transpose: false,
        flip_y: false,
        flip_x: false,
    };

    /// The transform that undoes this one: flips are their own inverses; with a
    /// transpose, `flip . transpose` is undone by `transpose . flip`, which is the
    /// transpose followed by the other axis's flip.
    pub fn inverse(self) -> Transform {
        if self.transpose {
            Transform {
                transpose: true,
                flip_y: self.flip_x,
                flip_x: self.flip_y,
            }
        } else {
            self
        }
    }

    /// Output sides of an `(h, w)` input.
    pub fn output_size(self, h: usize, w: usize) -> (usize, usize) {
        if self.transpose { (w, h) } else { (h, w) }
    }

    /// Writes the transform of `src` (`(planes, h, w)`) into `dst` (`(planes, h', w')`).
    pub fn apply(self, src: &[f32], planes: usize, h: usize, w: usize, dst: &mut [f32]) {
        assert_eq!(src.len(), planes * h * w, "transform input size");
        assert_eq!(dst.len(), src.len(), "transform output size");
        if self == Transform::IDENTITY {
            dst.copy_from_slice(src);
            return;
        }
        let (oh, ow) = self.output_size(h, w);
        // Source offset of output (y, x) = row_step(y) + col_step(x), from the axis each
        // output axis reads and its direction.
        let (step_y, step_x) = if self.transpose { (1, w) } else { (w, 1) };
        let index = |len: usize, flip: bool, step: usize| -> Vec<usize> {
            (0..len)
                .map(|i| if flip { len - 1 - i } else { i } * step)
                .collect()
        };
        let rows = index(oh, self.flip_y, step_y);
        let cols = index(ow, self.flip_x, step_x);
        let plane = h * w;
        for (s, d) in src.chunks_exact(plane).zip(dst.chunks_exact_mut(plane)) {
            for (&r, out_row) in rows.iter().zip(d.chunks_exact_mut(ow)) {
                for (o, &c) in out_row.iter_mut().zip(&cols) {
                    *o = s[r + c];
                }
            }
        }
    }
}

/// The model input side for a tile side `len` at scale `scale`: the multiple of 32
/// nearest to `len * scale`, at least 32 (exactly `len` at scale 1).
pub fn scaled_side(len: usize, scale: f32) -> usize {
    let m = SIZE_MULTIPLE as f32;
    ((len as f32 * scale / m).round() as usize).max(1) * SIZE_MULTIPLE
}

/// Source index pairs and weights of one axis, as PyTorch computes them (float32).
fn axis_weights(input: usize, output: usize) -> Vec<(usize, usize, f32)> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|o| {
            let real = (scale * (o as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (real as usize).min(input - 1);
            let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
            let l1 = (real - i0 as f32).clamp(0.0, 1.0);
            (i0, i1, l1)
        })
        .collect()
}

/// Bilinear resampling of `src` (`(planes, h, w)`) to `dst` (`(planes, oh, ow)`), as
/// PyTorch's `F.interpolate(size=(oh, ow), mode="bilinear", align_corners=False)`.
pub fn resize_bilinear(
    src: &[f32],
    planes: usize,
    (h, w): (usize, usize),
    dst: &mut [f32],
    (oh, ow): (usize, usize),
) {
    assert_eq!(src.len(), planes * h * w, "resize input size");
    assert_eq!(dst.len(), planes * oh * ow, "resize output size");
    if (h, w) == (oh, ow) {
        dst.copy_from_slice(src);
        return;
    }
    let ys = axis_weights(h, oh);
    let xs = axis_weights(w, ow);
    for (s, d) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(oh * ow)) {
        for (&(y0, y1, ly), out_row) in ys.iter().zip(d.chunks_exact_mut(ow)) {
            let (r0, r1) = (&s[y0 * w..(y0 + 1) * w], &s[y1 * w..(y1 + 1) * w]);
            for (o, &(x0, x1, lx)) in out_row.iter_mut().zip(&xs) {
                let top = (1.0 - lx) * r0[x0] + lx * r0[x1];
                let bottom = (1.0 - lx) * r1[x0] + lx * r1[x1];
                *o = (1.0 - ly) * top + ly * bottom;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct values, so that any misplaced pixel shows.
    fn ramp(len: usize) -> Vec<f32> {
        (0..len).map(|i| i as f32).collect()
    }

    #[test]
    fn every_transform_is_undone_by_its_inverse_exactly() {
        // Two planes of a non-square tile: the transpose swaps the sides and back.
        let (planes, h, w) = (2, 3, 5);
        let src = ramp(planes * h * w);
        for t in Tta::D4.transforms() {
            let mut fwd = vec![0.0; src.len()];
            t.apply(&src, planes, h, w, &mut fwd);
            let (th, tw) = t.output_size(h, w);
            let mut back = vec![0.0; src.len()];
            t.inverse().apply(&fwd, planes, th, tw, &mut back);
            assert_eq!(back, src, "{t:?}");
        }
    }

    #[test]
    fn transforms_are_the_eight_distinct_symmetries() {
        // On a 2x2 square [[0, 1], [2, 3]], by hand.
        let src = [0.0, 1.0, 2.0, 3.0];
        let mut seen: Vec<Vec<f32>> = Tta::D4
            .transforms()
            .iter()
            .map(|t| {
                let mut d = vec![0.0; 4];
                t.apply(&src, 1, 2, 2, &mut d);
                d
            })
            .collect();
        // Identity, left-right, up-down, rotation 180; transpose, then rotations by 90
        // (clockwise [[2, 0], [3, 1]] and anticlockwise [[1, 3], [0, 2]]), anti-transpose.
        assert_eq!(seen[0], [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(seen[1], [1.0, 0.0, 3.0, 2.0]);
        assert_eq!(seen[2], [2.0, 3.0, 0.0, 1.0]);
        assert_eq!(seen[3], [3.0, 2.0, 1.0, 0.0]);
        assert_eq!(seen[4], [0.0, 2.0, 1.0, 3.0]);
        assert_eq!(seen[5], [2.0, 0.0, 3.0, 1.0]);
        assert_eq!(seen[6], [1.0, 3.0, 0.0, 2.0]);
        assert_eq!(seen[7], [3.0, 1.0, 2.0, 0.0]);
        seen.sort_by(|a, b| a.partial_cmp(b).unwrap());
        seen.dedup();
        assert_eq!(seen.len(), 8);
        assert_eq!(Tta::Flips.transforms(), Tta::D4.transforms()[..4]);
        assert_eq!(Tta::None.transforms(), [Transform::IDENTITY]);
    }

    #[test]
    fn bilinear_resize_matches_pytorch() {
        // x = i^2 / 10 - i on a 4x6 plane; references from torch 2.11
        // F.interpolate(x, size=..., mode="bilinear", align_corners=False).
        let x: Vec<f32> = (0..24).map(|i| (i * i) as f32 * 0.1 - i as f32).collect();
        let down_up = [
            -0.4, -0.75, -1.1833333, -1.5166667, -1.75, -1.9166666, -1.9833333, -1.95, -1.9, 3.576e-7, 0.45,
            1.0833334, 1.8166668, 2.65, 3.5500004, 4.55, 5.65, 6.5, 12.400003, 13.650003, 15.350004,
            17.150002, 19.050003, 21.016672, 23.083338, 25.250004, 26.900003,
        ];
        let up_down = [
            -0.225, -1.425, -2.175, -2.475, -0.975, -1.5321429, -1.6392854, -1.2964284, -2.175, -1.7035713,
            -0.7821425, 0.5892861, 0.22500083, 1.725001, 3.6750011, 6.0750012, 3.6535747, 6.1821456,
            9.160718, 12.589289, 10.682146, 14.239288, 18.246433, 22.703575, 15.075001, 19.275002, 23.925003,
            29.025002,
        ];
        for (size, expect) in [((3, 9), &down_up[..]), ((7, 4), &up_down[..])] {
            let mut y = vec![0.0; size.0 * size.1];
            resize_bilinear(&x, 1, (4, 6), &mut y, size);
            for (i, (a, b)) in y.iter().zip(expect).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{size:?} [{i}]: {a} vs {b}"
                );
            }
        }
        // Same size: a copy.
        let mut same = vec![0.0; 24];
        resize_bilinear(&x, 1, (4, 6), &mut same, (4, 6));
        assert_eq!(same, x);
    }

    #[test]
    fn scaled_sides_are_multiples_of_32() {
        assert_eq!(scaled_side(512, 1.0), 512);
        assert_eq!(scaled_side(512, 0.75), 384);
        assert_eq!(scaled_side(512, 1.25), 640);
        assert_eq!(scaled_side(96, 1.25), 128); // 120 -> 128
        assert_eq!(scaled_side(32, 0.25), 32);
    }
}
