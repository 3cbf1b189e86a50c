//! Fully connected CRF post-processing (Kraehenbuehl & Koltun 2011) computed as
//! pydensecrf 1.0rc3 computes it, multi-threaded and SIMD-accelerated.
//!
//! Model, for 3 ordinal labels over an image of N = W x H pixels:
//! - unary `U = -ln(clip(p, 1e-5, 1))` from the blended class probabilities;
//! - a Gaussian kernel on `[x/sxy, y/sxy]` and a bilateral kernel on
//!   `[x/sxy, y/sxy, r/srgb, g/srgb, b/srgb]`, both `NORMALIZE_SYMMETRIC`
//!   (`norm ⊙ K(norm ⊙ Q)` with `norm = 1/sqrt(K·1)`), self term included;
//! - Potts compatibilities (`-w * message`), or a 3x3 label compatibility matrix
//!   ([`LabelCompat`]: `ordinal` costs `w |i - j|`); Jacobi mean-field updates
//!   `Q <- softmax(-U + w_g Kn_g Q + w_b Kn_b Q)` (Potts; with a matrix `M_k`:
//!   `softmax(-U - M_g Kn_g Q - M_b Kn_b Q)`), starting from `softmax(-U)`.
//!
//! The files, each one stage:
//! - `params`: what the CRF is asked to do ([`CrfParams`], its presets `default` (source
//!   V2) and `enhanced` (source V2.5), [`LabelCompat`]);
//! - `mean_field`: the inference on one image ([`dense_crf`], [`dense_crf_in_place`]) and
//!   the label read-out ([`labels_from_q`], [`class_shares`]);
//! - `tiled`: the one tiled driver for rasters too large for one run ([`tile_plan`] cuts
//!   cores plus a halo, [`run_tiles`] runs them with the caller reading each tile's inputs
//!   and keeping its core through [`TileIo`]; [`dense_crf_tiled`] is it over arrays in
//!   memory, as `risk-crf` runs it; `risk-infer`'s CRF pass runs it over rasters);
//! - `stretch`: [`BandStretch`], the 2-98 percentile stretch of 3 bands of any pixel type
//!   to the 8-bit colour space of the bilateral kernel;
//! - `grid` and `lattice`: the permutohedral lattices, built once per image in parallel
//!   and reused by every iteration: for the Gaussian kernel a regular grid without hashing
//!   or per-pixel state (its simplices are recomputed in every pass), for the bilateral
//!   kernel a hashed lattice that stores the simplex vertex ids and barycentric weights
//!   per pixel;
//! - `lattice/lanes`: the lattice's 8-lane kernels (barycentric weights and vertex keys,
//!   scalar lanes and AVX2), private to `lattice` but for the lane width, which `grid`
//!   and `mean_field` use;
//! - `simd`: the splat/blur/slice and softmax loops (scalar reference, SSE4.1, AVX2+FMA,
//!   chosen at run time; [`Isa`] says which). Private: its property tests against the
//!   scalar reference are the crate's test-only `simd_tests` module.
//!
//! One pass over the pixels per iteration slices the previous messages, updates Q and
//! splats it for the next iteration, so Q itself is never stored between iterations: only
//! the unary buffer, which receives the final Q in place. The normalisers `K·1` are not
//! stored either: every splat puts a 1 in the unused lane 3 of the vertex values, so every
//! slice returns `K·1` next to the messages (one extra ones-only splat and blur before the
//! first pass).
//!
//! Diagnostics go through `tracing` (target `risk_inference::crf`): each run's build /
//! inference split at debug level, and with `RISK_CRF_TIMING=1` the same split and the
//! lattice build steps at info level, as lines starting `risk-crf timing`, `risk-crf grid`
//! and `risk-crf lattice` (`bench/crf_vs_pydensecrf.sh` reads them from `risk-crf`'s
//! stderr). `RISK_CRF_ISA=scalar|sse41|avx2` forces the kernels; the choice is logged.
//!
//! # Agreement with pydensecrf
//!
//! `tests/crf_parity.rs` compares against committed pydensecrf outputs (fixtures made by
//! `tests/data/crf/make_fixtures.sh`) and requires label agreement >= 99.9% and max |Q diff|
//! below 1e-4, for Potts and for label compatibility matrices (ordinal with both presets,
//! an asymmetric matrix); the measured agreement (identical labels, |Q diff| below 1e-6) is
//! in `bench/README.md` ("Dense CRF", "CRF label compatibility").
//!
//! # Memory
//!
//! Per pixel: the unary/Q buffer (12 bytes) and, in `risk-crf`, the RGB image (3); the
//! bilateral simplex ids (6 x u32 = 24) and barycentric weights (6 x f32 = 24); the vertex
//! values (4 floats; the blurred values plus one splat buffer per thread) of about 0.13 N
//! Gaussian grid points (3 buffers, about 6 bytes per pixel) and 0.11 N bilateral vertices
//! (3 buffers plus blur neighbour ids, about 11 bytes per pixel on natural images; noisier
//! colours give more vertices): about 84 bytes per pixel in all with 2 threads, within a
//! budget of 96 (pydensecrf: about 256). During the build the bilateral hash table adds
//! about 8 bytes per pixel; it is dropped before the weights are stored. Storing the
//! weights saves recomputing them in each pass (iterations + 2: the normaliser's, the
//! first Q's and one per iteration); the Gaussian simplices are still recomputed (storing them
//! would take 24 more bytes per pixel). The 6 ids do not compress (most pixels have a
//! simplex of their own), nor do the weights without changing the results' bits.
//! Speed and peak memory against pydensecrf, and where the time goes: `bench/README.md`
//! ("Dense CRF", measured with `bench/crf_vs_pydensecrf.sh`).

mod diag;
mod error;
mod grid;
mod lattice;
mod mean_field;
mod params;
mod simd;
#[cfg(test)]
mod simd_tests;
mod stretch;
mod tiled;

pub use error::CrfError;
pub use mean_field::{
    class_shares, dense_crf, dense_crf_in_place, dense_crf_unary, labels_from_q, unary_from_probs_in_place,
};
pub use params::{CrfParams, LABELS, LabelCompat};
pub use simd::Isa;
pub use stretch::BandStretch;
pub use tiled::{CrfTile, CrfTiling, TileError, TileIo, Window, dense_crf_tiled, run_tiles, tile_plan};
