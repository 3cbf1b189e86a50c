//! The Gaussian kernel's permutohedral lattice (D = 2, features `[x/sxy, y/sxy]`) as a
//! regular grid: no hash table, no per-pixel state, no neighbour lists.
//!
//! A D = 2 lattice key `(k0, k1)` (with `k2 = -k0 - k1`) has `k0 ≡ k1 (mod 3)`. With
//! `t = k0 + k1` (about `2y/sxy`) and `m = (k0 - k1) / 3` (about `1.15 x/sxy`), `t ≡ m
//! (mod 2)`, so `j = (m - (t mod 2)) / 2` numbers the points of row `t` densely: the
//! vertices of an image form a rectangle of rows `t` by columns `j` (about 0.13 vertices
//! per pixel at sxy 3), stored row-major with two zero rows above and below and one zero
//! column at the end of each row. The blur neighbours `key ± ((D+1) e_a - 1)` of axis `a`
//! are then fixed index offsets that depend only on the parity of `t`:
//!
//! | axis | t even: n1, n2 | t odd: n1, n2 |
//! | --- | --- | --- |
//! | 0 | `+S`, `-S-1` | `+S+1`, `-S` |
//! | 1 | `+S-1`, `-S` | `+S`, `-S+1` |
//! | 2 | `-2S`, `+2S` | `-2S`, `+2S` |
//!
//! (`S` the row stride). Grid points that no pixel's simplex touches are not lattice
//! vertices in pydensecrf (its hash table never holds them), so a 0/1 mask keeps them at
//! zero through the blur: results equal the hashed lattice's (`tests` below).
//! A pixel's simplex (vertex indices and barycentric weights) is recomputed from `(x, y)`
//! whenever it is needed ([`Grid::simplex`], a few dozen flops).

use std::sync::atomic::{AtomicU8, Ordering};

use rayon::prelude::*;

use super::lattice::{Value, embed, scale_factors};

/// Regular lattice of the Gaussian kernel over a `width x height` image.
pub struct Grid {
    width: usize,
    height: usize,
    sxy: f32,
    scale: [f32; 2],
    /// Smallest `t` and `j` of any vertex.
    t0: i32,
    j0: i32,
    /// Rows `t` holding vertices.
    rows: usize,
    /// Row stride: columns `j` plus one zero column.
    stride: usize,
    /// 1.0 for lattice vertices, 0.0 elsewhere; `(rows + 4) * stride`.
    mask: Vec<f32>,
}

impl Grid {
    /// Finds the vertex rectangle and marks the vertices (parallel over pixel rows).
    pub fn new(width: usize, height: usize, sxy: f32) -> Grid {
        let scale = scale_factors::<2>();
        let mut g = Grid {
            width,
            height,
            sxy,
            scale,
            t0: 0,
            j0: 0,
            rows: 0,
            stride: 0,
            mask: Vec::new(),
        };
        let (t0, t1, j0, j1) = (0..height)
            .into_par_iter()
            .map(|y| {
                let mut b = (i32::MAX, i32::MIN, i32::MAX, i32::MIN);
                for x in 0..width {
                    let s = embed::<2>(&g.features(x, y), &scale);
                    for r in 0..3 {
                        let (t, j) = tj(s.key(r));
                        b = (b.0.min(t), b.1.max(t), b.2.min(j), b.3.max(j));
                    }
                }
                b
            })
            .reduce(
                || (i32::MAX, i32::MIN, i32::MAX, i32::MIN),
                |a, b| (a.0.min(b.0), a.1.max(b.1), a.2.min(b.2), a.3.max(b.3)),
            );
        if width * height == 0 {
            return g;
        }
        g.t0 = t0;
        g.j0 = j0;
        g.rows = (t1 - t0 + 1) as usize;
        g.stride = (j1 - j0 + 2) as usize;
        let marks: Vec<AtomicU8> = (0..(g.rows + 4) * g.stride).map(|_| AtomicU8::new(0)).collect();
        (0..height).into_par_iter().for_each(|y| {
            let (mut ids, mut w) = (vec![0u32; 3 * width], vec![0f32; 3 * width]);
            g.simplices(y * width, &mut ids, &mut w);
            for id in ids {
                marks[id as usize].store(1, Ordering::Relaxed);
            }
        });
        g.mask = marks.into_iter().map(|m| m.into_inner() as f32).collect();
        g
    }

