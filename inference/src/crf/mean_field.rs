//! Mean-field inference of the dense CRF on one image, in the order pydensecrf computes it.
//!
//! The two kernels are built once per image (the Gaussian one on a regular grid, the
//! bilateral one on a hashed permutohedral lattice) and reused by every iteration. Each
//! iteration is one fused pass over the pixels in blocks of [`BLOCK`]: slice the previous
//! messages from both lattices, form the energies, take the softmax, and splat the new Q
//! (times its normaliser) for the next iteration; the last pass writes Q over the unary in
//! place ([`dense_crf_in_place`]), so Q is never stored between iterations. The per-thread
//! splats are summed and blurred between passes (`reduce_and_blur`).
//!
//! Also here: the unary from probabilities, the input checks that name the first bad
//! pixel, and the read-out of labels and class shares from Q.

use rayon::prelude::*;

use super::diag::timing_requested;
use super::error::CrfError;
use super::grid::Grid;
use super::lattice::{self, Lattice};
use super::params::{CrfParams, LABELS, LabelCompat};
use super::simd::{self, Isa, Value};

/// `-ln(clip(p, 1e-5, 1))` in place over probabilities (3, H, W) -> unary (3, H, W),
/// as `pydensecrf.utils.unary_from_softmax(p)`. Fails on NaN or infinite input.
pub fn unary_from_probs_in_place(buf: &mut [f32], width: usize, height: usize) -> Result<(), CrfError> {
    check_len("probabilities", buf.len(), LABELS * width * height, width, height)?;
    check_finite("probabilities", buf, width, height)?;
    buf.par_chunks_mut(1 << 16).for_each(|c| {
        for p in c {
            *p = -p.clamp(1e-5, 1.0).ln();
        }
    });
    Ok(())
}

/// Dense CRF from class probabilities.
///
/// `rgb` is (H, W, 3) uint8 interleaved, `probs` (3, H, W) float32; returns the marginals
/// Q, (3, H, W) float32. Labels are [`labels_from_q`].
pub fn dense_crf(
    rgb: &[u8],
    probs: &[f32],
    width: usize,
    height: usize,
    params: &CrfParams,
) -> Result<Vec<f32>, CrfError> {
    let mut buf = probs.to_vec();
    unary_from_probs_in_place(&mut buf, width, height)?;
    dense_crf_in_place(rgb, &mut buf, width, height, params)?;
    Ok(buf)
}

/// Dense CRF from a unary energy (3, H, W) (for example the harness' `unary.npy`);
/// returns Q (3, H, W).
pub fn dense_crf_unary(
    rgb: &[u8],
    unary: &[f32],
    width: usize,
    height: usize,
    params: &CrfParams,
) -> Result<Vec<f32>, CrfError> {
    let mut buf = unary.to_vec();
    dense_crf_in_place(rgb, &mut buf, width, height, params)?;
    Ok(buf)
}

/// The lowest-memory entry point: `buf` holds the unary (3, H, W) on entry and Q (3, H, W)
/// on return. Extra memory is the two lattices and their vertex values (see module docs).
pub fn dense_crf_in_place(
    rgb: &[u8],
    buf: &mut [f32],
    width: usize,
    height: usize,
    params: &CrfParams,
) -> Result<(), CrfError> {
    params.validate()?;
    let n = width * height;
    check_len("image (H, W, 3)", rgb.len(), 3 * n, width, height)?;
    check_len("unary", buf.len(), LABELS * n, width, height)?;
    check_finite("unary", buf, width, height)?;
    if n == 0 {
        return Ok(());
    }
    if n > (i32::MAX as usize) / 6 {
        return Err(CrfError::TooLarge { width, height });
    }
    let t0 = std::time::Instant::now();
    let crf = DenseCrf::new(rgb, width, height, params);
    let t1 = std::time::Instant::now();
    crf.infer_in_place(buf, params.iterations);
    let (build_s, inference_s) = ((t1 - t0).as_secs_f64(), t1.elapsed().as_secs_f64());
    let (gaussian_vertices, bilateral_vertices) = (crf.gauss.grid.vertices(), crf.bilat.lattice.vertices);
    if timing_requested() {
        tracing::info!(
            "risk-crf timing: {width}x{height} build {build_s:.3} s, inference {inference_s:.3} s, vertices gaussian {gaussian_vertices} bilateral {bilateral_vertices}"
        );
    } else {
        tracing::debug!(
            build_s,
            inference_s,
            gaussian_vertices,
            bilateral_vertices,
            "dense CRF on {width}x{height}"
        );
    }
    Ok(())
}

