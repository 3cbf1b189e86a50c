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

use super::lattice::{LANES, scale_factors};
use super::simd::Value;

/// Regular lattice of the Gaussian kernel over a `width x height` image.
pub struct Grid {
    width: usize,
    #[cfg(test)]
    height: usize,
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
    /// `x as f32 / sxy` for every column and `y as f32 / sxy` for every row (the features,
    /// computed once).
    xs: Vec<f32>,
    ys: Vec<f32>,
}

impl Grid {
    /// Finds the vertex rectangle and marks the vertices (parallel over pixel rows).
    pub fn new(width: usize, height: usize, sxy: f32) -> Grid {
        let mut g = Grid {
            width,
            #[cfg(test)]
            height,
            scale: scale_factors::<2>(),
            t0: 0,
            j0: 0,
            rows: 0,
            stride: 0,
            mask: Vec::new(),
            xs: (0..width).map(|x| x as f32 / sxy).collect(),
            ys: (0..height).map(|y| y as f32 / sxy).collect(),
        };
        if width * height == 0 {
            return g;
        }
        let none = (i32::MAX, i32::MIN, i32::MAX, i32::MIN);
        let (t0, t1, j0, j1) = (0..height)
            .into_par_iter()
            .map(|y| {
                let mut b = none;
                g.row_lanes(y, |tj, _, len| {
                    for (t, j) in tj[0]
                        .iter()
                        .zip(&tj[1])
                        .flat_map(|(t, j)| t[..len].iter().zip(&j[..len]))
                    {
                        b = (b.0.min(*t), b.1.max(*t), b.2.min(*j), b.3.max(*j));
                    }
                });
                b
            })
            .reduce(
                || none,
                |a, b| (a.0.min(b.0), a.1.max(b.1), a.2.min(b.2), a.3.max(b.3)),
            );
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

    /// Calls `f(tj, w, len)` for each run of up to [`LANES`] pixels of row `y`: `tj[0][r]`,
    /// `tj[1][r]` the `(t, j)` of simplex vertex r and `w[r]` its weight, per lane.
    fn row_lanes(&self, y: usize, mut f: impl FnMut(&[[[i32; LANES]; 3]; 2], &[[f32; LANES]; 3], usize)) {
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::is_x86_feature_detected!("avx2");
        let f1 = [self.ys[y]; LANES];
        let mut f0 = [0f32; LANES];
        for x0 in (0..self.width).step_by(LANES) {
            let len = LANES.min(self.width - x0);
            f0[..len].copy_from_slice(&self.xs[x0..x0 + len]);
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2 (checked).
                let (tj, w) = unsafe { avx2::simplex8(&f0, &f1, self.scale) };
                f(&tj, &w, len);
                continue;
            }
            let (tj, w) = self.simplex_lanes(&f0, &f1);
            f(&tj, &w, len);
        }
    }

    /// Grid points, padding included (the length of a value buffer).
    pub fn len(&self) -> usize {
        self.mask.len()
    }

    /// Lattice vertices (grid points that some pixel's simplex touches).
    pub fn vertices(&self) -> usize {
        self.mask.iter().filter(|&&m| m != 0.0).count()
    }

    /// Features as pydensecrf's `DenseCRF2D::addPairwiseGaussian`: `int / float` in f32.
    #[cfg(test)]
    fn features(&self, x: usize, y: usize) -> [f32; 2] {
        [self.xs[x], self.ys[y]]
    }

    /// Index of the vertex with key `(t, j)`.
    #[cfg(test)]
    fn index(&self, (t, j): (i32, i32)) -> u32 {
        ((t - self.t0 + 2) as usize * self.stride + (j - self.j0) as usize) as u32
    }

    /// Vertex indices and barycentric weights of pixel `(x, y)`'s simplex, r = 0..=2.
    #[cfg(test)]
    pub fn simplex(&self, x: usize, y: usize, ids: &mut [u32; 3], w: &mut [f32; 3]) {
        let (mut ii, mut ww) = ([0u32; 3], [0f32; 3]);
        self.simplices(y * self.width + x, &mut ii, &mut ww);
        (*ids, *w) = (ii, ww);
    }

