//! The lattice's 8-lane kernels: the barycentric weights ([`barys`]) and the build's
//! vertex keys ([`keys_lanes`]) of [`LANES`] pixels at a time, each step a loop over the
//! lanes (the scalar reference, which LLVM vectorises) or, where the CPU has AVX2, the same
//! operations in the same order as intrinsics (`avx2`): the same bits either way, those of
//! the lattice's per-pixel `embed` (its tests compare them).
//!
//! Private to the lattice but for [`LANES`] and [`MAX_D`] (the Gaussian grid and the
//! bilateral features fill lanes too) and, in tests, [`per_pixel`].

use std::ops::Range;

/// Largest feature dimension supported (the bilateral kernel has 5).
pub const MAX_D: usize = 5;

/// Barycentric weights of the pixels `i0 .. i0 + n` of an image `width` pixels wide,
/// written r-major: `out[r * n + k]` is the weight of simplex vertex r of pixel `i0 + k`
/// (`n = out.len() / (D+1)`). `fill(i, x, y, lanes, f)` writes the features of the pixels
/// `i ..` (starting at column `x` of row `y`, all in that row) into `f[j][lane]` for the
/// lanes in `lanes` ([`per_pixel`] makes one from a per-pixel function). AVX2 build where
/// the CPU has it (the same operations: Rust never fuses `a * b + c`, so the same bits as
/// [`super::bary_of`]).
pub fn barys<const D: usize, F>(i0: usize, width: usize, out: &mut [f32], scale: &[f32; D], fill: F)
where
    F: Fn(usize, usize, usize, Range<usize>, &mut [[f32; LANES]; MAX_D]),
{
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked); the body is safe code.
        return unsafe { barys_avx2(i0, width, out, scale, fill) };
    }
    barys_generic(i0, width, out, scale, fill)
}