/// Labels (H, W) from marginals (3, H, W): the first class with the highest Q (as
/// `numpy.argmax`).
pub fn labels_from_q(q: &[f32], n: usize) -> Vec<u8> {
    let (q0, rest) = q.split_at(n);
    let (q1, q2) = rest.split_at(n);
    let mut labels = vec![0u8; n];
    // Chunks, not one rayon item per pixel: per-item collection cost more than the argmax.
    labels
        .par_chunks_mut(SCAN_CHUNK)
        .enumerate()
        .for_each(|(c, out)| {
            let s = c * SCAN_CHUNK;
            let e = s + out.len();
            for (((l, &a), &b), &d) in out.iter_mut().zip(&q0[s..e]).zip(&q1[s..e]).zip(&q2[s..e]) {
                let (mut label, mut best) = (0u8, a);
                if b > best {
                    (label, best) = (1, b);
                }
                if d > best {
                    label = 2;
                }
                *l = label;
            }
        });
    labels
}

/// Elements per parallel work item of the whole-buffer scans ([`labels_from_q`],
/// `check_finite`).
const SCAN_CHUNK: usize = 1 << 15;

/// Share of each class (0 Low, 1 Medium, 2 High) among `labels`; other values (nodata)
/// are not counted. The CRF's Potts terms shrink small Medium zones: log these before and
/// after the CRF so that users see it.
pub fn class_shares(labels: &[u8]) -> [f64; LABELS] {
    let mut counts = [0u64; LABELS];
    for &l in labels {
        if (l as usize) < LABELS {
            counts[l as usize] += 1;
        }
    }
    let total = counts.iter().sum::<u64>().max(1) as f64;
    counts.map(|c| c as f64 / total)
}

pub(super) fn check_len(
    what: &'static str,
    got: usize,
    expected: usize,
    width: usize,
    height: usize,
) -> Result<(), CrfError> {
    if got == expected {
        Ok(())
    } else {
        Err(CrfError::Shape {
            what,
            got,
            expected,
            width,
            height,
        })
    }
}

fn check_finite(what: &'static str, buf: &[f32], width: usize, height: usize) -> Result<(), CrfError> {
    let n = width * height;
    // A value is not finite when its exponent bits are all ones: the largest masked bit
    // pattern of a chunk says it without a branch per value (the loop vectorises).
    let bad = |c: &[f32]| c.iter().map(|v| v.to_bits() & 0x7fff_ffff).max().unwrap_or(0) >= 0x7f80_0000;
    let Some(chunk) = buf.par_chunks(SCAN_CHUNK).position_first(bad) else {
        return Ok(());
    };
    let start = chunk * SCAN_CHUNK;
    let i = start
        + buf[start..]
            .iter()
            .position(|v| !v.is_finite())
            .expect("the chunk holds a non-finite value");
    let (class, p) = (i / n.max(1), i % n.max(1));
    Err(CrfError::NotFinite {
        what,
        x: p % width.max(1),
        y: p / width.max(1),
        class,
        value: buf[i],
    })
}

/// One pairwise term: lattice and Potts weight. The `NORMALIZE_SYMMETRIC` factors
/// `1/sqrt(K·1)` are not stored: every splat carries a 1 in the unused lane 3 of the
/// vertex values, so every slice returns `K·1` of its pixel next to the messages.
struct Kernel<const D: usize> {
    lattice: Lattice<D>,
    /// Potts weight w (the compatibility applies `-w`).
    compat: f32,
}

/// How one kernel's slices become pairwise energies: `[w for energies, matrix]`. Potts: the
/// factor `-w` and no matrix; a matrix compatibility `M`: the slices' label lanes are
/// replaced by `M (K Q)` and the factor is 1 (energy `-= norm M K Q`).
fn compat_terms(compat: &LabelCompat, w: f32) -> (f32, Option<[[f32; LABELS]; LABELS]>) {
    match compat.kernel_matrix(w) {
        None => (-w, None),
        Some(m) => (1.0, Some(m)),
    }
}