    /// [`embed`] specialised to D = 2 for `LANES` pixels (features `f0`, `f1` per lane),
    /// every step a loop over the lanes without branches, so that it vectorises; equal to
    /// `embed::<2>` bit for bit (`tests` below). Returns the `(t, j)` grid coordinates of
    /// simplex vertex r (`[t or j][r][lane]`) and its barycentric weight (`[r][lane]`).
    ///
    /// The ranks are a permutation of 0..=2, so `embed`'s `b[k]` (one `+u`, one `-u`) is
    /// `u[rank 2-k] - u[rank 3-k]` in any order, and `b[0] + (1 + b[3]) = u[rank 2] + (1 -
    /// u[rank 0])` (see `lattice::lanes::bary_lanes`).
    #[allow(clippy::needless_range_loop, clippy::type_complexity)]
    #[inline(always)]
    fn simplex_lanes(
        &self,
        f0: &[f32; LANES],
        f1: &[f32; LANES],
    ) -> ([[[i32; LANES]; 3]; 2], [[f32; LANES]; 3]) {
        const L: usize = LANES;
        let down = 1.0f32 / 3.0;
        let (mut tj, mut w) = ([[[0i32; L]; 3]; 2], [[0f32; L]; 3]);
        let mut e = [[0f32; L]; 3];
        let mut m = [[0f32; L]; 3];
        let mut rank = [[0i32; L]; 3];
        for l in 0..L {
            // Elevate (as embed: j = 2, then j = 1).
            let cf1 = f1[l] * self.scale[1];
            e[2][l] = 0.0 - 2.0 * cf1;
            let cf0 = f0[l] * self.scale[0];
            e[1][l] = cf1 - cf0;
            e[0][l] = cf1 + cf0;
        }
        let mut sum = [0f32; L];
        for i in 0..3 {
            for l in 0..L {
                let v = (e[i][l] * down).round_ties_even();
                m[i][l] = v * 3.0;
                sum[l] += v;
            }
        }
        for l in 0..L {
            let (d0, d1, d2) = (e[0][l] - m[0][l], e[1][l] - m[1][l], e[2][l] - m[2][l]);
            let (c01, c02, c12) = ((d0 < d1) as i32, (d0 < d2) as i32, (d1 < d2) as i32);
            let s = sum[l] as i32;
            rank[0][l] = c01 + c02 + s;
            rank[1][l] = (1 - c01) + c12 + s;
            rank[2][l] = (1 - c02) + (1 - c12) + s;
        }
        // Wrap ranks into 0..=2 and move the remainder-0 point with them.
        for i in 0..3 {
            for l in 0..L {
                let r = rank[i][l];
                let x = (r < 0) as i32 - (r >= 3) as i32;
                rank[i][l] = r + 3 * x;
                m[i][l] += 3.0 * x as f32;
            }
        }
        // u of the component of rank k.
        let mut ur = [[0f32; L]; 3];
        for i in 0..3 {
            for k in 0..3 {
                for l in 0..L {
                    let u = (e[i][l] - m[i][l]) * down;
                    ur[k][l] = if rank[i][l] == k as i32 { u } else { ur[k][l] };
                }
            }
        }
        for l in 0..L {
            w[0][l] = ur[2][l] + (1.0 - ur[0][l]);
            w[1][l] = ur[1][l] - ur[2][l];
            w[2][l] = ur[0][l] - ur[1][l];
        }
        for rr in 0..3i32 {
            for l in 0..L {
                let (m0, m1) = (m[0][l] as i32, m[1][l] as i32);
                let k0 = m0 + if rank[0][l] <= 2 - rr { rr } else { rr - 3 };
                let k1 = m1 + if rank[1][l] <= 2 - rr { rr } else { rr - 3 };
                // tj() without integer division: k0 - k1 is a multiple of 3, exact in f32.
                let t = k0 + k1;
                let mm = (((k0 - k1) as f32) * down).round_ties_even() as i32;
                tj[0][rr as usize][l] = t;
                tj[1][rr as usize][l] = (mm - (t & 1)) >> 1;
            }
        }
        (tj, w)
    }

