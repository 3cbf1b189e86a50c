//! Permutohedral lattice (Adams, Baek & Davis 2010) exactly as pydensecrf 1.0rc3 builds it
//! (`Permutohedral::init`, SSE path) and filters with it (`Permutohedral::compute`).
//!
//! Each pixel's feature vector (D dimensions) is elevated onto the hyperplane of the
//! (D+1)-dimensional lattice, its enclosing simplex found (closest remainder-0 point and
//! ranks), and its D+1 barycentric weights computed; the simplex vertices are the
//! lattice points that carry values. Filtering is splat (pixels -> vertices), blur
//! (`[1/2, 1, 1/2]` along each of the D+1 lattice axes, double-buffered) and slice
//! (vertices -> pixels, scaled by `alpha = 1 / (1 + 2^-D)`).
//!
//! Differences from pydensecrf that do not change results:
//! - keys are `i32` (pydensecrf: `short`), so no overflow for any raster size;
//! - per pixel the D+1 vertex ids (u32) and the D+1 barycentric weights (f32) are stored,
//!   8(D+1) bytes (pydensecrf: 4 bytes per key component and 8 per vertex): the weights
//!   are computed once at the end of the build ([`barys`], 8 pixels at a time in `lanes`:
//!   scalar lanes as the reference, AVX2 intrinsics where the CPU has them, the same bits as
//!   [`embed`] either way; the weights come from the rank permutation, one select per rank,
//!   instead of (D+1)(D+2) masked adds), so that no filtering pass recomputes them.
//!   (Storing only vertex 0 and walking "+1" blur neighbours to the others saves 20 bytes
//!   per pixel for the bilateral kernel but costs D dependent cache misses per pixel and
//!   pass: measured 3x slower, so not done.)
//! - the build runs in parallel over row bands (band-local hash tables merged in band
//!   order, one wave of bands at a time so that few band tables are alive; the merge and
//!   the neighbour lookups prefetch their probes a few keys ahead); vertex numbering
//!   differs, which pydensecrf's own notes show is irrelevant;
//! - vertex values are 4 floats (the SSE width pydensecrf uses too); vertex `M` is an
//!   always-zero stand-in for missing blur neighbours.
//!
//! The Gaussian kernel (D = 2, features `[x/sxy, y/sxy]`) does not use this module's
//! hashed lattice at run time: its lattice is a regular grid ([`super::grid`]).
//!
//! The lattice depends only on the image, so it is built once and reused for every
//! mean-field iteration.
//!
//! Files: this one holds the lattice (the per-pixel reference [`embed`], the key table,
//! the parallel build, splat/blur/slice); `lanes` holds the 8-lane kernels the build and
//! the passes run (weights and vertex keys, scalar lanes and AVX2), private but for the
//! lane width, [`MAX_D`] and [`barys`], which `grid` and `mean_field` use too. The tests
//! below compare the kernels with [`embed`].

use std::ops::Range;

use rayon::prelude::*;

use super::simd;

mod lanes;

#[cfg(target_arch = "x86_64")]
use lanes::avx2;
use lanes::barys;
#[cfg(test)]
pub use lanes::per_pixel;
pub use lanes::{LANES, MAX_D};
use lanes::{fill_lanes, keys_lanes};

/// Simplex of one pixel: closest remainder-0 point, ranks and barycentric weights.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg(test)]
pub struct Simplex<const D: usize> {
    /// Remainder-0 lattice point, components 0..=D (only the first D are keys).
    pub rem0: [i32; MAX_D + 1],
    /// Rank of each elevated component, 0..=D.
    pub rank: [u8; MAX_D + 1],
    /// Barycentric weight of simplex vertex r, r = 0..=D.
    pub bary: [f32; MAX_D + 1],
}

/// Scale factors `float(1/sqrt((i+2)(i+1)) * inv_std)` with `inv_std = float(sqrt(2/3)(D+1))`.
pub fn scale_factors<const D: usize>() -> [f32; D] {
    let inv_std = ((2.0f64 / 3.0).sqrt() * (D as f64 + 1.0)) as f32;
    std::array::from_fn(|i| (1.0 / (((i + 2) * (i + 1)) as f64).sqrt() * inv_std as f64) as f32)
}