    /// Grid points, padding included (the length of a value buffer).
    pub fn len(&self) -> usize {
        self.mask.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mask.is_empty()
    }

    /// Lattice vertices (grid points that some pixel's simplex touches).
    pub fn vertices(&self) -> usize {
        self.mask.iter().filter(|&&m| m != 0.0).count()
    }

    /// Heap bytes (the mask).
    pub fn heap_bytes(&self) -> usize {
        self.mask.len() * 4
    }

    /// Features as pydensecrf's `DenseCRF2D::addPairwiseGaussian`: `int / float` in f32.
    #[inline]
    fn features(&self, x: usize, y: usize) -> [f32; 2] {
        [x as f32 / self.sxy, y as f32 / self.sxy]
    }

    /// Index of the vertex with key `(t, j)`.
    #[cfg(test)]
    fn index(&self, (t, j): (i32, i32)) -> u32 {
        ((t - self.t0 + 2) as usize * self.stride + (j - self.j0) as usize) as u32
    }

    /// Vertex indices and barycentric weights of pixel `(x, y)`'s simplex, r = 0..=2.
    #[inline(always)]
    pub fn simplex(&self, x: usize, y: usize, ids: &mut [u32; 3], w: &mut [f32; 3]) {
        let [f0, f1] = self.features(x, y);
        (*ids, *w) = self.simplex_of(f0, f1);
    }

    /// [`embed`] specialised to D = 2 and written without branches or indexed stores, so
    /// that row loops vectorise; equal to `embed::<2>` bit for bit (`tests` below).
    #[inline(always)]
    fn simplex_of(&self, f0: f32, f1: f32) -> ([u32; 3], [f32; 3]) {
        let down = 1.0f32 / 3.0;
        // Elevate (as embed: j = 2, then j = 1).
        let cf1 = f1 * self.scale[1];
        let e2 = 0.0 - 2.0 * cf1;
        let cf0 = f0 * self.scale[0];
        let e1 = cf1 - cf0;
        let e0 = cf1 + cf0;
        let v0 = (e0 * down).round_ties_even();
        let v1 = (e1 * down).round_ties_even();
        let v2 = (e2 * down).round_ties_even();
        let (m0, m1, m2) = (v0 * 3.0, v1 * 3.0, v2 * 3.0);
        let sum = (v0 + v1 + v2) as i32;
        let (d0, d1, d2) = (e0 - m0, e1 - m1, e2 - m2);
        let (c01, c02, c12) = ((d0 < d1) as i32, (d0 < d2) as i32, (d1 < d2) as i32);
        let r0 = c01 + c02 + sum;
        let r1 = (1 - c01) + c12 + sum;
        let r2 = (1 - c02) + (1 - c12) + sum;
        // Wrap ranks into 0..=2 and move the remainder-0 point with them.
        let fix = |r: i32| (r < 0) as i32 - (r >= 3) as i32;
        let (x0, x1, x2) = (fix(r0), fix(r1), fix(r2));
        let (r0, r1, r2) = (r0 + 3 * x0, r1 + 3 * x1, r2 + 3 * x2);
        let (m0, m1, m2) = (m0 + 3.0 * x0 as f32, m1 + 3.0 * x1 as f32, m2 + 3.0 * x2 as f32);
        // Barycentric weights: b[2 - r_i] += u_i; b[3 - r_i] -= u_i, in i order.
        let (u0, u1, u2) = ((e0 - m0) * down, (e1 - m1) * down, (e2 - m2) * down);
        let mut b = [0f32; 4];
        for (r, u) in [(r0, u0), (r1, u1), (r2, u2)] {
            for (k, bk) in b.iter_mut().enumerate() {
                let k = k as i32;
                *bk += if r == 2 - k { u } else { 0.0 };
                *bk -= if r == 3 - k { u } else { 0.0 };
            }
        }
        let w = [b[0] + (1.0 + b[3]), b[1], b[2]];
        let (m0, m1) = (m0 as i32, m1 as i32);
        let mut ids = [0u32; 3];
        for (rr, id) in ids.iter_mut().enumerate() {
            let rr = rr as i32;
            let k0 = m0 + if r0 <= 2 - rr { rr } else { rr - 3 };
            let k1 = m1 + if r1 <= 2 - rr { rr } else { rr - 3 };
            // tj() without integer division: k0 - k1 is a multiple of 3, exact in f32.
            let t = k0 + k1;
            let m = (((k0 - k1) as f32) * down).round_ties_even() as i32;
            let j = (m - (t & 1)) >> 1;
            *id = ((t - self.t0 + 2) * self.stride as i32 + (j - self.j0)) as u32;
        }
        (ids, w)
    }