    /// Simplices of the pixels `i0 .. i0 + n` (row-major pixel index, `n = w.len() / 3`):
    /// vertex indices pixel-major (`ids[3k + r]`), weights r-major (`w[r * n + k]`), the
    /// layouts of [`super::simd::gather`].
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
        let scale = self.scale;
        self.simplices_with(i0, ids, w, |f0, f1| {
            // SAFETY: the caller checked AVX2.
            unsafe { avx2::simplex8(f0, f1, scale) }
        })
    }

    #[inline(always)]
    fn simplices_generic(&self, i0: usize, ids: &mut [u32], w: &mut [f32]) {
        self.simplices_with(i0, ids, w, |f0, f1| self.simplex_lanes(f0, f1))
    }

    /// The loop of [`Grid::simplices`]: features of `LANES` pixels into lanes, `lanes`
    /// (scalar lanes or [`avx2::simplex8`]) to vertex indices and weights, stored.
    #[allow(clippy::needless_range_loop)]
    #[inline(always)]
    fn simplices_with<S>(&self, i0: usize, ids: &mut [u32], w: &mut [f32], lanes: S)
    where
        S: Fn(&[f32; LANES], &[f32; LANES]) -> ([[[i32; LANES]; 3]; 2], [[f32; LANES]; 3]),
    {
        let (t0, j0, stride) = (self.t0, self.j0, self.stride as i32);
        let n = w.len() / 3;
        assert_eq!(ids.len(), 3 * n);
        let (mut x, mut y) = (i0 % self.width, i0 / self.width);
        let (mut f0, mut f1) = ([0f32; LANES], [0f32; LANES]);
        // Every index is clamped into the grid (a no-op: the rectangle holds every simplex),
        // so that the kernels may rely on it ([`super::simd::gather`]).
        let last = ((self.rows + 4) * self.stride).max(1) as u32 - 1;
        let mut k = 0;
        while k < n {
            let len = LANES.min(n - k);
            if len == LANES && x + LANES <= self.width {
                // A whole run in one row.
                f0.copy_from_slice(&self.xs[x..x + LANES]);
                f1 = [self.ys[y]; LANES];
                x += LANES;
                if x == self.width {
                    x = 0;
                    y += 1;
                }
            } else {
                for l in 0..len {
                    f0[l] = self.xs[x];
                    f1[l] = self.ys[y];
                    x += 1;
                    if x == self.width {
                        x = 0;
                        y += 1;
                    }
                }
            }
            let (tj, wl) = lanes(&f0, &f1);
            let mut il = [[0i32; LANES]; 3];
            for r in 0..3 {
                for l in 0..LANES {
                    il[r][l] = (tj[0][r][l] - t0 + 2) * stride + (tj[1][r][l] - j0);
                }
            }
            // Whole runs as fixed-size copies (a variable-length one is a memcpy call).
            if len == LANES {
                for r in 0..3 {
                    w[r * n + k..][..LANES].copy_from_slice(&wl[r]);
                }
                let out = &mut ids[3 * k..][..3 * LANES];
                for l in 0..LANES {
                    for r in 0..3 {
                        out[3 * l + r] = (il[r][l] as u32).min(last);
                    }
                }
            } else {
                for r in 0..3 {
                    w[r * n + k..][..len].copy_from_slice(&wl[r][..len]);
                }
                for l in 0..len {
                    for r in 0..3 {
                        ids[3 * (k + l) + r] = (il[r][l] as u32).min(last);
                    }
                }
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
    #[cfg(test)]
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
                for k in 0..len {
                    for r in 0..3 {
                        vals[ids[3 * k + r] as usize][0] += w[r * len + k];
                    }
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
            let len = out.len();
            for (k, o) in out.iter_mut().enumerate() {
                let mut v = 0f32;
                for r in 0..3 {
                    v += (w[r * len + k] * acc[ids[3 * k + r] as usize][0]) * alpha;
                }
                *o = v;
            }
        });
        out
    }
}