/// Step 2 of `docs/pydensecrf.md` ("Building the lattice"), shared by [`embed`] and [`bary_of`]: elevates a scaled
/// feature vector onto the hyperplane, `E[j] = sm - j * cf` where `sm` accumulates
/// `cf = f[j-1] * scale[j-1]` for `j = D..1`, and `E[0] = sm`.
#[inline(always)]
#[cfg(test)]
fn elevate<const D: usize>(f: &[f32; D], scale: &[f32; D]) -> [f32; MAX_D + 1] {
    let mut e = [0f32; MAX_D + 1];
    let mut sm = 0f32;
    for j in (1..=D).rev() {
        let cf = f[j - 1] * scale[j - 1];
        e[j] = sm - j as f32 * cf;
        sm += cf;
    }
    e[0] = sm;
    e
}

/// Embeds one feature vector: the scalar reference of `Permutohedral::init` (SSE path),
/// steps 2 to 5 of `docs/pydensecrf.md` ("Building the lattice").
#[inline]
#[cfg(test)]
pub fn embed<const D: usize>(f: &[f32; D], scale: &[f32; D]) -> Simplex<D> {
    let dp1 = (D + 1) as f32;
    let down = 1.0f32 / dp1;
    let e = elevate(f, scale);
    // Closest remainder-0 point (round half to even, as _mm_cvtps_epi32).
    let mut rem0 = [0f32; MAX_D + 1];
    let mut sum = 0f32;
    for i in 0..=D {
        let v = round_half_even(e[i] * down);
        rem0[i] = v * dp1;
        sum += v;
    }
    // Ranks of the differences to the remainder-0 point.
    let mut rank = [0f32; MAX_D + 1];
    for i in 0..D {
        let di = e[i] - rem0[i];
        for j in i + 1..=D {
            if di < e[j] - rem0[j] {
                rank[i] += 1.0;
            } else {
                rank[j] += 1.0;
            }
        }
    }
    for i in 0..=D {
        rank[i] += sum;
        if rank[i] < 0.0 {
            rank[i] += dp1;
            rem0[i] += dp1;
        } else if rank[i] >= dp1 {
            rank[i] -= dp1;
            rem0[i] -= dp1;
        }
    }
    // Barycentric coordinates.
    let mut b = [0f32; MAX_D + 2];
    let mut ranks = [0u8; MAX_D + 1];
    let mut rem0i = [0i32; MAX_D + 1];
    for i in 0..=D {
        let r = rank[i] as usize;
        ranks[i] = r as u8;
        rem0i[i] = rem0[i] as i32;
        let v = (e[i] - rem0[i]) * down;
        b[D - r] += v;
        b[D - r + 1] -= v;
    }
    b[0] += 1.0 + b[D + 1];
    let mut bary = [0f32; MAX_D + 1];
    bary[..=D].copy_from_slice(&b[..=D]);
    Simplex {
        rem0: rem0i,
        rank: ranks,
        bary,
    }
}

/// The barycentric weights of [`embed`] alone, written without branches or indexed
/// stores so that a loop over pixels vectorises ([`barys`]); equal to `embed(f).bary`
/// bit for bit (`tests` below).
#[inline(always)]
#[cfg(test)]
pub fn bary_of<const D: usize>(f: &[f32; D], scale: &[f32; D]) -> [f32; MAX_D + 1] {
    let dp1 = (D + 1) as f32;
    let down = 1.0f32 / dp1;
    let e = elevate(f, scale);
    let mut rem0 = [0f32; MAX_D + 1];
    let mut sum = 0i32;
    for i in 0..=D {
        let v = (e[i] * down).round_ties_even();
        rem0[i] = v * dp1;
        sum += v as i32;
    }
    let mut rank = [0i32; MAX_D + 1];
    for i in 0..D {
        let di = e[i] - rem0[i];
        for j in i + 1..=D {
            let lt = (di < e[j] - rem0[j]) as i32;
            rank[i] += lt;
            rank[j] += 1 - lt;
        }
    }
    for i in 0..=D {
        let r = rank[i] + sum;
        let fix = (r < 0) as i32 - (r > D as i32) as i32;
        rank[i] = r + fix * (D as i32 + 1);
        rem0[i] += fix as f32 * dp1;
    }
    let mut b = [0f32; MAX_D + 2];
    for i in 0..=D {
        let v = (e[i] - rem0[i]) * down;
        for (k, bk) in b.iter_mut().enumerate().take(D + 2) {
            *bk += if rank[i] == D as i32 - k as i32 { v } else { 0.0 };
            *bk -= if rank[i] == D as i32 - k as i32 + 1 {
                v
            } else {
                0.0
            };
        }
    }
    b[0] += 1.0 + b[D + 1];
    let mut out = [0f32; MAX_D + 1];
    out[..=D].copy_from_slice(&b[..=D]);
    out
}

