//! risk-training: everything that needs libtorch.
//!
//! - [`model`]: the attention U-Net of `docs/spec.md` ("Model"): EfficientNet B4 / B0 encoder,
//!   CBAM, smp U-Net decoder, class and CORAL heads, with smp state-dict names, and weight import
//!   from PyTorch safetensors checkpoints;
//! - [`config`]: `config.yaml` (every training parameter of `docs/spec.md`; unknown keys fail);
//! - [`amp`]: mixed precision (autocast float16 on CUDA, bfloat16 on CUDA or the CPU);
//! - [`device`]: CPU or CUDA (libtorch's CUDA backend loaded at start-up when present);
//! - [`data`]: tiles, spatial-block split, augmentation, minority sampling (duplication +
//!   SMOTE as imbalanced-learn draws it);
//! - [`loss`]: softmax focal loss + 0.3 x CORAL loss, nodata ignored;
//! - [`optim`]: AdamW over the var store with its moments saved beside checkpoints;
//! - [`onnx`]: export to the inference model contract (prost over the vendored
//!   `onnx.proto`, opset 17, BatchNorm folded, `risk.*` metadata, optional FP16);
//! - [`synth`]: the deterministic generator of synthetic scenes (imagery + ordinal labels)
//!   used for tests, fixtures, the demo and training data; it is the `risk-synth` crate
//!   (`inference/synth/`, no libtorch), re-exported here under its old path;
//! - [`train`]: the loop of `risk-train fit` (AdamW, schedule, validation metrics,
//!   checkpoints, early stopping, resume).
//!
//! A training step costs about what PyTorch eager with smp costs (the model code is
//! libtorch either way): `bench/train_step.sh`, results in `bench/README.md`.
//!
//! The crate reuses `risk_inference` for raster I/O, metrics and (in tests) ONNX Runtime;
//! never the other way round.

pub mod amp;
pub mod config;
pub mod data;
pub mod decision;
pub mod device;
pub mod loss;
pub mod model;
pub mod onnx;
pub mod optim;
pub use risk_synth as synth;
pub mod train;

/// Writes `bytes` to `path` through a temporary file beside it, flushed, read back and
/// renamed into place ([`risk_inference::output::write_atomic`], the writers' one
/// mechanism), so that a failure never leaves a half-written file under the final name.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    risk_inference::output::write_atomic(path, bytes).map_err(std::io::Error::other)
}