    /// Simplices of the pixels `i0 .. i0 + w.len() / 3` (row-major pixel index).
    pub fn simplices(&self, i0: usize, ids: &mut [u32], w: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked); the body is safe code.
            return unsafe { self.simplices_avx2(i0, ids, w) };
        }
        self.simplices_generic(i0, ids, w)
    }

    /// [`Grid::simplices`] compiled for AVX2 (same operations: Rust never contracts
    /// `a * b + c` into an FMA, so the results are the same bits).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn simplices_avx2(&self, i0: usize, ids: &mut [u32], w: &mut [f32]) {
        self.simplices_generic(i0, ids, w)
    }

    #[inline(always)]
    fn simplices_generic(&self, i0: usize, ids: &mut [u32], w: &mut [f32]) {
        let n = w.len() / 3;
        assert_eq!(ids.len(), 3 * n);
        let mut k = 0;
        while k < n {
            let (x0, y) = ((i0 + k) % self.width, (i0 + k) / self.width);
            let len = (self.width - x0).min(n - k);
            let f1 = y as f32 / self.sxy;
            let (ids, w) = (&mut ids[3 * k..3 * (k + len)], &mut w[3 * k..3 * (k + len)]);
            for (p, (id, wt)) in ids.chunks_exact_mut(3).zip(w.chunks_exact_mut(3)).enumerate() {
                let (a, b) = self.simplex_of((x0 + p) as f32 / self.sxy, f1);
                id.copy_from_slice(&a);
                wt.copy_from_slice(&b);
            }
            k += len;
        }
    }

    /// Blurs all vertices along `axis` (0..=2): `dst = mask * (src + 0.5 * (src[n1] +
    /// src[n2]))`, in parallel over bands of rows. `src`, `dst`: [`Grid::len`] values
    /// whose padding rows and columns are zero.
    pub fn blur(&self, axis: usize, src: &[Value], dst: &mut [Value]) {
        assert!(axis < 3 && src.len() == self.len() && dst.len() == self.len());
        let s = self.stride;
        let band = 16usize;
        dst[2 * s..(self.rows + 2) * s]
            .par_chunks_mut(band * s)
            .enumerate()
            .for_each(|(b, out)| {
                for (k, row) in out.chunks_exact_mut(s).enumerate() {
                    let r = b * band + k;
                    let odd = (self.t0 + r as i32).rem_euclid(2) == 1;
                    let si = s as isize;
                    let (o1, o2) = match (axis, odd) {
                        (0, false) => (si, -si - 1),
                        (0, true) => (si + 1, -si),
                        (1, false) => (si - 1, -si),
                        (1, true) => (si, -si + 1),
                        _ => (-2 * si, 2 * si),
                    };
                    let base = (r + 2) * s;
                    blur_row(src, &self.mask, base, o1, o2, row);
                }
            });
    }

    /// `K·1` per pixel (the normaliser's input), pydensecrf's scalar path: splat ones,
    /// blur axes 0..=2, slice `(b * V) * alpha`.
    pub fn filter_ones(&self, parts: usize) -> Vec<f32> {
        let n = self.width * self.height;
        let chunk = n.div_ceil(parts.max(1)).max(1);
        let mut bufs: Vec<Vec<Value>> = (0..n.div_ceil(chunk))
            .map(|_| vec![[0.0; 4]; self.len()])
            .collect();
        const B: usize = 256;
        bufs.par_iter_mut().enumerate().for_each(|(p, vals)| {
            let (mut ids, mut w) = ([0u32; 3 * B], [0f32; 3 * B]);
            let end = ((p + 1) * chunk).min(n);
            for i0 in (p * chunk..end).step_by(B) {
                let len = B.min(end - i0);
                self.simplices(i0, &mut ids[..3 * len], &mut w[..3 * len]);
                for (id, wt) in ids[..3 * len].iter().zip(&w[..3 * len]) {
                    vals[*id as usize][0] += wt;
                }
            }
        });
        let mut acc = bufs.swap_remove(0);
        for other in &bufs {
            for (a, o) in acc.iter_mut().zip(other) {
                a[0] += o[0];
            }
        }
        drop(bufs);
        let mut tmp = vec![[0.0; 4]; self.len()];
        for axis in 0..3 {
            self.blur(axis, &acc, &mut tmp);
            std::mem::swap(&mut acc, &mut tmp);
        }
        let alpha = 1.0f32 / (1.0f32 + 2.0f32.powf(-2.0));
        let mut out = vec![0f32; n];
        out.par_chunks_mut(B).enumerate().for_each(|(c, out)| {
            let (mut ids, mut w) = ([0u32; 3 * B], [0f32; 3 * B]);
            self.simplices(c * B, &mut ids[..3 * out.len()], &mut w[..3 * out.len()]);
            for (k, o) in out.iter_mut().enumerate() {
                let mut v = 0f32;
                for r in 3 * k..3 * k + 3 {
                    v += (w[r] * acc[ids[r] as usize][0]) * alpha;
                }
                *o = v;
            }
        });
        out
    }
}

