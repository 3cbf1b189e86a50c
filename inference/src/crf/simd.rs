//! The CRF's hot loops, each as a scalar reference and as SSE4.1 and AVX2+FMA versions,
//! chosen once at run time with `is_x86_feature_detected!` ([`Isa::detect`]); any other
//! CPU (or `RISK_CRF_ISA=scalar`) runs the scalar code, so one binary runs everywhere.
//!
//! Kernels (all on 4-float vertex values [`Value`], lane 3 unused):
//! - [`blur`]: one lattice axis, `dst[v] = src[v] + 0.5 * (src[n1] + src[n2])`;
//! - [`gather`]: slice, `out[k] = sum_r (w[r][k] * alpha) * vals[id[k][r]]`;
//! - [`scatter`]: splat, `vals[id[k][r]] += w[r][k] * q[k]` (pixel order, then r);
//!
//! Simplex vertex ids are pixel-major (`ids[k * R + r]`, as the lattice stores them) and
//! weights r-major (`w[r * n + k]`, as the vectorised weight code writes them).
//! - [`softmax3`]: per pixel over 3 labels, subtract the max, exp, divide by the sum;
//! - [`energies`]: the normalisers `1/sqrt(K·1)` from lane 3 of the slices and the
//!   mean-field energies `-U - w_g n_g K_g Q - w_b n_b K_b Q` (slices to label planes);
//! - [`weighted_q`]: `[n Q_0, n Q_1, n Q_2, 1]` per pixel for the next splat (label
//!   planes to vertex values).
//!
//! The scalar versions repeat pydensecrf's operations in its order (its SSE path does a
//! multiply then an add, and uses glibc `expf` for 3 labels). The SIMD versions fuse
//! multiply-adds where FMA exists and use a polynomial `exp` (relative error below 2e-7),
//! so they agree with the scalar code to within 1e-5 (property tests in
//! `crf/simd_tests.rs`), not bit for bit.

/// One vertex value: 3 label channels and lane 3, which carries the normaliser `K·1`.
pub type Value = [f32; 4];

/// Which instruction set the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    Sse41,
    Avx2Fma,
}

impl Isa {
    /// The best instruction set this CPU has; `RISK_CRF_ISA=scalar|sse41|avx2` forces one
    /// (falling back to scalar if the CPU lacks it).
    /// The choice is logged at debug level, or at info level when `RISK_CRF_ISA` is set.
    pub fn detect() -> Isa {
        let forced = std::env::var("RISK_CRF_ISA").ok();
        let best = Self::best();
        let isa = match forced.as_deref() {
            Some("scalar") => Isa::Scalar,
            Some("sse41") if best != Isa::Scalar => Isa::Sse41,
            Some("avx2") if best == Isa::Avx2Fma => Isa::Avx2Fma,
            Some(_) => Isa::Scalar,
            None => best,
        };
        match forced {
            Some(asked) => {
                tracing::info!("risk-crf kernels: {isa:?} (RISK_CRF_ISA={asked}, best on this CPU {best:?})")
            }
            None => tracing::debug!("risk-crf kernels: {isa:?}"),
        }
        isa
    }

    /// Every instruction set usable on this CPU (for tests).
    pub fn available() -> Vec<Isa> {
        let mut v = vec![Isa::Scalar];
        match Self::best() {
            Isa::Avx2Fma => v.extend([Isa::Sse41, Isa::Avx2Fma]),
            Isa::Sse41 => v.push(Isa::Sse41),
            Isa::Scalar => {}
        }
        v
    }

    fn best() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2Fma;
            }
            if is_x86_feature_detected!("sse4.1") {
                return Isa::Sse41;
            }
        }
        Isa::Scalar
    }
}

