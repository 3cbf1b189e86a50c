//! risk-training: everything that needs libtorch.
//!
//! - [`model`]: the attention U-Net of SPEC.md (EfficientNet B4 / B0 encoder, CBAM, smp
//!   U-Net decoder, class and CORAL heads) with smp state-dict names, and weight import
//!   from PyTorch safetensors checkpoints;
//! - [`config`]: `config.yaml` (every SPEC.md training parameter, unknown keys rejected);
//! - [`amp`]: mixed precision (autocast float16 on CUDA, bfloat16 on CUDA or the CPU);
//! - [`device`]: CPU or CUDA (libtorch's CUDA backend loaded at start-up when present);
//! - [`data`]: tiles, spatial-block split, augmentation, minority sampling (duplication +
//!   SMOTE as imbalanced-learn draws it);
//! - [`loss`]: softmax focal loss + 0.3 x CORAL loss, nodata ignored;
//! - [`optim`]: AdamW over the var store with its moments saved beside checkpoints;
//! - [`onnx`]: export to the inference model contract (prost over the vendored
//!   `onnx.proto`, opset 17, BatchNorm folded, `risk.*` metadata, optional FP16);
//! - [`synth`]: the deterministic generator of synthetic scenes (imagery + ordinal labels)
//!   used for tests, fixtures, the demo and training data;
//! - [`train`]: the loop of `risk-train fit` (AdamW, schedule, validation metrics,
//!   checkpoints, early stopping, resume).
//!
//! Speed (`bench/train_step.sh b0 4 256 10 2`, side by side, 2 cores, 2 interleaved
//! rounds, best median of 10 steps): one B0 training step at batch 4 x 3 x 256 x 256 takes
//! 676.6 ms in Rust/tch and 699.2 ms in PyTorch eager with smp (ratio 0.97); the full
//! V2.5 step (CBAM, focal + 0.3 CORAL) 691.0 ms. The model code is libtorch either way,
//! so the ratio stays near 1.
//!
//! The crate reuses `risk_inference` for raster I/O, metrics and (in tests) ONNX Runtime;
//! never the other way round.

pub mod amp;
pub mod config;
pub mod data;
pub mod device;
pub mod loss;
pub mod model;
pub mod onnx;
pub mod optim;
pub mod synth;
pub mod train;

/// Writes `bytes` to `path` through a temporary file beside it, flushed, read back and
/// renamed into place ([`risk_inference::output::write_atomic`], the writers' one
/// mechanism), so that a failure never leaves a half-written file under the final name.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    risk_inference::output::write_atomic(path, bytes).map_err(std::io::Error::other)
}
