//! Training data: which tiles the model sees, and how often.
//!
//! - [`tiles`]: the tile grid of an image / label raster pair, class counts, tile reads;
//! - [`split`]: spatial-block train / validation / test split;
//! - [`augment`]: flips, 90-degree rotations, colour jitter;
//! - [`sampling`]: the minority-sampling plan of `docs/spec.md` ("Training"): class-1-rich
//!   tiles duplicated to 5% class 1, then SMOTE to 7.5%, over per-tile class counts;
//! - [`smote`]: SMOTE drawing exactly the samples imbalanced-learn draws;
//! - [`numpy_rng`]: numpy's legacy `RandomState` (MT19937), which SMOTE's draws need.
//!
//! Batches are assembled by [`crate::train`] from these pieces, a few tiles at a time.

pub mod augment;
pub mod numpy_rng;
pub mod sampling;
pub mod smote;
pub mod split;
pub mod tiles;

pub use sampling::{Sample, SamplingConfig, SamplingPlan};