#[cfg(test)]
impl<const D: usize> Simplex<D> {
    /// Key (first D components) of simplex vertex `r`.
    #[inline]
    pub fn key(&self, r: usize) -> [i32; D] {
        std::array::from_fn(|i| {
            let c = if (self.rank[i] as usize) <= D - r {
                r as i32
            } else {
                r as i32 - (D as i32 + 1)
            };
            self.rem0[i] + c
        })
    }
}

/// Round half to even (as `_mm_cvtps_epi32` in the default rounding mode) without a libm
/// call: adding and subtracting 1.5 * 2^23 rounds exactly for |x| < 2^22.
#[inline(always)]
#[cfg(test)]
fn round_half_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    if x.abs() < 4_194_304.0 {
        (x + MAGIC) - MAGIC
    } else {
        x.round_ties_even()
    }
}

/// Open-addressing hash table from lattice keys to dense vertex ids (insertion order).
/// Keys are stored in the slots themselves, so a probe touches one cache line.
pub struct KeyTable<const D: usize> {
    keys: Vec<[i32; D]>,
    slots: Vec<([i32; D], u32)>,
}

const EMPTY: u32 = u32::MAX;

#[inline]
fn hash_key<const D: usize>(key: &[i32; D]) -> u64 {
    const MUL: [u64; MAX_D] = [
        0x9E37_79B9_7F4A_7C15,
        0xC2B2_AE3D_27D4_EB4F,
        0x1656_67B1_9E37_79F9,
        0x27D4_EB2F_1656_67C5,
        0x94D0_49BB_1331_11EB,
    ];
    let mut h = 0u64;
    for (k, m) in key.iter().zip(MUL) {
        h = h.wrapping_add((*k as u32 as u64).wrapping_mul(m));
    }
    // murmur3 fmix64: every key bit reaches the low bits used as the slot index.
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

impl<const D: usize> KeyTable<D> {
    pub fn with_capacity(n: usize) -> Self {
        let cap = (n.max(8) * 2).next_power_of_two();
        KeyTable {
            keys: Vec::with_capacity(n),
            slots: vec![([0; D], EMPTY); cap],
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Keys by id.
    pub fn keys(&self) -> &[[i32; D]] {
        &self.keys
    }

    /// Starts loading the slot where a probe for `key` begins: large tables miss the caches
    /// on almost every probe, so the merge and neighbour passes prefetch a few keys ahead.
    #[inline]
    pub fn prefetch(&self, key: &[i32; D]) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let s = hash_key(key) as usize & (self.slots.len() - 1);
            // SAFETY: `s` is a slot index; prefetching never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(self.slots.as_ptr().add(s) as *const i8) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    #[inline]
    pub fn find(&self, key: &[i32; D]) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut s = hash_key(key) as usize & mask;
        loop {
            let (k, id) = &self.slots[s];
            if *id == EMPTY {
                return None;
            }
            if k == key {
                return Some(*id);
            }
            s = (s + 1) & mask;
        }
    }

    #[inline]
    pub fn find_or_insert(&mut self, key: &[i32; D]) -> u32 {
        if (self.keys.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut s = hash_key(key) as usize & mask;
        loop {
            let (k, id) = &self.slots[s];
            if *id == EMPTY {
                let new = self.keys.len() as u32;
                self.keys.push(*key);
                self.slots[s] = (*key, new);
                return new;
            }
            if k == key {
                return *id;
            }
            s = (s + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        self.slots = vec![([0; D], EMPTY); cap];
        let mask = cap - 1;
        for (id, key) in self.keys.iter().enumerate() {
            let mut s = hash_key(key) as usize & mask;
            while self.slots[s].1 != EMPTY {
                s = (s + 1) & mask;
            }
            self.slots[s] = (*key, id as u32);
        }
    }
}

/// Pixels per block of the stored barycentric weights ([`Lattice::weights`]).
pub const WEIGHT_BLOCK: usize = 64;

/// The barycentric weights of `n` pixels ([`barys`] block by block), stored by the build
/// so that no filtering pass recomputes them.
fn stored_weights<const D: usize, F>(n: usize, width: usize, scale: &[f32; D], fill: &F) -> Vec<f32>
where
    F: Fn(usize, usize, usize, Range<usize>, &mut [[f32; LANES]; MAX_D]) + Sync,
{
    const BLOCKS_PER_ITEM: usize = 256;
    let block = WEIGHT_BLOCK * (D + 1);
    let mut weights = vec![0f32; n * (D + 1)];
    weights
        .par_chunks_mut(block * BLOCKS_PER_ITEM)
        .enumerate()
        .for_each(|(c, item)| {
            for (b, w) in item.chunks_mut(block).enumerate() {
                barys::<D, _>((c * BLOCKS_PER_ITEM + b) * WEIGHT_BLOCK, width, w, scale, fill);
            }
        });
    weights
}

/// A built lattice for one kernel over a `width x height` pixel grid.
pub struct Lattice<const D: usize> {
    /// Simplex vertex ids per pixel, (N, D+1), every one below `vertices` (checked at the
    /// end of the build; [`Lattice::ids`] hands them to the unchecked kernels).
    ids: Vec<u32>,
    /// Barycentric weights per pixel, in blocks of [`WEIGHT_BLOCK`] pixels, r-major within
    /// a block ([`Lattice::weights`]).
    weights: Vec<f32>,
    /// Blur neighbours `[n1, n2]` per vertex and axis, (M, D+1); `M` = missing (zero vertex).
    pub neighbours: Vec<[u32; 2]>,
    /// Number of lattice vertices M.
    pub vertices: usize,
}

impl<const D: usize> Lattice<D> {
    /// Builds the lattice for the `n` pixels of an image `width` pixels wide; `fill` writes
    /// features into lanes as for [`barys`] ([`per_pixel`] makes one from a per-pixel
    /// function). Runs in parallel over contiguous pixel ranges.
    pub fn build<F>(n: usize, width: usize, fill: F) -> Self
    where
        F: Fn(usize, usize, usize, Range<usize>, &mut [[f32; LANES]; MAX_D]) + Sync,
    {
        let width = width.max(1);
        let t_start = std::time::Instant::now();
        let scale = scale_factors::<D>();
        let threads = rayon::current_num_threads().max(1);
        // Small bands keep each band's hash table in L2 (most lookups of a band hit a few
        // thousand vertices); the merge pays for the vertices that bands share.
        let chunk = n.div_ceil(threads * 4).clamp(1, 65_536);
        let mut ids = vec![0u32; n * (D + 1)];
        // Bands are built in waves of a few per thread, each wave merged into the global
        // table (band order) and dropped at once: only one wave of band tables is alive,
        // and the global table grows to the vertex count (not to the sum over bands).
        let mut global = KeyTable::<D>::with_capacity(n / 16);
        let keys_of =
            |f: &[[f32; LANES]; MAX_D], scale: &[f32; D], keys: &mut [[[i32; LANES]; MAX_D]; MAX_D + 1]| {
                #[cfg(target_arch = "x86_64")]
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked).
                    return unsafe { avx2::keys8::<D>(f, scale, keys) };
                }
                keys_lanes::<D>(f, scale, keys)
            };
        let mut t_local = std::time::Duration::ZERO;
        let wave = chunk * threads * 2;
        for (w, ids) in ids.chunks_mut(wave * (D + 1)).enumerate() {
            let t = std::time::Instant::now();
            // Band-local tables; `ids` holds band-local ids.
            let locals: Vec<KeyTable<D>> = ids
                .par_chunks_mut(chunk * (D + 1))
                .enumerate()
                .map(|(c, ids)| {
                    let first = w * wave + c * chunk;
                    let len = ids.len() / (D + 1);
                    let mut table = KeyTable::<D>::with_capacity(len / 4);
                    let (mut x, mut y) = (first % width, first / width);
                    let mut fl = [[0f32; LANES]; MAX_D];
                    let mut keys = [[[0i32; LANES]; MAX_D]; MAX_D + 1];
                    // The previous pixel's vertices: a neighbour mostly has the same simplex,
                    // so vertex r is mostly the previous pixel's vertex r.
                    let mut prev: [([i32; D], u32); MAX_D + 1] = [([i32::MIN; D], 0); MAX_D + 1];
                    for k in 0..len {
                        let l = k % LANES;
                        if l == 0 {
                            // Keys of the next LANES pixels at once (vectorised).
                            let run = LANES.min(len - k);
                            fill_lanes(first + k, width, (&mut x, &mut y), run, &fill, &mut fl);
                            keys_of(&fl, &scale, &mut keys);
                        }
                        for r in 0..=D {
                            let key: [i32; D] = std::array::from_fn(|i| keys[r][i][l]);
                            if prev[r].0 != key {
                                prev[r] = (key, table.find_or_insert(&key));
                            }
                            ids[k * (D + 1) + r] = prev[r].1;
                        }
                    }
                    table
                })
                .collect();
            t_local += t.elapsed();
            // Merge in band order, then map the band-local ids to global ones.
            const AHEAD: usize = 8;
            let remaps: Vec<Vec<u32>> = locals
                .iter()
                .map(|t| {
                    let keys = t.keys();
                    // A growth in between only wastes a few prefetches.
                    keys.iter().take(AHEAD).for_each(|k| global.prefetch(k));
                    (0..keys.len())
                        .map(|q| {
                            if let Some(k) = keys.get(q + AHEAD) {
                                global.prefetch(k);
                            }
                            global.find_or_insert(&keys[q])
                        })
                        .collect()
                })
                .collect();
            drop(locals);
            ids.par_chunks_mut(chunk * (D + 1))
                .zip(remaps.par_iter())
                .for_each(|(ids, remap)| {
                    for v in ids {
                        *v = remap[*v as usize];
                    }
                });
        }
        let t_embed = t_start + t_local;
        let t_merge = std::time::Instant::now();
        // Pass 3: blur neighbours of every vertex along every axis.
        let m = global.len();
        let mut neighbours = vec![[0u32; 2]; m * (D + 1)];
        // The 2 (D+1) neighbour keys of a vertex: `key ± ((D+1) e_j - 1)`, all ±1 along
        // the last axis (j = D).
        let neighbour_keys = |key: &[i32; D]| -> [[[i32; D]; 2]; MAX_D + 1] {
            let mut out = [[[0i32; D]; 2]; MAX_D + 1];
            for j in 0..=D {
                let mut n1 = key.map(|c| c - 1);
                let mut n2 = key.map(|c| c + 1);
                if j < D {
                    n1[j] = key[j] + D as i32;
                    n2[j] = key[j] - D as i32;
                }
                out[j] = [n1, n2];
            }
            out
        };
        // Vertices in groups: the group's neighbour slots are prefetched, then probed.
        const GROUP: usize = 4;
        neighbours
            .par_chunks_mut(GROUP * (D + 1))
            .enumerate()
            .for_each(|(g, nb)| {
                let v0 = g * GROUP;
                let count = nb.len() / (D + 1);
                let mut keys = [[[[0i32; D]; 2]; MAX_D + 1]; GROUP];
                for (c, k) in keys.iter_mut().enumerate().take(count) {
                    *k = neighbour_keys(&global.keys()[v0 + c]);
                    for pair in &k[..=D] {
                        global.prefetch(&pair[0]);
                        global.prefetch(&pair[1]);
                    }
                }
                let f = |k: &[i32; D]| global.find(k).unwrap_or(m as u32);
                for (c, k) in keys.iter().enumerate().take(count) {
                    for j in 0..=D {
                        nb[c * (D + 1) + j] = [f(&k[j][0]), f(&k[j][1])];
                    }
                }
            });
        drop(global);
        let t_weights = std::time::Instant::now();
        let weights = stored_weights::<D, _>(n, width, &scale, &fill);
        if super::diag::timing_requested() {
            tracing::info!(
                "risk-crf lattice d={D}: embed+local {:.3} s, merge {:.3} s, neighbours {:.3} s, weights {:.3} s",
                (t_embed - t_start).as_secs_f64(),
                (t_merge - t_embed).as_secs_f64(),
                (t_weights - t_merge).as_secs_f64(),
                t_weights.elapsed().as_secs_f64()
            );
        }
        // The kernels index vertex values by these ids without bounds checks.
        assert!(
            ids.is_empty() || simd::max_id(&ids) < m,
            "lattice ids out of range"
        );
        Lattice {
            ids,
            weights,
            neighbours,
            vertices: m,
        }
    }

    /// Simplex vertex ids of all pixels, (N, D+1); each is below [`Lattice::vertices`].
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Barycentric weights of all pixels: for the block of pixels `i0 .. i0 + len` (`i0` a
    /// multiple of [`WEIGHT_BLOCK`], `len` up to [`WEIGHT_BLOCK`], shorter only at the end),
    /// `weights()[i0 * (D+1) ..][r * len + k]` is the weight of simplex vertex r of pixel
    /// `i0 + k`: the layout [`barys`] writes and the kernels of [`super::simd`] read.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Vertex ids of pixel `i`'s simplex.
    #[inline]
    #[cfg(test)]
    pub fn simplex_ids(&self, i: usize) -> &[u32] {
        &self.ids[i * (D + 1)..(i + 1) * (D + 1)]
    }

    /// `alpha = 1 / (1 + 2^-D)` as pydensecrf computes it (float).
    pub fn alpha() -> f32 {
        1.0f32 / (1.0f32 + 2.0f32.powf(-(D as f32)))
    }

    /// Filters one channel exactly as pydensecrf's scalar path (value size 1):
    /// splat `in`, blur axes 0..=D, slice with `(b * V) * alpha`. Used for the normaliser;
    /// `features` as given to [`Lattice::build`].
    #[cfg(test)]
    pub fn filter_scalar(
        &self,
        input: &[f32],
        features: impl Fn(usize) -> [f32; D] + Copy + Sync,
    ) -> Vec<f32> {
        const B: usize = 256;
        let m = self.vertices;
        let scale = scale_factors::<D>();
        let mut vals = vec![0f32; m + 1];
        let mut w = vec![0f32; B * (D + 1)];
        for i0 in (0..input.len()).step_by(B) {
            let len = B.min(input.len() - i0);
            barys::<D, _>(i0, 0, &mut w[..len * (D + 1)], &scale, per_pixel(features));
            for k in 0..len {
                let ids = self.simplex_ids(i0 + k);
                for r in 0..=D {
                    vals[ids[r] as usize] += w[r * len + k] * input[i0 + k];
                }
            }
        }
        let mut tmp = vec![0f32; m + 1];
        for j in 0..=D {
            for v in 0..m {
                let [n1, n2] = self.neighbours[v * (D + 1) + j];
                tmp[v] = vals[v] + 0.5 * (vals[n1 as usize] + vals[n2 as usize]);
            }
            std::mem::swap(&mut vals, &mut tmp);
        }
        let alpha = Self::alpha();
        let mut out = vec![0f32; input.len()];
        out.par_chunks_mut(B).enumerate().for_each(|(c, out)| {
            let mut w = [0f32; B * (MAX_D + 1)];
            barys::<D, _>(
                c * B,
                0,
                &mut w[..out.len() * (D + 1)],
                &scale,
                per_pixel(features),
            );
            let len = out.len();
            for (k, o) in out.iter_mut().enumerate() {
                let ids = self.simplex_ids(c * B + k);
                let mut acc = 0f32;
                for r in 0..=D {
                    acc += (w[r * len + k] * vals[ids[r] as usize]) * alpha;
                }
                *o = acc;
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel build gives the same simplices as one sequential hash table, up to a
    /// renumbering of the vertices, and the same blur neighbourhoods.
    #[test]
    fn parallel_build_matches_sequential_table() {
        let (w, h) = (301usize, 97usize);
        let feat = |i: usize, f: &mut [f32; 5]| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            *f = [
                x / 7.0,
                y / 7.0,
                ((x * 13.0 + y * 7.0) % 255.0) / 13.0,
                (x * y % 200.0) / 13.0,
                3.0,
            ];
        };
        let lat = Lattice::<5>::build(
            w * h,
            w,
            per_pixel(|i| {
                let mut f = [0f32; 5];
                feat(i, &mut f);
                f
            }),
        );
        let scale = scale_factors::<5>();
        let mut table = KeyTable::<5>::with_capacity(16);
        let mut to_lat = Vec::new();
        let mut f = [0f32; 5];
        for i in 0..w * h {
            feat(i, &mut f);
            let s = embed::<5>(&f, &scale);
            assert_eq!(bary_of::<5>(&f, &scale), s.bary);
            let mut b = [0f32; 6];
            barys::<5, _>(
                i,
                w,
                &mut b,
                &scale,
                per_pixel(|i| {
                    let mut f = [0f32; 5];
                    feat(i, &mut f);
                    f
                }),
            );
            assert_eq!(b[..], s.bary[..6]);
            // The stored weights: the same bits, in their block layout.
            let (b0, k) = (i / WEIGHT_BLOCK * WEIGHT_BLOCK, i % WEIGHT_BLOCK);
            let len = WEIGHT_BLOCK.min(w * h - b0);
            for r in 0..=5 {
                assert_eq!(
                    lat.weights()[b0 * 6 + r * len + k],
                    s.bary[r],
                    "pixel {i} weight {r}"
                );
            }
            // A block of 37 pixels from here (across rows, r-major): the same weights.
            if i % 997 == 0 && i + 37 <= w * h {
                let mut block = [0f32; 6 * 37];
                // The runs handed to `fill` stay in one row and start at (x, y) of pixel i.
                barys::<5, _>(i, w, &mut block, &scale, |i, x, y, lanes, fl| {
                    assert!(x + lanes.len() <= w && (x, y) == (i % w, i / w));
                    for (p, l) in lanes.enumerate() {
                        let mut f = [0f32; 5];
                        feat(i + p, &mut f);
                        for j in 0..5 {
                            fl[j][l] = f[j];
                        }
                    }
                });
                for k in 0..37 {
                    let mut f = [0f32; 5];
                    feat(i + k, &mut f);
                    let e = embed::<5>(&f, &scale);
                    for r in 0..6 {
                        assert_eq!(block[r * 37 + k], e.bary[r], "pixel {} vertex {r}", i + k);
                    }
                }
            }
            for r in 0..=5 {
                let id = table.find_or_insert(&s.key(r)) as usize;
                if id == to_lat.len() {
                    to_lat.push(lat.ids[i * 6 + r]);
                }
                assert_eq!(to_lat[id], lat.ids[i * 6 + r], "pixel {i} vertex {r}");
            }
        }
        assert_eq!(table.len(), lat.vertices);
        // Neighbours of the sequential vertex v along axis 0, mapped, equal the lattice's.
        for (v, key) in table.keys().iter().enumerate() {
            let mut n2 = key.map(|c| c + 1);
            n2[0] = key[0] - 5;
            let want = table
                .find(&n2)
                .map_or(lat.vertices as u32, |id| to_lat[id as usize]);
            assert_eq!(lat.neighbours[to_lat[v] as usize * 6][1], want);
        }
    }
}