/// `out[k][0..3] = M out[k][0..3]` (lane 3, `K·1`, kept).
fn mix_labels(m: &[[f32; LABELS]; LABELS], out: &mut [Value]) {
    for v in out {
        let x = [v[0], v[1], v[2]];
        for (i, row) in m.iter().enumerate() {
            v[i] = row[0] * x[0] + row[1] * x[1] + row[2] * x[2];
        }
    }
}

impl<const D: usize> Kernel<D> {
    fn new(
        n: usize,
        width: usize,
        compat: f32,
        fill: impl Fn(usize, usize, usize, std::ops::Range<usize>, &mut [[f32; lattice::LANES]; lattice::MAX_D])
        + Sync,
    ) -> Self {
        let lattice = Lattice::<D>::build(n, width, fill);
        Kernel { lattice, compat }
    }
}

/// The Gaussian term: its regular lattice ([`grid`]) and Potts weight.
struct GaussKernel {
    grid: Grid,
    compat: f32,
}

impl GaussKernel {
    fn new(width: usize, height: usize, sxy: f32, compat: f32) -> Self {
        let t = std::time::Instant::now();
        let grid = Grid::new(width, height, sxy);
        if timing_requested() {
            tracing::info!("risk-crf grid d=2: build {:.3} s", t.elapsed().as_secs_f64());
        }
        GaussKernel { grid, compat }
    }
}

/// Bilateral features as pydensecrf's `DenseCRF2D::addPairwiseBilateral`: `int / float`
/// in float32, `[x/sxy, y/sxy, r/srgb, g/srgb, b/srgb]`. The quotients are looked up in
/// tables made once (the same bits as dividing each time).
struct BilateralFeatures<'a> {
    rgb: &'a [u8],
    /// `x / sxy` per column, `y / sxy` per row, `c / srgb` per 8-bit value.
    xs: Vec<f32>,
    ys: Vec<f32>,
    colour: [f32; 256],
}

impl<'a> BilateralFeatures<'a> {
    fn new(rgb: &'a [u8], width: usize, height: usize, sxy: f32, srgb: f32) -> Self {
        BilateralFeatures {
            rgb,
            xs: (0..width).map(|x| x as f32 / sxy).collect(),
            ys: (0..height).map(|y| y as f32 / sxy).collect(),
            colour: std::array::from_fn(|c| c as f32 / srgb),
        }
    }

    /// The `fill` of [`Lattice::build`]: pixels `i ..` from `(x, y)` along one row into
    /// `lanes` (slices taken once, so no bounds check per pixel).
    #[inline(always)]
    fn fill(
        &self,
        i: usize,
        x: usize,
        y: usize,
        lanes: std::ops::Range<usize>,
        f: &mut [[f32; lattice::LANES]; lattice::MAX_D],
    ) {
        const L: usize = lattice::LANES;
        let n = lanes.len();
        let yv = self.ys[y];
        if n == L {
            // A whole run in one row (the common case): fixed sizes, no bounds checks.
            let xs: &[f32; L] = self.xs[x..x + L].try_into().unwrap();
            let rgb: &[u8; 3 * L] = self.rgb[3 * i..3 * (i + L)].try_into().unwrap();
            f[0][..L].copy_from_slice(xs);
            f[1] = [yv; L];
            for p in 0..L {
                f[2][p] = self.colour[rgb[3 * p] as usize];
                f[3][p] = self.colour[rgb[3 * p + 1] as usize];
                f[4][p] = self.colour[rgb[3 * p + 2] as usize];
            }
            return;
        }
        let (xs, rgb) = (&self.xs[x..x + n], &self.rgb[3 * i..3 * (i + n)]);
        for (p, l) in lanes.enumerate() {
            f[0][l] = xs[p];
            f[1][l] = yv;
            f[2][l] = self.colour[rgb[3 * p] as usize];
            f[3][l] = self.colour[rgb[3 * p + 1] as usize];
            f[4][l] = self.colour[rgb[3 * p + 2] as usize];
        }
    }
}

/// The two kernels of one image, ready for mean-field inference.
struct DenseCrf {
    /// Label compatibility of both kernels.
    compat: LabelCompat,
    gauss: GaussKernel,
    bilat: Kernel<5>,
    isa: Isa,
}

/// Pixels per block in the fused pass (one softmax call, one slice/splat call per kernel):
/// one block of the bilateral lattice's stored weights.
const BLOCK: usize = lattice::WEIGHT_BLOCK;