/// Blurs vertices `v0 .. v0 + dst.len()` along one axis. `neighbours` is (M, stride) of
/// `[n1, n2]`; `src` has M + 1 entries, the last one zero (missing neighbours point there).
pub fn blur(
    isa: Isa,
    src: &[Value],
    neighbours: &[[u32; 2]],
    stride: usize,
    axis: usize,
    v0: usize,
    dst: &mut [Value],
) {
    // Neighbour reads are bounds-checked by indexing `src` in the kernels.
    assert!(neighbours.len() >= (v0 + dst.len()) * stride && axis < stride);
    assert!(v0 + dst.len() <= src.len());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2Fma` is only produced when the CPU has AVX2 and FMA; ranges checked above.
        Isa::Avx2Fma => unsafe { x86::blur_avx2(src, neighbours, stride, axis, v0, dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above for SSE4.1.
        Isa::Sse41 => unsafe { x86::blur_sse41(src, neighbours, stride, axis, v0, dst) },
        _ => blur_scalar(src, neighbours, stride, axis, v0, dst),
    }
}

/// Scalar reference of [`blur`].
pub fn blur_scalar(
    src: &[Value],
    neighbours: &[[u32; 2]],
    stride: usize,
    axis: usize,
    v0: usize,
    dst: &mut [Value],
) {
    for (k, out) in dst.iter_mut().enumerate() {
        let v = v0 + k;
        let [n1, n2] = neighbours[v * stride + axis];
        let (a, b, s) = (&src[n1 as usize], &src[n2 as usize], &src[v]);
        for c in 0..4 {
            out[c] = s[c] + 0.5 * (a[c] + b[c]);
        }
    }
}

/// Slices `out.len()` pixels: `ids` is (pixels, R) and `w` (R, pixels). Checks every id
/// (one vectorised pass), then runs [`gather_unchecked`].
#[cfg(test)]
pub fn gather<const R: usize>(
    isa: Isa,
    vals: &[Value],
    ids: &[u32],
    w: &[f32],
    alpha: f32,
    out: &mut [Value],
) {
    check_simplices::<R>(ids, w, out.len(), vals.len());
    // SAFETY: lengths and ids checked above.
    unsafe { gather_unchecked::<R>(isa, vals, ids, w, alpha, out) }
}

/// The safe kernels' checks: `R` ids and weights per pixel, every id below `vertices`.
#[cfg(test)]
fn check_simplices<const R: usize>(ids: &[u32], w: &[f32], pixels: usize, vertices: usize) {
    assert!(ids.len() == R * pixels && w.len() == R * pixels);
    assert!(ids.is_empty() || max_id(ids) < vertices, "vertex id out of range");
}

/// [`gather`] without its checks, for ids whose range is known (a lattice's, checked once
/// when it is built, or a grid's, clamped when computed).
///
/// # Safety
/// `ids.len() == w.len() == R * out.len()` and every id is below `vals.len()`.
pub unsafe fn gather_unchecked<const R: usize>(
    isa: Isa,
    vals: &[Value],
    ids: &[u32],
    w: &[f32],
    alpha: f32,
    out: &mut [Value],
) {
    debug_assert!(ids.len() == R * out.len() && w.len() == R * out.len());
    debug_assert!(ids.iter().all(|&i| (i as usize) < vals.len()));
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: CPU features as produced by `Isa::detect`; the caller's contract.
        Isa::Avx2Fma => unsafe { x86::gather_avx2::<R>(vals, ids, w, alpha, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Sse41 => unsafe { x86::gather_sse41::<R>(vals, ids, w, alpha, out) },
        _ => gather_scalar(vals, ids, w, alpha, out),
    }
}

/// Scalar reference of [`gather`]: pydensecrf's `out += (b * alpha) * V` in r order.
pub fn gather_scalar(vals: &[Value], ids: &[u32], w: &[f32], alpha: f32, out: &mut [Value]) {
    let (n, r) = (out.len(), w.len() / out.len().max(1));
    for (k, o) in out.iter_mut().enumerate() {
        let mut acc = [0f32; 4];
        for j in 0..r {
            let wa = w[j * n + k] * alpha;
            let v = &vals[ids[k * r + j] as usize];
            for c in 0..4 {
                acc[c] += wa * v[c];
            }
        }
        *o = acc;
    }
}

/// Splats `q.len()` pixels into `vals`: `ids`, `w` as in [`gather`]. Checks every id, then
/// runs [`scatter_unchecked`].
#[cfg(test)]
pub fn scatter<const R: usize>(isa: Isa, vals: &mut [Value], ids: &[u32], w: &[f32], q: &[Value]) {
    check_simplices::<R>(ids, w, q.len(), vals.len());
    // SAFETY: lengths and ids checked above.
    unsafe { scatter_unchecked::<R>(isa, vals, ids, w, q) }
}

/// [`scatter`] without its checks (see [`gather_unchecked`]).
///
/// # Safety
/// `ids.len() == w.len() == R * q.len()` and every id is below `vals.len()`.
pub unsafe fn scatter_unchecked<const R: usize>(
    isa: Isa,
    vals: &mut [Value],
    ids: &[u32],
    w: &[f32],
    q: &[Value],
) {
    debug_assert!(ids.len() == R * q.len() && w.len() == R * q.len());
    debug_assert!(ids.iter().all(|&i| (i as usize) < vals.len()));
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: CPU features as produced by `Isa::detect`; the caller's contract.
        Isa::Avx2Fma | Isa::Sse41 => unsafe { x86::scatter_sse41::<R>(vals, ids, w, q) },
        _ => scatter_scalar(vals, ids, w, q),
    }
}

/// Scalar reference of [`scatter`]: `V += b * q`, pixels ascending, r ascending.
pub fn scatter_scalar(vals: &mut [Value], ids: &[u32], w: &[f32], q: &[Value]) {
    let (n, r) = (q.len(), w.len() / q.len().max(1));
    for (k, qk) in q.iter().enumerate() {
        for j in 0..r {
            let v = &mut vals[ids[k * r + j] as usize];
            for c in 0..4 {
                v[c] += w[j * n + k] * qk[c];
            }
        }
    }
}

/// Normalisers and energies of `n = out_g.len()` pixels: `norm[j][k] = 1/sqrt(out_j[k][3] +
/// 1e-20)` (in f64, as pydensecrf), and `t[c][k] = -u[c][k]` when `first`, else
/// `(-u[c][k] - w[0] * (norm_g * out_g[k][c])) - w[1] * (norm_b * out_b[k][c])` (w = the
/// Potts factors `-compat`; pydensecrf's order of operations, no FMA, so every ISA gives
/// the same bits).
pub fn energies(isa: Isa, e: &EnergyInputs, t: &mut [Vec<f32>; 3], norm: [&mut [f32]; 2]) {
    let EnergyInputs { out, u, .. } = *e;
    let n = out[0].len();
    assert!(out[1].len() == n && u.iter().all(|p| p.len() == n) && t.iter().all(|p| p.len() >= n));
    assert!(norm[0].len() >= n && norm[1].len() >= n);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: CPU features as produced by `Isa::detect`; lengths checked above.
        Isa::Avx2Fma => unsafe { x86::energies_avx2(e, t, norm) },
        _ => energies_scalar(e, t, norm),
    }
}

/// The inputs of [`energies`]: the slices of the Gaussian and bilateral messages (lane 3
/// holds `K·1`), the unary planes, the Potts factors `[w_g, w_b]` and whether this is the
/// first update (energies `-U` only).
#[derive(Clone, Copy)]
pub struct EnergyInputs<'a> {
    pub out: [&'a [Value]; 2],
    pub u: [&'a [f32]; 3],
    pub w: [f32; 2],
    pub first: bool,
}

/// Scalar reference of [`energies`].
pub fn energies_scalar(e: &EnergyInputs, t: &mut [Vec<f32>; 3], norm: [&mut [f32]; 2]) {
    energies_from(0, e, t, norm)
}

/// [`energies_scalar`] from pixel `k0` on (also the SIMD versions' remainder).
fn energies_from(k0: usize, e: &EnergyInputs, t: &mut [Vec<f32>; 3], norm: [&mut [f32]; 2]) {
    let EnergyInputs { out, u, w, first } = *e;
    let [ng, nb] = norm;
    for k in k0..out[0].len() {
        ng[k] = (1.0 / (out[0][k][3] as f64 + 1e-20).sqrt()) as f32;
        nb[k] = (1.0 / (out[1][k][3] as f64 + 1e-20).sqrt()) as f32;
        for c in 0..3 {
            t[c][k] = if first {
                -u[c][k]
            } else {
                (-u[c][k] - w[0] * (ng[k] * out[0][k][c])) - w[1] * (nb[k] * out[1][k][c])
            };
        }
    }
}

/// The next splat's values: `q[k] = [t[0][k] * norm[k], t[1][k] * norm[k], t[2][k] *
/// norm[k], 1]` for `k < q.len()` (lane 3 carries the 1 whose splat gives `K·1`).
pub fn weighted_q(isa: Isa, t: &[Vec<f32>; 3], norm: &[f32], q: &mut [Value]) {
    assert!(t.iter().all(|p| p.len() >= q.len()) && norm.len() >= q.len());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: CPU features as produced by `Isa::detect`; lengths checked above.
        Isa::Avx2Fma => unsafe { x86::weighted_q_avx2(t, norm, q) },
        _ => weighted_q_from(0, t, norm, q),
    }
}

/// Scalar [`weighted_q`] from pixel `k0` on (reference and remainder).
pub fn weighted_q_from(k0: usize, t: &[Vec<f32>; 3], norm: &[f32], q: &mut [Value]) {
    for k in k0..q.len() {
        let n = norm[k];
        q[k] = [t[0][k] * n, t[1][k] * n, t[2][k] * n, 1.0];
    }
}

/// In-place softmax over the 3 label planes `t[0][k], t[1][k], t[2][k]` for `k < len`.
pub fn softmax3(isa: Isa, t: &mut [Vec<f32>; 3], len: usize) {
    assert!(t.iter().all(|p| p.len() >= len));
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: CPU features as produced by `Isa::detect`; lengths checked above.
        Isa::Avx2Fma => unsafe { x86::softmax3_avx2(t, len) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Sse41 => unsafe { x86::softmax3_sse41(t, len) },
        _ => softmax3_scalar(t, len),
    }
}

/// Scalar reference of [`softmax3`]: Eigen's `expAndNormalize` for one column.
pub fn softmax3_scalar(t: &mut [Vec<f32>; 3], len: usize) {
    let [a, b, c] = t;
    for k in 0..len {
        let m = a[k].max(b[k]).max(c[k]);
        let (e0, e1, e2) = ((a[k] - m).exp(), (b[k] - m).exp(), (c[k] - m).exp());
        let s = e0 + e1 + e2;
        a[k] = e0 / s;
        b[k] = e1 / s;
        c[k] = e2 / s;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Value;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn blur_avx2(
        src: &[Value],
        nb: &[[u32; 2]],
        stride: usize,
        axis: usize,
        v0: usize,
        dst: &mut [Value],
    ) {
        let half = _mm256_set1_ps(0.5);
        let s = src.as_ptr() as *const f32;
        let n = dst.len();
        let d = dst.as_mut_ptr() as *mut f32;
        let mut k = 0;
        // SAFETY (whole body): own and neighbour-list ranges checked by the caller, neighbour
        // reads by indexing `src`; Value is 4 packed f32.
        unsafe {
            while k + 2 <= n {
                let v = v0 + k;
                let [a0, b0] = *nb.get_unchecked(v * stride + axis);
                let [a1, b1] = *nb.get_unchecked((v + 1) * stride + axis);
                let own = _mm256_loadu_ps(s.add(v * 4));
                let a = _mm256_loadu2_m128(src[a1 as usize].as_ptr(), src[a0 as usize].as_ptr());
                let b = _mm256_loadu2_m128(src[b1 as usize].as_ptr(), src[b0 as usize].as_ptr());
                _mm256_storeu_ps(d.add(k * 4), _mm256_fmadd_ps(half, _mm256_add_ps(a, b), own));
                k += 2;
            }
            if k < n {
                let v = v0 + k;
                let [a0, b0] = *nb.get_unchecked(v * stride + axis);
                let h = _mm_set1_ps(0.5);
                let own = _mm_loadu_ps(s.add(v * 4));
                let ab = _mm_add_ps(
                    _mm_loadu_ps(src[a0 as usize].as_ptr()),
                    _mm_loadu_ps(src[b0 as usize].as_ptr()),
                );
                _mm_storeu_ps(d.add(k * 4), _mm_fmadd_ps(h, ab, own));
            }
        }
    }

    #[target_feature(enable = "sse4.1")]
    pub unsafe fn blur_sse41(
        src: &[Value],
        nb: &[[u32; 2]],
        stride: usize,
        axis: usize,
        v0: usize,
        dst: &mut [Value],
    ) {
        let half = _mm_set1_ps(0.5);
        let s = src.as_ptr() as *const f32;
        let d = dst.as_mut_ptr() as *mut f32;
        // SAFETY: as in `blur_avx2`.
        unsafe {
            for k in 0..dst.len() {
                let v = v0 + k;
                let [a, b] = *nb.get_unchecked(v * stride + axis);
                let ab = _mm_add_ps(
                    _mm_loadu_ps(src[a as usize].as_ptr()),
                    _mm_loadu_ps(src[b as usize].as_ptr()),
                );
                let r = _mm_add_ps(_mm_loadu_ps(s.add(v * 4)), _mm_mul_ps(half, ab));
                _mm_storeu_ps(d.add(k * 4), r);
            }
        }
    }

    /// Two pixels per 256-bit register: low half pixel k, high half pixel k+1.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gather_avx2<const R: usize>(
        vals: &[Value],
        ids: &[u32],
        w: &[f32],
        alpha: f32,
        out: &mut [Value],
    ) {
        let al = _mm256_set1_ps(alpha);
        let n = out.len();
        let o = out.as_mut_ptr() as *mut f32;
        let mut k = 0;
        // SAFETY: `ids` and `w` hold R * n entries and every id is below `vals.len()` (the
        // caller's contract).
        unsafe {
            while k + 2 <= n {
                let mut acc = _mm256_setzero_ps();
                for j in 0..R {
                    let wv = _mm256_mul_ps(
                        _mm256_set_m128(
                            _mm_broadcast_ss(w.get_unchecked(j * n + k + 1)),
                            _mm_broadcast_ss(w.get_unchecked(j * n + k)),
                        ),
                        al,
                    );
                    let a = vals.get_unchecked(*ids.get_unchecked(k * R + j) as usize);
                    let b = vals.get_unchecked(*ids.get_unchecked((k + 1) * R + j) as usize);
                    let v = _mm256_loadu2_m128(b.as_ptr(), a.as_ptr());
                    acc = _mm256_fmadd_ps(wv, v, acc);
                }
                _mm256_storeu_ps(o.add(k * 4), acc);
                k += 2;
            }
            if k < n {
                let mut acc = _mm_setzero_ps();
                for j in 0..R {
                    let wv = _mm_set1_ps(*w.get_unchecked(j * n + k) * alpha);
                    let v = vals.get_unchecked(*ids.get_unchecked(k * R + j) as usize);
                    acc = _mm_fmadd_ps(wv, _mm_loadu_ps(v.as_ptr()), acc);
                }
                _mm_storeu_ps(o.add(k * 4), acc);
            }
        }
    }

    #[target_feature(enable = "sse4.1")]
    pub unsafe fn gather_sse41<const R: usize>(
        vals: &[Value],
        ids: &[u32],
        w: &[f32],
        alpha: f32,
        out: &mut [Value],
    ) {
        let n = out.len();
        let o = out.as_mut_ptr() as *mut f32;
        // SAFETY: as in `gather_avx2`.
        unsafe {
            for k in 0..n {
                let mut acc = _mm_setzero_ps();
                for j in 0..R {
                    let wv = _mm_set1_ps(*w.get_unchecked(j * n + k) * alpha);
                    let v = vals.get_unchecked(*ids.get_unchecked(k * R + j) as usize);
                    acc = _mm_add_ps(acc, _mm_mul_ps(wv, _mm_loadu_ps(v.as_ptr())));
                }
                _mm_storeu_ps(o.add(k * 4), acc);
            }
        }
    }

    /// Splat stays 4-wide (one vertex per register) also on AVX2: the scattered adds are
    /// dependent through memory when two simplex vertices coincide between pixels, and no
    /// FMA is used so that the splat is bit-identical to the scalar reference.
    #[target_feature(enable = "sse4.1")]
    pub unsafe fn scatter_sse41<const R: usize>(vals: &mut [Value], ids: &[u32], w: &[f32], q: &[Value]) {
        let n = q.len();
        let qp = q.as_ptr() as *const f32;
        // SAFETY: as in `gather_avx2`.
        unsafe {
            for k in 0..n {
                let qv = _mm_loadu_ps(qp.add(k * 4));
                for j in 0..R {
                    let dst = vals
                        .get_unchecked_mut(*ids.get_unchecked(k * R + j) as usize)
                        .as_mut_ptr();
                    let wv = _mm_set1_ps(*w.get_unchecked(j * n + k));
                    _mm_storeu_ps(dst, _mm_add_ps(_mm_loadu_ps(dst), _mm_mul_ps(wv, qv)));
                }
            }
        }
    }

    /// 8 vertex values (AoS, 32 floats from `p`) as 4 lane planes of 8 pixels each, in
    /// pixel order.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn aos_to_soa(p: *const f32) -> [__m256; 4] {
        // SAFETY: the caller passes 32 readable floats.
        let [r0, r1, r2, r3] = unsafe { [0, 8, 16, 24].map(|o| _mm256_loadu_ps(p.add(o))) };
        let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
        let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
        // Lanes now hold pixels [0 2 4 6 | 1 3 5 7]; the permute restores pixel order.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        [
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        ]
        .map(|c| _mm256_permutevar8x32_ps(c, order))
    }

    /// The inverse of [`aos_to_soa`]: 4 lane planes of 8 pixels to 8 vertex values at `p`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn soa_to_aos(c: [__m256; 4], p: *mut f32) {
        let order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        let [c0, c1, c2, c3] = c.map(|x| _mm256_permutevar8x32_ps(x, order));
        let (t0, t1) = (_mm256_unpacklo_ps(c0, c1), _mm256_unpackhi_ps(c0, c1));
        let (t2, t3) = (_mm256_unpacklo_ps(c2, c3), _mm256_unpackhi_ps(c2, c3));
        let r = [
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        ];
        // SAFETY: the caller passes 32 writable floats.
        unsafe {
            for (o, v) in r.into_iter().enumerate() {
                _mm256_storeu_ps(p.add(8 * o), v);
            }
        }
    }

    /// `1/sqrt(x + 1e-20)` of 8 floats, in f64 as the scalar code.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn inv_sqrt_f64(x: __m256) -> __m256 {
        let tiny = _mm256_set1_pd(1e-20);
        let one = _mm256_set1_pd(1.0);
        let f = |h: __m128| {
            _mm256_cvtpd_ps(_mm256_div_pd(
                one,
                _mm256_sqrt_pd(_mm256_add_pd(_mm256_cvtps_pd(h), tiny)),
            ))
        };
        _mm256_set_m128(f(_mm256_extractf128_ps::<1>(x)), f(_mm256_castps256_ps128(x)))
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn energies_avx2(e: &super::EnergyInputs, t: &mut [Vec<f32>; 3], norm: [&mut [f32]; 2]) {
        let super::EnergyInputs { out, u, w, first } = *e;
        let n = out[0].len();
        let (wg, wb) = (_mm256_set1_ps(w[0]), _mm256_set1_ps(w[1]));
        let sign = _mm256_set1_ps(-0.0);
        let mut k = 0;
        // SAFETY: lengths checked by the caller; k + 8 <= n.
        unsafe {
            while k + 8 <= n {
                let g = aos_to_soa(out[0].as_ptr().add(k) as *const f32);
                let b = aos_to_soa(out[1].as_ptr().add(k) as *const f32);
                let (ng, nb) = (inv_sqrt_f64(g[3]), inv_sqrt_f64(b[3]));
                _mm256_storeu_ps(norm[0].as_mut_ptr().add(k), ng);
                _mm256_storeu_ps(norm[1].as_mut_ptr().add(k), nb);
                for c in 0..3 {
                    let mu = _mm256_xor_ps(sign, _mm256_loadu_ps(u[c].as_ptr().add(k)));
                    let v = if first {
                        mu
                    } else {
                        let e = _mm256_sub_ps(mu, _mm256_mul_ps(wg, _mm256_mul_ps(ng, g[c])));
                        _mm256_sub_ps(e, _mm256_mul_ps(wb, _mm256_mul_ps(nb, b[c])))
                    };
                    _mm256_storeu_ps(t[c].as_mut_ptr().add(k), v);
                }
                k += 8;
            }
        }
        super::energies_from(k, e, t, norm);
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weighted_q_avx2(t: &[Vec<f32>; 3], norm: &[f32], q: &mut [Value]) {
        let n = q.len();
        let one = _mm256_set1_ps(1.0);
        let mut k = 0;
        // SAFETY: lengths checked by the caller; k + 8 <= n.
        unsafe {
            while k + 8 <= n {
                let nv = _mm256_loadu_ps(norm.as_ptr().add(k));
                let c = [0, 1, 2].map(|c| _mm256_mul_ps(_mm256_loadu_ps(t[c].as_ptr().add(k)), nv));
                soa_to_aos([c[0], c[1], c[2], one], q.as_mut_ptr().add(k) as *mut f32);
                k += 8;
            }
        }
        super::weighted_q_from(k, t, norm, q);
    }

    /// exp for x <= 0 (softmax inputs after subtracting the max); Cephes-style range
    /// reduction and degree-6 polynomial, relative error below 2e-7.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp_avx2(x: __m256) -> __m256 {
        let x = _mm256_max_ps(x, _mm256_set1_ps(-87.0));
        let fx = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut y = _mm256_set1_ps(1.987_569_1e-4);
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.398_199_9e-3));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.333_452e-3));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.166_579_6e-2));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.666_666_5e-1));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(0.5));
        let r2 = _mm256_mul_ps(r, r);
        y = _mm256_fmadd_ps(y, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0)));
        let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)));
        _mm256_mul_ps(y, _mm256_castsi256_ps(e))
    }

    #[target_feature(enable = "sse4.1")]
    unsafe fn exp_sse41(x: __m128) -> __m128 {
        let x = _mm_max_ps(x, _mm_set1_ps(-87.0));
        let fx = _mm_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm_mul_ps(
            x,
            _mm_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm_sub_ps(x, _mm_mul_ps(fx, _mm_set1_ps(0.693_359_4)));
        let r = _mm_sub_ps(r, _mm_mul_ps(fx, _mm_set1_ps(-2.121_944_4e-4)));
        let mut y = _mm_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3f32,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            y = _mm_add_ps(_mm_mul_ps(y, r), _mm_set1_ps(c));
        }
        let r2 = _mm_mul_ps(r, r);
        y = _mm_add_ps(_mm_mul_ps(y, r2), _mm_add_ps(r, _mm_set1_ps(1.0)));
        let e = _mm_slli_epi32::<23>(_mm_add_epi32(_mm_cvtps_epi32(fx), _mm_set1_epi32(127)));
        _mm_mul_ps(y, _mm_castsi128_ps(e))
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn softmax3_avx2(t: &mut [Vec<f32>; 3], len: usize) {
        let [a, b, c] = t;
        let (pa, pb, pc) = (a.as_mut_ptr(), b.as_mut_ptr(), c.as_mut_ptr());
        let mut k = 0;
        // SAFETY: lengths checked by the caller.
        unsafe {
            while k + 8 <= len {
                let (x0, x1, x2) = (
                    _mm256_loadu_ps(pa.add(k)),
                    _mm256_loadu_ps(pb.add(k)),
                    _mm256_loadu_ps(pc.add(k)),
                );
                let m = _mm256_max_ps(_mm256_max_ps(x0, x1), x2);
                let e0 = exp_avx2(_mm256_sub_ps(x0, m));
                let e1 = exp_avx2(_mm256_sub_ps(x1, m));
                let e2 = exp_avx2(_mm256_sub_ps(x2, m));
                let s = _mm256_add_ps(_mm256_add_ps(e0, e1), e2);
                _mm256_storeu_ps(pa.add(k), _mm256_div_ps(e0, s));
                _mm256_storeu_ps(pb.add(k), _mm256_div_ps(e1, s));
                _mm256_storeu_ps(pc.add(k), _mm256_div_ps(e2, s));
                k += 8;
            }
        }
        if k < len {
            super::softmax3_tail(t, k, len);
        }
    }

    #[target_feature(enable = "sse4.1")]
    pub unsafe fn softmax3_sse41(t: &mut [Vec<f32>; 3], len: usize) {
        let [a, b, c] = t;
        let (pa, pb, pc) = (a.as_mut_ptr(), b.as_mut_ptr(), c.as_mut_ptr());
        let mut k = 0;
        // SAFETY: lengths checked by the caller.
        unsafe {
            while k + 4 <= len {
                let (x0, x1, x2) = (
                    _mm_loadu_ps(pa.add(k)),
                    _mm_loadu_ps(pb.add(k)),
                    _mm_loadu_ps(pc.add(k)),
                );
                let m = _mm_max_ps(_mm_max_ps(x0, x1), x2);
                let e0 = exp_sse41(_mm_sub_ps(x0, m));
                let e1 = exp_sse41(_mm_sub_ps(x1, m));
                let e2 = exp_sse41(_mm_sub_ps(x2, m));
                let s = _mm_add_ps(_mm_add_ps(e0, e1), e2);
                _mm_storeu_ps(pa.add(k), _mm_div_ps(e0, s));
                _mm_storeu_ps(pb.add(k), _mm_div_ps(e1, s));
                _mm_storeu_ps(pc.add(k), _mm_div_ps(e2, s));
                k += 4;
            }
        }
        if k < len {
            super::softmax3_tail(t, k, len);
        }
    }
}