/// [`Grid::simplex_lanes`] with AVX2 intrinsics (8 lanes per register): the same operations in the same order, no FMA, so the same bits. The
/// integer steps run in f32, exact for the whole numbers involved (|k| < 2^24): `t mod
/// 2` as `t - 2 floor(t/2)`, and `(m - t mod 2) >> 1` as a halving of an even number.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::LANES;
    use std::arch::x86_64::*;

    /// Returns the `(t, j)` grid coordinates (`[t or j][r][lane]`) and the weights of 8
    /// pixels' simplex vertices, as [`super::Grid::simplex_lanes`].
    #[target_feature(enable = "avx2")]
    #[inline]
    pub unsafe fn simplex8(
        f0: &[f32; LANES],
        f1: &[f32; LANES],
        scale: [f32; 2],
    ) -> ([[[i32; LANES]; 3]; 2], [[f32; LANES]; 3]) {
        const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        let (zero, one, two, three) = (
            _mm256_setzero_ps(),
            _mm256_set1_ps(1.0),
            _mm256_set1_ps(2.0),
            _mm256_set1_ps(3.0),
        );
        let down = _mm256_set1_ps(1.0f32 / 3.0);
        // SAFETY: 8-float arrays.
        let (f0, f1) = unsafe { (_mm256_loadu_ps(f0.as_ptr()), _mm256_loadu_ps(f1.as_ptr())) };
        let cf1 = _mm256_mul_ps(f1, _mm256_set1_ps(scale[1]));
        let e2 = _mm256_sub_ps(zero, _mm256_mul_ps(two, cf1));
        let cf0 = _mm256_mul_ps(f0, _mm256_set1_ps(scale[0]));
        let e = [_mm256_add_ps(cf1, cf0), _mm256_sub_ps(cf1, cf0), e2];
        let mut m = [zero; 3];
        let mut sum = zero;
        for i in 0..3 {
            let v = _mm256_round_ps::<NEAREST>(_mm256_mul_ps(e[i], down));
            m[i] = _mm256_mul_ps(v, three);
            sum = _mm256_add_ps(sum, v);
        }
        let d = [0, 1, 2].map(|i| _mm256_sub_ps(e[i], m[i]));
        let lt = |a, b| _mm256_and_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(a, b), one);
        let (c01, c02, c12) = (lt(d[0], d[1]), lt(d[0], d[2]), lt(d[1], d[2]));
        let mut rank = [
            _mm256_add_ps(_mm256_add_ps(c01, c02), sum),
            _mm256_add_ps(_mm256_add_ps(_mm256_sub_ps(one, c01), c12), sum),
            _mm256_add_ps(
                _mm256_add_ps(_mm256_sub_ps(one, c02), _mm256_sub_ps(one, c12)),
                sum,
            ),
        ];
        let mut u = [zero; 3];
        for i in 0..3 {
            let r = rank[i];
            let fix = _mm256_sub_ps(
                _mm256_and_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(r, zero), one),
                _mm256_and_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(r, three), one),
            );
            rank[i] = _mm256_add_ps(r, _mm256_mul_ps(three, fix));
            m[i] = _mm256_add_ps(m[i], _mm256_mul_ps(three, fix));
            u[i] = _mm256_mul_ps(_mm256_sub_ps(e[i], m[i]), down);
        }
        let mut ur = [zero; 3];
        for (k, urk) in ur.iter_mut().enumerate() {
            let kf = _mm256_set1_ps(k as f32);
            for i in 0..3 {
                *urk = _mm256_blendv_ps(*urk, u[i], _mm256_cmp_ps::<_CMP_EQ_OQ>(rank[i], kf));
            }
        }
        let w = [
            _mm256_add_ps(ur[2], _mm256_sub_ps(one, ur[0])),
            _mm256_sub_ps(ur[1], ur[2]),
            _mm256_sub_ps(ur[0], ur[1]),
        ];
        let (mut tj, mut wo) = ([[[0i32; LANES]; 3]; 2], [[0f32; LANES]; 3]);
        let half = _mm256_set1_ps(0.5);
        for rr in 0..3 {
            let rrf = _mm256_set1_ps(rr as f32);
            let lim = _mm256_set1_ps((2 - rr) as f32);
            // k = m + (rank <= 2 - rr ? rr : rr - 3)
            let key = |mi, ri| {
                let le = _mm256_cmp_ps::<_CMP_LE_OQ>(ri, lim);
                _mm256_add_ps(mi, _mm256_blendv_ps(_mm256_sub_ps(rrf, three), rrf, le))
            };
            let (k0, k1) = (key(m[0], rank[0]), key(m[1], rank[1]));
            let t = _mm256_add_ps(k0, k1);
            let mm = _mm256_round_ps::<NEAREST>(_mm256_mul_ps(_mm256_sub_ps(k0, k1), down));
            let parity = _mm256_sub_ps(t, _mm256_mul_ps(two, _mm256_floor_ps(_mm256_mul_ps(t, half))));
            let j = _mm256_mul_ps(_mm256_sub_ps(mm, parity), half);
            // SAFETY: 8-lane arrays.
            unsafe {
                _mm256_storeu_si256(tj[0][rr].as_mut_ptr() as *mut __m256i, _mm256_cvtps_epi32(t));
                _mm256_storeu_si256(tj[1][rr].as_mut_ptr() as *mut __m256i, _mm256_cvtps_epi32(j));
                _mm256_storeu_ps(wo[rr].as_mut_ptr(), w[rr]);
            }
        }
        (tj, wo)
    }
}