/// Per-thread scratch of the fused pass.
struct Scratch {
    out_g: Vec<Value>,
    out_b: Vec<Value>,
    t: [Vec<f32>; 3],
    q: Vec<Value>,
    ids_g: Vec<u32>,
    w_g: Vec<f32>,
    norm_g: Vec<f32>,
    norm_b: Vec<f32>,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            out_g: vec![[0.0; 4]; BLOCK],
            out_b: vec![[0.0; 4]; BLOCK],
            t: [vec![0.0; BLOCK], vec![0.0; BLOCK], vec![0.0; BLOCK]],
            q: vec![[0.0; 4]; BLOCK],
            ids_g: vec![0; 3 * BLOCK],
            w_g: vec![0.0; 3 * BLOCK],
            norm_g: vec![0.0; BLOCK],
            norm_b: vec![0.0; BLOCK],
        }
    }
}

impl DenseCrf {
    fn new(rgb: &[u8], width: usize, height: usize, p: &CrfParams) -> Self {
        let n = width * height;
        // Features as pydensecrf's DenseCRF2D: `int / float` in float32.
        let (gs, bs, cs) = (p.gaussian_sxy, p.bilateral_sxy, p.bilateral_srgb);
        let gauss = GaussKernel::new(width, height, gs, p.gaussian_compat);
        let bfeat = BilateralFeatures::new(rgb, width, height, bs, cs);
        let bilat = Kernel::<5>::new(n, width, p.bilateral_compat, |i, x, y, lanes, f| {
            bfeat.fill(i, x, y, lanes, f)
        });
        DenseCrf {
            compat: p.compat,
            gauss,
            bilat,
            isa: Isa::detect(),
        }
    }

    /// Mean-field inference; `buf` (3, N): unary in, Q out.
    fn infer_in_place(&self, buf: &mut [f32], iterations: usize) {
        let n = buf.len() / LABELS;
        let threads = rayon::current_num_threads().max(1);
        let chunk = n.div_ceil(threads).div_ceil(BLOCK).max(1) * BLOCK;
        let parts = n.div_ceil(chunk);
        let (lg, mb) = (self.gauss.grid.len(), self.bilat.lattice.vertices);
        // Per-part splat targets (part 0's are the reduced "next" values), plus the blurred
        // "current" values that the next pass slices from.
        let mut next_g: Vec<Vec<Value>> = (0..parts).map(|_| vec![[0.0; 4]; lg]).collect();
        let mut next_b: Vec<Vec<Value>> = (0..parts).map(|_| vec![[0.0; 4]; mb + 1]).collect();
        let mut cur_g = vec![[0.0f32; 4]; lg];
        let mut cur_b = vec![[0.0f32; 4]; mb + 1];
        let grid = &self.gauss.grid;
        let bl = &self.bilat.lattice;
        let isa = self.isa;
        // Step 0 splats only the ones (lane 3) that give the normalisers; step 1 computes
        // Q = softmax(-U), steps 2.. the mean-field updates.
        for step in 0..=iterations + 1 {
            let (prep, first, last) = (step == 0, step == 1, step == iterations + 1);
            if !prep {
                reduce_and_blur(&mut next_g, &mut cur_g, 3, lg, |axis, src, dst| {
                    grid.blur(axis, src, dst)
                });
                reduce_and_blur(&mut next_b, &mut cur_b, 6, mb, |axis, src, dst| {
                    const VCHUNK: usize = 1 << 14;
                    dst[..mb].par_chunks_mut(VCHUNK).enumerate().for_each(|(c, out)| {
                        simd::blur(isa, src, &bl.neighbours, 6, axis, c * VCHUNK, out);
                    });
                });
            }
            let (p0, rest) = buf.split_at_mut(n);
            let (p1, p2) = rest.split_at_mut(n);
            p0.par_chunks_mut(chunk)
                .zip(p1.par_chunks_mut(chunk))
                .zip(p2.par_chunks_mut(chunk))
                .zip(next_g.par_iter_mut().zip(next_b.par_iter_mut()))
                .enumerate()
                .for_each(|(part, (((u0, u1), u2), (ng, nb)))| {
                    self.pass(
                        part * chunk,
                        [u0, u1, u2],
                        (&cur_g, &cur_b),
                        (ng, nb),
                        [prep, first, last],
                    );
                });
        }
    }

