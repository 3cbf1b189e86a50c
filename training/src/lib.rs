//! risk-training: everything that needs libtorch.
//!
//! - [`model`]: the attention U-Net of SPEC.md (EfficientNet B4 / B0 encoder, CBAM, smp
//!   U-Net decoder, class and CORAL heads) with smp state-dict names, and weight import
//!   from PyTorch safetensors checkpoints;
//! - [`data`]: minority sampling (duplication + SMOTE as imbalanced-learn draws it);
//! - [`loss`]: softmax focal loss + 0.3 x CORAL loss, nodata ignored;
//! - [`synth`]: the deterministic generator of synthetic scenes (imagery + ordinal labels)
//!   used for tests, fixtures, the demo and training data.
//!
//! The data pipeline, the training loop and ONNX export follow (see the issues);
//! they reuse `risk_inference` for raster I/O and metrics, never the other way round.

pub mod data;
pub mod loss;
pub mod model;
pub mod synth;