/// `(t, j)` grid coordinates of a lattice key `(k0, k1)`.
#[inline]
fn tj(k: [i32; 2]) -> (i32, i32) {
    let t = k[0] + k[1];
    let m = (k[0] - k[1]) / 3;
    (t, (m - t.rem_euclid(2)).div_euclid(2))
}

/// One grid row of the blur; a plain loop that the compiler vectorises.
#[inline]
fn blur_row(src: &[Value], mask: &[f32], base: usize, o1: isize, o2: isize, out: &mut [Value]) {
    let s = out.len();
    let a = &src[(base as isize + o1) as usize..][..s];
    let b = &src[(base as isize + o2) as usize..][..s];
    let own = &src[base..base + s];
    let m = &mask[base..base + s];
    for k in 0..s {
        for c in 0..4 {
            out[k][c] = m[k] * (own[k][c] + 0.5 * (a[k][c] + b[k][c]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lattice::Lattice;
    use super::*;

    /// The grid has the hashed lattice's vertices and gives the same `K·1`, bit for bit
    /// (one part: the same splat order).
    #[test]
    fn grid_equals_hashed_lattice() {
        for (w, h, s) in [
            (61usize, 37usize, 3.0f32),
            (40, 90, 1.7),
            (7, 5, 3.0),
            (128, 3, 2.2),
        ] {
            let grid = Grid::new(w, h, s);
            let lat = Lattice::<2>::build(w * h, |i, f| *f = [(i % w) as f32 / s, (i / w) as f32 / s]);
            assert_eq!(grid.vertices(), lat.vertices, "{w}x{h} sxy {s}");
            let ones = vec![1f32; w * h];
            assert_eq!(
                grid.filter_ones(1),
                lat.filter_scalar(&ones, |i| [(i % w) as f32 / s, (i / w) as f32 / s]),
                "{w}x{h} sxy {s}"
            );
        }
    }

    /// The specialised `simplex` equals `embed::<2>` (weights bit for bit, vertex keys).
    #[test]
    fn simplex_equals_embed() {
        for s in [3.0f32, 1.0, 0.7, 5.3, 80.0] {
            let (w, h) = (300usize, 300usize);
            let grid = Grid::new(w, h, s);
            let scale = scale_factors::<2>();
            let (mut ids, mut wt) = ([0u32; 3], [0f32; 3]);
            for y in 0..h {
                for x in 0..w {
                    grid.simplex(x, y, &mut ids, &mut wt);
                    let e = embed::<2>(&grid.features(x, y), &scale);
                    assert_eq!(wt, [e.bary[0], e.bary[1], e.bary[2]], "sxy {s} ({x}, {y})");
                    for (r, id) in ids.iter().enumerate() {
                        assert_eq!(*id, grid.index(tj(e.key(r))), "sxy {s} ({x}, {y}) r {r}");
                    }
                }
            }
        }
    }
}