    /// One fused pass over the pixels `start..start + planes[0].len()`: slice the blurred
    /// messages (unless `first`), `Q = softmax(-U - compat terms)`, then splat `norm * Q` into
    /// this part's next values (unless `last`, where Q is written over the unary).
    fn pass(
        &self,
        start: usize,
        planes: [&mut [f32]; 3],
        cur: (&[Value], &[Value]),
        next: (&mut [Value], &mut [Value]),
        [prep, first, last]: [bool; 3],
    ) {
        let (g, b) = (&self.gauss, &self.bilat);
        let (ag, ab) = (1.0f32 / (1.0f32 + 2.0f32.powf(-2.0)), Lattice::<5>::alpha());
        let ((wg, mg), (wb, mb)) = (
            compat_terms(&self.compat, g.compat),
            compat_terms(&self.compat, b.compat),
        );
        let mut s = Scratch::new();
        let len = planes[0].len();
        let [u0, u1, u2] = planes;
        for k0 in (0..len).step_by(BLOCK) {
            let bl = BLOCK.min(len - k0);
            let i0 = start + k0;
            g.grid.simplices(i0, &mut s.ids_g[..bl * 3], &mut s.w_g[..bl * 3]);
            let (ids_g, wgt_g) = (&s.ids_g[..bl * 3], &s.w_g[..bl * 3]);
            let ids_b = &b.lattice.ids()[i0 * 6..(i0 + bl) * 6];
            // Blocks start at multiples of BLOCK = WEIGHT_BLOCK: one block of the stored weights.
            let wgt_b = &b.lattice.weights()[i0 * 6..(i0 + bl) * 6];
            if prep {
                s.q[..bl].fill([0.0, 0.0, 0.0, 1.0]);
                // SAFETY: lattice ids are below its vertex count (checked at its build), grid
                // ids are clamped into the grid; the value buffers hold those many entries.
                unsafe { simd::scatter_unchecked::<3>(self.isa, next.0, ids_g, wgt_g, &s.q[..bl]) };
                // SAFETY: lattice ids are below its vertex count (checked at its build), grid
                // ids are clamped into the grid; the value buffers hold those many entries.
                unsafe { simd::scatter_unchecked::<6>(self.isa, next.1, ids_b, wgt_b, &s.q[..bl]) };
                continue;
            }
            // SAFETY: lattice ids are below its vertex count (checked at its build), grid
            // ids are clamped into the grid; the value buffers hold those many entries.
            unsafe { simd::gather_unchecked::<3>(self.isa, cur.0, ids_g, wgt_g, ag, &mut s.out_g[..bl]) };
            // SAFETY: lattice ids are below its vertex count (checked at its build), grid
            // ids are clamped into the grid; the value buffers hold those many entries.
            unsafe { simd::gather_unchecked::<6>(self.isa, cur.1, ids_b, wgt_b, ab, &mut s.out_b[..bl]) };
            if let Some(m) = &mg {
                mix_labels(m, &mut s.out_g[..bl]);
            }
            if let Some(m) = &mb {
                mix_labels(m, &mut s.out_b[..bl]);
            }
            // norm = 1/sqrt(K·1 + 1e-20), K·1 from lane 3 of the slices; the energies
            // tmp = -U; tmp -= (-w_g) * (norm_g * K_g); tmp -= (-w_b) * (norm_b * K_b)
            // (with a compatibility matrix M: tmp -= norm * M K, factor 1).
            let inputs = simd::EnergyInputs {
                out: [&s.out_g[..bl], &s.out_b[..bl]],
                u: [&u0[k0..k0 + bl], &u1[k0..k0 + bl], &u2[k0..k0 + bl]],
                w: [wg, wb],
                first,
            };
            simd::energies(self.isa, &inputs, &mut s.t, [&mut s.norm_g, &mut s.norm_b]);
            simd::softmax3(self.isa, &mut s.t, bl);
            if last {
                u0[k0..k0 + bl].copy_from_slice(&s.t[0][..bl]);
                u1[k0..k0 + bl].copy_from_slice(&s.t[1][..bl]);
                u2[k0..k0 + bl].copy_from_slice(&s.t[2][..bl]);
                continue;
            }
            simd::weighted_q(self.isa, &s.t, &s.norm_g, &mut s.q[..bl]);
            // SAFETY: lattice ids are below its vertex count (checked at its build), grid
            // ids are clamped into the grid; the value buffers hold those many entries.
            unsafe { simd::scatter_unchecked::<3>(self.isa, next.0, ids_g, wgt_g, &s.q[..bl]) };
            simd::weighted_q(self.isa, &s.t, &s.norm_b, &mut s.q[..bl]);
            // SAFETY: lattice ids are below its vertex count (checked at its build), grid
            // ids are clamped into the grid; the value buffers hold those many entries.
            unsafe { simd::scatter_unchecked::<6>(self.isa, next.1, ids_b, wgt_b, &s.q[..bl]) };
        }
    }
}