/// `(t, j)` grid coordinates of a lattice key `(k0, k1)` (the reference of
/// [`Grid::simplex_lanes`]' integer steps).
#[cfg(test)]
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
    use super::super::lattice::{Lattice, embed, per_pixel};
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
            let lat = Lattice::<2>::build(w * h, w, per_pixel(|i| [(i % w) as f32 / s, (i / w) as f32 / s]));
            assert_eq!(grid.vertices(), lat.vertices, "{w}x{h} sxy {s}");
            let ones = vec![1f32; w * h];
            assert_eq!(
                grid.filter_ones(1),
                lat.filter_scalar(&ones, |i| [(i % w) as f32 / s, (i / w) as f32 / s]),
                "{w}x{h} sxy {s}"
            );
        }
    }

    /// The specialised simplices equal `embed::<2>` (weights bit for bit, vertex keys), one
    /// pixel at a time and in blocks of 2.5 rows (lanes that cross a row end).
    #[test]
    fn simplex_equals_embed() {
        for s in [3.0f32, 1.0, 0.7, 5.3, 80.0] {
            let (w, h) = (300usize, 300usize);
            let grid = Grid::new(w, h, s);
            let scale = scale_factors::<2>();
            let (mut ids, mut wt) = ([0u32; 3], [0f32; 3]);
            let block = 5 * w / 2;
            let (mut bids, mut bw) = (vec![0u32; 3 * block], vec![0f32; 3 * block]);
            for y in 0..h {
                for x in 0..w {
                    grid.simplex(x, y, &mut ids, &mut wt);
                    let e = embed::<2>(&grid.features(x, y), &scale);
                    assert_eq!(wt, [e.bary[0], e.bary[1], e.bary[2]], "sxy {s} ({x}, {y})");
                    for (r, id) in ids.iter().enumerate() {
                        assert_eq!(*id, grid.index(tj(e.key(r))), "sxy {s} ({x}, {y}) r {r}");
                    }
                    let i = y * w + x;
                    if i % block == 0 && i + block <= w * h {
                        grid.simplices(i, &mut bids, &mut bw);
                    }
                    let k = i % block;
                    if i - k + block <= w * h {
                        assert_eq!([bw[k], bw[block + k], bw[2 * block + k]], wt, "block, ({x}, {y})");
                        assert_eq!(bids[3 * k..3 * k + 3], ids, "block, ({x}, {y})");
                    }
                }
            }
        }
    }
}