/// A `fill` for [`barys`] from a function giving one pixel's features.
#[cfg(test)]
pub fn per_pixel<const D: usize>(
    features: impl Fn(usize) -> [f32; D],
) -> impl Fn(usize, usize, usize, Range<usize>, &mut [[f32; LANES]; MAX_D]) {
    move |i, _, _, lanes, f| {
        for (p, l) in lanes.enumerate() {
            let fl = features(i + p);
            for j in 0..D {
                f[j][l] = fl[j];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn barys_avx2<const D: usize, F>(i0: usize, width: usize, out: &mut [f32], scale: &[f32; D], fill: F)
where
    F: Fn(usize, usize, usize, Range<usize>, &mut [[f32; LANES]; MAX_D]),
{
    // SAFETY: the caller checked AVX2.
    barys_with(i0, width, out, scale, fill, |f, scale, b| unsafe {
        avx2::bary8::<D>(f, scale, b)
    })
}

#[inline(always)]
fn barys_generic<const D: usize, F>(i0: usize, width: usize, out: &mut [f32], scale: &[f32; D], fill: F)
where
    F: Fn(usize, usize, usize, Range<usize>, &mut [[f32; LANES]; MAX_D]),
{
    barys_with(i0, width, out, scale, fill, bary_lanes::<D>)
}

/// Pixels per vector step of the weight and key code (one AVX2 register of f32).
pub const LANES: usize = 8;

/// The loop of [`barys`]: features of `LANES` pixels at a time into lanes (split where a
/// row ends), `lanes` (the scalar-lane [`bary_lanes`] or its AVX2 twin) to weights,
/// stored r-major.
#[inline(always)]
fn barys_with<const D: usize, F, B>(
    i0: usize,
    width: usize,
    out: &mut [f32],
    scale: &[f32; D],
    fill: F,
    lanes: B,
) where
    F: Fn(usize, usize, usize, Range<usize>, &mut [[f32; LANES]; MAX_D]),
    B: Fn(&[[f32; LANES]; MAX_D], &[f32; D], &mut [[f32; LANES]; MAX_D + 1]),
{
    let n = out.len() / (D + 1);
    let width = width.max(1);
    let (mut x, mut y) = (i0 % width, i0 / width);
    let mut f = [[0f32; LANES]; MAX_D];
    let mut b = [[0f32; LANES]; MAX_D + 1];
    let mut k = 0;
    while k < n {
        let len = LANES.min(n - k);
        fill_lanes(i0 + k, width, (&mut x, &mut y), len, &fill, &mut f);
        lanes(&f, scale, &mut b);
        for r in 0..=D {
            // Whole runs as fixed-size copies (a variable-length one is a memcpy call).
            if len == LANES {
                out[r * n + k..][..LANES].copy_from_slice(&b[r]);
            } else {
                out[r * n + k..][..len].copy_from_slice(&b[r][..len]);
            }
        }
        k += len;
    }
}

/// Fills lanes `0..len` with the features of the pixels `i ..` (pixel `i` at `(x, y)` of
/// an image `width` wide), one `fill` call per run within a row, and moves `(x, y)` past
/// them.
#[inline(always)]
pub(super) fn fill_lanes<F>(
    i: usize,
    width: usize,
    (x, y): (&mut usize, &mut usize),
    len: usize,
    fill: &F,
    f: &mut [[f32; LANES]; MAX_D],
) where
    F: Fn(usize, usize, usize, Range<usize>, &mut [[f32; LANES]; MAX_D]),
{
    let mut l = 0;
    while l < len {
        let run = (len - l).min(width - *x);
        fill(i + l, *x, *y, l..l + run, f);
        l += run;
        *x += run;
        if *x == width {
            *x = 0;
            *y += 1;
        }
    }
}

/// [`super::bary_of`] for `LANES` pixels at once, every step a loop over the lanes (vectorises).
///
/// The ranks are a permutation of `0..=D`, so each `b[k]` of [`super::embed`] receives exactly one
/// `+v` (from the component of rank `D - k`) and one `-v` (rank `D - k + 1`); IEEE addition
/// is commutative, so `b[k] = v[rank D-k] - v[rank D-k+1]` whatever the order, and
/// `b[0] + (1 + b[D+1]) = v[rank D] + (1 - v[rank 0])`: the same bits from D+1 selects per
/// rank instead of (D+1)(D+2) masked adds.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn bary_lanes<const D: usize>(
    f: &[[f32; LANES]; MAX_D],
    scale: &[f32; D],
    out: &mut [[f32; LANES]; MAX_D + 1],
) {
    const L: usize = LANES;
    let down = 1.0f32 / (D + 1) as f32;
    let (e, rem0, rank) = simplex_lanes::<D>(f, scale);
    let mut v = [[0f32; L]; MAX_D + 1];
    for i in 0..=D {
        for l in 0..L {
            v[i][l] = (e[i][l] - rem0[i][l]) * down;
        }
    }
    // vr[k]: the v of the component whose rank is k.
    let mut vr = [[0f32; L]; MAX_D + 1];
    for k in 0..=D {
        let kf = k as f32;
        for i in 0..=D {
            for l in 0..L {
                vr[k][l] = if rank[i][l] == kf { v[i][l] } else { vr[k][l] };
            }
        }
    }
    for l in 0..L {
        out[0][l] = vr[D][l] + (1.0 - vr[0][l]);
    }
    for k in 1..=D {
        for l in 0..L {
            out[k][l] = vr[D - k][l] - vr[D - k + 1][l];
        }
    }
}

/// Elevated point, remainder-0 point and ranks ([`super::embed`] steps 2 to 4) of `LANES`
/// pixels, every step a loop over the lanes. Ranks are whole numbers held in f32 (as
/// pydensecrf's SSE path holds them), which keeps every step in one vector type.
#[allow(clippy::needless_range_loop, clippy::type_complexity)]
#[inline(always)]
fn simplex_lanes<const D: usize>(
    f: &[[f32; LANES]; MAX_D],
    scale: &[f32; D],
) -> (
    [[f32; LANES]; MAX_D + 1],
    [[f32; LANES]; MAX_D + 1],
    [[f32; LANES]; MAX_D + 1],
) {
    const L: usize = LANES;
    let dp1 = (D + 1) as f32;
    let down = 1.0f32 / dp1;
    let mut e = [[0f32; L]; MAX_D + 1];
    let mut sm = [0f32; L];
    for j in (1..=D).rev() {
        for l in 0..L {
            let cf = f[j - 1][l] * scale[j - 1];
            e[j][l] = sm[l] - j as f32 * cf;
            sm[l] += cf;
        }
    }
    e[0] = sm;
    let mut rem0 = [[0f32; L]; MAX_D + 1];
    let mut sum = [0f32; L];
    for i in 0..=D {
        for l in 0..L {
            let v = (e[i][l] * down).round_ties_even();
            rem0[i][l] = v * dp1;
            sum[l] += v;
        }
    }
    let mut rank = [[0f32; L]; MAX_D + 1];
    for i in 0..D {
        for j in i + 1..=D {
            for l in 0..L {
                let lt = (e[i][l] - rem0[i][l]) < (e[j][l] - rem0[j][l]);
                rank[i][l] += if lt { 1.0 } else { 0.0 };
                rank[j][l] += if lt { 0.0 } else { 1.0 };
            }
        }
    }
    for i in 0..=D {
        for l in 0..L {
            let r = rank[i][l] + sum[l];
            let fix = if r < 0.0 {
                1.0
            } else if r > D as f32 {
                -1.0
            } else {
                0.0
            };
            rank[i][l] = r + fix * dp1;
            rem0[i][l] += fix * dp1;
        }
    }
    (e, rem0, rank)
}

/// [`bary_lanes`] and the build's vertex keys written with AVX2 intrinsics (8 lanes in one
/// register; LLVM does not vectorise the lane loops' rank selects on its own). The same
/// operations in the same order, no FMA: the same bits (the lattice's tests compare with
/// [`super::embed`]).
#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use super::{LANES, MAX_D};
    use std::arch::x86_64::*;

    /// Elevated point, remainder-0 point (after the rank wrap) and ranks of 8 pixels
    /// ([`super::simplex_lanes`]).
    // Index loops over the D+1 components, as in `simplex_lanes`.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn simplex8<const D: usize>(
        f: &[[f32; LANES]; MAX_D],
        scale: &[f32; D],
    ) -> ([__m256; MAX_D + 1], [__m256; MAX_D + 1], [__m256; MAX_D + 1]) {
        const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        let zero = _mm256_setzero_ps();
        let one = _mm256_set1_ps(1.0);
        let dp1 = _mm256_set1_ps((D + 1) as f32);
        let down = _mm256_set1_ps(1.0f32 / (D + 1) as f32);
        let mut e = [zero; MAX_D + 1];
        let mut sm = zero;
        // SAFETY (loads): 8-float arrays.
        unsafe {
            for j in (1..=D).rev() {
                let cf = _mm256_mul_ps(_mm256_loadu_ps(f[j - 1].as_ptr()), _mm256_set1_ps(scale[j - 1]));
                e[j] = _mm256_sub_ps(sm, _mm256_mul_ps(_mm256_set1_ps(j as f32), cf));
                sm = _mm256_add_ps(sm, cf);
            }
        }
        e[0] = sm;
        let (mut rem0, mut sum) = ([zero; MAX_D + 1], zero);
        for i in 0..=D {
            let v = _mm256_round_ps::<NEAREST>(_mm256_mul_ps(e[i], down));
            rem0[i] = _mm256_mul_ps(v, dp1);
            sum = _mm256_add_ps(sum, v);
        }
        let mut d = [zero; MAX_D + 1];
        for i in 0..=D {
            d[i] = _mm256_sub_ps(e[i], rem0[i]);
        }
        let mut rank = [zero; MAX_D + 1];
        for i in 0..D {
            for j in i + 1..=D {
                let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(d[i], d[j]);
                rank[i] = _mm256_add_ps(rank[i], _mm256_and_ps(lt, one));
                rank[j] = _mm256_add_ps(rank[j], _mm256_andnot_ps(lt, one));
            }
        }
        let top = _mm256_set1_ps(D as f32);
        for i in 0..=D {
            let r = _mm256_add_ps(rank[i], sum);
            let fix = _mm256_sub_ps(
                _mm256_and_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(r, zero), one),
                _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(r, top), one),
            );
            rank[i] = _mm256_add_ps(r, _mm256_mul_ps(fix, dp1));
            rem0[i] = _mm256_add_ps(rem0[i], _mm256_mul_ps(fix, dp1));
        }
        (e, rem0, rank)
    }

    /// [`super::bary_lanes`] of 8 pixels.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2")]
    #[inline]
    pub unsafe fn bary8<const D: usize>(
        f: &[[f32; LANES]; MAX_D],
        scale: &[f32; D],
        out: &mut [[f32; LANES]; MAX_D + 1],
    ) {
        let zero = _mm256_setzero_ps();
        let one = _mm256_set1_ps(1.0);
        let down = _mm256_set1_ps(1.0f32 / (D + 1) as f32);
        // SAFETY: the caller has AVX2.
        let (e, rem0, rank) = unsafe { simplex8::<D>(f, scale) };
        let mut v = [zero; MAX_D + 1];
        for i in 0..=D {
            v[i] = _mm256_mul_ps(_mm256_sub_ps(e[i], rem0[i]), down);
        }
        let mut vr = [zero; MAX_D + 1];
        for k in 0..=D {
            let kf = _mm256_set1_ps(k as f32);
            for i in 0..=D {
                vr[k] = _mm256_blendv_ps(vr[k], v[i], _mm256_cmp_ps::<_CMP_EQ_OQ>(rank[i], kf));
            }
        }
        // SAFETY: 8-float arrays.
        unsafe {
            _mm256_storeu_ps(
                out[0].as_mut_ptr(),
                _mm256_add_ps(vr[D], _mm256_sub_ps(one, vr[0])),
            );
            for k in 1..=D {
                _mm256_storeu_ps(out[k].as_mut_ptr(), _mm256_sub_ps(vr[D - k], vr[D - k + 1]));
            }
        }
    }

    /// Keys of the D+1 simplex vertices of 8 pixels, `keys[r][i][lane]` (`Simplex::key`):
    /// `rem0[i] + (rank[i] <= D - r ? r : r - (D+1))`, exact whole numbers in f32.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2")]
    #[inline]
    pub unsafe fn keys8<const D: usize>(
        f: &[[f32; LANES]; MAX_D],
        scale: &[f32; D],
        keys: &mut [[[i32; LANES]; MAX_D]; MAX_D + 1],
    ) {
        // SAFETY: the caller has AVX2.
        let (_, rem0, rank) = unsafe { simplex8::<D>(f, scale) };
        for r in 0..=D {
            let (up, wrap) = (
                _mm256_set1_ps(r as f32),
                _mm256_set1_ps(r as f32 - (D + 1) as f32),
            );
            let lim = _mm256_set1_ps((D - r) as f32);
            for i in 0..D {
                let le = _mm256_cmp_ps::<_CMP_LE_OQ>(rank[i], lim);
                let k = _mm256_add_ps(rem0[i], _mm256_blendv_ps(wrap, up, le));
                // SAFETY: an 8-lane array.
                unsafe {
                    _mm256_storeu_si256(keys[r][i].as_mut_ptr() as *mut __m256i, _mm256_cvtps_epi32(k))
                };
            }
        }
    }
}

/// The build's vertex keys of `LANES` pixels (`keys[r][i][lane]`), scalar lanes.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
pub(super) fn keys_lanes<const D: usize>(
    f: &[[f32; LANES]; MAX_D],
    scale: &[f32; D],
    keys: &mut [[[i32; LANES]; MAX_D]; MAX_D + 1],
) {
    let (_, rem0, rank) = simplex_lanes::<D>(f, scale);
    for r in 0..=D {
        for i in 0..D {
            for l in 0..LANES {
                let c = if rank[i][l] <= (D - r) as f32 {
                    r as i32
                } else {
                    r as i32 - (D as i32 + 1)
                };
                keys[r][i][l] = rem0[i][l] as i32 + c;
            }
        }
    }
}
