//! Training data: which tiles the model sees, and how often.
//!
//! - [`sampling`]: the minority-sampling plan of SPEC.md (class-1-rich tiles duplicated to
//!   5% class 1, then SMOTE to 7.5%) over per-tile class counts;
//! - [`smote`]: SMOTE drawing exactly the samples imbalanced-learn draws;
//! - [`numpy_rng`]: numpy's legacy `RandomState` (MT19937), which SMOTE's draws need.
//!
//! Tiling of the rasters, the spatial-block split, augmentation and batching follow
//! (issue 6).

pub mod numpy_rng;
pub mod sampling;
pub mod smote;

pub use sampling::{Sample, SamplingConfig, SamplingPlan};
