//! risk-training: everything that needs libtorch. Today: [`synth`], the deterministic
//! generator of synthetic scenes (imagery + ordinal labels) used for tests, fixtures,
//! the demo and training data. The attention U-Net, losses, data pipeline, training loop
//! and ONNX export follow (see the issues); they reuse `risk_inference` for raster I/O
//! and metrics, never the other way round.

pub mod synth;