/// Largest id (0 for none): the safe kernels' and the lattice build's range check, one
/// vectorised pass (unsigned 32-bit max needs SSE4.1; the AVX2 build does 8 at a time).
pub(crate) fn max_id(ids: &[u32]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked); the body is safe code.
        return unsafe { max_id_avx2(ids) };
    }
    max_id_generic(ids)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_id_avx2(ids: &[u32]) -> usize {
    max_id_generic(ids)
}

#[inline(always)]
fn max_id_generic(ids: &[u32]) -> usize {
    let mut m = [0u32; 8];
    let mut chunks = ids.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            m[l] = m[l].max(c[l]);
        }
    }
    let tail = chunks.remainder().iter().fold(0u32, |a, &b| a.max(b));
    m.iter().fold(tail, |a, &b| a.max(b)) as usize
}

/// Scalar softmax of entries `k0..len` (the SIMD versions' remainder).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn softmax3_tail(t: &mut [Vec<f32>; 3], k0: usize, len: usize) {
    let [a, b, c] = t;
    for k in k0..len {
        let m = a[k].max(b[k]).max(c[k]);
        let (e0, e1, e2) = ((a[k] - m).exp(), (b[k] - m).exp(), (c[k] - m).exp());
        let s = e0 + e1 + e2;
        a[k] = e0 / s;
        b[k] = e1 / s;
        c[k] = e2 / s;
    }
}