/// Sums the per-part splats into part 0, blurs along `axes` axes with `blur_axis(axis, src,
/// dst)` (ping-pong between part 0 and `cur`), leaves the result in `cur` and zeroes every
/// part for the next splat. `m`: values that the splat writes (the rest stay zero).
fn reduce_and_blur(
    parts: &mut [Vec<Value>],
    cur: &mut Vec<Value>,
    axes: usize,
    m: usize,
    blur_axis: impl Fn(usize, &[Value], &mut [Value]),
) {
    const VCHUNK: usize = 1 << 14;
    let (head, tail) = parts.split_at_mut(1);
    let acc = &mut head[0];
    if !tail.is_empty() {
        acc[..m].par_chunks_mut(VCHUNK).enumerate().for_each(|(c, dst)| {
            for other in tail.iter() {
                for (d, s) in dst.iter_mut().zip(&other[c * VCHUNK..]) {
                    for l in 0..4 {
                        d[l] += s[l];
                    }
                }
            }
        });
    }
    let mut in_cur = false;
    for axis in 0..axes {
        if in_cur {
            blur_axis(axis, cur, acc);
        } else {
            blur_axis(axis, acc, cur);
        }
        in_cur = !in_cur;
    }
    if !in_cur {
        std::mem::swap(acc, cur);
    }
    for p in parts.iter_mut() {
        p[..m].par_chunks_mut(VCHUNK).for_each(|c| c.fill([0.0; 4]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_finite_value_is_named_by_pixel_and_class() {
        // 300 x 200 pixels, 180,000 values: several scan chunks.
        let (w, h) = (300, 200);
        let n = w * h;
        for (class, x, y, v) in [
            (0, 0, 0, f32::NAN),
            (1, 5, 2, f32::INFINITY),
            (2, 299, 199, f32::NEG_INFINITY),
            (2, 17, 150, f32::NAN),
        ] {
            let mut buf = vec![0.5f32; 3 * n];
            buf[class * n + y * w + x] = v;
            // A later bad value (last pixel of the last class) is not the one reported.
            if (class, x, y) != (2, 299, 199) {
                buf[3 * n - 1] = f32::NAN;
            }
            match unary_from_probs_in_place(&mut buf, w, h) {
                Err(CrfError::NotFinite {
                    what,
                    x: ex,
                    y: ey,
                    class: ec,
                    value,
                }) => {
                    assert_eq!((what, ex, ey, ec), ("probabilities", x, y, class));
                    assert_eq!(value.to_bits(), v.to_bits());
                }
                other => panic!("expected NotFinite at ({x}, {y}) class {class}, got {other:?}"),
            }
        }
        // Extremes that are finite pass.
        let mut ok = vec![f32::MAX; 3 * n];
        ok[1] = f32::MIN;
        ok[2] = -0.0;
        ok[3] = f32::from_bits(1); // smallest subnormal
        assert!(check_finite("x", &ok, w, h).is_ok());
    }

    #[test]
    fn labels_take_the_first_largest_class() {
        // More pixels than one scan chunk; five patterns, ties resolved to the first class
        // as numpy.argmax does.
        let n = 3 * SCAN_CHUNK / 2 + 7;
        let pattern = [
            ([0.2, 0.5, 0.3], 1u8),
            ([0.4, 0.4, 0.2], 0),
            ([0.1, 0.45, 0.45], 1),
            ([0.3, 0.3, 0.4], 2),
            ([0.6, 0.2, 0.2], 0),
        ];
        let mut q = vec![0f32; 3 * n];
        for i in 0..n {
            for c in 0..3 {
                q[c * n + i] = pattern[i % 5].0[c];
            }
        }
        let labels = labels_from_q(&q, n);
        assert_eq!(labels.len(), n);
        assert!(labels.iter().enumerate().all(|(i, &l)| l == pattern[i % 5].1));
    }
}
